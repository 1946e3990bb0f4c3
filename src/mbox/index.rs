//! The message index: one fixed-size [`Entry`] per message (40 bytes, no heap
//! allocation per message), plus the sinks the scanner feeds entries into —
//! [`IndexSink`] builds a new index (or extends a remembered one), never
//! growing past its message limit, and [`VerifySink`] compares a re-scan
//! against an existing index.
//!
//! An [`Index`] is plain data, so the index cache (`cache.rs`) keeps it across
//! sessions as it is.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::scan::{ScanError, ScanFault, Sink, Tail};

/// What the scanner learns about one message. Offsets are file offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Offset of the From_ line (the start of the message's raw bytes).
    pub raw_start: u64,
    /// Stored data bytes (after the From_ line, without the separator line).
    pub data_len: u64,
    /// Octets RETR sends before the final `.` line (dot-stuffing not
    /// counted) minus `data_len`: one per bare LF, 2 without a final LF.
    pub size_extra: u32,
    /// Length of the From_ line with its LF: data starts at `raw_start + from_len`.
    pub from_len: u32,
    /// First 8 bytes of popa3d's UIDL digest (MD5 of selected header lines).
    pub digest: [u8; 8],
    /// A 32-bit sum of the data ([`DataSum::entry_bytes`]). Where the UIDL
    /// uses it (`uid_k` above 0: it tells messages with the same digest
    /// apart), of all data bytes; otherwise of the header lines only (the
    /// bytes before the empty line that ends them), so that re-checks still
    /// notice a same-length header edit ([`Sink::whole_sum`]).
    ///
    /// [`DataSum::entry_bytes`]: super::scan::DataSum::entry_bytes
    pub data_sum: [u8; 4],
    /// Which of its candidate UIDLs the message has (0: popa3d's id; see
    /// `uidl.rs`). Assigned after scanning; the scanner leaves 0.
    pub uid_k: u32,
}

impl Entry {
    /// Offset of the first data byte.
    pub fn data_start(&self) -> u64 {
        self.raw_start + u64::from(self.from_len)
    }

    /// Octets RETR sends before the final `.` line, dot-stuffing not counted.
    pub fn size(&self) -> u64 {
        self.data_len + u64::from(self.size_extra)
    }

    /// True if both describe the same bytes (the assigned UIDL aside).
    pub fn same_message(&self, other: &Entry) -> bool {
        Entry { uid_k: 0, ..*self } == Entry { uid_k: 0, ..*other }
    }
}

/// The index of a scanned mailbox.
#[derive(Clone, Debug, Default)]
pub struct Index {
    /// One entry per message, in file order (the hidden pseudo-message too).
    pub entries: Vec<Entry>,
    /// Length of the file part that was indexed; bytes after it were appended
    /// later and are not part of this index.
    pub end: u64,
    /// What appended bytes must look like to start a new message at `end`.
    pub tail: Tail,
    /// The first entry is UW IMAP's folder-internal-data pseudo-message: not
    /// shown to POP3 clients and never deleted.
    pub hidden_first: bool,
}

impl Index {
    /// End of message `i`'s raw bytes (its separator line included).
    pub fn raw_end(&self, i: usize) -> u64 {
        match self.entries.get(i + 1) {
            Some(next) => next.raw_start,
            None => self.end,
        }
    }

    /// Entries shown to POP3 clients (all but a hidden pseudo-message).
    pub fn visible(&self) -> &[Entry] {
        &self.entries[usize::from(self.hidden_first).min(self.entries.len())..]
    }

    /// Heap bytes this index holds (for the cache's memory bound).
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
    }
}

/// Builds a new index, refusing more than `max` messages. Its memory never
/// grows past `max` entries, however the vector would grow by itself.
///
/// The sinks of the parts of one scan split between threads (`parallel.rs`)
/// share one count, so that together they refuse more than `max` messages;
/// each then holds at most twice its own entries (plus 64), so all together
/// at most about twice `max`.
#[derive(Debug)]
pub struct IndexSink {
    /// Entries found so far.
    pub entries: Vec<Entry>,
    max: usize,
    shared: Option<Arc<AtomicUsize>>,
}

impl IndexSink {
    /// A sink that accepts at most `max` messages (and never more than `u32::MAX`).
    pub fn new(max: usize) -> IndexSink {
        IndexSink::continuing(Vec::new(), max)
    }

    /// A sink that adds to the entries of an existing index.
    pub fn continuing(entries: Vec<Entry>, max: usize) -> IndexSink {
        IndexSink {
            entries,
            max: max.min(u32::MAX as usize),
            shared: None,
        }
    }

    /// From now on counts its messages in `count` (which must already
    /// include the entries it holds) together with other parts' sinks.
    pub fn share(&mut self, count: Arc<AtomicUsize>) {
        self.shared = Some(count);
    }
}

impl Sink for IndexSink {
    fn whole_sum(&self, _ahead: usize) -> bool {
        // Filled in afterwards where the UIDL needs it (`sums.rs`).
        false
    }

    fn message(&mut self, entry: &Entry) -> Result<(), ScanError> {
        let len = self.entries.len();
        // Messages counted before this one (by every part, when shared).
        let before = match &self.shared {
            Some(count) => count.fetch_add(1, Ordering::Relaxed),
            None => len,
        };
        if before >= self.max {
            return Err(ScanError {
                offset: entry.raw_start,
                fault: ScanFault::TooManyMessages(self.max),
            });
        }
        if len == self.entries.capacity() {
            // Double, but never past the limit.
            self.entries
                .reserve_exact(len.max(64).min(self.max - before));
        }
        self.entries.push(*entry);
        Ok(())
    }
}

/// Compares re-scanned entries with an existing index, in order. Entries past
/// the indexed ones (appended mail) are accepted and ignored.
#[derive(Debug)]
pub struct VerifySink<'a> {
    expected: &'a [Entry],
    /// How many entries matched so far.
    pub matched: usize,
}

impl<'a> VerifySink<'a> {
    /// A sink expecting exactly `expected` first.
    pub fn new(expected: &'a [Entry]) -> VerifySink<'a> {
        VerifySink {
            expected,
            matched: 0,
        }
    }

    /// True once every expected entry was seen, unchanged.
    pub fn complete(&self) -> bool {
        self.matched == self.expected.len()
    }
}

impl Sink for VerifySink<'_> {
    fn whole_sum(&self, ahead: usize) -> bool {
        // The sum the indexed entry has.
        self.expected
            .get(self.matched + ahead)
            .is_none_or(|want| want.uid_k > 0)
    }

    fn message(&mut self, entry: &Entry) -> Result<(), ScanError> {
        match self.expected.get(self.matched) {
            Some(want) if want.same_message(entry) => {
                self.matched += 1;
                Ok(())
            }
            Some(_) => Err(ScanError {
                offset: entry.raw_start,
                fault: ScanFault::Mismatch,
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_is_at_most_40_bytes() {
        assert!(std::mem::size_of::<Entry>() <= 40);
    }

    fn e(s: u64) -> Entry {
        Entry {
            raw_start: s,
            data_len: 1,
            size_extra: 1,
            from_len: 5,
            digest: [0; 8],
            data_sum: [0; 4],
            uid_k: 0,
        }
    }

    #[test]
    fn raw_end_visible_and_size() {
        let mut idx = Index {
            entries: vec![e(0), e(10), e(30)],
            end: 50,
            ..Index::default()
        };
        assert_eq!(idx.raw_end(0), 10);
        assert_eq!(idx.raw_end(2), 50);
        assert_eq!(idx.visible().len(), 3);
        idx.hidden_first = true;
        assert_eq!(idx.visible()[0].raw_start, 10);
        assert_eq!(e(7).data_start(), 12);
        assert_eq!(e(7).size(), 2);
        assert!(e(1).same_message(&Entry { uid_k: 3, ..e(1) }));
        assert!(!e(1).same_message(&e(2)));
    }

    #[test]
    fn sink_never_grows_past_its_limit() {
        let mut sink = IndexSink::new(100);
        for k in 0..100 {
            sink.message(&e(k)).unwrap();
        }
        assert!(
            sink.entries.capacity() <= 100,
            "{}",
            sink.entries.capacity()
        );
        let err = sink.message(&e(100)).unwrap_err();
        assert_eq!(err.fault, ScanFault::TooManyMessages(100));
        assert_eq!(err.offset, 100);
    }

    #[test]
    fn sinks_sharing_a_count_refuse_together() {
        let count = Arc::new(AtomicUsize::new(1));
        let mut a = IndexSink::continuing(vec![e(0)], 100);
        a.share(Arc::clone(&count));
        let mut b = IndexSink::new(100);
        b.share(Arc::clone(&count));
        for k in 1..60 {
            a.message(&e(k)).unwrap();
        }
        for k in 1000..1040 {
            b.message(&e(k)).unwrap();
        }
        let err = b.message(&e(2000)).unwrap_err();
        assert_eq!(err.fault, ScanFault::TooManyMessages(100));
        assert_eq!(err.offset, 2000);
        assert!(a.message(&e(60)).is_err());
        assert_eq!(a.entries.len() + b.entries.len(), 100);
        assert!(a.entries.capacity() <= 2 * 60 + 64);
        assert!(b.entries.capacity() <= 2 * 40 + 64);
    }
}
