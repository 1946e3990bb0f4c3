//! The authentication policy through the real binary: every refusal answers
//! exactly like a wrong password; a failed login is answered only after the
//! failure delay while other sessions go on; the third failure closes the
//! connection; passwords never reach the log; malformed account lines are
//! logged once; every crypt scheme logs in; a missing shadow file stops
//! start-up with one line.

mod auth_common;

use auth_common::{REFUSED, Server, World, base64, run_to_end};
use std::time::{Duration, Instant};

/// libxcrypt hashes (Debian 12 `mkpasswd`) of the passwords below, cheap ones
/// so the suite stays quick under qemu.
const ALICE_PW: &str = "alice's secret-PW 1";
const ALICE_HASH: &str = "$6$rounds=1000$Ld8E9I/jLJpLWa2c$dobWoAXB/vkbnf/bWXqxqckShtdVHlqWSn799lUqdL.1QIbZbVB4MfsprrfH09FMOMPXfALGC8t9DSJWfdmaY/";
const BOB_PW: &str = "Zq9 never-logged ✓ Xk";
const BOB_HASH: &str = "$y$j7T$TtBkn/rVVbIJkXFyx1pvt1$ughXuRwOWI66anLhT/9.MyGdB3h2B00lRm8nBphs8V8";
const BOB_HASH_6: &str = "$6$rounds=1000$5lTeiO3qzqhsnhsX$.if6VS1SrLCpQxk2HD0wd4W/Ec8x703FIPvamqpPWmFCRwYc4Qun.l66ALcgtmFmKO4WnRXrOnB4Q2OKmpy3a0";

/// Every scheme's hash of the password "r" (libxcrypt).
const SCHEMES_R: &[(&str, &str)] = &[
    (
        "y",
        "$y$j7T$Kzfma2AuB.6jPjTyj/iJV1$m8HbjEvKfvThF0M6v0NfkLhMpZJrxuiQAzuPesMaAn6",
    ),
    (
        "gy",
        "$gy$j7T$3QZUElxwdS2ER0dmRBaFi.$5yrKNZS3si9LVGxpXMbZuHcOGP0kPxdYkahtrmal/84",
    ),
    (
        "scrypt",
        "$7$BU..../..../74zyO7OcMotxuUEaZbbt/$eeBjuK3sgS/mTvtjdHHZrLACKmf1n2Ro9Rs.Y/sBKJC",
    ),
    (
        "bcrypt",
        "$2b$05$BIlh52M.mF5ytUECDvmmiO6slg/p3LGfYpLCx5vsiPlRkFoFTcKrq",
    ),
    (
        "bcrypta",
        "$2a$05$0aGTb4eougHvCk5ghDvoTu63n4a.J.9ScIzyOR9zT8Ot60BhWLBPG",
    ),
    (
        "bcrypty",
        "$2y$05$IBIil4Xzy6pklLPPPW5k7.5veh0l/radjbhITqbiDSXmy88mRCpS2",
    ),
    (
        "sha512",
        "$6$rounds=1000$RzGidBZrPBXHTCMJ$xgyJsH3.deQ71t/Ogz2DKwC3YXp6rcYrzUUh.evKTso77kbSIfaR4txa5d.1LWGPk89Z9qzc6.w5ZTyOxPoHK.",
    ),
    (
        "sha256",
        "$5$rounds=1000$ojb/LgctlsPobvzQ$2kZCjU2fyG/5wSir6DuImWaVkCt7HHHCqqwzTmiIeA7",
    ),
    ("md5", "$1$5asmyUgJ$9HNCXlduPRuv.eia.2Z/B0"),
    ("des", "t3mdCwqYmKCFk"),
    ("bsdi", "_J9..VErOm7vitUhNd36"),
];

/// A world with alice (shadow), bob, and one account per refusal kind.
fn policy_world() -> World {
    let w = World::new("auth-policy");
    let uid = w.uid;
    let mut passwd = String::new();
    for user in [
        "alice", "bob", "locked", "locked2", "empty", "expired", "noshadow", "badline", "weird",
    ] {
        passwd.push_str(&w.passwd_line(user));
    }
    passwd.push_str("toor:x:0:0:root alias:/root:/bin/sh\n");
    passwd.push_str(&format!("other:x:{}:{0}::/:/bin/sh\n", uid + 1));
    w.write("passwd", &passwd);
    w.write(
        "shadow",
        &format!(
            "alice:{ALICE_HASH}:19000:0:99999:7:::\n\
             bob:{BOB_HASH}:19000:0:99999:7:::\n\
             badline:{ALICE_HASH}:19000:0:99999:7:::\r\n\
             locked:!{ALICE_HASH}:19000:0:99999:7:::\n\
             locked2:*:19000:0:99999:7:::\n\
             empty::19000:0:99999:7:::\n\
             expired:{ALICE_HASH}:19000:0:99999:7::1:\n\
             weird:$sha1$40000$abcdefgh$SECRETHASHTEXT:19000:0:99999:7:::\n\
             toor:{ALICE_HASH}:19000:0:99999:7:::\n\
             other:{ALICE_HASH}:19000:0:99999:7:::\n"
        ),
    );
    w.mailbox("alice", 2, uid);
    w.mailbox("bob", 1, uid);
    w
}

fn start(w: &World, extra: &[&str]) -> Server {
    let mut args = w.system_args();
    args.extend(extra.iter().map(|s| s.to_string()));
    Server::start(&args)
}

#[test]
fn every_refusal_answers_like_a_wrong_password() {
    let w = policy_world();
    let server = start(&w, &["--fail-delay", "0"]);
    let cases = [
        ("alice", "wrong password", "wrong password"),
        ("nobody", ALICE_PW, "unknown user"),
        ("locked", ALICE_PW, "locked account"),
        ("locked2", ALICE_PW, "locked account"),
        ("empty", "", "empty password hash"),
        ("empty", ALICE_PW, "empty password hash"),
        ("expired", ALICE_PW, "account expired"),
        ("noshadow", ALICE_PW, "no shadow entry"),
        ("badline", ALICE_PW, "no shadow entry"),
        ("weird", ALICE_PW, "unsupported hash scheme $sha1$"),
        ("toor", ALICE_PW, "root login refused"),
        ("other", ALICE_PW, "uid not served"),
    ];
    let is_root = auth_common::own_uid() == 0;
    for (user, pass, _) in cases {
        if user == "other" && is_root {
            // As root every non-zero uid is served.
            continue;
        }
        let mut c = server.connect();
        c.send(&format!("USER {user}"));
        assert_eq!(c.line().unwrap(), "+OK send PASS");
        let reply = if pass.is_empty() {
            c.cmd("PASS")
        } else {
            c.cmd(&format!("PASS {pass}"))
        };
        if pass.is_empty() {
            // An empty PASS is a syntax error, never a login.
            assert!(reply.starts_with("-ERR"), "{reply}");
            continue;
        }
        assert_eq!(reply, REFUSED, "{user}");
        // Through AUTH PLAIN too.
        let plain = base64(format!("\0{user}\0{pass}").as_bytes());
        assert_eq!(c.cmd(&format!("AUTH PLAIN {plain}")), REFUSED, "{user}");
        c.quit();
    }
    let refusals = cases.len() - 1 - usize::from(is_root);
    let log = server.wait_log("authentication failed for", 2 * refusals);
    for (user, pass, reason) in cases {
        if pass.is_empty() || (user == "other" && is_root) {
            continue;
        }
        let who = if user == "nobody" {
            "UNKNOWN USER"
        } else {
            user
        };
        let expected = format!("authentication failed for {who} from 127.0.0.1: {reason}");
        assert!(log.contains(&expected), "missing {expected:?} in:\n{log}");
    }
    // The unsupported hash is named by its scheme only.
    assert!(!log.contains("SECRETHASHTEXT"), "{log}");
    // The right password still works.
    let mut c = server.connect();
    assert_eq!(c.login("alice", ALICE_PW), "+OK 2 messages (44 octets)");
    c.quit();
}

#[test]
fn failed_login_is_delayed_without_blocking_others() {
    let w = policy_world();
    let delay = Duration::from_secs(2);
    let server = start(&w, &["--fail-delay", "2", "--fail-delay-max", "15"]);
    let mut a = server.connect();
    let mut b = server.connect();
    assert_eq!(a.cmd("USER alice"), "+OK send PASS");
    let t0 = Instant::now();
    a.send("PASS not the password");
    std::thread::sleep(Duration::from_millis(200));

    // Meanwhile another session is served at once: CAPA, a login, NOOP.
    let tb = Instant::now();
    assert_eq!(b.cmd("CAPA"), "+OK capability list follows");
    assert!(b.body().contains(&"SASL PLAIN".to_owned()));
    assert_eq!(b.login("bob", BOB_PW), "+OK 1 message (22 octets)");
    assert_eq!(b.cmd("NOOP"), "+OK");
    let b_done = t0.elapsed();
    assert!(
        b_done < delay,
        "the other session took {:?} (from the failed PASS: {b_done:?})",
        tb.elapsed()
    );

    // The refusal arrives only after the delay.
    assert_eq!(a.line().as_deref(), Some(REFUSED));
    let waited = t0.elapsed();
    assert!(waited >= delay, "refused after {waited:?}");
    // The session goes on after a failure.
    assert_eq!(a.cmd("NOOP"), "-ERR not logged in");
    b.quit();
    a.quit();
}

/// An unknown user waits as long as a wrong password (the timing tells
/// nothing about which names exist), and each failure from one address
/// doubles the delay, up to the maximum.
#[test]
fn failures_from_one_address_wait_longer_each_time_whatever_the_user() {
    let w = policy_world();
    let server = start(&w, &["--fail-delay", "1", "--fail-delay-max", "15"]);
    let mut c = server.connect();
    let mut waited = Vec::new();
    for (user, pw) in [("nosuchuser", "x"), ("alice", "wrong"), ("nosuchuser", "y")] {
        assert_eq!(c.cmd(&format!("USER {user}")), "+OK send PASS");
        let t0 = Instant::now();
        assert_eq!(c.cmd(&format!("PASS {pw}")), REFUSED);
        waited.push(t0.elapsed());
    }
    for (k, want) in [1, 2, 4].into_iter().enumerate() {
        assert!(
            waited[k] >= Duration::from_secs(want),
            "failure {} refused after {:?} (all: {waited:?})",
            k + 1,
            waited[k]
        );
    }
}

#[test]
fn third_failure_closes_the_connection() {
    let w = policy_world();
    let server = start(&w, &["--fail-delay", "0"]);
    let mut c = server.connect();
    assert_eq!(c.login("alice", "wrong 1"), REFUSED);
    assert_eq!(c.login("nobody", "wrong 2"), REFUSED);
    assert_eq!(c.cmd("CAPA"), "+OK capability list follows");
    c.body();
    let plain = base64(b"\0alice\0wrong 3");
    assert_eq!(c.cmd(&format!("AUTH PLAIN {plain}")), REFUSED);
    assert!(c.closed(), "connection still open after 3 failures");
    let log = server.wait_log("too many authentication failures", 1);
    assert!(log.contains("too many authentication failures"), "{log}");
}

#[test]
fn passwords_never_reach_the_log() {
    let w = policy_world();
    let server = start(&w, &["--fail-delay", "0"]);
    let wrong = "Wr0ng-pass ✓ never in logs";
    for user in ["alice", "bob", "nobody", "locked", "expired"] {
        let mut c = server.connect();
        assert_eq!(c.login(user, wrong), REFUSED);
        let plain = base64(format!("\0{user}\0{wrong}").as_bytes());
        assert_eq!(c.cmd(&format!("AUTH PLAIN {plain}")), REFUSED);
        c.quit();
    }
    // Bob's real password, right, by USER/PASS and by AUTH PLAIN, and wrong
    // for alice.
    let mut c = server.connect();
    assert_eq!(c.login("bob", BOB_PW), "+OK 1 message (22 octets)");
    c.quit();
    let mut c = server.connect();
    let plain_ok = base64(format!("\0bob\0{BOB_PW}").as_bytes());
    assert!(
        c.cmd(&format!("AUTH PLAIN {plain_ok}"))
            .starts_with("+OK 1 message")
    );
    c.quit();
    let mut c = server.connect();
    assert_eq!(c.login("alice", BOB_PW), REFUSED);
    c.quit();
    server.wait_log("authentication passed for bob", 2);
    server.wait_log("authentication failed for", 11);
    let log = server.stop();
    assert!(
        log.contains("authentication passed for bob from 127.0.0.1"),
        "{log}"
    );
    for secret in [wrong, BOB_PW, "Wr0ng-pass", "never-logged", "Zq9"] {
        assert!(!log.contains(secret), "{secret:?} in the log:\n{log}");
    }
    assert!(!log.contains(&plain_ok), "{log}");
    for hash in [ALICE_HASH, BOB_HASH, BOB_HASH_6] {
        assert!(!log.contains(&hash[10..30]), "hash text in the log:\n{log}");
    }
}

#[test]
fn malformed_line_is_logged_once() {
    let w = policy_world();
    let server = start(&w, &["--fail-delay", "0"]);
    for _ in 0..3 {
        let mut c = server.connect();
        assert_eq!(c.login("badline", ALICE_PW), REFUSED);
        c.quit();
    }
    server.wait_log("authentication failed for badline", 3);
    let log = server.stop();
    let needle = format!(
        "{}:3: carriage return at the end (CRLF line ending); line ignored",
        w.path("shadow").display()
    );
    assert_eq!(log.matches(&needle).count(), 1, "{log}");
    // At start-up, before the listener.
    let at = log.find(&needle).unwrap();
    assert!(at < log.find("listening on").unwrap(), "{log}");
}

#[test]
fn malformed_line_is_reported_again_after_an_edit() {
    let w = policy_world();
    let server = start(&w, &["--fail-delay", "0"]);
    let shadow = std::fs::read_to_string(w.path("shadow")).unwrap();
    // Same size would still differ in mtime; change both to be sure.
    std::thread::sleep(Duration::from_millis(20));
    w.write("shadow", &format!("{shadow}# edited\n"));
    let mut c = server.connect();
    assert_eq!(c.login("alice", ALICE_PW), "+OK 2 messages (44 octets)");
    c.quit();
    let needle = "shadow:3: carriage return";
    let log = server.wait_log(needle, 2);
    assert_eq!(log.matches(needle).count(), 2, "{log}");
}

#[test]
fn every_scheme_logs_in() {
    let w = World::new("auth-schemes");
    let mut passwd = String::new();
    let mut shadow = String::new();
    for (user, hash) in SCHEMES_R {
        passwd.push_str(&w.passwd_line(user));
        shadow.push_str(&format!("{user}:{hash}:19000:0:99999:7:::\n"));
    }
    w.write("passwd", &passwd);
    w.write("shadow", &shadow);
    w.mailbox("md5", 1, w.uid);
    let server = start(&w, &["--fail-delay", "0"]);
    for (user, _) in SCHEMES_R {
        let mut c = server.connect();
        assert_eq!(c.login(user, "R"), REFUSED, "{user}");
        let reply = c.login(user, "r");
        assert!(reply.starts_with("+OK "), "{user}: {reply}");
        c.quit();
    }
}

#[test]
fn missing_shadow_stops_start_up_with_one_line() {
    let w = policy_world();
    let mut args = w.args();
    let missing = w.path("no-such-shadow");
    args.extend([
        "--passwd".into(),
        w.path("passwd").display().to_string(),
        "--shadow".into(),
        missing.display().to_string(),
    ]);
    let (ok, stderr) = run_to_end(&args);
    assert!(!ok);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].ends_with(&format!(
            "cannot read {}: No such file or directory (pass --shadow FILE)",
            missing.display()
        )),
        "{stderr}"
    );
    // Unreadable (not root) or a directory: also one line.
    args.pop();
    args.push(w.path("spool").display().to_string());
    let (ok, stderr) = run_to_end(&args);
    assert!(!ok);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot read"), "{stderr}");
}
