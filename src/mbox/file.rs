//! File access for the mailbox engine: opening the mailbox safely (no
//! symlinks, regular files only, read-write), the (size, mtime, ctime) stamp
//! used for change detection, the (device, inode) identity the index cache is
//! keyed by, and feeding a byte range of the file to the scanner through one
//! fixed buffer.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use super::MboxError;
use super::scan::{ScanError, Scanner, Sink};
use crate::config::SCAN_CHUNK;

/// What `fstat` says about the file, as far as change detection cares.
///
/// The ctime is part of it because nobody can set it: every write, truncate,
/// `utime` or `chmod` moves it to the current time, so a writer that puts the
/// old mtime back (as some MUAs do) is still seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    /// File size in bytes.
    pub size: u64,
    /// Modification time: seconds since the epoch.
    pub mtime_sec: i64,
    /// Modification time: nanoseconds within the second.
    pub mtime_nsec: i64,
    /// Status change time: seconds since the epoch.
    pub ctime_sec: i64,
    /// Status change time: nanoseconds within the second.
    pub ctime_nsec: i64,
}

impl Stamp {
    /// The later of mtime and ctime, in nanoseconds since the epoch.
    pub fn changed_ns(&self) -> i128 {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        ns(self.mtime_sec, self.mtime_nsec).max(ns(self.ctime_sec, self.ctime_nsec))
    }
}

/// Which file: device and inode numbers, and the birth time where the file
/// system records one (0 otherwise), so that a new file given a deleted
/// file's inode number is not taken for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FileId {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Birth time in nanoseconds since the epoch, 0 if unknown.
    pub birth: i128,
}

/// `fstat` of the open mailbox: its identity and stamp, and its owner
/// (uid, gid).
pub fn stat(file: &File) -> io::Result<(FileId, Stamp, (u32, u32))> {
    let m = file.metadata()?;
    Ok((
        FileId {
            dev: m.dev(),
            ino: m.ino(),
            birth: crate::sys::statx::birth_time(file).unwrap_or(0),
        },
        stamp_of(&m),
        (m.uid(), m.gid()),
    ))
}

/// `fstat` of the open mailbox: its stamp (one system call; the checks
/// before every RETR and TOP need nothing else).
pub fn stamp(file: &File) -> io::Result<Stamp> {
    file.metadata().map(|m| stamp_of(&m))
}

fn stamp_of(m: &Metadata) -> Stamp {
    Stamp {
        size: m.len(),
        mtime_sec: m.mtime(),
        mtime_nsec: m.mtime_nsec(),
        ctime_sec: m.ctime(),
        ctime_nsec: m.ctime_nsec(),
    }
}

/// Reads up to `buf.len()` bytes at `offset`, fewer only at the end of the file.
pub fn read_upto(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// A sibling of the mailbox in its directory: `DIR/.NAME<suffix>`.
pub fn sibling(path: &Path, suffix: &str) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut name = b".".to_vec();
    name.extend_from_slice(path.file_name().map_or(&b"mbox"[..], |n| n.as_bytes()));
    name.extend_from_slice(suffix.as_bytes());
    dir.join(std::ffi::OsStr::from_bytes(&name))
}

/// What an administrator can do about `e`, a failure to create a file
/// (dotlock, journal) in the spool directory: a hint for the log line,
/// starting with a space, or nothing.
pub fn spool_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => {
            " (give pop3d write access to the spool directory, e.g. group mail)"
        }
        Some(libc::EROFS) => " (the spool's file system is mounted read-only)",
        Some(libc::ENOSPC) => " (the spool's file system is full)",
        Some(libc::EDQUOT) => " (the user's disk quota is used up)",
        _ => "",
    }
}

/// True if `e` says the disk is full or the quota used up.
pub fn no_space(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

/// True if `e`, a failure to create a file in the spool directory, lasts
/// until an administrator acts (no access, a read-only file system), unlike
/// a full disk or quota.
pub fn spool_error_lasts(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EACCES | libc::EPERM | libc::EROFS)
    )
}

fn refused(path: &Path, why: &str) -> MboxError {
    MboxError::Refused(format!("{}: {}", path.display(), why))
}

/// Opens the mailbox read-write. `Ok(None)` if it does not exist.
///
/// A symlink, directory, device, FIFO or socket is refused: the path is
/// checked with `lstat` (so nothing but a regular file is ever opened), opened
/// with `O_NOFOLLOW | O_NONBLOCK | O_NOCTTY`, and the descriptor checked with
/// `fstat` to be the same regular file.
pub fn open_mailbox(path: &Path) -> Result<Option<File>, MboxError> {
    let before = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(MboxError::Io(e)),
    };
    let kind = before.file_type();
    if !kind.is_file() {
        let what = if kind.is_symlink() {
            "is a symbolic link, not a regular file"
        } else if kind.is_dir() {
            "is a directory, not a regular file"
        } else {
            "is not a regular file"
        };
        return Err(refused(path, what));
    }
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(refused(path, "is a symbolic link, not a regular file"));
        }
        Err(e) => return Err(MboxError::Io(e)),
    };
    let after = file.metadata().map_err(MboxError::Io)?;
    if !after.file_type().is_file() || after.dev() != before.dev() || after.ino() != before.ino() {
        return Err(refused(path, "was replaced while being opened"));
    }
    Ok(Some(file))
}

/// Why feeding a range failed.
#[derive(Debug)]
pub enum FeedError {
    /// Reading failed.
    Io(io::Error),
    /// The file ended before the range did (it shrank).
    Short,
    /// The scanner stopped.
    Scan(ScanError),
}

/// Feeds bytes `[scanner.pos(), to)` of `file` to `scanner`, [`SCAN_CHUNK`]
/// bytes at a time through `buf`.
pub fn feed_range<S: Sink>(
    file: &File,
    scanner: &mut Scanner<S>,
    buf: &mut [u8],
    to: u64,
) -> Result<(), FeedError> {
    feed_some(file, scanner, buf, to, u64::MAX)
}

/// Like [`feed_range`] but stops after about `budget` bytes (whole chunks).
pub fn feed_some<S: Sink>(
    file: &File,
    scanner: &mut Scanner<S>,
    buf: &mut [u8],
    to: u64,
    budget: u64,
) -> Result<(), FeedError> {
    let len = buf.len().min(SCAN_CHUNK);
    let buf = &mut buf[..len];
    let stop = scanner.pos().saturating_add(budget.max(1)).min(to);
    while scanner.pos() < stop {
        let want = (stop - scanner.pos()).min(buf.len() as u64) as usize;
        let n = match file.read_at(&mut buf[..want], scanner.pos()) {
            Ok(0) => return Err(FeedError::Short),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(FeedError::Io(e)),
        };
        scanner.feed(&buf[..n]).map_err(FeedError::Scan)?;
    }
    Ok(())
}

/// Opens one of pop3d's own files next to a mailbox (retired UIDs, index)
/// for reading if it is trustworthy: a regular file with one link, owned by
/// the mailbox's owner, that nobody else may write. `Ok(None)` if there is
/// none.
pub(super) fn open_own(p: &Path, owner: u32) -> io::Result<Option<File>> {
    let f = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(p)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    check_own(&f, owner)?;
    Ok(Some(f))
}

/// Opens one of pop3d's own files next to a mailbox for appending: made
/// anew (mode 0600), or an existing one only if [`open_own`] would trust it.
/// The checks are made on the open descriptor, and the opening does not
/// block (a FIFO put there in the meantime fails, it does not wait).
pub(super) fn append_own(p: &Path, owner: u32) -> io::Result<File> {
    let flags = libc::O_NOFOLLOW | libc::O_NOCTTY | libc::O_NONBLOCK;
    match OpenOptions::new()
        .append(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(flags)
        .open(p)
    {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        made => return made,
    }
    let f = OpenOptions::new()
        .append(true)
        .custom_flags(flags)
        .open(p)?;
    check_own(&f, owner)?;
    Ok(f)
}

fn check_own(f: &File, owner: u32) -> io::Result<()> {
    let m = f.metadata()?;
    if !m.is_file() || m.uid() != owner || m.mode() & 0o022 != 0 || m.nlink() != 1 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "not a regular file of the mailbox's owner, or writable by others",
        ));
    }
    Ok(())
}

/// Hands a file made by root over to the mailbox's owner.
pub(super) fn give(f: &File, owner: u32, group: u32) -> io::Result<()> {
    if f.metadata()?.uid() != owner {
        std::os::unix::fs::fchown(f, Some(owner), Some(group))?;
    }
    Ok(())
}
