//! One client connection: its stream, its fixed reply buffer and its sans-IO
//! session, and the code that moves bytes between them without blocking.
//!
//! [`Conn::drive`] does a bounded amount of work per call (at most
//! [`TURN_OUTPUT_BUDGET`] bytes written) so that one busy client cannot hold up
//! the others; it reports whether the connection wants another turn at once.
//!
//! A connection whose client took a full reply buffer in one write is lent a
//! larger one ([`OUTPUT_BUF_LARGE`]), if fewer than [`LARGE_OUTPUT_BUFFERS`]
//! connections of the process have one: a long RETR then costs a quarter of
//! the reads and writes. It gives it back when a write would block with what
//! is waiting fitting the normal buffer (the client no longer keeps up), and
//! when the session waits for a command with nothing left to write.
//!
//! A QUIT answered at an expunge's commit point ([`Session::finishing`])
//! leaves work after the end, and so does a session that ends before the
//! index file its opening started is written: the connection hangs up (the
//! client is told and goes) and keeps its slot, stepping the work, until it
//! is done.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::time::Instant;

use mio::net::TcpStream;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use crate::budget::{Budget, Lease};
use crate::config::{
    LARGE_OUTPUT_BUFFERS, OUTPUT_BUF, OUTPUT_BUF_LARGE, SessionLimits, TURN_OUTPUT_BUDGET,
};
use crate::pop3::{Buffer, Credentials, End, Finish, Session, Want};
use crate::sys::process;

use super::mailbox::UserMailbox;
use crate::mbox::Opening;

/// The byte stream of a connection.
pub enum Stream {
    /// A TCP connection accepted by the daemon.
    Tcp(TcpStream),
    /// inetd's descriptors: fd 0 to read, fd 1 to write (the same socket, or
    /// two pipes).
    Fds {
        /// Read side.
        r: File,
        /// Write side.
        w: File,
    },
    /// Hung up: the session is over and its connection closed.
    Closed,
}

impl Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Fds { r, .. } => r.read(buf),
            Stream::Closed => Ok(0),
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Fds { w, .. } => w.write(buf),
            Stream::Closed => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }

    /// Registers for readable and writable events under `token`.
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => registry.register(s, token, Interest::READABLE | Interest::WRITABLE),
            Stream::Fds { r, w } => {
                registry.register(&mut SourceFd(&r.as_raw_fd()), token, Interest::READABLE)?;
                registry.register(&mut SourceFd(&w.as_raw_fd()), token, Interest::WRITABLE)
            }
            Stream::Closed => Ok(()),
        }
    }

    /// Removes the registrations made by [`Stream::register`].
    pub fn deregister(&mut self, registry: &Registry) {
        match self {
            Stream::Tcp(s) => {
                let _ = registry.deregister(s);
            }
            Stream::Fds { r, w } => {
                let _ = registry.deregister(&mut SourceFd(&r.as_raw_fd()));
                let _ = registry.deregister(&mut SourceFd(&w.as_raw_fd()));
            }
            Stream::Closed => {}
        }
    }
}

/// Connections holding a large reply buffer now, in the whole process.
static LARGE_BUFFERS: Budget = Budget::new(LARGE_OUTPUT_BUFFERS);

/// What a connection needs after a [`Conn::drive`] call.
#[derive(Debug, PartialEq, Eq)]
pub enum Status {
    /// Nothing to do until the next readiness event or auth result.
    Idle,
    /// Give it another turn after this long (it waits for a lock).
    Sleep(std::time::Duration),
    /// More work is ready: give it another turn after the others.
    Yield,
    /// The connection is finished and can be dropped.
    Closed,
}

/// A mailbox being opened for a connection whose password was right.
pub struct PendingOpen {
    /// The opening, stepped by the event loop.
    pub opening: Opening,
    /// File-system identity for the steps (root daemon mode).
    pub as_user: Option<(u32, u32)>,
    /// The account name, for the log.
    pub user: String,
}

/// Something the event loop must act on after a drive.
pub enum Request {
    /// Check these credentials.
    Auth(Credentials),
    /// The session ended this way (for the log).
    Ended(End),
}

/// A connection and its session.
pub struct Conn {
    /// The client's stream.
    pub stream: Stream,
    /// Peer address, when known (inetd over a pipe has none).
    pub peer: Option<IpAddr>,
    /// Slot generation, to match late auth results.
    pub generation: u64,
    /// When the connection was accepted.
    pub started: Instant,
    /// Time of the last progress in either direction, or when the server
    /// last worked or waited on the client's behalf.
    pub last_activity: Instant,
    /// The protocol state.
    pub session: Session<UserMailbox>,
    /// Reply bytes waiting to be written.
    pub out: Buffer,
    /// The mailbox being opened after a good password.
    pub opening: Option<Box<PendingOpen>>,
    /// Set while the reply buffer is the large one.
    large: Option<Lease>,
    readable: bool,
    writable: bool,
    /// An event said the peer closed its side: reads go on until one
    /// returns 0, however short they are.
    read_closed: bool,
    eof: bool,
    closing: bool,
    waiting_auth: bool,
    /// When QUIT was answered with work of the session left.
    answered: Option<Instant>,
}

impl Conn {
    /// A new connection with its greeting queued.
    pub fn new(
        stream: Stream,
        peer: Option<IpAddr>,
        generation: u64,
        limits: SessionLimits,
    ) -> Conn {
        let mut out = Buffer::new(OUTPUT_BUF);
        let session = Session::new(limits, &mut out);
        Conn {
            stream,
            peer,
            generation,
            started: Instant::now(),
            last_activity: Instant::now(),
            session,
            out,
            opening: None,
            large: None,
            readable: true,
            writable: true,
            read_closed: false,
            eof: false,
            closing: false,
            waiting_auth: false,
            answered: None,
        }
    }

    /// Records a readiness event.
    pub fn ready(&mut self, readable: bool, writable: bool, read_closed: bool) {
        self.readable |= readable || read_closed;
        self.writable |= writable;
        self.read_closed |= read_closed;
    }

    /// True while a password check is outstanding.
    pub fn waiting_auth(&self) -> bool {
        self.waiting_auth
    }

    /// The auth result (and, after a good password, the opened mailbox) was
    /// delivered to the session. Idle time counts from here: the check and
    /// the opening were the server's work, not the client idling.
    pub fn auth_done(&mut self) {
        self.waiting_auth = false;
        self.last_activity = Instant::now();
    }

    /// True once the session is logged in.
    pub fn authenticated(&self) -> bool {
        self.session.authenticated()
    }

    /// True while the session ended with work left (an expunge answered at
    /// its commit point): bounded work for the server, no timeouts.
    pub fn finishing(&self) -> bool {
        self.session.finishing()
    }

    /// The client's address, once, after the connection hung up with work
    /// left: the client is gone, so its per-source lease can go too (the
    /// slot stays taken until the work is done).
    pub fn gone_client(&mut self) -> Option<IpAddr> {
        if self.hung_up() {
            self.peer.take()
        } else {
            None
        }
    }

    /// True once the client's connection was closed with work of the
    /// session left ([`Conn::hang_up`]).
    fn hung_up(&self) -> bool {
        matches!(self.stream, Stream::Closed)
    }

    /// True once the session ended (its last reply may still be on its way).
    pub fn closing(&self) -> bool {
        self.closing
    }

    /// Moves bytes and runs the session; `requests` collects what the event
    /// loop must do for this connection.
    pub fn drive(&mut self, requests: &mut Vec<Request>, registry: &Registry) -> Status {
        let mut budget = TURN_OUTPUT_BUDGET;
        loop {
            let mut progress = false;

            // Write out what is buffered.
            while self.writable && !self.out.is_empty() {
                let waiting = self.out.data().len();
                match self.stream.write(self.out.data()) {
                    Ok(0) => return self.fail(),
                    Ok(n) => {
                        self.out.consume(n);
                        budget = budget.saturating_sub(n);
                        progress = true;
                        if n == waiting && n > OUTPUT_BUF - OUTPUT_BUF / 4 {
                            self.lend_large();
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.writable = false;
                        self.give_back_large();
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return self.fail(),
                }
            }
            if self.closing {
                if self.out.is_empty() && !self.hung_up() {
                    self.linger();
                    if !self.session.finishing() {
                        return Status::Closed;
                    }
                    self.hang_up(registry);
                }
                if !self.session.finishing() {
                    // The last reply still waits for the client.
                    return Status::Idle;
                }
                // Work the session committed to goes on whether or not the
                // client reads its answer: it holds the mailbox's locks.
                match self.session.finish_step() {
                    Finish::Busy => return Status::Yield,
                    Finish::Sleep(d) => return Status::Sleep(d),
                    Finish::Done => {
                        let ms = self.answered.map_or(0, |t| t.elapsed().as_millis());
                        crate::info!("expunge finished {ms} ms after QUIT was answered");
                    }
                    Finish::Failed | Finish::Stored => {} // (failures logged by the mailbox)
                }
                // Over: gone, or (the answer still unwritten) a plain close.
                return if self.hung_up() {
                    Status::Closed
                } else {
                    Status::Idle
                };
            }

            // Read what fits.
            while self.readable && !self.eof && !self.session.input_full() {
                let space = self.session.input_space();
                let wanted = space.len();
                match self.stream.read(space) {
                    Ok(0) => {
                        self.eof = true;
                        self.session.input_closed();
                        progress = true;
                    }
                    Ok(n) => {
                        self.session.input_added(n);
                        progress = true;
                        // A short read took all there was: more bytes, or
                        // the peer's close, come with an event of their own
                        // (epoll signals every arrival), so no system call
                        // is spent on the EAGAIN. A close already reported
                        // is read to its end of file here.
                        if n < wanted && !self.read_closed {
                            self.readable = false;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readable = false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        self.eof = true;
                        self.session.input_closed();
                        progress = true;
                    }
                }
            }
            if progress {
                self.last_activity = Instant::now();
            }

            let before = self.out.data().len();
            match self.session.advance(&mut self.out) {
                Want::Input => {
                    if self.out.is_empty() {
                        self.give_back_large();
                    }
                }
                Want::Output | Want::AuthPending => {}
                // Stepped work (an expunge) and waits for another program's
                // lock are the server acting for the client: not idle time.
                Want::Busy => {
                    self.last_activity = Instant::now();
                    return Status::Yield;
                }
                Want::Sleep(d) => {
                    self.last_activity = Instant::now() + d;
                    return Status::Sleep(d);
                }
                Want::Auth(creds) => {
                    self.waiting_auth = true;
                    requests.push(Request::Auth(creds));
                    progress = true;
                }
                Want::Close(end) => {
                    requests.push(Request::Ended(end));
                    self.closing = true;
                    if self.session.finishing() {
                        self.answered = Some(Instant::now());
                    }
                    continue;
                }
            }
            if self.out.data().len() != before {
                progress = true;
            }
            if !progress {
                return Status::Idle;
            }
            if budget == 0 {
                return Status::Yield;
            }
        }
    }

    /// Closes the client's connection while the session still has work:
    /// the stream goes (inetd's fd 0 and 1 are pointed at /dev/null, so the
    /// socket is really closed), and so does any large buffer.
    fn hang_up(&mut self, registry: &Registry) {
        self.stream.deregister(registry);
        let old = std::mem::replace(&mut self.stream, Stream::Closed);
        let inetd = matches!(old, Stream::Fds { .. });
        drop(old);
        if inetd && let Err(e) = process::release_inetd_fds() {
            crate::notice!("cannot let go of the inetd descriptors: {e}");
        }
        self.give_back_large();
    }

    /// Takes a large reply buffer, if the process has one to spare.
    fn lend_large(&mut self) {
        if self.large.is_none()
            && let Some(lease) = LARGE_BUFFERS.take()
        {
            self.out.resize(OUTPUT_BUF_LARGE);
            self.large = Some(lease);
        }
    }

    /// Goes back to the normal reply buffer, if what waits fits in it.
    fn give_back_large(&mut self) {
        if self.large.is_some() && self.out.data().len() <= OUTPUT_BUF {
            self.out.resize(OUTPUT_BUF);
            self.large = None;
        }
    }

    /// Ends the connection after a write error: the client is gone (work
    /// the session committed to still gets done, in the next turns).
    fn fail(&mut self) -> Status {
        self.out.consume(self.out.data().len());
        if self.session.finishing() {
            return Status::Yield;
        }
        Status::Closed
    }

    /// Reads and drops input the client sent after the end, so that closing
    /// does not reset the connection before the last reply reaches it.
    fn linger(&mut self) {
        let mut sink = [0u8; 512];
        for _ in 0..16 {
            match self.stream.read(&mut sink) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
        if let Stream::Tcp(s) = &self.stream {
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
    }
}
