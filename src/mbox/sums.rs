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
use super::index::Entry;
use super::scan::DataSum;
use crate::config::SCAN_CHUNK;

/// Hashing the data of some messages of an index, a budget of bytes at a time.
#[derive(Debug)]
pub struct SumJob {
    /// Positions in the entries to hash, in file order.
    need: Vec<usize>,
    /// The next of `need` to hash.
    next: usize,
    /// Bytes of that message's data hashed so far.
    done: u64,
    sum: DataSum,
    buf: Vec<u8>,
}

impl SumJob {
    /// A job filling in the data sums of `entries[m]` for every `m` in `need`
    /// (in file order).
    pub fn new(entries: &[Entry], need: Vec<usize>) -> SumJob {
        let bytes: u64 = need.iter().map(|&m| entries[m].data_len).sum();
        let buf = vec![0; SCAN_CHUNK.min(bytes.max(1) as usize)];
        SumJob {
            need,
            next: 0,
            done: 0,
            sum: DataSum::default(),
            buf,
        }
    }

    /// Hashes about `budget` bytes of `file` for `entries` (the ones the job
    /// was made for; at least one read). True once every sum is in. A message whose data is no longer all there (the
    /// file was cut under the lock, by a program that ignores it) is
    /// [`MboxError::Changed`].
    pub fn step(
        &mut self,
        file: &File,
        entries: &mut [Entry],
        budget: u64,
    ) -> Result<bool, MboxError> {
        let mut left = budget.max(1);
        while let Some(&m) = self.need.get(self.next) {
            let e = &mut entries[m];
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(raw_start: u64, from_len: u32, data_len: u64) -> Entry {
        Entry {
            raw_start,
            data_len,
            size_extra: 0,
            from_len,
            digest: [0; 8],
            data_sum: [0; 4],
            uid_k: 0,
        }
    }

    #[test]
    fn sums_the_named_messages_a_budget_at_a_time() {
        let path = std::env::temp_dir().join(format!("pop3d-sums-{}", std::process::id()));
        let data = b"From a\nA: 1\n\nfirst body\n\nFrom b\nA: 2\n\nsecond\n";
        std::fs::write(&path, data).unwrap();
        let file = File::options().read(true).write(true).open(&path).unwrap();
        let entries = vec![entry(0, 7, 17), entry(25, 7, 13)];
        let want = |e: &Entry| {
            let mut s = DataSum::default();
            let at = e.data_start() as usize;
            s.update(&data[at..at + e.data_len as usize]);
            s.entry_bytes()
        };
        for budget in [1, 3, 64] {
            let mut got = entries.clone();
            let mut job = SumJob::new(&got, vec![1]);
            let mut steps = 1;
            while !job.step(&file, &mut got, budget).unwrap() {
                steps += 1;
            }
            assert_eq!(steps, 13_u64.div_ceil(budget));
            assert_eq!(got[1].data_sum, want(&entries[1]));
            // Only the named message gets its sum.
            assert_eq!(got[0].data_sum, [0; 4]);
        }
        let mut got = entries.clone();
        let mut job = SumJob::new(&got, vec![0, 1]);
        while !job.step(&file, &mut got, 5).unwrap() {}
        assert_eq!(got[0].data_sum, want(&entries[0]));
        assert_eq!(got[1].data_sum, want(&entries[1]));
        // Cut under the lock by a program that ignores it: refused.
        file.set_len(30).unwrap();
        let mut got = entries.clone();
        let mut job = SumJob::new(&got, vec![1]);
        assert!(matches!(
            job.step(&file, &mut got, 64),
            Err(MboxError::Changed)
        ));
        std::fs::remove_file(&path).unwrap();
    }
}
