//! The one libc call the dotlock code needs beyond std: asking the kernel
//! whether a process id belongs to a live process (liblockfile's rule that a
//! lock file naming a running process is valid however old it is).

/// True if a process with id `pid` exists on this host.
///
/// `kill(pid, 0)` sends nothing; it fails with `ESRCH` only when there is no
/// such process (`EPERM` means it exists but belongs to someone else). Ids
/// that are not positive (0, negative: process groups) are reported as alive,
/// which is the safe answer for a lock holder.
pub fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return true;
    }
    // SAFETY: signal 0 performs only the existence and permission checks; the
    // call takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::pid_alive;

    #[test]
    fn own_pid_is_alive_and_a_reaped_child_is_not() {
        assert!(pid_alive(std::process::id() as i32));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        assert!(!pid_alive(pid));
        assert!(pid_alive(0));
    }
}
