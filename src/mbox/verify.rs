//! Change detection: is the indexed part of the mailbox still what the index
//! says? Appends (new messages after the indexed end) are fine and stay
//! invisible; anything else is [`MboxError::Changed`]. Every check here is
//! cheap: its cost does not grow with the mailbox.
//!
//! - **Quiet stamp** ([`quiet`]): size, mtime and ctime as confirmed, and
//!   the later of mtime and ctime older than the moment of confirmation by
//!   more than a timestamp tick (50 ms where timestamps have nanoseconds, 2 s
//!   where they do not), so that a later write cannot have left the same
//!   stamp behind. Nothing is read. Stricter than popa3d's "mtime unchanged".
//! - **Spot check** ([`spot_check`]): otherwise the last message, the first
//!   one and [`SPOT_CHECK_MESSAGES`] messages picked at random (with a
//!   per-process random key, so a writer cannot know which) are re-scanned
//!   and must give the same entries (offsets, sizes, UIDL digest, data
//!   sum: of all data where the UIDL uses it, else of the header lines); of
//!   a message larger than [`SPOT_CHECK_BYTES`] only the From_ line and the
//!   separator before it are checked.
//! - **Cut points** ([`cut_points`]): before an expunge, a From_ line must
//!   still start, after a separator, wherever the compaction cuts, so that it
//!   can never cut through a message.
//! - **Appended mail** ([`appended_start`]): it must start a new message where
//!   a fresh scan would start one (see [`Tail`]).
//!
//! What these cheap checks miss (documented limits): an edit that keeps the
//! file size, made within the same clock tick as our confirmation; and, when
//! the stamp did change, a same-length edit inside a message not sampled,
//! or inside the body of a sampled message whose UIDL is popa3d's (its
//! lines keep their lengths). None can make an expunge cut through a
//! message (the cut points are always checked), and RETR then serves the
//! edited bytes, as popa3d and Dovecot do for every same-length edit.

use std::fs::File;
use std::hash::BuildHasher;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::MboxError;
use super::file::{FeedError, Stamp, feed_range, read_upto};
use super::index::{Index, VerifySink};
use super::scan::{APPEND_PROBE, Appended, Scanner, Tail};
use crate::config::{SCAN_CHUNK, SPOT_CHECK_BYTES, SPOT_CHECK_MESSAGES};

/// Nanoseconds since the epoch (0 for times before it).
fn epoch_ns(t: SystemTime) -> i128 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// How much older than the confirmation a stamp must be to be trusted. A
/// write gets the file system's current time rounded down to its timestamp
/// granularity: a kernel clock tick (at most 10 ms) where timestamps carry
/// nanoseconds, a second or two (FAT) where they do not. Once the tick of
/// the stamp has passed, any later write shows as a different stamp.
fn margin_ns(st: &Stamp) -> i128 {
    if st.mtime_nsec != 0 || st.ctime_nsec != 0 {
        50_000_000
    } else {
        2_000_000_000
    }
}

/// True if the file, now stamped `now`, can be trusted to be unchanged since it
/// was confirmed with stamp `seen`, taken just after the moment `checked_at`.
///
/// Any write after `checked_at` gets an mtime and ctime of `checked_at` or
/// later (less a timestamp tick, see [`margin_ns`]), so when `seen`'s are
/// older than `checked_at` by more than that, such a write cannot have left
/// the same stamp behind. popa3d's equivalent is a one-second lock hold.
pub fn quiet(seen: &Stamp, now: &Stamp, checked_at: SystemTime) -> bool {
    seen == now && now.changed_ns() + margin_ns(now) <= epoch_ns(checked_at)
}

/// A random number (a per-process random key hashing a counter): not for
/// cryptography, but unpredictable to another process.
pub(crate) fn random_u64() -> u64 {
    static KEY: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    static N: AtomicU64 = AtomicU64::new(0);
    KEY.get_or_init(Default::default)
        .hash_one(N.fetch_add(1, Ordering::Relaxed))
}

/// Re-checks message `i` of `index` (see the module documentation).
fn check_message(file: &File, index: &Index, i: usize, buf: &mut [u8]) -> Result<bool, MboxError> {
    let e = &index.entries[i];
    let end = index.raw_end(i);
    if !from_line_at(file, e.raw_start, u64::from(e.from_len))? {
        return Ok(false);
    }
    if end - e.raw_start > SPOT_CHECK_BYTES {
        return Ok(true);
    }
    let mut scanner = Scanner::at(VerifySink::new(std::slice::from_ref(e)), e.raw_start);
    match feed_range(file, &mut scanner, buf, end) {
        Ok(()) => Ok(scanner.finish().is_ok_and(|s| s.complete())),
        Err(FeedError::Io(e)) => Err(MboxError::Io(e)),
        Err(FeedError::Short) | Err(FeedError::Scan(_)) => Ok(false),
    }
}

/// True if a From_ line of `from_len` bytes (LF included) starts at `offset`,
/// at the start of the file or after an empty line (`\n` or `\r\n`).
pub fn from_line_at(file: &File, offset: u64, from_len: u64) -> Result<bool, MboxError> {
    let before = offset.min(3);
    let mut b = [0u8; 8];
    let want = before as usize + 5;
    if read_upto(file, &mut b[..want], offset - before)? < want {
        return Ok(false);
    }
    let (pre, head) = b[..want].split_at(before as usize);
    if head != b"From " {
        return Ok(false);
    }
    let sep = matches!(pre, [] | [.., b'\n', b'\n'] | [b'\n', b'\r', b'\n']);
    if !sep {
        return Ok(false);
    }
    if from_len < 6 {
        return Ok(false); // "From " and at least the LF
    }
    let mut lf = [0u8; 1];
    Ok(read_upto(file, &mut lf, offset + from_len - 1)? == 1 && lf[0] == b'\n')
}

/// Spot-checks the indexed part of `file` against `index` (see the module
/// documentation): [`MboxError::Changed`] if anything differs.
pub fn spot_check(file: &File, index: &Index) -> Result<(), MboxError> {
    let n = index.entries.len();
    if n == 0 {
        return Ok(());
    }
    let mut buf = vec![0u8; SCAN_CHUNK];
    let mut picks = vec![n - 1, 0];
    for _ in 0..SPOT_CHECK_MESSAGES.min(n) {
        picks.push((random_u64() % n as u64) as usize);
    }
    picks.sort_unstable();
    picks.dedup();
    for i in picks {
        if !check_message(file, index, i, &mut buf)? {
            return Err(MboxError::Changed);
        }
    }
    Ok(())
}

/// Checks that a From_ line still starts, after a separator, at each message
/// `i` for which `cut(i)` is true ([`MboxError::Changed`] if not). The caller
/// passes the messages where a compaction starts or stops copying.
pub fn cut_points(
    file: &File,
    index: &Index,
    cut: impl Fn(usize) -> bool,
) -> Result<(), MboxError> {
    for (i, e) in index.entries.iter().enumerate() {
        if cut(i) && !from_line_at(file, e.raw_start, u64::from(e.from_len))? {
            return Err(MboxError::Changed);
        }
    }
    Ok(())
}

/// What mail appended after the indexed end of a file now `size` bytes long
/// is (see [`Appended`]); [`Appended::Undecided`] also when nothing was
/// appended.
pub fn appended(file: &File, index: &Index, size: u64) -> Result<Appended, MboxError> {
    if size <= index.end {
        return Ok(Appended::Undecided);
    }
    let mut probe = [0u8; APPEND_PROBE];
    let want = (size - index.end).min(APPEND_PROBE as u64) as usize;
    let n = read_upto(file, &mut probe[..want], index.end)?;
    let tail: Tail = index.tail;
    Ok(tail.judge(&probe[..n]))
}

/// Where mail appended after the indexed end starts, for a file now `size`
/// bytes long, if it starts a new message as a fresh scan would see it
/// (the caller holds a lock, so nobody is in the middle of appending).
pub fn appended_start(file: &File, index: &Index, size: u64) -> Result<Option<u64>, MboxError> {
    Ok(match appended(file, index, size)? {
        Appended::Starts(lead) => Some(index.end + lead as u64),
        Appended::Undecided | Appended::Continues => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn quiet_needs_an_old_stamp() {
        let seen = Stamp {
            size: 10,
            mtime_sec: 1_700_000_000,
            mtime_nsec: 500,
            ctime_sec: 1_700_000_000,
            ctime_nsec: 500,
        };
        let at = UNIX_EPOCH + Duration::new(1_700_000_000, 40_000_000);
        assert!(!quiet(&seen, &seen, at));
        let at = UNIX_EPOCH + Duration::new(1_700_000_000, 60_000_000);
        assert!(quiet(&seen, &seen, at));
        // Whole-second timestamps: two seconds.
        let coarse = Stamp {
            mtime_nsec: 0,
            ctime_nsec: 0,
            ..seen
        };
        let at = UNIX_EPOCH + Duration::new(1_700_000_001, 900_000_000);
        assert!(!quiet(&coarse, &coarse, at));
        let at = UNIX_EPOCH + Duration::new(1_700_000_002, 0);
        assert!(quiet(&coarse, &coarse, at));
        let grown = Stamp { size: 11, ..seen };
        assert!(!quiet(&seen, &grown, at));
        // A restored mtime still shows in the ctime.
        let touched = Stamp {
            ctime_sec: 1_700_000_005,
            ..seen
        };
        assert!(!quiet(&seen, &touched, at));
        assert!(!quiet(&touched, &touched, at));
        // An mtime set back, older than the confirmed one: not the same file.
        let back = Stamp {
            mtime_sec: 1_600_000_000,
            ..seen
        };
        assert!(!quiet(&seen, &back, at));
    }
}
