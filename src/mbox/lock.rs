//! The mailbox lock policy: one non-blocking attempt at a time, retried by the
//! caller (an opening or an expunge step) until a deadline, never sleeping.
//!
//! The locks, taken in Debian policy's order (fcntl first, then the dotlock)
//! and released in reverse:
//! - a whole-file OFD fcntl lock, shared for reading, exclusive for expunge;
//! - optionally (`MailboxLimits::flock`) a `flock(2)` lock of the same kind;
//! - optionally (`MailboxLimits::dotlock`, on by default) `SPOOL/USER.lock`.
//!
//! If a later lock is busy the earlier ones are dropped again before the
//! attempt reports [`Try::Busy`], so we never hold the fcntl lock while
//! waiting for a dotlock that its holder (procmail takes the dotlock first)
//! may be waiting to complete with the fcntl lock.
//!
//! Locks are held only while scanning or expunging, never while a session is
//! idle. The guard keeps a duplicate of the descriptor (same open file
//! description, so the same OFD and flock locks), so it needs no borrow.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::MboxError;
use super::dotlock::{DotTry, Dotlock};
use crate::config::{LOCK_RETRY, MailboxLimits};
use crate::sys::lock::{self, LockKind};

/// Held locks; dropping the value releases all of them.
#[derive(Debug)]
pub(crate) struct Held {
    file: File,
    flock: bool,
    dot: Option<Dotlock>,
}

impl Held {
    /// Keeps a held dotlock fresh during a long operation (cheap to call often).
    pub(crate) fn refresh(&mut self) {
        if let Some(dot) = self.dot.as_mut() {
            dot.refresh();
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // Reverse order of taking. Nothing useful can be done if unlocking
        // fails: the locks go away with the descriptor at the latest.
        self.dot = None;
        if self.flock {
            let _ = lock::unflock(&self.file);
        }
        let _ = lock::unlock(&self.file);
    }
}

/// The result of one attempt.
#[derive(Debug)]
pub(crate) enum Try {
    /// Every configured lock is ours.
    Held(Held),
    /// Another program holds one of them; nothing is held now.
    Busy,
}

/// Set once the first time a dotlock could not be made, so that this is
/// logged once per process and not per session.
static DOTLOCK_WARNED: AtomicBool = AtomicBool::new(false);

/// One attempt to lock the mailbox `file` (at `path`) for `kind`.
pub(crate) fn try_acquire(
    file: &File,
    path: &Path,
    kind: LockKind,
    limits: &MailboxLimits,
) -> Result<Try, MboxError> {
    if !lock::try_lock(file, kind)? {
        return Ok(Try::Busy);
    }
    let mut held = Held {
        file: file.try_clone()?,
        flock: false,
        dot: None,
    };
    if limits.flock {
        if !lock::try_flock(file, kind)? {
            return Ok(Try::Busy);
        }
        held.flock = true;
    }
    if limits.dotlock {
        match Dotlock::try_lock(path) {
            DotTry::Held(dot) => held.dot = Some(dot),
            DotTry::Busy => return Ok(Try::Busy),
            DotTry::Unavailable(e) => {
                // Missing access is said once (it lasts); a full disk or
                // quota every time.
                let lasting = super::file::spool_error_lasts(&e);
                if !lasting || !DOTLOCK_WARNED.swap(true, Ordering::Relaxed) {
                    crate::notice!(
                        "cannot create dotlock {}: {e}; using fcntl locks only{}",
                        super::dotlock::lock_path(path).display(),
                        super::file::spool_hint(&e)
                    );
                }
            }
        }
    }
    Ok(Try::Held(held))
}

/// When to give up waiting for a lock.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline(Instant);

impl Deadline {
    /// `wait` from now.
    pub(crate) fn after(wait: Duration) -> Deadline {
        Deadline(Instant::now() + wait)
    }

    /// How long to wait before the next attempt, or [`MboxError::InUse`] when
    /// the deadline has passed.
    pub(crate) fn retry(&self) -> Result<Duration, MboxError> {
        let left = self.0.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(MboxError::InUse)
        } else {
            Ok(left.min(LOCK_RETRY))
        }
    }
}
