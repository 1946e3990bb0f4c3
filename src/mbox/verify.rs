//! Change detection: is the indexed part of the mailbox still what the index
//! says? Appends (new messages after the indexed end) are fine and stay
//! invisible; anything else is [`MboxError::Changed`].
//!
//! The quick check trusts an unchanged (size, mtime) when the mtime is at least
//! a second older than the moment the index was last confirmed, so a later
//! write cannot have left the same mtime behind. Otherwise the indexed bytes
//! are re-scanned (under a lock the caller holds) and every entry — offsets,
//! sizes, UIDL digest, data digest — must come out the same; appended bytes
//! must begin a new message exactly where a fresh scan would begin one.

use std::fs::File;
use std::time::{SystemTime, UNIX_EPOCH};

use super::MboxError;
use super::file::{FeedError, Stamp, feed_range, scan_buffer, stamp};
use super::index::{Index, VerifySink};
use super::scan::{HEAD, Scanner};

/// Bytes after the indexed end that are scanned to see the next message start:
/// an optional empty line (`\r\n` at most) plus a classified From_ line head.
pub const APPEND_PROBE: u64 = 2 + HEAD as u64;

/// Nanoseconds since the epoch (0 for times before it).
fn epoch_ns(t: SystemTime) -> i128 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// True if the file, now stamped `now`, can be trusted to be unchanged since it
/// was confirmed with stamp `seen`, taken just after the moment `checked_at`.
///
/// Any write after `checked_at` gets an mtime of `checked_at` or later (less a
/// clock tick), so when `seen`'s mtime is at least a second older than
/// `checked_at`, such a write cannot have left the same mtime behind. This is
/// stricter than popa3d's "not in the current second" and needs no 1-second
/// lock hold. A writer that restores the mtime and keeps the size is missed
/// here (as by popa3d); the re-scan would catch it.
pub fn unchanged(seen: &Stamp, now: &Stamp, checked_at: SystemTime) -> bool {
    seen == now && now.mtime_ns() + 1_000_000_000 <= epoch_ns(checked_at)
}

/// Re-scans the indexed part of `file` (plus the start of any appended data)
/// and compares it with `index`. The caller holds a lock. Returns the stamp
/// the check was made against and when.
pub fn rescan(file: &File, index: &Index) -> Result<(Stamp, SystemTime), MboxError> {
    let at = SystemTime::now();
    let st = stamp(file).map_err(MboxError::Io)?;
    if st.size < index.end {
        return Err(MboxError::Changed);
    }
    let appended = st.size > index.end;
    let to = if appended {
        st.size.min(index.end + APPEND_PROBE)
    } else {
        index.end
    };
    let mut scanner = Scanner::new(VerifySink::new(&index.entries));
    let mut buf = scan_buffer();
    let complete = match feed_range(file, &mut scanner, &mut buf, to) {
        Err(FeedError::Io(e)) => return Err(MboxError::Io(e)),
        Err(FeedError::Short) => return Err(MboxError::Changed),
        // A fault found only in appended data does not concern this index.
        Err(FeedError::Scan(_)) => scanner.sink().complete(),
        Ok(()) if appended => scanner.sink().complete(),
        Ok(()) => scanner.finish().is_ok_and(|sink| sink.complete()),
    };
    if !complete {
        return Err(MboxError::Changed);
    }
    Ok((st, at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn quick_check_needs_an_old_mtime() {
        let seen = Stamp {
            size: 10,
            mtime_sec: 1_700_000_000,
            mtime_nsec: 500,
        };
        let at = UNIX_EPOCH + Duration::new(1_700_000_000, 999_999_999);
        assert!(!unchanged(&seen, &seen, at));
        let at = UNIX_EPOCH + Duration::new(1_700_000_001, 500);
        assert!(unchanged(&seen, &seen, at));
        let grown = Stamp { size: 11, ..seen };
        assert!(!unchanged(&seen, &grown, at));
    }
}
