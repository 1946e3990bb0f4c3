//! File access for the mailbox engine: opening the mailbox safely (no
//! symlinks, regular files only, read-write), the (size, mtime) stamp used for
//! change detection, and feeding a byte range of the file to the scanner
//! through one fixed buffer.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use super::MboxError;
use super::scan::{ScanError, Scanner, Sink};
use crate::config::SCAN_CHUNK;

/// What `fstat` says about the file, as far as change detection cares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    /// File size in bytes.
    pub size: u64,
    /// Modification time: seconds since the epoch.
    pub mtime_sec: i64,
    /// Modification time: nanoseconds within the second.
    pub mtime_nsec: i64,
}

impl Stamp {
    /// Modification time in nanoseconds since the epoch.
    pub fn mtime_ns(&self) -> i128 {
        i128::from(self.mtime_sec) * 1_000_000_000 + i128::from(self.mtime_nsec)
    }
}

/// `fstat` of the open mailbox.
pub fn stamp(file: &File) -> io::Result<Stamp> {
    let m = file.metadata()?;
    Ok(Stamp {
        size: m.len(),
        mtime_sec: m.mtime(),
        mtime_nsec: m.mtime_nsec(),
    })
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
    let len = buf.len().min(SCAN_CHUNK);
    let buf = &mut buf[..len];
    while scanner.pos() < to {
        let want = (to - scanner.pos()).min(buf.len() as u64) as usize;
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

/// A scan buffer of [`SCAN_CHUNK`] bytes.
pub fn scan_buffer() -> Vec<u8> {
    vec![0; SCAN_CHUNK]
}
