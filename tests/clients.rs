//! Real third-party POP3 clients against the real binary in standalone mode:
//! curl (LIST, RETR, TOP and DELE through `-X`), Python's poplib (every
//! command it has) and fetchmail (keep mode, then delete mode, delivering
//! through an MDA into one file per message). What each client fetched must
//! equal the mbox messages byte for byte, after undoing only what the client
//! itself changes (CRLF for curl; nothing else for curl and poplib).
//!
//! What fetchmail 6.4.37 changes, found by running it (and so stripped or
//! avoided here, nothing more):
//! - it prepends a 3-line `Received: from 127.0.0.1 [127.0.0.1]` header (with
//!   `\tby HOST with POP3 (fetchmail-VERSION)` and `\tfor <...> (...); DATE`
//!   continuation lines) unless `set invisible` is given; the keep-mode run
//!   strips exactly that header, the delete-mode run uses `set invisible`;
//! - it turns CRLF into LF, and also drops every bare CR inside a line
//!   (`x\ry` arrives as `xy`), so CR bytes are removed before comparing;
//! - it mangles lines of 8,190 bytes or more (NUL and other bytes appear at
//!   its 8 KiB buffer boundary), so its fixture's long line is 8,000 bytes;
//! - NUL bytes, 8-bit bytes, dot lines and `From ` lines pass unchanged.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::*;

#[test]
fn curl_list_retr_top_dele() {
    let curl = require_tool("curl", "curl");
    let mut w = World::new();
    let u = w.user("alice", "alicepw");
    let mbox = tricky_mbox();
    let path = w.write_mailbox(&u, &mbox.bytes());
    let d = w.daemon(&[]);
    let base = format!("pop3://{}:{}@{}/", u.name, u.pass, d.addr);
    let curl_out = |args: &[&str]| -> Vec<u8> {
        let mut c = Command::new(&curl);
        c.args(["-s", "-S", "--max-time", "60"]).args(args);
        run(&mut c, &format!("curl {}", args.join(" "))).stdout
    };

    // LIST
    let list = String::from_utf8(curl_out(&[&base])).expect("LIST output is text");
    let want: String = (1..=mbox.len())
        .map(|k| format!("{k} {}\r\n", mbox.expected_size(k)))
        .collect();
    assert_eq!(list, want, "curl LIST");

    // RETR n
    for k in 1..=mbox.len() {
        let got = curl_out(&[&format!("{base}{k}")]);
        assert_eq!(
            got.len() as u64,
            mbox.expected_size(k),
            "curl RETR {k}: octets received vs LIST size"
        );
        assert_bytes_eq(
            &crlf_to_lf(&got),
            &mbox.expected_retr(k),
            &format!("curl RETR {k}"),
        );
    }

    // TOP n 0
    for k in [1, 4, 8, mbox.len()] {
        let got = curl_out(&["-X", &format!("TOP {k} 0"), &base]);
        assert_bytes_eq(
            &crlf_to_lf(&got),
            &mbox.expected_top(k, 0),
            &format!("curl TOP {k} 0"),
        );
    }

    // DELE n (no body: -I), then curl QUITs and the message is gone.
    curl_out(&["-X", "DELE 2", "-I", &base]);
    assert_bytes_eq(
        &fs::read(&path).unwrap(),
        &mbox.bytes_without(&[2]),
        "mailbox after curl DELE 2",
    );
    let list = String::from_utf8(curl_out(&[&base])).unwrap();
    let want: String = (1..=mbox.len())
        .filter(|&k| k != 2)
        .enumerate()
        .map(|(i, k)| format!("{} {}\r\n", i + 1, mbox.expected_size(k)))
        .collect();
    assert_eq!(list, want, "curl LIST after DELE 2");
}

const POPLIB_SCRIPT: &str = r#"
import os, poplib, sys
# poplib refuses lines longer than 2048 bytes by default; the fixture has a
# 70,000-byte line.
poplib._MAXLINE = 1 << 20
host, port, user, password, out = sys.argv[1:]
p = poplib.POP3(host, int(port), timeout=60)
print("welcome", p.getwelcome().decode("latin-1"))
p.user(user)
p.pass_(password)
count, size = p.stat()
print("stat", count, size)
for l in p.list()[1]:
    print("list", l.decode())
for l in p.uidl()[1]:
    print("uidl", l.decode())
def save(name, lines):
    with open(os.path.join(out, name), "wb") as f:
        f.write(b"".join(l + b"\n" for l in lines))
for i in range(1, count + 1):
    resp, lines, octets = p.retr(i)
    save("retr%d" % i, lines)
    print("retr", i, octets)
    resp, lines, octets = p.top(i, 2)
    save("top%d" % i, lines)
print("dele", p.dele(1).decode("latin-1"))
print("quit", p.quit().decode("latin-1"))
"#;

#[test]
fn python_poplib_session() {
    let python = require_tool("python3", "python3");
    let mut w = World::new();
    let u = w.user("alice", "alicepw");
    let mbox = tricky_mbox();
    let path = w.write_mailbox(&u, &mbox.bytes());
    let d = w.daemon(&[]);
    let out_dir = w.dir.join("poplib");
    fs::create_dir(&out_dir).unwrap();
    let out = run(
        Command::new(python)
            .arg("-c")
            .arg(POPLIB_SCRIPT)
            .arg(d.addr.ip().to_string())
            .arg(d.addr.port().to_string())
            .arg(&u.name)
            .arg(&u.pass)
            .arg(&out_dir),
        "python3 poplib script",
    );
    let stdout = String::from_utf8(out.stdout).expect("script output is text");
    let n = mbox.len();
    let total = mbox.expected_total(&[]);
    let mut lists = Vec::new();
    let mut uids = Vec::new();
    let mut retrs = Vec::new();
    let mut saw = (false, false, false);
    for line in stdout.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        match f[0] {
            "welcome" => assert!(f[1] == "+OK", "poplib welcome {line:?}"),
            "stat" => {
                assert_eq!(line, format!("stat {n} {total}"), "poplib stat()");
                saw.0 = true;
            }
            "list" => lists.push(format!("{} {}", f[1], f[2])),
            "uidl" => uids.push(f[2].to_owned()),
            "retr" => retrs.push((f[1].parse::<usize>().unwrap(), f[2].parse::<u64>().unwrap())),
            "dele" => {
                assert!(f[1] == "+OK", "poplib dele(1): {line:?}");
                saw.1 = true;
            }
            "quit" => {
                assert!(f[1] == "+OK", "poplib quit(): {line:?}");
                saw.2 = true;
            }
            _ => panic!("unexpected script output {line:?}"),
        }
    }
    assert_eq!(saw, (true, true, true), "script output:\n{stdout}");
    let want: Vec<String> = (1..=n)
        .map(|k| format!("{k} {}", mbox.expected_size(k)))
        .collect();
    assert_eq!(lists, want, "poplib list()");
    assert_eq!(uids.len(), n, "poplib uidl()");
    let mut sorted = uids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), n, "UIDs must be unique: {uids:?}");
    for k in 1..=n {
        assert_eq!(
            retrs[k - 1],
            (k, mbox.expected_size(k)),
            "poplib retr({k}) octets vs LIST size"
        );
        let got = fs::read(out_dir.join(format!("retr{k}"))).unwrap();
        assert_bytes_eq(&got, &mbox.expected_retr(k), &format!("poplib retr({k})"));
        let got = fs::read(out_dir.join(format!("top{k}"))).unwrap();
        assert_bytes_eq(
            &got,
            &mbox.expected_top(k, 2),
            &format!("poplib top({k}, 2)"),
        );
    }
    assert_bytes_eq(
        &fs::read(&path).unwrap(),
        &mbox.bytes_without(&[1]),
        "mailbox after poplib dele(1)",
    );
}

/// MDA for fetchmail: each message into its own file, numbered from 1 in
/// delivery order.
const MDA_SCRIPT: &str = r#"#!/bin/sh
dir="$1"
n=1
while [ -e "$dir/msg$n" ]; do n=$((n+1)); done
exec cat > "$dir/msg$n"
"#;

/// Runs fetchmail once with an rc file made from `poll_opts` (and `set
/// invisible` if asked), delivering into `out_dir`; returns fetchmail's output.
fn fetchmail_run(
    fetchmail: &Path,
    w: &World,
    d: &Daemon,
    u: &Account,
    tag: &str,
    invisible: bool,
    poll_opts: &str,
) -> (String, std::path::PathBuf) {
    let out_dir = w.dir.join(format!("fetchmail-{tag}"));
    fs::create_dir(&out_dir).unwrap();
    let mda = w.dir.join("mda.sh");
    if !mda.exists() {
        fs::write(&mda, MDA_SCRIPT).unwrap();
    }
    let rc = w.dir.join(format!("fetchmailrc-{tag}"));
    fs::write(
        &rc,
        format!(
            "set no bouncemail\n{}\
             poll 127.0.0.1 service {port} proto pop3 auth password timeout 60\n  \
             user \"{user}\" password \"{pass}\"\n  \
             no rewrite fetchall {poll_opts} sslproto '' mda \"/bin/sh {mda} {out}\"\n",
            if invisible { "set invisible\n" } else { "" },
            port = d.addr.port(),
            user = u.name,
            pass = u.pass,
            mda = mda.display(),
            out = out_dir.display(),
        ),
    )
    .unwrap();
    // fetchmail refuses an rc file others can read.
    fs::set_permissions(&rc, fs::Permissions::from_mode(0o600)).unwrap();
    let out = run(
        Command::new(fetchmail)
            .arg("-f")
            .arg(&rc)
            .arg("--pidfile")
            .arg(w.dir.join(format!("fetchmail-{tag}.pid")))
            .args(["-v", "--nosyslog"])
            .env("HOME", &w.dir.path)
            .env_remove("FETCHMAILHOME")
            .env_remove("FETCHMAILUSER"),
        &format!("fetchmail ({tag})"),
    );
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (log, out_dir)
}

/// Removes the Received header fetchmail prepends (first line plus its
/// continuation lines), checking it is fetchmail's.
fn strip_fetchmail_received(msg: &[u8], what: &str) -> Vec<u8> {
    assert!(
        msg.starts_with(b"Received: from 127.0.0.1"),
        "{what}: expected fetchmail's Received header first, got {:?}",
        String::from_utf8_lossy(&msg[..msg.len().min(120)])
    );
    let mut pos = 0;
    let mut first = true;
    let mut header = Vec::new();
    while pos < msg.len() {
        let end = msg[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(msg.len(), |i| pos + i + 1);
        let line = &msg[pos..end];
        if !first && !line.starts_with(b"\t") && !line.starts_with(b" ") {
            break;
        }
        header.extend_from_slice(line);
        first = false;
        pos = end;
    }
    assert!(
        contains(&header, b"fetchmail"),
        "{what}: the first header is not fetchmail's: {:?}",
        String::from_utf8_lossy(&header)
    );
    msg[pos..].to_vec()
}

fn without_cr(b: &[u8]) -> Vec<u8> {
    b.iter().copied().filter(|&c| c != b'\r').collect()
}

#[test]
fn fetchmail_keep_then_delete() {
    let fetchmail = require_tool("fetchmail", "fetchmail");
    let mut w = World::new();
    let u = w.user("alice", "alicepw");
    // fetchmail mangles lines of 8,190 bytes or more (see the file comment).
    let mbox = tricky_mbox_with_long_line(8_000);
    let path = w.write_mailbox(&u, &mbox.bytes());
    let before = fs::read(&path).unwrap();
    let d = w.daemon(&[]);
    let n = mbox.len();

    // Keep mode: everything is fetched, nothing is deleted.
    let (log, dir) = fetchmail_run(&fetchmail, &w, &d, &u, "keep", false, "keep");
    for k in 1..=n {
        let f = dir.join(format!("msg{k}"));
        let got =
            fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}\nfetchmail:\n{log}", f.display()));
        let what = format!("fetchmail (keep) message {k}");
        let got = strip_fetchmail_received(&got, &what);
        assert_bytes_eq(&got, &without_cr(&mbox.expected_retr(k)), &what);
    }
    assert!(
        !dir.join(format!("msg{}", n + 1)).exists(),
        "fetchmail delivered more than {n} messages"
    );
    assert_bytes_eq(
        &fs::read(&path).unwrap(),
        &before,
        "mailbox after fetchmail keep mode",
    );

    // Delete mode, with `set invisible` so nothing is added.
    let (log, dir) = fetchmail_run(&fetchmail, &w, &d, &u, "delete", true, "nokeep");
    for k in 1..=n {
        let f = dir.join(format!("msg{k}"));
        let got =
            fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}\nfetchmail:\n{log}", f.display()));
        assert_bytes_eq(
            &got,
            &without_cr(&mbox.expected_retr(k)),
            &format!("fetchmail (delete) message {k}"),
        );
    }
    assert!(
        !dir.join(format!("msg{}", n + 1)).exists(),
        "fetchmail delivered more than {n} messages"
    );
    let meta = fs::metadata(&path).expect("the mailbox file stays (emptied, not removed)");
    assert_eq!(meta.len(), 0, "mailbox after fetchmail delete mode");
    assert_eq!(
        meta.permissions().mode() & 0o7777,
        0o600,
        "mailbox mode after expunge"
    );

    let mut pop = d.connect();
    pop.login(&u.name, &u.pass);
    assert_eq!(pop.cmd("STAT"), "+OK 0 0");
    pop.quit();
}
