//! pop3-load: the POP3 load generator and measuring tool behind bench/run.sh.
//!
//! Std only. Every subcommand talks plain POP3 over loopback TCP, is bounded in
//! time and count, and ends with one `RESULT key=value ...` line (per level for
//! `idle`) that run.sh parses. Subcommands:
//!
//! * `sessions`  — N client threads loop connect, USER, PASS, STAT, QUIT for S
//!   seconds: sessions/s, latency percentiles, failures, and (with `--pid`) the
//!   server's CPU time per session, children included.
//! * `idle`      — opens logged-in sessions up to each level and sums the PSS of
//!   the server's process tree (from /proc/PID/smaps_rollup) at each level.
//! * `pipeline`  — one session sends N commands in one write, reads N replies,
//!   repeated for R rounds: commands/s.
//! * `fairness`  — one session downloads a big message (RETR) while another
//!   measures NOOP round trips: p50/p99/max.
//! * `retr`      — one session fetches messages: `--mode big` RETR 1 to its
//!   final dot (MB/s on the wire), `--mode lockstep` RETR 1..N one command at
//!   a time (as fetchmail does), `--mode inflight` the same with `--window`
//!   (16) commands outstanding: messages/s. Replies are read to their final
//!   dot line and counted, so a short reply fails the run. `--rounds N`
//!   repeats the fetch in the same session and reports the median round.
//! * `mkmbox`    — writes a deterministic mbox fixture.
//! * `tree`      — prints the process tree of a pid with PSS and CPU (debugging).
//!
//! Client sockets can be bound to rotating source addresses 127.0.0.2..
//! (`--sources K`) so per-source limits of a server do not decide the result.

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Client sockets bound to a chosen source address before connecting, which
/// std does not offer (socket2 does, without unsafe code here).
mod net {
    use std::io;
    use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};

    use socket2::{Domain, Socket, Type};

    /// A connected TCP socket, optionally bound to `src` first; the connect
    /// gives up after `timeout`.
    pub fn connect_from(
        src: Option<Ipv4Addr>,
        dst: SocketAddrV4,
        timeout: std::time::Duration,
    ) -> io::Result<TcpStream> {
        let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        s.set_write_timeout(Some(timeout))?;
        if let Some(ip) = src {
            s.bind(&SocketAddr::from((ip, 0)).into())?;
        }
        s.connect_timeout(&SocketAddr::V4(dst).into(), timeout)?;
        Ok(s.into())
    }
}

// ---------------------------------------------------------------- arguments

/// `--key value` pairs after the subcommand.
struct Args(HashMap<String, String>);

impl Args {
    fn parse(rest: &[String]) -> Result<Args, String> {
        let mut m = HashMap::new();
        let mut it = rest.iter();
        while let Some(k) = it.next() {
            let key = k
                .strip_prefix("--")
                .ok_or_else(|| format!("expected --key, got {k:?}"))?;
            let v = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
            m.insert(key.to_string(), v.clone());
        }
        Ok(Args(m))
    }
    fn str(&self, k: &str) -> Result<String, String> {
        self.0
            .get(k)
            .cloned()
            .ok_or_else(|| format!("--{k} is required"))
    }
    fn str_or(&self, k: &str, d: &str) -> String {
        self.0.get(k).cloned().unwrap_or_else(|| d.to_string())
    }
    fn num<T: std::str::FromStr>(&self, k: &str, d: T) -> Result<T, String> {
        match self.0.get(k) {
            None => Ok(d),
            Some(v) => v.parse().map_err(|_| format!("--{k}: bad number {v:?}")),
        }
    }
    fn addr(&self) -> Result<SocketAddrV4, String> {
        let a = self.str("addr")?;
        a.parse()
            .map_err(|_| format!("--addr: bad IPv4 address:port {a:?}"))
    }
}

// ---------------------------------------------------------------- client

/// Why a session step failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fail {
    /// connect() failed (refused, reset, timed out).
    Connect,
    /// The server closed the connection (before the greeting: refused by a limit).
    Closed,
    /// A `-ERR` (or anything not `+OK`) where `+OK` was expected.
    Err,
    /// A read or write timed out.
    Timeout,
    /// Any other I/O error.
    Io,
}

impl Fail {
    fn from_io(e: &io::Error) -> Fail {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Fail::Timeout,
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof => Fail::Closed,
            _ => Fail::Io,
        }
    }
}

/// Counts of failures by kind.
#[derive(Default)]
struct Fails {
    connect: AtomicU64,
    closed: AtomicU64,
    err: AtomicU64,
    timeout: AtomicU64,
    io: AtomicU64,
}

impl Fails {
    fn add(&self, f: Fail) {
        let c = match f {
            Fail::Connect => &self.connect,
            Fail::Closed => &self.closed,
            Fail::Err => &self.err,
            Fail::Timeout => &self.timeout,
            Fail::Io => &self.io,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
    fn total(&self) -> u64 {
        [
            &self.connect,
            &self.closed,
            &self.err,
            &self.timeout,
            &self.io,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }
    fn kv(&self) -> String {
        format!(
            "fail_connect={} fail_closed={} fail_err={} fail_timeout={} fail_io={}",
            self.connect.load(Ordering::Relaxed),
            self.closed.load(Ordering::Relaxed),
            self.err.load(Ordering::Relaxed),
            self.timeout.load(Ordering::Relaxed),
            self.io.load(Ordering::Relaxed)
        )
    }
}

/// Source addresses 127.0.0.2 .. 127.0.0.(1+n), handed out round-robin;
/// n = 0 means "let the kernel choose" (127.0.0.1).
struct Sources {
    n: usize,
    next: AtomicUsize,
}

impl Sources {
    fn new(n: usize) -> Sources {
        Sources {
            n: n.min(250),
            next: AtomicUsize::new(0),
        }
    }
    fn pick(&self) -> Option<Ipv4Addr> {
        if self.n == 0 {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.n;
        Some(Ipv4Addr::new(127, 0, 0, 2 + i as u8))
    }
}

/// One POP3 client connection.
struct Client {
    rd: BufReader<TcpStream>,
    wr: TcpStream,
    line: Vec<u8>,
}

const IO_TIMEOUT: Duration = Duration::from_secs(30);

impl Client {
    fn connect(dst: SocketAddrV4, src: Option<Ipv4Addr>) -> Result<Client, Fail> {
        let s = net::connect_from(src, dst, IO_TIMEOUT).map_err(|_| Fail::Connect)?;
        s.set_nodelay(true).map_err(|e| Fail::from_io(&e))?;
        s.set_read_timeout(Some(IO_TIMEOUT))
            .map_err(|e| Fail::from_io(&e))?;
        s.set_write_timeout(Some(IO_TIMEOUT))
            .map_err(|e| Fail::from_io(&e))?;
        let wr = s.try_clone().map_err(|e| Fail::from_io(&e))?;
        Ok(Client {
            rd: BufReader::with_capacity(16 * 1024, s),
            wr,
            line: Vec::with_capacity(256),
        })
    }

    /// Reads one reply line; `Err(Closed)` on EOF.
    fn read_line(&mut self) -> Result<(), Fail> {
        self.line.clear();
        match self.rd.read_until(b'\n', &mut self.line) {
            Ok(0) => Err(Fail::Closed),
            Ok(_) if self.line.ends_with(b"\n") => Ok(()),
            Ok(_) => Err(Fail::Closed),
            Err(e) => Err(Fail::from_io(&e)),
        }
    }

    /// Reads one line and insists on `+OK`.
    fn expect_ok(&mut self) -> Result<(), Fail> {
        self.read_line()?;
        if self.line.starts_with(b"+OK") {
            Ok(())
        } else {
            Err(Fail::Err)
        }
    }

    fn send(&mut self, cmd: &str) -> Result<(), Fail> {
        self.wr
            .write_all(cmd.as_bytes())
            .map_err(|e| Fail::from_io(&e))
    }

    fn cmd(&mut self, cmd: &str) -> Result<(), Fail> {
        self.send(cmd)?;
        self.expect_ok()
    }

    /// Greeting, USER, PASS.
    fn login(
        dst: SocketAddrV4,
        src: Option<Ipv4Addr>,
        user: &str,
        pass: &str,
    ) -> Result<Client, Fail> {
        let mut c = Client::connect(dst, src)?;
        c.expect_ok()?;
        c.cmd(&format!("USER {user}\r\n"))?;
        c.cmd(&format!("PASS {pass}\r\n"))?;
        Ok(c)
    }

    /// QUIT, then wait for the server to close (bounded by the read timeout).
    fn quit(mut self) -> Result<(), Fail> {
        self.cmd("QUIT\r\n")?;
        let mut buf = [0u8; 512];
        loop {
            match self.rd.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(_) => continue,
                Err(e) => return Err(Fail::from_io(&e)),
            }
        }
    }
}

// ---------------------------------------------------------------- /proc

/// One process as seen in /proc.
struct Proc {
    pid: u32,
    ppid: u32,
    name: String,
    /// utime + stime + cutime + cstime, in clock ticks.
    ticks: u64,
}

fn read_proc(pid: u32) -> Option<Proc> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let name = s[open + 1..close].to_string();
    let f: Vec<&str> = s[close + 2..].split_whitespace().collect();
    // After the name: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Some(Proc {
        pid,
        ppid: num(1) as u32,
        name,
        ticks: num(11) + num(12) + num(13) + num(14),
    })
}

/// `root` and all its live descendants.
fn tree(root: u32) -> Vec<Proc> {
    let mut all = Vec::new();
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            if let Some(p) = e
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
                .and_then(read_proc)
            {
                all.push(p);
            }
        }
    }
    let mut keep = vec![root];
    let mut out = Vec::new();
    // Bounded: each pass moves at least one process or stops.
    loop {
        let before = out.len();
        let mut rest = Vec::new();
        for p in all {
            if keep.contains(&p.pid) || keep.contains(&p.ppid) {
                if !keep.contains(&p.pid) {
                    keep.push(p.pid);
                }
                out.push(p);
            } else {
                rest.push(p);
            }
        }
        all = rest;
        if out.len() == before || all.is_empty() {
            break;
        }
    }
    out
}

/// Pss of one process in KiB (0 for a zombie or a process that went away).
fn pss_kib(pid: u32) -> u64 {
    let Ok(s) = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
        return 0;
    };
    s.lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// (sum of Pss in KiB, number of processes) over the tree of `root`.
fn tree_pss(root: u32) -> (u64, usize) {
    let t = tree(root);
    (t.iter().map(|p| pss_kib(p.pid)).sum(), t.len())
}

/// CPU ticks of the tree of `root`, reaped children included.
fn tree_ticks(root: u32) -> u64 {
    tree(root).iter().map(|p| p.ticks).sum()
}

/// Clock ticks per second (sysconf(_SC_CLK_TCK) is 100 on Linux for every arch).
const CLK_TCK: f64 = 100.0;

// ---------------------------------------------------------------- statistics

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

// ---------------------------------------------------------------- sessions

fn cmd_sessions(a: &Args) -> Result<(), String> {
    let dst = a.addr()?;
    let user = a.str("user")?;
    let pass = a.str("pass")?;
    let clients: usize = a.num("clients", 1)?;
    let secs: f64 = a.num("secs", 3.0)?;
    let pid: u32 = a.num("pid", 0)?;
    let sources = Sources::new(a.num("sources", 0)?);
    let fails = Fails::default();
    // Stop early after this many sessions (popa3d -D: stay below its table).
    let max_sessions: u64 = a.num("max-sessions", u64::MAX)?;
    let count = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let lat = Mutex::new(Vec::<Duration>::new());

    let ticks0 = if pid > 0 { tree_ticks(pid) } else { 0 };
    let self0 = read_proc(std::process::id()).map_or(0, |p| p.ticks);
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs_f64(secs);
    thread::scope(|s| {
        for _ in 0..clients.max(1) {
            s.spawn(|| {
                let mut mine = Vec::new();
                while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
                    let st = Instant::now();
                    let r = Client::login(dst, sources.pick(), &user, &pass)
                        .and_then(|mut c| c.cmd("STAT\r\n").map(|_| c))
                        .and_then(|c| c.quit());
                    match r {
                        Ok(()) => {
                            mine.push(st.elapsed());
                            if count.fetch_add(1, Ordering::Relaxed) + 1 >= max_sessions {
                                stop.store(true, Ordering::Relaxed);
                            }
                        }
                        Err(f) => {
                            fails.add(f);
                            // A refusing server must not turn this into a spin.
                            thread::sleep(Duration::from_millis(2));
                        }
                    }
                }
                lat.lock().unwrap().extend(mine);
            });
        }
    });
    let el = t0.elapsed().as_secs_f64();
    let ticks1 = if pid > 0 { tree_ticks(pid) } else { 0 };
    let self1 = read_proc(std::process::id()).map_or(0, |p| p.ticks);
    let mut l = lat.into_inner().unwrap();
    l.sort();
    let n = l.len();
    let cpu = if pid > 0 && n > 0 {
        format!(
            "{:.2}",
            (ticks1.saturating_sub(ticks0)) as f64 / CLK_TCK * 1000.0 / n as f64
        )
    } else {
        "nan".into()
    };
    // This generator's own CPU per session: it shares the cores with the server.
    let client_cpu = if n > 0 {
        format!(
            "{:.2}",
            (self1.saturating_sub(self0)) as f64 / CLK_TCK * 1000.0 / n as f64
        )
    } else {
        "nan".into()
    };
    println!(
        "RESULT sessions={n} secs={el:.2} rate={:.1} p50_ms={:.2} p99_ms={:.2} cpu_ms={cpu} client_cpu_ms={client_cpu} {}",
        n as f64 / el,
        pct(&l, 0.50),
        pct(&l, 0.99),
        fails.kv()
    );
    Ok(())
}

// ---------------------------------------------------------------- idle

fn cmd_idle(a: &Args) -> Result<(), String> {
    let dst = a.addr()?;
    let user = a.str("user")?;
    let pass = a.str("pass")?;
    let pid: u32 = a.num("pid", 0)?;
    if pid == 0 {
        return Err("--pid is required".into());
    }
    let threads: usize = a.num("threads", 8)?;
    let warmup: u32 = a.num("warmup", 1)?;
    let settle: f64 = a.num("settle", 1.0)?;
    let max_secs: f64 = a.num("max-secs", 120.0)?;
    let sources = Sources::new(a.num("sources", 0)?);
    let levels: Vec<usize> = a
        .str_or("levels", "100,500,1000")
        .split(',')
        .map(|v| v.parse().map_err(|_| format!("--levels: bad number {v:?}")))
        .collect::<Result<_, _>>()?;

    if warmup > 0 {
        // Lets a server start what it starts lazily (Dovecot's auth processes).
        let c = Client::login(dst, sources.pick(), &user, &pass)
            .map_err(|f| format!("warm-up login failed: {f:?}"))?;
        c.quit()
            .map_err(|f| format!("warm-up QUIT failed: {f:?}"))?;
    }
    thread::sleep(Duration::from_secs_f64(settle));
    let (base, base_procs) = tree_pss(pid);
    println!("BASE pss_kib={base} procs={base_procs}");

    let open: Mutex<Vec<Client>> = Mutex::new(Vec::new());
    let fails = Fails::default();
    let reserved = AtomicUsize::new(0);
    let t0 = Instant::now();
    for &level in &levels {
        let target = level;
        let give_up = (level / 10).max(50) as u64;
        let lt = Instant::now();
        thread::scope(|s| {
            for _ in 0..threads.max(1) {
                s.spawn(|| {
                    loop {
                        if fails.total() >= give_up || t0.elapsed().as_secs_f64() > max_secs {
                            return;
                        }
                        // Reserve a place first, so no thread ever opens a session
                        // beyond the level (popa3d -D would count it for 10 s).
                        if reserved.fetch_add(1, Ordering::SeqCst) >= target {
                            reserved.fetch_sub(1, Ordering::SeqCst);
                            return;
                        }
                        match Client::login(dst, sources.pick(), &user, &pass) {
                            Ok(c) => open.lock().unwrap().push(c),
                            Err(f) => {
                                reserved.fetch_sub(1, Ordering::SeqCst);
                                fails.add(f);
                                thread::sleep(Duration::from_millis(5));
                            }
                        }
                    }
                });
            }
        });
        let login_secs = lt.elapsed().as_secs_f64();
        thread::sleep(Duration::from_secs_f64(settle));
        let n = open.lock().unwrap().len();
        let (pss, procs) = tree_pss(pid);
        let per = if n > 0 {
            format!("{:.1}", (pss as f64 - base as f64) / n as f64)
        } else {
            "nan".into()
        };
        println!(
            "RESULT level={level} sessions={n} procs={procs} pss_kib={pss} base_kib={base} per_kib={per} login_secs={login_secs:.2} {}",
            fails.kv()
        );
        let _ = io::stdout().flush();
    }
    // Dropping the clients closes them (no QUIT: nothing to expunge anyway).
    drop(open);
    Ok(())
}

// ---------------------------------------------------------------- pipeline

fn cmd_pipeline(a: &Args) -> Result<(), String> {
    let dst = a.addr()?;
    let user = a.str("user")?;
    let pass = a.str("pass")?;
    let n: usize = a.num("cmds", 1000)?;
    let rounds: usize = a.num("rounds", 10)?;
    let min_secs: f64 = a.num("min-secs", 0.0)?;
    let cmd = a.str_or("cmd", "NOOP");
    let max_secs: f64 = a.num("max-secs", 60.0)?;
    let mut c =
        Client::login(dst, None, &user, &pass).map_err(|f| format!("login failed: {f:?}"))?;
    let batch = format!("{cmd}\r\n").repeat(n);
    // The batch and its replies fit the loopback socket buffers, so one thread
    // can write everything and then read (a bigger batch could deadlock).
    if batch.len() > 64 * 1024 {
        return Err("--cmds too large for one unthreaded write".into());
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut times = Vec::new();
    let mut errs = 0u64;
    let t0 = Instant::now();
    // At least `rounds` rounds and `min_secs` seconds, at most `max_secs`.
    while (times.len() < rounds || t0.elapsed().as_secs_f64() < min_secs)
        && t0.elapsed().as_secs_f64() < max_secs
    {
        let st = Instant::now();
        c.wr.write_all(batch.as_bytes())
            .map_err(|e| format!("write: {e}"))?;
        let mut lines = 0usize;
        let mut at_start = true;
        // Bytes the BufReader already holds count first.
        let mut pending: Vec<u8> = c.rd.buffer().to_vec();
        c.rd.consume(pending.len());
        while lines < n {
            if pending.is_empty() {
                let k =
                    c.rd.get_mut()
                        .read(&mut buf)
                        .map_err(|e| format!("read: {e}"))?;
                if k == 0 {
                    return Err(format!("server closed after {lines} replies"));
                }
                pending.extend_from_slice(&buf[..k]);
            }
            for &ch in &pending {
                if at_start && ch == b'-' {
                    errs += 1;
                }
                at_start = ch == b'\n';
                if at_start {
                    lines += 1;
                }
            }
            pending.clear();
        }
        times.push(st.elapsed());
    }
    let total: f64 = times.iter().map(|d| d.as_secs_f64()).sum();
    let done = times.len() * n;
    times.sort();
    let _ = c.quit();
    println!(
        "RESULT cmds={done} rounds={} secs={total:.3} rate={:.0} med_rate={:.0} round_p50_ms={:.2} round_max_ms={:.2} err_replies={errs}",
        times.len(),
        done as f64 / total,
        n as f64 / (pct(&times, 0.5) / 1000.0),
        pct(&times, 0.5),
        pct(&times, 1.0)
    );
    Ok(())
}

// ---------------------------------------------------------------- retr

/// Reads the rest of a multi-line reply (after its `+OK` line) to the final
/// `.` line; returns the octets before it, line ends included.
fn read_multi(c: &mut Client) -> Result<u64, String> {
    let mut bytes = 0u64;
    loop {
        c.read_line().map_err(|f| format!("multi-line reply: {f:?}"))?;
        if c.line == b".\r\n" {
            return Ok(bytes);
        }
        bytes += c.line.len() as u64;
    }
}

fn cmd_retr(a: &Args) -> Result<(), String> {
    let dst = a.addr()?;
    let user = a.str("user")?;
    let pass = a.str("pass")?;
    let mode = a.str_or("mode", "lockstep");
    let window: usize = match mode.as_str() {
        "big" | "lockstep" => 1,
        "inflight" => a.num("window", 16)?,
        _ => return Err(format!("--mode: big, lockstep or inflight, not {mode:?}")),
    };
    let mut c =
        Client::login(dst, None, &user, &pass).map_err(|f| format!("login failed: {f:?}"))?;
    c.send("STAT\r\n").map_err(|f| format!("STAT: {f:?}"))?;
    c.expect_ok().map_err(|f| format!("STAT: {f:?}"))?;
    let count: usize = std::str::from_utf8(&c.line)
        .ok()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .ok_or("STAT reply without a count")?;
    let count = if mode == "big" { count.min(1) } else { count };
    if count == 0 {
        return Err("the mailbox is empty".into());
    }
    let rounds: usize = a.num("rounds", 1)?;
    let mut times = Vec::new();
    let (mut done, mut bytes) = (0usize, 0u64);
    for _ in 0..rounds.max(1) {
        let t0 = Instant::now();
        let mut sent = 0usize;
        (done, bytes) = (0, 0);
        while done < count {
            let mut batch = String::new();
            while sent < count && sent - done < window {
                sent += 1;
                batch.push_str(&format!("RETR {sent}\r\n"));
            }
            if !batch.is_empty() {
                c.send(&batch).map_err(|f| format!("RETR: {f:?}"))?;
            }
            c.expect_ok()
                .map_err(|f| format!("RETR {} reply: {f:?}", done + 1))?;
            bytes += read_multi(&mut c)?;
            done += 1;
        }
        times.push(t0.elapsed());
    }
    let _ = c.quit();
    // The median round: one slow or fast round on a busy machine moves it least.
    times.sort();
    let secs = times[times.len() / 2].as_secs_f64();
    println!(
        "RESULT mode={mode} msgs={done} bytes={bytes} secs={secs:.4} msgs_per_s={:.1} mb_per_s={:.1} rounds={}",
        done as f64 / secs,
        bytes as f64 / secs / 1e6,
        times.len()
    );
    Ok(())
}

// ---------------------------------------------------------------- fairness

fn cmd_fairness(a: &Args) -> Result<(), String> {
    let dst = a.addr()?;
    let user = a.str("user")?;
    let big = a.str("big-user")?;
    let pass = a.str("pass")?;
    let msg: u32 = a.num("msg", 1)?;
    let interval = Duration::from_secs_f64(a.num::<f64>("interval-ms", 1.0)? / 1000.0);
    let max_secs: f64 = a.num("max-secs", 300.0)?;

    let mut dl = Client::login(dst, None, &big, &pass).map_err(|f| format!("big login: {f:?}"))?;
    let mut probe =
        Client::login(dst, None, &user, &pass).map_err(|f| format!("probe login: {f:?}"))?;
    // Warm the probe path once.
    probe.cmd("NOOP\r\n").map_err(|f| format!("NOOP: {f:?}"))?;

    let done = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let (d2, s2) = (done.clone(), started.clone());
    let downloader = thread::spawn(move || -> Result<(u64, f64), String> {
        let st = Instant::now();
        dl.send(&format!("RETR {msg}\r\n"))
            .map_err(|f| format!("RETR: {f:?}"))?;
        s2.store(true, Ordering::SeqCst);
        dl.expect_ok().map_err(|f| format!("RETR reply: {f:?}"))?;
        let mut bytes = 0u64;
        let mut tail: Vec<u8> = Vec::with_capacity(10);
        let mut buf = vec![0u8; 256 * 1024];
        // Bytes the BufReader already holds.
        let held = dl.rd.buffer().to_vec();
        dl.rd.consume(held.len());
        let mut chunk = held;
        loop {
            if chunk.is_empty() {
                let k = dl.rd.get_mut().read(&mut buf).map_err(|e| {
                    d2.store(true, Ordering::SeqCst);
                    format!("download read: {e}")
                })?;
                if k == 0 {
                    d2.store(true, Ordering::SeqCst);
                    return Err(format!("server closed after {bytes} bytes"));
                }
                chunk.extend_from_slice(&buf[..k]);
            }
            bytes += chunk.len() as u64;
            tail.extend_from_slice(&chunk[chunk.len().saturating_sub(5)..]);
            if tail.len() > 5 {
                tail.drain(..tail.len() - 5);
            }
            chunk.clear();
            if tail == b"\r\n.\r\n" || st.elapsed().as_secs_f64() > max_secs {
                break;
            }
        }
        let secs = st.elapsed().as_secs_f64();
        d2.store(true, Ordering::SeqCst);
        let _ = dl.quit();
        Ok((bytes, secs))
    });

    // Bounded: wait for the RETR to be sent, at most 10 s.
    while !started.load(Ordering::SeqCst) && t0.elapsed() < Duration::from_secs(10) {
        thread::sleep(Duration::from_micros(200));
    }
    let mut rtts = Vec::new();
    let mut perr = None;
    let mut max_at = 0.0f64;
    let mut max_rtt = Duration::ZERO;
    let p0 = Instant::now();
    while !done.load(Ordering::SeqCst) && t0.elapsed().as_secs_f64() < max_secs + 10.0 {
        let st = Instant::now();
        if let Err(f) = probe.cmd("NOOP\r\n") {
            perr = Some(f);
            break;
        }
        let rtt = st.elapsed();
        if rtt > max_rtt {
            max_rtt = rtt;
            max_at = st.duration_since(p0).as_secs_f64();
        }
        rtts.push(rtt);
        thread::sleep(interval);
    }
    // A closed-loop prober sends nothing while it waits, so one long stall would
    // be a single sample. As HdrHistogram's expected-interval correction does,
    // add the samples that probes sent every `interval` would have seen.
    let mut corrected = rtts.clone();
    let step = interval.max(Duration::from_micros(100));
    for &r in &rtts {
        let mut v = r;
        while v > step && corrected.len() < 50_000_000 {
            v -= step;
            corrected.push(v);
        }
    }
    corrected.sort();
    let (bytes, secs) = downloader
        .join()
        .map_err(|_| "downloader panicked".to_string())??;
    if let Some(f) = perr {
        return Err(format!("probe failed: {f:?}"));
    }
    let _ = probe.quit();
    rtts.sort();
    println!(
        "RESULT bytes={bytes} dl_secs={secs:.2} mib_s={:.0} probes={} p50_ms={:.3} p99_ms={:.3} max_ms={:.3} max_at_s={max_at:.2} cp50_ms={:.3} cp99_ms={:.3}",
        bytes as f64 / secs / 1048576.0,
        rtts.len(),
        pct(&rtts, 0.5),
        pct(&rtts, 0.99),
        pct(&rtts, 1.0),
        pct(&corrected, 0.5),
        pct(&corrected, 0.99)
    );
    Ok(())
}

// ---------------------------------------------------------------- fixtures

/// A deterministic mbox: `messages` messages of about `size` bytes each, with
/// the headers popa3d hashes for UIDLs (so UIDLs differ), 72-column body lines
/// that never start with "From " or ".".
fn cmd_mkmbox(a: &Args) -> Result<(), String> {
    let out = a.str("out")?;
    let messages: u64 = a.num("messages", 10)?;
    let size: u64 = a.num("size", 4096)?;
    let f = fs::File::create(&out).map_err(|e| format!("{out}: {e}"))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    // One 64 KiB block of body lines, reused.
    let mut block = Vec::with_capacity(65536 + 80);
    let mut i = 0u64;
    while block.len() < 65536 {
        let l = format!(
            "line {i:08} abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789\n"
        );
        block.extend_from_slice(l.as_bytes());
        i += 1;
    }
    let io = |e: io::Error| format!("{out}: {e}");
    for m in 1..=messages {
        let head = format!(
            "From bench@example.org Mon Jan  1 00:00:00 2024\n\
             Received: from client.example.org by bench.example.org; Mon, 1 Jan 2024 00:00:{:02} +0000\n\
             Message-ID: <{m}.bench@example.org>\n\
             Date: Mon, 1 Jan 2024 00:00:00 +0000\n\
             From: Bench <bench@example.org>\n\
             To: user@example.org\n\
             Subject: bench message {m}\n\n",
            m % 60
        );
        w.write_all(head.as_bytes()).map_err(io)?;
        let mut left = size.saturating_sub(head.len() as u64);
        while left > 0 {
            // Whole lines only: cut the block at a line end.
            let want = left.min(block.len() as u64) as usize;
            let cut = match block[..want].iter().rposition(|&b| b == b'\n') {
                Some(p) => p + 1,
                None => block.iter().position(|&b| b == b'\n').unwrap() + 1,
            };
            w.write_all(&block[..cut]).map_err(io)?;
            left = left.saturating_sub(cut as u64);
        }
        w.write_all(b"\n").map_err(io)?;
    }
    w.flush().map_err(io)?;
    Ok(())
}

// ---------------------------------------------------------------- tree

fn cmd_tree(a: &Args) -> Result<(), String> {
    let pid: u32 = a.num("pid", 0)?;
    let t = tree(pid);
    let mut total = 0;
    for p in &t {
        let k = pss_kib(p.pid);
        total += k;
        println!(
            "{} {} {} pss_kib={} ticks={}",
            p.pid, p.ppid, p.name, k, p.ticks
        );
    }
    println!(
        "RESULT procs={} pss_kib={total} ticks={}",
        t.len(),
        tree_ticks(pid)
    );
    Ok(())
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let Some(sub) = argv.get(1) else {
        eprintln!("usage: pop3-load sessions|idle|pipeline|fairness|retr|mkmbox|tree --key value ...");
        return ExitCode::from(2);
    };
    let r = Args::parse(&argv[2..]).and_then(|a| match sub.as_str() {
        "sessions" => cmd_sessions(&a),
        "idle" => cmd_idle(&a),
        "pipeline" => cmd_pipeline(&a),
        "fairness" => cmd_fairness(&a),
        "retr" => cmd_retr(&a),
        "mkmbox" => cmd_mkmbox(&a),
        "tree" => cmd_tree(&a),
        _ => Err(format!("unknown subcommand {sub:?}")),
    });
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pop3-load {sub}: {e}");
            ExitCode::FAILURE
        }
    }
}
