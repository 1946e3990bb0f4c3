//! Crash safety of expunge, by killing real processes.
//!
//! The test binary re-executes itself (`current_exe() --exact child_role`)
//! with `POP3D_TEST_MBOX_CHILD` naming the child's role; the child opens a
//! mailbox with the library and expunges it. Two ways to kill it:
//!
//! - `POP3D_FAULT_EXPUNGE_AT=N` (honoured by debug builds only): the child
//!   aborts once N bytes were written by the compaction (journal, mailbox,
//!   truncation and journal removal counted), at many N from the first byte
//!   to the last, for varied mailboxes; sometimes the recovery is killed the
//!   same way, and sometimes mail is delivered between the crash and the next
//!   open;
//! - SIGKILL at random moments during expunges of a larger mailbox.
//!
//! A kill loses nothing the process wrote (the kernel keeps it), so a power
//! cut is covered by the order of writes and syncs instead: one test traces
//! an expunge with strace and checks that order call by call.
//!
//! After each kill the parent opens the mailbox (which finishes the expunge)
//! and checks: the file parses, no journal is left, and the messages are
//! exactly the kept ones, then the mail delivered during the session, then the
//! mail delivered after the crash — each exactly once, in order — or, if the
//! journal was torn before any mailbox byte was written, all the original
//! messages (rolled back) with the same additions.
//!
//! `POP3D_DEBUG_JOURNAL_BLOCK=65536` makes journal blocks small so that small
//! mailboxes have both kinds of block (bytes staged in the journal where a
//! block's source and destination overlap, copied directly where they do not).

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::Rng;
use pop3d::config::MailboxLimits;
use pop3d::mbox::{ExpungeStep, Mailbox};

const ROLE: &str = "POP3D_TEST_MBOX_CHILD";
const FROM: &str = "From sender@example.org Mon Jan  1 00:00:00 2024\n";

fn limits() -> MailboxLimits {
    MailboxLimits {
        lock_wait: Duration::from_secs(10),
        ..MailboxLimits::default()
    }
}

/// The child process: does nothing unless the parent set [`ROLE`].
#[test]
fn child_role() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let path = PathBuf::from(std::env::var("MBOX").unwrap());
    let deleted: Vec<usize> = std::env::var("DELETE")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let budget: usize = std::env::var("BUDGET")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(1 << 20);
    let mut out = std::io::stdout();
    let mut mb = Mailbox::open(&path, &limits()).expect("child open");
    if role == "open" {
        writeln!(out, "WRITTEN {}", pop3d::mbox::fault_bytes_written()).unwrap();
        return;
    }
    if let Ok(app) = std::env::var("APPEND") {
        deliver(&path, app.as_bytes());
    }
    let mut marks = vec![false; mb.count()];
    for d in deleted {
        marks[d] = true;
    }
    writeln!(out, "READY").unwrap();
    out.flush().unwrap();
    mb.expunge_start(&marks);
    loop {
        match mb.expunge_step(budget).expect("child expunge") {
            ExpungeStep::Done(_) => break,
            ExpungeStep::Pending | ExpungeStep::Committed { .. } => {}
            ExpungeStep::Waiting(d) => std::thread::sleep(d),
        }
    }
    writeln!(out, "WRITTEN {}", pop3d::mbox::fault_bytes_written()).unwrap();
}

/// Appends `msg` (From_ line, message, empty line) like a careful MDA: first
/// an empty line if the file does not end with one, so it starts a message.
fn deliver(path: &Path, msg: &[u8]) {
    let data = fs::read(path).unwrap();
    let lead: &[u8] = if data.is_empty() || data.ends_with(b"\n\n") || data.ends_with(b"\n\r\n") {
        b""
    } else if data.ends_with(b"\n") {
        b"\n"
    } else {
        b"\n\n"
    };
    let mut f = fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(&[lead, msg].concat()).unwrap();
}

/// A child run's outcome.
struct Run {
    /// Killed by a signal (the fault hook's abort, or our SIGKILL).
    killed: bool,
    /// Bytes the compaction wrote, when it finished.
    written: Option<u64>,
}

fn child(role: &str, mbox: &Path, env: &[(&str, String)]) -> Command {
    let me = std::env::current_exe().unwrap();
    // Under qemu (cross tests) the test binary itself needs the runner.
    let mut c = match std::env::var("TEST_EXEC_RUNNER") {
        Ok(runner) if !runner.is_empty() => {
            let mut c = Command::new(runner);
            c.arg(me);
            c
        }
        _ => Command::new(me),
    };
    c.args([
        "--exact",
        "child_role",
        "--nocapture",
        "--test-threads",
        "1",
        "-q",
    ])
    .env(ROLE, role)
    .env("MBOX", mbox)
    .env("POP3D_DEBUG_JOURNAL_BLOCK", "65536")
    .env_remove("POP3D_FAULT_EXPUNGE_AT")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

fn run(mut cmd: Command) -> Run {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    let written = text
        .lines()
        .find_map(|l| l.strip_prefix("WRITTEN "))
        .map(|n| n.trim().parse().unwrap());
    let killed = out.status.signal().is_some();
    assert!(
        killed || out.status.success(),
        "child failed: {:?}\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Run { killed, written }
}

/// A mailbox of `n` messages as procmail writes them (From_ line, message,
/// empty line), some with bodies of up to `big` bytes, some CRLF, some
/// with dots and `>From` lines.
fn fixture(rng: &mut Rng, n: usize, big: u64) -> Vec<u8> {
    let mut m = Vec::new();
    for k in 0..n {
        m.extend_from_slice(FROM.as_bytes());
        let crlf = rng.below(6) == 0;
        let nl = if crlf { "\r\n" } else { "\n" };
        m.extend_from_slice(
            format!("Received: from h{k}{nl}Subject: message {k}{nl}{nl}").as_bytes(),
        );
        for _ in 0..rng.below(5) {
            match rng.below(6) {
                0 => m.extend_from_slice(format!(".{nl}").as_bytes()),
                1 => m.extend_from_slice(format!(">From x{nl}").as_bytes()),
                2 => {
                    let len = rng.below(big) as usize;
                    m.extend((0..len).map(|i| b'a' + (i % 26) as u8));
                    m.extend_from_slice(nl.as_bytes());
                }
                _ => m.extend_from_slice(format!("line {} of {k}{nl}", rng.below(99)).as_bytes()),
            }
        }
        m.extend_from_slice(nl.as_bytes());
    }
    m
}

/// The data of every message, through the library.
fn messages(path: &Path) -> Vec<Vec<u8>> {
    try_messages(path).expect("the mailbox parses")
}

/// [`messages`], or why the mailbox cannot be opened.
fn try_messages(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let mb = Mailbox::open(path, &limits()).map_err(|e| e.to_string())?;
    Ok((0..mb.count())
        .map(|i| {
            let mut buf = vec![0u8; mb.data_len(i) as usize];
            let mut got = 0;
            while got < buf.len() {
                let n = mb.read_data(i, got as u64, &mut buf[got..]).unwrap();
                assert!(n > 0);
                got += n;
            }
            buf
        })
        .collect())
}

fn journal_of(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap().to_string_lossy();
    path.with_file_name(format!(".{name}.pop3d-journal"))
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let d =
            std::env::temp_dir().join(format!("pop3d-crash-{tag}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// One crash scenario: the messages to expect either way.
struct Case {
    orig: Vec<u8>,
    deleted: Vec<usize>,
    /// Delivered during the session (after the open, before the expunge).
    during: String,
    /// Data of the original messages.
    datas: Vec<Vec<u8>>,
}

impl Case {
    fn new(dir: &Path, orig: Vec<u8>, rng: &mut Rng) -> Case {
        let probe = dir.join("probe");
        fs::write(&probe, &orig).unwrap();
        let datas = messages(&probe);
        fs::remove_file(&probe).unwrap();
        let n = datas.len();
        let mut deleted: Vec<usize> = (0..n).filter(|_| rng.below(3) == 0).collect();
        if deleted.is_empty() {
            deleted.push(rng.below(n as u64) as usize);
        }
        let during = if rng.below(2) == 0 {
            format!("{FROM}Subject: during\n\ndelivered during the session\n\n")
        } else {
            String::new()
        };
        Case {
            orig,
            deleted,
            during,
            datas,
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![(
            "DELETE",
            self.deleted
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(","),
        )];
        if !self.during.is_empty() {
            v.push(("APPEND", self.during.clone()));
        }
        v
    }

    /// Checks the mailbox after a crash and recovery.
    fn check(&self, path: &Path, after: &[&[u8]], what: &str) {
        let got = messages(path);
        assert!(!journal_of(path).exists(), "{what}: journal left");
        let mut extra: Vec<Vec<u8>> = Vec::new();
        if !self.during.is_empty() {
            extra.push(b"Subject: during\n\ndelivered during the session\n".to_vec());
        }
        extra.extend(after.iter().map(|a| a.to_vec()));
        // Mail delivered after a last line without its end ends that line
        // first (`deliver`), in the last message if it is still there.
        let mut datas = self.datas.clone();
        if !self.orig.ends_with(b"\n") && !extra.is_empty() {
            datas.last_mut().unwrap().push(b'\n');
        }
        let mut kept: Vec<Vec<u8>> = datas
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.deleted.contains(i))
            .map(|(_, d)| d.clone())
            .collect();
        kept.extend(extra.iter().cloned());
        let mut all = datas;
        all.extend(extra);
        assert!(
            got == kept || got == all,
            "{what}: {} messages, expected {} (expunged) or {} (rolled back)",
            got.len(),
            kept.len(),
            all.len()
        );
    }
}

#[test]
fn expunge_killed_at_any_byte_is_finished_at_the_next_open() {
    let dir = Scratch::new("fault");
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut fixtures = vec![
        fixture(&mut rng, 6, 300),
        fixture(&mut rng, 12, 150_000),
        fixture(&mut rng, 30, 20_000),
        // Many small messages: staged blocks spanning several kept runs.
        fixture(&mut rng, 60, 3_000),
    ];
    // The UW pseudo-message first, and a last message without its empty line.
    let mut pseudo = format!(
        "{FROM}Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\nX-IMAP: 1 2\n\ninternal\n\n"
    )
    .into_bytes();
    pseudo.extend(fixture(&mut rng, 8, 90_000));
    fixtures.push(pseudo);
    let mut open_end = fixture(&mut rng, 5, 70_000);
    open_end.pop();
    fixtures.push(open_end);

    let mut kills = 0;
    for (f, orig) in fixtures.into_iter().enumerate() {
        let mut case = Case::new(&dir.0, orig, &mut rng);
        if !case.orig.ends_with(b"\n") {
            // Mail appended after a last line without its end changes that
            // message: the session's expunge is refused, by design.
            case.during.clear();
        }
        let path = dir.0.join(format!("user{f}"));
        // The third fixture with the smallest blocks (a nearly full disk's).
        let env = || {
            let mut env = case.env();
            if f == 2 {
                env.push(("POP3D_DEBUG_JOURNAL_BLOCK", "4096".to_string()));
            }
            env
        };
        // A full run tells how many bytes an expunge of this case writes.
        fs::write(&path, &case.orig).unwrap();
        let total = run(child("expunge", &path, &env()))
            .written
            .expect("a complete run reports its bytes");
        case.check(&path, &[], "complete run");
        let mut points: Vec<u64> = (0..12).chain(total.saturating_sub(12)..total).collect();
        for _ in 0..24 {
            points.push(rng.below(total));
        }
        points.sort_unstable();
        points.dedup();
        for (k, &at) in points.iter().enumerate() {
            fs::write(&path, &case.orig).unwrap();
            let _ = fs::remove_file(journal_of(&path));
            let mut env = env();
            env.push(("POP3D_FAULT_EXPUNGE_AT", at.to_string()));
            let r = run(child("expunge", &path, &env));
            assert!(r.killed, "fault at {at} of {total} did not stop the child");
            kills += 1;
            let mut what = format!("fixture {f}, fault at byte {at} of {total}");
            // Sometimes the recovery is killed too.
            if k % 3 == 1 && journal_of(&path).exists() {
                let second = 1 + rng.below(total);
                let env = vec![("POP3D_FAULT_EXPUNGE_AT", second.to_string())];
                let r = run(child("open", &path, &env));
                what += &format!(", recovery killed at {second}: {}", r.killed);
            }
            // Sometimes mail arrives before the next login.
            let late = format!("{FROM}Subject: late {k}\n\nafter the crash\n\n");
            if k % 2 == 0 {
                what += ", mail delivered after the crash";
            }
            let after: Vec<&[u8]> = if k % 2 == 0 {
                deliver(&path, late.as_bytes());
                vec![&late.as_bytes()[FROM.len()..late.len() - 1]]
            } else {
                Vec::new()
            };
            case.check(&path, &after, &what);
        }
    }
    assert!(kills > 100, "{kills} kills");
}

#[test]
fn expunge_sigkilled_at_random_moments_is_finished_at_the_next_open() {
    let dir = Scratch::new("sigkill");
    let mut rng = Rng(0xdead_beef_0bad_cafe);
    let orig = fixture(&mut rng, 1500, 12_000);
    let case = Case::new(&dir.0, orig, &mut rng);
    let path = dir.0.join("user");
    // How long one expunge takes, in small steps.
    fs::write(&path, &case.orig).unwrap();
    let mut env = case.env();
    env.push(("BUDGET", "8192".to_string()));
    let start = Instant::now();
    run(child("expunge", &path, &env));
    let full = start.elapsed();
    case.check(&path, &[], "complete run");
    // Random moments: keep going until several kills landed inside an
    // expunge (how many do depends on the machine's load), within a bound.
    let mut interrupted = 0;
    for round in 0..60 {
        if interrupted >= 3 && round >= 12 {
            break;
        }
        fs::write(&path, &case.orig).unwrap();
        let mut cmd = child("expunge", &path, &env);
        let mut proc = cmd.stderr(Stdio::null()).spawn().unwrap();
        // Wait until it has opened the mailbox, then kill it at some moment.
        let mut line = String::new();
        let mut out = BufReader::new(proc.stdout.take().unwrap());
        while !line.starts_with("READY") {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                break;
            }
        }
        let delay = full.mul_f64(rng.below(1000) as f64 / 1000.0);
        std::thread::sleep(delay);
        let _ = proc.kill();
        let status = proc.wait().unwrap();
        let what = format!("SIGKILL round {round} after {delay:?} ({status:?})");
        if journal_of(&path).exists() {
            interrupted += 1;
        }
        case.check(&path, &[], &what);
    }
    assert!(
        interrupted >= 3,
        "only {interrupted} of 60 kills hit an expunge"
    );
}

/// A message of exactly `size` raw bytes (From_ line to the empty line after it).
fn sized(size: usize, tag: usize) -> Vec<u8> {
    let head = format!("{FROM}Subject: m{tag}\n\n");
    let mut m = head.clone().into_bytes();
    m.extend((0..size - head.len() - 2).map(|i| b'a' + ((i + tag) % 26) as u8));
    m.extend_from_slice(b"\n\n");
    m
}

/// The last kept message, copied directly (its gap is a block or more),
/// starts just after the new end, where the truncation writes its nonce: a
/// crash after the nonce, before the truncate record is whole, must still
/// leave the message intact (the block is redone from its source).
#[test]
fn a_crash_at_the_truncation_spares_the_last_block_source() {
    let dir = Scratch::new("nonce");
    for last in [4990, 5000] {
        let orig = [sized(300, 0), sized(5000, 1), sized(last, 2)].concat();
        let path = dir.0.join("user");
        fs::write(&path, &orig).unwrap();
        let all = messages(&path);
        let want = vec![all[0].clone(), all[2].clone()];
        let env = vec![
            ("DELETE", "1".to_string()),
            ("POP3D_DEBUG_JOURNAL_BLOCK", "4096".to_string()),
        ];
        let total = run(child("expunge", &path, &env)).written.unwrap();
        assert_eq!(messages(&path), want);
        for at in total.saturating_sub(300)..total {
            fs::write(&path, &orig).unwrap();
            let _ = fs::remove_file(journal_of(&path));
            let mut env = env.clone();
            env.push(("POP3D_FAULT_EXPUNGE_AT", at.to_string()));
            assert!(run(child("expunge", &path, &env)).killed);
            assert_eq!(
                try_messages(&path),
                Ok(want.clone()),
                "last message {last} bytes, fault at {at} of {total}"
            );
        }
    }
}

/// Killed after the journal's header, before all of its plan (nothing in
/// the mailbox written yet): the next open rolls back, it does not refuse
/// the mailbox.
#[test]
fn a_journal_torn_in_its_plan_is_rolled_back() {
    let dir = Scratch::new("torn-plan");
    for n in [10usize, 600] {
        let orig: Vec<u8> = (0..n).flat_map(|k| sized(120, k)).collect();
        let deleted: Vec<String> = (0..n).step_by(2).map(|d| d.to_string()).collect();
        let path = dir.0.join("user");
        // The header is 120 bytes; the plan (16 bytes per run and per
        // retired id) follows at 4096.
        let plan = 16 * n as u64;
        let mut points = vec![120u64, 121, 130];
        if plan > 4096 {
            points.extend([1120, 120 + plan - 4097]);
        }
        for at in points {
            fs::write(&path, &orig).unwrap();
            let _ = fs::remove_file(journal_of(&path));
            let env = vec![
                ("DELETE", deleted.join(",")),
                ("POP3D_FAULT_EXPUNGE_AT", at.to_string()),
            ];
            assert!(run(child("expunge", &path, &env)).killed);
            let got = try_messages(&path).map(|m| m.len());
            assert_eq!(got, Ok(n), "{n} messages, fault at {at}");
            assert!(!journal_of(&path).exists());
        }
    }
}

/// What one traced system call did to one of the files of an expunge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Write,
    Sync,
    Truncate,
    Unlink,
}

/// The calls of an `strace -f -y` log on `files` (by path), in order, as
/// (index into `files`, what it did, its result); failed calls left out.
fn traced(log: &str, files: &[&Path]) -> Vec<(usize, Op, u64)> {
    let mut ops = Vec::new();
    for line in log.lines() {
        // "PID name(args) = result"
        let Some((call, result)) = line.rsplit_once(" = ") else {
            continue;
        };
        let Ok(result) = result.trim().parse::<u64>() else {
            continue; // failed, or not a plain number
        };
        let call = call.split_once(' ').map_or(call, |(_, c)| c.trim_start());
        let Some((name, args)) = call.split_once('(') else {
            continue;
        };
        let op = match name {
            "write" | "pwrite64" | "pwritev" | "pwritev2" => Op::Write,
            "fsync" | "fdatasync" => Op::Sync,
            "ftruncate" => Op::Truncate,
            "unlink" | "unlinkat" => Op::Unlink,
            _ => continue,
        };
        // The file: the path strace -y prints after the descriptor, or the
        // quoted path of an unlink.
        let path = if op == Op::Unlink {
            args.split('"').nth(1)
        } else {
            args.split_once('<')
                .and_then(|(_, rest)| rest.split_once('>'))
                .map(|(p, _)| p)
        };
        if let Some(i) = path.and_then(|p| files.iter().position(|f| Path::new(p) == *f)) {
            ops.push((i, op, result));
        }
    }
    ops
}

/// The order of writes and syncs that makes an expunge safe against a power
/// cut, which no kill can show (the kernel keeps what a killed process
/// wrote): traced with strace, the journal's header is durable, the
/// directory entry too, before the mailbox's first byte is written; every
/// journal write (a record, or a block's bytes staged) finds every earlier
/// mailbox write synced (so the record or staged copy it replaces is no
/// longer needed); a record finds the bytes it names synced (its fast
/// checksum of them is one that crafted mail could match); every mailbox
/// write and the truncation find every journal write synced (the record
/// that lets a redo finish them is on disk); the journal goes only once the
/// truncated mailbox is synced.
#[test]
fn the_write_order_makes_an_expunge_safe_against_a_power_cut() {
    let strace = common::require_tool("strace", "strace");
    let dir = Scratch::new("order");
    let path = dir.0.join("user");
    // Deleting message 0 (1,000 bytes) stages the 200 KB after it in the
    // journal, block by 64 KiB block; deleting message 11 (200 KB) opens a
    // gap the 600 KB after it are copied across directly.
    let mut orig = sized(1000, 0);
    for k in 1..=10 {
        orig.extend(sized(20_000, k));
    }
    orig.extend(sized(200_000, 11));
    for k in 12..42 {
        orig.extend(sized(20_000, k));
    }
    fs::write(&path, &orig).unwrap();
    let mut want = messages(&path);
    want.remove(11);
    want.remove(0);
    let log = dir.0.join("strace.log");
    let inner = child("expunge", &path, &[("DELETE", "0,11".to_string())]);
    let mut cmd = Command::new(&strace);
    cmd.args(["-f", "-y", "-qq", "-o"])
        .arg(&log)
        .args([
            "-e",
            "trace=write,pwrite64,pwritev,pwritev2,fsync,fdatasync,ftruncate,unlink,unlinkat",
            "--",
        ])
        .arg(inner.get_program())
        .args(inner.get_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let r = run(cmd);
    assert!(!r.killed && r.written.is_some());
    assert_eq!(messages(&path), want);
    let journal = journal_of(&path);
    let (m, j, d) = (0, 1, 2);
    let ops = traced(
        &fs::read_to_string(&log).unwrap(),
        &[&path, &journal, &dir.0],
    );
    let (mut m_dirty, mut j_dirty, mut dir_synced, mut removed) = (false, false, false, false);
    // A journal record is one write of 128 bytes; staged bytes and the
    // header are other writes.
    let mut j_data_dirty = false;
    let mut records = 0;
    let mut j_writes_after_m = 0;
    let mut m_syncs = 0;
    let mut m_writes = 0;
    for (k, &(file, op, len)) in ops.iter().enumerate() {
        let at = format!("call {k} of {ops:?}");
        match (file, op) {
            (f, Op::Write) if f == j => {
                assert!(
                    !m_dirty,
                    "journal written before the mailbox was synced, {at}"
                );
                assert!(!removed, "{at}");
                if len == 128 {
                    assert!(
                        !j_data_dirty,
                        "a record written before its bytes were synced, {at}"
                    );
                    records += 1;
                } else {
                    j_data_dirty = true;
                }
                j_dirty = true;
                j_writes_after_m += usize::from(m_writes > 0);
            }
            (f, Op::Sync) if f == j => (j_dirty, j_data_dirty) = (false, false),
            (f, Op::Write | Op::Truncate) if f == m => {
                assert!(
                    !j_dirty,
                    "mailbox written before the journal was synced, {at}"
                );
                assert!(
                    dir_synced,
                    "mailbox written before the journal's directory entry was synced, {at}"
                );
                assert!(!removed, "{at}");
                m_dirty = true;
                m_writes += 1;
            }
            (f, Op::Sync) if f == m => {
                m_dirty = false;
                m_syncs += 1;
            }
            (f, Op::Sync) if f == d => dir_synced = true,
            (f, Op::Unlink) if f == j => {
                assert!(
                    !m_dirty,
                    "journal removed before the mailbox was synced, {at}"
                );
                removed = true;
            }
            _ => {}
        }
    }
    assert!(removed, "the journal was never removed: {ops:?}");
    // Enough happened for the checks to mean something: several staged and
    // direct blocks, each record after the mailbox's sync, and the
    // truncation.
    assert!(
        ops.iter().any(|&(f, op, _)| (f, op) == (m, Op::Truncate)),
        "{ops:?}"
    );
    assert!(
        m_writes >= 8 && m_syncs >= 6 && j_writes_after_m >= 6 && records >= 8,
        "{ops:?}"
    );
}
