//! The data sums an index scan leaves out, read afterwards for the messages
//! whose UIDL uses one, in bounded steps under the scan's lock.
//!
//! A scan for an index does not hash message data (`Sink::DATA_SUM`): only a
//! message whose popa3d id another message already has needs its sum (see
//! `uidl.rs`), and in most mailboxes there is none. Once the scan has found
//! the digests, [`uidl::needing_sums`] names those messages and a
//! [`SumJob`] reads just their data, so a mailbox of unique ids is read
//! once and one of identical messages is read twice.
//!
//! [`uidl::needing_sums`]: super::uidl::needing_sums

use std::fs::File;

use super::MboxError;
use super::file::read_upto;
use super::index::Index;
use super::scan::DataSum;
use crate::config::SCAN_CHUNK;

/// Hashing the data of some messages of an index, a budget of bytes at a time.
#[derive(Debug)]
pub struct SumJob {
    /// The index whose entries get their sums.
    pub index: Index,
    /// Positions in `index.entries` to hash, in file order.
    need: Vec<usize>,
    /// The next of `need` to hash.
    next: usize,
    /// Bytes of that message's data hashed so far.
    done: u64,
    sum: DataSum,
    buf: Vec<u8>,
}

impl SumJob {
    /// A job filling in the data sums of `index.entries[m]` for every `m` in
    /// `need` (in file order).
    pub fn new(index: Index, need: Vec<usize>) -> SumJob {
        let bytes: u64 = need.iter().map(|&m| index.entries[m].data_len).sum();
        let buf = vec![0; SCAN_CHUNK.min(bytes.max(1) as usize)];
        SumJob {
            index,
            need,
            next: 0,
            done: 0,
            sum: DataSum::default(),
            buf,
        }
    }

    /// Hashes about `budget` bytes of `file` (at least one read). True once
    /// every sum is in. A message whose data is no longer all there (the
    /// file was cut under the lock, by a program that ignores it) is
    /// [`MboxError::Changed`].
    pub fn step(&mut self, file: &File, budget: u64) -> Result<bool, MboxError> {
        let mut left = budget.max(1);
        while let Some(&m) = self.need.get(self.next) {
            let e = &mut self.index.entries[m];
            let at = e.data_start() + self.done;
            let end = e.data_start() + e.data_len;
            if at == end {
                e.data_sum = std::mem::take(&mut self.sum).entry_bytes();
                self.done = 0;
                self.next += 1;
                continue;
            }
            if left == 0 {
                return Ok(false);
            }
            let want = (end - at).min(left).min(self.buf.len() as u64) as usize;
            let got = read_upto(file, &mut self.buf[..want], at)?;
            if got < want {
                return Err(MboxError::Changed);
            }
            self.sum.update(&self.buf[..got]);
            self.done += got as u64;
            left -= got as u64;
        }
        Ok(true)
    }
}
