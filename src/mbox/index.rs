//! The message index: one fixed-size [`Entry`] per message (40 bytes, no heap
//! allocation per message), plus the sinks the scanner feeds entries into —
//! [`IndexSink`] builds a new index, [`VerifySink`] compares a re-scan against an
//! existing one.
//!
//! An index cache (keyed by device, inode, size and mtime) will later keep
//! [`Index`] values across sessions; everything in it is plain data for that.

use super::scan::{ScanError, ScanFault, Sink};

/// What the scanner learns about one message. Offsets are file offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Offset of the From_ line (the start of the message's raw bytes).
    pub raw_start: u64,
    /// Stored data bytes (after the From_ line, without the separator line).
    pub data_len: u64,
    /// Octets RETR sends before the final `.` line, dot-stuffing not counted.
    pub size: u64,
    /// First 8 bytes of popa3d's UIDL digest (MD5 of selected header lines).
    pub digest: [u8; 8],
    /// First 4 bytes of the MD5 of the whole data, to tell duplicates apart.
    pub data_sum: [u8; 4],
    /// Length of the From_ line with its LF: data starts at `raw_start + from_len`.
    pub from_len: u32,
}

impl Entry {
    /// Offset of the first data byte.
    pub fn data_start(&self) -> u64 {
        self.raw_start + u64::from(self.from_len)
    }
}

/// The index of a scanned mailbox.
#[derive(Clone, Debug, Default)]
pub struct Index {
    /// One entry per message, in file order.
    pub entries: Vec<Entry>,
    /// Messages whose popa3d UIDL is not unique: `(message, ordinal)` sorted by
    /// message, where the ordinal counts earlier byte-identical copies.
    pub dups: Vec<(u32, u32)>,
    /// Length of the file part that was indexed; bytes after it were appended
    /// later and are not part of this index.
    pub end: u64,
}

impl Index {
    /// End of message `i`'s raw bytes (its separator line included).
    pub fn raw_end(&self, i: usize) -> u64 {
        match self.entries.get(i + 1) {
            Some(next) => next.raw_start,
            None => self.end,
        }
    }

    /// The ordinal if message `i`'s popa3d UIDL is shared with another message.
    pub fn dup(&self, i: usize) -> Option<u32> {
        let i = u32::try_from(i).ok()?;
        self.dups
            .binary_search_by_key(&i, |&(m, _)| m)
            .ok()
            .map(|k| self.dups[k].1)
    }
}

/// Builds a new index, refusing more than `max` messages.
#[derive(Debug)]
pub struct IndexSink {
    /// Entries found so far.
    pub entries: Vec<Entry>,
    max: usize,
}

impl IndexSink {
    /// A sink that accepts at most `max` messages (and never more than `u32::MAX`).
    pub fn new(max: usize) -> IndexSink {
        IndexSink {
            entries: Vec::new(),
            max: max.min(u32::MAX as usize),
        }
    }
}

impl Sink for IndexSink {
    fn message(&mut self, entry: &Entry) -> Result<(), ScanError> {
        if self.entries.len() >= self.max {
            return Err(ScanError {
                offset: entry.raw_start,
                fault: ScanFault::TooManyMessages(self.max),
            });
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
    fn message(&mut self, entry: &Entry) -> Result<(), ScanError> {
        match self.expected.get(self.matched) {
            Some(want) if want == entry => {
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

    #[test]
    fn raw_end_and_dup_lookup() {
        let e = |s| Entry {
            raw_start: s,
            data_len: 1,
            size: 2,
            digest: [0; 8],
            data_sum: [0; 4],
            from_len: 5,
        };
        let idx = Index {
            entries: vec![e(0), e(10), e(30)],
            dups: vec![(0, 0), (2, 1)],
            end: 50,
        };
        assert_eq!(idx.raw_end(0), 10);
        assert_eq!(idx.raw_end(2), 50);
        assert_eq!(idx.dup(0), Some(0));
        assert_eq!(idx.dup(1), None);
        assert_eq!(idx.dup(2), Some(1));
        assert_eq!(e(7).data_start(), 12);
    }
}
