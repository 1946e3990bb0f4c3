//! Real clients against the extensions, and a real inetd in front of the
//! server:
//! - mpop: it reads CAPA, pipelines its RETRs on its own (`--pipelining`
//!   left at auto) and, with its UIDLs file, fetches nothing the second time
//!   (the second run also logs in with `--auth=plain`);
//! - getmail6 (SimplePOP3Retriever into an Mboxrd file): everything once,
//!   then nothing, from its oldmail file;
//! - curl: CAPA, and AUTH PLAIN with the `+ ` continuation, with an initial
//!   response (`--sasl-ir`), with an authzid equal to the user, and refused
//!   with another authzid;
//! - Python's poplib: `capa()`, and AUTH PLAIN by hand (initial response,
//!   continuation, `*` cancel) through its `_shortcmd`/`_putcmd`;
//! - openbsd-inetd (`inetd -d CONF` in the foreground) starting pop3d in
//!   inetd mode from a one-line config, with a session through it; the same
//!   with busybox inetd (`busybox inetd -f -e CONF`). Debian's busybox .deb
//!   is built without the inetd applet, so scripts/build-busybox-inetd.sh
//!   builds Debian's busybox source with it switched on.
//!
//! What each client delivers must equal the mbox messages, after undoing
//! only what the client itself changes, found by running it:
//! - mpop's mbox delivery adds a `From MAILER-DAEMON <date>` line and an
//!   empty line after each message, quotes `From ` lines mboxrd-style
//!   (`>From `, `>>From `), and adds a final newline to a message without
//!   one (with `--received-header=off` it adds no header);
//! - getmail6's Mboxrd adds a `From <sender> <date>` line, a
//!   `Return-Path: <...>` header (with `delivered_to` and `received` off) and
//!   an empty line, quotes `From ` lines the same way, turns every bare CR
//!   into a line break (LF); getmail refuses to
//!   deliver as root, so as root it delivers as `nobody` (`user = nobody`);
//! - openbsd-inetd connects the socket to fd 0, 1 *and* 2, so pop3d runs
//!   there without `--log stderr` (its log lines would reach the client).

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;

/// Splits an mbox file written by a client into (From_ line, message) pairs:
/// messages start at `From ` lines, and the one empty line before the next
/// `From ` line (and at the end of the file) is the separator, not data.
/// mboxrd quoting (`>From ` for `From `, `>>From ` for `>From `) is undone.
fn split_client_mbox(bytes: &[u8], what: &str) -> Vec<(String, Vec<u8>)> {
    let mut msgs: Vec<(String, Vec<u8>)> = Vec::new();
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"From ") {
            msgs.push((
                String::from_utf8_lossy(line).trim_end().to_owned(),
                Vec::new(),
            ));
            continue;
        }
        let cur = &mut msgs
            .last_mut()
            .unwrap_or_else(|| panic!("{what}: the mbox does not start with a From_ line"))
            .1;
        let gt = line.iter().take_while(|&&b| b == b'>').count();
        if gt > 0 && line[gt..].starts_with(b"From ") {
            cur.extend_from_slice(&line[1..]);
        } else {
            cur.extend_from_slice(line);
        }
    }
    for (from, m) in &mut msgs {
        assert!(
            m.ends_with(b"\n\n"),
            "{what}: message after {from:?} does not end with the empty separator line"
        );
        m.pop();
    }
    msgs
}

/// The tricky mailbox, minus what mbox delivery cannot round-trip: the
/// message whose data is just a header block (its empty line and the
/// separator become ambiguous in any mbox file).
fn client_mbox() -> Mbox {
    let m = tricky_mbox();
    let mut out = Mbox::new();
    for k in 1..=m.len() {
        if m.data(k) != b"Subject: empty body\n\n" {
            out = out.msg(m.data(k));
        }
    }
    out
}

#[test]
fn mpop_pipelines_and_fetches_nothing_twice() {
    let mpop = require_tool("mpop", "mpop");
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let mbox = client_mbox();
    let path = w.write_mailbox(&u, &mbox.bytes());
    let before = fs::read(&path).unwrap();
    let d = w.daemon(&[]);
    let home = w.dir.join("mpop-home");
    fs::create_dir(&home).unwrap();
    let out = w.dir.join("mpop.mbox");
    let uidls = w.dir.join("mpop.uidls");
    let mpop_run = |auth: &str| -> String {
        let o = run(
            Command::new(&mpop)
                .arg("--host=127.0.0.1")
                .arg(format!("--port={}", d.addr.port()))
                .arg(format!("--auth={auth}"))
                .arg(format!("--user={}", u.name))
                .arg(format!("--passwordeval=echo {}", u.pass))
                .args(["--tls=off", "--keep=on", "--received-header=off"])
                .args(["--timeout=60", "--debug"])
                .arg(format!("--delivery=mbox,{}", out.display()))
                .arg(format!("--uidls-file={}", uidls.display()))
                .env("HOME", &home),
            &format!("mpop --auth={auth}"),
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };

    let log = mpop_run("user");
    // mpop read PIPELINING from CAPA: two RETRs went out before the first
    // reply came back.
    let lines: Vec<&str> = log.lines().collect();
    let first_retr = lines
        .iter()
        .position(|l| l.starts_with("--> RETR 1"))
        .unwrap_or_else(|| panic!("mpop sent no RETR 1:\n{log}"));
    assert!(
        lines
            .get(first_retr + 1)
            .is_some_and(|l| l.starts_with("--> RETR 2")),
        "mpop did not pipeline its RETRs (RETR 1 was not directly followed by RETR 2):\n{log}"
    );
    let got = fs::read(&out).expect("mpop's mbox");
    let msgs = split_client_mbox(&got, "mpop mbox");
    assert_eq!(msgs.len(), mbox.len(), "messages mpop delivered:\n{log}");
    for (k, (from, data)) in msgs.iter().enumerate() {
        assert!(
            from.starts_with("From MAILER-DAEMON "),
            "mpop From_ line {from:?}"
        );
        assert_bytes_eq(
            data,
            &mbox.expected_retr(k + 1),
            &format!("mpop message {}", k + 1),
        );
    }
    assert_eq!(
        fs::read(&path).unwrap(),
        before,
        "mailbox after mpop --keep=on"
    );

    // Second run (AUTH PLAIN this time): the UIDLs file says everything is
    // old, so nothing is fetched.
    let log = mpop_run("plain");
    assert!(
        log.lines().any(|l| l.starts_with("--> AUTH PLAIN")),
        "mpop --auth=plain did not use AUTH PLAIN:\n{log}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with("--> RETR")),
        "mpop fetched again although its UIDLs file lists every message:\n{log}"
    );
    assert_eq!(
        fs::read(&out).unwrap(),
        got,
        "mpop's mbox after the second run"
    );
    assert_eq!(
        fs::read(&path).unwrap(),
        before,
        "mailbox after the second mpop run"
    );
}

#[test]
fn getmail6_fetches_every_message_once() {
    let getmail = require_tool("getmail", "getmail6");
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let mbox = client_mbox();
    let path = w.write_mailbox(&u, &mbox.bytes());
    let before = fs::read(&path).unwrap();
    let d = w.daemon(&[]);
    let gdir = w.dir.join("getmail");
    fs::create_dir(&gdir).unwrap();
    let out = w.dir.join("getmail.mbox");
    fs::write(&out, "").unwrap();
    // getmail will not deliver as root: then it delivers as nobody.
    let user_line = if is_root() {
        std::os::unix::fs::chown(&out, Some(65534), None).unwrap();
        "user = nobody\n"
    } else {
        ""
    };
    let rc = gdir.join("getmailrc");
    fs::write(
        &rc,
        format!(
            "[retriever]\ntype = SimplePOP3Retriever\nserver = 127.0.0.1\nport = {port}\n\
             username = {user}\npassword = {pass}\ntimeout = 20\n\n\
             [destination]\ntype = Mboxrd\npath = {out}\n{user_line}\n\
             [options]\nread_all = false\ndelete = false\nverbose = 2\n\
             delivered_to = false\nreceived = false\n",
            port = d.addr.port(),
            user = u.name,
            pass = u.pass,
            out = out.display(),
        ),
    )
    .unwrap();
    fs::set_permissions(&rc, fs::Permissions::from_mode(0o600)).unwrap();
    let getmail_cmd = || {
        let mut c = Command::new(&getmail);
        c.arg("--rcfile")
            .arg(&rc)
            .arg("--getmaildir")
            .arg(&gdir)
            .env("HOME", &w.dir.path);
        c
    };
    let getmail_run = |what: &str| -> String {
        let o = run(&mut getmail_cmd(), what);
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
    };

    // getmail6 6.18 loses the SIGCHLD of a delivery child that exits before
    // it starts waiting, then fails with "waiting child pid N timed out" (a
    // race in getmail itself, more likely on a loaded machine). The first
    // run is kept-mail only, so it can start again from scratch: at most
    // three tries, and only for that exact error.
    let mut log = String::new();
    for attempt in 1..=3 {
        let o = getmail_cmd()
            .stdin(Stdio::null())
            .output()
            .expect("run getmail");
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        log = String::from_utf8_lossy(&o.stdout).into_owned() + &stderr;
        let lost_child = stderr.contains("waiting child pid") && stderr.contains("timed out");
        if o.status.success() || !lost_child || attempt == 3 {
            assert!(
                o.status.success(),
                "getmail (first run) exited with {}\n{log}",
                o.status
            );
            break;
        }
        eprintln!("getmail lost its delivery child's exit (attempt {attempt}); starting over");
        fs::write(&out, "").unwrap();
        for e in fs::read_dir(&gdir).unwrap() {
            let e = e.unwrap();
            if e.file_name() != "getmailrc" {
                fs::remove_file(e.path()).unwrap();
            }
        }
    }
    let got = fs::read(&out).unwrap();
    let msgs = split_client_mbox(&got, "getmail mbox");
    assert_eq!(msgs.len(), mbox.len(), "messages getmail delivered:\n{log}");
    for (k, (from, data)) in msgs.iter().enumerate() {
        let what = format!("getmail message {}", k + 1);
        assert!(from.starts_with("From "), "{what}: From_ line {from:?}");
        let data = data
            .strip_prefix(b"Return-Path: <")
            .and_then(|rest| {
                let end = rest.iter().position(|&b| b == b'\n')?;
                rest[..end].ends_with(b">").then(|| &rest[end + 1..])
            })
            .unwrap_or_else(|| {
                panic!(
                    "{what}: expected getmail's Return-Path header first, got {:?}",
                    String::from_utf8_lossy(&data[..data.len().min(100)])
                )
            });
        // getmail turns a bare CR into a line break.
        let want: Vec<u8> = mbox
            .expected_retr(k + 1)
            .iter()
            .map(|&b| if b == b'\r' { b'\n' } else { b })
            .collect();
        assert_bytes_eq(data, &want, &what);
    }
    assert_eq!(
        fs::read(&path).unwrap(),
        before,
        "mailbox after getmail (delete = false)"
    );

    let log = getmail_run("getmail (second run)");
    assert_eq!(
        fs::read(&out).unwrap(),
        got,
        "getmail delivered again on its second run:\n{log}"
    );
    assert!(
        log.contains("0 messages"),
        "getmail's second run should retrieve 0 messages:\n{log}"
    );
}

#[test]
fn curl_capa_and_auth_plain() {
    let curl = require_tool("curl", "curl");
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let mbox = tricky_mbox();
    w.write_mailbox(&u, &mbox.bytes());
    let d = w.daemon(&[]);
    let url = |path: &str| format!("pop3://{}:{}@{}/{path}", u.name, u.pass, d.addr);
    let curl_cmd = |args: &[&str]| -> Command {
        let mut c = Command::new(&curl);
        c.args(["-s", "-S", "-v", "--max-time", "60"]).args(args);
        c
    };
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();

    // CAPA (curl sends its own CAPA first, then ours after login).
    let o = run(&mut curl_cmd(&["-X", "CAPA", &url("")]), "curl -X CAPA");
    let capa = String::from_utf8_lossy(&o.stdout).replace("\r\n", "\n");
    for cap in [
        "TOP",
        "UIDL",
        "USER",
        "PIPELINING",
        "RESP-CODES",
        "SASL PLAIN",
    ] {
        assert!(
            capa.lines().any(|l| l == cap),
            "curl -X CAPA output lacks {cap:?}:\n{capa}"
        );
    }

    // AUTH PLAIN with the continuation (curl's default), then RETR.
    let o = run(
        &mut curl_cmd(&["--login-options", "AUTH=PLAIN", &url("4")]),
        "curl AUTH=PLAIN",
    );
    let log = stderr(&o);
    assert!(
        log.lines().any(|l| l.trim_end() == "> AUTH PLAIN")
            && log.lines().any(|l| l.starts_with("< + ")),
        "curl did not use AUTH PLAIN with a continuation:\n{log}"
    );
    assert_bytes_eq(
        &crlf_to_lf(&o.stdout),
        &mbox.expected_retr(4),
        "curl AUTH PLAIN RETR 4",
    );

    // With an initial response.
    let o = run(
        &mut curl_cmd(&["--login-options", "AUTH=PLAIN", "--sasl-ir", &url("1")]),
        "curl AUTH=PLAIN --sasl-ir",
    );
    let log = stderr(&o);
    let ir = format!("> AUTH PLAIN {}", sasl_plain("", &u.name, &u.pass));
    assert!(
        log.lines().any(|l| l.trim_end() == ir),
        "curl --sasl-ir did not send {ir:?}:\n{log}"
    );
    assert_bytes_eq(
        &crlf_to_lf(&o.stdout),
        &mbox.expected_retr(1),
        "curl --sasl-ir RETR 1",
    );

    // authzid = the user: fine; another authzid: refused.
    let o = run(
        &mut curl_cmd(&[
            "--login-options",
            "AUTH=PLAIN",
            "--sasl-authzid",
            &u.name,
            &url("2"),
        ]),
        "curl --sasl-authzid alice",
    );
    assert_bytes_eq(
        &crlf_to_lf(&o.stdout),
        &mbox.expected_retr(2),
        "curl authzid RETR 2",
    );
    let o = curl_cmd(&[
        "--login-options",
        "AUTH=PLAIN",
        "--sasl-authzid",
        "bob",
        &url("2"),
    ])
    .stdin(Stdio::null())
    .output()
    .unwrap();
    assert_eq!(
        o.status.code(),
        Some(67),
        "curl with authzid bob for alice must fail to log in (exit 67):\n{}",
        stderr(&o)
    );
    assert!(o.stdout.is_empty(), "curl got data without logging in");
}

const POPLIB_SCRIPT: &str = r#"
import os, poplib, sys
poplib._MAXLINE = 1 << 20
host, port, user, password, ir, out = sys.argv[1:]
def conn():
    return poplib.POP3(host, int(port), timeout=60)
# capa() before login
p = conn()
caps = p.capa()
for k in sorted(caps):
    print("capa", k, " ".join(caps[k]))
# AUTH PLAIN with an initial response, then every message
print("ir", p._shortcmd("AUTH PLAIN " + ir).decode())
count, size = p.stat()
print("stat", count, size)
for i in range(1, count + 1):
    resp, lines, octets = p.retr(i)
    with open(os.path.join(out, "retr%d" % i), "wb") as f:
        f.write(b"".join(l + b"\n" for l in lines))
print("quit", p.quit().decode())
# continuation
p = conn()
p._putcmd("AUTH PLAIN")
print("cont", p._getline()[0].decode())
print("cont-ok", p._shortcmd(ir).decode())
print("stat2", *p.stat())
p.quit()
# cancel
p = conn()
p._putcmd("AUTH PLAIN")
p._getline()
try:
    p._shortcmd("*")
    print("cancel accepted")
except poplib.error_proto as e:
    print("cancel", e.args[0].decode())
p.user(user)
print("pass", p.pass_(password).decode())
p.quit()
"#;

#[test]
fn poplib_capa_and_auth_plain() {
    let python = require_tool("python3", "python3");
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let mbox = tricky_mbox();
    w.write_mailbox(&u, &mbox.bytes());
    let d = w.daemon(&[]);
    let out_dir = w.dir.join("poplib");
    fs::create_dir(&out_dir).unwrap();
    let o = run(
        Command::new(python)
            .arg("-c")
            .arg(POPLIB_SCRIPT)
            .arg(d.addr.ip().to_string())
            .arg(d.addr.port().to_string())
            .arg(&u.name)
            .arg(&u.pass)
            .arg(sasl_plain("", &u.name, &u.pass))
            .arg(&out_dir),
        "python3 poplib AUTH PLAIN script",
    );
    let stdout = String::from_utf8(o.stdout).unwrap();
    let has = |l: &str| stdout.lines().any(|x| x == l);
    let starts = |p: &str| stdout.lines().any(|x| x.starts_with(p));
    for cap in [
        "TOP",
        "UIDL",
        "USER",
        "PIPELINING",
        "RESP-CODES",
        "AUTH-RESP-CODE",
    ] {
        assert!(
            has(&format!("capa {cap} ")),
            "poplib capa() lacks {cap}:\n{stdout}"
        );
    }
    assert!(
        has("capa SASL PLAIN"),
        "poplib capa() lacks SASL PLAIN:\n{stdout}"
    );
    assert!(
        has(&format!(
            "capa IMPLEMENTATION pop3d-{}",
            env!("CARGO_PKG_VERSION")
        )),
        "poplib capa() IMPLEMENTATION:\n{stdout}"
    );
    assert!(starts("ir +OK"), "AUTH PLAIN initial response:\n{stdout}");
    let n = mbox.len();
    assert!(
        has(&format!("stat {n} {}", mbox.expected_total(&[]))),
        "stat after AUTH PLAIN:\n{stdout}"
    );
    for k in 1..=n {
        let got = fs::read(out_dir.join(format!("retr{k}"))).unwrap();
        assert_bytes_eq(
            &got,
            &mbox.expected_retr(k),
            &format!("poplib retr({k}) after AUTH PLAIN"),
        );
    }
    assert!(starts("quit +OK"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l == "cont +" || l == "cont + "),
        "AUTH PLAIN continuation:\n{stdout}"
    );
    assert!(
        starts("cont-ok +OK"),
        "AUTH PLAIN continuation response:\n{stdout}"
    );
    assert!(starts(&format!("stat2 {n} ")), "{stdout}");
    assert!(
        starts("cancel -ERR"),
        "AUTH PLAIN cancelled with *:\n{stdout}"
    );
    assert!(
        starts("pass +OK"),
        "USER/PASS after a cancelled AUTH:\n{stdout}"
    );
}

/// The name of the account with our uid (for inetd's user field when not
/// root).
fn my_user_name() -> String {
    let o = Command::new("id").arg("-un").output().expect("run id -un");
    String::from_utf8(o.stdout).unwrap().trim().to_owned()
}

/// The inetd.conf line that starts pop3d on `127.0.0.1:port` in inetd mode
/// (the runner first when there is one), run as root when the test is.
fn inetd_conf_line(w: &World, port: u16) -> String {
    let (program, argv): (String, Vec<String>) = match exec_runner() {
        Some(r) => {
            let p = find_in_path(&r[0])
                .unwrap_or_else(|| panic!("TEST_EXEC_RUNNER {:?} not found", r[0]));
            let mut argv = r.clone();
            argv.push(pop3d_bin().to_owned());
            (p.display().to_string(), argv)
        }
        None => (pop3d_bin().to_owned(), vec!["pop3d".to_owned()]),
    };
    let user = if is_root() {
        "root".to_owned()
    } else {
        my_user_name()
    };
    format!(
        "127.0.0.1:{port} stream tcp nowait {user} {program} {} --spool {} --passwd {} --shadow {} --fail-delay 0\n",
        argv.join(" "),
        w.spool.display(),
        w.passwd.display(),
        w.shadow.display(),
    )
}

/// Connects to the inetd on `port` and reads the greeting of the pop3d it
/// starts; retries for a while, since an inetd says nothing when it listens.
fn connect_inetd(port: u16, line: &str) -> Pop3 {
    let t = std::time::Instant::now();
    let s = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) if t.elapsed() > START_TIMEOUT => {
                panic!("connect to inetd on 127.0.0.1:{port}: {e}\nconfig: {line}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let mut p = Pop3::new(Conn::Tcp(s));
    p.greeting();
    p
}

/// A whole session through the inetd of `iw` (listening on its port): every
/// message retrieved intact, DELE 1 + QUIT rewrites the mailbox, and
/// `after_quit` (a check on the inetd's log) runs before a second connection
/// gets a pop3d of its own that sees the shorter mailbox.
fn session_through_inetd(iw: &InetdWorld, after_quit: impl FnOnce()) {
    let (u, port, line) = (&iw.u, iw.port, iw.line.as_str());
    let mbox = tricky_mbox();
    let path = iw.w.mailbox(&u.name);
    let mut pop = connect_inetd(port, line);
    pop.login(&u.name, &u.pass);
    assert_eq!(pop.stat(), (mbox.len() as u64, mbox.expected_total(&[])));
    for k in 1..=mbox.len() {
        let (first, body) = pop.multi(&format!("RETR {k}"));
        assert_eq!(first_number(&first), Some(mbox.expected_size(k)));
        assert_bytes_eq(
            &body.data(),
            &mbox.expected_retr(k),
            &format!("RETR {k} via inetd"),
        );
    }
    pop.ok("DELE 1");
    pop.quit();
    pop.expect_closed();
    assert_bytes_eq(
        &fs::read(&path).unwrap(),
        &mbox.bytes_without(&[1]),
        "mailbox after DELE 1 + QUIT via inetd",
    );
    after_quit();

    let mut pop = connect_inetd(port, line);
    pop.login(&u.name, &u.pass);
    assert_eq!(pop.stat().0, mbox.len() as u64 - 1);
    pop.quit();
}

/// A world for an inetd test: user alice with the tricky mailbox, a free
/// port and an inetd.conf holding the one line that starts pop3d there.
struct InetdWorld {
    w: World,
    u: Account,
    port: u16,
    line: String,
    conf: std::path::PathBuf,
}

impl InetdWorld {
    fn new() -> InetdWorld {
        let mut w = World::new();
        let u = w.user("alice", "alice-pw");
        w.write_mailbox(&u, &tricky_mbox().bytes());
        let port = free_port();
        let line = inetd_conf_line(&w, port);
        let conf = w.dir.join("inetd.conf");
        fs::write(&conf, &line).unwrap();
        InetdWorld {
            w,
            u,
            port,
            line,
            conf,
        }
    }
}

#[test]
fn openbsd_inetd_starts_pop3d_from_one_config_line() {
    let inetd = require_tool("/usr/sbin/inetd", "openbsd-inetd");
    let iw = InetdWorld::new();
    let mut cmd = Command::new(inetd);
    cmd.arg("-d")
        .arg(&iw.conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let inetd = Spawned::start(cmd, "openbsd-inetd -d");
    inetd.wait_stderr(&format!("127.0.0.1:{}", iw.port), START_TIMEOUT);
    session_through_inetd(&iw, || {
        // inetd reaps the pop3d it started, which exited 0.
        inetd.wait_stderr("reaped, status 0", Duration::from_secs(20));
    });
}

/// busybox inetd, as router and NAS images run it: Debian's busybox source
/// and configuration with the inetd applet switched on, built by
/// scripts/build-busybox-inetd.sh (Debian's busybox .deb has no inetd), in
/// the foreground (-f) logging to stderr (-e). busybox logs nothing for a
/// "nowait" child that exits, so its log must stay free of errors instead.
#[test]
fn busybox_inetd_starts_pop3d_from_one_config_line() {
    let busybox = busybox_with_inetd();
    let iw = InetdWorld::new();
    let mut cmd = Command::new(&busybox);
    cmd.args(["inetd", "-f", "-e"])
        .arg(&iw.conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let inetd = Spawned::start(cmd, "busybox inetd -f -e");
    session_through_inetd(&iw, || {});
    let log = inetd.log();
    assert!(
        log.iter().all(|l| l.trim().is_empty()),
        "busybox inetd complained:\n{}",
        log.join("\n")
    );
}

/// Debian's busybox with the inetd applet, built once into target/peers.
fn busybox_with_inetd() -> std::path::PathBuf {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = repo.join("target/peers/busybox/busybox");
    let o = Command::new("bash")
        .arg(repo.join("scripts/build-busybox-inetd.sh"))
        .stdout(Stdio::null())
        .output()
        .expect("run scripts/build-busybox-inetd.sh");
    assert!(
        o.status.success() && bin.exists(),
        "scripts/build-busybox-inetd.sh failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    bin
}
