//! The index cache: message indexes of recently used mailboxes, kept by the
//! daemon between sessions so that re-opening a mailbox that is unchanged or
//! only appended to costs O(new bytes), not a re-scan (fetchmail polling a
//! 1 GiB mailbox every few minutes must not re-read it each time).
//!
//! Keyed by (device, inode); an entry also holds the file's stamp (size,
//! mtime, ctime) and when it was confirmed. How an entry is trusted at the
//! next open (see `open.rs` and `verify.rs`):
//! - same stamp, older than the confirmation by more than a timestamp tick
//!   (see `verify::quiet`): used as it is,
//!   without reading the file or taking a lock;
//! - same stamp but recent, or the file grew: under the lock, a spot check of
//!   the indexed part (the last message, the first, random samples), and the
//!   appended bytes must start a new message where the index ended; only
//!   the appended bytes are scanned;
//! - anything else (the file shrank, the spot check failed): a full scan.
//!
//! An entry is *taken* out while a session uses it (the session owns the
//! index; nothing is copied), and given back with `Mailbox::into_cache` when
//! the session ends. Bounded by the number of entries and by their memory
//! (40 bytes per message plus the retired UIDLs); the least recently used go
//! first, and an index larger than the whole budget is not kept.

use std::time::SystemTime;

use super::file::{FileId, Stamp};
use super::index::Index;
use super::uidl::Retired;
use super::verify;
use crate::config::{INDEX_CACHE_BYTES, INDEX_CACHE_ENTRIES};

/// Fixed cost counted per entry besides its vectors.
const ENTRY_OVERHEAD: usize = 256;

/// One remembered mailbox.
#[derive(Debug)]
pub(crate) struct Cached {
    pub id: FileId,
    pub stamp: Stamp,
    pub checked_at: SystemTime,
    pub index: Index,
    pub retired: Retired,
    last_used: u64,
}

impl Cached {
    pub fn new(
        id: FileId,
        stamp: Stamp,
        checked_at: SystemTime,
        index: Index,
        retired: Retired,
    ) -> Cached {
        Cached {
            id,
            stamp,
            checked_at,
            index,
            retired,
            last_used: 0,
        }
    }

    /// True if the entry can be used as it is for the file now stamped
    /// `st`, without a lock or a read: quietly unchanged since it was
    /// confirmed, and not appended to (an index that ends before the file
    /// does, with mail appended during its session, must go on to scan
    /// that mail).
    pub fn usable_as_is(&self, st: &Stamp) -> bool {
        verify::quiet(&self.stamp, st, self.checked_at) && st.size == self.index.end
    }

    fn bytes(&self) -> usize {
        ENTRY_OVERHEAD + self.index.heap_bytes() + self.retired.heap_bytes()
    }
}

/// A bounded cache of mailbox indexes. One per daemon process; not shared
/// between threads.
#[derive(Debug)]
pub struct IndexCache {
    entries: Vec<Cached>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
    tick: u64,
}

impl Default for IndexCache {
    fn default() -> Self {
        IndexCache::new(INDEX_CACHE_ENTRIES, INDEX_CACHE_BYTES)
    }
}

impl IndexCache {
    /// A cache of at most `max_entries` mailboxes using at most `max_bytes`.
    pub fn new(max_entries: usize, max_bytes: usize) -> IndexCache {
        IndexCache {
            entries: Vec::new(),
            bytes: 0,
            max_entries,
            max_bytes,
            tick: 0,
        }
    }

    /// Number of mailboxes remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Memory the remembered indexes use (as counted against the bound).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// Takes the entry of file `id` out of the cache.
    pub(crate) fn take(&mut self, id: FileId) -> Option<Cached> {
        let i = self.entries.iter().position(|c| c.id == id)?;
        let c = self.entries.swap_remove(i);
        self.bytes -= c.bytes();
        Some(c)
    }

    /// Remembers `c` (replacing any entry of the same file), evicting the
    /// least recently used entries to stay within the bounds.
    pub(crate) fn put(&mut self, mut c: Cached) {
        drop(self.take(c.id));
        c.index.entries.shrink_to_fit();
        let size = c.bytes();
        if size > self.max_bytes || self.max_entries == 0 {
            return;
        }
        while !self.entries.is_empty()
            && (self.entries.len() >= self.max_entries || self.bytes + size > self.max_bytes)
        {
            let lru = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, c)| c.last_used)
                .map_or(0, |(i, _)| i);
            let old = self.entries.swap_remove(lru);
            self.bytes -= old.bytes();
        }
        self.tick += 1;
        c.last_used = self.tick;
        self.bytes += size;
        self.entries.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mbox::index::Entry;

    fn cached(ino: u64, messages: usize) -> Cached {
        let e = Entry {
            raw_start: 0,
            data_len: 1,
            size_extra: 1,
            from_len: 6,
            digest: [0; 8],
            data_sum: [0; 4],
            uid_k: 0,
        };
        Cached::new(
            FileId {
                dev: 1,
                ino,
                birth: 0,
            },
            Stamp::default(),
            SystemTime::now(),
            Index {
                entries: vec![e; messages],
                ..Index::default()
            },
            Retired::default(),
        )
    }

    #[test]
    fn bounded_by_entries_and_bytes() {
        let mut c = IndexCache::new(2, 100_000);
        c.put(cached(1, 10));
        c.put(cached(2, 10));
        c.put(cached(3, 10));
        assert_eq!(c.len(), 2);
        assert!(
            c.take(FileId {
                dev: 1,
                ino: 1,
                birth: 0
            })
            .is_none()
        );
        assert!(
            c.take(FileId {
                dev: 1,
                ino: 3,
                birth: 0
            })
            .is_some()
        );
        assert_eq!(c.len(), 1);
        // Bytes: 2000 messages = 80,000 bytes; a second one does not fit.
        c.put(cached(4, 2000));
        c.put(cached(5, 2000));
        assert!(c.bytes() <= 100_000);
        assert!(
            c.take(FileId {
                dev: 1,
                ino: 5,
                birth: 0
            })
            .is_some()
        );
        assert!(
            c.take(FileId {
                dev: 1,
                ino: 4,
                birth: 0
            })
            .is_none()
        );
        // Too big for the whole cache: not kept.
        c.put(cached(6, 3000));
        assert!(c.is_empty());
        assert_eq!(c.bytes(), 0);
    }
}
