//! Process identity and life: uids, file-system identity, privilege drops,
//! daemonizing, and adopting the inetd file descriptors.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::path::Path;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// The real uid of this process.
pub fn uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// The effective uid of this process.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Runs file-system access of the calling thread as another user until dropped
/// (Linux setfsuid/setfsgid). Only the calling thread is affected, and only
/// permission checks on files: the process keeps its real and effective ids.
/// Changing fsuid away from 0 also clears the file capabilities (such as
/// CAP_DAC_OVERRIDE) from the effective set, so the kernel checks permissions
/// exactly as for that user.
#[derive(Debug)]
pub struct FsIdentity {
    prev_uid: u32,
    prev_gid: u32,
}

impl FsIdentity {
    /// Switches the calling thread's fsuid/fsgid to `uid`/`gid`.
    pub fn enter(uid: u32, gid: u32) -> io::Result<FsIdentity> {
        // SAFETY: setfsgid/setfsuid take plain integers, have no memory effects
        // and only change this thread's credentials. They return the previous
        // value; calling again with the same id returns the current one, which
        // is how success is confirmed.
        let (prev_gid, prev_uid, now_gid, now_uid) = unsafe {
            let prev_gid = libc::setfsgid(gid) as u32;
            let now_gid = libc::setfsgid(gid) as u32;
            let prev_uid = libc::setfsuid(uid) as u32;
            let now_uid = libc::setfsuid(uid) as u32;
            (prev_gid, prev_uid, now_gid, now_uid)
        };
        let guard = FsIdentity { prev_uid, prev_gid };
        if now_uid != uid || now_gid != gid {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("cannot take file-system identity {uid}:{gid}"),
            ));
        }
        Ok(guard)
    }
}

impl FsIdentity {
    /// [`FsIdentity::enter`] when `ids` is given; nothing to switch otherwise.
    pub fn enter_opt(ids: Option<(u32, u32)>) -> io::Result<Option<FsIdentity>> {
        ids.map(|(uid, gid)| FsIdentity::enter(uid, gid))
            .transpose()
    }
}

impl Drop for FsIdentity {
    fn drop(&mut self) {
        // SAFETY: as in `enter`; restoring the ids this thread had before.
        unsafe {
            libc::setfsuid(self.prev_uid);
            libc::setfsgid(self.prev_gid);
        }
    }
}

/// Sets the supplementary groups to exactly `groups` (done once at start-up as
/// root, so that root's own groups never grant access to a mailbox).
pub fn set_groups(groups: &[u32]) -> io::Result<()> {
    let list: Vec<libc::gid_t> = groups.iter().map(|&g| g as libc::gid_t).collect();
    // SAFETY: `list` is live for the call and its length is passed; a null
    // pointer is never dereferenced for an empty list.
    check(unsafe { libc::setgroups(list.len(), list.as_ptr()) })?;
    Ok(())
}

/// Becomes `uid`/`gid` for good: supplementary groups are the primary group
/// plus `extra` (the spool directory's group, for dot-locks), then gid, then
/// uid. Fails (and the caller must stop) if any step does not take effect.
pub fn become_user(uid: u32, gid: u32, extra: Option<u32>) -> io::Result<()> {
    let mut groups = vec![gid];
    groups.extend(extra.filter(|&g| g != gid));
    set_groups(&groups)?;
    // SAFETY: plain integer argument, no memory effects.
    check(unsafe { libc::setgid(gid) })?;
    // SAFETY: plain integer argument, no memory effects.
    check(unsafe { libc::setuid(uid) })?;
    // SAFETY: getters without preconditions.
    let (ruid, euid, rgid, egid) = unsafe {
        (
            libc::getuid(),
            libc::geteuid(),
            libc::getgid(),
            libc::getegid(),
        )
    };
    if ruid != uid || euid != uid || rgid != gid || egid != gid {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "privilege drop did not take effect",
        ));
    }
    Ok(())
}

/// Writes `pid` and a newline to `path` atomically: a reader sees either no
/// file or the whole line.
pub fn write_pidfile(path: &Path, pid: u32) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, format!("{pid}\n"))?;
    std::fs::rename(&tmp, path)
}

/// The child's side of [`daemonize`]: tells the waiting parent that start-up
/// is complete.
#[derive(Debug)]
#[must_use = "the parent waits until ready() is called"]
pub struct Detached {
    ready: File,
}

impl Detached {
    /// Start-up is complete: the parent writes the pid file and exits 0.
    pub fn ready(mut self) {
        use std::io::Write;
        let _ = self.ready.write_all(b"1");
    }
}

/// Detaches from the terminal: fork, setsid, chdir to /, standard
/// descriptors to /dev/null. The parent waits until the child calls
/// [`Detached::ready`], then writes `pidfile` (if any) with the child's pid
/// and exits 0; if the child dies first, the parent exits 1. So when
/// `pop3d -D` returns 0 the daemon is up and its pid file complete. Call
/// before starting any thread.
pub fn daemonize(pidfile: Option<&Path>) -> io::Result<Detached> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 just created both descriptors and nothing else owns them.
    let (r, w) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    // SAFETY: called while the process is single-threaded, so the child is a
    // complete copy of it.
    let pid = check(unsafe { libc::fork() })?;
    if pid != 0 {
        drop(w);
        let mut byte = [0u8; 1];
        let code = match (&r).read(&mut byte) {
            Ok(1) => match pidfile.map(|p| (p, write_pidfile(p, pid as u32))) {
                Some((p, Err(e))) => {
                    eprintln!("pop3d: cannot write pid file {}: {e}", p.display());
                    // SAFETY: kill takes plain integers; the child is ours.
                    unsafe { libc::kill(pid, libc::SIGTERM) };
                    1
                }
                _ => 0,
            },
            _ => {
                eprintln!("pop3d: the daemon did not start (see its log)");
                1
            }
        };
        // SAFETY: _exit ends the parent at once without running destructors
        // that belong to the child now.
        unsafe { libc::_exit(code) }
    }
    drop(r);
    // SAFETY: no arguments, no memory effects.
    check(unsafe { libc::setsid() })?;
    std::env::set_current_dir("/")?;
    let null = File::options().read(true).write(true).open("/dev/null")?;
    for fd in 0..3 {
        // SAFETY: both descriptors are open; dup2 replaces fd atomically.
        check(unsafe { libc::dup2(null.as_raw_fd(), fd) })?;
    }
    Ok(Detached { ready: w })
}

/// Points fd 0 and fd 1 at /dev/null, letting go of what inetd handed over
/// (after the copies from [`inetd_fds`] are closed, the client's connection
/// is then closed). The numbers stay taken, so no file opened later gets
/// them.
pub fn release_inetd_fds() -> io::Result<()> {
    let null = File::options().read(true).write(true).open("/dev/null")?;
    for fd in 0..2 {
        // SAFETY: `null` is an open descriptor we own; dup2 makes `fd` a copy
        // of it, closing what `fd` was atomically. Nothing in the process
        // owns fd 0 or 1 as a Rust object (inetd_fds made its own copies).
        check(unsafe { libc::dup2(null.as_raw_fd(), fd) })?;
    }
    Ok(())
}

/// Takes ownership of copies of fd 0 (read side) and fd 1 (write side), as
/// inetd hands them over, and makes them non-blocking.
pub fn inetd_fds() -> io::Result<(File, File)> {
    let r = dup_nonblocking(0)?;
    let w = dup_nonblocking(1)?;
    Ok((r, w))
}

fn dup_nonblocking(fd: RawFd) -> io::Result<File> {
    // SAFETY: F_DUPFD_CLOEXEC on an fd number only creates a new descriptor; an
    // invalid fd gives EBADF, which we report.
    let new = check(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) })?;
    // SAFETY: `new` was just returned by fcntl and nothing else owns it.
    let file = unsafe { File::from_raw_fd(new) };
    set_nonblocking(file.as_raw_fd())?;
    Ok(file)
}

/// Sets O_NONBLOCK on an open descriptor.
pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL on a descriptor the caller keeps open; integers only.
    unsafe {
        let flags = check(libc::fcntl(fd, libc::F_GETFL))?;
        check(libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK))?;
    }
    Ok(())
}

/// Turns off Nagle's algorithm on a TCP socket (ignored for other descriptors),
/// so a reply is sent as soon as it is written.
pub fn set_nodelay(fd: RawFd) {
    let one: libc::c_int = 1;
    // SAFETY: `one` lives across the call and its size is passed; a descriptor
    // that is not a TCP socket just makes setsockopt fail, which is ignored.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}
