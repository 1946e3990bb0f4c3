//! The mailbox lock policy: take a whole-file OFD lock, retrying with short
//! sleeps up to [`MailboxLimits::lock_wait`](crate::config::MailboxLimits),
//! and drop it when the guard goes out of scope.
//!
//! Locks are held only while scanning, verifying or expunging, never while a
//! session is idle. This is the place where dot-locking (`mailbox.lock`, taken
//! after the fcntl lock as Debian policy requires) will be added.

use std::fs::File;
use std::time::{Duration, Instant};

use super::MboxError;
use crate::sys::lock::{self, LockKind};

/// First pause between attempts; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(5);
/// Longest pause between attempts.
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// A held lock; dropping it unlocks the file.
#[derive(Debug)]
pub(crate) struct Held<'a> {
    file: &'a File,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // Nothing useful can be done if unlocking fails: the lock goes away
        // with the descriptor at the latest.
        let _ = lock::unlock(self.file);
    }
}

/// Locks `file`, waiting at most `wait` for a conflicting lock to go away.
///
/// This sleeps (blocking the calling thread) for at most `wait` plus one pause.
/// A sliced caller can later use [`try_acquire`] from a timer instead.
pub(crate) fn acquire(file: &File, kind: LockKind, wait: Duration) -> Result<Held<'_>, MboxError> {
    let start = Instant::now();
    let mut pause = FIRST_PAUSE;
    loop {
        if let Some(held) = try_acquire(file, kind)? {
            return Ok(held);
        }
        let spent = start.elapsed();
        if spent >= wait {
            return Err(MboxError::InUse);
        }
        std::thread::sleep(pause.min(wait - spent));
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// One attempt without waiting: `Ok(None)` when someone else holds a lock.
pub(crate) fn try_acquire(file: &File, kind: LockKind) -> Result<Option<Held<'_>>, MboxError> {
    if lock::try_lock(file, kind).map_err(MboxError::Io)? {
        Ok(Some(Held { file }))
    } else {
        Ok(None)
    }
}
