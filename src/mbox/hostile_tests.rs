//! Tests of pop3d's own files next to a mailbox (the expunge journal, the
//! retired-UIDL file) as their owner may write them: the mail user can put
//! any bytes there, and one daemon serves everybody, so no value in them may
//! make it panic, allocate or read without bound, lengthen the mailbox, or
//! block. A refused journal leaves the mailbox as it was.

use std::fs;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};

use super::file::FileId;
use super::journal;
use super::{ExpungeStep, Mailbox, retired};
use crate::config::{EXPUNGE_BUDGET, MailboxLimits};

const F: &str = "From sender@example.org Mon Jan  1 00:00:00 2024\n";

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("pop3d-hostile-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    /// A mailbox `u` of `size` bytes (one message).
    fn mailbox(&self, size: usize) -> PathBuf {
        let p = self.0.join("u");
        let mut m = format!("{F}A: 1\n\n").into_bytes();
        m.resize(size - 1, b'x');
        m.push(b'\n');
        fs::write(&p, m).unwrap();
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn limits() -> MailboxLimits {
    MailboxLimits {
        lock_wait: Duration::from_millis(200),
        max_messages: 1000,
        ..MailboxLimits::default()
    }
}

fn id_of(p: &Path) -> FileId {
    let m = fs::metadata(p).unwrap();
    FileId {
        dev: m.dev(),
        ino: m.ino(),
        birth: 0,
    }
}

/// What a journal header says (the layout `journal.rs` writes).
struct Head {
    old_size: u64,
    new_len: u64,
    nruns: u64,
    nretire: u64,
    block: u64,
    plan_md5: [u8; 16],
}

fn header(id: FileId, h: &Head) -> [u8; 120] {
    let mut b = [0u8; 120];
    b[..16].copy_from_slice(b"pop3d-journal v1");
    let fields = [
        id.dev, id.ino, h.old_size, h.new_len, h.nruns, h.nretire, h.block,
    ];
    for (i, v) in fields.into_iter().enumerate() {
        b[16 + 8 * i..24 + 8 * i].copy_from_slice(&v.to_le_bytes());
    }
    b[88..104].copy_from_slice(&h.plan_md5);
    let sum = Md5::digest(&b[..104]);
    b[104..120].copy_from_slice(&sum);
    b
}

/// Writes a well-formed journal for `mbox` whose plan is `runs` (src, len),
/// no retired ids, blocks of `block` bytes. Returns its path.
fn journal_with(mbox: &Path, runs: &[(u64, u64)], block: u64) -> PathBuf {
    let mut plan = Vec::new();
    let mut new_len = 0u64;
    for &(src, len) in runs {
        plan.extend_from_slice(&src.to_le_bytes());
        plan.extend_from_slice(&len.to_le_bytes());
        new_len = new_len.wrapping_add(len);
    }
    let head = Head {
        old_size: fs::metadata(mbox).unwrap().len(),
        new_len,
        nruns: runs.len() as u64,
        nretire: 0,
        block,
        plan_md5: Md5::digest(&plan).into(),
    };
    let mut bytes = vec![0u8; 4096];
    bytes[..120].copy_from_slice(&header(id_of(mbox), &head));
    bytes.extend_from_slice(&plan);
    let j = journal::path(mbox);
    fs::write(&j, bytes).unwrap();
    j
}

/// A record header (the layout `journal.rs` writes) for slot data checks
/// that are not used (`data` false).
fn record(seq: u64, kind: u8, run: u64, off: u64, len: u64) -> [u8; 128] {
    let mut r = [0u8; 128];
    r[..4].copy_from_slice(b"P3JB");
    r[4..12].copy_from_slice(&seq.to_le_bytes());
    r[12] = kind;
    r[16..24].copy_from_slice(&run.to_le_bytes());
    r[24..32].copy_from_slice(&off.to_le_bytes());
    r[32..40].copy_from_slice(&len.to_le_bytes());
    let sum = Md5::digest(&r[..80]);
    r[80..96].copy_from_slice(&sum);
    r
}

/// A block record of run 0 that says mail appended after a crash starts
/// at `ext_src`.
fn ext_record(ext_src: u64) -> [u8; 128] {
    let mut r = record(0, 1, 0, 0, 10);
    r[56..64].copy_from_slice(&ext_src.to_le_bytes());
    let sum = Md5::digest(&r[..80]);
    r[80..96].copy_from_slice(&sum);
    r
}

/// Opens `mbox` with its crafted journal: the opening must fail (the
/// journal refused, not acted on), the mailbox must be byte for byte as
/// before, and the journal must be left for the administrator.
fn refused(mbox: &Path, what: &str) {
    let before = fs::read(mbox).unwrap();
    let t = Instant::now();
    let r = Mailbox::open(mbox, &limits());
    assert!(r.is_err(), "{what}: the journal was used");
    assert!(t.elapsed() < Duration::from_secs(5), "{what}: slow refusal");
    assert!(fs::read(mbox).unwrap() == before, "{what}: mailbox changed");
    assert!(journal::path(mbox).exists(), "{what}: journal removed");
}

#[test]
fn journals_with_impossible_plans_are_refused() {
    let d = Dir::new("plans");
    let mbox = d.mailbox(64 * 1024);
    let size = 64 * 1024u64;
    let cases: &[(&str, Vec<(u64, u64)>)] = &[
        // Destinations above their sources (runs out of order): would copy
        // each run past the end, doubling the file.
        (
            "runs above their sources",
            vec![(0, size), (0, size), (0, 2 * size)],
        ),
        // A run past the old size: its truncation would lengthen the file.
        ("a run past the end", vec![(0, 1 << 40)]),
        ("lengths that overflow", vec![(0, u64::MAX), (0, 2)]),
        ("overlapping runs", vec![(0, 100), (50, 100)]),
        ("an empty run", vec![(0, 100), (200, 0)]),
    ];
    for (what, runs) in cases {
        journal_with(&mbox, runs, 1 << 20);
        refused(&mbox, what);
    }
    // Block sizes beyond what pop3d makes (reading a slot would take hours).
    for block in [0, 1 << 40] {
        journal_with(&mbox, &[(100, 100)], block);
        refused(&mbox, &format!("block size {block}"));
    }
}

#[test]
fn journal_counts_beyond_the_message_limit_are_refused_before_reading() {
    let d = Dir::new("counts");
    let mbox = d.mailbox(4096);
    let size = 4096;
    for (nruns, nretire) in [(1, u64::MAX), (1 << 36, 0), (1, 1001), (1001, 0)] {
        // A sparse journal as long as the plan would be: nothing but the
        // message limit stops the reading.
        let head = Head {
            old_size: size,
            new_len: size,
            nruns,
            nretire,
            block: 1 << 20,
            plan_md5: [0; 16],
        };
        let j = journal::path(&mbox);
        let f = fs::File::create(&j).unwrap();
        f.write_all_at(&header(id_of(&mbox), &head), 0).unwrap();
        f.set_len(4096 + (1 << 40)).unwrap();
        drop(f);
        refused(&mbox, &format!("{nruns} runs, {nretire} retired ids"));
    }
}

#[test]
fn journal_records_out_of_range_are_refused() {
    let d = Dir::new("records");
    let mbox = d.mailbox(8192);
    let slots_at = 8192u64; // the header and a one-run plan take the first 4 KiB
    let cases = [
        (
            "sequence number at its end",
            record(u64::MAX, 2, 2, 0, 8192),
        ),
        ("offset that overflows", record(0, 1, 0, u64::MAX, 2)),
        ("block longer than its run", record(0, 1, 0, 0, 9000)),
        ("run that is not in the plan", record(0, 1, 7, 0, 10)),
        ("appended mail inside the old file", ext_record(50)),
    ];
    for (what, rec) in cases {
        let j = journal_with(&mbox, &[(100, 8092)], 1 << 20);
        let f = fs::OpenOptions::new().write(true).open(&j).unwrap();
        f.write_all_at(&rec, slots_at).unwrap();
        drop(f);
        refused(&mbox, what);
    }
}

/// A journal made on a nearly full disk has blocks of 4 KiB: it must be
/// finished after a crash like any other.
#[test]
fn a_journal_with_small_blocks_is_finished() {
    let d = Dir::new("small");
    let mut data = Vec::new();
    for k in 0..30 {
        if k > 0 {
            data.push(b'\n');
        }
        data.extend_from_slice(F.as_bytes());
        data.extend_from_slice(format!("M: {k}\n\n{}\n", "y".repeat(3000)).as_bytes());
    }
    let mbox = d.0.join("u");
    fs::write(&mbox, &data).unwrap();
    let mb = Mailbox::open(&mbox, &limits()).unwrap();
    let entries = &mb.index.entries;
    // Keep messages 2.. : one run from the second From_ line to the end.
    let src = entries[1].raw_start;
    journal_with(&mbox, &[(src, data.len() as u64 - src)], 4096);
    drop(mb);
    let mb = Mailbox::open(&mbox, &limits()).unwrap();
    assert_eq!(mb.count(), 29);
    assert_eq!(fs::read(&mbox).unwrap(), &data[src as usize..]);
    assert!(!journal::path(&mbox).exists());
}

#[test]
fn a_fifo_for_the_retired_ids_fails_at_once() {
    let d = Dir::new("fifo");
    let mbox = d.mailbox(4096);
    let owner = fs::metadata(&mbox).unwrap().uid();
    let ids = retired::path(&mbox);
    // A regular file passes the reading check; a FIFO put in its place
    // before the append must not block the appending.
    fs::write(&ids, b"pop3d-uids v1\n\0\0").unwrap();
    let key = ([7u8; 8], [0u8; 4], 0u32);
    let (tx, rx) = std::sync::mpsc::channel();
    let p = mbox.clone();
    let fifo = d.0.join("fifo");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    fs::rename(&fifo, &ids).unwrap();
    std::thread::spawn(move || {
        let _ = tx.send(retired::commit(&p, (owner, 0), &[key], None).is_err());
    });
    let failed = rx.recv_timeout(Duration::from_secs(10));
    assert_eq!(failed, Ok(true), "commit to a FIFO blocked or succeeded");
    let m = fs::symlink_metadata(&ids).unwrap();
    assert!(m.file_type().is_fifo(), "the FIFO was replaced");
}

/// Deleting many small messages apart (every other one here) moves 1000
/// kept stretches; a block costs up to three fsyncs, so blocks must span
/// stretches: a block per stretch would take 250 steps of four.
#[test]
fn scattered_deletions_take_few_blocks() {
    let d = Dir::new("scattered");
    let mbox = d.0.join("u");
    let mut data = Vec::new();
    let n = 2000;
    for k in 0..n {
        if k > 0 {
            data.push(b'\n');
        }
        data.extend_from_slice(F.as_bytes());
        data.extend_from_slice(format!("M: {k}\n\nx\n").as_bytes());
    }
    fs::write(&mbox, &data).unwrap();
    let lim = MailboxLimits {
        max_messages: 10_000,
        ..limits()
    };
    let mut mb = Mailbox::open(&mbox, &lim).unwrap();
    let deleted: Vec<bool> = (0..n).map(|i| i % 2 == 0).collect();
    mb.expunge_start(&deleted);
    let mut steps = 0;
    loop {
        steps += 1;
        match mb.expunge_step(EXPUNGE_BUDGET).unwrap() {
            ExpungeStep::Done(_) => break,
            ExpungeStep::Waiting(_) => panic!("no lock"),
            _ => {}
        }
    }
    assert!(steps <= 5, "{steps} steps");
    let mb = Mailbox::open(&mbox, &lim).unwrap();
    assert_eq!(mb.count(), n / 2);
    // Each kept message with the empty line after it, but the last.
    let want: Vec<u8> = (0..n)
        .filter(|k| k % 2 == 1)
        .flat_map(|k| {
            let sep = if k == n - 1 { "" } else { "\n" };
            format!("{F}M: {k}\n\nx\n{sep}").into_bytes()
        })
        .collect();
    let got = fs::read(&mbox).unwrap();
    assert!(got == want, "kept messages differ");
}

/// Blocks that cannot be staged (gaps of a block or more) are one per
/// kept stretch; a step's byte budget counts each block's fsyncs, so that a
/// journal of many such tiny stretches (its owner can write one) still
/// takes many short steps, not one that stalls every other session.
#[test]
fn a_step_does_few_blocks_however_small() {
    let d = Dir::new("steps");
    let mbox = d.0.join("u");
    let n = 1000u64;
    let size = 4096 * (n + 1) + n;
    let mut data = vec![b'.'; size as usize];
    let runs: Vec<(u64, u64)> = (0..n).map(|i| (4096 * (i + 1) + i, 1)).collect();
    for (i, &(src, _)) in runs.iter().enumerate() {
        data[src as usize] = b'a' + (i % 26) as u8;
    }
    fs::write(&mbox, &data).unwrap();
    journal_with(&mbox, &runs, 4096);
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&mbox)
        .unwrap();
    let owner = fs::metadata(&mbox).unwrap().uid();
    let found = journal::Compactor::resume(&mbox, &file, id_of(&mbox), owner, size, 10_000);
    let Ok(journal::Found::Resume(mut c)) = found else {
        panic!("not resumed: {found:?}");
    };
    let mut steps = 0;
    while !c.step(&file, EXPUNGE_BUDGET).unwrap() {
        steps += 1;
    }
    assert!(steps >= 200, "{steps} steps for {n} blocks");
    let want: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
    assert_eq!(fs::read(&mbox).unwrap(), want);
}
