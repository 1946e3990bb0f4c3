//! NFS-safe dotlocks (`SPOOL/USER.lock`), made the way liblockfile, procmail
//! and Debian policy §11.6 expect, without ever waiting:
//!
//! 1. create a uniquely named temporary file in the spool directory
//!    (`.USER.lock.HOST.PID.N`, `O_EXCL`, holding our pid);
//! 2. `link()` it to `USER.lock` and ignore what `link` says (over NFS a lost
//!    reply can report failure after success); the lock is ours exactly when
//!    the temporary file's link count is then 2;
//! 3. remove the temporary name.
//!
//! Staleness follows liblockfile (`dotlockfile(1)`): a lock file that holds the
//! pid of a process running here is valid however old; one that holds the
//! pid of a process that is not running is stale at once (so a crashed
//! server's lock does not keep its users out for minutes); one without a pid
//! is stale when older than [`DOTLOCK_STALE`]. Our own pid counts as running
//! only for a lock younger than that (we refresh ours every
//! [`DOTLOCK_REFRESH`] while we hold it). Like liblockfile this trusts pids
//! on NFS too, where a pid may belong to another host. We remove our lock
//! only if it is still the file we created.
//!
//! When the process may not create files in the spool directory (`EACCES`,
//! `EPERM`, `EROFS`) the dotlock is [`DotTry::Unavailable`]: the caller goes on
//! with the fcntl lock alone and reports that once. On file systems without
//! hard links the lock file is created directly with `O_EXCL` instead.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::config::{DOTLOCK_REFRESH, DOTLOCK_STALE};
use crate::sys::dotlock::pid_alive;

/// The outcome of one attempt.
#[derive(Debug)]
pub(crate) enum DotTry {
    /// The lock is ours until the value is dropped.
    Held(Dotlock),
    /// Someone else holds a valid lock.
    Busy,
    /// No dotlock can be made here (no write access to the directory, a
    /// read-only file system); the error says why.
    Unavailable(io::Error),
}

/// A dotlock we hold. Dropping it removes the lock file if it is still ours.
#[derive(Debug)]
pub(crate) struct Dotlock {
    path: PathBuf,
    /// Our lock file's device and inode.
    seen: (u64, u64),
    refreshed: Instant,
}

fn fingerprint(m: &fs::Metadata) -> (u64, u64) {
    (m.dev(), m.ino())
}

/// How often a held lock is touched: [`DOTLOCK_REFRESH`], or in debug builds
/// `POP3D_DEBUG_DOTLOCK_REFRESH_MS`, so that a test sees the refresh of a
/// held expunge without holding it for a minute.
fn refresh_every() -> Duration {
    #[cfg(debug_assertions)]
    if let Some(ms) = std::env::var("POP3D_DEBUG_DOTLOCK_REFRESH_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return Duration::from_millis(ms);
    }
    DOTLOCK_REFRESH
}

/// `path` + `.lock`.
pub(crate) fn lock_path(mailbox: &Path) -> PathBuf {
    let mut p = mailbox.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// This host's name (for unique temporary names on shared file systems).
fn hostname() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let raw = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let clean: String = raw
            .trim()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(64)
            .collect();
        if clean.is_empty() {
            "localhost".to_string()
        } else {
            clean
        }
    })
}

fn temp_path(mailbox: &Path) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = mailbox.parent().unwrap_or(Path::new("."));
    let name = mailbox.file_name().map(|n| n.as_bytes()).unwrap_or(b"mbox");
    let mut tmp = b".".to_vec();
    tmp.extend_from_slice(name);
    tmp.extend_from_slice(
        format!(
            ".lock.{}.{}.{}",
            hostname(),
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
        .as_bytes(),
    );
    dir.join(std::ffi::OsStr::from_bytes(&tmp))
}

fn create_excl(path: &Path) -> io::Result<File> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(path)?;
    // The pid, as liblockfile writes it. A lock without it (the write
    // failed: a full disk, a quota) would not be known as ours, so never
    // removed by us, and would keep everybody out until it is stale.
    if let Err(e) = f.write_all(format!("{}\n", std::process::id()).as_bytes()) {
        let _ = fs::remove_file(path);
        return Err(e);
    }
    Ok(f)
}

impl Dotlock {
    /// One attempt to take the dotlock of `mailbox`, never waiting.
    pub(crate) fn try_lock(mailbox: &Path) -> DotTry {
        let lock = lock_path(mailbox);
        // Two rounds: the second one after removing a stale lock.
        for _ in 0..2 {
            match Dotlock::attempt(mailbox, &lock) {
                Ok(Some(held)) => return DotTry::Held(held),
                Ok(None) => {}
                // Not only EACCES/EROFS: any failure to make the lock (no
                // space, a quota) must not stop the mailbox from being used.
                Err(e) => return DotTry::Unavailable(e),
            }
            if !remove_if_stale(&lock) {
                return DotTry::Busy;
            }
        }
        DotTry::Busy
    }

    /// `Ok(None)`: someone else's lock is in the way.
    fn attempt(mailbox: &Path, lock: &Path) -> io::Result<Option<Dotlock>> {
        let tmp = temp_path(mailbox);
        let file = create_excl(&tmp)?;
        let linked = fs::hard_link(&tmp, lock);
        let meta = file.metadata();
        let _ = fs::remove_file(&tmp);
        if meta?.nlink() == 2 {
            return Ok(Some(Dotlock::held(lock, &file.metadata()?)));
        }
        match linked {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
            // No hard links here (some FUSE and FAT file systems): an
            // exclusive create is atomic on a local file system.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EPERM) | Some(libc::ENOTSUP) | Some(libc::EMLINK)
                ) =>
            {
                match create_excl(lock) {
                    Ok(f) => Ok(Some(Dotlock::held(lock, &f.metadata()?))),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
            // link() said yes but the count is not 2: someone else's lock
            // replaced ours at once, or NFS lied. Not ours.
            Ok(()) => Ok(None),
        }
    }

    fn held(lock: &Path, meta: &fs::Metadata) -> Dotlock {
        Dotlock {
            path: lock.to_path_buf(),
            seen: fingerprint(meta),
            refreshed: Instant::now(),
        }
    }

    /// True if the lock file at our path is still the one we made: the same
    /// inode (a lock made by someone else after ours was removed may reuse
    /// it) holding our pid.
    fn still_ours(&self) -> bool {
        fs::symlink_metadata(&self.path).is_ok_and(|m| fingerprint(&m) == self.seen)
            && holder_pid(&self.path) == Some(std::process::id() as i32)
    }

    /// Touches the lock file if [`DOTLOCK_REFRESH`] has passed since the
    /// last touch, so that nobody takes it for stale during a long operation.
    pub(crate) fn refresh(&mut self) {
        if self.refreshed.elapsed() < refresh_every() {
            return;
        }
        self.refreshed = Instant::now();
        let Ok(f) = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(&self.path)
        else {
            return;
        };
        if f.metadata().is_ok_and(|m| fingerprint(&m) == self.seen) {
            let now = SystemTime::now();
            let _ = f.set_times(fs::FileTimes::new().set_accessed(now).set_modified(now));
        }
    }

    /// The lock file's path.
    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Dotlock {
    fn drop(&mut self) {
        if self.still_ours() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Removes the lock file at `lock` if it is stale. True if it is gone (also
/// when it vanished by itself), false if a valid lock is there.
fn remove_if_stale(lock: &Path) -> bool {
    let meta = match fs::symlink_metadata(lock) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return true,
        Err(_) => return false,
    };
    let age = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .unwrap_or(Duration::ZERO);
    let pid = if meta.file_type().is_file() {
        holder_pid(lock)
    } else {
        None
    };
    let stale = match pid {
        Some(p) if p != std::process::id() as i32 => !pid_alive(p),
        _ => age >= DOTLOCK_STALE,
    };
    if !stale {
        return false;
    }
    // Remove it only if it is still the file we judged (a fresh lock made in
    // between by someone who removed the stale one must stay).
    match fs::symlink_metadata(lock) {
        Ok(now) if now.dev() == meta.dev() && now.ino() == meta.ino() => {
            fs::remove_file(lock).is_ok()
        }
        Ok(_) => false,
        Err(_) => true,
    }
}

/// The pid written in a lock file, if it holds one.
fn holder_pid(lock: &Path) -> Option<i32> {
    use std::io::Read as _;
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(lock)
        .ok()?;
    let mut buf = [0u8; 32];
    let n = f.take(32).read(&mut buf).ok()?;
    let text = std::str::from_utf8(&buf[..n]).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "pop3d-dotlock-{tag}-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn names(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn lock_excludes_and_cleans_up() {
        let d = dir("basic");
        let mb = d.join("user");
        let held = match Dotlock::try_lock(&mb) {
            DotTry::Held(h) => h,
            other => panic!("{other:?}"),
        };
        assert_eq!(held.path(), d.join("user.lock"));
        assert_eq!(names(&d), ["user.lock"]);
        let pid: i32 = fs::read_to_string(d.join("user.lock"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(pid, std::process::id() as i32);
        assert!(matches!(Dotlock::try_lock(&mb), DotTry::Busy));
        drop(held);
        assert!(names(&d).is_empty());
        fs::remove_dir(&d).unwrap();
    }

    #[test]
    fn stale_locks_are_removed_live_ones_kept() {
        let d = dir("stale");
        let mb = d.join("user");
        let lock = d.join("user.lock");
        let old = SystemTime::now() - Duration::from_secs(301);
        // Old, no pid: stale.
        fs::write(&lock, b"").unwrap();
        File::options()
            .write(true)
            .open(&lock)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let held = match Dotlock::try_lock(&mb) {
            DotTry::Held(h) => h,
            other => panic!("{other:?}"),
        };
        drop(held);
        // Young: valid.
        fs::write(&lock, b"").unwrap();
        assert!(matches!(Dotlock::try_lock(&mb), DotTry::Busy));
        // Without a pid, valid until it is 5 minutes old (a holder that
        // refreshes it every minute is never taken for gone).
        for secs in [60, 299] {
            File::options()
                .write(true)
                .open(&lock)
                .unwrap()
                .set_modified(SystemTime::now() - Duration::from_secs(secs))
                .unwrap();
            assert!(matches!(Dotlock::try_lock(&mb), DotTry::Busy), "{secs} s");
        }
        // Old but naming a live process (pid 1): valid.
        fs::write(&lock, b"1\n").unwrap();
        File::options()
            .write(true)
            .open(&lock)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert!(matches!(Dotlock::try_lock(&mb), DotTry::Busy));
        // Young but naming a process that is gone: stale at once.
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let pid = gone.id();
        gone.wait().unwrap();
        fs::write(&lock, format!("{pid}\n")).unwrap();
        drop(match Dotlock::try_lock(&mb) {
            DotTry::Held(h) => h,
            other => panic!("{other:?}"),
        });
        // Someone else's lock is never removed by our drop.
        let held = match Dotlock::try_lock(&mb) {
            DotTry::Held(h) => h,
            other => panic!("{other:?}"),
        };
        fs::remove_file(&lock).unwrap();
        fs::write(&lock, b"other").unwrap();
        drop(held);
        assert_eq!(fs::read(&lock).unwrap(), b"other");
        fs::remove_file(&lock).unwrap();
        fs::remove_dir(&d).unwrap();
    }

    #[test]
    fn refresh_touches_the_lock() {
        let d = dir("refresh");
        let mb = d.join("user");
        let mut held = match Dotlock::try_lock(&mb) {
            DotTry::Held(h) => h,
            other => panic!("{other:?}"),
        };
        let old = SystemTime::now() - Duration::from_secs(200);
        File::options()
            .write(true)
            .open(held.path())
            .unwrap()
            .set_modified(old)
            .unwrap();
        held.refreshed = Instant::now() - DOTLOCK_REFRESH;
        held.refresh();
        let m = fs::metadata(held.path()).unwrap().modified().unwrap();
        assert!(SystemTime::now().duration_since(m).unwrap() < Duration::from_secs(10));
        drop(held);
        fs::remove_dir(&d).unwrap();
    }

    #[test]
    fn unwritable_directory_is_unavailable() {
        let d = dir("ro");
        let mb = d.join("user");
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&d, fs::Permissions::from_mode(0o555)).unwrap();
        {
            // Root writes anyway: as root this thread checks files as nobody.
            let _as_nobody = (crate::sys::process::euid() == 0)
                .then(|| crate::sys::process::FsIdentity::enter(65534, 65534).unwrap());
            assert!(File::create(d.join("probe")).is_err());
            match Dotlock::try_lock(&mb) {
                DotTry::Unavailable(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied)
                }
                other => panic!("a directory nobody may write: {other:?}"),
            }
        }
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        fs::remove_dir(&d).unwrap();
    }
}
