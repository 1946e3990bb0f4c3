//! The mailbox engine: an mbox file scanned into a compact message index by a
//! streaming scanner, popa3d-compatible UIDLs, the RETR/TOP encoder (LF to CRLF,
//! dot-stuffing), locking, change detection and in-place expunge.
//!
//! The caller opens nothing itself: [`Mailbox::open`] takes the path and must be
//! called with the file-system identity of the mailbox's user already in force.
//!
//! Files: `scan.rs` (streaming scanner), `index.rs` (40-byte entries, sinks),
//! `uidl.rs` (popa3d digest and unique ids), `encode.rs` (RETR/TOP encoder),
//! `file.rs` (safe open, stamps, chunked reads), `lock.rs` (lock policy; the
//! libc calls are in `sys::lock`), `verify.rs` (change detection),
//! `expunge.rs` (compaction).
//!
//! Usage by a session: `open` once after login (takes a shared lock while
//! scanning); `verify` before and after sending each message's data with
//! `read_data` + [`Encoder`]; `expunge` at QUIT. No lock is held in between.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::config::MailboxLimits;
use crate::sys::lock::LockKind;

mod encode;
mod expunge;
mod file;
pub mod index;
mod lock;
pub mod scan;
mod uidl;
mod verify;

#[cfg(test)]
mod tests;

pub use encode::Encoder;

use file::{FeedError, Stamp};
use index::{Index, IndexSink};
use scan::Scanner;

/// A unique id of a message, as sent by UIDL (at most 70 printable characters).
pub type Uid = heapless::String<72>;

/// Why a mailbox could not be used.
#[derive(Debug)]
pub enum MboxError {
    /// The file is not a usable mbox (bad format, over a limit, not a regular
    /// file): a permanent refusal. The text names the file and the reason.
    Refused(String),
    /// Another program holds the lock and did not release it in time.
    InUse,
    /// The file changed underneath the session in a way other than an append.
    Changed,
    /// An I/O error.
    Io(io::Error),
}

impl fmt::Display for MboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MboxError::Refused(why) => f.write_str(why),
            MboxError::InUse => f.write_str("mailbox is locked by another program"),
            MboxError::Changed => f.write_str("mailbox was changed by another program"),
            MboxError::Io(e) => write!(f, "mailbox I/O error: {e}"),
        }
    }
}

impl std::error::Error for MboxError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MboxError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for MboxError {
    fn from(e: io::Error) -> Self {
        MboxError::Io(e)
    }
}

/// What an expunge did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expunged {
    /// Messages removed.
    pub deleted: usize,
    /// Their total size (as LIST reports it).
    pub deleted_bytes: u64,
    /// Messages kept.
    pub kept: usize,
    /// Their total size.
    pub kept_bytes: u64,
}

/// An open, indexed mailbox.
#[derive(Debug)]
pub struct Mailbox {
    path: PathBuf,
    /// `None` when the file did not exist at open.
    file: Option<File>,
    index: Index,
    lock_wait: Duration,
    /// The file's stamp when the index was last confirmed, and when that was.
    stamp: Stamp,
    checked_at: SystemTime,
}

impl Mailbox {
    /// Opens and scans the mailbox at `path`. A missing file is an empty mailbox.
    ///
    /// Refused (with the path and reason): not a regular file (symlinks
    /// included), not starting with a From_ line, a message without data, over
    /// `limits.max_messages` or `limits.max_bytes`. A file that cannot be opened
    /// read-write is an I/O error. Holds a shared lock while scanning only.
    pub fn open(path: &Path, limits: &MailboxLimits) -> Result<Mailbox, MboxError> {
        let mut mailbox = Mailbox {
            path: path.to_path_buf(),
            file: None,
            index: Index::default(),
            lock_wait: limits.lock_wait,
            stamp: Stamp::default(),
            checked_at: SystemTime::now(),
        };
        let Some(file) = file::open_mailbox(path)? else {
            return Ok(mailbox);
        };
        let st = file::stamp(&file)?;
        if st.size == 0 {
            mailbox.stamp = st;
            mailbox.file = Some(file);
            return Ok(mailbox);
        }
        let held = lock::acquire(&file, LockKind::Shared, limits.lock_wait)?;
        // Taken before the stamp: see `verify::unchanged`.
        let checked_at = SystemTime::now();
        let st = file::stamp(&file)?;
        if st.size > limits.max_bytes {
            return Err(MboxError::Refused(format!(
                "{}: {} bytes is over the limit of {} bytes",
                path.display(),
                st.size,
                limits.max_bytes
            )));
        }
        let mut scanner = Scanner::new(IndexSink::new(limits.max_messages));
        let mut buf = file::scan_buffer();
        let scanned = match file::feed_range(&file, &mut scanner, &mut buf, st.size) {
            Ok(()) => scanner.finish(),
            Err(FeedError::Scan(e)) => Err(e),
            Err(FeedError::Io(e)) => return Err(MboxError::Io(e)),
            Err(FeedError::Short) => return Err(MboxError::Changed),
        };
        let mut entries = match scanned {
            Ok(sink) => sink.entries,
            Err(e) => {
                return Err(MboxError::Refused(format!("{}: {}", path.display(), e)));
            }
        };
        drop(held);
        entries.shrink_to_fit();
        mailbox.index = Index {
            dups: uidl::find_dups(&entries),
            entries,
            end: st.size,
        };
        mailbox.stamp = st;
        mailbox.checked_at = checked_at;
        mailbox.file = Some(file);
        Ok(mailbox)
    }

    /// The path the mailbox was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of messages (numbering is 0-based here; POP3 adds 1).
    pub fn count(&self) -> usize {
        self.index.entries.len()
    }

    /// Octets RETR sends for message `i` before the terminating `.` line, dot-stuffing not counted.
    ///
    /// Panics if `i >= count()` (as do the other per-message methods).
    pub fn size(&self, i: usize) -> u64 {
        self.index.entries[i].size
    }

    /// Sum of all message sizes.
    pub fn total_size(&self) -> u64 {
        self.index.entries.iter().map(|e| e.size).sum()
    }

    /// Unique id of message `i`.
    pub fn uid(&self, i: usize) -> Uid {
        uidl::format(&self.index.entries[i], self.index.dup(i))
    }

    /// Stored bytes of message `i`'s data (what [`Mailbox::read_data`] can return).
    pub fn data_len(&self, i: usize) -> u64 {
        self.index.entries[i].data_len
    }

    /// Checks that the indexed part of the file is unchanged (appends are fine).
    ///
    /// Cheap when the file's size and mtime are as last confirmed and the mtime
    /// is over a second older than that confirmation; otherwise re-scans the
    /// indexed bytes under a shared lock ([`MboxError::InUse`] if it cannot be
    /// had in time). Appended messages stay invisible.
    pub fn verify(&mut self) -> Result<(), MboxError> {
        let Some(file) = self.file.as_ref() else {
            return Ok(());
        };
        let now = file::stamp(file)?;
        if now.size < self.index.end {
            return Err(MboxError::Changed);
        }
        if verify::unchanged(&self.stamp, &now, self.checked_at) {
            return Ok(());
        }
        let held = lock::acquire(file, LockKind::Shared, self.lock_wait)?;
        let (st, at) = verify::rescan(file, &self.index)?;
        drop(held);
        self.stamp = st;
        self.checked_at = at;
        Ok(())
    }

    /// Reads stored data of message `i` from `offset` within the message.
    ///
    /// Returns 0 at the end of the data. Call [`Mailbox::verify`] before and
    /// after sending a message; this read takes no lock.
    pub fn read_data(&self, i: usize, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let e = &self.index.entries[i];
        if offset >= e.data_len || buf.is_empty() {
            return Ok(0);
        }
        let Some(file) = self.file.as_ref() else {
            return Ok(0);
        };
        let want = (e.data_len - offset).min(buf.len() as u64) as usize;
        loop {
            match file.read_at(&mut buf[..want], e.data_start() + offset) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "mailbox is shorter than its index",
                    ));
                }
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Removes the messages marked in `deleted` (indexed like messages), in place.
    ///
    /// Marks past `count()` are ignored; missing marks mean "keep". With nothing
    /// marked the file is not touched at all. Otherwise: exclusive lock, the
    /// [`Mailbox::verify`] check, compaction that keeps mail appended during the
    /// session, truncate, fsync, unlock. Afterwards the mailbox describes the
    /// new file (ids of former duplicates may become plain popa3d ids).
    pub fn expunge(&mut self, deleted: &[bool]) -> Result<Expunged, MboxError> {
        let is_deleted = |i: usize| deleted.get(i).copied().unwrap_or(false);
        let mut done = Expunged::default();
        for (i, e) in self.index.entries.iter().enumerate() {
            if is_deleted(i) {
                done.deleted += 1;
                done.deleted_bytes += e.size;
            } else {
                done.kept += 1;
                done.kept_bytes += e.size;
            }
        }
        if done.deleted == 0 {
            return Ok(done);
        }
        let Some(file) = self.file.as_ref() else {
            return Ok(done); // unreachable: messages imply a file
        };
        let held = lock::acquire(file, LockKind::Exclusive, self.lock_wait)?;
        let now = file::stamp(file)?;
        if now.size < self.index.end {
            return Err(MboxError::Changed);
        }
        if !verify::unchanged(&self.stamp, &now, self.checked_at) {
            verify::rescan(file, &self.index)?;
        }
        expunge::compact(file, &mut self.index, is_deleted, now.size)?;
        let at = SystemTime::now();
        let st = file::stamp(file)?;
        drop(held);
        self.index.dups = uidl::find_dups(&self.index.entries);
        self.stamp = st;
        self.checked_at = at;
        Ok(done)
    }
}
