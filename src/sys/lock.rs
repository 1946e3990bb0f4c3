//! Open-file-description (OFD) fcntl locks and `flock(2)` locks on mailbox files.
//!
//! Thin, safe wrappers around `fcntl(F_OFD_SETLK)` and `flock(LOCK_NB)`: one
//! non-blocking attempt to take or drop a whole-file shared or exclusive lock.
//! The retry policy (how long to wait, how often to try) belongs to the caller
//! (`mbox::lock`).
//!
//! OFD locks belong to the open file description, not to the process, so two
//! sessions of one daemon on the same mailbox exclude each other, and closing an
//! unrelated descriptor of the same file does not drop them. They conflict with
//! classic POSIX `fcntl` record locks, which is what procmail, Postfix, Exim and
//! dovecot-lda take. Kernels older than 3.15 lack OFD locks (`EINVAL`); there we
//! fall back to classic `F_SETLK` locks, which still exclude other programs but
//! not other sessions of this process.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Which lock to take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// A read lock: any number of readers, no writer.
    Shared,
    /// A write lock: nobody else.
    Exclusive,
}

/// Tries once, without waiting, to lock the whole of `file`.
///
/// Returns `Ok(true)` when the lock is held, `Ok(false)` when another lock
/// conflicts. Taking a lock of the other kind converts the one already held.
pub fn try_lock(file: &File, kind: LockKind) -> io::Result<bool> {
    let l_type = match kind {
        LockKind::Shared => libc::F_RDLCK,
        LockKind::Exclusive => libc::F_WRLCK,
    };
    set_lock(file, l_type as libc::c_short)
}

/// Drops any lock this open file description holds on `file`.
pub fn unlock(file: &File) -> io::Result<()> {
    set_lock(file, libc::F_UNLCK as libc::c_short).map(|_| ())
}

/// One `F_OFD_SETLK` (or, on kernels without OFD locks, `F_SETLK`) call on the
/// whole file. `Ok(false)` means a conflicting lock is held elsewhere.
fn set_lock(file: &File, l_type: libc::c_short) -> io::Result<bool> {
    match fcntl_setlk(file, libc::F_OFD_SETLK, l_type) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            fcntl_setlk(file, libc::F_SETLK, l_type)
        }
        other => other,
    }
}

fn fcntl_setlk(file: &File, cmd: libc::c_int, l_type: libc::c_short) -> io::Result<bool> {
    // SAFETY: `flock` is a plain C struct of integers (plus, on some targets,
    // private padding fields); the all-zero bit pattern is a valid value of it.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = l_type;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 0; // 0 = to the end of the file, however far it grows
    fl.l_pid = 0; // must be 0 for OFD locks
    loop {
        // SAFETY: the descriptor is open for the whole call because `file`
        // borrows it; `fl` is a valid, initialised `flock` that lives across the
        // call, and F_OFD_SETLK/F_SETLK only read it. No memory is retained.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), cmd, &mut fl as *mut libc::flock) };
        if rc != -1 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) | Some(libc::EACCES) => return Ok(false),
            _ => return Err(err),
        }
    }
}

/// Tries once, without waiting, to take a `flock(2)` lock on `file`.
///
/// `Ok(false)` when another open file description holds a conflicting one.
/// Taking a lock of the other kind converts the one already held (not
/// atomically: flock drops the old lock first).
pub fn try_flock(file: &File, kind: LockKind) -> io::Result<bool> {
    let op = match kind {
        LockKind::Shared => libc::LOCK_SH,
        LockKind::Exclusive => libc::LOCK_EX,
    };
    flock(file, op | libc::LOCK_NB)
}

/// Drops the `flock(2)` lock this open file description holds on `file`.
pub fn unflock(file: &File) -> io::Result<()> {
    flock(file, libc::LOCK_UN).map(|_| ())
}

fn flock(file: &File, op: libc::c_int) -> io::Result<bool> {
    loop {
        // SAFETY: the descriptor is open for the whole call because `file`
        // borrows it; flock takes only integers and touches no memory of ours.
        let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
        if rc == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Ok(false),
            _ => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    fn temp(name: &str) -> std::path::PathBuf {
        let mut p = std::env::temp_dir();
        p.push(format!(
            "pop3d-lock-{}-{}-{}",
            name,
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        p
    }

    fn open(p: &std::path::Path) -> File {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(p)
            .unwrap()
    }

    #[test]
    fn ofd_locks_conflict_between_descriptions() {
        let p = temp("conflict");
        let a = open(&p);
        let b = open(&p);
        assert!(try_lock(&a, LockKind::Shared).unwrap());
        assert!(try_lock(&b, LockKind::Shared).unwrap());
        assert!(!try_lock(&b, LockKind::Exclusive).unwrap());
        unlock(&a).unwrap();
        assert!(try_lock(&b, LockKind::Exclusive).unwrap());
        assert!(!try_lock(&a, LockKind::Shared).unwrap());
        unlock(&b).unwrap();
        assert!(try_lock(&a, LockKind::Exclusive).unwrap());
        unlock(&a).unwrap();
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn flock_conflicts_between_descriptions() {
        let p = temp("flock");
        let a = open(&p);
        let b = open(&p);
        assert!(try_flock(&a, LockKind::Shared).unwrap());
        assert!(try_flock(&b, LockKind::Shared).unwrap());
        assert!(!try_flock(&b, LockKind::Exclusive).unwrap());
        unflock(&a).unwrap();
        assert!(try_flock(&b, LockKind::Exclusive).unwrap());
        assert!(!try_flock(&a, LockKind::Shared).unwrap());
        // flock and OFD fcntl locks are independent on local file systems.
        assert!(try_lock(&a, LockKind::Exclusive).unwrap());
        unlock(&a).unwrap();
        unflock(&b).unwrap();
        std::fs::remove_file(&p).unwrap();
    }
}
