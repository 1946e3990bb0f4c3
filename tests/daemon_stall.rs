//! A client that asks for a 200 MiB message and never reads it: the server
//! must stream from the file with bounded buffers (its resident memory stays
//! flat while the transfer is stalled), keep serving other clients at
//! normal speed (also while it opens and scans the 200 MiB mailbox at
//! login), and drop the stalled client after `--idle-timeout` (3 s here). The stalled client is a python script with a small receive buffer
//! (SO_RCVBUF, which std cannot set), so little of the message fits in the
//! kernel's buffers.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const BIG: u64 = 200 * 1024 * 1024;
const IDLE_TIMEOUT: u64 = 3;

/// Writes a mailbox holding one message of about `BIG` octets of ordinary
/// 100-octet lines; returns the message's LIST size (every LF sent as CRLF).
fn write_big_mailbox(w: &World, account: &Account) -> u64 {
    let path = w.mailbox(&account.name);
    let f = fs::File::create(&path).expect("create the big mailbox");
    let mut out = BufWriter::with_capacity(1 << 20, f);
    let header = b"Subject: big\nMessage-ID: <big@example.org>\n\n";
    out.write_all(FROM_LINE).unwrap();
    out.write_all(header).unwrap();
    let mut line = [b'x'; 100];
    line[99] = b'\n';
    let lines = (BIG - header.len() as u64) / 100;
    for _ in 0..lines {
        out.write_all(&line).unwrap();
    }
    out.flush().unwrap();
    drop(out);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    if is_root() {
        std::os::unix::fs::chown(&path, Some(account.uid), Some(account.gid)).unwrap();
    }
    let data_len = header.len() as u64 + lines * 100;
    let lfs = 3 + lines;
    data_len + lfs
}

/// Logs in with a tiny receive buffer, sends RETR 1, reads only the first
/// reply line and prints "stalled <line>". Then waits for a line on stdin,
/// reads whatever the server still delivers until EOF and prints
/// "drained <octets> <complete|truncated|reset>".
const STALL_PY: &str = r#"
import socket, sys
host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.settimeout(600)
s.connect((host, port))
buf = b""
def line():
    global buf
    while b"\n" not in buf:
        d = s.recv(256)
        if not d:
            raise SystemExit("closed early: %r" % buf)
        buf += d
    l, _, buf = buf.partition(b"\n")
    return l.decode("latin-1").rstrip("\r")
for expect in ["greeting", "USER", "PASS"]:
    if expect == "USER":
        s.sendall(("USER %s\r\n" % user).encode())
    if expect == "PASS":
        s.sendall(("PASS %s\r\n" % pw).encode())
    l = line()
    if not l.startswith("+OK"):
        raise SystemExit("%s: %s" % (expect, l))
s.sendall(b"RETR 1\r\n")
print("stalled", line(), flush=True)
sys.stdin.readline()
total = len(buf)
tail = buf[-5:]
how = "truncated"
s.settimeout(30)
while True:
    try:
        d = s.recv(1 << 20)
    except ConnectionResetError:
        how = "reset"
        break
    if not d:
        break
    total += len(d)
    tail = (tail + d)[-5:]
if how != "reset" and tail == b"\r\n.\r\n":
    how = "complete"
print("drained", total, how, flush=True)
"#;

#[test]
fn stalled_200_mib_retr_keeps_memory_flat_and_is_dropped() {
    let python = require_tool("python3", "python3");
    let mut w = World::new();
    // SHA-512 crypt, not yescrypt: a yescrypt check takes 16 MiB in an auth
    // thread, which would blur what the RETR path does to memory.
    let big = w.user_with_scheme("big", "big-pw", "sha512crypt");
    let other = w.user_with_scheme("small", "small-pw", "sha512crypt");
    let t = Instant::now();
    let size = write_big_mailbox(&w, &big);
    eprintln!("wrote the {size}-octet message in {:?}", t.elapsed());
    let small = simple_mbox(3);
    w.write_mailbox(&other, &small.bytes());
    let d = w.daemon(&["--idle-timeout", &IDLE_TIMEOUT.to_string()]);

    // Baseline after one ordinary session.
    let mut pop = d.connect();
    pop.login(&other.name, &other.pass);
    pop.multi("RETR 1");
    pop.quit();
    let base = d.rss_kib();

    // Another client is logged in throughout.
    let mut pop = d.connect();
    pop.login(&other.name, &other.pass);

    let mut client = Command::new(python)
        .arg("-c")
        .arg(STALL_PY)
        .arg(d.addr.ip().to_string())
        .arg(d.addr.port().to_string())
        .arg(&big.name)
        .arg(&big.pass)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the stalling python client");
    let (tx, rx) = mpsc::channel();
    let stdout = client.stdout.take().unwrap();
    thread::spawn(move || {
        for l in BufReader::new(stdout).lines() {
            if tx.send(l.unwrap()).is_err() {
                break;
            }
        }
    });

    // While the big mailbox is opened (login, scan) and the RETR starts,
    // the other client gets its answers at once.
    let t = Instant::now();
    let mut worst_opening = Duration::ZERO;
    let l = loop {
        match rx.try_recv() {
            Ok(l) => break l,
            Err(mpsc::TryRecvError::Disconnected) => panic!("the stalling client died"),
            Err(mpsc::TryRecvError::Empty) => {}
        }
        assert!(
            t.elapsed() < Duration::from_secs(600),
            "the stalling client got no RETR reply within 600 s"
        );
        let t = Instant::now();
        assert_eq!(pop.cmd("NOOP"), "+OK");
        worst_opening = worst_opening.max(t.elapsed());
        thread::sleep(Duration::from_millis(20));
    };
    let stalled_at = Instant::now();
    eprintln!(
        "login + RETR of the big message took {:?}; meanwhile the other client's worst \
         NOOP {worst_opening:?}",
        t.elapsed()
    );
    assert_eq!(
        l.trim_end(),
        format!("stalled +OK {size} octets"),
        "the stalling client's RETR reply (or its error)"
    );

    // While it is stalled: memory stays flat and others are served.
    let mut peak = base;
    let mut worst = Duration::ZERO;
    while stalled_at.elapsed() < Duration::from_secs(IDLE_TIMEOUT - 1) {
        peak = peak.max(d.rss_kib());
        let t = Instant::now();
        assert_eq!(pop.cmd("NOOP"), "+OK");
        let (_, body) = pop.multi("RETR 2");
        worst = worst.max(t.elapsed());
        assert_bytes_eq(&body.data(), &small.expected_retr(2), "RETR 2 meanwhile");
        thread::sleep(Duration::from_millis(100));
    }
    pop.quit();
    eprintln!(
        "stalled RETR: VmRSS {base} KiB before, {peak} KiB peak; other client's worst \
         NOOP+RETR {worst:?}"
    );
    assert!(
        peak < base + 8 * 1024,
        "server memory grew from {base} KiB to {peak} KiB while a 200 MiB RETR was stalled"
    );
    assert!(
        worst < Duration::from_secs(1),
        "another client's NOOP+RETR took {worst:?} during the stalled RETR"
    );

    // Past the idle timeout (plus the once-a-second sweep and slack) the
    // server has dropped the stalled client: draining now ends early.
    let drop_by = Duration::from_secs(IDLE_TIMEOUT + 3);
    thread::sleep(drop_by.saturating_sub(stalled_at.elapsed()));
    peak = peak.max(d.rss_kib());
    writeln!(client.stdin.take().unwrap(), "drain").unwrap();
    let l = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the stalling client's drain report");
    client.wait().unwrap();
    let f: Vec<&str> = l.split_whitespace().collect();
    assert!(
        f.len() == 3 && f[0] == "drained",
        "stalling client's report: {l:?}"
    );
    let got: u64 = f[1].parse().unwrap();
    eprintln!(
        "the stalled client got {got} of {size} octets before the close ({})",
        f[2]
    );
    assert!(
        f[2] != "complete" && got < size,
        "the stalled client was not dropped within {drop_by:?} (--idle-timeout \
         {IDLE_TIMEOUT}): it could still read the whole message ({got} octets, {})",
        f[2]
    );
    assert!(
        peak < base + 8 * 1024,
        "server memory {peak} KiB (baseline {base} KiB)"
    );
    // And the server is fine afterwards.
    let mut pop = d.connect();
    pop.login(&other.name, &other.pass);
    assert_eq!(pop.stat().0, 3);
    pop.quit();
    // Checked last, so that the checks above run whatever the outcome here.
    assert!(
        worst_opening < Duration::from_secs(1),
        "another client's NOOP took {worst_opening:?} while the 200 MiB mailbox was being \
         opened: the event loop must not block on a mailbox scan"
    );
}
