//! The server: the mio event loop, the bounded connection table, listeners and
//! the inetd glue, all driving [`crate::pop3`] sessions.
//!
//! inetd mode and the standalone daemon share this loop: inetd mode is the
//! same loop with no listener and exactly one connection on fd 0/1, ending when
//! that connection ends.

pub mod access;
pub mod auth_pool;
pub mod conn;
pub mod limits;
pub mod mailbox;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use std::os::fd::AsRawFd;

use crate::auth::{AuthSettings, Refusal};
use crate::config::Config;
use crate::config::{INDEX_CACHE_BYTES, INDEX_CACHE_ENTRIES, SCAN_BUDGET};
use crate::mbox::{IndexCache, MboxError, Opening, Step};
use crate::pop3::End;
use crate::sys::process;
use crate::sys::signal::SignalFd;
use crate::{crit, info, notice};

use access::{Rules, Watcher};
use auth_pool::{AuthPool, Outcome};
use conn::{Conn, PendingOpen, Request, Status, Stream};
use limits::{Limits, Refused};
use mailbox::UserMailbox;

/// Token of the auth pool's waker.
const WAKER: Token = Token(usize::MAX - 1);
/// Token of the signalfd.
const SIGNALS: Token = Token(usize::MAX - 2);
/// How long to stop accepting after running out of descriptors.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Listener tokens start here (connections use 0..max_sessions).
const LISTENER_BASE: usize = usize::MAX / 2;

/// How this process may change identity for a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Identity {
    /// Root serving many users: open mailboxes with the user's fsuid/fsgid.
    RootDaemon,
    /// Root in inetd mode: become the user for good after login.
    RootInetd,
    /// Not root: serve only our own uid, no identity changes.
    Unprivileged,
}

struct Server {
    cfg: Config,
    poll: Poll,
    listeners: Vec<TcpListener>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    generation: u64,
    /// Connections with work to do this turn, each at most once
    /// (`queued[slot]` says whether it is already in).
    runnable: Vec<Token>,
    queued: Vec<bool>,
    /// The previous turn's list, kept to reuse its allocation.
    turn: Vec<Token>,
    pool: AuthPool,
    identity: Identity,
    /// inetd mode: stop when the last connection ends.
    exit_when_idle: bool,
    /// Things to do later: answer a failed login, or give a connection its
    /// next turn after a lock wait.
    timers: Vec<Timer>,
    /// Indexes of recently opened mailboxes (daemon mode only).
    cache: Option<IndexCache>,
    /// Recent failed logins per source address (bounded).
    failures: HashMap<Option<IpAddr>, Failures>,
    /// Session and per-source admission counts.
    limits: Limits,
    /// SIGTERM/SIGINT/SIGHUP as events.
    signals: SignalFd,
    /// Set by SIGTERM/SIGINT: sessions still open at this time are closed.
    shutdown_at: Option<Instant>,
    /// Accepting stopped until then (out of descriptors).
    accept_paused: Option<Instant>,
    /// Last "limit reached" log line (one per `min_delay`, [`log_due`]).
    last_limit_log: Option<Instant>,
    /// Last failed-accept (out of descriptors) log line, the same way.
    last_accept_error_log: Option<Instant>,
    /// The spool directory's group when it is group-writable (for dot-locks).
    spool_group: Option<u32>,
    /// hosts_access(5) rules and the watcher that reloads them.
    access: Rules,
    watcher: Watcher,
    /// Our name for daemon lists (basename of argv[0]).
    daemon_name: String,
}

/// Something to do for a connection at a later time.
struct Timer {
    due: Instant,
    token: Token,
    generation: u64,
    action: TimerAction,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TimerAction {
    /// Answer the failed login now.
    Refuse,
    /// Give the connection another turn (it waited for a lock).
    Wake,
}

/// Recent failed logins from one address.
struct Failures {
    count: u32,
    last: Instant,
}

/// Failures older than this no longer lengthen the delay.
const FAILURE_MEMORY: Duration = Duration::from_secs(600);
/// Most source addresses remembered for failure delays.
const FAILURE_SOURCES_MAX: usize = 4096;

/// Binds the listeners (daemon mode) or adopts fd 0/1 (inetd mode) and serves
/// until done. Errors are one line for the admin.
pub fn run(cfg: Config) -> Result<(), String> {
    let root = process::euid() == 0;
    let identity = match (root, cfg.daemon) {
        (true, true) => Identity::RootDaemon,
        (true, false) => Identity::RootInetd,
        (false, _) => Identity::Unprivileged,
    };
    let settings = AuthSettings {
        passwd: cfg.passwd.clone(),
        shadow: cfg.shadow.clone(),
        users: cfg.users.clone(),
        only_uid: if root { None } else { Some(process::uid()) },
    };
    crate::auth::check_files(&settings)?;

    let mut watcher = Watcher::new(&cfg.hosts_allow, &cfg.hosts_deny);
    let access = load_rules(&mut watcher);
    let daemon_name = std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| access::DAEMON.to_string());
    // Before any thread exists, so every thread inherits the blocked mask.
    let signals = SignalFd::new().map_err(|e| format!("signalfd: {e}"))?;
    let spool_group = spool_group(&cfg.spool);

    let mut listeners = Vec::new();
    let mut detached = None;
    if cfg.daemon {
        let inherited = crate::sys::net::inherited_listeners()
            .map_err(|e| format!("socket activation: {e}"))?;
        if inherited.is_empty() {
            for addr in &cfg.listen {
                let l = bind(*addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
                listeners.push(l);
            }
        } else {
            listeners.extend(inherited.into_iter().map(TcpListener::from_std));
        }
        for l in &listeners {
            let local = l.local_addr().map_err(|e| e.to_string())?;
            info!("listening on {local}");
        }
        // The pid file is complete before `pop3d -D` returns: the parent
        // waits for the daemon to be ready, then writes it with the child's
        // pid, atomically (temp file + rename).
        if !cfg.foreground {
            detached = Some(
                process::daemonize(cfg.pidfile.as_deref())
                    .map_err(|e| format!("cannot detach: {e}"))?,
            );
            crate::log::forget_pid();
        } else if let Some(path) = &cfg.pidfile {
            process::write_pidfile(path, std::process::id())
                .map_err(|e| format!("cannot write pid file {}: {e}", path.display()))?;
        }
    }
    if identity == Identity::RootDaemon {
        // Only the spool's group remains, so dot-locks can be made in a
        // root:mail 2775 spool, as setgid-mail delivery agents do.
        let groups: Vec<u32> = spool_group.into_iter().collect();
        process::set_groups(&groups).map_err(|e| format!("setgroups: {e}"))?;
    }

    let poll = Poll::new().map_err(|e| format!("epoll: {e}"))?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(|e| e.to_string())?);
    let pool = AuthPool::new(cfg.auth_threads, cfg.max_sessions, settings, waker);
    let (cfg_max_sessions, cfg_per_source, cfg_min_delay, cfg_daemon) = (
        cfg.max_sessions,
        cfg.max_per_source,
        cfg.min_delay,
        cfg.daemon,
    );
    let mut server = Server {
        conns: (0..cfg.max_sessions).map(|_| None).collect(),
        free: (0..cfg.max_sessions).rev().collect(),
        exit_when_idle: !cfg.daemon,
        cfg,
        poll,
        listeners,
        generation: 0,
        runnable: Vec::new(),
        queued: vec![false; cfg_max_sessions],
        turn: Vec::new(),
        pool,
        identity,
        timers: Vec::new(),
        cache: cfg_daemon.then(|| IndexCache::new(INDEX_CACHE_ENTRIES, INDEX_CACHE_BYTES)),
        failures: HashMap::new(),
        limits: Limits::new(cfg_max_sessions, cfg_per_source, cfg_min_delay),
        signals,
        shutdown_at: None,
        accept_paused: None,
        last_limit_log: None,
        last_accept_error_log: None,
        spool_group,
        access,
        watcher,
        daemon_name,
    };
    server
        .poll
        .registry()
        .register(
            &mut SourceFd(&server.signals.as_raw_fd()),
            SIGNALS,
            Interest::READABLE,
        )
        .map_err(|e| e.to_string())?;
    for (i, l) in server.listeners.iter_mut().enumerate() {
        server
            .poll
            .registry()
            .register(l, Token(LISTENER_BASE + i), Interest::READABLE)
            .map_err(|e| e.to_string())?;
    }
    if !server.cfg.daemon {
        let (r, w) = process::inetd_fds().map_err(|e| format!("inetd descriptors: {e}"))?;
        process::set_nodelay(w.as_raw_fd());
        let peer = peer_of_fd0();
        if let Some(ip) = peer
            && !server.permitted(ip)
        {
            return Ok(());
        }
        server
            .add(Stream::Fds { r, w }, peer)
            .map_err(|e| format!("inetd descriptors: {e}"))?;
    }
    if let Some(d) = detached {
        d.ready();
    }
    let result = server.serve().map_err(|e| format!("event loop: {e}"));
    if let Some(path) = &server.cfg.pidfile {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// Loads the access rules, logging every warning.
fn load_rules(watcher: &mut Watcher) -> Rules {
    let (rules, warnings) = watcher.load();
    for w in warnings {
        notice!("access rules: {w}");
    }
    rules
}

/// The spool directory's group, when members of it may create files there
/// (Debian's root:mail 2775). Never group 0: root's group grants too much.
fn spool_group(spool: &std::path::Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(spool).ok()?;
    (meta.is_dir() && meta.mode() & 0o020 != 0 && meta.gid() != 0).then(|| meta.gid())
}

/// A listening socket with SO_REUSEADDR; IPv6 sockets are v6-only so that
/// `-4 -6` can bind both families on one port.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let std_listener = crate::sys::net::listen(addr, 64)?;
    Ok(TcpListener::from_std(std_listener))
}

fn peer_of_fd0() -> Option<IpAddr> {
    crate::sys::net::peer_addr(0).map(|a| a.ip())
}

impl Server {
    fn add(&mut self, mut stream: Stream, peer: Option<IpAddr>) -> io::Result<()> {
        let Some(slot) = self.free.pop() else {
            return Err(io::Error::other("connection table full"));
        };
        self.generation += 1;
        if let Err(e) = stream.register(self.poll.registry(), Token(slot)) {
            self.free.push(slot);
            return Err(e);
        }
        let conn = Conn::new(stream, peer, self.generation, self.cfg.session);
        self.conns[slot] = Some(conn);
        self.wake(Token(slot));
        Ok(())
    }

    /// Puts a connection on this turn's list (once).
    fn wake(&mut self, token: Token) {
        if let Some(q) = self.queued.get_mut(token.0)
            && !*q
        {
            *q = true;
            self.runnable.push(token);
        }
    }

    fn remove(&mut self, slot: usize) {
        if let Some(mut conn) = self.conns[slot].take() {
            conn.stream.deregister(self.poll.registry());
            if let (Some(store), Some(cache)) = (conn.session.take_store(), self.cache.as_mut()) {
                store.into_cache(cache);
            }
            self.free.push(slot);
            if let (Some(ip), true) = (conn.peer, self.cfg.daemon) {
                self.limits.release(ip, conn.started, Instant::now());
            }
        }
    }

    fn live(&self) -> usize {
        self.conns.len() - self.free.len()
    }

    fn serve(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(256);
        let mut last_sweep = Instant::now();
        loop {
            if (self.exit_when_idle || self.shutdown_at.is_some()) && self.live() == 0 {
                return Ok(());
            }
            let now = Instant::now();
            if self.shutdown_at.is_some_and(|t| now >= t) {
                info!("closing {} sessions still open at shutdown", self.live());
                for slot in 0..self.conns.len() {
                    self.remove(slot);
                }
                return Ok(());
            }
            let mut timeout = Duration::from_secs(1);
            if !self.runnable.is_empty() {
                timeout = Duration::ZERO;
            }
            let timers = self
                .timers
                .iter()
                .map(|t| t.due)
                .chain(self.accept_paused)
                .chain(self.shutdown_at);
            if let Some(due) = timers.min() {
                timeout = timeout.min(due.saturating_duration_since(now));
            }
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for ev in events.iter() {
                let t = ev.token();
                if t == WAKER {
                    while let Some(outcome) = self.pool.next_outcome() {
                        self.auth_outcome(outcome);
                    }
                } else if t == SIGNALS {
                    self.signals();
                } else if t.0 >= LISTENER_BASE {
                    if self.accept_paused.is_none() {
                        self.accept(t.0 - LISTENER_BASE);
                    }
                } else if let Some(conn) = self.conns.get_mut(t.0).and_then(Option::as_mut) {
                    conn.ready(
                        ev.is_readable() || ev.is_error(),
                        ev.is_writable() || ev.is_write_closed() || ev.is_error(),
                        ev.is_read_closed(),
                    );
                    self.wake(t);
                }
            }
            if self.accept_paused.is_some_and(|t| Instant::now() >= t) {
                self.accept_paused = None;
                for i in 0..self.listeners.len() {
                    self.accept(i);
                }
            }
            self.run_timers();
            // One bounded turn for every connection with work.
            std::mem::swap(&mut self.turn, &mut self.runnable);
            let turn = std::mem::take(&mut self.turn);
            for &t in &turn {
                self.queued[t.0] = false;
            }
            for &t in &turn {
                self.drive(t);
            }
            self.turn = turn;
            self.turn.clear();
            if last_sweep.elapsed() >= Duration::from_secs(1) {
                last_sweep = Instant::now();
                self.sweep_timeouts();
                self.limits.expire(last_sweep);
                if self.watcher.changed() {
                    info!("access rules changed, reloading");
                    self.access = load_rules(&mut self.watcher);
                }
            }
        }
    }

    /// Handles pending signals: TERM/INT stop accepting and start the grace
    /// period; HUP is a reload request.
    fn signals(&mut self) {
        while let Some(sig) = self.signals.next() {
            match sig {
                libc::SIGHUP => {
                    info!("SIGHUP: reloading access rules");
                    self.access = load_rules(&mut self.watcher);
                }
                _ => {
                    if self.shutdown_at.is_none() {
                        info!(
                            "signal {sig}: no new sessions; {} open sessions get {} s to finish",
                            self.live(),
                            self.cfg.shutdown_grace.as_secs()
                        );
                        for mut l in self.listeners.drain(..) {
                            let _ = self.poll.registry().deregister(&mut l);
                        }
                        self.shutdown_at = Some(Instant::now() + self.cfg.shutdown_grace);
                    }
                }
            }
        }
    }

    /// Checks `ip` against the access rules, logging a refusal.
    fn permitted(&self, ip: IpAddr) -> bool {
        let verdict = self.access.check(&self.daemon_name, ip);
        if !verdict.permit {
            notice!(
                "{ip}: refused by access rules ({})",
                verdict.origin.unwrap_or("default")
            );
        }
        verdict.permit
    }

    fn accept(&mut self, idx: usize) {
        loop {
            let Some(listener) = self.listeners.get(idx) else {
                return;
            };
            let (stream, addr) = match listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE/ENFILE/ENOBUFS: the connection stays queued;
                    // pause accepting briefly instead of spinning on it, and
                    // say so once per minimum-delay window, not per retry.
                    let now = Instant::now();
                    if log_due(&mut self.last_accept_error_log, now, self.cfg.min_delay) {
                        crit!(
                            "accept: {e} (with {} sessions); new connections wait",
                            self.live()
                        );
                    }
                    self.accept_paused = Some(now + ACCEPT_PAUSE);
                    return;
                }
            };
            let ip = addr.ip();
            if !self.permitted(ip) {
                continue;
            }
            let now = Instant::now();
            let admitted = if self.free.is_empty() {
                Err(Refused::Sessions)
            } else {
                self.limits.admit(ip, now)
            };
            if let Err(why) = admitted {
                if log_due(&mut self.last_limit_log, now, self.cfg.min_delay) {
                    match why {
                        Refused::Sessions => notice!("{ip}: sessions limit reached"),
                        Refused::PerSource => notice!("{ip}: per source limit reached"),
                    }
                }
                refuse(
                    stream,
                    b"-ERR [SYS/TEMP] too many sessions, try again later\r\n",
                );
                continue;
            }
            process::set_nodelay(stream.as_raw_fd());
            info!("session from {ip}");
            if let Err(e) = self.add(Stream::Tcp(stream), Some(ip)) {
                crit!("{ip}: cannot register connection: {e}");
                self.limits.release(ip, now, now);
            }
        }
    }

    fn drive(&mut self, token: Token) {
        let slot = token.0;
        if self
            .conns
            .get(slot)
            .and_then(Option::as_ref)
            .is_some_and(|c| c.opening.is_some())
        {
            self.open_step(token);
            return;
        }
        let mut requests = Vec::new();
        let status = match self.conns.get_mut(slot).and_then(Option::as_mut) {
            Some(conn) => {
                let status = conn.drive(&mut requests, self.poll.registry());
                if let (Some(ip), true) = (conn.gone_client(), self.cfg.daemon) {
                    self.limits.release(ip, conn.started, Instant::now());
                }
                status
            }
            None => return,
        };
        for req in requests {
            match req {
                Request::Auth(creds) => {
                    let generation = self.conns[slot].as_ref().map_or(0, |c| c.generation);
                    if !self.pool.submit(token, generation, creds) {
                        // The queue is full: refuse like a failed check.
                        if let Some(conn) = self.conns[slot].as_mut() {
                            conn.auth_done();
                            conn.session.login_refused(&mut conn.out);
                        }
                        self.wake(token);
                    }
                }
                Request::Ended(end) => log_end(&end),
            }
        }
        match status {
            Status::Idle => {}
            Status::Yield => self.wake(token),
            Status::Sleep(d) => {
                let generation = self.conns[slot].as_ref().map_or(0, |c| c.generation);
                self.timers.push(Timer {
                    due: Instant::now() + d,
                    token,
                    generation,
                    action: TimerAction::Wake,
                });
            }
            Status::Closed => self.remove(slot),
        }
    }

    fn auth_outcome(&mut self, outcome: Outcome) {
        let slot = outcome.token.0;
        let identity = self.identity;
        let spool_group = self.spool_group;
        let spool = self.cfg.spool.clone();
        let limits = self.cfg.mailbox;
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if conn.generation != outcome.generation || !conn.waiting_auth() {
            return;
        }
        let conn_peer = conn.peer;
        let from = conn.peer.map(|p| format!(" from {p}")).unwrap_or_default();
        if outcome.result.is_ok() {
            conn.auth_done();
        }
        match outcome.result {
            Err(refusal) => {
                let who = match refusal {
                    Refusal::UnknownUser | Refusal::BadInput => "UNKNOWN USER".to_string(),
                    _ => String::from_utf8_lossy(&outcome.user).into_owned(),
                };
                notice!("authentication failed for {who}{from}: {refusal}");
                let delay = self.failure_delay(conn_peer);
                self.timers.push(Timer {
                    due: Instant::now() + delay,
                    token: outcome.token,
                    generation: outcome.generation,
                    action: TimerAction::Refuse,
                });
                return;
            }
            Ok(account) => {
                info!("authentication passed for {}{from}", account.name);
                let path = spool.join(&account.name);
                let as_user = match identity {
                    Identity::RootDaemon => Some((account.uid, account.gid)),
                    Identity::RootInetd => {
                        if let Err(e) = process::become_user(account.uid, account.gid, spool_group)
                        {
                            crit!("cannot become {}: {e}", account.name);
                            // Continuing as root would be dangerous: stop here.
                            std::process::exit(1);
                        }
                        None
                    }
                    Identity::Unprivileged => None,
                };
                let started = {
                    let guard = process::FsIdentity::enter_opt(as_user);
                    match guard {
                        Ok(_as_user) => Opening::start(&path, &limits, self.cache.as_mut()),
                        Err(e) => Err(MboxError::Io(e)),
                    }
                };
                let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                    return;
                };
                match started {
                    Ok(opening) => {
                        conn.opening = Some(Box::new(PendingOpen {
                            opening,
                            as_user,
                            user: account.name,
                        }));
                    }
                    Err(e) => {
                        notice!("failed or refused to load {}: {e}", path.display());
                        conn.auth_done();
                        conn.session.load_failed(&e, &mut conn.out);
                    }
                }
            }
        }
        self.wake(outcome.token);
    }

    /// One bounded step of opening a connection's mailbox (a lock attempt or
    /// about SCAN_BUDGET bytes of scanning). The connection answers PASS when
    /// the opening is done.
    fn open_step(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(token.0).and_then(Option::as_mut) else {
            return;
        };
        let Some(mut p) = conn.opening.take() else {
            return;
        };
        p.opening.adopt_cached(self.cache.as_mut());
        let step = {
            let guard = process::FsIdentity::enter_opt(p.as_user);
            match guard {
                Ok(_as_user) => p.opening.step(SCAN_BUDGET),
                Err(e) => Err(MboxError::Io(e)),
            }
        };
        match step {
            Ok(Step::Pending) => {
                conn.opening = Some(p);
                self.wake(token);
            }
            Ok(Step::Waiting(d)) => {
                let generation = conn.generation;
                conn.opening = Some(p);
                self.timers.push(Timer {
                    due: Instant::now() + d,
                    token,
                    generation,
                    action: TimerAction::Wake,
                });
            }
            Ok(Step::Done(mb)) => {
                let count = mb.count();
                let scanned = match (mb.scanned_bytes(), mb.scan_parts()) {
                    (0, _) => String::new(),
                    (n, 1) => format!(" (scanned {n} bytes)"),
                    (n, k) => format!(" (scanned {n} bytes in {k} threads)"),
                };
                info!(
                    "{count} messages ({} bytes) loaded for {}{scanned}",
                    mb.total_size(),
                    p.user
                );
                conn.auth_done();
                conn.session
                    .login_ok(UserMailbox::new(*mb, p.as_user), &mut conn.out);
                self.wake(token);
            }
            Err(e) => {
                notice!("failed or refused to load mailbox of {}: {e}", p.user);
                conn.auth_done();
                conn.session.load_failed(&e, &mut conn.out);
                self.wake(token);
            }
        }
    }

    /// How long to hold back the answer to a failed login from `peer`, and
    /// records the failure.
    fn failure_delay(&mut self, peer: Option<IpAddr>) -> Duration {
        let now = Instant::now();
        if self.failures.len() >= FAILURE_SOURCES_MAX {
            self.failures
                .retain(|_, f| now.duration_since(f.last) < FAILURE_MEMORY);
            if self.failures.len() >= FAILURE_SOURCES_MAX {
                self.failures.clear();
            }
        }
        let f = self.failures.entry(peer).or_insert(Failures {
            count: 0,
            last: now,
        });
        if now.duration_since(f.last) >= FAILURE_MEMORY {
            f.count = 0;
        }
        f.last = now;
        let factor = 1u32 << f.count.min(16);
        f.count = f.count.saturating_add(1);
        self.cfg
            .fail_delay
            .saturating_mul(factor)
            .min(self.cfg.fail_delay_max)
    }

    /// Runs the timers that are due.
    fn run_timers(&mut self) {
        let now = Instant::now();
        let mut i = 0;
        while i < self.timers.len() {
            if self.timers[i].due > now {
                i += 1;
                continue;
            }
            let t = self.timers.swap_remove(i);
            let Some(conn) = self.conns.get_mut(t.token.0).and_then(Option::as_mut) else {
                continue;
            };
            if conn.generation != t.generation {
                continue;
            }
            if t.action == TimerAction::Refuse {
                conn.auth_done();
                conn.session.login_refused(&mut conn.out);
            }
            self.wake(t.token);
        }
    }

    fn sweep_timeouts(&mut self) {
        let now = Instant::now();
        for slot in 0..self.conns.len() {
            let Some(conn) = self.conns[slot].as_ref() else {
                continue;
            };
            if conn.finishing() {
                continue; // no client any more, only bounded work left
            }
            // Before login the whole login must fit the login timeout (a
            // byte now and then does not extend it); after login, and while
            // the last reply waits for the client, idle time in either
            // direction counts.
            let expired = if conn.authenticated() || conn.closing() {
                now.duration_since(conn.last_activity) > self.cfg.idle_timeout
            } else {
                now.duration_since(conn.started) > self.cfg.login_timeout
            };
            if !conn.waiting_auth() && expired {
                if conn.authenticated() {
                    info!("connection timed out");
                } else {
                    info!("login timed out");
                }
                self.remove(slot);
            }
        }
    }
}

/// Rate limit for repeated log lines: true (and `last` set to `now`) when
/// nothing was logged through `last` within `every`.
fn log_due(last: &mut Option<Instant>, now: Instant, every: Duration) -> bool {
    if last.is_some_and(|t| now.duration_since(t) < every) {
        return false;
    }
    *last = Some(now);
    true
}

/// Sends a one-line refusal if the socket takes it at once, then closes.
fn refuse(mut stream: mio::net::TcpStream, line: &[u8]) {
    use std::io::Write;
    let _ = stream.write(line);
}

fn log_end(end: &End) {
    match end {
        End::QuitUnauthenticated => info!("didn't attempt authentication"),
        End::Quit(None) => info!("session ended, nothing deleted"),
        End::Quit(Some(e)) => info!(
            "{} ({}) deleted, {} ({}) left",
            e.deleted, e.deleted_bytes, e.kept, e.kept_bytes
        ),
        End::Disconnected {
            authenticated: true,
        } => info!("premature disconnect"),
        End::Disconnected {
            authenticated: false,
        } => info!("didn't attempt authentication"),
        End::TooManyAuthFailures => notice!("too many authentication failures"),
        End::TooManyErrors => notice!("too many bad commands"),
        End::LoadFailed => {}
        End::MailboxChanged => notice!("another program changed the mailbox, giving up"),
        End::UpdateFailed => crit!("failed to update the mailbox"),
        End::ReadFailed => crit!("server failure reading the mailbox"),
    }
}
