//! Crash-safe in-place compaction: the expunge journal `DIR/.NAME.pop3d-journal`
//! and the [`Compactor`] that moves bytes by it, in bounded steps, and can be
//! resumed from it after a crash at any byte.
//!
//! **The plan.** An expunge keeps some byte ranges of the mailbox ("runs":
//! maximal stretches of kept messages, and the mail appended during the
//! session) and moves each down to where the runs before it end. Run `i`
//! goes from `src` to `dst <= src`; `gap = src - dst` only grows from run to
//! run. The journal is created (`O_EXCL`, mode 0600) with a header naming the
//! mailbox (device, inode), its size `S` when the plan was made, the new
//! length `N`, the runs and the UIDLs to retire, all under an MD5 checksum;
//! it is fsynced, and its directory too, before the mailbox is written.
//!
//! **Blocks.** Runs are copied front to back in blocks. Before a block's first
//! byte is written, a record of it goes into one of two slots of the journal
//! (alternating; sequence number, run, offset, length, MD5) and is fsynced —
//! after the mailbox was fdatasynced, so every earlier block is durable. A
//! block never overwrites the bytes it reads:
//! - where the gap is at least the block size, a block is at most one gap
//!   (less a truncation nonce, see below) long, so its writes end below its
//!   own source; redoing it reads its source again;
//! - where the gap is smaller, source and destination overlap, so the block
//!   (at most [`JOURNAL_BLOCK`] bytes, over as many kept runs as it takes:
//!   their destinations are contiguous, and gaps only grow along the file,
//!   so deleting many small messages apart costs a few blocks, not three
//!   fsyncs per kept run) is first copied into the record's slot
//!   ("staged", streamed through [`COPY_CHUNK`] bytes of memory) and only then
//!   written to its destination: a redo copies it from the journal and reads
//!   nothing it may have overwritten. The staged bytes are fsynced before
//!   the record naming them is written: the record's checksum of them is a
//!   fast non-cryptographic sum ([`DataSum`]; an MD5 of a 16 MiB block costs
//!   far more than the fsync), so the order, not the sum, is what keeps a
//!   power cut from leaving a valid record over torn data. The journal
//!   reserves the disk space of both slots when it is created (`fallocate`),
//!   halving the block size (down to 4 KiB) while the disk has not that much
//!   room, and is refused (nothing deleted) when it has not even that; so
//!   staging never finds the disk full. Where the file system cannot reserve, the block size is
//!   chosen the same way from the free space it reports (`fstatvfs`), and a
//!   block the disk still fills up under (other writers, quotas) is cut to
//!   what was staged; where nothing could be staged, the expunge stops with
//!   its journal kept, and the next login with room finishes it.
//!
//! Writes of a block never reach the source of any later block (sources lie
//! above every write so far), so after a crash the last valid record says
//! where to continue: redo that block, then go on. A torn record (bad MD5)
//! means its block had not started; the other slot then holds the block
//! before it, which is redone instead.
//!
//! **Truncation.** When every run is copied, the new length `F` is known.
//! A random nonce (first byte NUL, which no appended mbox data starts with)
//! is written at offset `F`, the mailbox fdatasynced, a truncate record
//! fsynced, then the file truncated to `F` and fsynced. After a crash, the
//! nonce still at `F` means "not truncated yet"; anything else means it was
//! (and perhaps mail was appended since, which must stay).
//!
//! **Recovery** happens when the mailbox is next opened, under the exclusive
//! lock, before it is scanned: [`Compactor::resume`] reads the journal and
//! the compaction continues where it stopped (roll forward: nothing is
//! lost, nothing duplicated, the file parses). Mail appended after the crash
//! (an MDA that found our dotlock stale) lies past `S` and is carried along
//! as one more run. A journal whose header or plan is torn was written
//! before any mailbox byte was, and is simply removed (roll back). A journal
//! for another inode (the mailbox was replaced) is stale and removed. A
//! journal not owned by the mailbox's owner, or writable by others, is
//! never trusted: the mailbox is then refused until an administrator looks.
//!
//! **Power loss** is covered by the fsync order above, given a file system
//! that honours fsync; a SIGKILL or abort at any byte needs none of it.
//! Each step also asks the kernel to start writing back what it wrote
//! (`sys/writeback.rs`), so that the fsyncs wait less and the disk works
//! while the next bytes are copied. That changes no order: a write is only
//! issued once everything it must follow is durable, since the kernel may
//! write a dirty page back at any moment anyway.
//!
//! **Where.** Next to the mailbox, in the spool directory, like the dotlock:
//! it needs the same write access (the spool's group), made by the identity
//! the expunge runs as and handed to the mailbox's owner. If it cannot be
//! made, the expunge is refused (nothing deleted; logged with the reason).
//! There is deliberately no fallback: compacting without a journal is what
//! loses or duplicates mail on a crash, and a journal elsewhere (`/tmp`)
//! would neither survive a reboot nor be safe from other users.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use super::file::{FileId, no_space, read_upto, sibling};
use super::scan::DataSum;
use super::uidl::UidKey;
use crate::config::{COPY_CHUNK, JOURNAL_BLOCK};
use crate::sys::reserve::{available, reserve};

const MAGIC: &[u8; 16] = b"pop3d-journal v1";
const HEADER: usize = 4096;
const REC_MAGIC: &[u8; 4] = b"P3JB";
const REC_HEADER: usize = 128;
/// Record header layout: fields in 0..64 (the last one: where mail appended
/// after a crash starts, 0 if none), data checksum in 64..80, MD5 of 0..80 in
/// 80..96.
const REC_FIELDS: usize = 64;
const KIND_BLOCK: u8 = 1;
const KIND_TRUNCATE: u8 = 2;
const NONCE: usize = 16;

/// The journal's path for the mailbox at `mailbox`.
pub fn path(mailbox: &Path) -> PathBuf {
    sibling(mailbox, ".pop3d-journal")
}

/// A byte range that is kept: `len` bytes at `src` go to `dst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// Where the bytes are now.
    pub src: u64,
    /// How many.
    pub len: u64,
    /// Where they go (`dst <= src`).
    pub dst: u64,
}

impl Run {
    /// Whether blocks of `block` bytes of this run go through the journal:
    /// it moves, by less than a block, so source and destination overlap.
    fn staged(&self, block: u64) -> bool {
        self.src != self.dst && self.src - self.dst < block
    }
}

/// What an expunge is going to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The mailbox.
    pub id: FileId,
    /// Its size when the plan was made.
    pub old_size: u64,
    /// The kept runs in file order, with their destinations.
    pub runs: Vec<Run>,
    /// UIDLs to retire once the compaction is complete.
    pub retire: Vec<UidKey>,
}

impl Plan {
    /// Builds a plan from the kept `(src, len)` ranges in file order.
    pub fn new(id: FileId, old_size: u64, kept: &[(u64, u64)], retire: Vec<UidKey>) -> Plan {
        let mut dst = 0;
        let runs = kept
            .iter()
            .filter(|&&(_, len)| len > 0)
            .map(|&(src, len)| {
                let r = Run { src, len, dst };
                dst += len;
                r
            })
            .collect();
        Plan {
            id,
            old_size,
            runs,
            retire,
        }
    }

    /// Bytes the compaction copies: the runs that do not stay where they are.
    pub fn moving(&self) -> u64 {
        self.runs
            .iter()
            .filter(|r| r.src != r.dst)
            .map(|r| r.len)
            .sum()
    }

    /// The length of the compacted file (before mail appended after a crash).
    pub fn new_len(&self) -> u64 {
        self.runs.last().map_or(0, |r| r.dst + r.len)
    }

    fn plan_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity((self.runs.len() + self.retire.len()) * 16);
        for r in &self.runs {
            v.extend_from_slice(&r.src.to_le_bytes());
            v.extend_from_slice(&r.len.to_le_bytes());
        }
        for k in &self.retire {
            v.extend_from_slice(&k.0);
            v.extend_from_slice(&k.1);
            v.extend_from_slice(&k.2.to_le_bytes());
        }
        v
    }

    fn header(&self, plan: &[u8], block: u64) -> [u8; 120] {
        let mut h = [0u8; 120];
        h[..16].copy_from_slice(MAGIC);
        for (i, v) in [
            self.id.dev,
            self.id.ino,
            self.old_size,
            self.new_len(),
            self.runs.len() as u64,
            self.retire.len() as u64,
            block,
        ]
        .into_iter()
        .enumerate()
        {
            h[16 + 8 * i..24 + 8 * i].copy_from_slice(&v.to_le_bytes());
        }
        h[72..88].copy_from_slice(&self.id.birth.to_le_bytes());
        h[88..104].copy_from_slice(&Md5::digest(plan)[..]);
        let sum = Md5::digest(&h[..104]);
        h[104..120].copy_from_slice(&sum[..]);
        h
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// The range of a file from the first to the last byte one step wrote
/// (one or two slots of the journal; one stretch of the mailbox).
#[derive(Clone, Copy, Debug, Default)]
struct Span {
    from: u64,
    to: u64,
}

impl Span {
    fn add(&mut self, at: u64, len: u64) {
        if self.from == self.to {
            *self = Span {
                from: at,
                to: at + len,
            };
        } else {
            self.from = self.from.min(at);
            self.to = self.to.max(at + len);
        }
    }

    fn start_writeback(&self, file: &File) {
        if self.to > self.from {
            crate::sys::writeback::start(file, self.from, self.to - self.from);
        }
    }
}

/// Test hook: with `POP3D_FAULT_EXPUNGE_AT=N` in the environment of a debug
/// build, the process aborts once N bytes were written by compactions (the
/// write that crosses N is cut at exactly N). Truncating and removing the
/// journal count as one byte each. Release builds ignore the variable.
pub(crate) mod fault {
    use crate::config::JOURNAL_BLOCK;

    #[cfg(debug_assertions)]
    mod imp {
        use std::sync::OnceLock;
        use std::sync::atomic::{AtomicU64, Ordering};

        static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
        static WRITTEN: AtomicU64 = AtomicU64::new(0);

        fn limit() -> Option<u64> {
            *LIMIT.get_or_init(|| {
                std::env::var("POP3D_FAULT_EXPUNGE_AT")
                    .ok()
                    .and_then(|v| v.parse().ok())
            })
        }

        /// Bytes counted so far.
        pub fn written() -> u64 {
            WRITTEN.load(Ordering::Relaxed)
        }

        /// How many of `len` bytes may be written before the fault.
        pub fn allow(len: usize) -> usize {
            let Some(limit) = limit() else {
                WRITTEN.fetch_add(len as u64, Ordering::Relaxed);
                return len;
            };
            let done = WRITTEN.load(Ordering::Relaxed);
            let left = limit.saturating_sub(done);
            let n = (len as u64).min(left) as usize;
            WRITTEN.fetch_add(n as u64, Ordering::Relaxed);
            n
        }

        pub fn abort() -> ! {
            std::process::abort()
        }

        pub fn hold() -> bool {
            std::env::var_os("POP3D_DEBUG_EXPUNGE_HOLD")
                .is_some_and(|p| std::path::Path::new(&p).exists())
        }

        pub fn no_reserve() -> bool {
            std::env::var_os("POP3D_DEBUG_NO_RESERVE").is_some()
        }
    }

    #[cfg(not(debug_assertions))]
    mod imp {
        pub fn written() -> u64 {
            0
        }
        pub fn allow(len: usize) -> usize {
            len
        }
        pub fn abort() -> ! {
            unreachable!()
        }
        pub fn hold() -> bool {
            false
        }
        pub fn no_reserve() -> bool {
            false
        }
    }

    /// `pwrite` of all of `buf`, honouring the fault hook.
    pub fn write_at(file: &std::fs::File, buf: &[u8], at: u64) -> std::io::Result<()> {
        write_counted_at(file, buf, at).map_err(|(_, e)| e)
    }

    /// [`write_at`], whose failure also says how many bytes of `buf` were
    /// written before it.
    pub fn write_counted_at(
        file: &std::fs::File,
        buf: &[u8],
        at: u64,
    ) -> Result<(), (usize, std::io::Error)> {
        use std::io::ErrorKind;
        use std::os::unix::fs::FileExt;
        let n = imp::allow(buf.len());
        let mut done = 0;
        while done < n {
            match file.write_at(&buf[done..n], at + done as u64) {
                Ok(0) => return Err((done, ErrorKind::WriteZero.into())),
                Ok(k) => done += k,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err((done, e)),
            }
        }
        if n < buf.len() {
            imp::abort();
        }
        Ok(())
    }

    /// The journal block size: [`JOURNAL_BLOCK`], or in debug builds
    /// `POP3D_DEBUG_JOURNAL_BLOCK` (from 4 KiB, the smallest a nearly full
    /// disk gives), so that tests reach blocks of both kinds with small
    /// mailboxes.
    pub fn block_size() -> u64 {
        #[cfg(debug_assertions)]
        if let Some(b) = std::env::var("POP3D_DEBUG_JOURNAL_BLOCK")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
        {
            return b.clamp(super::BLOCK_MIN, JOURNAL_BLOCK as u64);
        }
        JOURNAL_BLOCK as u64
    }

    /// Bytes counted by the fault hook so far (0 in release builds).
    pub fn written() -> u64 {
        imp::written()
    }

    /// Test hook: in a debug build with `POP3D_DEBUG_EXPUNGE_HOLD=PATH` in
    /// the environment, a committed compaction copies nothing while `PATH`
    /// exists (it keeps its locks), so that tests can start a delivery
    /// agent or a session while an expunge is certainly in the middle.
    /// Always false in release builds.
    pub fn hold() -> bool {
        imp::hold()
    }

    /// Test hook: in a debug build with `POP3D_DEBUG_NO_RESERVE` in the
    /// environment, the journal reserves nothing, as on a file system
    /// without `fallocate`. Always false in release builds.
    pub fn no_reserve() -> bool {
        imp::no_reserve()
    }

    /// A one-byte event (truncate, unlink) for the fault hook.
    pub fn event() {
        if imp::allow(1) == 0 {
            imp::abort();
        }
    }
}

/// The 16-byte check of a record's staged data (a fast hash is enough to
/// tell a torn or stale slot: nobody but the mailbox's owner writes here).
fn data_check(sum: DataSum) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[..8].copy_from_slice(&sum.finish().to_le_bytes());
    c[8..].copy_from_slice(b"datasum1");
    c
}

/// A journal record read back: sequence number and header bytes (its data,
/// if any, was checked in place).
type Record = (u64, Vec<u8>);

/// Which part of the compaction comes next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Moving,
    Truncating,
    Done,
}

/// A block being copied: `len` bytes from position (`run`, `off`) on. A
/// block copied directly lies within one run; a staged block may span
/// several (their destinations are contiguous), so that deleting many small
/// messages apart costs a few blocks, not three fsyncs per kept stretch.
#[derive(Clone, Debug)]
struct Block {
    run: usize,
    off: u64,
    len: u64,
    /// Its bytes go through the journal (source and destination overlap).
    data: bool,
    /// Bytes staged into the journal (data blocks) so far, and their checksum.
    staged: u64,
    sum: Option<DataSum>,
    /// Where staging reads next: `staged` bytes after (`run`, `off`).
    cursor: (usize, u64),
    /// The record is written: bytes copied to the destination so far.
    applying: Option<u64>,
}

/// A compaction by a journal, stepped in bounded pieces.
#[derive(Debug)]
pub struct Compactor {
    jpath: PathBuf,
    journal: File,
    slots_at: u64,
    /// Largest staged block (the journal's slot size less the header).
    block_max: u64,
    plan: Plan,
    /// Mail appended after a crash: one more run, from `old_size` on.
    ext: Option<Run>,
    run: usize,
    off: u64,
    block: Option<Block>,
    seq: u64,
    buf: Vec<u8>,
    phase: Phase,
    /// A truncate record whose nonce is still in place at this length: it
    /// must not be written again (a torn rewrite would lose the mark).
    marked: Option<u64>,
}

/// What [`Compactor::resume`] found.
#[derive(Debug)]
pub enum Found {
    /// No journal.
    None,
    /// A journal that was removed without doing anything: torn before any
    /// mailbox byte was written, or for another file. The text says which.
    Discarded(String),
    /// A compaction to finish.
    Resume(Box<Compactor>),
}

fn slots_at(plan_len: usize) -> u64 {
    (HEADER + plan_len).div_ceil(4096) as u64 * 4096
}

/// The smallest block a journal on a nearly full disk falls back to.
const BLOCK_MIN: u64 = 4096;

/// What starting a block (up to three fsyncs: the mailbox's earlier writes,
/// the staged data, the record) counts against a step's budget, in bytes.
const BLOCK_COST: u64 = 256 * 1024;

/// Reserves the disk space of both record slots of a journal for `plan`
/// with blocks of `block` bytes (slots from `at`): each slot's record and
/// as much data as one block stages, if any is staged. Where the file
/// system cannot reserve, the free space it reports must hold the header,
/// the plan and both slots; that is no promise (other writers, quotas), and
/// staging then cuts a block short when the disk fills, see
/// [`Compactor::step`].
fn reserve_slots(journal: &File, plan: &Plan, at: u64, block: u64) -> io::Result<()> {
    let staged: u64 = plan
        .runs
        .iter()
        .filter(|r| r.staged(block))
        .map(|r| r.len)
        .sum();
    let need = REC_HEADER as u64 + staged.min(block);
    if !fault::no_reserve() && reserve(journal, at, need)? {
        reserve(journal, at + REC_HEADER as u64 + block, need)?;
    } else if at + 2 * need.next_multiple_of(4096) > available(journal)? {
        return Err(io::Error::from_raw_os_error(libc::ENOSPC));
    }
    Ok(())
}

fn sync_dir(p: &Path) {
    if let Some(dir) = p.parent()
        && let Ok(d) = File::open(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        })
    {
        let _ = d.sync_all();
    }
}

impl Compactor {
    /// Writes the journal for `plan` (next to the mailbox at `mailbox`, owned
    /// by `owner`) and returns the compaction, not yet started. Nothing in the
    /// mailbox is written here.
    ///
    /// The journal belongs to the mailbox's owner: made by a process running
    /// as root, it is handed over, so that a recovery running as the user can
    /// read it (and trusts it).
    pub fn create(mailbox: &Path, owner: (u32, u32), plan: Plan) -> io::Result<Compactor> {
        let jpath = path(mailbox);
        let plan_bytes = plan.plan_bytes();
        let at = slots_at(plan_bytes.len());
        let mut block = fault::block_size();
        let journal = loop {
            let journal = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY)
                .open(&jpath)?;
            match reserve_slots(&journal, &plan, at, block) {
                Ok(()) => break journal,
                Err(e) => {
                    // Removing the file gives back what was reserved.
                    drop(journal);
                    let _ = fs::remove_file(&jpath);
                    if !no_space(&e) || block <= BLOCK_MIN {
                        return Err(e);
                    }
                    block = (block / 2).max(BLOCK_MIN);
                }
            }
        };
        if journal.metadata()?.uid() != owner.0 {
            let _ = std::os::unix::fs::fchown(&journal, Some(owner.0), Some(owner.1));
        }
        let header = plan.header(&plan_bytes, block);
        let written = fault::write_at(&journal, &header, 0)
            .and_then(|()| fault::write_at(&journal, &plan_bytes, HEADER as u64))
            .and_then(|()| journal.sync_all());
        if let Err(e) = written {
            let _ = fs::remove_file(&jpath);
            return Err(e);
        }
        sync_dir(&jpath);
        Ok(Compactor {
            jpath,
            journal,
            slots_at: slots_at(plan_bytes.len()),
            block_max: block,
            plan,
            ext: None,
            run: 0,
            off: 0,
            block: None,
            seq: 0,
            buf: Vec::new(),
            phase: Phase::Moving,
            marked: None,
        })
    }

    /// Looks for a journal next to the mailbox `file` at `mailbox` (of
    /// identity `id`, owned by `owner`, now `size` bytes long) and, if there
    /// is a valid one, returns the compaction to finish. The caller holds
    /// the exclusive lock. A plan of more than `max_messages` kept runs or
    /// retired ids is refused.
    pub fn resume(
        mailbox: &Path,
        file: &File,
        id: FileId,
        owner: u32,
        size: u64,
        max_messages: usize,
    ) -> io::Result<Found> {
        let jpath = path(mailbox);
        let journal = match OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(&jpath)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Found::None),
            Err(e) => return Err(e),
        };
        let m = journal.metadata()?;
        if !m.is_file() || m.uid() != owner || m.mode() & 0o022 != 0 || m.nlink() != 1 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} is not a journal of the mailbox's owner; remove it after checking the mailbox",
                    jpath.display()
                ),
            ));
        }
        let discard = |why: &str| -> io::Result<Found> {
            fs::remove_file(&jpath)?;
            Ok(Found::Discarded(format!("{}: {why}", jpath.display())))
        };
        let mut h = [0u8; 120];
        if read_upto(&journal, &mut h, 0)? < h.len()
            || &h[..16] != MAGIC
            || Md5::digest(&h[..104])[..] != h[104..120]
        {
            return discard("torn before the mailbox was touched; nothing to do");
        }
        let (dev, ino, old_size, new_len) = (
            u64_at(&h, 16),
            u64_at(&h, 24),
            u64_at(&h, 32),
            u64_at(&h, 40),
        );
        let (nruns, nretire, block) = (u64_at(&h, 48), u64_at(&h, 56), u64_at(&h, 64));
        // The journal belongs to the mailbox's owner, who can write anything
        // into it (its sums are not secret): no value from it may make the
        // daemon allocate, read or write more than a real expunge of this
        // mailbox would.
        let invalid =
            |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("journal {what}"));
        if !(BLOCK_MIN..=JOURNAL_BLOCK as u64).contains(&block) {
            return Err(invalid("block size"));
        }
        // One run per kept message at most, one retired id per deleted one.
        let most = max_messages as u64;
        if nruns > most || nretire > most {
            return Err(invalid("plan size"));
        }
        let mut birth = [0u8; 16];
        birth.copy_from_slice(&h[72..88]);
        let birth = i128::from_le_bytes(birth);
        let born_else = birth != 0 && id.birth != 0 && birth != id.birth;
        if dev != id.dev || ino != id.ino || born_else {
            return discard("made for a file that is no longer this mailbox");
        }
        let plan_len = nruns
            .checked_add(nretire)
            .and_then(|n| n.checked_mul(16))
            .ok_or_else(|| invalid("plan size"))?;
        if HEADER as u64 + plan_len > m.len() {
            // The header went out, the plan not all of it: still nothing
            // was written to the mailbox.
            return discard("torn before the mailbox was touched; nothing to do");
        }
        let plan_len = plan_len as usize;
        let mut pb = vec![0u8; plan_len];
        if read_upto(&journal, &mut pb, HEADER as u64)? < plan_len
            || Md5::digest(&pb)[..] != h[88..104]
        {
            return discard("torn before the mailbox was touched; nothing to do");
        }
        let kept: Vec<(u64, u64)> = pb[..nruns as usize * 16]
            .chunks_exact(16)
            .map(|c| (u64_at(c, 0), u64_at(c, 8)))
            .collect();
        let retire = pb[nruns as usize * 16..]
            .chunks_exact(16)
            .map(|c| {
                let mut d = [0u8; 8];
                d.copy_from_slice(&c[..8]);
                let mut s = [0u8; 4];
                s.copy_from_slice(&c[8..12]);
                let mut k = [0u8; 4];
                k.copy_from_slice(&c[12..16]);
                (d, s, u32::from_le_bytes(k))
            })
            .collect();
        // Runs in file order, not empty, not overlapping, within the old
        // size: so every destination lies at or below its source, and the
        // compacted length is at most the old size.
        let mut end = 0u64;
        for &(src, len) in &kept {
            let stop = src
                .checked_add(len)
                .filter(|&e| len > 0 && src >= end && e <= old_size);
            end = stop.ok_or_else(|| invalid("plan runs"))?;
        }
        let plan = Plan::new(id, old_size, &kept, retire);
        if plan.new_len() != new_len {
            return Err(invalid("plan is inconsistent"));
        }
        let mut c = Compactor {
            jpath,
            journal,
            slots_at: slots_at(plan_len),
            block_max: block,
            plan,
            ext: None,
            run: 0,
            off: 0,
            block: None,
            seq: 0,
            buf: Vec::new(),
            phase: Phase::Moving,
            marked: None,
        };
        c.recover_position(file, size)?;
        // Below the size at the plan, the file can only be if it was
        // truncated at the end of the compaction.
        if size < c.plan.old_size && c.phase != Phase::Done {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "mailbox shrank to {size} bytes below the {} bytes of its unfinished expunge ({})",
                    c.plan.old_size,
                    c.jpath.display()
                ),
            ));
        }
        Ok(Found::Resume(Box::new(c)))
    }

    /// Sets the position from the newest valid record, and the extension
    /// run for mail appended after the crash (the file is now `size` long).
    fn recover_position(&mut self, file: &File, size: u64) -> io::Result<()> {
        let mut best: Option<Record> = None;
        for slot in 0..2u64 {
            if let Some((seq, head)) = self.read_slot(slot)?
                && best.as_ref().is_none_or(|b| seq > b.0)
            {
                best = Some((seq, head));
            }
        }
        let out_of_range =
            || io::Error::new(io::ErrorKind::InvalidData, "journal record out of range");
        let old = self.plan.old_size;
        let ext_src = match best.as_ref().map(|(_, h)| u64_at(h, 56)) {
            // Mail appended after a crash starts at or after the old end.
            Some(src) if src != 0 && src < old => return Err(out_of_range()),
            Some(src) if src != 0 => Some(src),
            _ if size > old => Some(old + self.appended_lead(file, size)?),
            _ => None,
        };
        self.ext = ext_src.filter(|&src| size > src).map(|src| Run {
            src,
            len: size - src,
            dst: self.plan.new_len(),
        });
        let Some((seq, head)) = best else {
            return Ok(()); // nothing was written yet: start at the beginning
        };
        self.seq = seq.checked_add(1).ok_or_else(out_of_range)?;
        let run = usize::try_from(u64_at(&head, 16)).unwrap_or(usize::MAX);
        let off = u64_at(&head, 24);
        let len = u64_at(&head, 32);
        if head[12] == KIND_BLOCK {
            // A staged block may span runs; one copied directly may not.
            let data = head[13] == 1;
            let valid = match self.run_at(run) {
                Some(r) if data => off < r.len && self.advance(run, off, len).is_some(),
                Some(r) => off.checked_add(len).is_some_and(|end| end <= r.len),
                None => false,
            };
            if !valid {
                return Err(out_of_range());
            }
            self.run = run;
            self.off = off;
            // Redo the whole block: from the journal, or from its source.
            self.block = Some(Block {
                run,
                off,
                len,
                data,
                staged: len,
                sum: None,
                cursor: (run, off),
                applying: Some(0),
            });
            return Ok(());
        }
        // A truncate record: everything below `final_len` was in place.
        let final_len = len;
        let nonce_len = usize::from(u16::from_le_bytes([head[14], head[15]])).min(NONCE);
        let mut now = [0u8; NONCE];
        let got = read_upto(file, &mut now[..nonce_len], final_len)?;
        if nonce_len > 0 && got == nonce_len && now[..nonce_len] == head[40..40 + nonce_len] {
            // Not truncated yet: continue from there (mail appended after
            // the crash may still have to be moved down).
            let ext_done = final_len.saturating_sub(self.plan.new_len());
            self.run = self.plan.runs.len();
            self.off = ext_done;
            if self.ext.is_none_or(|e| ext_done >= e.len) {
                self.phase = Phase::Truncating;
                self.marked = Some(final_len);
            }
        } else {
            self.phase = Phase::Done;
        }
        Ok(())
    }

    fn slot_size(&self) -> u64 {
        REC_HEADER as u64 + self.block_max
    }

    /// Empty lines that mail appended after the crash starts with, which must
    /// not follow the compacted file: where the old file's end was deleted,
    /// the kept part ends with a separator already (or is empty), and the
    /// MDA wrote them only because the deleted end lacked one. Read before
    /// anything from `old_size` on is written, so every recovery sees the
    /// same bytes; records keep the result afterwards.
    fn appended_lead(&self, file: &File, size: u64) -> io::Result<u64> {
        let old = self.plan.old_size;
        let kept_to_end = self.plan.runs.last().is_some_and(|r| r.src + r.len == old);
        if kept_to_end {
            return Ok(0);
        }
        let mut b = [0u8; 9];
        let n = read_upto(file, &mut b[..(size - old).min(9) as usize], old)?;
        let lead = b[..n]
            .iter()
            .take_while(|&&c| c == b'\n' || c == b'\r')
            .count();
        Ok(if b[lead..n].starts_with(b"From ") {
            lead as u64
        } else {
            0
        })
    }

    /// Where slot `slot`'s data starts.
    fn slot_data(&self, slot: u64) -> u64 {
        self.slots_at + slot * self.slot_size() + REC_HEADER as u64
    }

    /// A valid record in `slot`: (seq, header bytes). The data of a data
    /// record is checked against its checksum (streamed).
    fn read_slot(&mut self, slot: u64) -> io::Result<Option<Record>> {
        let at = self.slots_at + slot * self.slot_size();
        let mut head = vec![0u8; REC_HEADER];
        if read_upto(&self.journal, &mut head, at)? < REC_HEADER
            || &head[..4] != REC_MAGIC
            || Md5::digest(&head[..80])[..] != head[80..96]
        {
            return Ok(None);
        }
        if head[12] == KIND_BLOCK && head[13] == 1 {
            let len = u64_at(&head, 32);
            if len > self.block_max {
                return Ok(None);
            }
            let mut sum = DataSum::default();
            let mut done = 0;
            let data_at = self.slot_data(slot);
            self.buf.resize(COPY_CHUNK, 0);
            while done < len {
                let n = (len - done).min(COPY_CHUNK as u64) as usize;
                if read_upto(&self.journal, &mut self.buf[..n], data_at + done)? < n {
                    return Ok(None);
                }
                sum.update(&self.buf[..n]);
                done += n as u64;
            }
            if data_check(sum) != head[64..80] {
                return Ok(None);
            }
        }
        Ok(Some((u64_at(&head, 4), head)))
    }

    /// Writes a record header into the current slot and syncs the journal.
    fn write_record(
        &mut self,
        kind: u8,
        run: usize,
        off: u64,
        len: u64,
        nonce: &[u8],
        data_sum: Option<[u8; 16]>,
    ) -> io::Result<()> {
        let mut head = [0u8; REC_HEADER];
        head[..4].copy_from_slice(REC_MAGIC);
        head[4..12].copy_from_slice(&self.seq.to_le_bytes());
        head[12] = kind;
        head[13] = u8::from(data_sum.is_some());
        head[14..16].copy_from_slice(&(nonce.len() as u16).to_le_bytes());
        head[16..24].copy_from_slice(&(run as u64).to_le_bytes());
        head[24..32].copy_from_slice(&off.to_le_bytes());
        head[32..40].copy_from_slice(&len.to_le_bytes());
        head[40..40 + nonce.len()].copy_from_slice(nonce);
        const { assert!(40 + NONCE + 8 <= REC_FIELDS) };
        head[56..64].copy_from_slice(&self.ext.map_or(0, |e| e.src).to_le_bytes());
        if let Some(d) = data_sum {
            head[64..80].copy_from_slice(&d);
        }
        let sum = Md5::digest(&head[..80]);
        head[80..96].copy_from_slice(&sum[..]);
        let at = self.slots_at + (self.seq % 2) * self.slot_size();
        fault::write_at(&self.journal, &head, at)?;
        self.journal.sync_data()?;
        self.seq += 1;
        Ok(())
    }

    /// Run `i` (the last one may be the extension for mail appended after a crash).
    fn run_at(&self, i: usize) -> Option<Run> {
        match self.plan.runs.get(i) {
            Some(r) => Some(*r),
            None if i == self.plan.runs.len() => self.ext,
            None => None,
        }
    }

    /// The position `len` bytes after (`run`, `off`), counting the runs'
    /// bytes in order (a run's end is the next run's start); `None` past the
    /// last run.
    fn advance(&self, mut run: usize, mut off: u64, mut len: u64) -> Option<(usize, u64)> {
        while len > 0 {
            let room = self.run_at(run)?.len.checked_sub(off)?;
            if len < room {
                return Some((run, off + len));
            }
            len -= room;
            run += 1;
            off = 0;
        }
        Some((run, off))
    }

    /// The final length: all runs, the extension included.
    fn final_len(&self) -> u64 {
        self.plan.new_len() + self.ext.map_or(0, |e| e.len)
    }

    /// The plan (for the caller's bookkeeping after completion).
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Mail appended after a crash that this compaction carries along.
    pub fn appended_after_crash(&self) -> u64 {
        self.ext.map_or(0, |e| e.len)
    }

    /// True once the mailbox is compacted and truncated (the journal is still
    /// there until [`Compactor::finish`]).
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Does about `budget` bytes of work on `file`. Returns true when the
    /// compaction is complete (call [`Compactor::finish`] then).
    pub fn step(&mut self, file: &File, budget: usize) -> io::Result<bool> {
        let mut staged = Span::default();
        let mut moved = Span::default();
        let done = self.copy(file, budget, &mut staged, &mut moved);
        // The fsyncs to come find these bytes on their way to the disk.
        staged.start_writeback(&self.journal);
        moved.start_writeback(file);
        done
    }

    /// The body of [`Compactor::step`]; `staged` and `moved` grow by what
    /// it writes into the journal and the mailbox.
    fn copy(
        &mut self,
        file: &File,
        budget: usize,
        staged: &mut Span,
        moved: &mut Span,
    ) -> io::Result<bool> {
        let mut left = budget.max(1) as u64;
        if self.buf.len() < COPY_CHUNK {
            self.buf.resize(COPY_CHUNK, 0);
        }
        while left > 0 {
            match self.phase {
                Phase::Done => return Ok(true),
                Phase::Truncating => {
                    self.truncate(file)?;
                    return Ok(true);
                }
                Phase::Moving => {}
            }
            let Some(mut b) = self.block.take() else {
                self.next_block(file)?;
                // A block's syncs count as bytes: a step over many tiny
                // runs does a few blocks, not thousands of fsyncs.
                left = left.saturating_sub(BLOCK_COST);
                continue;
            };
            let r = self.run_at(b.run).expect("block of a known run");
            let slot = self.seq % 2; // the slot of this block's record (not yet written)
            match b.applying {
                None => {
                    // Staging a data block into the journal, a run at a time.
                    let from = self.run_at(b.cursor.0).expect("staged run");
                    let n = (b.len - b.staged)
                        .min(from.len - b.cursor.1)
                        .min(left)
                        .min(COPY_CHUNK as u64) as usize;
                    let data_at = self.slot_data(slot);
                    let chunk = &mut self.buf[..n];
                    file.read_exact_at(chunk, from.src + b.cursor.1)?;
                    let (k, full) =
                        match fault::write_counted_at(&self.journal, chunk, data_at + b.staged) {
                            Ok(()) => (n, None),
                            Err((k, e)) if no_space(&e) => (k, Some(e)),
                            Err((_, e)) => return Err(e),
                        };
                    staged.add(data_at + b.staged, k as u64);
                    if let Some(sum) = b.sum.as_mut() {
                        sum.update(&chunk[..k]);
                    }
                    b.staged += k as u64;
                    b.cursor.1 += k as u64;
                    if b.cursor.1 == from.len {
                        b.cursor = (b.cursor.0 + 1, 0);
                    }
                    left = left.saturating_sub(k as u64);
                    if let Some(e) = full {
                        // The disk is full or the quota used up: the block
                        // is cut to what was staged, if anything was.
                        if b.staged == 0 {
                            return Err(e);
                        }
                        b.len = b.staged;
                    }
                    if b.staged == b.len {
                        let sum = data_check(b.sum.take().unwrap_or_default());
                        self.journal.sync_data()?;
                        self.write_record(KIND_BLOCK, b.run, b.off, b.len, &[], Some(sum))?;
                        b.applying = Some(0);
                    }
                }
                Some(done) => {
                    let n = (b.len - done).min(left).min(COPY_CHUNK as u64) as usize;
                    // The record went out already: its slot is the previous seq's.
                    let data_at = self.slot_data((self.seq + 1) % 2);
                    let chunk = &mut self.buf[..n];
                    if b.data {
                        self.journal.read_exact_at(chunk, data_at + done)?;
                    } else {
                        file.read_exact_at(chunk, r.src + b.off + done)?;
                    }
                    // Destinations of consecutive runs are contiguous.
                    fault::write_at(file, chunk, r.dst + b.off + done)?;
                    moved.add(r.dst + b.off + done, n as u64);
                    let done = done + n as u64;
                    left = left.saturating_sub(n as u64);
                    if done == b.len {
                        (self.run, self.off) = self
                            .advance(b.run, b.off, b.len)
                            .expect("a block within the runs");
                        continue;
                    }
                    b.applying = Some(done);
                }
            }
            self.block = Some(b);
        }
        Ok(self.phase == Phase::Done)
    }

    /// Starts the next block, or moves on to truncation.
    fn next_block(&mut self, file: &File) -> io::Result<()> {
        loop {
            let Some(r) = self.run_at(self.run) else {
                self.phase = Phase::Truncating;
                return Ok(());
            };
            if self.off >= r.len || r.src == r.dst {
                self.run += 1;
                self.off = 0;
                continue;
            }
            let gap = r.src - r.dst;
            let rest = r.len - self.off;
            let data = r.staged(self.block_max);
            // Earlier blocks durable before their records may be replaced.
            if self.seq > 0 {
                file.sync_data()?;
            }
            let len = if data {
                // Gaps only grow along the file: the runs that follow are
                // staged too, until a gap reaches the block size.
                let mut len = rest;
                let mut next = self.run + 1;
                while len < self.block_max
                    && let Some(n) = self.run_at(next).filter(|n| n.staged(self.block_max))
                {
                    len += n.len;
                    next += 1;
                }
                len.min(self.block_max)
            } else {
                // Short of the gap by a nonce's length: the truncation
                // writes its nonce at the new end, which must not reach the
                // source of the last block (redone from there after a crash
                // before the truncate record is complete).
                rest.min(gap - NONCE as u64)
            };
            let mut b = Block {
                run: self.run,
                off: self.off,
                len,
                data,
                staged: 0,
                sum: data.then(DataSum::default),
                cursor: (self.run, self.off),
                applying: None,
            };
            if !data {
                self.write_record(KIND_BLOCK, b.run, b.off, b.len, &[], None)?;
                b.applying = Some(0);
            }
            self.block = Some(b);
            return Ok(());
        }
    }

    fn truncate(&mut self, file: &File) -> io::Result<()> {
        let final_len = self.final_len();
        let size = file.metadata()?.len();
        if final_len > size {
            // Only a damaged journal can ask for this: a truncation never
            // makes the mailbox longer.
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "journal asks to lengthen the mailbox",
            ));
        }
        if self.marked == Some(final_len) {
            // Recorded and marked before a crash: only the truncation is left.
            fault::event();
            file.set_len(final_len)?;
            file.sync_all()?;
            self.phase = Phase::Done;
            return Ok(());
        }
        let nonce_len = (size - final_len).min(NONCE as u64) as usize;
        let mut nonce = [0u8; NONCE];
        if nonce_len > 0 {
            let r1 = super::verify::random_u64().to_le_bytes();
            let r2 = super::verify::random_u64().to_le_bytes();
            nonce[1..8].copy_from_slice(&r1[1..]);
            nonce[8..].copy_from_slice(&r2);
            nonce[0] = 0;
            fault::write_at(file, &nonce[..nonce_len], final_len)?;
        }
        file.sync_data()?;
        self.write_record(
            KIND_TRUNCATE,
            self.plan.runs.len() + 1,
            0,
            final_len,
            &nonce[..nonce_len],
            None,
        )?;
        fault::event();
        file.set_len(final_len)?;
        file.sync_all()?;
        self.phase = Phase::Done;
        Ok(())
    }

    /// Removes the journal of a completed compaction.
    pub fn finish(self) -> io::Result<()> {
        debug_assert!(self.is_done());
        fault::event();
        fs::remove_file(&self.jpath)?;
        sync_dir(&self.jpath);
        Ok(())
    }
}
