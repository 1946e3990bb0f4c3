//! The POP3 extensions and the input hardening of issue 4, against the real
//! binary in standalone mode: CAPA before and after login (UIDL, TOP, SASL
//! PLAIN, ...), 1,000 pipelined commands in one write answered in order,
//! over-long lines answered with one `-ERR` before the client ends them,
//! NUL bytes, the bad-command limit, AUTH PLAIN (initial response, `+ `
//! continuation, `*` cancel, bad base64, authzid), and the response codes
//! `[AUTH]`, `[SYS/TEMP]` (session limits) and `[IN-USE]` (a mailbox held
//! under an fcntl lock by another process).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// The one refusal text every failed login gets (exact, per the contract).
const AUTH_FAILED: &str = "-ERR [AUTH] Authentication failed";

fn capa(pop: &mut Pop3) -> Vec<String> {
    let (_, body) = pop.multi("CAPA");
    body.text()
}

#[test]
fn capa_before_and_after_login() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let d = w.daemon(&[]);
    let mut pop = d.connect();
    let implementation = format!("IMPLEMENTATION pop3d-{}", env!("CARGO_PKG_VERSION"));
    let want = [
        "TOP",
        "UIDL",
        "PIPELINING",
        "RESP-CODES",
        "AUTH-RESP-CODE",
        implementation.as_str(),
    ];
    let before = capa(&mut pop);
    for cap in want.iter().chain(&["USER", "SASL PLAIN"]) {
        assert!(
            before.iter().any(|l| l == cap),
            "CAPA before login lacks {cap:?}: {before:?}"
        );
    }
    pop.login(&u.name, &u.pass);
    let after = capa(&mut pop);
    for cap in want {
        assert!(
            after.iter().any(|l| l == cap),
            "CAPA after login lacks {cap:?}: {after:?}"
        );
    }
    // The session is still in the TRANSACTION state.
    assert_eq!(pop.cmd("STAT"), "+OK 0 0");
    pop.quit();
}

#[test]
fn thousand_pipelined_commands_in_one_write() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let mbox = simple_mbox(5);
    w.write_mailbox(&u, &mbox.bytes());
    let d = w.daemon(&[]);
    let n = mbox.len();

    let mut pop = d.connect();
    pop.login(&u.name, &u.pass);
    let uids = pop.uidl();
    pop.quit();
    // A raw reader/writer pair for the burst.
    let stream = TcpStream::connect(d.addr).unwrap();
    stream.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
    let mut r = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    let mut read_line = |what: &str| -> String {
        line.clear();
        let got = r
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("reading the reply to {what}: {e}"));
        assert!(got > 0, "connection closed before the reply to {what}");
        assert!(
            line.ends_with("\r\n"),
            "reply to {what} lacks CRLF: {line:?}"
        );
        line.trim_end_matches("\r\n").to_owned()
    };
    assert!(is_ok(&read_line("greeting")));

    // 1,000 commands: USER, PASS, then a cycle of single-line and multi-line
    // ones, ending with QUIT; all in one write.
    let mut cmds = vec![format!("USER {}", u.name), format!("PASS {}", u.pass)];
    let mut i = 0;
    while cmds.len() < 999 {
        let k = i % n + 1;
        cmds.push(match i % 6 {
            0 => format!("LIST {k}"),
            1 => "NOOP".to_owned(),
            2 => format!("UIDL {k}"),
            3 => "STAT".to_owned(),
            4 => format!("TOP {k} 0"),
            _ => format!("RETR {k}"),
        });
        i += 1;
    }
    cmds.push("QUIT".to_owned());
    assert_eq!(cmds.len(), 1000);
    let burst: String = cmds.iter().map(|c| format!("{c}\r\n")).collect();
    let mut wr = stream.try_clone().unwrap();
    let writer = thread::spawn(move || wr.write_all(burst.as_bytes()));

    let start = Instant::now();
    let total = mbox.expected_total(&[]);
    for (j, c) in cmds.iter().enumerate() {
        let what = format!("pipelined command #{} {c:?}", j + 1);
        let reply = read_line(&what);
        assert!(is_ok(&reply), "{what}: {reply:?}");
        let k: usize = c
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        match c.split(' ').next().unwrap() {
            "LIST" => assert_eq!(
                reply,
                format!("+OK {k} {}", mbox.expected_size(k)),
                "{what}"
            ),
            "UIDL" => assert_eq!(reply, format!("+OK {k} {}", uids[k - 1].1), "{what}"),
            "STAT" => assert_eq!(reply, format!("+OK {n} {total}"), "{what}"),
            "TOP" | "RETR" => {
                let mut body = Vec::new();
                loop {
                    let l = read_line(&what);
                    if l == "." {
                        break;
                    }
                    body.extend_from_slice(l.strip_prefix('.').unwrap_or(&l).as_bytes());
                    body.push(b'\n');
                }
                let want = if c.starts_with("TOP") {
                    mbox.expected_top(k, 0)
                } else {
                    mbox.expected_retr(k)
                };
                assert_bytes_eq(&body, &want, &what);
            }
            _ => {}
        }
    }
    let elapsed = start.elapsed();
    writer.join().unwrap().expect("write the burst");
    let mut rest = Vec::new();
    let _ = r.read_to_end(&mut rest);
    assert!(
        rest.is_empty(),
        "bytes after the QUIT reply: {:?}",
        String::from_utf8_lossy(&rest)
    );
    eprintln!("1,000 pipelined commands answered in {elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(20),
        "1,000 pipelined commands took {elapsed:?}"
    );
}

/// Reads one reply line on a connection whose client has not finished its
/// own line, failing if it does not come within 5 s (the server must not
/// wait for the CRLF).
fn line_before_crlf(pop: &mut Pop3, what: &str) -> String {
    pop.set_read_timeout(Duration::from_secs(5));
    pop.expecting(what);
    let l = pop.read_line();
    pop.set_read_timeout(REPLY_TIMEOUT);
    l
}

#[test]
fn overlong_line_gets_one_err_before_its_end() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let d = w.daemon(&[]);
    let mut pop = d.connect();

    // 300 octets, no CRLF yet: the -ERR comes now.
    pop.send_raw(&[b'A'; 300]);
    let r = line_before_crlf(&mut pop, "the -ERR to an unterminated 300-octet line");
    assert!(is_err(&r), "over-long line: {r:?}");
    // The rest of the line is dropped without a second -ERR, however long.
    pop.send_raw(&[b'B'; 5000]);
    pop.send_raw(b"CCC\r\n");
    assert!(
        is_ok(&pop.cmd("CAPA")),
        "CAPA right after the over-long line"
    );
    pop.read_body();

    // A 255-octet command line is still a line (RFC 2449): a syntax error,
    // not "too long", and no second reply.
    let long_user = format!("USER {}", "u".repeat(250));
    assert_eq!(long_user.len(), 255);
    let r = pop.cmd(&long_user);
    assert!(is_err(&r) || is_ok(&r), "255-octet USER: {r:?}");
    assert!(is_ok(&pop.cmd("CAPA")), "CAPA after a 255-octet line");
    pop.read_body();

    // Over-long line and the next command in one write.
    let mut b = vec![b'X'; 400];
    b.extend_from_slice(b"\r\nNOOP\r\n");
    pop.send_raw(&b);
    let r = pop.read_line();
    assert!(is_err(&r), "400-octet line: {r:?}");
    let r = pop.read_line();
    assert!(
        is_err(&r) && !r.contains("long"),
        "NOOP before login after the long line should get its own -ERR: {r:?}"
    );

    // AUTH lines may be longer (up to 1024), but not unbounded: 1,100
    // octets without CRLF get -ERR at once.
    let mut b = b"AUTH PLAIN ".to_vec();
    b.extend(std::iter::repeat_n(b'Q', 1100));
    pop.send_raw(&b);
    let r = line_before_crlf(
        &mut pop,
        "the -ERR to an unterminated 1,111-octet AUTH line",
    );
    assert!(is_err(&r), "over-long AUTH line: {r:?}");
    pop.send_raw(b"QQQQ\r\n");
    pop.login(&u.name, &u.pass);
    pop.quit();
}

#[test]
fn auth_plain_with_a_long_password_fits_the_auth_line() {
    let mut w = World::new();
    // 500 octets of password (libxcrypt, behind mkpasswd, takes at most
    // 512): the AUTH PLAIN line is about 690 octets, over the 255 of other
    // commands, within the AUTH bound.
    let pass = "p4ss".repeat(125);
    let u = w.user("alice", &pass);
    w.write_mailbox(&u, &simple_mbox(2).bytes());
    let d = w.daemon(&[]);
    let mut pop = d.connect();
    let line = format!("AUTH PLAIN {}", sasl_plain("", &u.name, &pass));
    assert!(line.len() > 600 && line.len() <= 1024, "{}", line.len());
    let r = pop.cmd(&line);
    assert!(is_ok(&r), "AUTH PLAIN with a 500-octet password: {r:?}");
    assert_eq!(pop.stat().0, 2);
    pop.quit();
}

#[test]
fn nul_byte_gets_err_and_the_session_goes_on() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let d = w.daemon(&[]);
    let mut pop = d.connect();
    pop.send_raw(b"CA\0PA\r\n");
    let r = pop.read_line();
    assert!(is_err(&r), "command with a NUL: {r:?}");
    pop.send_raw(format!("USER {}\0\r\n", u.name).as_bytes());
    let r = pop.read_line();
    assert!(is_err(&r), "USER with a NUL: {r:?}");
    pop.login(&u.name, &u.pass);
    pop.send_raw(b"NOOP\0\r\n");
    let r = pop.read_line();
    assert!(is_err(&r), "NOOP with a NUL: {r:?}");
    assert_eq!(pop.cmd("NOOP"), "+OK");
    pop.quit();
}

#[test]
fn twenty_bad_commands_close_the_connection() {
    let mut w = World::new();
    w.user("alice", "alice-pw");
    let d = w.daemon(&[]);

    // 19 bad commands: still served.
    let mut pop = d.connect();
    for i in 1..=19 {
        pop.err(&format!("XYZZY{i}"));
    }
    assert!(is_ok(&pop.cmd("CAPA")), "CAPA after 19 bad commands");
    pop.read_body();
    pop.quit();

    // 20 in one write: 20 -ERR lines, then the server closes.
    let mut pop = d.connect();
    let burst: String = (1..=20).map(|i| format!("BAD{i}\r\n")).collect();
    pop.send_raw(burst.as_bytes());
    for i in 1..=20 {
        pop.expecting(&format!("the reply to bad command {i}"));
        let r = pop.read_line();
        assert!(is_err(&r), "bad command {i}: {r:?}");
    }
    pop.expecting("the close after 20 bad commands");
    pop.expect_closed();
}

#[test]
fn auth_plain_initial_response_continuation_and_cancel() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let mbox = simple_mbox(3);
    w.write_mailbox(&u, &mbox.bytes());
    let d = w.daemon(&[]);

    // Initial response.
    let mut pop = d.connect();
    let r = pop.cmd(&format!("AUTH PLAIN {}", sasl_plain("", &u.name, &u.pass)));
    assert!(is_ok(&r), "AUTH PLAIN with an initial response: {r:?}");
    assert_eq!(pop.stat(), (3, mbox.expected_total(&[])));
    pop.quit();

    // Continuation: "+ " then the response on its own line.
    let mut pop = d.connect();
    let r = pop.cmd("AUTH PLAIN");
    assert!(
        r == "+ " || r == "+",
        "AUTH PLAIN without an initial response must get a \"+ \" continuation: {r:?}"
    );
    let r = pop.cmd(&sasl_plain("", &u.name, &u.pass));
    assert!(is_ok(&r), "AUTH PLAIN continuation response: {r:?}");
    assert_eq!(pop.stat().0, 3);
    pop.quit();

    // An authzid equal to the user is fine; mechanism names are
    // case-insensitive.
    let mut pop = d.connect();
    let r = pop.cmd(&format!(
        "auth plain {}",
        sasl_plain(&u.name, &u.name, &u.pass)
    ));
    assert!(is_ok(&r), "AUTH PLAIN with authzid = authcid: {r:?}");
    pop.quit();

    // "*" cancels; the session goes on in the AUTHORIZATION state.
    let mut pop = d.connect();
    let r = pop.cmd("AUTH PLAIN");
    assert!(r.starts_with('+') && !is_ok(&r), "continuation: {r:?}");
    pop.err("*");
    pop.err("STAT");
    pop.login(&u.name, &u.pass);
    pop.quit();

    // Bad base64, in the initial response and in the continuation.
    let mut pop = d.connect();
    for bad in ["!!!notbase64", "YWxpY2U", "YW=xp", "YWxp Y2U="] {
        let r = pop.cmd(&format!("AUTH PLAIN {bad}"));
        assert!(is_err(&r), "AUTH PLAIN {bad:?}: {r:?}");
    }
    let r = pop.cmd("AUTH PLAIN");
    assert!(r.starts_with('+') && !is_ok(&r), "continuation: {r:?}");
    pop.err("not*base64");
    // A well-formed base64 message that is not authzid NUL authcid NUL pass.
    pop.err(&format!("AUTH PLAIN {}", base64(b"just-one-field")));
    pop.login(&u.name, &u.pass);
    pop.quit();

    // An authzid other than the user is refused, the session goes on.
    let mut pop = d.connect();
    let r = pop.cmd(&format!(
        "AUTH PLAIN {}",
        sasl_plain("bob", &u.name, &u.pass)
    ));
    assert!(is_err(&r), "AUTH PLAIN with authzid bob for alice: {r:?}");
    pop.err("STAT");
    pop.login(&u.name, &u.pass);
    pop.quit();

    // A wrong password through AUTH PLAIN is an [AUTH] failure like PASS.
    let mut pop = d.connect();
    let r = pop.cmd(&format!("AUTH PLAIN {}", sasl_plain("", &u.name, "wrong")));
    assert_eq!(r, AUTH_FAILED, "AUTH PLAIN with a wrong password");
    // Other mechanisms are refused.
    pop.err("AUTH CRAM-MD5");
    pop.login(&u.name, &u.pass);
    pop.quit();
}

#[test]
fn response_code_auth() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let d = w.daemon(&[]);
    let mut pop = d.connect();
    pop.ok(&format!("USER {}", u.name));
    assert_eq!(pop.cmd("PASS nope"), AUTH_FAILED);
    pop.ok("USER nobody-here");
    assert_eq!(pop.cmd(&format!("PASS {}", u.pass)), AUTH_FAILED);
    pop.login(&u.name, &u.pass);
    pop.quit();
}

/// The first line of a connection that must be refused by a limit: it must
/// be "-ERR [SYS/TEMP] ..." (and then the connection closes).
fn expect_sys_temp_refusal(d: &Daemon, what: &str) {
    let mut c = d.connect_raw();
    c.set_read_timeout(Duration::from_secs(10));
    c.expecting(what);
    let l = c
        .read_raw_line()
        .unwrap_or_else(|| panic!("{what}: closed without the -ERR [SYS/TEMP] line"));
    let l = String::from_utf8_lossy(&l).into_owned();
    assert!(
        l.starts_with("-ERR [SYS/TEMP] ") && l.ends_with("\r\n"),
        "{what}: got {l:?}"
    );
    c.expect_closed();
}

#[test]
fn response_code_sys_temp_on_limits() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let d = w.daemon(&["--max-sessions", "1"]);
    let mut first = d.connect();
    expect_sys_temp_refusal(&d, "a second connection with --max-sessions 1");
    first.login(&u.name, &u.pass);
    first.quit();

    let d = w.daemon(&["--max-per-source", "2"]);
    let _a = d.connect();
    let _b = d.connect();
    expect_sys_temp_refusal(&d, "a third connection with --max-per-source 2");
}

/// Holds an fcntl (POSIX) write lock on the file named by argv[1] until
/// stdin closes; prints "locked" once it holds it. With argv[2] = "cue" it
/// prints "ready" first and takes the lock when a line arrives on stdin.
const LOCK_PY: &str = r#"
import fcntl, sys
f = open(sys.argv[1], "r+b")
if sys.argv[2:] == ["cue"]:
    print("ready", flush=True)
    sys.stdin.readline()
fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("locked", flush=True)
sys.stdin.read()
"#;

/// Starts [`LOCK_PY`] on `path` (on cue or at once) and waits for its first
/// line ("ready" or "locked"); its stdin holds the lock, its stdout follows.
fn spawn_locker(
    path: &std::path::Path,
    cue: bool,
) -> (std::process::Child, BufReader<std::process::ChildStdout>) {
    let python = require_tool("python3", "python3");
    let mut locker = Command::new(python)
        .arg("-c")
        .arg(LOCK_PY)
        .arg(path)
        .args(cue.then_some("cue"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the python locker");
    let mut out = BufReader::new(locker.stdout.take().unwrap());
    let mut l = String::new();
    out.read_line(&mut l).unwrap();
    let want = if cue { "ready" } else { "locked" };
    assert_eq!(l.trim(), want, "the python locker did not start");
    (locker, out)
}

#[test]
fn response_code_in_use_when_the_mailbox_is_locked() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let mbox = simple_mbox(2);
    let path = w.write_mailbox(&u, &mbox.bytes());
    let d = w.daemon(&["--lock-wait", "1"]);
    let (mut locker, _out) = spawn_locker(&path, false);

    let mut pop = d.connect();
    let t = Instant::now();
    pop.login_refused(
        &u.name,
        &u.pass,
        "IN-USE",
        "login to a mailbox under another process's fcntl lock",
    );
    eprintln!("[IN-USE] after {:?}", t.elapsed());
    pop.expect_closed();

    // Lock released: the login works and the mailbox is intact.
    drop(locker.stdin.take());
    locker.wait().unwrap();
    let mut pop = d.connect();
    pop.login(&u.name, &u.pass);
    assert_eq!(pop.stat(), (2, mbox.expected_total(&[])));
    pop.quit();
    assert_bytes_eq(
        &std::fs::read(&path).unwrap(),
        &mbox.bytes(),
        "mailbox after the [IN-USE] refusal",
    );
}

/// Time the server spends on the client's behalf (opening the mailbox,
/// waiting for another program's lock, expunging) is not the client being
/// idle: with `--idle-timeout 1`, a QUIT whose expunge waits 2.5 s for an
/// fcntl lock still completes and answers +OK.
#[test]
fn waiting_for_a_lock_at_quit_is_not_idle_time() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let mbox = simple_mbox(3);
    let path = w.write_mailbox(&u, &mbox.bytes());
    let d = w.daemon(&["--idle-timeout", "1", "--lock-wait", "10"]);
    // The locker is started first, so that nothing slow happens between
    // the commands below (each is within the 1 s idle timeout).
    let (mut locker, mut out) = spawn_locker(&path, true);

    let mut pop = d.connect();
    pop.login(&u.name, &u.pass);
    pop.ok("DELE 2");
    let mut cue = locker.stdin.take().unwrap();
    cue.write_all(b"lock\n").unwrap();
    cue.flush().unwrap();
    let mut l = String::new();
    out.read_line(&mut l).unwrap();
    assert_eq!(
        l.trim(),
        "locked",
        "the python locker did not take its lock"
    );

    pop.send("QUIT");
    thread::sleep(Duration::from_millis(2500));
    drop(cue);
    locker.wait().unwrap();
    pop.set_read_timeout(Duration::from_secs(10));
    let r = pop.read_line();
    assert!(
        r.starts_with("+OK"),
        "QUIT after waiting for the lock: {r:?}\n{}",
        d.log().join("\n")
    );
    pop.expect_closed();
    assert_bytes_eq(
        &std::fs::read(&path).unwrap(),
        &mbox.bytes_without(&[2]),
        "mailbox after the delayed expunge",
    );
}
