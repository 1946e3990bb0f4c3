//! The server: the mio event loop, the bounded connection table, listeners and
//! the inetd glue, all driving [`crate::pop3`] sessions.
//!
//! inetd mode and the standalone daemon share this loop: inetd mode is the
//! same loop with no listener and exactly one connection on fd 0/1, ending when
//! that connection ends.

pub mod auth_pool;
pub mod conn;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::auth::{Account, AuthSettings, Refusal};
use crate::config::Config;
use crate::mbox::{Mailbox, MboxError};
use crate::pop3::End;
use crate::sys::process;
use crate::{crit, info, notice};

use auth_pool::{AuthPool, Outcome};
use conn::{Conn, Request, Status, Stream};

/// Token of the auth pool's waker.
const WAKER: Token = Token(usize::MAX - 1);
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
    runnable: VecDeque<Token>,
    pool: AuthPool,
    identity: Identity,
    /// inetd mode: stop when the last connection ends.
    exit_when_idle: bool,
    /// Failed logins waiting for their delay to pass before being answered.
    delayed: Vec<Delayed>,
    /// Recent failed logins per source address (bounded).
    failures: HashMap<Option<IpAddr>, Failures>,
}

/// A refusal to deliver later.
struct Delayed {
    due: Instant,
    token: Token,
    generation: u64,
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

    let mut listeners = Vec::new();
    if cfg.daemon {
        for addr in &cfg.listen {
            let l = bind(*addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            let local = l.local_addr().map_err(|e| e.to_string())?;
            info!("listening on {local}");
            listeners.push(l);
        }
        if !cfg.foreground {
            process::daemonize().map_err(|e| format!("cannot detach: {e}"))?;
        }
    }
    if identity == Identity::RootDaemon {
        process::clear_groups().map_err(|e| format!("setgroups: {e}"))?;
    }

    let poll = Poll::new().map_err(|e| format!("epoll: {e}"))?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(|e| e.to_string())?);
    let pool = AuthPool::new(cfg.auth_threads, cfg.max_sessions, settings, waker);
    let mut server = Server {
        conns: (0..cfg.max_sessions).map(|_| None).collect(),
        free: (0..cfg.max_sessions).rev().collect(),
        exit_when_idle: !cfg.daemon,
        cfg,
        poll,
        listeners,
        generation: 0,
        runnable: VecDeque::new(),
        pool,
        identity,
        delayed: Vec::new(),
        failures: HashMap::new(),
    };
    for (i, l) in server.listeners.iter_mut().enumerate() {
        server
            .poll
            .registry()
            .register(l, Token(LISTENER_BASE + i), Interest::READABLE)
            .map_err(|e| e.to_string())?;
    }
    if !server.cfg.daemon {
        let (r, w) = process::inetd_fds().map_err(|e| format!("inetd descriptors: {e}"))?;
        process::set_nodelay(std::os::fd::AsRawFd::as_raw_fd(&w));
        let peer = peer_of_fd0();
        server
            .add(Stream::Fds { r, w }, peer)
            .map_err(|e| format!("inetd descriptors: {e}"))?;
    }
    server.serve().map_err(|e| format!("event loop: {e}"))
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
        self.runnable.push_back(Token(slot));
        Ok(())
    }

    fn remove(&mut self, slot: usize) {
        if let Some(mut conn) = self.conns[slot].take() {
            conn.stream.deregister(self.poll.registry());
            self.free.push(slot);
        }
    }

    fn live(&self) -> usize {
        self.conns.len() - self.free.len()
    }

    fn serve(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(256);
        let mut last_sweep = Instant::now();
        loop {
            if self.exit_when_idle && self.live() == 0 {
                return Ok(());
            }
            let now = Instant::now();
            let mut timeout = Duration::from_secs(1);
            if !self.runnable.is_empty() {
                timeout = Duration::ZERO;
            }
            if let Some(due) = self.delayed.iter().map(|d| d.due).min() {
                timeout = timeout.min(due.saturating_duration_since(now));
            }
            let timeout = Some(timeout);
            match self.poll.poll(&mut events, timeout) {
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
                } else if t.0 >= LISTENER_BASE {
                    self.accept(t.0 - LISTENER_BASE);
                } else if let Some(conn) = self.conns.get_mut(t.0).and_then(Option::as_mut) {
                    conn.ready(
                        ev.is_readable() || ev.is_read_closed() || ev.is_error(),
                        ev.is_writable() || ev.is_write_closed() || ev.is_error(),
                    );
                    self.runnable.push_back(t);
                }
            }
            self.release_delayed();
            // One bounded turn for every connection with work.
            let turn: Vec<Token> = self.runnable.drain(..).collect();
            let mut seen = std::collections::HashSet::with_capacity(turn.len());
            for t in turn {
                if seen.insert(t) {
                    self.drive(t);
                }
            }
            if last_sweep.elapsed() >= Duration::from_secs(1) {
                last_sweep = Instant::now();
                self.sweep_timeouts();
            }
        }
    }

    fn accept(&mut self, idx: usize) {
        loop {
            let (stream, addr) = match self.listeners[idx].accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: log, and let the next event retry.
                    crit!("accept: {e}");
                    return;
                }
            };
            process::set_nodelay(std::os::fd::AsRawFd::as_raw_fd(&stream));
            if self.free.is_empty() {
                notice!("{}: sessions limit reached", addr.ip());
                refuse(
                    stream,
                    b"-ERR [SYS/TEMP] too many sessions, try again later\r\n",
                );
                continue;
            }
            info!("session from {}", addr.ip());
            if let Err(e) = self.add(Stream::Tcp(stream), Some(addr.ip())) {
                crit!("{}: cannot register connection: {e}", addr.ip());
            }
        }
    }

    fn drive(&mut self, token: Token) {
        let slot = token.0;
        let mut requests = Vec::new();
        let status = match self.conns.get_mut(slot).and_then(Option::as_mut) {
            Some(conn) => conn.drive(&mut requests),
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
                        self.runnable.push_back(token);
                    }
                }
                Request::Ended(end) => log_end(&end),
            }
        }
        match status {
            Status::Idle => {}
            Status::Yield => self.runnable.push_back(token),
            Status::Closed => self.remove(slot),
        }
    }

    fn auth_outcome(&mut self, outcome: Outcome) {
        let slot = outcome.token.0;
        let identity = self.identity;
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
                self.delayed.push(Delayed {
                    due: Instant::now() + delay,
                    token: outcome.token,
                    generation: outcome.generation,
                });
                return;
            }
            Ok(account) => {
                info!("authentication passed for {}{from}", account.name);
                let path = spool.join(&account.name);
                match open_mailbox(identity, &account, &path, &limits) {
                    Ok(mb) => {
                        let count = mb.count();
                        let bytes: u64 = (0..count).map(|i| mb.size(i)).sum();
                        info!(
                            "{count} messages ({bytes} bytes) loaded for {}",
                            account.name
                        );
                        conn.session.login_ok(mb, &mut conn.out);
                    }
                    Err(e) => {
                        notice!("failed or refused to load {}: {e}", path.display());
                        conn.session.load_failed(&e, &mut conn.out);
                    }
                }
            }
        }
        self.runnable.push_back(outcome.token);
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

    /// Answers the failed logins whose delay has passed.
    fn release_delayed(&mut self) {
        let now = Instant::now();
        let mut i = 0;
        while i < self.delayed.len() {
            if self.delayed[i].due > now {
                i += 1;
                continue;
            }
            let d = self.delayed.swap_remove(i);
            if let Some(conn) = self.conns.get_mut(d.token.0).and_then(Option::as_mut)
                && conn.generation == d.generation
            {
                conn.auth_done();
                conn.session.login_refused(&mut conn.out);
                self.runnable.push_back(d.token);
            }
        }
    }

    fn sweep_timeouts(&mut self) {
        let now = Instant::now();
        for slot in 0..self.conns.len() {
            let Some(conn) = self.conns[slot].as_ref() else {
                continue;
            };
            let limit = if conn.authenticated() {
                self.cfg.idle_timeout
            } else {
                self.cfg.login_timeout
            };
            if !conn.waiting_auth() && now.duration_since(conn.last_activity) > limit {
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

/// Opens the user's mailbox with the right identity.
fn open_mailbox(
    identity: Identity,
    account: &Account,
    path: &std::path::Path,
    limits: &crate::config::MailboxLimits,
) -> Result<Mailbox, MboxError> {
    match identity {
        Identity::Unprivileged => Mailbox::open(path, limits),
        Identity::RootDaemon => {
            let _as_user =
                process::FsIdentity::enter(account.uid, account.gid).map_err(MboxError::Io)?;
            Mailbox::open(path, limits)
        }
        Identity::RootInetd => {
            if let Err(e) = process::become_user(account.uid, account.gid) {
                crit!("cannot become {}: {e}", account.name);
                // Continuing as root would be unsafe: stop here.
                std::process::exit(1);
            }
            Mailbox::open(path, limits)
        }
    }
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
