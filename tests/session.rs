//! Whole POP3 sessions against the real binary, in standalone mode (`-D -F` on
//! a loopback port) and in inetd mode (one end of a socketpair as stdin and
//! stdout): every command of RFC 1939, error replies that leave the session
//! going, LIST/STAT sizes that equal the octets RETR sends, message data equal
//! to the mbox bytes (dot lines, `From ` lines, a 70,000-byte line, 8-bit,
//! NUL, bare CR, empty body, no final newline), expunge only on QUIT, mail
//! appended during a session kept, an untouched mailbox keeping its mtime, a
//! missing mailbox served as empty, the same refusal for every kind of bad
//! login, popa3d-compatible UIDLs, CAPA, pipelined commands, the command-line
//! flags, --max-sessions, --max-messages, --max-mailbox-bytes and --flock; inetd
//! sessions re-opening a large mailbox from its index file; a large mailbox
//! scanned by four threads served exactly as when scanned by one; clients
//! that half-close after their last commands; many large RETRs at once; QUIT
//! answered before a long compaction, which the server then finishes.

mod common;

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// The one refusal text every failed login gets (exact, per the contract).
const AUTH_FAILED: &str = "-ERR [AUTH] Authentication failed";

/// Drives one session through every command on a mailbox holding `mbox`,
/// ending with DELE 1, DELE 3 and QUIT.
fn full_session(pop: &mut Pop3, user: &Account, mbox: &Mbox) {
    let n = mbox.len();
    assert!(n >= 3, "the full session needs at least 3 messages");

    // AUTHORIZATION state: a transaction command is refused, a wrong password
    // is refused with the one text, then the right one works.
    pop.err("STAT");
    pop.ok(&format!("USER {}", user.name));
    assert_eq!(pop.cmd(&format!("PASS {}-wrong", user.pass)), AUTH_FAILED);
    pop.login(&user.name, &user.pass);

    // STAT, LIST, LIST n: sizes are those of the fixture, STAT is their sum.
    let (count, total) = pop.stat();
    assert_eq!(count, n as u64, "STAT count");
    let list = pop.list();
    let numbers: Vec<u64> = list.iter().map(|&(k, _)| k).collect();
    assert_eq!(numbers, (1..=n as u64).collect::<Vec<_>>(), "LIST numbers");
    for (i, &(_, size)) in list.iter().enumerate() {
        assert_eq!(
            size,
            mbox.expected_size(i + 1),
            "LIST size of message {}",
            i + 1
        );
    }
    assert_eq!(
        total,
        list.iter().map(|&(_, s)| s).sum::<u64>(),
        "STAT octets = sum of LIST"
    );
    for k in 1..=n {
        assert_eq!(
            pop.cmd(&format!("LIST {k}")),
            format!("+OK {k} {}", list[k - 1].1)
        );
    }

    // UIDL, UIDL n: one printable, unique id per message.
    let uidl = pop.uidl();
    assert_eq!(uidl.len(), n, "UIDL lines");
    let mut seen = HashSet::new();
    for (i, (k, uid)) in uidl.iter().enumerate() {
        assert_eq!(*k, i as u64 + 1, "UIDL numbering");
        assert!(
            (1..=70).contains(&uid.len()) && uid.bytes().all(|b| (0x21..=0x7e).contains(&b)),
            "UIDL of message {k} is not 1-70 printable characters: {uid:?}"
        );
        assert!(seen.insert(uid.clone()), "UIDL {uid:?} is not unique");
    }
    for (k, uid) in &uidl {
        assert_eq!(pop.cmd(&format!("UIDL {k}")), format!("+OK {k} {uid}"));
    }

    // RETR and TOP of every message.
    for k in 1..=n {
        let size = list[k - 1].1;
        let (first, body) = pop.multi(&format!("RETR {k}"));
        assert_eq!(
            first_number(&first),
            Some(size),
            "RETR {k} reply {first:?} should be \"+OK {size} octets\""
        );
        assert_eq!(body.octets, size, "octets RETR {k} sent vs its LIST size");
        assert_bytes_eq(
            &body.data(),
            &mbox.expected_retr(k),
            &format!("RETR {k} data"),
        );
        for lines in [0, 2] {
            let (_, top) = pop.multi(&format!("TOP {k} {lines}"));
            assert_bytes_eq(
                &top.data(),
                &mbox.expected_top(k, lines),
                &format!("TOP {k} {lines} data"),
            );
        }
    }
    assert_eq!(
        pop.cmd("LAST"),
        format!("+OK {n}"),
        "LAST after RETR of every message"
    );

    // Bad arguments and commands: -ERR, and the session goes on.
    let out_of_range = format!("RETR {}", n + 1);
    for bad in [
        "RETR 0",
        "RETR -1",
        "RETR +2",
        "RETR 2x",
        "RETR 99999999999999999999",
        "RETR 1 2",
        out_of_range.as_str(),
        "NOOP x",
        "STAT 1",
        "XYZZY",
        "PASS again",
    ] {
        pop.err(bad);
    }
    pop.ok("NOOP");

    // Lower-case commands and bare LF line ends.
    assert_eq!(pop.cmd("stat"), format!("+OK {n} {total}"));
    assert_eq!(pop.cmd("list 1"), format!("+OK 1 {}", list[0].1));
    let (_, body) = pop.multi("retr 1");
    assert_bytes_eq(&body.data(), &mbox.expected_retr(1), "retr 1 data");
    pop.ok("noop");
    pop.send_raw(b"STAT\n");
    assert_eq!(
        pop.read_line(),
        format!("+OK {n} {total}"),
        "STAT with a bare LF"
    );

    // DELE, and what a deleted message is.
    pop.ok("DELE 2");
    pop.err("DELE 2");
    pop.err("LIST 2");
    pop.err("RETR 2");
    let size2 = list[1].1;
    assert_eq!(
        pop.stat(),
        (n as u64 - 1, total - size2),
        "STAT after DELE 2"
    );
    let after: Vec<u64> = pop.list().iter().map(|&(k, _)| k).collect();
    let want: Vec<u64> = (1..=n as u64).filter(|&k| k != 2).collect();
    assert_eq!(after, want, "LIST after DELE 2 keeps the numbering");

    // RSET undoes it.
    pop.ok("RSET");
    assert_eq!(pop.stat(), (n as u64, total), "STAT after RSET");
    assert_eq!(pop.cmd("LIST 2"), format!("+OK 2 {size2}"));
    assert_eq!(pop.cmd("LAST"), "+OK 0", "LAST after RSET");

    // Delete two messages for real.
    pop.ok("DELE 1");
    pop.ok("DELE 3");
    pop.ok("NOOP");
    pop.quit();
}

#[test]
fn standalone_full_session() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let mbox = tricky_mbox();
    let path = w.write_mailbox(&u, &mbox.bytes());
    let d = w.daemon(&[]);
    let mut pop = d.connect();
    full_session(&mut pop, &u, &mbox);
    assert_bytes_eq(
        &fs::read(&path).unwrap(),
        &mbox.bytes_without(&[1, 3]),
        "mailbox after DELE 1, DELE 3, QUIT",
    );
}

#[test]
fn inetd_full_session() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let mbox = tricky_mbox();
    let path = w.write_mailbox(&u, &mbox.bytes());
    let (mut server, mut pop) = w.inetd(&[]);
    pop.greeting();
    full_session(&mut pop, &u, &mbox);
    let status = server.wait_exit(REPLY_TIMEOUT);
    assert!(
        status.success(),
        "inetd-mode pop3d exited with {status} after QUIT"
    );
    assert_bytes_eq(
        &fs::read(&path).unwrap(),
        &mbox.bytes_without(&[1, 3]),
        "mailbox after DELE 1, DELE 3, QUIT",
    );
}

#[test]
fn standalone_disconnect_without_quit_changes_nothing() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let mbox = tricky_mbox();
    let path = w.write_mailbox(&u, &mbox.bytes());
    age_file(&path);
    let before = snapshot(&path);
    let d = w.daemon(&[]);
    {
        let mut pop = d.connect();
        pop.login(&u.name, &u.pass);
        pop.ok("DELE 1");
        pop.ok("DELE 3");
        // dropped here: no QUIT
    }
    // The next session still sees every message, and ends cleanly.
    let mut pop = d.connect();
    pop.login(&u.name, &u.pass);
    assert_eq!(pop.stat(), (mbox.len() as u64, mbox.expected_total(&[])));
    pop.quit();
    let after = snapshot(&path);
    assert_bytes_eq(
        &after.0,
        &before.0,
        "mailbox after DELE and a dropped connection",
    );
    assert_eq!(
        after.1, before.1,
        "mtime after DELE and a dropped connection"
    );
}

#[test]
fn inetd_disconnect_without_quit_changes_nothing() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let mbox = tricky_mbox();
    let path = w.write_mailbox(&u, &mbox.bytes());
    age_file(&path);
    let before = snapshot(&path);
    let (mut server, mut pop) = w.inetd(&[]);
    pop.greeting();
    pop.login(&u.name, &u.pass);
    pop.ok("DELE 1");
    pop.ok("DELE 2");
    drop(pop);
    // The session process must notice the EOF and exit without updating.
    server.wait_exit(REPLY_TIMEOUT);
    let after = snapshot(&path);
    assert_bytes_eq(&after.0, &before.0, "mailbox after DELE and EOF");
    assert_eq!(after.1, before.1, "mtime after DELE and EOF");
}

#[test]
fn session_without_deletions_keeps_file_and_mtime() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let mbox = tricky_mbox();
    let path = w.write_mailbox(&u, &mbox.bytes());
    age_file(&path);
    let before = snapshot(&path);
    let d = w.daemon(&[]);
    let mut pop = d.connect();
    pop.login(&u.name, &u.pass);
    pop.stat();
    pop.list();
    pop.uidl();
    for k in 1..=mbox.len() {
        pop.multi(&format!("RETR {k}"));
    }
    pop.multi("TOP 1 0");
    // Marked and unmarked again: nothing is deleted at QUIT.
    pop.ok("DELE 1");
    pop.ok("RSET");
    pop.quit();
    let after = snapshot(&path);
    assert_bytes_eq(&after.0, &before.0, "mailbox after a read-only session");
    assert_eq!(after.1, before.1, "mtime after a read-only session");
}

#[test]
fn mail_appended_during_session_is_kept() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let mbox = simple_mbox(3);
    let path = w.write_mailbox(&u, &mbox.bytes());
    let d = w.daemon(&[]);
    let mut pop = d.connect();
    pop.login(&u.name, &u.pass);
    let total = mbox.expected_total(&[]);
    assert_eq!(pop.stat(), (3, total));

    // Another delivery lands while the session is open.
    let mut appended = FROM_LINE.to_vec();
    appended.extend_from_slice(
        b"From: late@example.org\nSubject: delivered during the session\n\nnew mail\n\n",
    );
    {
        use std::io::Write;
        let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&appended).unwrap();
    }

    pop.ok("DELE 1");
    let (_, body) = pop.multi("RETR 2");
    assert_bytes_eq(
        &body.data(),
        &mbox.expected_retr(2),
        "RETR 2 after the append",
    );
    // The new message is not part of this session.
    assert_eq!(
        pop.stat(),
        (2, total - mbox.expected_size(1)),
        "STAT after the append"
    );
    pop.quit();

    let mut want = mbox.bytes_without(&[1]);
    want.extend_from_slice(&appended);
    assert_bytes_eq(
        &fs::read(&path).unwrap(),
        &want,
        "mailbox after expunge with appended mail",
    );
}

#[test]
fn missing_mailbox_is_empty() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let path = w.mailbox(&u.name);
    let d = w.daemon(&[]);
    let mut pop = d.connect();
    pop.login(&u.name, &u.pass);
    assert_eq!(pop.cmd("STAT"), "+OK 0 0");
    assert!(pop.list().is_empty(), "LIST of a missing mailbox");
    assert!(pop.uidl().is_empty(), "UIDL of a missing mailbox");
    pop.err("RETR 1");
    pop.err("DELE 1");
    pop.quit();
    assert!(!path.exists(), "a missing mailbox must not be created");
}

#[test]
fn every_refused_login_gets_the_same_reply() {
    let mut w = World::new();
    let good = w.user("alice", "alice-pw");
    let locked = format!("!{}", mkpasswd("yescrypt", "locked-pw"));
    w.user_with_hash("locked", "locked-pw", &locked, None);
    w.user_with_hash("nohash", "anything", "", None);
    let root_hash = mkpasswd("yescrypt", "root-pw");
    w.user_with_hash("toor", "root-pw", &root_hash, Some(0));
    w.write_mailbox(&good, &simple_mbox(1).bytes());
    let d = w.daemon(&[]);
    let cases = [
        ("alice", "not-alice-pw", "wrong password"),
        ("nosuchuser", "alice-pw", "unknown user"),
        ("locked", "locked-pw", "locked account (!hash)"),
        ("nohash", "anything", "empty hash field"),
        ("toor", "root-pw", "uid 0 account"),
    ];
    for (user, pass, why) in cases {
        let mut pop = d.connect();
        pop.ok(&format!("USER {user}"));
        assert_eq!(pop.cmd(&format!("PASS {pass}")), AUTH_FAILED, "{why}");
        // The session goes on after one failure.
        pop.quit();
    }
    // The daemon still serves the good account.
    let mut pop = d.connect();
    pop.login(&good.name, &good.pass);
    assert_eq!(pop.stat().0, 1);
    pop.quit();
}

#[test]
fn third_failed_login_closes_the_connection() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let d = w.daemon(&[]);
    let mut pop = d.connect();
    for _ in 0..3 {
        pop.ok(&format!("USER {}", u.name));
        assert_eq!(pop.cmd("PASS wrong"), AUTH_FAILED);
    }
    pop.set_read_timeout(Duration::from_secs(10));
    pop.expecting("the close after the third failed PASS");
    pop.expect_closed();
}

#[test]
fn uidl_is_popa3d_compatible_and_stable() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    // Each message's popa3d UIDL is unique in this mailbox, so ours must be
    // the same (values verified against Debian's popa3d).
    let mbox = Mbox::new()
        .msg("Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\nSubject: a\n\nbody a\n")
        .msg("Subject: no selected header\n\nbody b\n")
        .msg("Message-ID: <c@example.org>\nSubject: c\n\nbody c\n");
    let path = w.write_mailbox(&u, &mbox.bytes());
    let d = w.daemon(&[]);
    let mut pop = d.connect();
    pop.login(&u.name, &u.pass);
    let uidl = pop.uidl();
    let want = [
        (1, "fed9c3594b4c341c"),
        (2, "d98c1dd404b2008f"),
        (3, "e473b9f1609c1392"),
    ];
    let want: Vec<(u64, String)> = want.iter().map(|&(k, u)| (k, u.to_owned())).collect();
    assert_eq!(uidl, want, "UIDL");
    pop.ok("DELE 1");
    pop.quit();
    assert_bytes_eq(
        &fs::read(&path).unwrap(),
        &mbox.bytes_without(&[1]),
        "mailbox after DELE 1",
    );

    // After the expunge the remaining messages keep their UIDs.
    let mut pop = d.connect();
    pop.login(&u.name, &u.pass);
    assert_eq!(
        pop.uidl(),
        vec![(1, want[1].1.clone()), (2, want[2].1.clone())]
    );
    pop.quit();
}

#[test]
fn mailboxes_over_the_caps_are_refused_and_left_alone() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let bytes = simple_mbox(3).bytes();
    let path = w.write_mailbox(&u, &bytes);
    let len = bytes.len().to_string();
    // At both caps: served.
    let d = w.daemon(&["--max-messages", "3", "--max-mailbox-bytes", &len]);
    let mut pop = d.connect();
    pop.login(&u.name, &u.pass);
    assert_eq!(pop.stat().0, 3, "STAT of a mailbox at both caps");
    pop.quit();
    drop(d);
    let over_bytes = (bytes.len() - 1).to_string();
    let cases = [
        (["--max-messages", "2"], "more than 2 messages"),
        (
            ["--max-mailbox-bytes", over_bytes.as_str()],
            "over the limit",
        ),
    ];
    for (flags, logged) in cases {
        let d = w.daemon(&flags);
        let mut pop = d.connect();
        pop.login_refused(
            &u.name,
            &u.pass,
            "SYS/PERM",
            &format!("with {flags:?} on 3 messages, {len} bytes"),
        );
        pop.set_read_timeout(Duration::from_secs(10));
        pop.expecting("the close after a refused mailbox");
        pop.expect_closed();
        let line = d.wait_log(REPLY_TIMEOUT, |l| {
            l.contains(&path.display().to_string()) && l.contains(logged)
        });
        assert!(
            line.is_some(),
            "with {flags:?} the log must name the mailbox and say {logged:?}: {:?}",
            d.log()
        );
        assert_bytes_eq(&fs::read(&path).unwrap(), &bytes, "a refused mailbox");
    }
    for (flag, value) in [
        ("--max-messages", "0"),
        ("--max-messages", "4294967296"),
        ("--max-mailbox-bytes", "0"),
    ] {
        let out = pop3d_command()
            .args([flag, value])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run pop3d");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(flag), "{flag} {value}: {stderr:?}");
    }
}

#[test]
fn damaged_mailboxes_are_refused_with_the_place_logged_and_left_alone() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let good = simple_mbox(2).bytes();
    // Not an mbox at all; a From_ line directly followed by another (the
    // first message has no data).
    let no_from = b"Subject: not an mbox\n\nbody\n".to_vec();
    let mut empty_msg = b"From a@example.org Mon Jan  1 00:00:00 2024\n".to_vec();
    empty_msg.extend_from_slice(&good);
    let cases = [
        (no_from, "no \"From \" line at offset 0".to_string()),
        (empty_msg, "message at offset 0 has no data".to_string()),
    ];
    for (bytes, logged) in cases {
        let path = w.write_mailbox(&u, &bytes);
        let d = w.daemon(&[]);
        let mut pop = d.connect();
        pop.login_refused(&u.name, &u.pass, "SYS/PERM", &logged);
        pop.set_read_timeout(Duration::from_secs(10));
        pop.expecting("the close after a refused mailbox");
        pop.expect_closed();
        let line = d.wait_log(REPLY_TIMEOUT, |l| {
            l.contains(&path.display().to_string()) && l.contains(&logged)
        });
        assert!(
            line.is_some(),
            "the log must name the mailbox and say {logged:?}: {:?}",
            d.log()
        );
        assert_bytes_eq(&fs::read(&path).unwrap(), &bytes, "a refused mailbox");
    }
}

/// A journal that does not fit its mailbox (damaged, or written by the
/// mailbox's owner, who can write it) is never acted on: the login is
/// refused, the log names the journal and says what to do, and the mailbox
/// and the journal stay as they are. Here the plan moves a run that lies
/// past the end of the mailbox (followed, it would make the file longer).
#[test]
fn a_journal_that_does_not_fit_is_refused_and_the_mailbox_left_alone() {
    use md5::{Digest, Md5};
    let mut w = World::new();
    let u = w.user("eve", "eve-pw");
    let bytes = simple_mbox(2).bytes();
    let path = w.write_mailbox(&u, &bytes);
    let m = fs::metadata(&path).unwrap();
    let size = m.len();
    let mut plan = Vec::new();
    plan.extend_from_slice(&0u64.to_le_bytes());
    plan.extend_from_slice(&(1u64 << 40).to_le_bytes());
    // The header as pop3d writes it: magic; device, inode, old size, new
    // length, runs, retired ids, block size; birth time; MD5s.
    let mut head = [0u8; 120];
    head[..16].copy_from_slice(b"pop3d-journal v1");
    for (i, v) in [m.dev(), m.ino(), size, 1 << 40, 1, 0, 1 << 20]
        .into_iter()
        .enumerate()
    {
        head[16 + 8 * i..24 + 8 * i].copy_from_slice(&v.to_le_bytes());
    }
    head[88..104].copy_from_slice(&Md5::digest(&plan));
    let sum = Md5::digest(&head[..104]);
    head[104..120].copy_from_slice(&sum);
    let mut journal = vec![0u8; 4096];
    journal[..120].copy_from_slice(&head);
    journal.extend_from_slice(&plan);
    let jpath = w.spool.join(".eve.pop3d-journal");
    fs::write(&jpath, &journal).unwrap();
    fs::set_permissions(&jpath, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    if fs::metadata("/proc/self").unwrap().uid() == 0 {
        std::os::unix::fs::chown(&jpath, Some(u.uid), Some(u.gid)).unwrap();
    }
    let d = w.daemon(&[]);
    let mut pop = d.connect();
    pop.login_refused(&u.name, &u.pass, "SYS/PERM", "a journal that does not fit");
    let line = d.wait_log(REPLY_TIMEOUT, |l| {
        l.contains("cannot finish an interrupted expunge")
            && l.contains(&format!("then remove {}", jpath.display()))
    });
    assert!(line.is_some(), "{:?}", d.log());
    assert_bytes_eq(&fs::read(&path).unwrap(), &bytes, "the mailbox");
    assert_eq!(fs::read(&jpath).unwrap(), journal, "the journal");
}

#[test]
fn a_mailbox_changed_under_a_session_ends_it_and_is_not_rewritten() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let mbox = simple_mbox(3);
    // Another program edits a header of message 1 in place (same length),
    // or cuts the file short.
    let edited = {
        let mut b = mbox.bytes();
        let at = b.windows(9).position(|x| x == b"message 1").unwrap();
        b[at..at + 9].copy_from_slice(b"MESSAGE 1");
        b
    };
    let cut = mbox.bytes()[..mbox.raw(1).len() + 10].to_vec();
    let d = w.daemon(&[]);
    for (changed, what) in [(&edited, "a header edited"), (&cut, "the file cut short")] {
        for command in ["RETR 1", "QUIT"] {
            let path = w.write_mailbox(&u, &mbox.bytes());
            let mut pop = d.connect();
            pop.login(&u.name, &u.pass);
            pop.ok("DELE 2");
            // A different mtime, as any later write has.
            std::thread::sleep(Duration::from_millis(20));
            fs::write(&path, changed).unwrap();
            let r = pop.cmd(command);
            assert!(
                r.starts_with("-ERR [SYS/TEMP] mailbox changed by another program"),
                "{what}, then {command}: {r:?}"
            );
            pop.set_read_timeout(Duration::from_secs(10));
            pop.expecting("the close after a changed mailbox");
            pop.expect_closed();
            assert_bytes_eq(&fs::read(&path).unwrap(), changed, what);
        }
    }
}

#[test]
fn bad_flag_prints_usage_and_fails() {
    let out = pop3d_command()
        .arg("--no-such-flag")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run pop3d");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "pop3d --no-such-flag exited with {}",
        out.status
    );
    assert!(
        stderr.contains("--no-such-flag") || stderr.to_lowercase().contains("usage"),
        "stderr should carry the usage or name the bad flag, got {stderr:?}"
    );
}

#[test]
fn version_flag() {
    let out = pop3d_command()
        .arg("-V")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run pop3d -V");
    assert!(out.status.success(), "pop3d -V exited with {}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.trim_end(),
        format!("pop3d version {}", env!("CARGO_PKG_VERSION")),
        "pop3d -V output"
    );
}

#[test]
fn connections_beyond_max_sessions_are_refused() {
    let mut w = World::new();
    let a = w.user("alice", "alice-pw");
    let b = w.user("bob", "bob-pw");
    w.write_mailbox(&a, &simple_mbox(1).bytes());
    w.write_mailbox(&b, &simple_mbox(2).bytes());
    let d = w.daemon(&["--max-sessions", "2"]);
    let mut c1 = d.connect();
    let mut c2 = d.connect();

    // The third is closed at once, at most after an -ERR line.
    let mut c3 = d.connect_raw();
    c3.set_read_timeout(Duration::from_secs(10));
    c3.expecting("the third connection to be closed (--max-sessions 2)");
    if let Some(line) = c3.read_raw_line() {
        let line = String::from_utf8_lossy(&line);
        assert!(line.starts_with("-ERR"), "third connection got {line:?}");
        c3.expect_closed();
    }

    // The first two are served.
    c1.login(&a.name, &a.pass);
    c2.login(&b.name, &b.pass);
    assert_eq!(c1.stat().0, 1);
    assert_eq!(c2.stat().0, 2);
    c1.quit();

    // Once a session has ended there is room again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = d.connect_raw();
        c.set_read_timeout(Duration::from_secs(10));
        c.expecting("a greeting after a session ended");
        match c.read_raw_line() {
            Some(l) if l.starts_with(b"+OK") => {
                c.login(&a.name, &a.pass);
                c.quit();
                break;
            }
            other => {
                assert!(
                    Instant::now() < deadline,
                    "no new session accepted after one of two ended: {:?}",
                    other.map(|l| String::from_utf8_lossy(&l).into_owned())
                );
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
    c2.quit();
}

/// The CAPA lines, as strings.
fn capa(pop: &mut Pop3) -> Vec<String> {
    let (_, body) = pop.multi("CAPA");
    body.text()
}

#[test]
fn capa_lists_the_extensions() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let d = w.daemon(&[]);
    let mut pop = d.connect();
    let implementation = format!("IMPLEMENTATION pop3d-{}", env!("CARGO_PKG_VERSION"));
    let before = capa(&mut pop);
    for want in [
        "TOP",
        "UIDL",
        "USER",
        "PIPELINING",
        "RESP-CODES",
        "AUTH-RESP-CODE",
        implementation.as_str(),
    ] {
        assert!(
            before.iter().any(|l| l == want),
            "CAPA before login lacks {want:?}: {before:?}"
        );
    }
    pop.login(&u.name, &u.pass);
    let after = capa(&mut pop);
    for want in [
        "TOP",
        "UIDL",
        "PIPELINING",
        "RESP-CODES",
        implementation.as_str(),
    ] {
        assert!(
            after.iter().any(|l| l == want),
            "CAPA after login lacks {want:?}: {after:?}"
        );
    }
    pop.quit();
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let mbox = tricky_mbox();
    w.write_mailbox(&u, &mbox.bytes());
    let d = w.daemon(&[]);
    let mut pop = d.connect();
    let n = mbox.len();
    let total = mbox.expected_total(&[]);

    // Login and a first command in one write.
    pop.send_raw(format!("USER {}\r\nPASS {}\r\nSTAT\r\n", u.name, u.pass).as_bytes());
    let r = pop.read_line();
    assert!(is_ok(&r), "USER: {r:?}");
    let r = pop.read_line();
    assert!(is_ok(&r), "PASS: {r:?}");
    assert_eq!(
        pop.read_line(),
        format!("+OK {n} {total}"),
        "pipelined STAT"
    );

    // A burst mixing multi-line, single-line and failing commands.
    let mut burst = String::new();
    for k in 1..=n {
        burst.push_str(&format!("RETR {k}\r\nLIST {k}\r\nXYZZY\r\nTOP {k} 1\r\n"));
    }
    burst.push_str("NOOP\r\n");
    pop.send_raw(burst.as_bytes());
    for k in 1..=n {
        let size = mbox.expected_size(k);
        let r = pop.read_line();
        assert_eq!(first_number(&r), Some(size), "pipelined RETR {k}: {r:?}");
        let body = pop.read_body();
        assert_bytes_eq(
            &body.data(),
            &mbox.expected_retr(k),
            &format!("pipelined RETR {k}"),
        );
        assert_eq!(
            pop.read_line(),
            format!("+OK {k} {size}"),
            "pipelined LIST {k}"
        );
        let r = pop.read_line();
        assert!(is_err(&r), "pipelined XYZZY: {r:?}");
        let r = pop.read_line();
        assert!(is_ok(&r), "pipelined TOP {k} 1: {r:?}");
        let body = pop.read_body();
        assert_bytes_eq(
            &body.data(),
            &mbox.expected_top(k, 1),
            &format!("pipelined TOP {k} 1"),
        );
    }
    let r = pop.read_line();
    assert!(is_ok(&r), "pipelined NOOP: {r:?}");
    pop.quit();
}

/// inetd hands the connection over as fd 0, 1 and 2. Log lines must then not
/// be written to fd 2, or the client would read them as replies.
#[test]
fn inetd_never_logs_into_the_connection() {
    use std::io::{Read, Write};
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixStream;
    use std::process::Stdio;

    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    w.write_mailbox(&u, &simple_mbox(2).bytes());
    let (mut ours, theirs) = UnixStream::pair().expect("socketpair");
    let mut cmd = pop3d_command();
    cmd.args(w.args())
        .stdin(Stdio::from(OwnedFd::from(theirs.try_clone().unwrap())))
        .stdout(Stdio::from(OwnedFd::from(theirs.try_clone().unwrap())))
        .stderr(Stdio::from(OwnedFd::from(theirs)));
    let mut child = cmd.spawn().expect("spawn pop3d");
    drop(cmd);
    ours.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
    write!(
        ours,
        "USER {}\r\nPASS {}\r\nSTAT\r\nQUIT\r\n",
        u.name, u.pass
    )
    .unwrap();
    let mut wire = Vec::new();
    ours.read_to_end(&mut wire)
        .expect("read until the server closes");
    let wire = String::from_utf8_lossy(&wire);
    assert!(child.wait().expect("wait").success());
    let lines: Vec<&str> = wire.lines().collect();
    assert_eq!(
        lines.len(),
        5,
        "exactly five replies, no log lines: {wire:?}"
    );
    assert!(lines[3].starts_with("+OK 2 "), "{wire:?}");
    assert!(
        !wire.contains("pop3d["),
        "a log line reached the client: {wire:?}"
    );
}

/// Each inetd session is a new process with no index in memory: the first
/// one's scan is kept in `.USER.pop3d-index`, and the next ones read that
/// instead of the mailbox (fetchmail polling a large mailbox through inetd
/// must not make pop3d re-read it every time), with the same answers.
#[test]
fn inetd_sessions_reopen_a_large_mailbox_from_its_index_file() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let data = large_mbox(16_000);
    let size = data.len() as u64;
    let path = w.write_mailbox(&u, &data);
    age_file(&path);
    let index = path.with_file_name(".alice.pop3d-index");
    let session = || {
        let (mut server, mut pop) = w.inetd(&[]);
        pop.greeting();
        pop.login(&u.name, &u.pass);
        let stat = pop.stat();
        let uidl = pop.multi("UIDL").1.text();
        let read = bytes_read(server.pid());
        pop.quit();
        assert!(server.wait_exit(REPLY_TIMEOUT).success());
        (read, stat, uidl)
    };
    let (cold, stat, uidl) = session();
    assert!(
        cold >= size,
        "the first session read {cold} bytes of {size}"
    );
    // The mailbox owner's (as root too: the session runs as alice), private.
    let (im, mm) = (fs::metadata(&index).unwrap(), fs::metadata(&path).unwrap());
    assert_eq!((im.uid(), im.mode() & 0o777), (mm.uid(), 0o600));
    for round in 0..2 {
        let (read, stat2, uidl2) = session();
        assert_eq!((stat2, &uidl2), (stat, &uidl), "session {}", round + 2);
        assert!(
            read + size * 9 / 10 <= cold,
            "session {} read {read} bytes, the first {cold}",
            round + 2
        );
    }
    // Mail delivered since: seen, reading only it.
    fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| {
            std::io::Write::write_all(
                &mut f,
                b"\nFrom s@example.org Tue Jan  2 00:00:00 2024\nSubject: new\n\nnew\n",
            )
        })
        .unwrap();
    let (read, (n, _), uidl3) = session();
    assert_eq!(n, stat.0 + 1);
    assert_eq!(uidl3[..uidl.len()], uidl[..]);
    assert!(
        read + size * 9 / 10 <= cold,
        "read {read} bytes, the first {cold}"
    );
}

/// The index file a scan starts is written after PASS is answered, while the
/// session waits for commands: a session that ends at once (QUIT right after
/// PASS, or the client gone) leaves it to be finished before the process
/// exits, and the next session reads it instead of the mailbox.
#[test]
fn an_index_file_started_by_a_scan_outlives_a_quick_session() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let data = large_mbox(40_000);
    let size = data.len() as u64;
    let path = w.write_mailbox(&u, &data);
    age_file(&path);
    let index = path.with_file_name(".alice.pop3d-index");
    for quit in [true, false] {
        let _ = fs::remove_file(&index);
        let (mut server, mut pop) = w.inetd(&[]);
        pop.greeting();
        pop.login(&u.name, &u.pass);
        let cold = bytes_read(server.pid());
        if quit {
            pop.quit();
        } else {
            drop(pop);
        }
        server.wait_exit(REPLY_TIMEOUT);
        assert!(
            index.exists(),
            "no index file after a session that ended with {}",
            if quit { "QUIT" } else { "a hang-up" }
        );
        let (mut server, mut pop) = w.inetd(&[]);
        pop.greeting();
        pop.login(&u.name, &u.pass);
        let read = bytes_read(server.pid());
        pop.quit();
        assert!(server.wait_exit(REPLY_TIMEOUT).success());
        // (Under qemu-user, the process's own reads count too.)
        assert!(
            cold >= size && read + size * 9 / 10 <= cold,
            "the next session read {read} bytes, the first {cold} of {size}"
        );
    }
}

/// The first scan of a large mailbox shared by four threads (cut only where
/// `From ` follows an empty line; the mailbox has quoted and unquoted `From `
/// lines, dot lines, repeated headers and bodies, and a last message without
/// a final newline) serves exactly what one thread serves: STAT, LIST, UIDL
/// and the data of messages on both sides of every cut.
#[test]
fn a_mailbox_scanned_by_four_threads_is_served_as_by_one() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let n = 9000;
    let mut mbox = Mbox::new();
    for k in 1..=n {
        let headers = if k % 7 == 0 {
            "Subject: the same headers\n".to_string()
        } else {
            format!("Received: from h{k}\nMessage-ID: <{k}@x>\n")
        };
        let body = match k % 5 {
            0 => ".\n..dots\n".repeat(400),
            1 => format!(">From quoted {k}\nFrom unquoted, not after an empty line\n").repeat(60),
            2 => "z".repeat(3900) + "\n",
            3 => "the same body\n".repeat(300),
            _ => format!("line {k}\n\n").repeat(300),
        };
        let mut m = format!("{headers}\n{body}");
        if k == n {
            m.pop();
        }
        mbox = mbox.msg(m);
    }
    let data = mbox.bytes();
    assert!(
        data.len() > 32 << 20,
        "{} bytes: too few for four parts",
        data.len()
    );
    let path = w.write_mailbox(&u, &data);
    let index = path.with_file_name(".alice.pop3d-index");
    let mut seen = Vec::new();
    for threads in ["1", "4"] {
        // No index file from the last daemon: this one must scan.
        let _ = fs::remove_file(&index);
        let d = w.daemon(&["--scan-threads", threads]);
        let mut pop = d.connect();
        pop.login(&u.name, &u.pass);
        let (stat, list, uidl) = (pop.stat(), pop.list(), pop.uidl());
        for k in (1..=n).step_by(n / 8).chain([2, n / 2 + 1, n - 1, n]) {
            let (_, body) = pop.multi(&format!("RETR {k}"));
            assert_bytes_eq(
                &body.data(),
                &mbox.expected_retr(k),
                &format!("RETR {k} after a scan in {threads} threads"),
            );
        }
        pop.quit();
        let loaded = d
            .wait_log(REPLY_TIMEOUT, |l| l.contains("loaded for alice"))
            .unwrap_or_else(|| panic!("no line about the load: {:?}", d.log()));
        let want = if threads == "1" {
            "bytes)".to_string()
        } else {
            format!("bytes in {threads} threads)")
        };
        assert!(
            loaded.ends_with(&want),
            "{loaded:?} should end with {want:?}"
        );
        seen.push((stat, list, uidl));
    }
    assert_eq!(seen[0], seen[1], "one thread against four");
    let sizes: Vec<(u64, u64)> = (1..=n).map(|k| (k as u64, mbox.expected_size(k))).collect();
    assert_eq!(seen[1].1, sizes, "LIST");
    let total = sizes.iter().map(|s| s.1).sum();
    assert_eq!(seen[1].0, (n as u64, total), "STAT");
}

/// A client that sends its last commands and half-closes at once (commands
/// and FIN then often arrive together) gets every reply and then the close
/// at once, not after the idle timeout; DELE without QUIT changes nothing.
#[test]
fn a_half_closing_client_gets_its_replies_then_the_close() {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{Shutdown, TcpStream};
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let bytes = simple_mbox(3).bytes();
    let path = w.write_mailbox(&u, &bytes);
    let d = w.daemon(&[]);
    let lines = |s: &TcpStream| -> Vec<String> {
        let started = Instant::now();
        let lines: Vec<String> = BufReader::new(s)
            .lines()
            .map(|l| l.expect("read a reply line"))
            .collect();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the close took {:?}",
            started.elapsed()
        );
        lines
    };
    for round in 0..20 {
        let mut s = TcpStream::connect(d.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.set_nodelay(true).unwrap();
        let mut greeting = String::new();
        BufReader::new(&s).read_line(&mut greeting).unwrap();
        assert!(greeting.starts_with("+OK"), "{greeting:?}");
        // Before login: one command, then the FIN in the same instant.
        if round % 2 == 0 {
            s.write_all(b"NOOP\r\n").unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            let got = lines(&s);
            assert_eq!(got.len(), 1, "round {round}: {got:?}");
            assert!(got[0].starts_with("-ERR"), "NOOP before login: {got:?}");
            continue;
        }
        // Logged in: the last commands and the FIN together.
        let cmds = format!(
            "USER {}\r\nPASS {}\r\nSTAT\r\nDELE 1\r\nNOOP\r\n",
            u.name, u.pass
        );
        s.write_all(cmds.as_bytes()).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let got = lines(&s);
        assert_eq!(got.len(), 5, "round {round}: {got:?}");
        assert!(got.iter().all(|l| l.starts_with("+OK")), "{got:?}");
        assert!(got[2].starts_with("+OK 3 "), "{got:?}");
    }
    assert_bytes_eq(&fs::read(&path).unwrap(), &bytes, "after DELE without QUIT");
}

/// More clients fetching large messages at once than there are large reply
/// buffers to lend, most reading as fast as they can, some starting late:
/// every one gets exactly the data.
#[test]
fn many_large_retrs_at_once_all_arrive_whole() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let mut mbox = Mbox::new();
    for k in 1..=2 {
        let mut m = format!("Subject: large {k}\n\n");
        for line in 0..9000 {
            m.push_str(&format!("{k} line {line} .{}\n", "x".repeat(line % 90)));
            if line % 1000 == 0 {
                m.push_str(".\n..\n");
            }
        }
        mbox = mbox.msg(m);
    }
    w.write_mailbox(&u, &mbox.bytes());
    let d = w.daemon(&[]);
    let clients: Vec<_> = (0..24)
        .map(|c| {
            let mut pop = d.connect();
            let (user, pass) = (u.name.clone(), u.pass.clone());
            thread::spawn(move || {
                pop.login(&user, &pass);
                let mut got = Vec::new();
                for k in 1..=2 {
                    if c % 3 == 0 {
                        // A reader that starts late (the server's writes
                        // may fill the socket first).
                        pop.send(&format!("RETR {k}"));
                        thread::sleep(Duration::from_millis(300));
                        let ok = pop.read_line();
                        assert!(ok.starts_with("+OK"), "RETR {k}: {ok:?}");
                        got.push(pop.read_body().data());
                    } else {
                        got.push(pop.multi(&format!("RETR {k}")).1.data());
                    }
                }
                pop.quit();
                got
            })
        })
        .collect();
    for (c, t) in clients.into_iter().enumerate() {
        let got = t.join().expect("client thread");
        for k in 1..=2 {
            assert_bytes_eq(
                &got[k - 1],
                &mbox.expected_retr(k),
                &format!("client {c}, RETR {k}"),
            );
        }
    }
}

/// `--flock` makes the server respect another program's flock(2) on the
/// mailbox (`-ERR [IN-USE]` once `--lock-wait` has passed, served once it
/// is gone); without the flag such a lock is not looked at.
#[test]
fn flock_is_respected_with_the_flag_only() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let path = w.write_mailbox(&u, &simple_mbox(2).bytes());
    let held = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    held.try_lock().expect("flock the mailbox");
    let d = w.daemon(&["--lock-wait", "1"]);
    let mut pop = d.connect();
    pop.login(&u.name, &u.pass);
    assert_eq!(pop.stat().0, 2, "without --flock");
    pop.quit();
    drop(d);
    let d = w.daemon(&["--flock", "--lock-wait", "1"]);
    let mut pop = d.connect();
    pop.login_refused(
        &u.name,
        &u.pass,
        "IN-USE",
        "with --flock, while another program holds flock",
    );
    held.unlock().unwrap();
    let mut pop = d.connect();
    pop.login(&u.name, &u.pass);
    assert_eq!(pop.stat().0, 2, "with --flock, once the flock is gone");
    pop.quit();
}

/// A small first message and 40 MiB after it: deleting the first moves
/// 40 MiB (the early answer starts at 8 MiB; compacting this much takes
/// about 200 ms here, so the file is still whole when the answer arrives).
fn long_expunge_mailbox() -> Mbox {
    let line = "x".repeat(1023) + "\n";
    let mut mbox = Mbox::new().msg("Subject: first\n\ndelete me\n");
    for k in 0..40 {
        mbox = mbox.msg(format!("Message-ID: <{k}@big>\n\n{}", line.repeat(1024)));
    }
    mbox
}

/// QUIT after DELE on a large mailbox is answered as soon as the expunge's
/// journal is durable: the client gets `+OK` and the close while the file is
/// still as it was, and the server finishes the compaction after (the log
/// says when), in the daemon and in inetd mode (where fd 0 and 1 are let go
/// at once and the process exits when the work is done). The daemon admits
/// the gone client again at once (its per-source lease went with it), and
/// that login waits for the compaction. The next session sees exactly the
/// kept messages with their UIDLs, and the bytes are right.
#[test]
fn a_long_expunge_answers_quit_before_it_compacts() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let mbox = long_expunge_mailbox();
    let data = mbox.bytes();
    let journal = w.mailbox("alice").with_file_name(".alice.pop3d-journal");
    for inetd in [false, true] {
        let path = w.write_mailbox(&u, &data);
        let (daemon, mut child, mut pop) = if inetd {
            let (i, mut p) = w.inetd(&[]);
            p.greeting();
            (None, Some(i), p)
        } else {
            // One session per source, and no minimum delay: the client,
            // gone after the answer, may come back at once.
            let d = w.daemon(&["--max-per-source", "1", "--min-delay", "0"]);
            let p = d.connect();
            (Some(d), None, p)
        };
        pop.login(&u.name, &u.pass);
        let uidl = pop.uidl();
        pop.ok("DELE 1");
        let r = pop.ok("QUIT");
        let size_at_answer = fs::metadata(&path).unwrap().len();
        assert!(r.contains("(1 deleted, 40 left)"), "{r}");
        pop.expect_closed();
        assert_eq!(
            size_at_answer,
            data.len() as u64,
            "QUIT was answered after the compaction (inetd: {inetd})"
        );
        // Back at once (the daemon admits the gone client again: its
        // per-source lease went with it): the login waits for the locks
        // until the compaction is over, then sees what is left, from the
        // index the expunge left (the daemon's cache, or in inetd mode the
        // index file): nothing is scanned again.
        let mut second = None;
        let mut again = match &daemon {
            Some(d) => d.connect(),
            None => {
                let (i, mut p) = w.inetd(&[]);
                p.greeting();
                second = Some(i);
                p
            }
        };
        again.login(&u.name, &u.pass);
        assert_eq!(again.stat().0, 40);
        again.quit();
        let loaded = |l: &str| l.contains("40 messages") && l.contains("loaded for");
        let load = match &daemon {
            Some(d) => d.wait_log(Duration::from_secs(10), loaded),
            None => second
                .as_ref()
                .unwrap()
                .wait_log(Duration::from_secs(10), loaded),
        };
        let load = load.expect("the second session's load is logged");
        assert!(!load.contains("scanned"), "inetd: {inetd}: {load}");
        let finished = |l: &str| l.contains("expunge finished") && l.contains("after QUIT");
        match (&daemon, child.as_mut()) {
            (Some(d), _) => {
                d.wait_log(Duration::from_secs(60), finished)
                    .expect("the daemon finishes the expunge");
            }
            (_, Some(i)) => {
                assert!(i.wait_exit(Duration::from_secs(60)).success());
                assert!(i.log().iter().any(|l| finished(l)), "{:?}", i.log());
            }
            _ => unreachable!(),
        }
        assert!(!journal.exists(), "journal left after the expunge");
        assert_bytes_eq(
            &fs::read(&path).unwrap(),
            &mbox.bytes_without(&[1]),
            "compacted",
        );
        let d = daemon.unwrap_or_else(|| w.daemon(&[]));
        let mut pop = d.connect();
        pop.login(&u.name, &u.pass);
        let after = pop.uidl();
        let kept: Vec<String> = uidl[1..].iter().map(|(_, id)| id.clone()).collect();
        let now: Vec<String> = after.iter().map(|(_, id)| id.clone()).collect();
        assert_eq!(now, kept, "UIDLs after the expunge (inetd: {inetd})");
        pop.quit();
    }
}

/// A client gone before QUIT's answer can be written (inetd with pipes: the
/// reading end closed after DELE's answer, then QUIT): the answer fails with
/// EPIPE, and the expunge committed before it still runs to its end in this
/// process, rather than being left to the next login.
#[test]
fn a_long_expunge_is_finished_when_the_client_is_gone_before_the_answer() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let mbox = long_expunge_mailbox();
    let path = w.write_mailbox(&u, &mbox.bytes());
    let mut cmd = pop3d_command();
    cmd.args(w.args())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn pop3d (inetd mode, pipes)");
    let mut to = child.stdin.take().unwrap();
    let mut from = BufReader::new(child.stdout.take().unwrap());
    let log = child.stderr.take().unwrap();
    let mut answer = |to: &mut std::process::ChildStdin, line: &str| {
        if !line.is_empty() {
            to.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        }
        let mut r = String::new();
        from.read_line(&mut r).unwrap();
        assert!(r.starts_with("+OK"), "{line}: {r}");
    };
    answer(&mut to, "");
    answer(&mut to, &format!("USER {}", u.name));
    answer(&mut to, &format!("PASS {}", u.pass));
    answer(&mut to, "DELE 1");
    drop(from);
    to.write_all(b"QUIT\r\n").unwrap();
    drop(to);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "pop3d did not exit");
        thread::sleep(Duration::from_millis(20));
    };
    let log: Vec<String> = BufReader::new(log).lines().map_while(Result::ok).collect();
    assert!(status.success(), "{status:?} {log:?}");
    assert!(
        log.iter().any(|l| l.contains("expunge finished")),
        "{log:?}"
    );
    let journal = path.with_file_name(".alice.pop3d-journal");
    assert!(!journal.exists(), "the expunge was left to the next login");
    assert_bytes_eq(
        &fs::read(&path).unwrap(),
        &mbox.bytes_without(&[1]),
        "compacted",
    );
}

/// A daemon told to stop (SIGTERM) just after answering a long expunge's
/// QUIT finishes the compaction within its grace period before it exits.
#[test]
fn a_daemon_stopped_after_the_answer_finishes_the_expunge_first() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let mbox = long_expunge_mailbox();
    let path = w.write_mailbox(&u, &mbox.bytes());
    let mut d = w.daemon(&[]);
    let mut pop = d.connect();
    pop.login(&u.name, &u.pass);
    pop.ok("DELE 1");
    pop.quit();
    d.signal("TERM");
    assert!(d.wait_exit(Duration::from_secs(30)).success());
    let log = d.log();
    assert!(
        log.iter().any(|l| l.contains("expunge finished")),
        "{log:?}"
    );
    assert!(!path.with_file_name(".alice.pop3d-journal").exists());
    assert_bytes_eq(
        &fs::read(&path).unwrap(),
        &mbox.bytes_without(&[1]),
        "compacted",
    );
}
