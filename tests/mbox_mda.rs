//! The mailbox engine against real mail delivery agents, through the real
//! server binary: procmail delivering during a session and during an
//! expunge, `dotlockfile` holding the dotlock while a message is half
//! written, two POP3 sessions on one mailbox, and the server killed in the
//! middle of an expunge (debug builds abort on `POP3D_FAULT_EXPUNGE_AT`),
//! also after it answered QUIT early, at the commit of a long compaction;
//! and all of it at once: deliveries while two clients read, delete and
//! drop at random.
//!
//! Every test builds its own world (spool, passwd, shadow with a hash made by
//! `mkpasswd -m sha-512`) in a temporary directory and starts its own server
//! (`pop3d -D -F --listen 127.0.0.1:0 ... --log stderr`, wrapped in
//! `$TEST_EXEC_RUNNER` when set). As root the user has uid 4242 and the spool
//! is `root:4242` mode 2775 (like a Debian `root:mail` spool whose group the
//! server's users have); otherwise the user is the test's own uid.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use common::Rng;

const FROM: &str = "From sender@example.org Mon Jan  1 00:00:00 2024\n";
const TIMEOUT: Duration = Duration::from_secs(60);

fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{name}` is needed: apt-get install {package}"))
}

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// A temporary spool, passwd and shadow with one user `mbuser`, password `pw`.
struct World {
    dir: PathBuf,
    spool: PathBuf,
    passwd: PathBuf,
    shadow: PathBuf,
    uid: u32,
}

impl World {
    fn new(tag: &str) -> World {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("pop3d-mda-{tag}-{}-{nanos}", std::process::id()));
        let spool = dir.join("spool");
        fs::create_dir_all(&spool).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let (uid, gid) = if is_root() {
            (4242, 4242)
        } else {
            let m = fs::metadata("/proc/self").unwrap();
            (m.uid(), m.gid())
        };
        if is_root() {
            std::os::unix::fs::chown(&spool, Some(0), Some(gid)).unwrap();
            fs::set_permissions(&spool, fs::Permissions::from_mode(0o2775)).unwrap();
        }
        let out = Command::new(tool("mkpasswd", "whois"))
            .args(["-m", "sha-512", "pw"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let hash = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let passwd = dir.join("passwd");
        let shadow = dir.join("shadow");
        fs::write(
            &passwd,
            format!("mbuser:x:{uid}:{gid}:MDA test:/nonexistent:/bin/sh\n"),
        )
        .unwrap();
        fs::write(&shadow, format!("mbuser:{hash}:19000:0:99999:7:::\n")).unwrap();
        fs::set_permissions(&shadow, fs::Permissions::from_mode(0o600)).unwrap();
        World {
            dir,
            spool,
            passwd,
            shadow,
            uid,
        }
    }

    fn mbox(&self) -> PathBuf {
        self.spool.join("mbuser")
    }

    /// Writes the mailbox, owned by the user, mode 0600.
    fn write_mbox(&self, data: &[u8]) {
        let p = self.mbox();
        fs::write(&p, data).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        if is_root() {
            std::os::unix::fs::chown(&p, Some(self.uid), Some(self.uid)).unwrap();
        }
    }

    /// Delivers `msg` (starting with a From_ line) with procmail, which
    /// takes the dotlock and an fcntl lock (`:0:`).
    fn procmail(&self, msg: &str) -> Child {
        let rc = self.dir.join("procmailrc");
        fs::write(
            &rc,
            format!(
                "LOGFILE=/dev/null\nLOCKSLEEP=1\n:0:\n{}\n",
                self.mbox().display()
            ),
        )
        .unwrap();
        let mut child = Command::new(tool("procmail", "procmail"))
            .arg("-m")
            .arg(&rc)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(msg.as_bytes())
            .unwrap();
        child
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The server, killed when dropped; its log is kept for failure messages.
struct Server {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl Server {
    fn start(w: &World, env: &[(&str, String)]) -> Server {
        Server::start_with(w, env, &[])
    }

    /// Like `start`, with extra server arguments.
    fn start_with(w: &World, env: &[(&str, String)], extra: &[&str]) -> Server {
        let bin = env!("CARGO_BIN_EXE_pop3d");
        let args = [
            "-D",
            "-F",
            "--listen",
            "127.0.0.1:0",
            "--spool",
            w.spool.to_str().unwrap(),
            "--passwd",
            w.passwd.to_str().unwrap(),
            "--shadow",
            w.shadow.to_str().unwrap(),
            "--log",
            "stderr",
        ];
        let mut cmd = match std::env::var("TEST_EXEC_RUNNER") {
            Ok(runner) if !runner.is_empty() => {
                let mut c = Command::new(runner);
                c.arg(bin);
                c
            }
            _ => Command::new(bin),
        };
        cmd.args(args)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let port = rest
                        .trim()
                        .rsplit(':')
                        .next()
                        .unwrap()
                        .parse::<u16>()
                        .unwrap();
                    let _ = tx.send(port);
                }
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let port = rx
            .recv_timeout(TIMEOUT)
            .unwrap_or_else(|_| panic!("server did not start: {}", log.lock().unwrap()));
        Server { child, port, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn connect(&self) -> Pop3 {
        Pop3::connect(self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("server log:\n{}", self.log());
        }
    }
}

/// A minimal POP3 client.
struct Pop3 {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Pop3 {
    fn connect(port: u16) -> Pop3 {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut p = Pop3 {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        };
        let hello = p.line();
        assert!(hello.starts_with("+OK"), "{hello}");
        p
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).unwrap();
        l.trim_end_matches(['\r', '\n']).to_string()
    }

    fn cmd(&mut self, c: &str) -> String {
        self.w.write_all(format!("{c}\r\n").as_bytes()).unwrap();
        self.line()
    }

    /// Logs in; returns PASS's reply.
    fn login(&mut self) -> String {
        assert!(self.cmd("USER mbuser").starts_with("+OK"));
        self.cmd("PASS pw")
    }

    /// A multi-line reply's body (dot-stuffing undone), or the -ERR line.
    fn multi(&mut self, c: &str) -> Result<Vec<u8>, String> {
        let first = self.cmd(c);
        if !first.starts_with("+OK") {
            return Err(first);
        }
        let mut body = Vec::new();
        loop {
            let mut l = Vec::new();
            self.r.read_until(b'\n', &mut l).unwrap();
            assert!(l.ends_with(b"\r\n"), "unterminated line in {c}: {l:?}");
            if l == b".\r\n" {
                return Ok(body);
            }
            let l = if l.starts_with(b"..") {
                &l[1..]
            } else {
                &l[..]
            };
            body.extend_from_slice(l);
        }
    }

    fn stat(&mut self) -> (usize, u64) {
        let r = self.cmd("STAT");
        let mut it = r.split(' ').skip(1);
        let n = it.next().unwrap().parse().unwrap();
        let b = it.next().unwrap().parse().unwrap();
        (n, b)
    }

    /// Waits for the server to close the connection.
    fn closed(&mut self) {
        let mut rest = Vec::new();
        let _ = self.r.read_to_end(&mut rest);
    }
}

/// A message as the client receives it (CRLF line ends).
fn wire(body: &str) -> Vec<u8> {
    body.replace('\n', "\r\n").into_bytes()
}

fn message(k: usize, body_len: usize) -> String {
    format!(
        "Received: from h{k}\nSubject: message {k}\n\n{}\nend of {k}\n",
        "z".repeat(body_len)
    )
}

/// A procmail-style mailbox of `n` messages.
fn mailbox(n: usize, body_len: usize) -> (Vec<u8>, Vec<String>) {
    let msgs: Vec<String> = (0..n).map(|k| message(k, body_len)).collect();
    let mut data = Vec::new();
    for m in &msgs {
        data.extend_from_slice(FROM.as_bytes());
        data.extend_from_slice(m.as_bytes());
        data.push(b'\n');
    }
    (data, msgs)
}

/// Every message of the mailbox as a new session sees it.
fn all_messages(server: &Server) -> Vec<Vec<u8>> {
    let mut c = server.connect();
    let r = c.login();
    assert!(r.starts_with("+OK"), "{r}\n{}", server.log());
    let (n, _) = c.stat();
    let v = (1..=n)
        .map(|i| c.multi(&format!("RETR {i}")).unwrap())
        .collect();
    assert!(c.cmd("QUIT").starts_with("+OK"));
    v
}

/// Waits (at most [`TIMEOUT`]) for `child` to exit.
fn wait_exit(child: &mut Child, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        assert!(start.elapsed() < TIMEOUT, "{what}: still running");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_ok(mut child: Child, what: &str) {
    let st = wait_exit(&mut child, what);
    assert!(st.success(), "{what}: {st:?}");
}

#[test]
fn procmail_delivers_during_a_session() {
    let w = World::new("session");
    let (data, msgs) = mailbox(5, 100);
    w.write_mbox(&data);
    let server = Server::start(&w, &[]);
    let mut c = server.connect();
    assert!(c.login().starts_with("+OK"));
    assert_eq!(c.stat().0, 5);
    // procmail delivers while the session is open (and idle: not locked).
    let late = format!("{FROM}Subject: late\n\ndelivered during the session\n");
    wait_ok(w.procmail(&late), "procmail");
    // The session keeps its view; what it serves is intact.
    assert_eq!(c.stat().0, 5);
    assert_eq!(c.multi("RETR 5").unwrap(), wire(&msgs[4]));
    assert!(c.cmd("DELE 1").starts_with("+OK"));
    assert!(c.cmd("DELE 3").starts_with("+OK"));
    let q = c.cmd("QUIT");
    assert!(q.starts_with("+OK"), "{q}\n{}", server.log());
    let got = all_messages(&server);
    let mut want: Vec<Vec<u8>> = [1, 3, 4].iter().map(|&i| wire(&msgs[i])).collect();
    want.push(wire("Subject: late\n\ndelivered during the session\n"));
    assert_eq!(got, want);
}

/// procmail delivers while an expunge is in the middle of its compaction:
/// the (debug build) server holds the compaction at its first block while
/// the file `hold` exists, so the delivery certainly overlaps it. procmail
/// must wait for the expunge's locks (nothing it writes may be moved or cut
/// by the compaction), and a session that logs in meanwhile must wait too
/// and then see a consistent mailbox, never a half-compacted one.
#[test]
fn procmail_delivers_during_an_expunge() {
    let w = World::new("expunge");
    // About 16 MB after the first message: the compaction answers QUIT
    // first and moves them after, in 64 KiB journal blocks.
    let (data, msgs) = mailbox(400, 40_000);
    w.write_mbox(&data);
    let hold = w.dir.join("hold");
    let env = [
        ("POP3D_DEBUG_EXPUNGE_HOLD", hold.display().to_string()),
        ("POP3D_DEBUG_JOURNAL_BLOCK", "65536".to_string()),
        // A held dotlock is touched every minute; here every 200 ms.
        ("POP3D_DEBUG_DOTLOCK_REFRESH_MS", "200".to_string()),
    ];
    let server = Server::start(&w, &env);
    let lock = w.spool.join("mbuser.lock");
    let mut want: Vec<Vec<u8>> = msgs.iter().map(|m| wire(m)).collect();
    for round in 0..2 {
        fs::write(&hold, b"").unwrap();
        let size_before = fs::metadata(w.mbox()).unwrap().len();
        let mut c = server.connect();
        assert!(c.login().starts_with("+OK"));
        assert!(c.cmd("DELE 1").starts_with("+OK"));
        want.remove(0);
        let q = c.cmd("QUIT");
        assert!(q.starts_with("+OK"), "{q}\n{}", server.log());
        c.closed();
        // The server holds the dotlock (and its fcntl lock) for the compaction.
        let start = Instant::now();
        while !lock.exists() {
            assert!(start.elapsed() < TIMEOUT, "no dotlock during the expunge");
            std::thread::sleep(Duration::from_millis(5));
        }
        // As if the compaction had run for ten minutes: without its
        // refreshes the lock would now look stale to every MDA.
        let ten_minutes_ago = SystemTime::now() - Duration::from_secs(600);
        fs::File::options()
            .write(true)
            .open(&lock)
            .unwrap()
            .set_modified(ten_minutes_ago)
            .unwrap();
        let late = format!("{FROM}Subject: late {round}\n\nduring the expunge\n");
        let mut pm = w.procmail(&late);
        // A session logging in now waits for the locks as well.
        let port = server.port;
        let reader = std::thread::spawn(move || {
            let mut c = Pop3::connect(port);
            let r = c.login();
            assert!(r.starts_with("+OK"), "{r}");
            let (n, _) = c.stat();
            let got: Vec<Vec<u8>> = (1..=n)
                .map(|i| c.multi(&format!("RETR {i}")).unwrap())
                .collect();
            assert!(c.cmd("QUIT").starts_with("+OK"));
            got
        });
        // procmail retries its lock every second (LOCKSLEEP=1): after two
        // seconds it has tried and must still be waiting, its message
        // nowhere in the file.
        std::thread::sleep(Duration::from_secs(2));
        assert!(
            pm.try_wait().unwrap().is_none(),
            "procmail delivered while the expunge held its locks"
        );
        let age = SystemTime::now()
            .duration_since(fs::metadata(&lock).unwrap().modified().unwrap())
            .unwrap_or_default();
        assert!(
            age < Duration::from_secs(5),
            "the held dotlock was not refreshed: {age:?} old"
        );
        let tag = format!("Subject: late {round}\n");
        let now = fs::read(w.mbox()).unwrap();
        assert!(
            !now.windows(tag.len()).any(|x| x == tag.as_bytes()),
            "round {round}: delivered into the file under compaction"
        );
        assert_eq!(now.len() as u64, size_before, "the compaction did not wait");
        assert!(
            !reader.is_finished(),
            "a login was served during the compaction"
        );
        // Let the compaction go on.
        fs::remove_file(&hold).unwrap();
        wait_ok(pm, "procmail");
        let seen = reader.join().unwrap();
        let late_wire = wire(&format!("Subject: late {round}\n\nduring the expunge\n"));
        // The session ran after the compaction, before or after the delivery.
        let mut with_late = want.clone();
        with_late.push(late_wire.clone());
        assert!(
            seen == want || seen == with_late,
            "round {round}: the waiting session saw {} messages",
            seen.len()
        );
        want.push(late_wire);
    }
    let got = all_messages(&server);
    assert_eq!(got.len(), want.len());
    assert!(
        got == want,
        "messages differ after expunges with deliveries"
    );
}

#[test]
fn a_dotlock_held_over_a_half_written_message_keeps_it_unserved() {
    let w = World::new("dotlock");
    let (data, msgs) = mailbox(3, 50);
    w.write_mbox(&data);
    // Give up on the MDA's dotlock after 2 s (the default waits 10 s).
    let server = Server::start_with(&w, &[], &["--lock-wait", "2"]);
    // A session opened before the delivery starts.
    let mut early = server.connect();
    assert!(early.login().starts_with("+OK"));
    // An MDA takes the dotlock and has written half a message.
    let lock = w.spool.join("mbuser.lock");
    let st = Command::new(tool("dotlockfile", "liblockfile-bin"))
        .args(["-l", "-r", "0"])
        .arg(&lock)
        .status()
        .unwrap();
    assert!(st.success());
    let half = format!("{FROM}Subject: half\n\nthe first half");
    fs::OpenOptions::new()
        .append(true)
        .open(w.mbox())
        .unwrap()
        .write_all(half.as_bytes())
        .unwrap();
    // The open session neither sees nor serves it.
    assert_eq!(early.stat().0, 3);
    assert_eq!(early.multi("RETR 3").unwrap(), wire(&msgs[2]));
    // A new login waits for the lock and then gives up: [IN-USE].
    let mut c = server.connect();
    let r = c.login();
    assert!(r.starts_with("-ERR [IN-USE]"), "{r}\n{}", server.log());
    c.closed();
    // The MDA finishes and lets go.
    fs::OpenOptions::new()
        .append(true)
        .open(w.mbox())
        .unwrap()
        .write_all(b" and the second half\n\n")
        .unwrap();
    let st = Command::new(tool("dotlockfile", "liblockfile-bin"))
        .arg("-u")
        .arg(&lock)
        .status()
        .unwrap();
    assert!(st.success());
    assert!(early.cmd("QUIT").starts_with("+OK"));
    let got = all_messages(&server);
    assert_eq!(got.len(), 4);
    assert_eq!(
        got[3],
        wire("Subject: half\n\nthe first half and the second half\n")
    );
}

#[test]
fn two_sessions_on_one_mailbox_lose_nothing() {
    let w = World::new("two");
    let (data, msgs) = mailbox(6, 200);
    w.write_mbox(&data);
    let server = Server::start(&w, &[]);
    let mut a = server.connect();
    let mut b = server.connect();
    assert!(a.login().starts_with("+OK"));
    // No lock is held between commands, so the second session gets in too,
    // with the same view.
    let rb = b.login();
    assert!(rb.starts_with("+OK"), "{rb}");
    assert_eq!(a.stat(), b.stat());
    assert_eq!(b.multi("RETR 2").unwrap(), wire(&msgs[1]));
    assert!(a.cmd("DELE 2").starts_with("+OK"));
    assert!(a.cmd("QUIT").starts_with("+OK"));
    // B's view is stale now: it must never serve wrong bytes, and its
    // deletions must not rewrite the changed file.
    assert!(b.cmd("DELE 1").starts_with("+OK"));
    let r = b.cmd("RETR 3");
    assert!(
        r.starts_with("-ERR [SYS/TEMP] mailbox changed by another program"),
        "{r}"
    );
    b.closed();
    let got = all_messages(&server);
    let want: Vec<Vec<u8>> = [0, 2, 3, 4, 5].iter().map(|&i| wire(&msgs[i])).collect();
    assert_eq!(got, want);
}

#[test]
fn a_server_killed_during_an_expunge_finishes_it_at_the_next_login() {
    let w = World::new("killed");
    let (data, msgs) = mailbox(60, 3_000);
    let size = data.len() as u64;
    // Bytes into the expunge at which the (debug build) server aborts.
    for (k, at) in [0, 90, 1_000, size / 3, size, 2 * size + 500, 3 * size]
        .into_iter()
        .enumerate()
    {
        w.write_mbox(&data);
        let env = [
            ("POP3D_FAULT_EXPUNGE_AT", at.to_string()),
            ("POP3D_DEBUG_JOURNAL_BLOCK", "65536".to_string()),
        ];
        {
            let mut server = Server::start(&w, &env);
            let mut c = server.connect();
            assert!(c.login().starts_with("+OK"));
            for i in [1, 2, 30, 60] {
                assert!(c.cmd(&format!("DELE {i}")).starts_with("+OK"));
            }
            c.w.write_all(b"QUIT\r\n").unwrap();
            c.closed();
            // Staging and moving the kept data writes more than the file's
            // size: a fault up to there certainly strikes.
            if at <= size {
                let st = wait_exit(&mut server.child, &format!("fault at byte {at}"));
                assert!(!st.success(), "fault at byte {at}: {st:?}");
            }
        }
        let server = Server::start(&w, &[]);
        let got = all_messages(&server);
        let kept: Vec<Vec<u8>> = (0..60)
            .filter(|i| ![0, 1, 29, 59].contains(i))
            .map(|i| wire(&msgs[i]))
            .collect();
        let all: Vec<Vec<u8>> = msgs.iter().map(|m| wire(m)).collect();
        assert!(
            got == kept || got == all,
            "fault {k} at byte {at}: {} messages\n{}",
            got.len(),
            server.log()
        );
        let name = w.mbox().file_name().unwrap().to_string_lossy().into_owned();
        assert!(!w.spool.join(format!(".{name}.pop3d-journal")).exists());
    }
}

/// A QUIT answered before its long compaction (the journal was durable, so
/// the deletion was promised) keeps that promise when the server dies during
/// the compaction after the answer: the next login finishes it, and exactly
/// the kept messages are there, never the deleted one again.
#[test]
fn a_quit_answered_before_its_compaction_is_kept_after_a_kill() {
    let w = World::new("early");
    // About 12 MB after the first message: moved after the answer.
    let (data, msgs) = mailbox(300, 40_000);
    let size = data.len() as u64;
    for at in [size / 4, size / 2, 3 * size / 4] {
        w.write_mbox(&data);
        {
            let env = [("POP3D_FAULT_EXPUNGE_AT", at.to_string())];
            let mut server = Server::start(&w, &env);
            let mut c = server.connect();
            assert!(c.login().starts_with("+OK"));
            assert!(c.cmd("DELE 1").starts_with("+OK"));
            let q = c.cmd("QUIT");
            assert!(q.starts_with("+OK"), "{q}\n{}", server.log());
            c.closed();
            // The fault, after the answer, in the compaction.
            let st = wait_exit(&mut server.child, &format!("fault at byte {at}"));
            assert!(!st.success(), "{st:?}\n{}", server.log());
        }
        let server = Server::start(&w, &[]);
        let got = all_messages(&server);
        let kept: Vec<Vec<u8>> = msgs[1..].iter().map(|m| wire(m)).collect();
        assert!(
            got == kept,
            "fault at byte {at}: {} messages\n{}",
            got.len(),
            server.log()
        );
        let name = w.mbox().file_name().unwrap().to_string_lossy().into_owned();
        assert!(!w.spool.join(format!(".{name}.pop3d-journal")).exists());
    }
}

/// The body length of soak message `k`: mostly a few KB, every tenth
/// 70 KB (a compaction of more than one journal block).
fn soak_len(k: usize) -> usize {
    if k % 10 == 9 {
        70_000
    } else {
        (k * 7919) % 6000
    }
}

/// The number `k` of a soak message, from its headers.
fn soak_number(top: &[u8]) -> usize {
    let text = String::from_utf8_lossy(top);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("Subject: message "))
        .unwrap_or_else(|| panic!("no subject in {text:?}"));
    line.trim().parse().unwrap()
}

/// What one client's sessions did.
#[derive(Default)]
struct SoakLog {
    /// Message numbers deleted by each session whose QUIT said +OK.
    deleted: Vec<Vec<usize>>,
    /// Sessions that deleted nothing: QUIT refused, RSET, dropped, or the
    /// session ended by a change under it.
    undone: usize,
}

/// One client's sessions against the busy mailbox, until `done` and at least
/// `sessions` of them: each logs in, marks up to two random messages (identified by their headers) for deletion,
/// checks one random message whole, and ends with QUIT, RSET and QUIT, or
/// a dropped connection.
fn soak_client(port: u16, seed: u64, sessions: usize, done: &AtomicBool) -> SoakLog {
    let mut rng = Rng(seed);
    let mut log = SoakLog::default();
    let temp = |r: &str| r.starts_with("-ERR [SYS/TEMP]") || r.starts_with("-ERR [IN-USE]");
    let mut count = 0;
    'session: while count < sessions || !done.load(Ordering::Relaxed) {
        count += 1;
        std::thread::sleep(Duration::from_millis(10 + rng.below(100)));
        let mut c = Pop3::connect(port);
        let r = c.login();
        if !r.starts_with("+OK") {
            assert!(temp(&r), "PASS: {r}");
            log.undone += 1;
            continue;
        }
        let (n, _) = c.stat();
        let mut marked = Vec::new();
        let marks = if n == 0 {
            0
        } else {
            [0, 0, 1, 2][rng.below(4) as usize]
        };
        for _ in 0..marks {
            let i = 1 + rng.below(n as u64);
            let k = match c.multi(&format!("TOP {i} 0")) {
                Ok(top) => soak_number(&top),
                Err(r) if temp(&r) => {
                    log.undone += 1;
                    continue 'session;
                }
                Err(r) if r.contains("deleted") => continue,
                Err(r) => panic!("TOP {i} 0: {r}"),
            };
            let r = c.cmd(&format!("DELE {i}"));
            assert!(r.starts_with("+OK"), "DELE {i}: {r}");
            marked.push(k);
        }
        if n > 0 {
            let i = 1 + rng.below(n as u64);
            match c.multi(&format!("RETR {i}")) {
                Ok(m) => {
                    let k = soak_number(&m);
                    assert_eq!(m, wire(&message(k, soak_len(k))), "RETR {i}");
                }
                Err(r) if temp(&r) => {
                    log.undone += 1;
                    continue 'session;
                }
                Err(r) => assert!(r.contains("deleted"), "RETR {i}: {r}"),
            }
        }
        match rng.below(6) {
            0 => {
                log.undone += 1;
                continue;
            }
            1 => {
                assert!(c.cmd("RSET").starts_with("+OK"));
                marked.clear();
            }
            _ => {}
        }
        let q = c.cmd("QUIT");
        if q.starts_with("+OK") {
            if marked.is_empty() {
                log.undone += 1;
            } else {
                log.deleted.push(marked);
            }
        } else {
            assert!(temp(&q), "QUIT: {q}");
            log.undone += 1;
        }
    }
    log
}

/// A busy mailbox: procmail delivers 16 messages one after another while
/// two clients run sessions that read, delete, reset and drop at random,
/// their expunges racing each other and the deliveries. At the end the
/// mailbox holds exactly the initial and delivered messages, in order,
/// minus those deleted by sessions whose QUIT said +OK: nothing lost,
/// nothing doubled, no message deleted twice, every message whole.
///
/// Most deliveries take a second here: procmail writes the first byte,
/// and when the mailbox was read in the same second (as it is, by the
/// sessions) it sleeps a second before the rest, so that mail readers
/// notice new mail, holding its locks; the logins meanwhile wait.
#[test]
fn a_busy_mailbox_loses_and_doubles_nothing() {
    let w = World::new("soak");
    let first = 30;
    let delivered = 16;
    let mut data = Vec::new();
    for k in 0..first {
        data.extend_from_slice(FROM.as_bytes());
        data.extend_from_slice(message(k, soak_len(k)).as_bytes());
        data.push(b'\n');
    }
    w.write_mbox(&data);
    let env = [("POP3D_DEBUG_JOURNAL_BLOCK", "65536".to_string())];
    // Sessions end at once; none should count against the limits after.
    let server = Server::start_with(&w, &env, &["--min-delay", "0"]);
    let port = server.port;
    let done = AtomicBool::new(false);
    let (a, b) = std::thread::scope(|s| {
        let deliverer = s.spawn(|| {
            for k in first..first + delivered {
                let msg = format!("{FROM}{}", message(k, soak_len(k)));
                wait_ok(w.procmail(&msg), &format!("procmail of message {k}"));
                std::thread::sleep(Duration::from_millis(10));
            }
            done.store(true, Ordering::Relaxed);
        });
        let a = s.spawn(|| soak_client(port, 0x50a4_0001, 40, &done));
        let b = s.spawn(|| soak_client(port, 0x50a4_0002, 40, &done));
        deliverer.join().unwrap();
        (a.join().unwrap(), b.join().unwrap())
    });
    let mut gone = Vec::new();
    for set in a.deleted.iter().chain(&b.deleted) {
        for &k in set {
            assert!(!gone.contains(&k), "message {k} deleted twice");
            gone.push(k);
        }
    }
    let want: Vec<Vec<u8>> = (0..first + delivered)
        .filter(|k| !gone.contains(k))
        .map(|k| wire(&message(k, soak_len(k))))
        .collect();
    let got = all_messages(&server);
    let numbers: Vec<usize> = got.iter().map(|m| soak_number(m)).collect();
    assert!(
        got == want,
        "{} messages, {} wanted; got {numbers:?} with {gone:?} deleted\n{}",
        got.len(),
        want.len(),
        server.log()
    );
    let expunges = a.deleted.len() + b.deleted.len();
    assert!(
        expunges >= 10,
        "only {expunges} deleting sessions ({} + {} undone)",
        a.undone,
        b.undone
    );
}
