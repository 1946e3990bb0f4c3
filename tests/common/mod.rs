//! Shared fixtures for the integration tests: spawning the real `pop3d` binary
//! (wrapped in `$TEST_EXEC_RUNNER` when set, e.g. qemu for aarch64), a "world"
//! of temporary passwd/shadow/spool files with hashes made by `mkpasswd`, an
//! mbox builder that remembers each message's exact data, and a small POP3
//! client over TCP or a Unix socket that undoes dot-stuffing.
//!
//! Every test builds its own world in its own temporary directory and starts
//! its own server on its own port, so tests run in parallel without sharing
//! anything. Servers are killed when their guard is dropped, and their log is
//! printed if the test is failing.

#![allow(dead_code)]

use std::ffi::OsString;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

/// How long any single reply may take. Generous: the binary may run under
/// qemu, and password hashing in a debug build is slow.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server may take to print its "listening on" line.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The From_ line every fixture message starts with.
pub const FROM_LINE: &[u8] = b"From sender@example.org Mon Jan  1 00:00:00 2024\n";

// ---------------------------------------------------------------------------
// Environment: tools, root, the binary.

/// Panics (the test fails) unless `tool` is on PATH, naming the Debian
/// package that provides it. Returns the full path.
pub fn require_tool(tool: &str, debian_package: &str) -> PathBuf {
    match find_in_path(tool) {
        Some(p) => p,
        None => panic!(
            "`{tool}` is not installed but this test needs it: \
             install the Debian package `{debian_package}` (apt-get install {debian_package})"
        ),
    }
}

/// The first executable called `name` on PATH (or `name` itself if it has a slash).
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The effective uid of this test process (owner of `/proc/self`).
pub fn my_uid() -> u32 {
    fs::metadata("/proc/self").expect("stat /proc/self").uid()
}

/// The effective gid of this test process.
pub fn my_gid() -> u32 {
    fs::metadata("/proc/self").expect("stat /proc/self").gid()
}

pub fn is_root() -> bool {
    my_uid() == 0
}

/// For tests that need real uids. Returns true when running as root. When not
/// root the test fails, unless `POP3D_TEST_NONROOT=1` is set, in which case it
/// prints a SKIPPED line and the caller must return.
pub fn require_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    if std::env::var("POP3D_TEST_NONROOT").as_deref() == Ok("1") {
        // Straight to stderr, past the test harness's output capture, so the
        // skip shows in every run.
        let _ = writeln!(
            io::stderr(),
            "SKIPPED: {test} needs root (POP3D_TEST_NONROOT=1 is set)"
        );
        return false;
    }
    panic!(
        "{test} needs root (real uids, chown, privilege dropping); run the suite as root, \
         or set POP3D_TEST_NONROOT=1 to skip the root-only tests explicitly"
    );
}

/// Path of the binary under test.
pub fn pop3d_bin() -> &'static str {
    env!("CARGO_BIN_EXE_pop3d")
}

/// The runner prefix from `TEST_EXEC_RUNNER` (split on whitespace), if any.
pub fn exec_runner() -> Option<Vec<String>> {
    let r = std::env::var("TEST_EXEC_RUNNER").ok()?;
    let parts: Vec<String> = r.split_whitespace().map(str::to_owned).collect();
    (!parts.is_empty()).then_some(parts)
}

/// A `Command` that runs the pop3d binary, through `$TEST_EXEC_RUNNER` when
/// that is set and non-empty (e.g. `qemu-aarch64-static`). This is the only
/// place the binary is started from; add arguments and stdio to it.
pub fn pop3d_command() -> Command {
    let mut cmd = match exec_runner() {
        Some(parts) => {
            let mut c = Command::new(&parts[0]);
            c.args(&parts[1..]);
            c.arg(pop3d_bin());
            c
        }
        None => Command::new(pop3d_bin()),
    };
    // Its own process group, so the guard can kill the server and anything it forked.
    cmd.process_group(0);
    cmd
}

// ---------------------------------------------------------------------------
// Temporary directories.

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// `temp_dir()/pop3d-test-<pid>-<counter>`, removed on drop (kept when
/// `POP3D_TEST_KEEP=1`, for debugging).
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new() -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("pop3d-test-{}-{n}", std::process::id()));
        if path.exists() {
            fs::remove_dir_all(&path).expect("remove stale temp dir");
        }
        fs::create_dir_all(&path).expect("create temp dir");
        // Traversable by the unprivileged test users when we run as root.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
        TempDir { path }
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var("POP3D_TEST_KEEP").as_deref() == Ok("1") {
            eprintln!("keeping {}", self.path.display());
            return;
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------
// The world: passwd, shadow, spool.

/// A test account.
#[derive(Clone, Debug)]
pub struct Account {
    pub name: String,
    pub pass: String,
    pub uid: u32,
    pub gid: u32,
}

/// A temporary directory with `passwd`, `shadow` and `spool/`.
///
/// Accounts get uid 4242, 4243, ... when the tests run as root, and the test
/// process's own uid otherwise (a server that is not root serves only its
/// own uid). Mailboxes are mode 0600 and owned by their account.
pub struct World {
    pub dir: TempDir,
    pub spool: PathBuf,
    pub passwd: PathBuf,
    pub shadow: PathBuf,
    next_uid: u32,
    accounts: Vec<Account>,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    pub fn new() -> World {
        let dir = TempDir::new();
        let spool = dir.join("spool");
        fs::create_dir(&spool).expect("create spool");
        // Like a world-writable sticky /var/mail: the users may create dot-locks
        // there whatever way the server takes them.
        fs::set_permissions(&spool, fs::Permissions::from_mode(0o1777)).expect("chmod spool");
        let passwd = dir.join("passwd");
        let shadow = dir.join("shadow");
        fs::write(&passwd, "").expect("write passwd");
        fs::write(&shadow, "").expect("write shadow");
        fs::set_permissions(&shadow, fs::Permissions::from_mode(0o600)).expect("chmod shadow");
        World {
            dir,
            spool,
            passwd,
            shadow,
            next_uid: 4242,
            accounts: Vec::new(),
        }
    }

    fn alloc_ids(&mut self) -> (u32, u32) {
        if is_root() {
            let uid = self.next_uid;
            self.next_uid += 1;
            (uid, uid)
        } else {
            (my_uid(), my_gid())
        }
    }

    /// Adds an account with a yescrypt hash of `pass`.
    pub fn user(&mut self, name: &str, pass: &str) -> Account {
        self.user_with_scheme(name, pass, "yescrypt")
    }

    /// Adds an account whose shadow hash is made now by `mkpasswd -m scheme`.
    pub fn user_with_scheme(&mut self, name: &str, pass: &str, scheme: &str) -> Account {
        let hash = mkpasswd(scheme, pass);
        let (uid, gid) = self.alloc_ids();
        self.add_entry(name, pass, uid, gid, &hash)
    }

    /// Adds an account with a raw shadow hash field (e.g. `!$y$...` or empty)
    /// and a given uid, or the usual one when `uid` is `None`.
    pub fn user_with_hash(
        &mut self,
        name: &str,
        pass: &str,
        hash: &str,
        uid: Option<u32>,
    ) -> Account {
        let (uid, gid) = match uid {
            Some(u) => (u, u),
            None => self.alloc_ids(),
        };
        self.add_entry(name, pass, uid, gid, hash)
    }

    fn add_entry(&mut self, name: &str, pass: &str, uid: u32, gid: u32, hash: &str) -> Account {
        let home = self.dir.join("home").join(name);
        append(
            &self.passwd,
            format!(
                "{name}:x:{uid}:{gid}:Test {name}:{}:/bin/sh\n",
                home.display()
            )
            .as_bytes(),
        );
        append(
            &self.shadow,
            format!("{name}:{hash}:19700:0:99999:7:::\n").as_bytes(),
        );
        let a = Account {
            name: name.to_owned(),
            pass: pass.to_owned(),
            uid,
            gid,
        };
        self.accounts.push(a.clone());
        a
    }

    pub fn mailbox(&self, name: &str) -> PathBuf {
        self.spool.join(name)
    }

    /// Writes `name`'s mailbox: mode 0600, owned by the account when root.
    pub fn write_mailbox(&self, account: &Account, bytes: &[u8]) -> PathBuf {
        let path = self.mailbox(&account.name);
        fs::write(&path, bytes).expect("write mailbox");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod mailbox");
        if is_root() {
            std::os::unix::fs::chown(&path, Some(account.uid), Some(account.gid))
                .expect("chown mailbox");
        }
        path
    }

    /// `--spool S --passwd P --shadow SH --log stderr`.
    pub fn args(&self) -> Vec<OsString> {
        vec![
            "--spool".into(),
            self.spool.clone().into(),
            "--passwd".into(),
            self.passwd.clone().into(),
            "--shadow".into(),
            self.shadow.clone().into(),
            "--log".into(),
            "stderr".into(),
            // Failed logins are answered at once here; the delay itself has
            // its own tests.
            "--fail-delay".into(),
            "0".into(),
        ]
    }

    /// Starts `pop3d -D -F --listen 127.0.0.1:0 <world args> <extra>` and
    /// waits for its "listening on" line.
    pub fn daemon(&self, extra: &[&str]) -> Daemon {
        self.daemon_env(extra, &[])
    }

    /// [`World::daemon`] with variables added to its environment.
    pub fn daemon_env(&self, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let mut cmd = pop3d_command();
        cmd.args(["-D", "-F", "--listen", "127.0.0.1:0"])
            .args(self.args())
            .args(extra)
            .envs(env.iter().copied());
        Daemon::start(cmd)
    }

    /// Starts pop3d in inetd mode with one end of a socketpair as its stdin
    /// and stdout; returns the guard and a client on the other end (the
    /// greeting not yet read).
    pub fn inetd(&self, extra: &[&str]) -> (Inetd, Pop3) {
        let mut cmd = pop3d_command();
        cmd.args(self.args()).args(extra);
        Inetd::start(cmd)
    }
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    f.write_all(bytes).expect("append");
}

/// Runs `mkpasswd -m scheme pass` (Debian package whois) and returns the hash.
pub fn mkpasswd(scheme: &str, pass: &str) -> String {
    let tool = require_tool("mkpasswd", "whois");
    let out = Command::new(tool)
        .args(["-m", scheme, pass])
        .stdin(Stdio::null())
        .output()
        .expect("run mkpasswd");
    assert!(
        out.status.success(),
        "mkpasswd -m {scheme} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hash = String::from_utf8(out.stdout).expect("mkpasswd output is UTF-8");
    let hash = hash.trim().to_owned();
    assert!(
        hash.starts_with('$') && !hash.contains(':'),
        "unexpected mkpasswd output: {hash:?}"
    );
    hash
}

// ---------------------------------------------------------------------------
// Server guards.

type SharedLog = Arc<Mutex<Vec<String>>>;

/// Reads the child's stderr line by line into `log`; each line is also sent
/// on the returned channel (ignored once nobody listens).
fn spawn_log_reader(stderr: impl Read + Send + 'static, log: SharedLog) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut r = BufReader::new(stderr);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                    log.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            }
        }
    });
    rx
}

fn kill_group(child: &mut Child) {
    // The server runs in its own process group (see pop3d_command): kill it and
    // everything it forked, then reap the direct child.
    let pgid = child.id();
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

fn dump_log(what: &str, log: &SharedLog) {
    let lines = log.lock().map(|l| l.clone()).unwrap_or_default();
    eprintln!("---- {what} log ({} lines) ----", lines.len());
    for l in lines {
        eprintln!("{l}");
    }
    eprintln!("---- end of {what} log ----");
}

/// A standalone server (`-D -F`), killed on drop.
pub struct Daemon {
    child: Child,
    pub addr: SocketAddr,
    log: SharedLog,
}

impl Daemon {
    /// Spawns `cmd` (stdin null, stderr captured) and waits for
    /// "listening on <ip:port>" on stderr.
    pub fn start(mut cmd: Command) -> Daemon {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn pop3d");
        let log: SharedLog = Arc::default();
        let rx = spawn_log_reader(child.stderr.take().unwrap(), log.clone());
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.split("listening on ").nth(1) {
                        let addr: SocketAddr = rest
                            .trim()
                            .parse()
                            .unwrap_or_else(|e| panic!("bad address in log line {line:?}: {e}"));
                        break addr;
                    }
                }
                Err(e) => {
                    let why = match e {
                        mpsc::RecvTimeoutError::Timeout => format!("within {START_TIMEOUT:?}"),
                        mpsc::RecvTimeoutError::Disconnected => "before closing its stderr".into(),
                    };
                    // Give an exiting server a moment so its status can be shown.
                    thread::sleep(Duration::from_millis(100));
                    let status = child.try_wait().ok().flatten();
                    dump_log("pop3d", &log);
                    kill_group(&mut child);
                    panic!(
                        "pop3d did not print \"listening on ADDR\" on stderr {why} \
                         (exit status: {status:?})"
                    );
                }
            }
        };
        Daemon { child, addr, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Connects and reads the greeting, which must start with "+OK".
    pub fn connect(&self) -> Pop3 {
        let mut p = self.connect_raw();
        p.greeting();
        p
    }

    /// Connects without reading anything.
    pub fn connect_raw(&self) -> Pop3 {
        let s = TcpStream::connect(self.addr)
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.addr));
        Pop3::new(Conn::Tcp(s))
    }

    /// The server's stderr so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Is the server process still running?
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if thread::panicking() {
            dump_log("pop3d (standalone)", &self.log);
        }
        kill_group(&mut self.child);
    }
}

/// An inetd-mode server on a socketpair, killed on drop.
pub struct Inetd {
    child: Child,
    log: SharedLog,
    exited: Option<ExitStatus>,
}

impl Inetd {
    pub fn start(mut cmd: Command) -> (Inetd, Pop3) {
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        let theirs_out = theirs.try_clone().expect("dup socket");
        cmd.stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::from(OwnedFd::from(theirs_out)))
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn pop3d (inetd mode)");
        // The server's ends live in `cmd`: drop it so only the child holds them
        // and we see EOF when the child is gone.
        drop(cmd);
        let log: SharedLog = Arc::default();
        let _rx = spawn_log_reader(child.stderr.take().unwrap(), log.clone());
        (
            Inetd {
                child,
                log,
                exited: None,
            },
            Pop3::new(Conn::Unix(ours)),
        )
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the server to exit on its own (failing after `timeout`).
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(s) = self.exited {
            return s;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                self.exited = Some(s);
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "inetd-mode pop3d did not exit within {timeout:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until a log line satisfies `pred` and returns it; `None` after
    /// `timeout`.
    pub fn wait_log(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        wait_line(|| self.log(), timeout, pred)
    }
}

/// Polls `log` until a line satisfies `pred` (the log is read by another
/// thread, a little behind the server); `None` after `timeout`.
fn wait_line(
    log: impl Fn() -> Vec<String>,
    timeout: Duration,
    pred: impl Fn(&str) -> bool,
) -> Option<String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(l) = log().into_iter().find(|l| pred(l)) {
            return Some(l);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Inetd {
    fn drop(&mut self) {
        if thread::panicking() {
            dump_log("pop3d (inetd)", &self.log);
        }
        if self.exited.is_none() {
            kill_group(&mut self.child);
        }
    }
}

// ---------------------------------------------------------------------------
// POP3 client.

pub enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.write(buf),
            Conn::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Conn {
    fn set_read_timeout(&self, t: Duration) {
        match self {
            Conn::Tcp(s) => s.set_read_timeout(Some(t)),
            Conn::Unix(s) => s.set_read_timeout(Some(t)),
        }
        .expect("set_read_timeout");
    }
}

/// A multi-line reply body with dot-stuffing undone.
#[derive(Debug, Clone)]
pub struct Multi {
    /// The lines, without their CRLF and with one leading `.` removed where
    /// the server had doubled it.
    pub lines: Vec<Vec<u8>>,
    /// Octets of the body as sent before the terminating "." line, with
    /// dot-stuffing undone and CRLF counted as 2 (what LIST must report).
    pub octets: u64,
}

impl Multi {
    /// The body with CRLF turned into LF (every line ends with LF).
    pub fn data(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.octets as usize);
        for l in &self.lines {
            v.extend_from_slice(l);
            v.push(b'\n');
        }
        v
    }

    /// The lines as (lossy) strings.
    pub fn text(&self) -> Vec<String> {
        self.lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    }
}

/// A line-oriented POP3 client with read timeouts.
pub struct Pop3 {
    r: BufReader<Conn>,
    last: String,
}

impl Pop3 {
    pub fn new(c: Conn) -> Pop3 {
        c.set_read_timeout(REPLY_TIMEOUT);
        Pop3 {
            r: BufReader::with_capacity(64 * 1024, c),
            last: "(greeting)".into(),
        }
    }

    pub fn set_read_timeout(&mut self, t: Duration) {
        self.r.get_ref().set_read_timeout(t);
    }

    /// Names what the next read waits for, for failure messages.
    pub fn expecting(&mut self, what: &str) {
        self.last = what.to_owned();
    }

    /// Reads one line including its terminator; `None` on EOF (or a reset).
    /// Panics on a timeout.
    pub fn read_raw_line(&mut self) -> Option<Vec<u8>> {
        let mut buf = Vec::new();
        match self.r.read_until(b'\n', &mut buf) {
            Ok(0) => None,
            Ok(_) => Some(buf),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => None,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                panic!("timed out waiting for the reply to {:?}", self.last)
            }
            Err(e) => panic!("read error after {:?}: {e}", self.last),
        }
    }

    /// Reads one CRLF-terminated line and returns it without the CRLF.
    pub fn read_line_bytes(&mut self) -> Vec<u8> {
        let mut l = self.read_raw_line().unwrap_or_else(|| {
            panic!(
                "connection closed while waiting for the reply to {:?}",
                self.last
            )
        });
        assert!(
            l.ends_with(b"\r\n"),
            "reply line to {:?} does not end with CRLF: {:?}",
            self.last,
            String::from_utf8_lossy(&l)
        );
        l.truncate(l.len() - 2);
        l
    }

    /// Reads a single-line reply as a string.
    pub fn read_line(&mut self) -> String {
        let l = self.read_line_bytes();
        String::from_utf8(l)
            .unwrap_or_else(|e| panic!("reply to {:?} is not UTF-8: {e}", self.last))
    }

    /// Reads the greeting and checks it starts with "+OK".
    pub fn greeting(&mut self) -> String {
        self.last = "(greeting)".into();
        let g = self.read_line();
        assert!(is_ok(&g), "greeting is not +OK: {g:?}");
        g
    }

    /// Sends `line` followed by CRLF.
    pub fn send(&mut self, line: &str) {
        let mut b = line.as_bytes().to_vec();
        b.extend_from_slice(b"\r\n");
        self.send_raw(&b);
        self.last = line.to_owned();
    }

    /// Sends bytes as they are.
    pub fn send_raw(&mut self, b: &[u8]) {
        self.last = String::from_utf8_lossy(b).into_owned();
        self.r
            .get_mut()
            .write_all(b)
            .unwrap_or_else(|e| panic!("write {:?}: {e}", self.last));
    }

    /// Sends a command and returns the single-line reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(line);
        self.read_line()
    }

    /// Sends a command whose reply must start with "+OK"; returns the reply.
    pub fn ok(&mut self, line: &str) -> String {
        let r = self.cmd(line);
        assert!(is_ok(&r), "expected +OK to {line:?}, got {r:?}");
        r
    }

    /// Sends a command whose reply must start with "-ERR"; returns the reply.
    pub fn err(&mut self, line: &str) -> String {
        let r = self.cmd(line);
        assert!(is_err(&r), "expected -ERR to {line:?}, got {r:?}");
        r
    }

    /// Sends a command with a multi-line "+OK" reply; returns (first line, body).
    pub fn multi(&mut self, line: &str) -> (String, Multi) {
        let first = self.ok(line);
        let body = self.read_body();
        (first, body)
    }

    /// Reads a multi-line body up to and including the "." line.
    pub fn read_body(&mut self) -> Multi {
        let mut lines = Vec::new();
        let mut octets = 0u64;
        loop {
            let l = self.read_line_bytes();
            if l == b"." {
                break;
            }
            let l = if l.first() == Some(&b'.') {
                assert!(
                    l.starts_with(b".."),
                    "line in the reply to {:?} starts with a single '.' (not dot-stuffed): {:?}",
                    self.last,
                    String::from_utf8_lossy(&l)
                );
                l[1..].to_vec()
            } else {
                l
            };
            octets += l.len() as u64 + 2;
            lines.push(l);
        }
        Multi { lines, octets }
    }

    /// USER + PASS, both must be +OK; returns the PASS reply.
    pub fn login(&mut self, user: &str, pass: &str) -> String {
        self.ok(&format!("USER {user}"));
        self.ok(&format!("PASS {pass}"))
    }

    /// USER + PASS where PASS must be refused with `-ERR [code]`
    /// (`what` says why, for the failure message); returns the reply.
    pub fn login_refused(&mut self, user: &str, pass: &str, code: &str, what: &str) -> String {
        self.ok(&format!("USER {user}"));
        let reply = self.cmd(&format!("PASS {pass}"));
        assert!(
            reply.starts_with(&format!("-ERR [{code}] ")),
            "{what}: PASS must be refused with [{code}], got {reply:?}"
        );
        reply
    }

    /// Reads until EOF; panics if anything but EOF arrives.
    pub fn expect_closed(&mut self) {
        if let Some(l) = self.read_raw_line() {
            panic!(
                "expected the server to close the connection after {:?}, got {:?}",
                self.last,
                String::from_utf8_lossy(&l)
            );
        }
    }

    /// QUIT must answer +OK and then close.
    pub fn quit(&mut self) -> String {
        let r = self.ok("QUIT");
        self.expect_closed();
        r
    }

    /// STAT parsed as (count, octets); checks the exact form "+OK c o".
    pub fn stat(&mut self) -> (u64, u64) {
        let r = self.ok("STAT");
        parse_two_numbers(&r, "STAT")
    }

    /// LIST parsed as (n, size) pairs.
    pub fn list(&mut self) -> Vec<(u64, u64)> {
        let (_, m) = self.multi("LIST");
        m.text().iter().map(|l| parse_pair(l, "LIST")).collect()
    }

    /// UIDL parsed as (n, uid) pairs.
    pub fn uidl(&mut self) -> Vec<(u64, String)> {
        let (_, m) = self.multi("UIDL");
        m.text()
            .iter()
            .map(|l| {
                let (n, u) = l
                    .split_once(' ')
                    .unwrap_or_else(|| panic!("bad UIDL line {l:?}"));
                (
                    n.parse().unwrap_or_else(|_| panic!("bad UIDL line {l:?}")),
                    u.to_owned(),
                )
            })
            .collect()
    }
}

pub fn is_ok(line: &str) -> bool {
    line == "+OK" || line.starts_with("+OK ")
}

pub fn is_err(line: &str) -> bool {
    line == "-ERR" || line.starts_with("-ERR ")
}

/// "+OK a b" → (a, b), exactly three space-separated fields.
pub fn parse_two_numbers(reply: &str, what: &str) -> (u64, u64) {
    let f: Vec<&str> = reply.split(' ').collect();
    assert!(
        f.len() == 3 && f[0] == "+OK",
        "{what} reply is not of the form \"+OK <a> <b>\": {reply:?}"
    );
    let p = |s: &str| -> u64 {
        s.parse()
            .unwrap_or_else(|_| panic!("{what} reply has a non-number: {reply:?}"))
    };
    (p(f[1]), p(f[2]))
}

/// "n size" → (n, size).
pub fn parse_pair(line: &str, what: &str) -> (u64, u64) {
    let f: Vec<&str> = line.split(' ').collect();
    assert!(f.len() == 2, "bad {what} line {line:?}");
    let p = |s: &str| -> u64 {
        s.parse()
            .unwrap_or_else(|_| panic!("bad {what} line {line:?}"))
    };
    (p(f[0]), p(f[1]))
}

/// The first number after "+OK " (e.g. RETR's "+OK <size> octets").
pub fn first_number(reply: &str) -> Option<u64> {
    reply.strip_prefix("+OK ")?.split(' ').next()?.parse().ok()
}

// ---------------------------------------------------------------------------
// mbox fixtures.

/// An mbox built from message data, remembering each message's exact bytes.
///
/// The server's view of a message's data is the bytes after its From_ line
/// up to the next From_ separator, without the one empty line that separates
/// messages. So a message whose data ends with LF and has a body is written
/// as From_ + data + "\n"; a message that ends right after its header block's
/// empty line (`Subject: x\n\n`) keeps that empty line as its data and gets no
/// extra separator; the last message may lack a final newline.
#[derive(Clone, Debug, Default)]
pub struct Mbox {
    msgs: Vec<Vec<u8>>,
}

impl Mbox {
    pub fn new() -> Mbox {
        Mbox::default()
    }

    /// Appends a message with these data bytes.
    pub fn msg(mut self, data: impl AsRef<[u8]>) -> Mbox {
        let d = data.as_ref().to_vec();
        assert!(!d.is_empty(), "fixture message must not be empty");
        assert!(
            !d.starts_with(b"\n"),
            "fixture message must start with a header"
        );
        assert!(
            !contains(&d, b"\n\nFrom "),
            "fixture message would be split by a From_ line"
        );
        assert!(
            !contains(&d, b"\r\n"),
            "fixture messages have no CRLF (the tests compare after CRLF->LF)"
        );
        assert!(
            contains(&d, b"\n\n") || !d.ends_with(b"\n"),
            "a header-only fixture message with a final LF is ambiguous (the separator would \
             become its header end)"
        );
        if let Some(prev) = self.msgs.last() {
            assert!(
                prev.ends_with(b"\n"),
                "only the last fixture message may lack a final newline"
            );
        }
        self.msgs.push(d);
        self
    }

    pub fn len(&self) -> usize {
        self.msgs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// Data of message `n` (1-based), as stored in the file.
    pub fn data(&self, n: usize) -> &[u8] {
        &self.msgs[n - 1]
    }

    /// The raw bytes of message `n` in the file: From_ line, data, separator.
    pub fn raw(&self, n: usize) -> Vec<u8> {
        let d = &self.msgs[n - 1];
        let mut v = FROM_LINE.to_vec();
        v.extend_from_slice(d);
        if d.ends_with(b"\n") && !body_is_empty(d) {
            v.push(b'\n');
        }
        v
    }

    /// The whole file.
    pub fn bytes(&self) -> Vec<u8> {
        self.bytes_without(&[])
    }

    /// The file with messages `deleted` (1-based) left out: what the mailbox
    /// must be after they were deleted and the session QUIT.
    pub fn bytes_without(&self, deleted: &[usize]) -> Vec<u8> {
        let mut v = Vec::new();
        for n in 1..=self.len() {
            if !deleted.contains(&n) {
                v.extend_from_slice(&self.raw(n));
            }
        }
        v
    }

    /// What RETR must deliver for message `n` after CRLF→LF and undoing
    /// dot-stuffing: the data, plus a newline if it has no final one.
    pub fn expected_retr(&self, n: usize) -> Vec<u8> {
        let mut d = self.msgs[n - 1].clone();
        if !d.ends_with(b"\n") {
            d.push(b'\n');
        }
        d
    }

    /// LIST size of message `n`: octets RETR sends before the "." line with
    /// every LF as CRLF and before dot-stuffing.
    pub fn expected_size(&self, n: usize) -> u64 {
        let d = self.expected_retr(n);
        (d.len() + d.iter().filter(|&&b| b == b'\n').count()) as u64
    }

    /// Sum of the sizes of all messages but `deleted`.
    pub fn expected_total(&self, deleted: &[usize]) -> u64 {
        (1..=self.len())
            .filter(|n| !deleted.contains(n))
            .map(|n| self.expected_size(n))
            .sum()
    }

    /// What `TOP n lines` must deliver (LF form): every line up to and
    /// including the first empty line, then `lines` more lines.
    pub fn expected_top(&self, n: usize, lines: usize) -> Vec<u8> {
        let d = self.expected_retr(n);
        let mut out = Vec::new();
        let mut in_headers = true;
        let mut left = lines;
        for line in d.split_inclusive(|&b| b == b'\n') {
            if in_headers {
                out.extend_from_slice(line);
                if line == b"\n" {
                    in_headers = false;
                }
            } else {
                if left == 0 {
                    break;
                }
                out.extend_from_slice(line);
                left -= 1;
            }
        }
        out
    }
}

/// True when the data is just a header block ending with its empty line.
fn body_is_empty(d: &[u8]) -> bool {
    match find(d, b"\n\n") {
        Some(i) => i + 2 == d.len(),
        None => false,
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

/// The mailbox with the tricky messages every data path must get right:
/// dot lines, `>From ` and an unsplittable `From ` line, a 70,000-byte line,
/// 8-bit bytes, NUL bytes, bare CR in mid-line, a message with an empty body,
/// a message for TOP with several body lines, and a last message without a
/// final newline.
pub fn tricky_mbox() -> Mbox {
    tricky_mbox_with_long_line(70_000)
}

/// [`tricky_mbox`] with a long line of `long_len` bytes.
pub fn tricky_mbox_with_long_line(long_len: usize) -> Mbox {
    let mut long = Vec::with_capacity(long_len + 64);
    while long.len() < long_len {
        long.extend_from_slice(b"0123456789abcdefghijklmnopqrstuvwxyz ");
    }
    long.truncate(long_len);
    let eight_bit: Vec<u8> = (0x80..=0xffu8).collect();

    let mut m = Mbox::new()
        .msg(
            "From: Alice <alice@example.org>\nTo: bob@example.org\nSubject: plain\n\
             Message-ID: <plain@example.org>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\n\
             Hello Bob.\n\nThis is the second paragraph.\nAnd its second line.\n",
        )
        .msg(
            ".Hdr: a header that starts with a dot\nSubject: dots\n\n\
             .\n..\n.x\n...three\n. space\nend of dots\n.\n",
        )
        .msg(
            "Subject: from lines\n\n>From someone quoted\n>>From deeper\n\
             a line, then a From_ look-alike:\nFrom someone Mon Jan  1 00:00:00 2024\n\
             From\tnot a separator either\nlast\n",
        );
    let mut d = b"Subject: long line\n\nbefore\n".to_vec();
    d.extend_from_slice(&long);
    d.extend_from_slice(b"\nafter\n");
    m = m.msg(d);
    let mut d = b"Subject: 8-bit\nContent-Type: text/plain; charset=iso-8859-1\n\n".to_vec();
    d.extend_from_slice(&eight_bit);
    d.extend_from_slice(b"\ncaf\xe9 na\xefve \xff\xfe\n");
    m = m.msg(d);
    m = m.msg(&b"Subject: nul\n\nbefore\0after\n\0\nend\0\n"[..]);
    m = m.msg(&b"Subject: bare cr\n\nbare\rcr in the middle\nx\ry\rz\nend\n"[..]);
    m = m.msg("Subject: empty body\n\n");
    m = m.msg("Subject: top\nX-Extra: yes\n\nl1\n\nl3\nl4\nl5\n");
    m.msg("Subject: last\n\nthe last line has no newline")
}

/// A simple mailbox of `n` ordinary messages.
pub fn simple_mbox(n: usize) -> Mbox {
    let mut m = Mbox::new();
    for i in 1..=n {
        m = m.msg(format!(
            "From: a@example.org\nSubject: message {i}\nMessage-ID: <{i}@example.org>\n\n\
             Body of message {i}.\nSecond line.\n"
        ));
    }
    m
}

// ---------------------------------------------------------------------------
// Files and processes.

/// An mbox of `n` messages of about 480 bytes (7.7 MB for 16,000): large
/// enough for pop3d to keep its index in a file.
pub fn large_mbox(n: usize) -> Vec<u8> {
    let mut data = Vec::new();
    for k in 0..n {
        if k > 0 {
            data.push(b'\n');
        }
        data.extend_from_slice(
            format!(
                "From s@example.org Mon Jan  1 00:00:00 2024\nMessage-ID: <{k}@x>\n\
                 Subject: {k}\n\n{}\n",
                "y".repeat(400)
            )
            .as_bytes(),
        );
    }
    data
}

/// Bytes process `pid` has read so far (`rchar` of /proc/PID/io).
pub fn bytes_read(pid: u32) -> u64 {
    let io = fs::read_to_string(format!("/proc/{pid}/io")).expect("read /proc/PID/io");
    io.lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("rchar in /proc/PID/io")
}

/// (bytes, mtime) of a file, for "nothing changed" checks.
pub fn snapshot(path: &Path) -> (Vec<u8>, SystemTime) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mtime = fs::metadata(path).unwrap().modified().unwrap();
    (bytes, mtime)
}

/// CRLF → LF (a CR not followed by LF stays).
pub fn crlf_to_lf(b: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\r' && b.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        v.push(b[i]);
        i += 1;
    }
    v
}

/// Sets a file's mtime to a fixed time in the past, so any rewrite shows.
pub fn age_file(path: &Path) {
    let f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open for set_modified");
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000))
        .expect("set_modified");
}

/// Asserts two byte strings are equal, with a short description of the first
/// difference instead of a huge dump.
#[track_caller]
pub fn assert_bytes_eq(got: &[u8], want: &[u8], what: &str) {
    if got == want {
        return;
    }
    let i = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let ctx = |b: &[u8]| {
        let s = i.saturating_sub(40);
        let e = (i + 40).min(b.len());
        format!("{:?}", String::from_utf8_lossy(&b[s.min(e)..e]))
    };
    panic!(
        "{what}: bytes differ (got {} bytes, want {}); first difference at offset {i}:\n  got:  {}\n  want: {}",
        got.len(),
        want.len(),
        ctx(got),
        ctx(want)
    );
}

/// Reads `/proc/<pid>/status` field `name` (e.g. "Uid") as numbers; `None`
/// if the process is gone.
pub fn proc_status_ids(pid: u32, name: &str) -> Option<Vec<u32>> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{name}:")))?;
    Some(
        line[name.len() + 1..]
            .split_whitespace()
            .map(|s| s.parse().expect("number in /proc status"))
            .collect(),
    )
}

/// The fields of /proc/PID/stat after the command name (state first, then
/// ppid, ...; utime and stime are [11] and [12]); None once the process is
/// gone. The name may contain spaces, so the line is cut at its last ')'.
pub fn proc_stat(pid: u32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// `pid` and all its descendants (from /proc/*/stat).
pub fn process_tree(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for e in fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Some(pp) = proc_stat(p).and_then(|f| f.get(1)?.parse::<u32>().ok()) {
            parent_of.push((p, pp));
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let cur = tree[i];
        for &(p, pp) in &parent_of {
            if pp == cur && !tree.contains(&p) {
                tree.push(p);
            }
        }
        i += 1;
    }
    tree
}

// ---------------------------------------------------------------------------
// Daemon control, process facts and client helpers for the daemon_* and ext_*
// tests.

impl Daemon {
    /// Sends `sig` (a name such as "TERM" or "HUP") to the server process.
    pub fn signal(&self, sig: &str) {
        send_signal(self.pid(), sig);
    }

    /// Waits for the server to exit on its own (failing after `timeout`).
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "pop3d did not exit within {timeout:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until a log line satisfies `pred` and returns it; `None` after
    /// `timeout`.
    pub fn wait_log(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        wait_line(|| self.log(), timeout, pred)
    }

    /// Resident set size of the server process in KiB (VmRSS). Under
    /// `$TEST_EXEC_RUNNER` this is the runner's (qemu's) process.
    pub fn rss_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmRSS")
            .unwrap_or_else(|| panic!("no VmRSS for pop3d (pid {})", self.pid()))
    }
}

/// `kill -SIG pid` (the signal by name, e.g. "TERM").
pub fn send_signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(st.success(), "kill -{sig} {pid} failed: {st}");
}

/// A `/proc/<pid>/status` field given in kB (e.g. "VmRSS"), as a number of
/// KiB; `None` if the process or the field is gone.
pub fn proc_status_kib(pid: u32, name: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{name}:")))?;
    line[name.len() + 1..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// (soft, hard) RLIMIT_NOFILE of this process, from /proc/self/limits
/// ("unlimited" as u64::MAX).
pub fn nofile_limits() -> (u64, u64) {
    let limits = fs::read_to_string("/proc/self/limits").expect("read /proc/self/limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("no \"Max open files\" in /proc/self/limits");
    let f: Vec<&str> = line["Max open files".len()..].split_whitespace().collect();
    let p = |s: &str| -> u64 {
        if s == "unlimited" {
            u64::MAX
        } else {
            s.parse().expect("number in /proc/self/limits")
        }
    };
    (p(f[0]), p(f[1]))
}

/// Makes sure this test process (and so every server it starts afterwards)
/// may open at least `n` descriptors, raising the soft limit (and, as root,
/// the hard one) with prlimit(1) from util-linux; fails naming the limit
/// otherwise. Needs no `unsafe`: prlimit changes another process's limits.
pub fn raise_nofile(n: u64) {
    let (soft, hard) = nofile_limits();
    if soft >= n {
        return;
    }
    let prlimit = require_tool("prlimit", "util-linux");
    let new_hard = if hard >= n {
        hard
    } else {
        assert!(
            is_root(),
            "this test needs {n} open files but the hard RLIMIT_NOFILE is {hard}; \
             raise it (ulimit -Hn {n}) or run as root"
        );
        n
    };
    let hard_s = if new_hard == u64::MAX {
        "unlimited".to_owned()
    } else {
        new_hard.to_string()
    };
    let out = Command::new(prlimit)
        .arg("--pid")
        .arg(std::process::id().to_string())
        .arg(format!("--nofile={n}:{hard_s}"))
        .output()
        .expect("run prlimit");
    assert!(
        out.status.success(),
        "prlimit --nofile={n}:{hard_s} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (soft, _) = nofile_limits();
    assert!(soft >= n, "RLIMIT_NOFILE is still {soft} after prlimit");
}

/// Standard base64 with padding (RFC 4648), for SASL PLAIN.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(ALPHABET[(v >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// The SASL PLAIN message `authzid NUL authcid NUL passwd`, base64-encoded.
pub fn sasl_plain(authzid: &str, authcid: &str, pass: &str) -> String {
    base64(format!("{authzid}\0{authcid}\0{pass}").as_bytes())
}

/// A free TCP port on 127.0.0.1 (bound and released at once; for programs
/// that cannot be told to pick one, such as inetd).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Any child process (inetd, a helper script) in its own process group,
/// with its stderr collected line by line; the whole group is killed on
/// drop and the collected stderr printed if the test is failing.
pub struct Spawned {
    pub child: Child,
    what: String,
    log: SharedLog,
    lines: mpsc::Receiver<String>,
}

impl Spawned {
    /// Spawns `cmd` with stderr captured (stdin and stdout as set on `cmd`,
    /// null by default here).
    pub fn start(mut cmd: Command, what: &str) -> Spawned {
        cmd.process_group(0).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        let log: SharedLog = Arc::default();
        let lines = spawn_log_reader(child.stderr.take().unwrap(), log.clone());
        Spawned {
            child,
            what: what.to_owned(),
            log,
            lines,
        }
    }

    /// Waits for a stderr line containing `needle` (failing after `timeout`).
    pub fn wait_stderr(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => {}
                Err(_) => panic!(
                    "{} did not print {needle:?} on stderr within {timeout:?}; its stderr:\n{}",
                    self.what,
                    self.log().join("\n")
                ),
            }
        }
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if thread::panicking() {
            dump_log(&self.what, &self.log);
        }
        kill_group(&mut self.child);
    }
}

/// How one read on a [`Swarm`] connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got {
    /// A line, without its CRLF.
    Line(String),
    /// The server closed the connection (FIN).
    Eof,
    /// The connection was reset.
    Reset,
    /// Nothing within the timeout.
    Timeout,
    /// Anything else (a helper-side error), as the helper described it.
    Other(String),
}

impl Got {
    /// The server ended the connection (FIN or RST).
    pub fn closed(&self) -> bool {
        matches!(self, Got::Eof | Got::Reset)
    }

    /// A line starting with "+OK".
    pub fn is_ok_line(&self) -> bool {
        matches!(self, Got::Line(l) if is_ok(l))
    }
}

/// Python side of [`Swarm`]: TCP connections made on request, each bound to
/// a chosen local address first (which std cannot do), answering one line per
/// request on stdout.
const SWARM_PY: &str = r#"
import socket, sys, time
socks, bufs = {}, {}
nid = 0
def out(s):
    sys.stdout.write(s + "\n"); sys.stdout.flush()
def open_conn(src, host, port):
    global nid
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    if src != "-":
        s.bind((src, 0))
    s.settimeout(20)
    s.connect((host, int(port)))
    nid += 1
    socks[nid] = s; bufs[nid] = b""
    return nid
def read_line(i, timeout):
    s = socks[i]
    deadline = time.monotonic() + timeout
    while b"\n" not in bufs[i]:
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout"
        s.settimeout(left)
        try:
            d = s.recv(65536)
        except socket.timeout:
            return "timeout"
        except ConnectionResetError:
            return "reset"
        except OSError as e:
            return "other " + str(e)
        if not d:
            return "eof" if not bufs[i] else "other partial line " + repr(bufs[i])
        bufs[i] += d
    line, _, rest = bufs[i].partition(b"\n")
    bufs[i] = rest
    if not line.endswith(b"\r"):
        return "other line without CRLF " + repr(line)
    return "line " + line[:-1].decode("latin-1")
for req in sys.stdin:
    f = req.split()
    try:
        if f[0] == "open":
            out("ok %d" % open_conn(f[1], f[2], f[3]))
        elif f[0] == "probe":
            i = open_conn(f[1], f[2], f[3])
            out("%d %s" % (i, read_line(i, float(f[4]))))
        elif f[0] == "read":
            out(read_line(int(f[1]), float(f[2])))
        elif f[0] == "send":
            socks[int(f[1])].sendall(bytes.fromhex(f[2]))
            out("ok")
        elif f[0] == "close":
            socks.pop(int(f[1])).close()
            out("ok")
        else:
            out("fail unknown request " + f[0])
    except Exception as e:
        out("fail %s: %s" % (type(e).__name__, e))
"#;

/// TCP clients driven through a Python helper process, for what std cannot
/// do: connecting from a chosen local address (127.0.0.N, ::1). Connections
/// stay open until closed or until the Swarm is dropped.
pub struct Swarm {
    proc: Spawned,
    stdin: std::process::ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Default for Swarm {
    fn default() -> Self {
        Self::new()
    }
}

impl Swarm {
    pub fn new() -> Swarm {
        let python = require_tool("python3", "python3");
        let mut cmd = Command::new(python);
        cmd.arg("-c")
            .arg(SWARM_PY)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut proc = Spawned::start(cmd, "python3 client swarm");
        let stdin = proc.child.stdin.take().unwrap();
        let stdout = BufReader::new(proc.child.stdout.take().unwrap());
        Swarm {
            proc,
            stdin,
            stdout,
        }
    }

    fn request(&mut self, req: &str) -> String {
        writeln!(self.stdin, "{req}").expect("write to the python swarm");
        let mut line = String::new();
        let n = self
            .stdout
            .read_line(&mut line)
            .expect("read from the python swarm");
        assert!(
            n > 0,
            "the python swarm exited; its stderr:\n{}",
            self.proc.log().join("\n")
        );
        line.trim_end_matches('\n').to_owned()
    }

    fn parse_got(s: &str) -> Got {
        match s {
            "eof" => Got::Eof,
            "reset" => Got::Reset,
            "timeout" => Got::Timeout,
            _ => match s.strip_prefix("line ") {
                Some(l) => Got::Line(l.to_owned()),
                None => Got::Other(s.to_owned()),
            },
        }
    }

    /// Connects to `addr` from `src` (any local address when `None`);
    /// returns the connection's id. Panics if the connect fails.
    pub fn open(&mut self, src: Option<IpAddr>, addr: SocketAddr) -> usize {
        let r = self.request(&format!(
            "open {} {} {}",
            src.map_or("-".to_owned(), |s| s.to_string()),
            addr.ip(),
            addr.port()
        ));
        match r.strip_prefix("ok ") {
            Some(id) => id.parse().unwrap(),
            None => panic!("connect from {src:?} to {addr}: {r}"),
        }
    }

    /// Connects from `src` and reads the first line (the greeting or a
    /// refusal) within `timeout`; the connection stays open.
    pub fn probe(&mut self, src: IpAddr, addr: SocketAddr, timeout: Duration) -> (usize, Got) {
        let r = self.request(&format!(
            "probe {src} {} {} {}",
            addr.ip(),
            addr.port(),
            timeout.as_secs_f64()
        ));
        let (id, rest) = r
            .split_once(' ')
            .unwrap_or_else(|| panic!("bad swarm reply {r:?}"));
        match id.parse() {
            Ok(id) => (id, Self::parse_got(rest)),
            Err(_) => panic!("connect from {src} to {addr}: {r}"),
        }
    }

    /// Reads the next line of connection `id` within `timeout`.
    pub fn read(&mut self, id: usize, timeout: Duration) -> Got {
        let r = self.request(&format!("read {id} {}", timeout.as_secs_f64()));
        Self::parse_got(&r)
    }

    /// Sends `bytes` on connection `id`.
    pub fn send(&mut self, id: usize, bytes: &[u8]) {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let r = self.request(&format!("send {id} {hex}"));
        assert_eq!(r, "ok", "send on swarm connection {id}");
    }

    /// Closes connection `id`.
    pub fn close(&mut self, id: usize) {
        let r = self.request(&format!("close {id}"));
        assert_eq!(r, "ok", "close swarm connection {id}");
    }
}

/// Runs a client command and requires exit status 0.
pub fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} exited with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A small deterministic pseudo-random generator (xorshift64*), for the
/// tests that build varied mailboxes from a fixed seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
