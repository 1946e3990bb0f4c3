//! Scanning one large mailbox on several CPUs: the bytes to scan are cut at
//! separators into parts; the opening's own scanner (on the event loop, in
//! bounded slices) takes the first part, helper threads take the others,
//! each with a scanner of its own, and the parts' entries are joined in file
//! order.
//!
//! Why the parts give the same index as one scan: a cut is made only at a
//! `From ` line that follows an empty line (`\n\nFrom ` or `\n\r\nFrom `).
//! That line is always a separator, and a scanner started there
//! ([`Scanner::at`]) goes on exactly as one that arrived there from the
//! start of the file; a scanner finished just before it handles the empty
//! line as it handles one before a separator. (The folder-internal-data
//! pseudo-message can only be the first message, which is in the first
//! part.) Every part's sink counts messages in one shared count, so
//! together the parts refuse more than the message limit.
//!
//! The helpers only read, with `pread` on their own duplicate of the
//! descriptor, while the opening holds the mailbox lock: the opening keeps
//! the lock until every helper has finished. Dropping [`Helpers`] (the
//! session went away) tells the helpers to stop after their current slice.
//! Helpers in the whole process are bounded ([`SCAN_HELPERS_MAX`]); when
//! none is free, or a thread cannot be started, the scan stays whole on the
//! event loop.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};

use super::file::{self, FeedError};
use super::index::{Entry, IndexSink};
use super::scan::{Scanner, Tail};
use crate::budget::{Budget, Lease};
use crate::config::{
    MailboxLimits, SCAN_BUDGET, SCAN_CHUNK, SCAN_HELPERS_MAX, SCAN_THREADS_AUTO_MAX,
};

/// Bytes read after a nominal cut to find a separator there.
const PROBE: usize = 64 * 1024;
/// Stack of a helper thread (a scanner and a few frames; the read buffer
/// is on the heap).
const HELPER_STACK: usize = 256 * 1024;

/// Helper threads running now, in the whole process.
static HELPERS: Budget = Budget::new(SCAN_HELPERS_MAX);

/// Helper threads running now in the process (for tests).
#[cfg(test)]
pub fn running() -> usize {
    HELPERS.in_use()
}

/// What a finished part found.
#[derive(Debug)]
pub struct Part {
    /// Its messages, in file order.
    pub entries: Vec<Entry>,
    /// What bytes appended after it would have to look like (meaningful
    /// for the last part only).
    pub tail: Tail,
}

#[derive(Debug)]
struct Helper {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Result<Part, FeedError>>,
}

/// The helpers of one scan: every part but the first.
#[derive(Debug)]
pub struct Helpers {
    /// Where the first part (the caller's) ends.
    first_end: u64,
    /// Messages found by every part, the caller's included.
    count: Arc<AtomicUsize>,
    helpers: Vec<Helper>,
}

/// Offset of the `F` of the first `\n\nFrom ` or `\n\r\nFrom ` in `bytes`.
pub fn first_cut(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(p) = bytes[at..].windows(5).position(|w| w == b"From ") {
        let f = at + p;
        let before = &bytes[..f];
        if before.ends_with(b"\n\n") || before.ends_with(b"\n\r\n") {
            return Some(f);
        }
        at = f + 1;
    }
    None
}

/// How many threads a scan of `len` bytes may use under `limits`.
fn threads_for(limits: &MailboxLimits, len: u64) -> usize {
    let by_size = usize::try_from(len / limits.scan_part_min.max(1)).unwrap_or(usize::MAX);
    if by_size < 2 || limits.scan_threads == 1 {
        // (Without asking the system how many CPUs there are.)
        return 1;
    }
    let wanted = match limits.scan_threads {
        0 => thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(SCAN_THREADS_AUTO_MAX),
        n => n,
    };
    wanted.min(by_size)
}

/// Cuts for `[from, to)` into at most `parts` parts: separators found
/// after evenly spaced offsets, in increasing order.
fn cuts(file: &File, from: u64, to: u64, parts: usize) -> io::Result<Vec<u64>> {
    let mut cuts = Vec::new();
    let mut buf = vec![0; PROBE];
    let step = (to - from) / parts as u64;
    for k in 1..parts as u64 {
        let at = (from + k * step).max(cuts.last().map_or(0, |&c| c + 1));
        let want = (to - at).min(PROBE as u64) as usize;
        file.read_exact_at(&mut buf[..want], at)?;
        if let Some(p) = first_cut(&buf[..want]) {
            cuts.push(at + p as u64);
        }
    }
    Ok(cuts)
}

impl Helpers {
    /// Splits `[from, to)` of `file` and starts a helper for every part but
    /// the first, their sinks counting messages up to `limits.max_messages`
    /// in one count that starts at `held` (the entries the caller's sink
    /// already holds; it must share [`Helpers::count`]). None when the scan
    /// stays whole: too small, one thread, no helper free, no separator near
    /// the cuts (or the file shorter than `to`), or a helper could not be
    /// started (nothing is left running then).
    pub fn start(
        file: &File,
        from: u64,
        to: u64,
        limits: &MailboxLimits,
        held: usize,
    ) -> Option<Helpers> {
        let threads = threads_for(limits, to.saturating_sub(from));
        if threads < 2 {
            return None;
        }
        let mut slots: Vec<Lease> = (1..threads).map_while(|_| HELPERS.take()).collect();
        if slots.is_empty() {
            return None;
        }
        let cuts = match cuts(file, from, to, slots.len() + 1) {
            Ok(c) if !c.is_empty() => c,
            _ => return None,
        };
        slots.truncate(cuts.len());
        let mut helpers = Helpers {
            first_end: cuts[0],
            count: Arc::new(AtomicUsize::new(held)),
            helpers: Vec::with_capacity(cuts.len()),
        };
        let ends = cuts.iter().skip(1).copied().chain([to]);
        for ((start, end), slot) in cuts.iter().copied().zip(ends).zip(slots) {
            let stop = Arc::new(AtomicBool::new(false));
            let mut sink = IndexSink::new(limits.max_messages);
            sink.share(Arc::clone(&helpers.count));
            let spawned = file.try_clone().and_then(|f| {
                let stop = Arc::clone(&stop);
                thread::Builder::new()
                    .name("scan".into())
                    .stack_size(HELPER_STACK)
                    .spawn(move || {
                        let _slot = slot;
                        scan_part(&f, Scanner::at(sink, start), end, &stop)
                    })
            });
            match spawned {
                Ok(handle) => helpers.helpers.push(Helper { stop, handle }),
                // Dropping `helpers` stops those already started.
                Err(_) => return None,
            }
        }
        Some(helpers)
    }

    /// Where the caller's part ends: scan up to here, then [`Helpers::poll`].
    pub fn first_end(&self) -> u64 {
        self.first_end
    }

    /// The message count the caller's sink must share.
    pub fn count(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.count)
    }

    /// The helpers' parts in file order once every helper is done (the
    /// helpers are then gone); None while one still runs. The first failure
    /// in file order is the error.
    pub fn poll(&mut self) -> Option<Result<Vec<Part>, FeedError>> {
        if self.helpers.iter().any(|h| !h.handle.is_finished()) {
            return None;
        }
        let mut parts = Vec::with_capacity(self.helpers.len());
        for h in self.helpers.drain(..) {
            match h.handle.join() {
                Ok(Ok(part)) => parts.push(part),
                Ok(Err(e)) => return Some(Err(e)),
                Err(_) => return Some(Err(FeedError::Io(io::Error::other("scan helper failed")))),
            }
        }
        Some(Ok(parts))
    }
}

impl Drop for Helpers {
    fn drop(&mut self) {
        for h in &self.helpers {
            h.stop.store(true, Ordering::Relaxed);
        }
    }
}

/// A helper's work: `[scanner.pos(), end)`, a slice at a time.
fn scan_part(
    file: &File,
    mut scanner: Scanner<IndexSink>,
    end: u64,
    stop: &AtomicBool,
) -> Result<Part, FeedError> {
    let mut buf = vec![0; SCAN_CHUNK];
    while scanner.pos() < end {
        if stop.load(Ordering::Relaxed) {
            return Err(FeedError::Io(io::Error::other("scan abandoned")));
        }
        file::feed_some(file, &mut scanner, &mut buf, end, SCAN_BUDGET as u64)?;
    }
    let tail = scanner.tail();
    let sink = scanner.finish().map_err(FeedError::Scan)?;
    Ok(Part {
        entries: sink.entries,
        tail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_only_after_an_empty_line() {
        assert_eq!(first_cut(b"x\n\nFrom a"), Some(3));
        assert_eq!(first_cut(b"x\r\n\r\nFrom a"), Some(5));
        assert_eq!(first_cut(b"\n\nFrom "), Some(2));
        assert_eq!(first_cut(b"From a\nFrom b\n>From c\n\nFromage\n"), None);
        assert_eq!(first_cut(b"a\nFrom b\n\n From c\n\nFrom d"), Some(19));
        // Not a cut: "\r\n" is an empty line only after a line end.
        assert_eq!(first_cut(b"a\r\nFrom b"), None);
        assert_eq!(first_cut(b"\n\nFrom"), None);
    }
}
