//! Tests of [`Mailbox`] on real temporary files: opening and refusals, sizes
//! against encoder output, UIDLs, change detection, locking and expunge.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use super::*;
use crate::mbox::{dotlock, journal, retired, stored};
use crate::sys::lock::{try_lock, unlock};

/// A uniquely named path under the temp directory, removed on drop.
struct Temp(PathBuf);

impl Temp {
    fn new(tag: &str) -> Temp {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!(
            "pop3d-mbox-{}-{}-{}-{}",
            tag,
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            nanos
        );
        Temp(std::env::temp_dir().join(name))
    }

    fn with(tag: &str, data: &[u8]) -> Temp {
        let t = Temp::new(tag);
        fs::write(&t.0, data).unwrap();
        t
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn read(&self) -> Vec<u8> {
        fs::read(&self.0).unwrap()
    }

    fn append(&self, data: &[u8]) {
        use std::io::Write;
        let mut f = fs::OpenOptions::new().append(true).open(&self.0).unwrap();
        f.write_all(data).unwrap();
    }

    /// Overwrites bytes at `offset` without changing the length.
    fn patch(&self, offset: u64, data: &[u8]) {
        use std::os::unix::fs::FileExt;
        let f = fs::OpenOptions::new().write(true).open(&self.0).unwrap();
        f.write_all_at(data, offset).unwrap();
    }

    /// [`Temp::patch`], then puts the mtime back (as some editors do).
    fn patch_keeping_mtime(&self, offset: u64, data: &[u8]) {
        let before = fs::metadata(&self.0).unwrap().modified().unwrap();
        self.patch(offset, data);
        fs::File::options()
            .write(true)
            .open(&self.0)
            .unwrap()
            .set_modified(before)
            .unwrap();
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
        let _ = fs::remove_dir(&self.0);
        // The files pop3d keeps next to a mailbox.
        let _ = fs::remove_file(retired::path(&self.0));
        let _ = fs::remove_file(stored::path(&self.0));
    }
}

fn limits() -> MailboxLimits {
    MailboxLimits {
        lock_wait: Duration::from_millis(100),
        ..MailboxLimits::default()
    }
}

fn open(t: &Temp) -> Mailbox {
    Mailbox::open(t.path(), &limits()).unwrap()
}

fn refusal(t: &Temp, limits: &MailboxLimits) -> String {
    match Mailbox::open(t.path(), limits) {
        Err(MboxError::Refused(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

const F: &str = "From sender@example.org Mon Jan  1 00:00:00 2024\n";

fn mbox(messages: &[&[u8]]) -> Vec<u8> {
    let mut m = Vec::new();
    for (k, msg) in messages.iter().enumerate() {
        if k > 0 {
            m.push(b'\n');
        }
        m.extend_from_slice(F.as_bytes());
        m.extend_from_slice(msg);
    }
    m
}

/// Sends message `i` through `enc`, reading `chunk` bytes at a time into an
/// output buffer of `room` bytes. Returns everything sent and the stuffed dots.
fn send(mb: &Mailbox, i: usize, mut enc: Encoder, chunk: usize, room: usize) -> (Vec<u8>, u64) {
    let mut sent = Vec::new();
    let mut input = vec![0; chunk];
    let mut out = vec![0; room];
    let mut offset = 0;
    while !enc.done() {
        let n = mb.read_data(i, offset, &mut input).unwrap();
        if n == 0 {
            break;
        }
        offset += n as u64;
        let mut piece = &input[..n];
        while !piece.is_empty() {
            let (used, wrote) = enc.encode(piece, &mut out);
            sent.extend_from_slice(&out[..wrote]);
            piece = &piece[used..];
        }
    }
    let mut end = [0; 5];
    let n = enc.finish(&mut end);
    sent.extend_from_slice(&end[..n]);
    (sent, enc.stuffed())
}

fn uids(mb: &Mailbox) -> Vec<String> {
    (0..mb.count())
        .map(|i| mb.uid(i).as_str().to_string())
        .collect()
}

#[test]
fn missing_file_is_an_empty_mailbox() {
    let t = Temp::new("missing");
    let mut mb = open(&t);
    assert_eq!(mb.count(), 0);
    assert_eq!(mb.total_size(), 0);
    mb.verify().unwrap();
    assert_eq!(mb.expunge(&[]).unwrap(), Expunged::default());
    assert!(!t.path().exists(), "the file must not be created");
}

#[test]
fn empty_file_is_an_empty_mailbox() {
    let t = Temp::with("empty", b"");
    let mut mb = open(&t);
    assert_eq!(mb.count(), 0);
    mb.verify().unwrap();
    // Mail delivered later is invisible and harmless.
    t.append(&mbox(&[b"A: b\n\nc\n"]));
    mb.verify().unwrap();
    assert_eq!(mb.count(), 0);
    assert_eq!(mb.expunge(&[true]).unwrap(), Expunged::default());
    assert_eq!(t.read(), mbox(&[b"A: b\n\nc\n"]));
}

#[test]
fn refuses_what_is_not_a_regular_mbox() {
    let target = Temp::with("target", &mbox(&[b"A: b\n\nc\n"]));
    let link = Temp::new("link");
    std::os::unix::fs::symlink(target.path(), link.path()).unwrap();
    let why = refusal(&link, &limits());
    assert!(why.contains(&link.path().display().to_string()), "{why}");
    assert!(why.contains("symbolic link"), "{why}");

    let dir = Temp::new("dir");
    fs::create_dir(dir.path()).unwrap();
    assert!(refusal(&dir, &limits()).contains("directory"));

    let sock = Temp::new("sock");
    let _listener = std::os::unix::net::UnixListener::bind(sock.path()).unwrap();
    assert!(refusal(&sock, &limits()).contains("not a regular file"));

    let t = Temp::with("nofrom", b"\nFrom x\nA: b\n");
    let why = refusal(&t, &limits());
    assert!(why.contains(&t.path().display().to_string()), "{why}");
    assert!(why.contains("offset 0"), "{why}");

    let t = Temp::with("twofrom", format!("{F}{F}A: b\n").as_bytes());
    assert!(refusal(&t, &limits()).contains("no data"));
    let t = Temp::with("lastfrom", format!("{F}A: b\n\nc\n\n{F}").as_bytes());
    assert!(refusal(&t, &limits()).contains("no data"));
}

#[test]
fn refuses_over_limits() {
    let t = Temp::with(
        "limits",
        &mbox(&[b"A: 1\n\nx\n", b"A: 2\n\nx\n", b"A: 3\n\nx\n"]),
    );
    let few = MailboxLimits {
        max_messages: 2,
        ..limits()
    };
    let why = refusal(&t, &few);
    assert!(why.contains("more than 2 messages"), "{why}");
    let exact = MailboxLimits {
        max_messages: 3,
        ..limits()
    };
    assert_eq!(Mailbox::open(t.path(), &exact).unwrap().count(), 3);
    let small = MailboxLimits {
        max_bytes: 20,
        ..limits()
    };
    let why = refusal(&t, &small);
    assert!(why.contains("over the limit of 20 bytes"), "{why}");
}

#[test]
fn unwritable_file_is_an_error() {
    let t = Temp::with("readonly", &mbox(&[b"A: b\n\nc\n"]));
    // Readable by everyone, writable by nobody. Root may write anyway, so
    // as root this thread checks files as the user nobody.
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o444)).unwrap();
    let _as_nobody = (crate::sys::process::euid() == 0)
        .then(|| crate::sys::process::FsIdentity::enter(65534, 65534).unwrap());
    assert!(fs::File::open(t.path()).is_ok(), "the file is readable");
    match Mailbox::open(t.path(), &limits()) {
        Err(MboxError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied),
        other => panic!("a mailbox that cannot be written: {other:?}"),
    }
}

#[test]
fn sizes_equal_what_retr_sends() {
    let mut long = b"Subject: long\n\n".to_vec();
    long.extend(std::iter::repeat_n(b'x', 70_001));
    long.extend(b"\n.");
    long.extend(std::iter::repeat_n(b'.', 70_000));
    long.extend(b"\n");
    let messages: Vec<&[u8]> = vec![
        b"Subject: dots\n\n.\n..\n.x\nx.\n",
        b".Hdr: x\n\n>From me\nFrom\tx\n",
        b"Subject: 8bit\n\n\xe4\xf6\xfc\0\0\xff\n\0\n",
        b"Subject: cr\n\nbare\rcr\r\nmixed\r\r\n\r\n",
        b"Subject: crlf\r\n\r\nline\r\n.\r\n",
        b"Subject: no body\n\n",
        b"Subject: header only\n",
        &long,
        b"Subject: three\n\nlast line without newline",
    ];
    let t = Temp::with("sizes", &mbox(&messages));
    let mb = open(&t);
    assert_eq!(mb.count(), messages.len());
    for i in 0..mb.count() {
        let (whole, stuffed) = send(&mb, i, Encoder::retr(), 100_000, 300_000);
        assert_eq!(mb.size(i), whole.len() as u64 - stuffed - 3, "message {i}");
        assert!(whole.ends_with(b"\r\n.\r\n"));
        assert!(
            !whole.windows(3).any(|w| w == b"\r\r\n") || i == 3,
            "message {i}"
        );
        for (chunk, room) in [(1, 2), (3, 4), (4096, 7)] {
            assert_eq!(
                send(&mb, i, Encoder::retr(), chunk, room).0,
                whole,
                "message {i}"
            );
        }
    }
    // The stored data of a message is what follows its From_ line.
    let mut buf = vec![0; 64];
    let n = mb.read_data(0, 0, &mut buf).unwrap();
    assert_eq!(&buf[..n], messages[0]);
    assert_eq!(mb.data_len(0), messages[0].len() as u64);
    assert_eq!(mb.read_data(0, mb.data_len(0), &mut buf).unwrap(), 0);
    assert_eq!(mb.size(5), 20);
    assert_eq!(mb.size(8), 45);
    assert_eq!(
        send(&mb, 1, Encoder::retr(), 9, 9).0,
        b"..Hdr: x\r\n\r\n>From me\r\nFrom\tx\r\n.\r\n"
    );
    assert_eq!(
        send(&mb, 4, Encoder::top(0), 5, 5).0,
        b"Subject: crlf\r\n\r\n.\r\n"
    );
    assert_eq!(
        mb.total_size(),
        (0..mb.count()).map(|i| mb.size(i)).sum::<u64>()
    );
}

#[test]
fn popa3d_example_mailbox() {
    let m = format!(
        "{F}Subject: one\n\nbody1\n\n{F}Subject: two\n\nbody2\n\n{F}Subject: three\n\nbody3\n\n"
    );
    let t = Temp::with("stat", m.as_bytes());
    let mb = open(&t);
    assert_eq!((mb.count(), mb.total_size()), (3, 71));
    assert_eq!((mb.size(0), mb.size(1), mb.size(2)), (23, 23, 25));
}

#[test]
fn uidl_values() {
    let r = "Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\n";
    let m = mbox(&[
        b"Subject: none\n\nbody\n",
        format!("Subject: r\n{r}Date: later\nMessage-ID: <later>\n\nbody\n").as_bytes(),
    ]);
    let t = Temp::with("uidl", &m);
    let mb = open(&t);
    assert_eq!(uids(&mb), ["d98c1dd404b2008f", "fed9c3594b4c341c"]);
    // Headers end at the first empty line: a Received: in the body is ignored.
    let m = mbox(&[format!("Subject: x\n\n{r}").as_bytes()]);
    let t = Temp::with("uidl-body", &m);
    assert_eq!(uids(&open(&t)), ["d98c1dd404b2008f"]);
    // A folded selected header hashes its continuation lines too.
    let m = mbox(&[
        b"Received: from x\n by y\n\nb\n",
        b"Received: from x\n by z\n\nb\n",
    ]);
    let t = Temp::with("uidl-fold", &m);
    let u = uids(&open(&t));
    assert_ne!(u[0], u[1]);
    assert_eq!(u[0].len(), 16);
}

/// Opens `t` `budget` bytes of work at a time, as the event loop would.
fn open_in_steps(t: &Temp, budget: usize) -> Mailbox {
    let o = Opening::start(t.path(), &limits(), None).unwrap();
    o.finish_blocking(budget).unwrap()
}

#[test]
fn data_sums_are_read_for_the_uidls_that_use_them() {
    // The scan hashes no bodies; the messages sharing popa3d's id with an
    // earlier one are read again for their sums, a few bytes per step,
    // among messages that need none.
    let bodies: Vec<Vec<u8>> = (0..30)
        .map(|k| match k % 3 {
            0 => format!("Delivered-To: u{k}\n\nunique {k}\n").into_bytes(),
            1 => format!("Subject: s\n\nshared {}\n{}\n", k, "x".repeat(k * 40)).into_bytes(),
            _ => b"Subject: s\n\nthe same every time\n".to_vec(),
        })
        .collect();
    let parts: Vec<&[u8]> = bodies.iter().map(|b| &b[..]).collect();
    let t = Temp::with("lazy-sums", &mbox(&parts));
    let mb = open_in_steps(&t, 7);
    let plain = "d98c1dd404b2008f";
    let got = uids(&mb);
    let mut seen_same = 0;
    for (k, body) in bodies.iter().enumerate() {
        if k % 3 == 0 {
            assert_eq!(got[k].len(), 16, "{k}: {}", got[k]);
            continue;
        }
        if k == 1 {
            assert_eq!(got[k], plain);
            continue;
        }
        // P-S[-n]: S is the sum of the message's data.
        let mut sum = scan::DataSum::default();
        sum.update(body);
        let s: String = sum
            .entry_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut want = format!("{plain}-{s}");
        if k % 3 == 2 {
            seen_same += 1;
            if seen_same > 1 {
                want = format!("{want}-{seen_same}");
            }
        }
        assert_eq!(got[k], want, "message {k}");
    }
    // The same ids from a scan in one big step.
    drop(mb);
    assert_eq!(uids(&open_in_steps(&t, 1 << 20)), got);
}

#[test]
fn duplicate_uids_are_unique_and_stable() {
    // Three messages share popa3d's id (no selected headers), two of them are
    // byte-identical; one message has a unique popa3d id.
    let m = mbox(&[
        b"Subject: a\n\nfirst\n",
        b"Subject: b\n\nsecond\n",
        b"Subject: a\n\nfirst\n",
        b"Delivered-To: u\n\nunique\n",
        b"Subject: c\n\nthird\n",
    ]);
    let t = Temp::with("dups", &m);
    let mut mb = open(&t);
    let before = uids(&mb);
    let set: std::collections::HashSet<&String> = before.iter().collect();
    assert_eq!(set.len(), 5, "{before:?}");
    for u in &before {
        assert!(u.len() <= 70 && u.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    }
    // The first message with a shared popa3d id keeps it, as popa3d gives it.
    assert_eq!(before[0], "d98c1dd404b2008f");
    assert!(before[1].starts_with("d98c1dd404b2008f-"));
    assert_eq!(before[1].len(), 25);
    // Its byte-identical copy: P-S with the copy's (and the first's) data sum.
    assert!(before[2].starts_with("d98c1dd404b2008f-") && before[2].len() == 25);
    assert_eq!(before[3].len(), 16);
    // Same ids in another session.
    assert_eq!(uids(&open(&t)), before);
    // Deleting the first message keeps every other id, in this session and
    // the next: the plain id is retired, not passed on.
    mb.expunge(&[true]).unwrap();
    let after = uids(&open(&t));
    assert_eq!(after, uids(&mb));
    assert_eq!(after, before[1..]);
    // A new copy of the deleted message gets a new id, never a former one.
    t.append(format!("\n{F}Subject: a\n\nfirst\n").as_bytes());
    let again = uids(&open(&t));
    assert_eq!(again[..4], before[1..]);
    assert!(!before.contains(&again[4]), "{again:?} vs {before:?}");
    assert_eq!(again[4], format!("{}-2", before[2]));
}

#[test]
fn verify_accepts_appends() {
    // The file ends with an empty line: the new From_ line follows directly.
    let mut m = mbox(&[b"A: 1\n\none\n", b"A: 2\n\ntwo\n"]);
    m.push(b'\n');
    let t = Temp::with("append", &m);
    let mut mb = open(&t);
    mb.verify().unwrap();
    t.append(format!("{F}A: 3\n\nthree\n").as_bytes());
    mb.verify().unwrap();
    assert_eq!(mb.count(), 2);
    mb.verify().unwrap();
    // A file that did not end with an empty line: the MDA adds one first.
    let t = Temp::with("append-lead", &mbox(&[b"A: 1\n\none\n"]));
    let mut mb = open(&t);
    t.append(format!("\n{F}A: 2\n\ntwo\n").as_bytes());
    mb.verify().unwrap();
    assert_eq!(mb.count(), 1);
}

#[test]
fn verify_detects_changes() {
    let m = mbox(&[b"A: 1\n\none\n", b"A: 2\n\ntwo\n"]);
    // Truncation.
    let t = Temp::with("trunc", &m);
    let mut mb = open(&t);
    fs::OpenOptions::new()
        .write(true)
        .open(t.path())
        .unwrap()
        .set_len(m.len() as u64 - 3)
        .unwrap();
    assert!(matches!(mb.verify(), Err(MboxError::Changed)));
    // A same-length edit of a header.
    let t = Temp::with("edit", &m);
    let mut mb = open(&t);
    t.patch(F.len() as u64, b"B");
    assert!(matches!(mb.verify(), Err(MboxError::Changed)));
    // A same-length edit of a body whose UIDL uses the data sum (the
    // second message shares popa3d's id with the first; popa3d misses it).
    let t = Temp::with("edit-body", &m);
    let mut mb = open(&t);
    assert_eq!(mb.uid(1).as_str().len(), 16 + 1 + 8);
    t.patch(m.len() as u64 - 3, b"W");
    assert!(matches!(mb.verify(), Err(MboxError::Changed)));
    // In the body of a message with popa3d's id, no data sum is kept: it
    // is served as it now is, as popa3d and Dovecot do (hashing every body
    // would cost a sixth of each scan). Its header lines and its line
    // structure are still checked.
    let t = Temp::with("edit-plain-body", &m);
    let mut mb = open(&t);
    assert_eq!(mb.uid(0).as_str().len(), 16);
    t.patch(F.len() as u64 + 6, b"O");
    mb.verify().unwrap();
    let mut buf = [0u8; 16];
    let n = mb.read_data(0, 0, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"A: 1\n\nOne\n");
    t.patch(F.len() as u64 + 6, b"\n");
    assert!(matches!(mb.verify(), Err(MboxError::Changed)));
    // An append that does not start a new message.
    let t = Temp::with("bad-append", &m);
    let mut mb = open(&t);
    t.append(b"more text\n");
    assert!(matches!(mb.verify(), Err(MboxError::Changed)));
    // ... but one still being written may.
    let t = Temp::with("half-append", &m);
    let mut mb = open(&t);
    t.append(b"\nFro");
    mb.verify().unwrap();
    t.append(b"m x\nA: 3\n\nthree\n");
    mb.verify().unwrap();
    assert_eq!(mb.count(), 2);
    // Appending to a last message that has no empty line at its end.
    let t = Temp::with("bad-append2", &mbox(&[b"A: 1\n\none\n"]));
    let mut mb = open(&t);
    t.append(format!("{F}A: 2\n\ntwo\n").as_bytes());
    assert!(matches!(mb.verify(), Err(MboxError::Changed)));
    // And nothing is expunged from a changed mailbox.
    let t = Temp::with("no-rewrite", &m);
    let mut mb = open(&t);
    t.patch(F.len() as u64, b"B");
    let changed = t.read();
    assert!(matches!(mb.expunge(&[true]), Err(MboxError::Changed)));
    assert_eq!(t.read(), changed);
}

#[test]
fn verify_takes_no_lock() {
    let t = Temp::with("quick", &mbox(&[b"A: 1\n\none\n"]));
    let old = SystemTime::now() - Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(t.path())
        .unwrap()
        .set_modified(old)
        .unwrap();
    let mut mb = open(&t);
    let other = locked_elsewhere(&t);
    // Unchanged and old: nothing to read.
    mb.verify().unwrap();
    // Appended while someone holds the lock: checked without it.
    t.append(format!("\n{F}A: 2\n\ntwo\n").as_bytes());
    mb.verify().unwrap();
    t.patch(F.len() as u64, b"B");
    assert!(matches!(mb.verify(), Err(MboxError::Changed)));
    // Once changed, always changed.
    t.patch(F.len() as u64, b"A");
    assert!(matches!(mb.verify(), Err(MboxError::Changed)));
    unlock(&other).unwrap();
}

#[test]
fn lock_conflicts_are_in_use() {
    let t = Temp::with("inuse", &mbox(&[b"A: 1\n\none\n", b"A: 2\n\ntwo\n"]));
    let other = locked_elsewhere(&t);
    assert!(matches!(
        Mailbox::open(t.path(), &limits()),
        Err(MboxError::InUse)
    ));
    unlock(&other).unwrap();
    let mut mb = open(&t);
    // A reader does not block a reader, but blocks the expunge.
    assert!(try_lock(&other, crate::sys::lock::LockKind::Shared).unwrap());
    mb.verify().unwrap();
    assert!(matches!(mb.expunge(&[true]), Err(MboxError::InUse)));
    unlock(&other).unwrap();
    // Our own locks are gone after each operation.
    assert!(try_lock(&other, crate::sys::lock::LockKind::Exclusive).unwrap());
    unlock(&other).unwrap();
    mb.expunge(&[true]).unwrap();
    assert!(try_lock(&other, crate::sys::lock::LockKind::Exclusive).unwrap());
    unlock(&other).unwrap();
}

#[test]
fn expunge_without_deletions_never_writes() {
    let m = mbox(&[b"A: 1\n\none\n", b"A: 2\n\ntwo\n"]);
    let t = Temp::with("nodelete", &m);
    let mut mb = open(&t);
    // Even a changed (here: truncated) file is left alone, as popa3d does.
    fs::write(t.path(), b"x").unwrap();
    let done = mb.expunge(&[false, false]).unwrap();
    assert_eq!(done.deleted, 0);
    assert_eq!(done.kept, 2);
    assert_eq!(t.read(), b"x");
}

#[test]
fn expunge_keeps_appended_mail() {
    let msgs: [&[u8]; 3] = [b"A: 1\n\none\n", b"A: 2\n\ntwo\n", b"A: 3\n\nthree\n"];
    let t = Temp::with("expunge", &mbox(&msgs));
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o640)).unwrap();
    let ino = fs::metadata(t.path()).unwrap().ino();
    let mut mb = open(&t);
    let sizes: Vec<u64> = (0..3).map(|i| mb.size(i)).collect();
    let appended = format!("\n{F}A: 4\n\nfour\n\0\u{7f}\r\n");
    t.append(appended.as_bytes());
    let done = mb.expunge(&[false, true]).unwrap();
    assert_eq!(
        done,
        Expunged {
            deleted: 1,
            deleted_bytes: sizes[1],
            kept: 2,
            kept_bytes: sizes[0] + sizes[2],
        }
    );
    let mut want = mbox(&[msgs[0], msgs[2]]);
    want.extend_from_slice(appended.as_bytes());
    assert_eq!(t.read(), want);
    let meta = fs::metadata(t.path()).unwrap();
    assert_eq!(meta.ino(), ino);
    assert_eq!(meta.mode() & 0o7777, 0o640);
    // The mailbox now describes the new file, and a new session sees the new mail.
    assert_eq!(mb.count(), 2);
    mb.verify().unwrap();
    let mut buf = vec![0; 64];
    let n = mb.read_data(1, 0, &mut buf).unwrap();
    assert_eq!(&buf[..n], msgs[2]);
    assert_eq!(open(&t).count(), 3);
    // A second expunge in the same session works on the new layout.
    mb.expunge(&[true, false]).unwrap();
    let mut want = mbox(&[msgs[2]]);
    want.extend_from_slice(appended.as_bytes());
    assert_eq!(t.read(), want);
}

#[test]
fn expunge_of_the_last_message_with_appended_mail() {
    // The last message has no empty line at its end; the MDA wrote one first.
    let t = Temp::with("expunge-last", &mbox(&[b"A: 1\n\none\n", b"A: 2\n\ntwo\n"]));
    let mut mb = open(&t);
    t.append(format!("\n{F}A: 3\n\nthree\n").as_bytes());
    mb.expunge(&[false, true]).unwrap();
    assert_eq!(t.read(), mbox(&[b"A: 1\n\none\n", b"A: 3\n\nthree\n"]));
    let mb2 = open(&t);
    assert_eq!(mb2.count(), 2);
    assert_eq!((mb2.size(0), mb2.data_len(0)), (mb.size(0), mb.data_len(0)));
    // Everything deleted, with appended mail: the file starts with its From_ line.
    let t = Temp::with("expunge-all-append", &mbox(&[b"A: 1\n\none\n"]));
    let mut mb = open(&t);
    t.append(format!("\n{F}A: 2\n\ntwo\n").as_bytes());
    mb.expunge(&[true]).unwrap();
    assert_eq!(t.read(), mbox(&[b"A: 2\n\ntwo\n"]));
    assert_eq!(open(&t).count(), 1);
}

#[test]
fn expunge_refuses_appended_bytes_that_start_no_message() {
    // Bytes written after the indexed end that a fresh scan reads as more
    // lines of the last message (a writer that ignores the locks, or a
    // broken one): no expunge may glue them to a kept message, or leave
    // them at the start of the file.
    let m = mbox(&[b"A: 1\n\none\n", b"A: 2\n\ntwo\n"]);
    for deleted in [[true, false], [false, true], [true, true]] {
        let t = Temp::with("append-no-from", &m);
        let mut mb = open(&t);
        t.append(b"more text\n");
        let before = t.read();
        let r = mb.expunge(&deleted);
        assert!(matches!(r, Err(MboxError::Changed)), "{deleted:?}: {r:?}");
        assert_eq!(t.read(), before, "{deleted:?}");
        assert!(!journal::path(t.path()).exists());
    }
}

#[test]
fn expunge_never_cuts_where_no_message_starts_any_more() {
    // A same-length edit takes away the message boundary where the
    // compaction would cut: the From_ line itself, or the empty line before
    // it. The stamp changed, so the spot check runs, but it samples only a
    // few of the 4000 messages: the check of every cut point is what
    // refuses the expunge (were it missing, this test would still pass
    // when the spot check happens to pick message k or k-1, about 0.4% of
    // the time).
    let n = 4000;
    let bodies: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("A: {i}\n\nbody {i}\n").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = bodies.iter().map(|b| b.as_slice()).collect();
    let m = mbox(&refs);
    let k = n / 2 + 7;
    for (what, back, byte) in [("From_ line", 0, b"X"), ("empty line", 1, b"x")] {
        let t = Temp::with("cut-edit", &m);
        let mut mb = open(&t);
        let at = mb.index.entries[k].raw_start;
        assert_eq!(&m[at as usize..at as usize + 5], b"From ");
        t.patch(at - back, byte);
        let before = t.read();
        // Deleting message k-1 cuts at its start and at message k's.
        let mut deleted = vec![false; n];
        deleted[k - 1] = true;
        let r = mb.expunge(&deleted);
        assert!(matches!(r, Err(MboxError::Changed)), "{what}: {r:?}");
        assert_eq!(t.read(), before, "{what}");
        assert!(!journal::path(t.path()).exists());
    }
}

/// Whether the mailbox at `t` is locked by somebody else than the caller
/// now: its fcntl lock cannot be taken exclusively from another open file
/// description, and its dotlock exists.
fn locks_held(t: &Temp) -> (bool, bool) {
    // The lock taken, if it was, goes with the descriptor.
    let free = lock_elsewhere(t).is_some();
    (!free, dotlock::lock_path(t.path()).exists())
}

/// Steps an opening of `t` with a small budget and says, for each step that
/// returned [`Step::Pending`], whether both locks were held after it.
fn locks_between_steps(t: &Temp) -> Vec<bool> {
    let mut o = Opening::start(t.path(), &limits(), None).unwrap();
    let mut seen = Vec::new();
    loop {
        match o.step(16 * 1024).unwrap() {
            Step::Done(_) => break,
            Step::Waiting(d) => std::thread::sleep(d),
            Step::Pending => {
                let (fcntl, dot) = locks_held(t);
                assert_eq!(fcntl, dot, "one lock without the other");
                seen.push(fcntl);
            }
        }
    }
    assert_eq!(locks_held(t), (false, false), "locks left behind");
    seen
}

#[test]
fn scans_and_recoveries_hold_the_locks_between_steps() {
    // A scan in steps: the locks are taken once and kept until the index
    // is complete (a delivery in between would be half-read otherwise).
    let t = Temp::with("held-scan", &many_messages(2000));
    let seen = locks_between_steps(&t);
    let first = seen.iter().position(|&h| h).expect("the scan locks");
    assert!(seen[first..].iter().all(|&h| h), "{seen:?}");
    let len = fs::metadata(t.path()).unwrap().len() as usize;
    assert!(seen.len() - first >= len / (16 * 1024) - 1, "{seen:?}");
    // An interrupted expunge finished by the next opening, in steps: no
    // delivery may land between the compaction's steps either.
    let mut mb = open(&t);
    let mut deleted = vec![false; mb.count()];
    deleted[0] = true;
    mb.expunge_start(&deleted);
    while !matches!(mb.expunge_step(64).unwrap(), ExpungeStep::Committed { .. }) {}
    drop(mb);
    assert!(journal::path(t.path()).exists());
    let seen = locks_between_steps(&t);
    assert!(!journal::path(t.path()).exists());
    let first = seen.iter().position(|&h| h).expect("the recovery locks");
    assert!(seen[first..].iter().all(|&h| h), "{seen:?}");
    assert!(seen.len() - first >= len / (16 * 1024), "{seen:?}");
    assert_eq!(open(&t).count(), 1999);
}

#[test]
fn an_expunge_finished_after_a_crash_retires_its_ids() {
    // Two copies of one message share popa3d's id; ours differ. Once the
    // first copy is deleted, the second keeps its id, and the deleted id is
    // never given to a copy delivered later, also when the expunge was
    // finished by the next opening after a crash.
    let a: &[u8] = b"Subject: same\n\nsame\n";
    let t = Temp::with("crash-retire", &mbox(&[a, a, b"Subject: other\n\nother\n"]));
    let mut mb = open(&t);
    let before = uids(&mb);
    assert_ne!(before[0], before[1]);
    mb.expunge_start(&[true, false, false]);
    loop {
        match mb.expunge_step(16).unwrap() {
            ExpungeStep::Committed { .. } => break,
            ExpungeStep::Done(_) => panic!("finished before its commit was seen"),
            _ => {}
        }
    }
    drop(mb);
    assert!(journal::path(t.path()).exists());
    let mb = open(&t);
    assert!(!journal::path(t.path()).exists());
    assert_eq!(uids(&mb), before[1..]);
    t.append(format!("\n{F}").as_bytes());
    t.append(a);
    let now = uids(&open(&t));
    assert_eq!(now[..2], before[1..]);
    assert!(
        !before.contains(&now[2]),
        "{now:?} reuses one of {before:?}"
    );
}

#[test]
fn expunge_all_leaves_an_empty_file() {
    let t = Temp::with("expunge-all", &mbox(&[b"A: 1\n\none\n", b"A: 2\n\ntwo\n"]));
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o600)).unwrap();
    let ino = fs::metadata(t.path()).unwrap().ino();
    let mut mb = open(&t);
    let done = mb.expunge(&[true, true]).unwrap();
    assert_eq!((done.deleted, done.kept), (2, 0));
    let meta = fs::metadata(t.path()).unwrap();
    assert_eq!(meta.len(), 0);
    assert_eq!(meta.ino(), ino);
    assert_eq!(meta.mode() & 0o7777, 0o600);
    assert_eq!(mb.count(), 0);
}

#[test]
fn crlf_mailbox_round_trip() {
    let m = format!("{F}Subject: x\r\n\r\nbody\r\n\r\n{F}Subject: y\r\n\r\n.dot\r\n");
    let t = Temp::with("crlf", m.as_bytes());
    let mut mb = open(&t);
    assert_eq!(mb.count(), 2);
    assert_eq!(
        send(&mb, 0, Encoder::retr(), 3, 3).0,
        b"Subject: x\r\n\r\nbody\r\n.\r\n"
    );
    assert_eq!(
        send(&mb, 1, Encoder::retr(), 64, 64).0,
        b"Subject: y\r\n\r\n..dot\r\n.\r\n"
    );
    assert_eq!(mb.size(0), 20);
    mb.expunge(&[true, false]).unwrap();
    assert_eq!(
        t.read(),
        format!("{F}Subject: y\r\n\r\n.dot\r\n").as_bytes()
    );
}

// ---------------------------------------------------------------------------
// Steps, locks, the cache, the pseudo-message, journaled expunge.

/// A small deterministic pseudo-random generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A random message: varied headers (some without any UIDL header, some
/// identical), bodies with dots, CRLF or not, long lines, no final newline.
fn random_message(rng: &mut Rng, k: usize) -> Vec<u8> {
    let mut m = Vec::new();
    let crlf = rng.below(5) == 0;
    let nl: &[u8] = if crlf { b"\r\n" } else { b"\n" };
    match rng.below(4) {
        0 => {}
        1 => m.extend_from_slice(format!("Message-ID: <{}@x>", rng.below(3)).as_bytes()),
        _ => m.extend_from_slice(format!("Received: from h{k}").as_bytes()),
    }
    if !m.is_empty() {
        m.extend_from_slice(nl);
    }
    m.extend_from_slice(format!("Subject: m{}", rng.below(4)).as_bytes());
    m.extend_from_slice(nl);
    m.extend_from_slice(nl);
    for _ in 0..rng.below(6) {
        match rng.below(5) {
            0 => m.extend_from_slice(b"."),
            1 => m.extend(std::iter::repeat_n(b'x', rng.below(3000) as usize)),
            2 => m.extend_from_slice(b">From me"),
            _ => m.extend_from_slice(format!("line {}", rng.below(1000)).as_bytes()),
        }
        m.extend_from_slice(nl);
    }
    if rng.below(8) == 0 {
        m.extend_from_slice(b"no final newline");
    }
    m
}

fn random_mbox(rng: &mut Rng, n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|k| random_message(rng, k)).collect()
}

/// Each message's raw bytes (From_ line to the next message) in `data`.
fn raws(data: &[u8]) -> Vec<Vec<u8>> {
    let mut s = scan::Scanner::new(index::IndexSink::new(usize::MAX));
    s.feed(data).unwrap();
    let e = s.finish().unwrap().entries;
    (0..e.len())
        .map(|i| {
            let end = e.get(i + 1).map_or(data.len() as u64, |n| n.raw_start);
            data[e[i].raw_start as usize..end as usize].to_vec()
        })
        .collect()
}

/// What an expunge of `deleted` must leave of `orig` with `app` appended.
fn expected_after(orig: &[u8], deleted: &[bool], app: &[u8]) -> Vec<u8> {
    let r = raws(orig);
    let mut want = Vec::new();
    for (i, raw) in r.iter().enumerate() {
        if !deleted.get(i).copied().unwrap_or(false) {
            want.extend_from_slice(raw);
        }
    }
    let last_deleted = deleted
        .get(r.len().wrapping_sub(1))
        .copied()
        .unwrap_or(false);
    let lead = if last_deleted && app.starts_with(b"\n") {
        1
    } else {
        0
    };
    want.extend_from_slice(&app[lead..]);
    want
}

#[test]
fn expunge_in_small_steps_matches_the_plan() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..12 {
        let n = 2 + rng.below(12) as usize;
        let msgs = random_mbox(&mut rng, n);
        let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
        let orig = mbox(&refs);
        let t = Temp::with("steps", &orig);
        let mut mb = open(&t);
        let n = mb.count();
        let deleted: Vec<bool> = (0..n).map(|_| rng.below(3) == 0).collect();
        let app = if rng.below(2) == 0 {
            format!("\n{F}Subject: late {round}\n\nlate\n").into_bytes()
        } else {
            Vec::new()
        };
        let ends_open = !orig.ends_with(b"\n");
        if !app.is_empty() && !ends_open {
            t.append(&app);
        }
        let app = if ends_open { Vec::new() } else { app };
        let want = expected_after(&orig, &deleted, &app);
        let budget = [1, 7, 300, 65536][round % 4];
        mb.expunge_start(&deleted);
        let done = loop {
            match mb.expunge_step(budget).unwrap() {
                ExpungeStep::Done(d) => break d,
                ExpungeStep::Pending | ExpungeStep::Committed { .. } => {}
                ExpungeStep::Waiting(_) => panic!("nobody else locks"),
            }
        };
        assert_eq!(done.deleted, deleted.iter().filter(|&&d| d).count());
        assert_eq!(t.read(), want, "round {round}");
        assert!(!journal::path(t.path()).exists());
        // The mailbox now describes the new file.
        let fresh = open(&t);
        let kept = n - done.deleted;
        assert_eq!(mb.count(), kept);
        for i in 0..kept {
            assert_eq!(mb.uid(i), fresh.uid(i));
            assert_eq!(mb.size(i), fresh.size(i));
        }
        let _ = fs::remove_file(retired::path(t.path()));
    }
}

#[test]
fn interrupted_expunge_is_finished_at_the_next_open() {
    let mut rng = Rng(42);
    for round in 0..16 {
        let n = 3 + rng.below(8) as usize;
        let msgs = random_mbox(&mut rng, n);
        let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
        let mut orig = mbox(&refs);
        // End with an empty line, so that mail can be appended (as procmail does).
        orig.extend_from_slice(if orig.ends_with(b"\n") {
            b"\n"
        } else {
            b"\n\n"
        });
        let t = Temp::with("interrupted", &orig);
        let mut mb = open(&t);
        let deleted: Vec<bool> = (0..mb.count()).map(|_| rng.below(2) == 0).collect();
        let want = expected_after(&orig, &deleted, b"");
        if !deleted.contains(&true) {
            continue;
        }
        // Stop after a few steps, as if the process died there (the first
        // commits the expunge: its journal is on disk).
        mb.expunge_start(&deleted);
        for _ in 0..1 + rng.below(40) {
            if let ExpungeStep::Done(_) = mb.expunge_step(1 + rng.below(200) as usize).unwrap() {
                break;
            }
        }
        drop(mb);
        // Mail delivered before the next login (the lock was left stale).
        let late = format!("{F}Subject: late\n\nlate {round}\n");
        if round % 2 == 0 {
            t.append(late.as_bytes());
        }
        // The recovery itself may be interrupted too.
        if round % 3 == 0 && journal::path(t.path()).exists() {
            let mut o = Opening::start(t.path(), &limits(), None).unwrap();
            for _ in 0..rng.below(5) {
                if let Step::Done(_) = o.step(1 + rng.below(100) as usize).unwrap() {
                    break;
                }
            }
        }
        let mb = open(&t);
        assert!(!journal::path(t.path()).exists());
        let mut want = want.clone();
        if round % 2 == 0 {
            want.extend_from_slice(late.as_bytes());
        }
        assert_eq!(t.read(), want, "round {round}");
        let kept = deleted.iter().filter(|&&d| !d).count() + usize::from(round % 2 == 0);
        assert_eq!(mb.count(), kept);
        let _ = fs::remove_file(retired::path(t.path()));
    }
}

#[test]
fn torn_or_stale_journals_are_removed() {
    let m = mbox(&[b"A: 1\n\none\n", b"A: 2\n\ntwo\n", b"A: 3\n\nthree\n"]);
    // Torn before any mailbox byte was written: rolled back.
    let t = Temp::with("torn", &m);
    let mut mb = open(&t);
    mb.expunge_start(&[true]);
    assert!(matches!(
        mb.expunge_step(1).unwrap(),
        ExpungeStep::Committed { .. }
    ));
    drop(mb);
    let j = journal::path(t.path());
    assert!(j.exists());
    fs::OpenOptions::new()
        .write(true)
        .open(&j)
        .unwrap()
        .set_len(50)
        .unwrap();
    assert_eq!(open(&t).count(), 3);
    assert!(!j.exists());
    assert_eq!(t.read(), m);
    // A journal written but no block started: the expunge is carried out
    // (it was reported committed, with the bytes it moves, before any
    // mailbox byte was written).
    let mut mb = open(&t);
    mb.expunge_start(&[true]);
    let first = (F.len() + b"A: 1\n\none\n".len() + 1) as u64;
    match mb.expunge_step(1).unwrap() {
        ExpungeStep::Committed { summary, moving } => {
            assert_eq!((summary.deleted, summary.kept), (1, 2));
            assert_eq!(moving, m.len() as u64 - first);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(t.read(), m);
    drop(mb);
    assert_eq!(open(&t).count(), 2);
    assert_eq!(t.read(), expected_after(&m, &[true], b""));
    // A journal for a file that was replaced since: stale, removed.
    let t = Temp::with("stale", &m);
    let mut mb = open(&t);
    mb.expunge_start(&[false, true]);
    mb.expunge_step(1).unwrap();
    drop(mb);
    // The old file stays linked elsewhere, so the new one certainly gets
    // another inode number. (A freed number is often given again at once:
    // then only the birth time tells the files apart, where the file system
    // records one; not something this test can arrange.)
    let kept_old = t.path().with_extension("old");
    fs::hard_link(t.path(), &kept_old).unwrap();
    fs::remove_file(t.path()).unwrap();
    fs::write(t.path(), &m).unwrap();
    assert_ne!(
        fs::metadata(t.path()).unwrap().ino(),
        fs::metadata(&kept_old).unwrap().ino()
    );
    assert_eq!(open(&t).count(), 3);
    assert_eq!(t.read(), m);
    assert!(!journal::path(t.path()).exists());
    fs::remove_file(&kept_old).unwrap();
    let _ = fs::remove_file(retired::path(t.path()));
}

#[test]
fn a_journal_of_someone_else_is_not_trusted() {
    if crate::sys::process::euid() != 0 {
        // As the integration tests' `require_root`: a reported skip only
        // where the run says it is unprivileged on purpose.
        assert!(
            std::env::var("POP3D_TEST_NONROOT").as_deref() == Ok("1"),
            "needs root (chown); run as root or set POP3D_TEST_NONROOT=1"
        );
        eprintln!("SKIPPED: a_journal_of_someone_else_is_not_trusted needs root");
        return;
    }
    let m = mbox(&[b"A: 1\n\none\n", b"A: 2\n\ntwo\n"]);
    let t = Temp::with("foreign", &m);
    let mut mb = open(&t);
    mb.expunge_start(&[true]);
    mb.expunge_step(1).unwrap();
    drop(mb);
    let j = journal::path(t.path());
    std::os::unix::fs::chown(&j, Some(4242), None).unwrap();
    let why = refusal(&t, &limits());
    assert!(why.contains("unfinished expunge"), "{why}");
    assert_eq!(t.read(), m);
    fs::remove_file(&j).unwrap();
    assert_eq!(open(&t).count(), 2);
}

#[test]
fn pseudo_message_is_hidden_and_kept() {
    let pseudo: &[u8] = b"Date: Mon, 1 Jan 2024\nFrom: Mail System Internal Data <MAILER-DAEMON@x>\n\
Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\nX-IMAP: 1 2\n\nThis text is part of the internal format of your mail folder.\n";
    let m = mbox(&[pseudo, b"Subject: a\n\none\n", b"Subject: b\n\ntwo\n"]);
    let t = Temp::with("pseudo", &m);
    let mut mb = open(&t);
    assert!(mb.hides_pseudo_message());
    assert_eq!(mb.count(), 2);
    let mut buf = [0u8; 64];
    let n = mb.read_data(0, 0, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"Subject: a\n\none\n");
    // Its UIDL does not make another message's id a duplicate.
    assert_eq!(mb.uid(0).as_str(), "d98c1dd404b2008f");
    // Deleting everything visible keeps it.
    mb.expunge(&[true, true]).unwrap();
    assert_eq!(t.read(), expected_after(&m, &[false, true, true], b""));
    let mb = open(&t);
    assert_eq!(mb.count(), 0);
    assert!(mb.hides_pseudo_message());
    // Only as the first message, and only with exactly that subject.
    let m = mbox(&[b"Subject: a\n\none\n", pseudo]);
    assert_eq!(open(&Temp::with("pseudo2", &m)).count(), 2);
    let m = mbox(&[b"Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA!\n\nx\n"]);
    assert_eq!(open(&Temp::with("pseudo3", &m)).count(), 1);
    let m = mbox(&[b"Subject:  DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA \r\n\r\nx\r\n"]);
    assert_eq!(open(&Temp::with("pseudo4", &m)).count(), 0);
    let _ = fs::remove_file(retired::path(t.path()));
}

/// Bytes this thread has read so far (`rchar`), the reading of this
/// figure itself included.
fn thread_bytes_read() -> u64 {
    let io = fs::read_to_string("/proc/thread-self/io").unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn opening_reads_at_most_its_budget_per_step() {
    // Two messages, each repeated: the UIDLs of the copies need the sums
    // of their data, read in steps of their own after the scan.
    let msgs: Vec<Vec<u8>> = (0..2000)
        .map(|k| format!("Subject: {}\n\n{}\n", k % 2, "y".repeat(1000)).into_bytes())
        .collect();
    let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
    let t = Temp::with("budget", &mbox(&refs));
    let size = fs::metadata(t.path()).unwrap().len();
    let mut o = Opening::start(t.path(), &limits(), None).unwrap();
    let budget = 4 * crate::config::SCAN_CHUNK;
    let (mut steps, mut total, mut most) = (0, 0, 0);
    let a = thread_bytes_read();
    let reading_the_figure = thread_bytes_read() - a;
    let mb = loop {
        steps += 1;
        let before = thread_bytes_read();
        let step = o.step(budget).unwrap();
        let read = thread_bytes_read() - before - reading_the_figure;
        total += read;
        most = most.max(read);
        match step {
            Step::Done(mb) => break mb,
            Step::Pending => {}
            Step::Waiting(_) => panic!("not locked"),
        }
    };
    assert_eq!(mb.count(), 2000);
    assert_eq!(mb.scanned_bytes(), size);
    // Every byte once to scan, the data of all but the first message of
    // each kind once more for sums; never more than the budget (in whole
    // chunks) at a time, give or take a few bytes (a probe past the end,
    // the figure's own text growing by a digit).
    let sums: u64 = msgs[2..].iter().map(|m| m.len() as u64).sum();
    assert!(
        total >= size + sums,
        "{total} bytes read for {size} + {sums}"
    );
    assert!(most <= budget as u64 + 64, "{most} bytes read in one step");
    assert!(steps as u64 >= total / budget as u64, "{steps} steps");
    // Nothing is locked once done.
    drop(locked_elsewhere(&t));
    assert!(!dotlock::lock_path(t.path()).exists());
}

#[test]
fn a_held_lock_means_waiting_then_in_use_without_sleeping() {
    let t = Temp::with("waiting", &mbox(&[b"A: 1\n\none\n"]));
    let quick = MailboxLimits {
        lock_wait: Duration::from_millis(60),
        ..limits()
    };
    // An fcntl lock elsewhere.
    let other = locked_elsewhere(&t);
    let start = std::time::Instant::now();
    let mut o = Opening::start(t.path(), &quick, None).unwrap();
    let mut waits = 0;
    let err = loop {
        match o.step(1 << 20) {
            Ok(Step::Waiting(d)) => {
                assert!(d <= crate::config::LOCK_RETRY);
                waits += 1;
                std::thread::sleep(d);
            }
            Ok(other) => panic!("{other:?}"),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, MboxError::InUse), "{err:?}");
    assert!(waits >= 2);
    assert!(start.elapsed() >= Duration::from_millis(60));
    unlock(&other).unwrap();
    // A dotlock held by someone else (as `dotlockfile -l` makes it).
    let lock = dotlock::lock_path(t.path());
    fs::write(&lock, b"").unwrap();
    assert!(matches!(
        Mailbox::open(t.path(), &quick),
        Err(MboxError::InUse)
    ));
    // ... until it is stale.
    fs::File::options()
        .write(true)
        .open(&lock)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(600))
        .unwrap();
    assert_eq!(Mailbox::open(t.path(), &quick).unwrap().count(), 1);
    assert!(!lock.exists());
    // Without dotlocks configured, a dotlock is ignored.
    fs::write(&lock, b"").unwrap();
    let no_dot = MailboxLimits {
        dotlock: false,
        ..quick
    };
    assert_eq!(Mailbox::open(t.path(), &no_dot).unwrap().count(), 1);
    fs::remove_file(&lock).unwrap();
    // flock, when configured, is taken and conflicts.
    let with_flock = MailboxLimits {
        flock: true,
        ..quick
    };
    assert!(crate::sys::lock::try_flock(&other, crate::sys::lock::LockKind::Exclusive).unwrap());
    assert!(matches!(
        Mailbox::open(t.path(), &with_flock),
        Err(MboxError::InUse)
    ));
    assert_eq!(Mailbox::open(t.path(), &quick).unwrap().count(), 1);
    crate::sys::lock::unflock(&other).unwrap();
    assert_eq!(Mailbox::open(t.path(), &with_flock).unwrap().count(), 1);
}

/// Another open file description of `t` holding an exclusive OFD lock on it.
fn locked_elsewhere(t: &Temp) -> fs::File {
    lock_elsewhere(t).expect("the mailbox is free")
}

/// Another open file description of `t`, if an exclusive OFD lock on it
/// could be taken at once (held until it is dropped).
fn lock_elsewhere(t: &Temp) -> Option<fs::File> {
    let other = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(t.path())
        .unwrap();
    try_lock(&other, crate::sys::lock::LockKind::Exclusive)
        .unwrap()
        .then_some(other)
}

fn age(t: &Temp, secs: u64) {
    fs::File::options()
        .write(true)
        .open(t.path())
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(secs))
        .unwrap();
}

#[test]
fn the_cache_makes_reopening_cost_only_new_bytes() {
    let msgs: Vec<Vec<u8>> = (0..50)
        .map(|k| format!("Received: {k}\n\nbody {k}\n").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
    let mut data = mbox(&refs);
    data.push(b'\n');
    let t = Temp::with("cache", &data);
    age(&t, 3600);
    // Its ctime must be over a second old when the index is confirmed.
    std::thread::sleep(Duration::from_millis(1100));
    let mut cache = IndexCache::default();
    let mb = Mailbox::open_cached(t.path(), &limits(), &mut cache).unwrap();
    assert_eq!(mb.scanned_bytes(), data.len() as u64);
    let uids1 = uids(&mb);
    mb.into_cache(&mut cache);
    assert_eq!(cache.len(), 1);
    // Unchanged: used as it is, without a lock (someone holds it) or a read.
    let other = locked_elsewhere(&t);
    let mb = Mailbox::open_cached(t.path(), &limits(), &mut cache).unwrap();
    assert_eq!(mb.scanned_bytes(), 0);
    assert_eq!(uids(&mb), uids1);
    assert!(cache.is_empty(), "taken while in use");
    mb.into_cache(&mut cache);
    unlock(&other).unwrap();
    // Appended: only the new bytes are scanned.
    let late = format!("{F}Received: late\n\nlate\n");
    t.append(late.as_bytes());
    let mb = Mailbox::open_cached(t.path(), &limits(), &mut cache).unwrap();
    assert_eq!(mb.scanned_bytes(), late.len() as u64);
    assert_eq!(mb.count(), 51);
    assert_eq!(uids(&mb)[..50], uids1[..]);
    mb.into_cache(&mut cache);
    // Appended without a separator: the last message is scanned again.
    t.append(b"more of the late message\n");
    let mb = Mailbox::open_cached(t.path(), &limits(), &mut cache).unwrap();
    assert_eq!(mb.count(), 51);
    assert_eq!(
        mb.scanned_bytes(),
        late.len() as u64 + b"more of the late message\n".len() as u64
    );
    assert_eq!(
        mb.data_len(50),
        b"Received: late\n\nlate\nmore of the late message\n".len() as u64
    );
    mb.into_cache(&mut cache);
    // Changed in place (same size, the mtime put back): found, fully re-scanned.
    t.patch_keeping_mtime(F.len() as u64, b"X-Other");
    let mb = Mailbox::open_cached(t.path(), &limits(), &mut cache).unwrap();
    assert_eq!(mb.scanned_bytes(), fs::metadata(t.path()).unwrap().len());
    assert_ne!(mb.uid(0).as_str(), uids1[0]);
    mb.into_cache(&mut cache);
    // Shrunk: a full scan.
    let now = t.read();
    fs::write(t.path(), &now[..data.len()]).unwrap();
    let mb = Mailbox::open_cached(t.path(), &limits(), &mut cache).unwrap();
    assert_eq!(mb.scanned_bytes(), data.len() as u64);
    // Mail delivered during a session that expunged is found by the next one,
    // however quiet the file looks by then.
    let mut mb = Mailbox::open_cached(t.path(), &limits(), &mut cache).unwrap();
    let n = mb.count();
    t.append(format!("{F}Received: during\n\nduring\n\n").as_bytes());
    mb.expunge(&[true]).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    mb.verify().unwrap(); // confirms the stamp a second after the change
    mb.into_cache(&mut cache);
    let mb = Mailbox::open_cached(t.path(), &limits(), &mut cache).unwrap();
    assert_eq!(mb.count(), n);
    mb.into_cache(&mut cache);
    let mb = Mailbox::open_cached(t.path(), &limits(), &mut cache).unwrap();
    assert_eq!(mb.count(), n);
    assert_eq!(mb.scanned_bytes(), 0);
    // A mailbox that changed under its session is not remembered.
    let mut mb = mb;
    t.patch(F.len() as u64, b"Y");
    assert!(mb.verify().is_err());
    mb.into_cache(&mut cache);
    assert!(cache.is_empty());
}

/// `n` messages of about 480 bytes each.
fn many_messages(n: usize) -> Vec<u8> {
    let body = format!("{}\n", "x".repeat(59)).repeat(7);
    let msgs: Vec<Vec<u8>> = (0..n)
        .map(|k| format!("Received: {k}\nSubject: s{k}\n\n{body}").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
    let mut data = mbox(&refs);
    data.push(b'\n');
    data
}

fn sizes(mb: &Mailbox) -> Vec<u64> {
    (0..mb.count()).map(|i| mb.size(i)).collect()
}

/// As a new process (an inetd session, a restarted daemon) opens a mailbox:
/// with no index in memory, but the index file the last opening wrote.
#[test]
fn the_index_file_makes_a_new_process_open_in_new_bytes_only() {
    let data = many_messages(2500);
    assert!(data.len() as u64 > crate::config::INDEX_FILE_MIN_SCAN);
    let t = Temp::with("stored", &data);
    age(&t, 3600);
    // Its ctime must be older than the confirmation by a timestamp tick.
    std::thread::sleep(Duration::from_millis(1100));
    let file = stored::path(t.path());
    let mb = open(&t);
    assert_eq!(mb.scanned_bytes(), data.len() as u64);
    let (uids1, sizes1) = (uids(&mb), sizes(&mb));
    drop(mb);
    let m = fs::metadata(&file).unwrap();
    assert_eq!(m.mode() & 0o777, 0o600);
    assert_eq!(m.uid(), fs::metadata(t.path()).unwrap().uid());
    assert_eq!(
        m.len(),
        (16 + stored::HEADER + 2500 * stored::ENTRY + 8) as u64
    );
    // Unchanged: used as it is, without a lock (someone holds it) or a read.
    let other = locked_elsewhere(&t);
    let mb = open(&t);
    assert_eq!(mb.scanned_bytes(), 0);
    assert_eq!((uids(&mb), sizes(&mb)), (uids1.clone(), sizes1.clone()));
    drop(mb);
    unlock(&other).unwrap();
    // A size limit lowered since the file was written still refuses.
    let lower = MailboxLimits {
        max_bytes: data.len() as u64 - 1,
        ..limits()
    };
    assert!(refusal(&t, &lower).contains("over the limit"));
    // Appended: only the new bytes are scanned, each time (too few to be
    // worth rewriting the file for).
    let late = format!("{F}Received: late\n\nlate\n");
    t.append(late.as_bytes());
    for _ in 0..2 {
        let mb = open(&t);
        assert_eq!(mb.scanned_bytes(), late.len() as u64);
        assert_eq!(mb.count(), 2501);
        assert_eq!(uids(&mb)[..2500], uids1[..]);
    }
    let full = (data.len() + late.len()) as u64;
    // Damaged, or writable by others: ignored (a full scan), then replaced.
    let mut bytes = fs::read(&file).unwrap();
    bytes[5000] ^= 1;
    fs::write(&file, &bytes).unwrap();
    assert_eq!(open(&t).scanned_bytes(), full);
    assert_eq!(open(&t).scanned_bytes(), 0);
    fs::set_permissions(&file, fs::Permissions::from_mode(0o622)).unwrap();
    assert_eq!(open(&t).scanned_bytes(), full);
    assert_eq!(fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
    // A header of the last message edited in place (same size, mtime put
    // back): the spot check finds it, and the mailbox is scanned again.
    t.patch_keeping_mtime(full - 11, b"LATE");
    let mb = open(&t);
    assert_eq!(mb.scanned_bytes(), full);
    assert_eq!(mb.data_len(2500), b"Received: LATE\n\nlate\n".len() as u64);
    drop(mb);
    // An expunge rewrites it for the new file: the rest keep their UIDLs.
    let mut mb = open(&t);
    let mut del = vec![false; 2501];
    del[0] = true;
    del[1000] = true;
    mb.expunge(&del).unwrap();
    drop(mb);
    let mb = open(&t);
    assert_eq!(mb.scanned_bytes(), 0);
    let mut want = uids1.clone();
    want.remove(1000);
    want.remove(0);
    assert_eq!(uids(&mb)[..2498], want[..]);
    assert_eq!(mb.count(), 2499);
    drop(mb);
    // One that leaves too little to be worth a file removes it.
    let mut mb = open(&t);
    mb.expunge(&[true; 2490]).unwrap();
    drop(mb);
    assert!(!file.exists());
    assert_eq!(open(&t).count(), 9);
    assert!(!file.exists());
}

#[test]
fn uids_stay_unique_and_are_never_reused_across_sessions() {
    let mut rng = Rng(7);
    let t = Temp::with("uid-history", b"");
    // Identity of each delivery, in file order, and the id each got.
    let mut given: std::collections::HashMap<String, u64> = Default::default();
    let mut who: Vec<u64> = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    let mut next = 0u64;
    // Few distinct bodies and headers: many repeated popa3d ids and copies.
    let bodies: [&[u8]; 4] = [
        b"Subject: a\n\nx\n",
        b"Subject: b\n\nx\n",
        b"Date: 1\n\nx\n",
        b"Subject: a\n\ny\n",
    ];
    for session in 0..30 {
        for _ in 0..rng.below(4) {
            // As procmail writes: From_ line, message, empty line.
            let mut m = F.as_bytes().to_vec();
            m.extend_from_slice(bodies[rng.below(4) as usize]);
            m.push(b'\n');
            t.append(&m);
            who.push(next);
            next += 1;
        }
        let mut mb = open(&t);
        assert_eq!(mb.count(), who.len());
        let now = uids(&mb);
        let set: std::collections::HashSet<&String> = now.iter().collect();
        assert_eq!(set.len(), now.len(), "session {session}: {now:?}");
        for (k, u) in now.iter().enumerate() {
            assert!(u.len() <= 70 && u.bytes().all(|b| (0x21..=0x7e).contains(&b)));
            if let Some(&owner) = given.get(u) {
                assert_eq!(owner, who[k], "session {session}: {u} reused");
            }
            given.insert(u.clone(), who[k]);
        }
        // Stable: every message still there has the id it had.
        let prev: std::collections::HashMap<u64, String> =
            who.iter().copied().zip(ids.iter().cloned()).collect();
        for (k, u) in now.iter().enumerate() {
            if let Some(old) = prev.get(&who[k]) {
                assert_eq!(old, u, "session {session}: message {} changed id", who[k]);
            }
        }
        let deleted: Vec<bool> = (0..now.len()).map(|_| rng.below(3) == 0).collect();
        mb.expunge(&deleted).unwrap();
        let mut kw = Vec::new();
        let mut ki = Vec::new();
        for k in 0..now.len() {
            if !deleted[k] {
                kw.push(who[k]);
                ki.push(now[k].clone());
            }
        }
        who = kw;
        ids = ki;
        assert_eq!(uids(&mb), ids);
    }
    let _ = fs::remove_file(retired::path(t.path()));
}

/// `messages` as an mbox whose separator empty lines are `\n` or `\r\n` at
/// random, sometimes after UW IMAP's pseudo-message.
fn random_separators(rng: &mut Rng, messages: &[Vec<u8>]) -> Vec<u8> {
    let mut m = Vec::new();
    if rng.below(4) == 0 {
        m.extend_from_slice(F.as_bytes());
        m.extend_from_slice(b"Subject: ");
        m.extend_from_slice(scan::PSEUDO_SUBJECT);
        m.extend_from_slice(b"\n\nbookkeeping\n\n");
    }
    for (k, msg) in messages.iter().enumerate() {
        if k > 0 {
            m.extend_from_slice(if rng.below(3) == 0 { b"\r\n" } else { b"\n" });
        }
        m.extend_from_slice(F.as_bytes());
        m.extend_from_slice(msg);
    }
    m
}

fn same_index(a: &Mailbox, b: &Mailbox, what: &str) {
    assert_eq!(a.index.entries, b.index.entries, "{what}: entries");
    assert_eq!(a.index.end, b.index.end, "{what}: end");
    assert_eq!(a.index.tail, b.index.tail, "{what}: tail");
    assert_eq!(a.index.hidden_first, b.index.hidden_first, "{what}: pseudo");
    assert_eq!(uids(a), uids(b), "{what}: UIDLs");
    assert_eq!(sizes(a), sizes(b), "{what}: sizes");
}

/// A scan cut into parts for helper threads gives exactly the index one
/// scan gives (entries, digests, sizes, UIDLs, the tail, the pseudo-message),
/// whole or after appended mail, and the same refusals; an opening dropped
/// while its helpers run leaves no helper behind.
#[test]
fn a_scan_shared_with_helpers_gives_the_same_index() {
    let one = MailboxLimits {
        scan_threads: 1,
        ..limits()
    };
    let split = MailboxLimits {
        scan_threads: 4,
        scan_part_min: 1,
        ..limits()
    };
    let mut rng = Rng(0x5ca1ab1e);
    let mut split_rounds = 0;
    for round in 0..60 {
        let n = 1 + rng.below(80) as usize;
        let msgs = random_mbox(&mut rng, n);
        let data = random_separators(&mut rng, &msgs);
        let t = Temp::with("split", &data);
        let what = format!("round {round}, {n} messages");
        let a = Mailbox::open(t.path(), &one).unwrap();
        assert_eq!(a.scan_parts(), 1, "{what}");
        let mut cache = IndexCache::default();
        let b = Mailbox::open_cached(t.path(), &split, &mut cache).unwrap();
        same_index(&a, &b, &what);
        split_rounds += usize::from(b.scan_parts() > 1);
        b.into_cache(&mut cache);
        // Mail appended: the cached index goes on in parts from its end.
        let m = 1 + rng.below(40) as usize;
        let more = random_mbox(&mut rng, m);
        let mut late = vec![b'\n'];
        late.extend_from_slice(&random_separators(&mut rng, &more));
        t.append(&late);
        let a = Mailbox::open(t.path(), &one).unwrap();
        let b = Mailbox::open_cached(t.path(), &split, &mut cache).unwrap();
        same_index(&a, &b, &format!("{what}, appended"));
        assert!(b.scanned_bytes() < (data.len() + late.len()) as u64);
    }
    assert!(
        split_rounds > 40,
        "only {split_rounds} of 60 scans were split"
    );

    // The same refusals: a message without data, more messages than allowed.
    let mut msgs = random_mbox(&mut rng, 60);
    msgs[41] = format!("{F}A: b\n\nc\n").into_bytes();
    let t = Temp::with("split-empty", &random_separators(&mut rng, &msgs));
    assert_eq!(refusal(&t, &one), refusal(&t, &split));
    assert!(refusal(&t, &split).contains("no data"));
    let t = Temp::with("split-many", &mbox(&vec![&b"A: b\n\nc\n"[..]; 60]));
    for max in [1, 30, 59] {
        let why = refusal(
            &t,
            &MailboxLimits {
                max_messages: max,
                ..split
            },
        );
        assert!(why.contains(&format!("more than {max} messages")), "{why}");
    }
    let exact = MailboxLimits {
        max_messages: 60,
        ..split
    };
    assert_eq!(Mailbox::open(t.path(), &exact).unwrap().count(), 60);

    // Dropped while the helpers scan: they stop, and give their slots back.
    let msgs = random_mbox(&mut rng, 3000);
    let big = random_separators(&mut rng, &msgs);
    let t = Temp::with("split-drop", &big);
    for _ in 0..5 {
        let mut o = Opening::start(t.path(), &split, None).unwrap();
        while parallel::running() == 0 {
            assert!(matches!(o.step(4096).unwrap(), Step::Pending));
        }
        drop(o);
    }
    let t0 = std::time::Instant::now();
    while parallel::running() > 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "helpers left running"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn an_opening_waiting_on_an_expunge_takes_the_index_it_leaves() {
    // Under 1 MiB: no index file, so only the daemon's cache spares a scan.
    let msgs: Vec<Vec<u8>> = (0..50)
        .map(|k| format!("Subject: {k}\n\n{}\n", "y".repeat(1000)).into_bytes())
        .collect();
    let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
    let t = Temp::with("adopt", &mbox(&refs));
    let mut a = open(&t);
    let mut deleted = vec![false; 50];
    deleted[0] = true;
    a.expunge_start(&deleted);
    loop {
        match a.expunge_step(1024).unwrap() {
            ExpungeStep::Committed { .. } => break,
            ExpungeStep::Pending => {}
            other => panic!("{other:?}"),
        }
    }
    // Another session's opening, begun while the expunge holds the locks.
    let mut cache = IndexCache::default();
    let mut b = Opening::start(t.path(), &limits(), Some(&mut cache)).unwrap();
    assert!(matches!(b.step(1 << 20).unwrap(), Step::Waiting(_)));
    while !matches!(a.expunge_step(1024).unwrap(), ExpungeStep::Done(_)) {}
    let want: Vec<Uid> = (0..a.count()).map(|i| a.uid(i)).collect();
    a.into_cache(&mut cache);
    b.adopt_cached(Some(&mut cache));
    let mb = loop {
        match b.step(1 << 20).unwrap() {
            Step::Done(mb) => break mb,
            Step::Pending => {}
            Step::Waiting(d) => std::thread::sleep(d),
        }
    };
    assert_eq!(mb.scanned_bytes(), 0, "scanned again");
    let got: Vec<Uid> = (0..mb.count()).map(|i| mb.uid(i)).collect();
    assert_eq!(got, want);
    assert_eq!(got.len(), 49);
}
