//! The mailbox engine: an mbox file scanned into a compact message index by a
//! streaming scanner, popa3d-compatible UIDLs, the RETR/TOP encoder (LF to CRLF,
//! dot-stuffing), locking, change detection and in-place expunge.
//!
//! The caller opens nothing itself: [`Mailbox::open`] takes the path and must be
//! called with the file-system identity of the mailbox's user already in force.

use std::fmt;
use std::io;
use std::path::Path;

use crate::config::MailboxLimits;

mod encode;
pub mod index;
pub mod scan;
mod uidl;

pub use encode::Encoder;

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
        let _ = f;
        todo!("mbox helper")
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
pub struct Mailbox {}

impl Mailbox {
    /// Opens and scans the mailbox at `path`. A missing file is an empty mailbox.
    pub fn open(path: &Path, limits: &MailboxLimits) -> Result<Mailbox, MboxError> {
        let _ = (path, limits);
        todo!("mbox helper")
    }
    /// Number of messages (numbering is 0-based here; POP3 adds 1).
    pub fn count(&self) -> usize {
        todo!("mbox helper")
    }
    /// Octets RETR sends for message `i` before the terminating `.` line, dot-stuffing not counted.
    pub fn size(&self, i: usize) -> u64 {
        let _ = i;
        todo!("mbox helper")
    }
    /// Unique id of message `i`.
    pub fn uid(&self, i: usize) -> Uid {
        let _ = i;
        todo!("mbox helper")
    }
    /// Stored bytes of message `i`'s data (what [`Mailbox::read_data`] can return).
    pub fn data_len(&self, i: usize) -> u64 {
        let _ = i;
        todo!("mbox helper")
    }
    /// Checks that the indexed part of the file is unchanged (appends are fine).
    pub fn verify(&mut self) -> Result<(), MboxError> {
        todo!("mbox helper")
    }
    /// Reads stored data of message `i` from `offset` within the message.
    pub fn read_data(&self, i: usize, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let _ = (i, offset, buf);
        todo!("mbox helper")
    }
    /// Removes the messages marked in `deleted` (indexed like messages), in place.
    pub fn expunge(&mut self, deleted: &[bool]) -> Result<Expunged, MboxError> {
        let _ = deleted;
        todo!("mbox helper")
    }
}
