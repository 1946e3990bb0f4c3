//! The index file `DIR/.NAME.pop3d-index`: a mailbox's message index kept on
//! disk, so that a process that starts afresh (every inetd session, a
//! restarted daemon) re-opens an unchanged or appended-to mailbox in O(new
//! bytes) too, as the daemon's in-memory cache (`cache.rs`) does between its
//! own sessions: fetchmail polling a 1 GiB mailbox through inetd must not
//! make pop3d re-read it every time.
//!
//! It is only a cache. A missing, torn, foreign or stale file costs a scan,
//! never a wrong answer: what it holds is trusted exactly like an in-memory
//! entry (the stamp and the confirmation time say whether it may be used
//! without reading the mailbox; otherwise it is spot-checked under the lock
//! and only appended bytes are scanned, see `open.rs` and `verify.rs`).
//!
//! Written (temporary file `.NAME.pop3d-index.new`, then rename; no fsync,
//! since a torn file fails its checksum) after an opening that scanned at
//! least [`INDEX_FILE_MIN_SCAN`] bytes and more than the file takes, after an
//! opening that had to confirm it under the lock, and after an expunge of a
//! mailbox whose index covers that much. Removed when an expunge starts
//! moving bytes (so that no crash leaves a stale one behind), and when a full
//! scan or an expunge leaves the mailbox too small to need one. Read and
//! written in bounded steps, like the scan; the file an opening starts is
//! written after the mailbox is handed over (`Mailbox::store_step`: the
//! client has its answer to PASS meanwhile, and a session that ends first
//! finishes it). Made by the identity that makes the dotlock, owned by the
//! mailbox's owner, mode 0600; a file that is not a regular file of the
//! mailbox's owner, or that others may write, is ignored with a log line.
//!
//! Format (little-endian): a 16-byte magic line; a [`HEADER`]-byte header
//! (device, inode and birth time of the mailbox; its size, mtime and ctime
//! when confirmed; the confirmation time; the indexed end; the tail state,
//! the hidden-first flag and the message count); [`ENTRY`] bytes per message
//! (the in-memory entry); a 64-bit [`DataSum`] of everything before it. The
//! file's length must match the count, the count must be within the
//! mailbox limit, and every entry is checked as it is read (the first at
//! offset 0, each starting 0-2 separator bytes after the previous one ends,
//! all within the indexed end), so no value from the file can make later
//! arithmetic overflow or point outside the indexed part of the mailbox.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Mailbox;
use super::cache::Cached;
use super::file::{FileId, Stamp, give, open_own, sibling};
use super::index::{Entry, Index};
use super::scan::{DataSum, Tail};
use super::uidl::Retired;
use crate::config::{INDEX_FILE_MIN_SCAN, SCAN_CHUNK};

/// v2: an entry whose UIDL needs no data sum keeps the sum of its header
/// lines (v1 kept the sum of all its data, which a v2 re-check would not
/// match), so a v1 file is ignored and replaced.
const MAGIC: &[u8; 16] = b"pop3d-index v2\n\0";
/// Bytes of the header after the magic line.
pub const HEADER: usize = 104;
/// Bytes per message.
pub const ENTRY: usize = 40;
const TRAILER: usize = 8;

/// The index file's path for the mailbox at `mailbox`.
pub fn path(mailbox: &Path) -> PathBuf {
    sibling(mailbox, ".pop3d-index")
}

fn tmp_path(mailbox: &Path) -> PathBuf {
    sibling(mailbox, ".pop3d-index.new")
}

/// True if an opening that scanned `scanned` bytes into an index of `count`
/// messages should keep it in a file.
pub fn worth_storing(scanned: u64, count: usize) -> bool {
    scanned >= INDEX_FILE_MIN_SCAN.max((count * ENTRY) as u64)
}

/// True if an index covering `end` bytes of mailbox is worth keeping in a
/// file (after an expunge, which changes it whole).
pub fn worth_keeping(end: u64) -> bool {
    end >= INDEX_FILE_MIN_SCAN
}

/// Removes the index file of `mailbox`, if any (when it is no longer worth
/// having; a stale one would only be read in vain).
pub fn remove(mailbox: &Path) {
    if let Err(e) = fs::remove_file(path(mailbox))
        && e.kind() != io::ErrorKind::NotFound
    {
        crate::notice!("cannot remove {}: {e}", path(mailbox).display());
    }
}

/// What the header holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    id: FileId,
    stamp: Stamp,
    checked_ns: u64,
    end: u64,
    tail: Tail,
    hidden_first: bool,
    count: u32,
}

fn tail_code(t: Tail) -> u8 {
    match t {
        Tail::Start => 0,
        Tail::Empty => 1,
        Tail::Body => 2,
        Tail::Other => 3,
    }
}

/// Little-endian fields in order, over a fixed buffer.
struct Fields<'a> {
    b: &'a [u8],
    at: usize,
}

impl Fields<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut x = [0u8; N];
        x.copy_from_slice(&self.b[self.at..self.at + N]);
        self.at += N;
        x
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    fn i64(&mut self) -> i64 {
        i64::from_le_bytes(self.take())
    }
}

impl Header {
    fn encode(&self) -> [u8; HEADER] {
        let mut out = Vec::with_capacity(HEADER);
        out.extend_from_slice(&self.id.dev.to_le_bytes());
        out.extend_from_slice(&self.id.ino.to_le_bytes());
        out.extend_from_slice(&self.id.birth.to_le_bytes());
        let s = &self.stamp;
        out.extend_from_slice(&s.size.to_le_bytes());
        for t in [s.mtime_sec, s.mtime_nsec, s.ctime_sec, s.ctime_nsec] {
            out.extend_from_slice(&t.to_le_bytes());
        }
        out.extend_from_slice(&self.checked_ns.to_le_bytes());
        out.extend_from_slice(&self.end.to_le_bytes());
        out.push(tail_code(self.tail));
        out.push(u8::from(self.hidden_first));
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.count.to_le_bytes());
        out.resize(HEADER, 0);
        let mut h = [0u8; HEADER];
        h.copy_from_slice(&out);
        h
    }

    fn decode(b: &[u8; HEADER]) -> Result<Header, &'static str> {
        let mut f = Fields { b, at: 0 };
        let dev = f.u64();
        let ino = f.u64();
        let birth = i128::from_le_bytes(f.take());
        let stamp = Stamp {
            size: f.u64(),
            mtime_sec: f.i64(),
            mtime_nsec: f.i64(),
            ctime_sec: f.i64(),
            ctime_nsec: f.i64(),
        };
        let checked_ns = f.u64();
        let end = f.u64();
        let [tail, hidden, _, _] = f.take::<4>();
        let count = f.u32();
        let tail = match tail {
            0 => Tail::Start,
            1 => Tail::Empty,
            2 => Tail::Body,
            3 => Tail::Other,
            _ => return Err("bad tail state"),
        };
        if hidden > 1 || b[f.at..].iter().any(|&x| x != 0) {
            return Err("bad header");
        }
        if end > stamp.size || (count == 0 && (end != 0 || hidden != 0)) {
            return Err("inconsistent header");
        }
        Ok(Header {
            id: FileId { dev, ino, birth },
            stamp,
            checked_ns,
            end,
            tail,
            hidden_first: hidden == 1,
            count,
        })
    }
}

fn encode_entry(e: &Entry, out: &mut Vec<u8>) {
    out.extend_from_slice(&e.raw_start.to_le_bytes());
    out.extend_from_slice(&e.data_len.to_le_bytes());
    out.extend_from_slice(&e.size_extra.to_le_bytes());
    out.extend_from_slice(&e.from_len.to_le_bytes());
    out.extend_from_slice(&e.digest);
    out.extend_from_slice(&e.data_sum);
    out.extend_from_slice(&e.uid_k.to_le_bytes());
}

fn decode_entry(b: &[u8]) -> Entry {
    let mut f = Fields { b, at: 0 };
    Entry {
        raw_start: f.u64(),
        data_len: f.u64(),
        size_extra: f.u32(),
        from_len: f.u32(),
        digest: f.take(),
        data_sum: f.take(),
        uid_k: f.u32(),
    }
}

/// Reads an index file in bounded steps, checking it as it goes.
#[derive(Debug)]
pub(crate) struct Reader {
    file: File,
    header: Header,
    entries: Vec<Entry>,
    sum: DataSum,
    /// Where the previous entry's data ends (0 before the first).
    prev_end: u64,
    buf: Vec<u8>,
}

impl Reader {
    /// Opens the index file of the mailbox at `mailbox` (file `id`, owned by
    /// `owner`) and reads its header. `Ok(None)` if there is none, or if it
    /// describes another file (the mailbox was replaced since). An error
    /// says why the file cannot be used.
    pub fn open(
        mailbox: &Path,
        owner: u32,
        id: FileId,
        max_messages: usize,
    ) -> Result<Option<Reader>, String> {
        let p = path(mailbox);
        let Some(mut file) = open_own(&p, owner).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let len = file.metadata().map_err(|e| e.to_string())?.len();
        let mut head = [0u8; MAGIC.len() + HEADER];
        if len < head.len() as u64 {
            return Err("too short".into());
        }
        file.read_exact(&mut head).map_err(|e| e.to_string())?;
        if &head[..MAGIC.len()] != MAGIC {
            return Err("not a pop3d index file of this version".into());
        }
        let mut h = [0u8; HEADER];
        h.copy_from_slice(&head[MAGIC.len()..]);
        let header = Header::decode(&h)?;
        if header.id != id {
            return Ok(None);
        }
        let count = header.count as usize;
        if count > max_messages {
            return Err(format!("{count} messages, over the limit"));
        }
        if len != (head.len() + count * ENTRY + TRAILER) as u64 {
            return Err("its length does not match its message count".into());
        }
        let mut sum = DataSum::default();
        sum.update(&head);
        Ok(Some(Reader {
            file,
            header,
            entries: Vec::with_capacity(count),
            sum,
            prev_end: 0,
            buf: Vec::new(),
        }))
    }

    /// Checks entry `e`, the next one, against the ones before it.
    fn admit(&mut self, e: Entry) -> Result<(), &'static str> {
        let first = self.entries.is_empty();
        let gap = e
            .raw_start
            .checked_sub(self.prev_end)
            .ok_or("overlapping messages")?;
        let end = e
            .raw_start
            .checked_add(u64::from(e.from_len))
            .and_then(|x| x.checked_add(e.data_len))
            .ok_or("message out of range")?;
        if (first && e.raw_start != 0) || (!first && gap > 2) {
            return Err("messages not contiguous");
        }
        if e.from_len < 5 || e.data_len == 0 || end > self.header.end {
            return Err("message out of range");
        }
        if u64::from(e.size_extra) > e.data_len + 2 {
            return Err("bad message size");
        }
        self.prev_end = end;
        self.entries.push(e);
        Ok(())
    }

    /// Reads and checks about `budget` bytes more. `Ok(None)` while there is
    /// more to read; at the end the cache entry it describes (with no
    /// retired UIDs: the caller loads them).
    pub fn step(&mut self, budget: usize) -> Result<Option<Cached>, String> {
        let count = self.header.count as usize;
        let mut left = budget.max(ENTRY);
        while self.entries.len() < count && left > 0 {
            let n = (count - self.entries.len())
                .min(SCAN_CHUNK / ENTRY)
                .min(left.div_ceil(ENTRY));
            self.buf.resize(n * ENTRY, 0);
            self.file
                .read_exact(&mut self.buf)
                .map_err(|e| e.to_string())?;
            self.sum.update(&self.buf);
            let buf = std::mem::take(&mut self.buf);
            for b in buf.chunks_exact(ENTRY) {
                self.admit(decode_entry(b))?;
            }
            self.buf = buf;
            left = left.saturating_sub(n * ENTRY);
        }
        if self.entries.len() < count {
            return Ok(None);
        }
        let h = self.header;
        if count > 0 && h.end - self.prev_end > 2 {
            return Err("messages not contiguous".into());
        }
        let mut trailer = [0u8; TRAILER];
        self.file
            .read_exact(&mut trailer)
            .map_err(|e| e.to_string())?;
        if trailer != self.sum.finish().to_le_bytes() {
            return Err("checksum mismatch".into());
        }
        let index = Index {
            entries: std::mem::take(&mut self.entries),
            end: h.end,
            tail: h.tail,
            hidden_first: h.hidden_first,
        };
        let checked_at = UNIX_EPOCH + Duration::from_nanos(h.checked_ns);
        Ok(Some(Cached::new(
            h.id,
            h.stamp,
            checked_at,
            index,
            Retired::default(),
        )))
    }
}

/// Writes an index file in bounded steps: a temporary file renamed into
/// place at the end, removed if the writer is dropped before.
#[derive(Debug)]
pub(crate) struct Writer {
    file: File,
    tmp: PathBuf,
    dest: PathBuf,
    count: usize,
    next: usize,
    sum: DataSum,
    buf: Vec<u8>,
    done: bool,
}

impl Writer {
    /// Starts the index file of the mailbox at `mailbox` (file `id`, owned
    /// by `owner`), describing `index` as confirmed with `stamp` at
    /// `checked_at`. [`Writer::step`] must be given the same index.
    pub fn create(
        mailbox: &Path,
        owner: (u32, u32),
        id: FileId,
        stamp: Stamp,
        checked_at: SystemTime,
        index: &Index,
    ) -> io::Result<Writer> {
        let checked_ns = checked_at
            .duration_since(UNIX_EPOCH)
            .ok()
            .and_then(|d| u64::try_from(d.as_nanos()).ok())
            .ok_or_else(|| io::Error::other("clock out of range"))?;
        let count = u32::try_from(index.entries.len())
            .map_err(|_| io::Error::other("too many messages"))?;
        let header = Header {
            id,
            stamp,
            checked_ns,
            end: index.end,
            tail: index.tail,
            hidden_first: index.hidden_first,
            count,
        };
        let tmp = tmp_path(mailbox);
        // A leftover from a crash (or a concurrent writer, whose rename
        // then fails or leaves a file that fails its checksum: harmless).
        let _ = fs::remove_file(&tmp);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY)
            .open(&tmp)?;
        // From here on, dropping the writer removes the temporary file.
        let mut w = Writer {
            file,
            tmp,
            dest: path(mailbox),
            count: index.entries.len(),
            next: 0,
            sum: DataSum::default(),
            buf: Vec::new(),
            done: false,
        };
        give(&w.file, owner.0, owner.1)?;
        let mut head = MAGIC.to_vec();
        head.extend_from_slice(&header.encode());
        w.sum.update(&head);
        w.file.write_all(&head)?;
        Ok(w)
    }

    /// Starts the index file of mailbox `mb` as it stands (its index, as
    /// confirmed with its stamp); `None` (with a log line if it could not
    /// be made) for an empty index. [`Writer::advance`] writes the rest.
    pub fn start(mb: &Mailbox) -> Option<Writer> {
        if mb.index.entries.is_empty() {
            return None;
        }
        Writer::create(
            &mb.path,
            mb.owner,
            mb.id,
            mb.stamp,
            mb.checked_at,
            &mb.index,
        )
        .map_err(|e| crate::notice!("cannot write {}: {e}", path(&mb.path).display()))
        .ok()
    }

    /// [`Writer::step`], logging a failure (the index file is only a
    /// cache: the mailbox is served without it). True once finished,
    /// written or given up.
    pub fn advance(&mut self, index: &Index, budget: usize) -> bool {
        self.step(index, budget).unwrap_or_else(|e| {
            crate::notice!("cannot write {}: {e}", self.dest.display());
            true
        })
    }

    /// Writes about `budget` bytes more of `index`; `Ok(true)` once the
    /// file is complete and in place.
    pub fn step(&mut self, index: &Index, budget: usize) -> io::Result<bool> {
        if index.entries.len() != self.count {
            return Err(io::Error::other("index changed while being written"));
        }
        let mut left = budget.max(ENTRY);
        while self.next < self.count && left > 0 {
            let n = (self.count - self.next)
                .min(SCAN_CHUNK / ENTRY)
                .min(left.div_ceil(ENTRY));
            self.buf.clear();
            for e in &index.entries[self.next..self.next + n] {
                encode_entry(e, &mut self.buf);
            }
            self.sum.update(&self.buf);
            self.file.write_all(&self.buf)?;
            self.next += n;
            left = left.saturating_sub(n * ENTRY);
        }
        if self.next < self.count {
            return Ok(false);
        }
        self.file.write_all(&self.sum.finish().to_le_bytes())?;
        fs::rename(&self.tmp, &self.dest)?;
        self.done = true;
        Ok(true)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(raw_start: u64, data_len: u64) -> Entry {
        Entry {
            raw_start,
            data_len,
            size_extra: 1,
            from_len: 7,
            digest: [raw_start as u8; 8],
            data_sum: [3; 4],
            uid_k: 0,
        }
    }

    fn index(entries: Vec<Entry>, end: u64) -> Index {
        Index {
            entries,
            end,
            tail: Tail::Empty,
            hidden_first: false,
        }
    }

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn dir(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("pop3d-stored-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    /// Who runs the test (the owner checks compare with the file's owner):
    /// the owner of the directory `mbox` is in, which the test made.
    fn me(mbox: &Path) -> (u32, u32) {
        use std::os::unix::fs::MetadataExt;
        let md = fs::metadata(mbox.parent().unwrap()).unwrap();
        (md.uid(), md.gid())
    }

    fn write(mbox: &Path, id: FileId, idx: &Index, budget: usize) {
        let stamp = Stamp {
            size: idx.end + 5,
            mtime_sec: 1_700_000_000,
            mtime_nsec: 5,
            ctime_sec: 1_700_000_001,
            ctime_nsec: 6,
        };
        let at = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut w = Writer::create(mbox, me(mbox), id, stamp, at, idx).unwrap();
        while !w.step(idx, budget).unwrap() {}
        assert!(!tmp_path(mbox).exists());
    }

    fn read(mbox: &Path, id: FileId, max: usize, budget: usize) -> Result<Option<Cached>, String> {
        let Some(mut r) = Reader::open(mbox, me(mbox).0, id, max)? else {
            return Ok(None);
        };
        loop {
            if let Some(c) = r.step(budget)? {
                return Ok(Some(c));
            }
        }
    }

    const ID: FileId = FileId {
        dev: 7,
        ino: 99,
        birth: 12345,
    };

    #[test]
    fn round_trip_in_any_steps() {
        let d = dir("round");
        let mbox = d.0.join("u");
        // Messages of 7 + 10 bytes with a one-byte separator.
        let entries: Vec<Entry> = (0..5000).map(|i| entry(i * 18, 10)).collect();
        let idx = index(entries.clone(), 5000 * 18 - 1);
        for budget in [1, 100, 64 * 1024, 1 << 30] {
            write(&mbox, ID, &idx, budget);
            let c = read(&mbox, ID, 5000, budget).unwrap().unwrap();
            assert_eq!(c.index.entries, entries);
            assert_eq!(c.index.end, idx.end);
            assert_eq!(c.index.tail, Tail::Empty);
            assert_eq!(c.stamp.size, idx.end + 5);
            assert_eq!((c.stamp.mtime_nsec, c.stamp.ctime_sec), (5, 1_700_000_001));
            assert_eq!(
                c.checked_at,
                UNIX_EPOCH + Duration::from_secs(1_800_000_000)
            );
        }
        // Another file, or too many messages for the limit.
        let other = FileId { ino: 100, ..ID };
        assert!(read(&mbox, other, 5000, 1 << 20).unwrap().is_none());
        assert!(read(&mbox, ID, 4999, 1 << 20).is_err());
        // None at all.
        fs::remove_file(path(&mbox)).unwrap();
        assert!(read(&mbox, ID, 5000, 1 << 20).unwrap().is_none());
    }

    #[test]
    fn every_damaged_byte_is_refused() {
        let d = dir("damage");
        let mbox = d.0.join("u");
        let idx = index((0..3).map(|i| entry(i * 18, 10)).collect(), 3 * 18 - 1);
        write(&mbox, ID, &idx, 1 << 20);
        let good = fs::read(path(&mbox)).unwrap();
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            fs::write(path(&mbox), &bad).unwrap();
            match read(&mbox, ID, 10, 1 << 20) {
                Err(_) => {}
                // A changed identity makes it another file's index.
                Ok(None) if (16..48).contains(&at) => {}
                other => panic!("byte {at}: {other:?}"),
            }
        }
        // Truncated or extended.
        fs::write(path(&mbox), &good[..good.len() - 1]).unwrap();
        assert!(read(&mbox, ID, 10, 1 << 20).is_err());
        fs::write(path(&mbox), [&good[..], b"x"].concat()).unwrap();
        assert!(read(&mbox, ID, 10, 1 << 20).is_err());
    }

    /// Entries that no scan could have produced are refused even with a
    /// correct checksum (as a hand-made file would have).
    #[test]
    fn impossible_entries_are_refused() {
        let d = dir("bad");
        let mbox = d.0.join("u");
        let ok = |v: Vec<Entry>, end: u64| {
            write(&mbox, ID, &index(v, end), 1 << 20);
            read(&mbox, ID, 10, 1 << 20)
        };
        assert!(ok(vec![entry(0, 10), entry(19, 10)], 36).unwrap().is_some());
        // Not starting at 0; overlapping; a gap of 3; past the end; a huge
        // length that would overflow; an impossible size; too little after
        // the last message's end.
        assert!(ok(vec![entry(1, 10)], 18).is_err());
        assert!(ok(vec![entry(0, 10), entry(16, 10)], 36).is_err());
        assert!(ok(vec![entry(0, 10), entry(20, 10)], 37).is_err());
        assert!(ok(vec![entry(0, 10), entry(19, 10)], 35).is_err());
        assert!(ok(vec![entry(0, u64::MAX - 3)], 20).is_err());
        assert!(
            ok(
                vec![Entry {
                    size_extra: 13,
                    ..entry(0, 10)
                }],
                17
            )
            .is_err()
        );
        assert!(ok(vec![entry(0, 10)], 20).is_err());
    }
}
