//! Small helpers shared by the `auth_*` integration tests: a temporary world
//! (spool, passwd, shadow, users files), the real `pop3d` binary started as a
//! daemon on a free loopback port (through `$TEST_EXEC_RUNNER` when set, for
//! qemu), its stderr log collected, and a line-based POP3 client.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The exact reply to every refused login.
pub const REFUSED: &str = "-ERR [AUTH] Authentication failed";

/// How long to wait for the server to bind (qemu can be slow).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Read timeout on client sockets.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The effective uid of this process (the owner of a file it creates), from
/// the second field of the `Uid:` line of /proc/self/status.
pub fn own_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
        .expect("an effective uid in /proc/self/status")
}

/// A temporary directory with a spool, removed on drop.
pub struct World {
    pub dir: PathBuf,
    /// The uid (and gid) accounts get: our own when not root, 4242 as root
    /// (the server never serves uid 0 and, unprivileged, only its own uid).
    pub uid: u32,
}

impl World {
    pub fn new(name: &str) -> World {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pop3d-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("spool")).unwrap();
        let me = own_uid();
        let uid = if me == 0 { 4242 } else { me };
        if me == 0 {
            std::os::unix::fs::chown(dir.join("spool"), Some(uid), Some(uid)).unwrap();
        }
        World { dir, uid }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// A mailbox with `count` small messages for `user`, owned by `uid`.
    pub fn mailbox(&self, user: &str, count: usize, uid: u32) {
        let mut text = String::new();
        for i in 0..count {
            text.push_str(&format!(
                "From sender@example.org Mon Jan  1 00:00:00 2024\nSubject: {i}\n\nbody {i}\n\n"
            ));
        }
        let p = self.path("spool").join(user);
        std::fs::write(&p, text).unwrap();
        if own_uid() == 0 {
            std::os::unix::fs::chown(&p, Some(uid), Some(uid)).unwrap();
        }
    }

    /// A passwd line for `user` with this world's uid.
    pub fn passwd_line(&self, user: &str) -> String {
        format!("{user}:x:{0}:{0}:{user}:/home/{user}:/bin/sh\n", self.uid)
    }

    /// The standard daemon arguments for this world's files.
    pub fn args(&self) -> Vec<String> {
        [
            "-D",
            "-F",
            "--listen",
            "127.0.0.1:0",
            "--log",
            "stderr",
            "--spool",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([self.path("spool").display().to_string()])
        .collect()
    }

    /// `args()` plus passwd and shadow.
    pub fn system_args(&self) -> Vec<String> {
        let mut a = self.args();
        a.push("--passwd".into());
        a.push(self.path("passwd").display().to_string());
        a.push("--shadow".into());
        a.push(self.path("shadow").display().to_string());
        a
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The command that runs the built binary, through `$TEST_EXEC_RUNNER` if set.
pub fn pop3d_command() -> Command {
    let bin = env!("CARGO_BIN_EXE_pop3d");
    match std::env::var("TEST_EXEC_RUNNER") {
        Ok(runner) if !runner.is_empty() => {
            let mut c = Command::new(runner);
            c.arg(bin);
            c
        }
        _ => Command::new(bin),
    }
}

/// A running daemon, killed on drop.
pub struct Server {
    child: Child,
    pub port: u16,
    log: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts the daemon with `args` and waits for its `listening on` line.
    pub fn start(args: &[String]) -> Server {
        let mut child = pop3d_command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pop3d");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut line = String::new();
            while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let mut server = Server {
            child,
            port: 0,
            log,
            reader: Some(reader),
        };
        let start = Instant::now();
        loop {
            let text = server.log();
            if let Some(port) = text
                .lines()
                .find_map(|l| l.split("listening on 127.0.0.1:").nth(1))
                .and_then(|p| p.trim().parse().ok())
            {
                server.port = port;
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("pop3d exited ({status}) before listening:\n{text}");
            }
            assert!(
                start.elapsed() < START_TIMEOUT,
                "pop3d did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle` `times` times (logs are written
    /// after replies, so a test may need to wait a little).
    pub fn wait_log(&self, needle: &str, times: usize) -> String {
        let start = Instant::now();
        loop {
            let text = self.log();
            if text.matches(needle).count() >= times || start.elapsed() > START_TIMEOUT {
                return text;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the daemon and returns its whole log.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.log()
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary to completion (for start-up failures): exit success and
/// stderr.
pub fn run_to_end(args: &[String]) -> (bool, String) {
    let out = pop3d_command()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run pop3d");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A POP3 client speaking lines.
pub struct Client {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        let mut c = Client { stream, reader };
        assert_eq!(c.line().as_deref(), Some("+OK pop3d ready"));
        c
    }

    /// Sends one command line.
    pub fn send(&mut self, line: &str) {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
    }

    /// Reads one reply line without CRLF; `None` at end of stream.
    pub fn line(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        match self.reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                while buf.last().is_some_and(|&c| c == b'\n' || c == b'\r') {
                    buf.pop();
                }
                Some(String::from_utf8_lossy(&buf).into_owned())
            }
        }
    }

    /// Sends `line` and returns the one-line reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(line);
        self.line().expect("reply")
    }

    /// Reads a multi-line reply body up to the terminating ".".
    pub fn body(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(l) = self.line() {
            if l == "." {
                break;
            }
            out.push(l);
        }
        out
    }

    /// USER and PASS; the reply to PASS.
    pub fn login(&mut self, user: &str, pass: &str) -> String {
        let r = self.cmd(&format!("USER {user}"));
        assert_eq!(r, "+OK send PASS", "USER {user}");
        self.cmd(&format!("PASS {pass}"))
    }

    /// True when the server has closed the connection.
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.reader.read(&mut b), Ok(0) | Err(_))
    }

    pub fn quit(mut self) {
        let _ = self.cmd("QUIT");
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// Base64 (RFC 4648) for AUTH PLAIN.
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((v >> (18 - 6 * i)) & 0x3f) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Removes `path` if it exists.
pub fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}
