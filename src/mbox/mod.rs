//! The mailbox engine: an mbox file scanned into a compact message index by a
//! streaming scanner, popa3d-compatible unique UIDLs, the RETR/TOP encoder
//! (LF to CRLF, dot-stuffing), locking (fcntl, dotlock, optional flock),
//! change detection, an index cache (in the daemon's memory and in a file next
//! to the mailbox), and crash-safe in-place expunge.
//!
//! The caller opens nothing itself: [`Opening::start`] (or the blocking
//! convenience [`Mailbox::open`]) takes the path and must be called with the
//! file-system identity of the mailbox's user already in force; so must each
//! later [`Opening::step`] and each expunge step (they create and remove the
//! dotlock and the journal in the spool directory).
//!
//! Files: `open.rs` (bounded, resumable opening), `scan.rs` (streaming
//! scanner), `index.rs` (40-byte entries, sinks), `uidl.rs` (popa3d digest and
//! unique ids), `sums.rs` (the data sums those ids need, read after the
//! scan), `parallel.rs` (a long scan shared with helper threads),
//! `retired.rs` (ids of deleted messages), `cache.rs` (index
//! cache in memory), `stored.rs` (index file next to the mailbox),
//! `encode.rs` (RETR/TOP encoder), `file.rs` (safe open, stamps, chunked
//! reads), `lock.rs` (lock policy), `dotlock.rs` (`USER.lock`),
//! `verify.rs` (change detection), `expunge.rs` (expunge steps), `journal.rs`
//! (crash-safe compaction).
//!
//! Usage by a session: open once after login (a shared lock is held while
//! scanning only); [`Mailbox::verify`] before and after sending each
//! message's data with [`Mailbox::read_data`] + [`Encoder`]; at QUIT
//! [`Mailbox::expunge_start`] and [`Mailbox::expunge_step`] until done; at the
//! end [`Mailbox::into_cache`]. No lock is held in between, and no call ever
//! sleeps except the blocking conveniences [`Mailbox::open`] and
//! [`Mailbox::expunge`].

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::config::{EXPUNGE_BUDGET, MailboxLimits, SCAN_BUDGET};

mod cache;
mod dotlock;
mod encode;
mod expunge;
mod file;
pub mod index;
mod journal;
mod lock;
pub mod md5lanes;
mod open;
mod parallel;
mod retired;
pub mod scan;
mod stored;
mod sums;
mod uidl;
mod verify;

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod tests;

pub use cache::IndexCache;
pub use encode::Encoder;
pub use expunge::ExpungeStep;
pub use open::{Opening, Step};

use file::{FileId, Stamp};
use index::Index;
use uidl::Retired;

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
    id: FileId,
    owner: (u32, u32),
    index: Index,
    retired: Retired,
    limits: MailboxLimits,
    /// The file's stamp when the index was last confirmed, and when that was.
    stamp: Stamp,
    checked_at: SystemTime,
    /// The file changed underneath: every later check fails, and the index
    /// is not given to the cache.
    broken: bool,
    /// Mail appended after the index was seen to start a new message.
    append_ok: bool,
    /// Bytes the opening scanned (0 when a remembered index was used whole).
    scanned: u64,
    /// Parts that scan was cut into, each scanned by its own thread (0: no scan).
    scan_parts: usize,
    expunging: Option<Box<expunge::Expunging>>,
    /// The index file the opening started, written in steps after the
    /// mailbox was handed over ([`Mailbox::store_step`]), so that a client
    /// waiting for PASS's answer does not wait for it too.
    storing: Option<Box<stored::Writer>>,
}

impl Mailbox {
    /// An empty mailbox (no file, or an empty one).
    fn empty(path: &Path, limits: &MailboxLimits, file: Option<File>) -> Mailbox {
        Mailbox {
            path: path.to_path_buf(),
            file,
            id: FileId::default(),
            owner: (0, 0),
            index: Index::default(),
            retired: Retired::default(),
            limits: *limits,
            stamp: Stamp::default(),
            checked_at: SystemTime::now(),
            broken: false,
            append_ok: false,
            scanned: 0,
            scan_parts: 0,
            expunging: None,
            storing: None,
        }
    }

    /// Opens and scans the mailbox at `path`, blocking: a loop of
    /// [`Opening::step`] that sleeps while another program holds the lock.
    /// For tests and simple callers; the event loop uses [`Opening`].
    ///
    /// A missing file is an empty mailbox. Refused (with the path and
    /// reason): not a regular file (symlinks included), not starting with a
    /// From_ line, a message without data, over `limits.max_messages` or
    /// `limits.max_bytes`. A file that cannot be opened read-write is an
    /// I/O error. [`MboxError::InUse`] if the lock is not had within
    /// `limits.lock_wait`.
    pub fn open(path: &Path, limits: &MailboxLimits) -> Result<Mailbox, MboxError> {
        let mut mb = Opening::start(path, limits, None)?.finish_blocking(SCAN_BUDGET)?;
        while mb.store_step(SCAN_BUDGET) {}
        Ok(mb)
    }

    /// Like [`Mailbox::open`], using and refreshing `cache`.
    pub fn open_cached(
        path: &Path,
        limits: &MailboxLimits,
        cache: &mut IndexCache,
    ) -> Result<Mailbox, MboxError> {
        let mut mb = Opening::start(path, limits, Some(cache))?.finish_blocking(SCAN_BUDGET)?;
        while mb.store_step(SCAN_BUDGET) {}
        Ok(mb)
    }

    /// True while the index file the opening started is still being
    /// written: call [`Mailbox::store_step`] when there is nothing else to
    /// do, and until it says it is done.
    pub fn storing(&self) -> bool {
        self.storing.is_some()
    }

    /// Writes about `budget` bytes more of the index file the opening
    /// started; true while more remains. The file is given up (its
    /// temporary file removed) when the mailbox turned out changed
    /// underneath, and when an expunge starts, which writes its own.
    pub fn store_step(&mut self, budget: usize) -> bool {
        let Some(w) = self.storing.as_mut() else {
            return false;
        };
        if self.broken || w.advance(&self.index, budget) {
            self.storing = None;
            return false;
        }
        true
    }

    /// Gives up the index file the opening started (its temporary file is
    /// removed).
    pub fn store_give_up(&mut self) {
        self.storing = None;
    }

    /// Gives the index back to `cache` for the next session (the daemon calls
    /// this when a session ends, however it ended). Nothing is kept for a
    /// mailbox that changed underneath the session or whose expunge did not
    /// complete.
    pub fn into_cache(self, cache: &mut IndexCache) {
        if self.broken || self.expunging.is_some() || self.file.is_none() || self.stamp.size == 0 {
            return;
        }
        cache.put(cache::Cached::new(
            self.id,
            self.stamp,
            self.checked_at,
            self.index,
            self.retired,
        ));
    }

    /// The path the mailbox was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn entry(&self, i: usize) -> &index::Entry {
        &self.index.visible()[i]
    }

    /// Number of messages (numbering is 0-based here; POP3 adds 1).
    pub fn count(&self) -> usize {
        self.index.visible().len()
    }

    /// Octets RETR sends for message `i` before the terminating `.` line, dot-stuffing not counted.
    ///
    /// Panics if `i >= count()` (as do the other per-message methods).
    pub fn size(&self, i: usize) -> u64 {
        self.entry(i).size()
    }

    /// Sum of all message sizes.
    pub fn total_size(&self) -> u64 {
        self.index.visible().iter().map(|e| e.size()).sum()
    }

    /// Unique id of message `i`.
    pub fn uid(&self, i: usize) -> Uid {
        uidl::format(self.entry(i))
    }

    /// Stored bytes of message `i`'s data (what [`Mailbox::read_data`] can return).
    pub fn data_len(&self, i: usize) -> u64 {
        self.entry(i).data_len
    }

    /// Bytes of the file the opening read to index it: the whole file after a
    /// full scan, only mail appended since when a remembered index was used
    /// (spot checks aside), 0 for an unchanged remembered mailbox.
    pub fn scanned_bytes(&self) -> u64 {
        self.scanned
    }

    /// How many threads scanned those bytes, each its own part of them (1:
    /// the opening alone; 0: nothing scanned).
    pub fn scan_parts(&self) -> usize {
        self.scan_parts
    }

    /// True if the file's first message is UW IMAP's folder-internal-data
    /// pseudo-message, which is not shown.
    pub fn hides_pseudo_message(&self) -> bool {
        self.index.hidden_first
    }

    /// Checks that the indexed part of the file is unchanged (appends are fine).
    ///
    /// Takes no lock and never waits: nothing when the stamp is quiet (see
    /// `verify.rs`), otherwise a spot check of a bounded number of messages,
    /// after which the stamp counts as confirmed.
    /// Appended messages stay invisible. After [`MboxError::Changed`] every
    /// later call fails too.
    pub fn verify(&mut self) -> Result<(), MboxError> {
        if self.broken {
            return Err(MboxError::Changed);
        }
        let Some(file) = self.file.as_ref() else {
            return Ok(());
        };
        let at = SystemTime::now();
        let now = file::stamp(file)?;
        let result = if now.size < self.index.end {
            Err(MboxError::Changed)
        } else if verify::quiet(&self.stamp, &now, self.checked_at) {
            Ok(())
        } else {
            verify::spot_check(file, &self.index).and_then(|()| {
                // Appended mail must start a new message (judged once; a
                // writer still in the middle of it is given time).
                if self.append_ok || now.size == self.index.end {
                    return Ok(());
                }
                match verify::appended(file, &self.index, now.size)? {
                    scan::Appended::Starts(_) => {
                        self.append_ok = true;
                        Ok(())
                    }
                    scan::Appended::Undecided => Ok(()),
                    scan::Appended::Continues => Err(MboxError::Changed),
                }
            })
        };
        match result {
            // Confirmed (as far as the check goes): once the stamp is a tick
            // older than this moment, the next checks need not read anything.
            Ok(()) => {
                self.stamp = now;
                self.checked_at = at;
            }
            Err(MboxError::Changed) => self.broken = true,
            Err(_) => {}
        }
        result
    }

    /// Reads stored data of message `i` from `offset` within the message.
    ///
    /// Returns 0 at the end of the data. Call [`Mailbox::verify`] before and
    /// after sending a message; this read takes no lock.
    pub fn read_data(&self, i: usize, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let e = self.entry(i);
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

    /// Removes the messages marked in `deleted` (indexed like messages), in
    /// place, blocking: [`Mailbox::expunge_start`] and a loop of
    /// [`Mailbox::expunge_step`] that sleeps while another program holds the
    /// lock. For tests and simple callers; the event loop steps instead.
    pub fn expunge(&mut self, deleted: &[bool]) -> Result<Expunged, MboxError> {
        self.expunge_start(deleted);
        loop {
            match self.expunge_step(EXPUNGE_BUDGET)? {
                ExpungeStep::Done(done) => return Ok(done),
                ExpungeStep::Pending | ExpungeStep::Committed { .. } => {}
                ExpungeStep::Waiting(d) => std::thread::sleep(d),
            }
        }
    }
}

impl Opening {
    /// Steps to the end, `budget` bytes a step, sleeping while waiting for
    /// a lock.
    fn finish_blocking(mut self, budget: usize) -> Result<Mailbox, MboxError> {
        loop {
            match self.step(budget)? {
                Step::Done(mb) => return Ok(*mb),
                Step::Pending => {}
                Step::Waiting(d) => std::thread::sleep(d),
            }
        }
    }
}

/// Test support: bytes written so far by expunges and their recovery in this
/// process, as counted by the `POP3D_FAULT_EXPUNGE_AT` fault hook of debug
/// builds (0 in release builds).
#[doc(hidden)]
pub fn fault_bytes_written() -> u64 {
    journal::fault::written()
}
