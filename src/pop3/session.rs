//! One POP3 session as a state machine: AUTHORIZATION, waiting for the
//! password check, TRANSACTION, and the end (UPDATE happens inside QUIT).
//!
//! The driver feeds client bytes into [`Session::input_space`], calls
//! [`Session::advance`] and writes out whatever lands in the output buffer. The
//! session answers pipelined commands in order, one at a time, and only while
//! the output buffer has room for a whole reply line, so neither buffer ever
//! grows. Multi-line replies (LIST, UIDL, RETR, TOP) are produced in slices of at
//! most one output buffer per call.

use std::time::Duration;

use crate::config::{
    AUTH_LINE_MAX, EXPUNGE_BUDGET, EXPUNGE_EARLY_ANSWER, INPUT_BUF, LINE_MAX, REPLY_LINE_MAX,
    STORE_BUDGET, SessionLimits, USER_MAX,
};
use crate::mbox::{Encoder, ExpungeStep, Expunged, MboxError};

use super::Store;
use super::buffer::Buffer;
use super::command::{self, Command, ParseError};
use super::sasl;

/// Largest chunk of stored message bytes read at once (a large output
/// buffer's worth: mail grows little on the wire).
const READ_CHUNK: usize = crate::config::OUTPUT_BUF_LARGE;

/// Free output space below which no more message bytes are read while
/// output is waiting to be sent.
const MIN_READ: usize = 2048;

/// A user name and password to check. The password bytes are wiped on drop.
pub struct Credentials {
    /// The name as the client sent it.
    pub user: Vec<u8>,
    /// The password as the client sent it.
    pub pass: Vec<u8>,
}

impl Drop for Credentials {
    fn drop(&mut self) {
        wipe(&mut self.pass);
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &String::from_utf8_lossy(&self.user))
            .finish_non_exhaustive()
    }
}

/// Overwrites a secret before its memory is freed.
pub fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    // Keep the stores from being removed as dead: the slice escapes to an
    // opaque function the optimiser must assume reads it.
    std::hint::black_box(&*bytes);
}

/// Why a session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// QUIT before login.
    QuitUnauthenticated,
    /// QUIT after login; `expunged` is set when messages were removed.
    Quit(Option<Expunged>),
    /// The client closed the connection (or stopped sending) without QUIT.
    Disconnected { authenticated: bool },
    /// Too many failed logins.
    TooManyAuthFailures,
    /// Too many bad commands.
    TooManyErrors,
    /// The mailbox could not be loaded after a good password.
    LoadFailed,
    /// The mailbox changed underneath the session.
    MailboxChanged,
    /// The expunge at QUIT failed; nothing was deleted.
    UpdateFailed,
    /// Reading message data failed.
    ReadFailed,
}

/// What the session needs next from its driver.
#[derive(Debug)]
pub enum Want {
    /// More client input (nothing else to do until it arrives).
    Input,
    /// Room in the output buffer: write it out, then call `advance` again.
    Output,
    /// Check these credentials and report with [`Session::login_ok`],
    /// [`Session::login_refused`] or [`Session::load_failed`].
    Auth(Credentials),
    /// Waiting for the result of an `Auth` request.
    AuthPending,
    /// A bounded piece of work was done and more is ready: call `advance`
    /// again after other sessions had their turn.
    Busy,
    /// Call `advance` again after this long (another program holds a lock).
    Sleep(Duration),
    /// Write out what is buffered, then close the connection.
    Close(End),
}

enum Phase<S> {
    Authorization {
        user: Option<Vec<u8>>,
        /// `AUTH PLAIN` sent without an initial response: the next line is it.
        sasl_pending: bool,
    },
    WaitingAuth,
    Transaction(Txn<S>),
    Ended,
}

struct Txn<S> {
    store: S,
    deleted: Vec<bool>,
    /// Highest message number touched by RETR or DELE (for LAST).
    last: usize,
    /// QUIT was answered at the expunge's commit point; the rest of the
    /// expunge runs after the end ([`Session::finish_step`]).
    finishing: bool,
}

enum Pending {
    None,
    /// QUIT with deletions: the expunge runs in steps, then the reply.
    Expunge,
    List {
        next: usize,
    },
    Uidl {
        next: usize,
    },
    Data {
        msg: usize,
        offset: u64,
        enc: Encoder,
    },
}

/// A POP3 session over a store type `S`.
pub struct Session<S> {
    limits: SessionLimits,
    input: Buffer,
    /// Inside an over-long line that was already answered; drop bytes to LF.
    discarding: bool,
    eof: bool,
    phase: Phase<S>,
    pending: Pending,
    auth_failures: u32,
    bad_commands: u32,
    ending: Option<End>,
    /// Credentials waiting to be handed to the driver.
    auth_request: Option<Credentials>,
    /// The store after the session ended.
    spent_store: Option<S>,
    /// The spent store still has a committed expunge to finish.
    finishing: bool,
}

/// What is left to do after the session ended ([`Session::finish_step`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Finish {
    /// Nothing: the connection can go.
    Done,
    /// A bounded step was done; call again after the other sessions' turns.
    Busy,
    /// Call again after this long.
    Sleep(Duration),
    /// The store's own work (see [`Store::background_step`]) is done, and
    /// with it everything: the connection can go.
    Stored,
    /// The expunge stopped on an error (the store logged it; the journal
    /// lets the next opening finish it): the connection can go.
    Failed,
}

/// How far [`Session::continue_pending`] got.
enum Progress {
    /// The pending work is finished.
    Done,
    /// The output buffer is full.
    OutputFull,
    /// A bounded step was done; more remains.
    Busy,
    /// Waiting for a lock held elsewhere.
    Sleep(Duration),
}

impl<S: Store> Session<S> {
    /// A new session; the greeting is written into `out` (which must be empty).
    pub fn new(limits: SessionLimits, out: &mut Buffer) -> Session<S> {
        out.line(format_args!("+OK pop3d ready"));
        Session {
            limits,
            input: Buffer::new(INPUT_BUF),
            discarding: false,
            eof: false,
            phase: Phase::Authorization {
                user: None,
                sasl_pending: false,
            },
            pending: Pending::None,
            auth_failures: 0,
            bad_commands: 0,
            ending: None,
            auth_request: None,
            spent_store: None,
            finishing: false,
        }
    }

    /// Free space for client bytes; empty when the session must be drained first.
    pub fn input_space(&mut self) -> &mut [u8] {
        self.input.spare()
    }

    /// Records `n` bytes written into [`Session::input_space`].
    pub fn input_added(&mut self, n: usize) {
        self.input.commit(n);
    }

    /// The client will send nothing more.
    pub fn input_closed(&mut self) {
        self.eof = true;
    }

    /// True once the session is logged in.
    pub fn authenticated(&self) -> bool {
        matches!(self.phase, Phase::Transaction(_))
    }

    /// True when the session cannot accept input right now (so the driver should
    /// not read more from the socket).
    pub fn input_full(&self) -> bool {
        self.input.free() == 0
    }

    /// Runs the session as far as it can without more I/O.
    pub fn advance(&mut self, out: &mut Buffer) -> Want {
        loop {
            if let Some(end) = self.ending.take() {
                if let Phase::Transaction(txn) = std::mem::replace(&mut self.phase, Phase::Ended) {
                    self.finishing = txn.finishing;
                    self.spent_store = Some(txn.store);
                }
                self.pending = Pending::None;
                return Want::Close(end);
            }
            if let Some(creds) = self.auth_request.take() {
                return Want::Auth(creds);
            }
            if matches!(self.phase, Phase::Ended) {
                return Want::Close(End::Disconnected {
                    authenticated: false,
                });
            }
            if !matches!(self.pending, Pending::None) {
                match self.continue_pending(out) {
                    Progress::Done => continue,
                    Progress::OutputFull => return Want::Output,
                    Progress::Busy => return Want::Busy,
                    Progress::Sleep(d) => return Want::Sleep(d),
                }
            }
            if matches!(self.phase, Phase::WaitingAuth) {
                return Want::AuthPending;
            }
            if out.free() < REPLY_LINE_MAX {
                return Want::Output;
            }
            match self.next_line() {
                Some(Line::Complete { len, total }) => {
                    let mut line = [0u8; AUTH_LINE_MAX];
                    line[..len].copy_from_slice(&self.input.data()[..len]);
                    self.input.consume(total);
                    self.execute(&line[..len], out);
                    wipe(&mut line[..len]);
                }
                Some(Line::TooLong) => {
                    out.line(format_args!("-ERR line too long"));
                    self.bad_command();
                }
                None => {
                    if self.eof {
                        let authenticated = self.authenticated();
                        self.ending = Some(End::Disconnected { authenticated });
                        continue;
                    }
                    // Nothing to answer, nothing unsent: the store's own
                    // work gets a step (a command that comes meanwhile is
                    // read and answered first in the next turn).
                    if let Phase::Transaction(txn) = &mut self.phase
                        && out.is_empty()
                        && txn.store.background_pending()
                    {
                        txn.store.background_step(STORE_BUDGET);
                        return Want::Busy;
                    }
                    return Want::Input;
                }
            }
        }
    }

    /// Locates the next command line in the input, handling over-long lines,
    /// CRLF or bare LF, and a final unterminated fragment at EOF.
    fn next_line(&mut self) -> Option<Line> {
        loop {
            let data = self.input.data();
            let lf = data.iter().position(|&b| b == b'\n');
            if self.discarding {
                let n = lf.map_or(data.len(), |i| i + 1);
                self.input.consume(n);
                lf?;
                self.discarding = false;
                continue;
            }
            // AUTH lines and SASL responses may be longer than commands.
            let sasl = matches!(
                self.phase,
                Phase::Authorization {
                    sasl_pending: true,
                    ..
                }
            );
            let limit = if sasl || data.len() >= 5 && data[..5].eq_ignore_ascii_case(b"AUTH ") {
                AUTH_LINE_MAX
            } else {
                LINE_MAX
            };
            let (end, total) = match lf {
                Some(i) => (i, i + 1),
                None if data.len() > limit + 1 => {
                    // No line end in sight: answer now, drop the rest to LF.
                    let n = data.len();
                    self.input.consume(n);
                    self.discarding = true;
                    return Some(Line::TooLong);
                }
                None if self.eof && !data.is_empty() => (data.len(), data.len()),
                None => return None,
            };
            let len = if end > 0 && data[end - 1] == b'\r' {
                end - 1
            } else {
                end
            };
            if len > limit {
                self.input.consume(total);
                return Some(Line::TooLong);
            }
            return Some(Line::Complete { len, total });
        }
    }

    fn bad_command(&mut self) {
        self.bad_commands += 1;
        if self.bad_commands >= self.limits.max_bad_commands {
            self.ending = Some(End::TooManyErrors);
        }
    }

    /// Runs one command line and writes its reply.
    fn execute(&mut self, line: &[u8], out: &mut Buffer) {
        if let Phase::Authorization { sasl_pending, .. } = &mut self.phase
            && *sasl_pending
        {
            *sasl_pending = false;
            if line == b"*" {
                out.line(format_args!("-ERR authentication cancelled"));
            } else {
                self.sasl_plain(line, out);
            }
            return;
        }
        let cmd = match command::parse(line) {
            Ok(cmd) => cmd,
            Err(ParseError::Unknown) => {
                out.line(format_args!("-ERR unknown command"));
                self.bad_command();
                return;
            }
            Err(ParseError::Syntax) => {
                out.line(format_args!("-ERR syntax error"));
                self.bad_command();
                return;
            }
        };
        if let Command::Capa = cmd {
            write_capa(out);
            return;
        }
        match &mut self.phase {
            Phase::Authorization { user, sasl_pending } => match cmd {
                Command::Auth(None, _) => {
                    out.line(format_args!("+OK SASL mechanisms follow"));
                    out.line(format_args!("PLAIN"));
                    out.push(b".\r\n");
                }
                Command::Auth(Some(mech), initial) => {
                    if !mech.eq_ignore_ascii_case(b"PLAIN") {
                        out.line(format_args!("-ERR unsupported SASL mechanism"));
                        return;
                    }
                    *user = None;
                    match initial {
                        None => {
                            *sasl_pending = true;
                            out.push(b"+ \r\n");
                        }
                        Some(b"=") => self.sasl_plain(b"", out),
                        Some(resp) => self.sasl_plain(resp, out),
                    }
                }
                Command::User(name) => {
                    if name.len() > USER_MAX {
                        out.line(format_args!("-ERR user name too long"));
                        return;
                    }
                    *user = Some(name.to_vec());
                    out.line(format_args!("+OK send PASS"));
                }
                Command::Pass(pass) => match user.take() {
                    None => out.line(format_args!("-ERR send USER first")),
                    Some(name) => {
                        self.auth_request = Some(Credentials {
                            user: name,
                            pass: pass.to_vec(),
                        });
                        self.phase = Phase::WaitingAuth;
                    }
                },
                Command::Quit => {
                    out.line(format_args!("+OK pop3d signing off"));
                    self.ending = Some(End::QuitUnauthenticated);
                }
                _ => {
                    out.line(format_args!("-ERR not logged in"));
                    self.bad_command();
                }
            },
            Phase::Transaction(_) if matches!(cmd, Command::Auth(..)) => {
                out.line(format_args!("-ERR already logged in"));
            }
            Phase::Transaction(txn) => {
                if let Some(end) = txn.execute(cmd, out, &mut self.pending) {
                    self.ending = Some(end);
                }
            }
            Phase::WaitingAuth | Phase::Ended => {}
        }
    }

    /// Handles a PLAIN response (base64): a well-formed one becomes an auth
    /// request, anything else an error that leaves the session as it was.
    fn sasl_plain(&mut self, response: &[u8], out: &mut Buffer) {
        let mut msg = Vec::new();
        let parsed = sasl::decode_base64(response, &mut msg)
            .and_then(|()| sasl::parse_plain(&msg).map(|(u, p)| (u.to_vec(), p.to_vec())));
        wipe(&mut msg);
        match parsed {
            Ok((user, pass)) if user.len() <= USER_MAX => {
                self.auth_request = Some(Credentials { user, pass });
                self.phase = Phase::WaitingAuth;
            }
            Ok((_, mut pass)) => {
                wipe(&mut pass);
                out.line(format_args!("-ERR [AUTH] user name too long"));
            }
            Err(sasl::Malformed) => out.line(format_args!("-ERR malformed SASL PLAIN response")),
        }
    }

    /// Moves a multi-line reply or an expunge forward.
    fn continue_pending(&mut self, out: &mut Buffer) -> Progress {
        let Phase::Transaction(txn) = &mut self.phase else {
            self.pending = Pending::None;
            return Progress::Done;
        };
        match txn.continue_pending(&mut self.pending, out) {
            Ok(progress) => progress,
            Err(end) => {
                self.pending = Pending::None;
                self.ending = Some(end);
                Progress::Done
            }
        }
    }

    /// True while an expunge answered at its commit point, or the store's
    /// own work ([`Store::background_pending`]), still runs after the end:
    /// the driver calls [`Session::finish_step`] until it is done.
    pub fn finishing(&self) -> bool {
        self.finishing || self.spent_store.as_ref().is_some_and(S::background_pending)
    }

    /// After the end: one bounded step of an expunge whose QUIT was answered
    /// when its plan became durable (the messages were as good as deleted
    /// then, see [`ExpungeStep::Committed`]), or else of the store's own
    /// work. A failure now was logged by the store, and the journal lets the
    /// next opening finish the work.
    pub fn finish_step(&mut self) -> Finish {
        let store = match self.spent_store.as_mut() {
            Some(store) if self.finishing || store.background_pending() => store,
            _ => return Finish::Done,
        };
        if !self.finishing {
            return if store.background_step(STORE_BUDGET) {
                Finish::Busy
            } else {
                Finish::Stored
            };
        }
        match store.expunge_step(EXPUNGE_BUDGET) {
            Ok(ExpungeStep::Pending | ExpungeStep::Committed { .. }) => Finish::Busy,
            Ok(ExpungeStep::Waiting(d)) => Finish::Sleep(d),
            Ok(ExpungeStep::Done(_)) => {
                self.finishing = false;
                Finish::Done
            }
            Err(_) => {
                self.finishing = false;
                Finish::Failed
            }
        }
    }

    /// Takes the store out of a logged-in or finished session (so the daemon
    /// can keep its index for the next session). The session is over after it.
    pub fn take_store(&mut self) -> Option<S> {
        if let Phase::Transaction(txn) = std::mem::replace(&mut self.phase, Phase::Ended) {
            return Some(txn.store);
        }
        self.spent_store.take()
    }

    /// The password was right and the mailbox is open: enter TRANSACTION.
    pub fn login_ok(&mut self, store: S, out: &mut Buffer) {
        let count = store.count();
        let total: u64 = (0..count).map(|i| store.size(i)).sum();
        out.line(format_args!(
            "+OK {count} message{} ({total} octets)",
            if count == 1 { "" } else { "s" }
        ));
        self.phase = Phase::Transaction(Txn {
            store,
            deleted: vec![false; count],
            last: 0,
            finishing: false,
        });
    }

    /// The credentials were refused (for whatever reason).
    pub fn login_refused(&mut self, out: &mut Buffer) {
        out.line(format_args!("-ERR [AUTH] Authentication failed"));
        self.auth_failures += 1;
        self.phase = Phase::Authorization {
            user: None,
            sasl_pending: false,
        };
        if self.auth_failures >= self.limits.max_auth_failures {
            self.ending = Some(End::TooManyAuthFailures);
        }
    }

    /// The password was right but the mailbox cannot be used; the session ends.
    pub fn load_failed(&mut self, err: &MboxError, out: &mut Buffer) {
        match err {
            MboxError::InUse => out.line(format_args!(
                "-ERR [IN-USE] mailbox locked by another program, try again later"
            )),
            MboxError::Refused(_) => {
                out.line(format_args!("-ERR [SYS/PERM] mailbox cannot be used"))
            }
            MboxError::Io(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                out.line(format_args!("-ERR [SYS/PERM] mailbox cannot be opened"))
            }
            MboxError::Changed | MboxError::Io(_) => {
                out.line(format_args!("-ERR [SYS/TEMP] mailbox cannot be read now"))
            }
        }
        self.phase = Phase::Ended;
        self.ending = Some(End::LoadFailed);
    }
}

enum Line {
    /// A line of `len` bytes; `total` includes its line end.
    Complete { len: usize, total: usize },
    /// An over-long line, already removed from the input.
    TooLong,
}

impl<S: Store> Txn<S> {
    /// Resolves a 1-based message number to an index of an undeleted message.
    fn message(&self, n: u64) -> Option<usize> {
        let i = usize::try_from(n).ok()?.checked_sub(1)?;
        if i < self.deleted.len() && !self.deleted[i] {
            Some(i)
        } else {
            None
        }
    }

    fn no_such_message(&self, n: u64, out: &mut Buffer) {
        match usize::try_from(n).ok().and_then(|n| n.checked_sub(1)) {
            Some(i) if i < self.deleted.len() => {
                out.line(format_args!("-ERR message {n} already deleted"))
            }
            _ => out.line(format_args!("-ERR no such message")),
        }
    }

    fn execute(
        &mut self,
        cmd: Command<'_>,
        out: &mut Buffer,
        pending: &mut Pending,
    ) -> Option<End> {
        match cmd {
            Command::Stat => {
                let (count, total) = self.visible();
                out.line(format_args!("+OK {count} {total}"));
            }
            Command::List(None) => {
                let (count, total) = self.visible();
                out.line(format_args!("+OK {count} messages ({total} octets)"));
                *pending = Pending::List { next: 0 };
            }
            Command::List(Some(n)) => match self.message(n) {
                Some(i) => out.line(format_args!("+OK {n} {}", self.store.size(i))),
                None => self.no_such_message(n, out),
            },
            Command::Uidl(None) => {
                out.line(format_args!("+OK unique-id listing follows"));
                *pending = Pending::Uidl { next: 0 };
            }
            Command::Uidl(Some(n)) => match self.message(n) {
                Some(i) => out.line(format_args!("+OK {n} {}", self.store.uid(i))),
                None => self.no_such_message(n, out),
            },
            Command::Retr(n) | Command::Top(n, _) => {
                let Some(i) = self.message(n) else {
                    self.no_such_message(n, out);
                    return None;
                };
                if let Err(e) = self.store.verify() {
                    return mailbox_trouble(&e, out);
                }
                let enc = match cmd {
                    Command::Top(_, k) => {
                        out.line(format_args!("+OK top of message {n} follows"));
                        Encoder::top(k)
                    }
                    _ => {
                        self.last = self.last.max(i + 1);
                        out.line(format_args!("+OK {} octets", self.store.size(i)));
                        Encoder::retr()
                    }
                };
                *pending = Pending::Data {
                    msg: i,
                    offset: 0,
                    enc,
                };
            }
            Command::Dele(n) => match self.message(n) {
                Some(i) => {
                    self.deleted[i] = true;
                    self.last = self.last.max(i + 1);
                    out.line(format_args!("+OK message {n} deleted"));
                }
                None => self.no_such_message(n, out),
            },
            Command::Noop => out.line(format_args!("+OK")),
            Command::Rset => {
                self.deleted.iter_mut().for_each(|d| *d = false);
                self.last = 0;
                let (count, total) = self.visible();
                out.line(format_args!("+OK {count} messages ({total} octets)"));
            }
            Command::Last => out.line(format_args!("+OK {}", self.last)),
            Command::Quit => return self.quit(out, pending),
            Command::User(_) | Command::Pass(_) => out.line(format_args!("-ERR already logged in")),
            Command::Capa => write_capa(out),
            Command::Auth(..) => out.line(format_args!("-ERR already logged in")),
        }
        None
    }

    /// Count and total size of undeleted messages.
    fn visible(&self) -> (usize, u64) {
        let mut count = 0;
        let mut total = 0;
        for (i, _) in self.deleted.iter().enumerate().filter(|(_, d)| !**d) {
            count += 1;
            total += self.store.size(i);
        }
        (count, total)
    }

    /// UPDATE, first part: with nothing marked, say goodbye at once (the file
    /// is never touched); otherwise start the expunge, which
    /// [`Txn::expunge_step`] carries on.
    fn quit(&mut self, out: &mut Buffer, pending: &mut Pending) -> Option<End> {
        if !self.deleted.iter().any(|&d| d) {
            out.line(format_args!("+OK pop3d signing off"));
            return Some(End::Quit(None));
        }
        self.store.expunge_start(&self.deleted);
        *pending = Pending::Expunge;
        None
    }

    /// UPDATE, the rest: one bounded step of the expunge; at the end the reply.
    fn expunge_step(&mut self, out: &mut Buffer) -> Result<Progress, End> {
        let e = match self.store.expunge_step(EXPUNGE_BUDGET) {
            Ok(ExpungeStep::Pending) => return Ok(Progress::Busy),
            Ok(ExpungeStep::Waiting(d)) => return Ok(Progress::Sleep(d)),
            // A long compaction: the client need not wait for it, the
            // messages are deleted whatever happens now.
            Ok(ExpungeStep::Committed { summary, moving }) if moving >= EXPUNGE_EARLY_ANSWER => {
                self.finishing = true;
                summary
            }
            Ok(ExpungeStep::Committed { .. }) => return Ok(Progress::Busy),
            Ok(ExpungeStep::Done(e)) => e,
            Err(MboxError::Changed) => {
                out.line(format_args!(
                    "-ERR [SYS/TEMP] mailbox changed by another program; nothing deleted"
                ));
                return Err(End::MailboxChanged);
            }
            Err(MboxError::InUse) => {
                out.line(format_args!(
                    "-ERR [IN-USE] mailbox locked by another program; nothing deleted"
                ));
                return Err(End::UpdateFailed);
            }
            Err(_) => {
                out.line(format_args!("-ERR [SYS/TEMP] update failed"));
                return Err(End::UpdateFailed);
            }
        };
        out.line(format_args!(
            "+OK pop3d signing off ({} deleted, {} left)",
            e.deleted, e.kept
        ));
        Err(End::Quit(Some(e)))
    }

    /// Moves the pending multi-line reply or expunge forward. Err(end) when
    /// the session ends (a finished QUIT included).
    fn continue_pending(
        &mut self,
        pending: &mut Pending,
        out: &mut Buffer,
    ) -> Result<Progress, End> {
        match pending {
            Pending::None => Ok(Progress::Done),
            Pending::Expunge => {
                if out.free() < REPLY_LINE_MAX {
                    return Ok(Progress::OutputFull);
                }
                self.expunge_step(out)
            }
            Pending::List { next } | Pending::Uidl { next } => {
                let mut i = *next;
                let uidl = matches!(pending, Pending::Uidl { .. });
                while i < self.deleted.len() {
                    if out.free() < REPLY_LINE_MAX {
                        break;
                    }
                    if !self.deleted[i] {
                        if uidl {
                            out.line(format_args!("{} {}", i + 1, self.store.uid(i)));
                        } else {
                            out.line(format_args!("{} {}", i + 1, self.store.size(i)));
                        }
                    }
                    i += 1;
                }
                if i < self.deleted.len() || out.free() < 3 {
                    *pending = if uidl {
                        Pending::Uidl { next: i }
                    } else {
                        Pending::List { next: i }
                    };
                    return Ok(Progress::OutputFull);
                }
                out.push(b".\r\n");
                *pending = Pending::None;
                Ok(Progress::Done)
            }
            Pending::Data { msg, offset, enc } => {
                let progress = SCRATCH.with_borrow_mut(|chunk| {
                    send_data(&mut self.store, *msg, offset, enc, out, chunk)
                })?;
                if matches!(progress, Progress::Done) {
                    *pending = Pending::None;
                }
                Ok(progress)
            }
        }
    }
}

thread_local! {
    /// Message bytes on their way from the file to the encoder: one buffer
    /// for every session of the thread (a transfer step never yields while
    /// using it), so a session holds none and nothing is zeroed per step.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; READ_CHUNK]);
}

/// One transfer step of RETR/TOP: reads message `msg` from `offset` and
/// encodes it into `out` until the output is full or the data is sent
/// (then the terminator is written too and `Progress::Done` returned).
fn send_data<S: Store>(
    store: &mut S,
    msg: usize,
    offset: &mut u64,
    enc: &mut Encoder,
    out: &mut Buffer,
    chunk: &mut [u8],
) -> Result<Progress, End> {
    let len = store.data_len(msg);
    loop {
        if enc.done() || *offset >= len {
            if out.free() < 5 {
                return Ok(Progress::OutputFull);
            }
            let spare = out.spare();
            let n = enc.finish(spare);
            out.commit(n);
            return Ok(Progress::Done);
        }
        let spare_len = out.free();
        // Each read is a system call: small ones wait until the buffered
        // output has gone out.
        if spare_len < 16 || (spare_len < MIN_READ && !out.is_empty()) {
            return Ok(Progress::OutputFull);
        }
        // Mail grows by a few percent on the wire (LF to CR LF,
        // dot-stuffing); input the output has no room for is left
        // unconsumed and read again next time.
        let want = (spare_len - spare_len / 32)
            .min(chunk.len())
            .min(usize::try_from(len - *offset).unwrap_or(usize::MAX));
        let got = match store.read_data(msg, *offset, &mut chunk[..want]) {
            Ok(0) | Err(_) => return Err(End::ReadFailed),
            Ok(n) => n,
        };
        let spare = out.spare();
        let (used, written) = enc.encode(&chunk[..got], spare);
        out.commit(written);
        *offset += used as u64;
        if enc.done() {
            continue;
        }
        if used < got && written == 0 {
            return Ok(Progress::OutputFull);
        }
    }
}

/// Answers a mailbox problem met before a transfer; returns how the session
/// ends, or None when it may go on (a lock held elsewhere is temporary).
fn mailbox_trouble(err: &MboxError, out: &mut Buffer) -> Option<End> {
    match err {
        MboxError::InUse => {
            out.line(format_args!(
                "-ERR [IN-USE] mailbox locked by another program, try again later"
            ));
            None
        }
        MboxError::Changed => {
            out.line(format_args!(
                "-ERR [SYS/TEMP] mailbox changed by another program"
            ));
            Some(End::MailboxChanged)
        }
        MboxError::Refused(_) | MboxError::Io(_) => {
            out.line(format_args!("-ERR [SYS/TEMP] mailbox cannot be read"));
            Some(End::ReadFailed)
        }
    }
}

fn write_capa(out: &mut Buffer) {
    out.line(format_args!("+OK capability list follows"));
    for cap in [
        "TOP",
        "UIDL",
        "USER",
        "PIPELINING",
        "RESP-CODES",
        "AUTH-RESP-CODE",
        "SASL PLAIN",
        concat!("IMPLEMENTATION pop3d-", env!("CARGO_PKG_VERSION")),
    ] {
        out.line(format_args!("{cap}"));
    }
    out.push(b".\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mbox::Uid;
    use std::fmt::Write as _;

    /// An in-memory mailbox of LF-terminated messages.
    struct Fake {
        msgs: Vec<Vec<u8>>,
        changed: bool,
        expunged: std::rc::Rc<std::cell::RefCell<Option<Vec<bool>>>>,
        steps_left: u32,
        /// Bytes the expunge says it moves when it commits.
        moving: u64,
        /// Steps of background work left (as an index file being written).
        background: std::rc::Rc<std::cell::Cell<u32>>,
    }

    impl Store for Fake {
        fn count(&self) -> usize {
            self.msgs.len()
        }
        fn size(&self, i: usize) -> u64 {
            let m = &self.msgs[i];
            (m.len() + m.iter().filter(|&&b| b == b'\n').count()) as u64
        }
        fn uid(&self, i: usize) -> Uid {
            let mut u = Uid::new();
            let _ = write!(u, "uid{i}");
            u
        }
        fn data_len(&self, i: usize) -> u64 {
            self.msgs[i].len() as u64
        }
        fn verify(&mut self) -> Result<(), MboxError> {
            if self.changed {
                Err(MboxError::Changed)
            } else {
                Ok(())
            }
        }
        fn read_data(&mut self, i: usize, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
            let m = &self.msgs[i][offset as usize..];
            let n = m.len().min(buf.len());
            buf[..n].copy_from_slice(&m[..n]);
            Ok(n)
        }
        fn expunge_start(&mut self, deleted: &[bool]) {
            *self.expunged.borrow_mut() = Some(deleted.to_vec());
            self.steps_left = 4;
            // As the mailbox: an expunge gives up the index file.
            self.background.set(0);
        }
        fn expunge_step(&mut self, _budget: usize) -> Result<ExpungeStep, MboxError> {
            // A few steps like the real thing: a wait for the lock, the
            // commit, a slice of copying, the end.
            let d = self.expunged.borrow().clone().unwrap_or_default();
            let summary = Expunged {
                deleted: d.iter().filter(|&&d| d).count(),
                kept: d.iter().filter(|&&d| !d).count(),
                ..Expunged::default()
            };
            self.steps_left -= 1;
            match self.steps_left {
                3 => Ok(ExpungeStep::Waiting(Duration::from_millis(5))),
                2 => Ok(ExpungeStep::Committed {
                    summary,
                    moving: self.moving,
                }),
                1 => Ok(ExpungeStep::Pending),
                0 => Ok(ExpungeStep::Done(summary)),
                _ => panic!("a step after the end"),
            }
        }
        fn background_pending(&self) -> bool {
            self.background.get() > 0
        }
        fn background_step(&mut self, _budget: usize) -> bool {
            let left = self.background.get();
            assert!(left > 0, "a background step with none left");
            self.background.set(left - 1);
            left > 1
        }
    }

    fn fake(msgs: &[&[u8]]) -> Fake {
        Fake {
            msgs: msgs.iter().map(|m| m.to_vec()).collect(),
            changed: false,
            expunged: Default::default(),
            steps_left: 0,
            moving: 0,
            background: Default::default(),
        }
    }

    /// Drives a session: feeds `input`, answers auth (password "pw" is right),
    /// collects everything written. Returns the transcript and the end.
    struct Harness {
        s: Session<Fake>,
        out: Buffer,
        wire: Vec<u8>,
        store: Option<Fake>,
        end: Option<End>,
    }

    impl Harness {
        fn new(store: Fake) -> Harness {
            Harness::with_out(store, crate::config::OUTPUT_BUF)
        }
        fn with_out(store: Fake, cap: usize) -> Harness {
            let mut out = Buffer::new(cap);
            let s = Session::new(SessionLimits::default(), &mut out);
            Harness {
                s,
                out,
                wire: Vec::new(),
                store: Some(store),
                end: None,
            }
        }
        fn send(&mut self, mut input: &[u8]) -> String {
            let start = self.wire.len();
            loop {
                let space = self.s.input_space();
                let n = space.len().min(input.len());
                space[..n].copy_from_slice(&input[..n]);
                self.s.input_added(n);
                input = &input[n..];
                match self.s.advance(&mut self.out) {
                    Want::Input if input.is_empty() => break,
                    Want::Input | Want::Output | Want::AuthPending | Want::Busy => {}
                    Want::Sleep(d) => assert!(d <= Duration::from_secs(1)),
                    Want::Auth(c) => {
                        if c.pass == b"pw" && c.user == b"bob" {
                            let st = self.store.take().expect("one login");
                            self.s.login_ok(st, &mut self.out);
                        } else {
                            self.s.login_refused(&mut self.out);
                        }
                    }
                    Want::Close(end) => {
                        self.end = Some(end);
                        self.drain();
                        break;
                    }
                }
                self.drain();
            }
            self.drain();
            String::from_utf8_lossy(&self.wire[start..]).into_owned()
        }
        fn drain(&mut self) {
            self.wire.extend_from_slice(self.out.data());
            let n = self.out.data().len();
            self.out.consume(n);
        }
        fn login(&mut self) -> String {
            self.send(b"USER bob\r\nPASS pw\r\n")
        }
    }

    #[test]
    fn greeting_login_and_stat() {
        let mut h = Harness::new(fake(&[b"a\n", b"bc\n"]));
        assert_eq!(h.send(b""), "+OK pop3d ready\r\n");
        assert_eq!(h.login(), "+OK send PASS\r\n+OK 2 messages (7 octets)\r\n");
        assert_eq!(h.send(b"STAT\r\n"), "+OK 2 7\r\n");
        assert_eq!(h.send(b"stat\n"), "+OK 2 7\r\n");
    }

    #[test]
    fn pipelined_commands_are_answered_in_order() {
        let mut h = Harness::new(fake(&[b"a\n", b".x\n"]));
        h.send(b"");
        let t = h.send(b"USER bob\r\nPASS pw\r\nSTAT\r\nLIST\r\nUIDL 2\r\nRETR 2\r\nNOOP\r\n");
        assert_eq!(
            t,
            "+OK send PASS\r\n+OK 2 messages (7 octets)\r\n+OK 2 7\r\n\
             +OK 2 messages (7 octets)\r\n1 3\r\n2 4\r\n.\r\n+OK 2 uid1\r\n\
             +OK 4 octets\r\n..x\r\n.\r\n+OK\r\n"
        );
    }

    #[test]
    fn bad_arguments_get_err_and_the_session_goes_on() {
        let mut h = Harness::new(fake(&[b"a\n"]));
        h.send(b"");
        assert!(h.send(b"STAT\r\n").starts_with("-ERR"), "STAT before login");
        h.login();
        for bad in [
            "RETR 0",
            "RETR -1",
            "RETR +2",
            "RETR 2x",
            "RETR 2",
            "RETR 99999999999999999999",
            "RETR 1 2",
            "NOOP x",
            "XYZZY",
            "TOP 1",
            "USER bob",
        ] {
            let r = h.send(format!("{bad}\r\n").as_bytes());
            assert!(r.starts_with("-ERR"), "{bad}: {r}");
        }
        assert_eq!(h.send(b"NOOP\r\n"), "+OK\r\n");
        assert!(h.end.is_none());
    }

    #[test]
    fn dele_rset_last_and_quit() {
        let mut h = Harness::new(fake(&[b"a\n", b"b\n", b"c\n"]));
        h.send(b"");
        h.login();
        assert_eq!(h.send(b"RETR 3\r\n"), "+OK 3 octets\r\nc\r\n.\r\n");
        assert_eq!(h.send(b"LAST\r\n"), "+OK 3\r\n");
        assert_eq!(h.send(b"DELE 2\r\n"), "+OK message 2 deleted\r\n");
        assert!(
            h.send(b"DELE 2\r\n")
                .starts_with("-ERR message 2 already deleted")
        );
        assert!(h.send(b"RETR 2\r\n").starts_with("-ERR"));
        assert!(h.send(b"LIST 2\r\n").starts_with("-ERR"));
        assert_eq!(h.send(b"STAT\r\n"), "+OK 2 6\r\n");
        assert_eq!(
            h.send(b"LIST\r\n"),
            "+OK 2 messages (6 octets)\r\n1 3\r\n3 3\r\n.\r\n"
        );
        assert_eq!(h.send(b"RSET\r\n"), "+OK 3 messages (9 octets)\r\n");
        assert_eq!(h.send(b"LAST\r\n"), "+OK 0\r\n");
        h.send(b"DELE 1\r\n");
        assert!(
            h.send(b"QUIT\r\n")
                .starts_with("+OK pop3d signing off (1 deleted, 2 left)")
        );
        assert!(matches!(h.end, Some(End::Quit(Some(_)))));
    }

    #[test]
    fn quit_expunges_exactly_the_marked_messages() {
        let mut out = Buffer::new(4096);
        let mut s: Session<Fake> = Session::new(SessionLimits::default(), &mut out);
        let store = fake(&[b"a\n", b"b\n", b"c\n"]);
        let seen = store.expunged.clone();
        s.login_ok(store, &mut out);
        let input = b"DELE 1\r\nDELE 3\r\nQUIT\r\n";
        s.input_space()[..input.len()].copy_from_slice(input);
        s.input_added(input.len());
        // The expunge goes in steps: a lock wait, the commit and a slice
        // (a short compaction: the answer waits for it), then the end.
        assert!(matches!(s.advance(&mut out), Want::Sleep(_)));
        assert!(matches!(s.advance(&mut out), Want::Busy));
        assert!(matches!(s.advance(&mut out), Want::Busy));
        assert!(!out.data().ends_with(b"left)\r\n"));
        let w = s.advance(&mut out);
        assert!(matches!(w, Want::Close(End::Quit(Some(_)))), "{w:?}");
        let Phase::Ended = s.phase else {
            panic!("not ended")
        };
        let text = String::from_utf8_lossy(out.data()).into_owned();
        assert!(
            text.ends_with("+OK pop3d signing off (2 deleted, 1 left)\r\n"),
            "{text}"
        );
        assert_eq!(*seen.borrow(), Some(vec![true, false, true]));
        assert!(!s.finishing());
        assert_eq!(s.finish_step(), Finish::Done);
    }

    /// The store's own work (the index file after a scan) runs only when
    /// no command waits and no answer is unsent, a step at a time.
    #[test]
    fn background_work_waits_for_commands_and_unsent_answers() {
        let mut out = Buffer::new(4096);
        let mut s: Session<Fake> = Session::new(SessionLimits::default(), &mut out);
        out.consume(out.data().len());
        let store = fake(&[b"a\n", b"b\n"]);
        let left = store.background.clone();
        left.set(3);
        s.login_ok(store, &mut out);
        let input = b"STAT\r\nNOOP\r\n";
        s.input_space()[..input.len()].copy_from_slice(input);
        s.input_added(input.len());
        // PASS's answer and both commands' are there before any step.
        assert!(matches!(s.advance(&mut out), Want::Input));
        assert_eq!(left.get(), 3);
        assert_eq!(
            String::from_utf8_lossy(out.data()),
            "+OK 2 messages (6 octets)\r\n+OK 2 6\r\n+OK\r\n"
        );
        out.consume(out.data().len());
        assert!(matches!(s.advance(&mut out), Want::Busy));
        assert_eq!(left.get(), 2);
        // A command that came meanwhile is answered, and the answer sent,
        // before the next step.
        s.input_space()[..6].copy_from_slice(b"STAT\r\n");
        s.input_added(6);
        assert!(matches!(s.advance(&mut out), Want::Input));
        assert_eq!(left.get(), 2);
        out.consume(out.data().len());
        assert!(matches!(s.advance(&mut out), Want::Busy));
        assert!(matches!(s.advance(&mut out), Want::Busy));
        assert_eq!(left.get(), 0);
        assert!(matches!(s.advance(&mut out), Want::Input));
        assert!(!s.finishing());
    }

    /// A session that ends (QUIT with nothing deleted, or the client gone)
    /// before the store's own work is done leaves it to finish after.
    #[test]
    fn background_work_left_at_the_end_is_finished_after() {
        for input in [&b"QUIT\r\n"[..], b""] {
            let mut out = Buffer::new(4096);
            let mut s: Session<Fake> = Session::new(SessionLimits::default(), &mut out);
            let store = fake(&[b"a\n"]);
            let left = store.background.clone();
            left.set(2);
            s.login_ok(store, &mut out);
            s.input_space()[..input.len()].copy_from_slice(input);
            s.input_added(input.len());
            if input.is_empty() {
                s.input_closed();
            }
            assert!(matches!(s.advance(&mut out), Want::Close(_)));
            assert_eq!(left.get(), 2);
            assert!(s.finishing());
            assert_eq!(s.finish_step(), Finish::Busy);
            assert!(s.finishing());
            assert_eq!(s.finish_step(), Finish::Stored);
            assert!(!s.finishing());
            assert_eq!(left.get(), 0);
            assert_eq!(s.finish_step(), Finish::Done);
            assert!(s.take_store().is_some());
        }
        // An expunge gives the work up (the store does): only the expunge
        // is left.
        let mut out = Buffer::new(4096);
        let mut s: Session<Fake> = Session::new(SessionLimits::default(), &mut out);
        let store = fake(&[b"a\n", b"b\n"]);
        store.background.set(5);
        s.login_ok(store, &mut out);
        let input = b"DELE 1\r\nQUIT\r\n";
        s.input_space()[..input.len()].copy_from_slice(input);
        s.input_added(input.len());
        assert!(matches!(s.advance(&mut out), Want::Sleep(_)));
        assert!(matches!(s.advance(&mut out), Want::Busy));
        assert!(matches!(s.advance(&mut out), Want::Busy));
        assert!(matches!(
            s.advance(&mut out),
            Want::Close(End::Quit(Some(_)))
        ));
        assert!(!s.finishing());
    }

    #[test]
    fn a_long_expunge_answers_quit_at_its_commit_and_finishes_after() {
        let mut out = Buffer::new(4096);
        let mut s: Session<Fake> = Session::new(SessionLimits::default(), &mut out);
        let mut store = fake(&[b"a\n", b"b\n", b"c\n"]);
        store.moving = EXPUNGE_EARLY_ANSWER;
        let seen = store.expunged.clone();
        s.login_ok(store, &mut out);
        let input = b"DELE 2\r\nQUIT\r\n";
        s.input_space()[..input.len()].copy_from_slice(input);
        s.input_added(input.len());
        assert!(matches!(s.advance(&mut out), Want::Sleep(_)));
        // Committed: the answer and the end, with the copying still to do.
        let w = s.advance(&mut out);
        assert!(
            matches!(w, Want::Close(End::Quit(Some(e))) if e.deleted == 1),
            "{w:?}"
        );
        let text = String::from_utf8_lossy(out.data()).into_owned();
        assert!(
            text.ends_with("+OK pop3d signing off (1 deleted, 2 left)\r\n"),
            "{text}"
        );
        assert!(s.finishing());
        assert_eq!(s.finish_step(), Finish::Busy);
        assert!(s.finishing());
        assert_eq!(s.finish_step(), Finish::Done);
        assert!(!s.finishing());
        assert_eq!(s.finish_step(), Finish::Done);
        assert_eq!(*seen.borrow(), Some(vec![false, true, false]));
        assert!(s.take_store().is_some());
    }

    #[test]
    fn retr_is_dot_stuffed_and_sized_and_top_counts_lines() {
        let msg: &[u8] = b"Subject: x\n.hdr\n\nline1\n.\n..\nline4\n";
        let mut h = Harness::new(fake(&[msg]));
        h.send(b"");
        h.login();
        let size = msg.len() + msg.iter().filter(|&&b| b == b'\n').count();
        assert_eq!(
            h.send(b"RETR 1\r\n"),
            format!(
                "+OK {size} octets\r\nSubject: x\r\n..hdr\r\n\r\nline1\r\n..\r\n...\r\nline4\r\n.\r\n"
            )
        );
        assert_eq!(
            h.send(b"TOP 1 0\r\n"),
            "+OK top of message 1 follows\r\nSubject: x\r\n..hdr\r\n\r\n.\r\n"
        );
        assert_eq!(
            h.send(b"TOP 1 2\r\n"),
            "+OK top of message 1 follows\r\nSubject: x\r\n..hdr\r\n\r\nline1\r\n..\r\n.\r\n"
        );
    }

    #[test]
    fn large_message_goes_out_in_bounded_slices() {
        let mut big = Vec::new();
        for i in 0..20_000 {
            big.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        let mut h = Harness::with_out(fake(&[&big]), 1024);
        h.send(b"");
        h.login();
        let t = h.send(b"RETR 1\r\n");
        let body = t.split_once("\r\n").unwrap().1;
        assert_eq!(body.len(), big.len() + 20_000 + 3);
        assert!(body.ends_with("line 19999\r\n.\r\n"));
    }

    #[test]
    fn changed_mailbox_ends_the_session_without_data() {
        let mut st = fake(&[b"a\n"]);
        st.changed = true;
        let mut h = Harness::new(st);
        h.send(b"");
        h.login();
        let t = h.send(b"RETR 1\r\nNOOP\r\n");
        assert_eq!(t, "-ERR [SYS/TEMP] mailbox changed by another program\r\n");
        assert_eq!(h.end, Some(End::MailboxChanged));
    }

    #[test]
    fn wrong_password_then_right_then_three_strikes() {
        let mut h = Harness::new(fake(&[]));
        h.send(b"");
        assert_eq!(
            h.send(b"USER bob\r\nPASS nope\r\n"),
            "+OK send PASS\r\n-ERR [AUTH] Authentication failed\r\n"
        );
        assert!(
            h.send(b"PASS pw\r\n").starts_with("-ERR"),
            "PASS needs USER again"
        );
        assert!(h.login().ends_with("+OK 0 messages (0 octets)\r\n"));

        let mut h = Harness::new(fake(&[]));
        h.send(b"");
        h.send(b"USER bob\r\nPASS 1\r\nUSER bob\r\nPASS 2\r\nUSER bob\r\nPASS 3\r\nNOOP\r\n");
        assert_eq!(h.end, Some(End::TooManyAuthFailures));
    }

    #[test]
    fn over_long_line_is_answered_before_its_end_arrives() {
        let mut h = Harness::new(fake(&[]));
        h.send(b"");
        let t = h.send(&[b'A'; 3000]);
        assert_eq!(t, "-ERR line too long\r\n");
        let t = h.send(&[b'A'; 3000]);
        assert_eq!(t, "", "the rest of the line is discarded silently");
        assert_eq!(h.send(b"AAAA\r\nQUIT\r\n"), "+OK pop3d signing off\r\n");
        assert_eq!(h.end, Some(End::QuitUnauthenticated));
    }

    #[test]
    fn nul_bytes_and_eof_fragments() {
        let mut h = Harness::new(fake(&[]));
        h.send(b"");
        assert!(h.send(b"QU\0IT\r\n").starts_with("-ERR"));
        assert!(h.end.is_none());
        // A final line without its end still runs, then the session ends.
        h.send(b"QUIT");
        h.s.input_closed();
        h.send(b"");
        assert_eq!(h.end, Some(End::QuitUnauthenticated));
    }

    #[test]
    fn auth_plain_with_initial_response_and_continuation() {
        // "\0bob\0pw" and "bob\0bob\0pw"
        let mut h = Harness::new(fake(&[]));
        h.send(b"");
        assert!(
            h.send(b"AUTH PLAIN AGJvYgBwdw==\r\n")
                .starts_with("+OK 0 messages")
        );

        let mut h = Harness::new(fake(&[]));
        h.send(b"");
        assert_eq!(h.send(b"AUTH PLAIN\r\n"), "+ \r\n");
        assert!(
            h.send(b"Ym9iAGJvYgBwdw==\r\n")
                .starts_with("+OK 0 messages")
        );

        let mut h = Harness::new(fake(&[]));
        h.send(b"");
        assert_eq!(h.send(b"AUTH PLAIN\r\n"), "+ \r\n");
        assert_eq!(h.send(b"*\r\n"), "-ERR authentication cancelled\r\n");
        assert!(h.send(b"AUTH PLAIN !!!!\r\n").starts_with("-ERR malformed"));
        // authzid differs from authcid: "eve\0bob\0pw"
        assert!(
            h.send(b"AUTH PLAIN ZXZlAGJvYgBwdw==\r\n")
                .starts_with("-ERR malformed")
        );
        assert!(h.send(b"AUTH CRAM-MD5\r\n").starts_with("-ERR unsupported"));
        assert_eq!(
            h.send(b"AUTH\r\n"),
            "+OK SASL mechanisms follow\r\nPLAIN\r\n.\r\n"
        );
        // wrong password: "\0bob\0no"
        assert_eq!(
            h.send(b"AUTH PLAIN AGJvYgBubw==\r\n"),
            "-ERR [AUTH] Authentication failed\r\n"
        );
        assert!(h.end.is_none());
        // An AUTH line longer than a command line is fine, and so is a
        // continuation line: "\0bob\0" and a 499-octet password.
        let long = format!("AUTH PLAIN {}\r\n", "QUFB".repeat(100));
        assert!(h.send(long.as_bytes()).starts_with("-ERR malformed"));
        assert_eq!(h.send(b"AUTH PLAIN\r\n"), "+ \r\n");
        let long = format!("AGJvYgBh{}\r\n", "YWFh".repeat(166));
        assert!(long.len() > 600);
        assert_eq!(
            h.send(long.as_bytes()),
            "-ERR [AUTH] Authentication failed\r\n"
        );
    }

    #[test]
    fn a_line_of_255_octets_is_a_command_and_of_256_too_long() {
        let mut h = Harness::new(fake(&[]));
        h.send(b"");
        let ok = format!("NOOP{}\r\n", " ".repeat(LINE_MAX - 4));
        assert_eq!(ok.len(), LINE_MAX + 2);
        // Trailing blanks are ignored: NOOP before login is a bad command.
        let t = h.send(ok.as_bytes());
        assert!(!t.contains("too long"), "{t}");
        let long = format!("NOOP{}\r\n", " ".repeat(LINE_MAX - 3));
        assert_eq!(h.send(long.as_bytes()), "-ERR line too long\r\n");
    }

    #[test]
    fn deleted_messages_count_for_last_and_have_no_uidl() {
        let mut h = Harness::new(fake(&[b"a\n", b"b\n", b"c\n"]));
        h.send(b"");
        h.login();
        assert_eq!(h.send(b"DELE 2\r\n"), "+OK message 2 deleted\r\n");
        assert_eq!(h.send(b"LAST\r\n"), "+OK 2\r\n");
        assert!(h.send(b"UIDL 2\r\n").starts_with("-ERR"));
        assert_eq!(
            h.send(b"UIDL\r\n"),
            "+OK unique-id listing follows\r\n1 uid0\r\n3 uid2\r\n.\r\n"
        );
    }

    #[test]
    fn commands_refused_before_login_count_as_bad_commands() {
        let mut h = Harness::new(fake(&[]));
        h.send(b"");
        let limit = SessionLimits::default().max_bad_commands as usize;
        let t = h.send("STAT\r\n".repeat(limit + 5).as_bytes());
        assert_eq!(t.matches("-ERR").count(), limit, "{t}");
        assert!(h.end.is_some(), "still open after {limit} refused commands");
    }

    #[test]
    fn capa_lists_exactly_what_is_implemented() {
        let mut h = Harness::new(fake(&[]));
        h.send(b"");
        let before = h.send(b"CAPA\r\n");
        h.login();
        let after = h.send(b"CAPA\r\n");
        for t in [before, after] {
            let mut caps: Vec<&str> = t.split("\r\n").skip(1).filter(|l| !l.is_empty()).collect();
            assert_eq!(caps.pop(), Some("."), "{t}");
            caps.sort_unstable();
            let names: Vec<&str> = caps
                .iter()
                .map(|c| c.split(' ').next().unwrap_or(""))
                .collect();
            assert_eq!(
                names,
                [
                    "AUTH-RESP-CODE",
                    "IMPLEMENTATION",
                    "PIPELINING",
                    "RESP-CODES",
                    "SASL",
                    "TOP",
                    "UIDL",
                    "USER"
                ],
                "{t}"
            );
        }
    }

    #[test]
    fn unread_answers_stop_the_session_at_whole_replies() {
        // A client that pipelines many commands and reads nothing: the
        // session stops when the output has no room for a whole reply
        // line, and goes on when it is read; nothing is cut or lost.
        let mut out = Buffer::new(crate::config::OUTPUT_BUF);
        let mut s = Session::<Fake>::new(SessionLimits::default(), &mut out);
        let greeting = out.data().len();
        out.consume(greeting);
        let one = {
            let mut h = Harness::new(fake(&[]));
            h.send(b"");
            h.send(b"CAPA\r\n")
        };
        let mut input: Vec<u8> = "CAPA\r\n".repeat(300).into_bytes();
        let mut wire = Vec::new();
        let mut stops = 0;
        while wire.len() < one.len() * 300 {
            let space = s.input_space();
            let n = space.len().min(input.len());
            space[..n].copy_from_slice(&input[..n]);
            s.input_added(n);
            input.drain(..n);
            match s.advance(&mut out) {
                Want::Output => {
                    // Everything so far is whole replies.
                    assert!(out.data().ends_with(b"\r\n.\r\n"));
                    stops += 1;
                }
                Want::Input => {}
                other => panic!("{other:?}"),
            }
            wire.extend_from_slice(out.data());
            let k = out.data().len();
            out.consume(k);
        }
        assert!(stops > 0, "the output never filled up");
        assert_eq!(wire, one.repeat(300).into_bytes());
    }

    #[test]
    fn capa_lists_uidl_and_top_before_login() {
        let mut h = Harness::new(fake(&[]));
        h.send(b"");
        let t = h.send(b"CAPA\r\n");
        for cap in [
            "\r\nTOP\r\n",
            "\r\nUIDL\r\n",
            "\r\nUSER\r\n",
            "\r\nPIPELINING\r\n",
            "\r\nRESP-CODES\r\n",
        ] {
            assert!(t.contains(cap), "{cap} missing in {t}");
        }
        assert!(t.ends_with("\r\n.\r\n"));
    }
}
