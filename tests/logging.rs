//! Logging through syslog: the real binary sends RFC 3164 datagrams (facility
//! mail, ident `pop3d` with its pid) to the syslog socket given with
//! `--syslog-socket`, and no log line ever carries a password.

mod common;

use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::*;

/// Collects datagrams until one contains `needle` (or the time is up).
fn wait_for(sock: &UnixDatagram, seen: &mut Vec<String>, needle: &str) {
    let deadline = Instant::now() + REPLY_TIMEOUT;
    while !seen.iter().any(|l| l.contains(needle)) {
        assert!(
            Instant::now() < deadline,
            "no log line with {needle:?} in {seen:#?}"
        );
        let mut buf = [0u8; 2048];
        if let Ok(n) = sock.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
}

/// Kills the server when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn syslog_lines_have_facility_mail_and_no_passwords() {
    let mut w = World::new();
    let u = w.user("alice", "s3cret-Passw0rd");
    w.write_mailbox(&u, &simple_mbox(2).bytes());
    let sock_path = w.dir.join("log.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind syslog socket");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = pop3d_command();
    // The world's arguments minus their `--log stderr`.
    let mut args = w.args();
    let at = args
        .iter()
        .position(|a| a == "--log")
        .expect("--log in world args");
    args.drain(at..at + 2);
    cmd.args(["-D", "-F", "--listen", &format!("127.0.0.1:{port}")])
        .args(args)
        .args(["--log", "syslog", "--syslog-socket"])
        .arg(&sock_path);
    let server = KillOnDrop(cmd.spawn().expect("spawn pop3d"));
    let mut seen = Vec::new();
    wait_for(&sock, &mut seen, "listening on");

    let mut pop = Pop3::new(Conn::Tcp(TcpStream::connect(("127.0.0.1", port)).unwrap()));
    pop.greeting();
    let r = pop.cmd("USER alice");
    assert!(r.starts_with("+OK"), "{r}");
    let r = pop.cmd("PASS wrong-Passw0rd-guess");
    assert!(r.starts_with("-ERR [AUTH]"), "{r}");
    pop.login(&u.name, &u.pass);
    pop.quit();
    wait_for(&sock, &mut seen, "authentication passed for alice");
    wait_for(&sock, &mut seen, "authentication failed for alice");
    let pid = format!("pop3d[{}]: ", server.0.id());
    drop(server);

    for line in &seen {
        // <PRI>Mmm dd hh:mm:ss pop3d[PID]: text, facility mail (2): PRI 16..23.
        let pri: u8 = line[1..line.find('>').expect("priority")]
            .parse()
            .expect("numeric priority");
        assert_eq!(pri >> 3, 2, "facility mail: {line}");
        assert!(line.contains(&pid), "ident and pid: {line}");
        assert!(
            !line.contains("s3cret") && !line.contains("wrong-Passw0rd"),
            "password logged: {line}"
        );
    }
    let failed = seen
        .iter()
        .find(|l| l.contains("authentication failed"))
        .unwrap();
    assert!(
        failed.starts_with("<21>"),
        "failures are mail.notice: {failed}"
    );
    let passed = seen
        .iter()
        .find(|l| l.contains("authentication passed"))
        .unwrap();
    assert!(
        passed.starts_with("<22>"),
        "routine events are mail.info: {passed}"
    );
}
