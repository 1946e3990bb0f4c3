//! Bounded, resumable opening of a mailbox: [`Opening::start`] does the cheap
//! part at once (safe open, `fstat`, index cache lookup), then each
//! [`Opening::step`] does one bounded piece of work — one non-blocking lock
//! attempt, or finishing an interrupted expunge by at most a budget of bytes,
//! or scanning at most a budget of bytes — so an event loop can open a 1 GiB
//! mailbox without stalling its other sessions.
//!
//! Sequence:
//! 1. the file is opened (`O_NOFOLLOW`, regular files only); a missing or
//!    empty file is an empty mailbox at once;
//! 2. a cached index (from the daemon's cache, or else from the index file
//!    next to the mailbox, read in steps: `stored.rs`) whose stamp is quiet
//!    is used at once: no lock, no read of the mailbox;
//! 3. otherwise the locks are tried (shared; exclusive if an expunge journal
//!    is there), again at each step, until `lock_wait` has passed
//!    ([`MboxError::InUse`]); [`Step::Waiting`] says when to try again. An
//!    opening that found a journal and, with the lock, finds it gone (an
//!    expunge ran meanwhile) takes the index that expunge left: from the
//!    daemon's cache ([`Opening::adopt_cached`]) or the index file;
//! 4. an unfinished expunge (journal) is completed;
//! 5. a cached index is spot-checked and only the appended bytes are scanned;
//!    without one, the whole file is scanned;
//! 6. the messages whose UIDL needs a data sum are hashed (`sums.rs`: a
//!    scan leaves them out), the locks are dropped, UIDLs assigned;
//!    [`Step::Done`] hands over the [`Mailbox`]. An index that took a long
//!    scan (or that came from the index file and was only now confirmed)
//!    goes to the index file: the file is started here and written in steps
//!    by [`Mailbox::store_step`] once the session has answered PASS.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::cache::{Cached, IndexCache};
use super::file::{self, FeedError, FileId, Stamp};
use super::index::{Index, IndexSink};
use super::journal::{self, Compactor, Found};
use super::lock::{self, Deadline, Held, Try};
use super::parallel::{Helpers, Part};
use super::scan::Scanner;
use super::sums::SumJob;
use super::uidl::{self, Retired};
use super::{Mailbox, MboxError, retired, stored, verify};
use crate::config::{MailboxLimits, SCAN_CHUNK, SCAN_HELPER_POLL};
use crate::sys::lock::LockKind;

/// What a step achieved.
#[derive(Debug)]
pub enum Step {
    /// More work to do: call [`Opening::step`] again on a later turn.
    Pending,
    /// Another program holds the mailbox lock, or helper threads are still
    /// scanning: call [`Opening::step`] again after this long (at most
    /// [`crate::config::LOCK_RETRY`]).
    Waiting(Duration),
    /// The mailbox is open; no lock is held.
    Done(Box<Mailbox>),
}

/// Scanning in progress.
#[derive(Debug)]
struct ScanJob {
    scanner: Scanner<IndexSink>,
    /// The scanner scans up to here: the end of the scan, or where the
    /// helpers' parts begin.
    to: u64,
    /// End of the scan (the size when the lock was taken).
    end: u64,
    /// Where scanning started (0: the whole file).
    from: u64,
    hidden_first: bool,
    buf: Vec<u8>,
    /// Threads scanning `[to, end)` (`parallel.rs`).
    helpers: Option<Helpers>,
    /// Entries of the cached index the scan continues (assigned before).
    kept: usize,
}

/// A finished scan's index, waiting for its UIDLs.
#[derive(Debug)]
struct Scanned {
    index: Index,
    /// `uidl::contested` of the visible entries.
    contested: Vec<usize>,
    /// The scan covered `[from, end)` in `parts` parts.
    from: u64,
    end: u64,
    parts: usize,
}

#[derive(Debug)]
enum State {
    Ready(Box<Mailbox>),
    Locking,
    Recovering(Box<Compactor>),
    Scanning(Box<ScanJob>),
    /// Reading the data sums some UIDLs of a scanned index need.
    Summing(Box<Scanned>, Box<SumJob>),
    /// Reading the index file.
    Loading(Box<stored::Reader>),
    Spent,
}

/// A mailbox being opened, stepped by the caller.
#[derive(Debug)]
pub struct Opening {
    path: PathBuf,
    limits: MailboxLimits,
    file: Option<File>,
    id: FileId,
    owner: (u32, u32),
    deadline: Deadline,
    kind: LockKind,
    held: Option<Held>,
    cached: Option<Cached>,
    /// The cached index came from the index file: once confirmed under the
    /// lock, write it back with the new confirmation time.
    from_file: bool,
    /// An expunge journal was there at the start (an expunge running, or
    /// interrupted): no index was looked for then. Once the lock is had
    /// with the journal gone, the index the expunge left is looked for.
    after_expunge: bool,
    retired: Retired,
    stamp: Stamp,
    checked_at: SystemTime,
    state: State,
}

impl Opening {
    /// Starts opening the mailbox at `path`: opens the file and looks it up in
    /// `cache` (taking the entry out). Does not lock, does not scan.
    ///
    /// Refused at once: not a regular file (symlinks included); a file that
    /// cannot be opened read-write is an I/O error.
    pub fn start(
        path: &Path,
        limits: &MailboxLimits,
        cache: Option<&mut IndexCache>,
    ) -> Result<Opening, MboxError> {
        let mut o = Opening {
            path: path.to_path_buf(),
            limits: *limits,
            file: None,
            id: FileId::default(),
            owner: (0, 0),
            deadline: Deadline::after(limits.lock_wait),
            kind: LockKind::Shared,
            held: None,
            cached: None,
            from_file: false,
            after_expunge: false,
            retired: Retired::default(),
            stamp: Stamp::default(),
            checked_at: SystemTime::now(),
            state: State::Locking,
        };
        let Some(f) = file::open_mailbox(path)? else {
            o.state = State::Ready(Box::new(Mailbox::empty(path, limits, None)));
            return Ok(o);
        };
        let (id, st, owner) = file::stat(&f)?;
        let journal = journal::path(path).symlink_metadata().is_ok();
        o.id = id;
        o.owner = owner;
        o.cached = cache.and_then(|c| c.take(id));
        if journal {
            o.kind = LockKind::Exclusive;
            o.after_expunge = true;
        } else if st.size == 0 {
            let mut mb = Mailbox::empty(path, limits, Some(f));
            mb.id = id;
            mb.owner = owner;
            o.state = State::Ready(Box::new(mb));
            return Ok(o);
        } else if o.cached.is_none() {
            match stored::Reader::open(path, owner.0, id, limits.max_messages) {
                Ok(Some(r)) => {
                    o.file = Some(f);
                    o.state = State::Loading(Box::new(r));
                    return Ok(o);
                }
                Ok(None) => {}
                Err(e) => crate::notice!("ignoring {}: {e}", stored::path(path).display()),
            }
        }
        o.file = Some(f);
        if !journal && let Some(c) = o.cached.take() {
            o.offer(c, &st);
        }
        Ok(o)
    }

    /// While waiting for the lock of a mailbox an expunge was working on,
    /// takes the index that expunge gave the daemon's `cache` since (the
    /// daemon calls this before each step; the lock check comes after).
    pub fn adopt_cached(&mut self, cache: Option<&mut IndexCache>) {
        if self.after_expunge
            && self.cached.is_none()
            && matches!(self.state, State::Locking)
            && let Some(c) = cache.and_then(|c| c.take(self.id))
        {
            self.cached = Some(c);
        }
    }

    /// Uses cached index `c` at once if the file, stamped `st`, is quietly
    /// unchanged since; otherwise keeps it for a check under the lock.
    fn offer(&mut self, c: Cached, st: &Stamp) {
        // (A mailbox over the size limit, which may have been lowered since
        // the index was made, goes on to the check under the lock.)
        if c.usable_as_is(st) && st.size <= self.limits.max_bytes {
            let mb = self.mailbox(c.index, c.retired, c.stamp, c.checked_at);
            self.state = State::Ready(Box::new(mb));
        } else {
            self.cached = Some(c);
            self.state = State::Locking;
        }
    }

    /// Does one bounded piece of the work: at most one lock attempt, or about
    /// `budget_bytes` of reading (and, when finishing an interrupted expunge,
    /// writing). Must be called with the same file-system identity as
    /// [`Opening::start`].
    ///
    /// After an error the opening is spent and holds no lock.
    pub fn step(&mut self, budget_bytes: usize) -> Result<Step, MboxError> {
        let result = self.advance(budget_bytes);
        if result.is_err() {
            self.state = State::Spent;
            self.held = None;
        }
        result
    }

    fn advance(&mut self, budget: usize) -> Result<Step, MboxError> {
        match std::mem::replace(&mut self.state, State::Spent) {
            State::Ready(mb) => Ok(Step::Done(mb)),
            State::Spent => Err(MboxError::Io(std::io::Error::other(
                "opening already finished",
            ))),
            State::Locking => self.lock(),
            State::Loading(mut r) => {
                match r.step(budget) {
                    Ok(None) => self.state = State::Loading(r),
                    Ok(Some(mut c)) => {
                        let file = self.file.as_ref().expect("a file to index");
                        let st = file::stamp(file)?;
                        // (Otherwise the scan under the lock loads them.)
                        if c.usable_as_is(&st) {
                            c.retired = retired::load(&self.path, self.owner.0);
                        }
                        self.from_file = true;
                        self.offer(c, &st);
                    }
                    Err(e) => {
                        crate::notice!("ignoring {}: {e}", stored::path(&self.path).display());
                        self.state = State::Locking;
                    }
                }
                Ok(Step::Pending)
            }
            State::Recovering(mut c) => {
                let file = self.file.as_ref().expect("a file to recover");
                let done = c.step(file, budget)?;
                if let Some(h) = self.held.as_mut() {
                    h.refresh();
                }
                if !done {
                    self.state = State::Recovering(c);
                    return Ok(Step::Pending);
                }
                let moved = c.appended_after_crash();
                if let Err(e) = retired::commit(&self.path, self.owner, &c.plan().retire, None) {
                    crate::notice!(
                        "cannot record retired UIDLs of {}: {e}",
                        self.path.display()
                    );
                }
                c.finish()?;
                crate::notice!(
                    "{}: finished an interrupted expunge{}",
                    self.path.display(),
                    if moved > 0 {
                        format!(" (and kept {moved} bytes of mail delivered since)")
                    } else {
                        String::new()
                    }
                );
                self.cached = None;
                self.plan_scan()
            }
            State::Scanning(mut job) => {
                let file = self.file.as_ref().expect("a file to scan");
                if let Err(e) =
                    file::feed_some(file, &mut job.scanner, &mut job.buf, job.to, budget as u64)
                {
                    return Err(self.feed_error(e));
                }
                if let Some(h) = self.held.as_mut() {
                    h.refresh();
                }
                if job.scanner.pos() < job.to {
                    self.state = State::Scanning(job);
                    return Ok(Step::Pending);
                }
                let parts = match job.helpers.as_mut().map(Helpers::poll) {
                    None => Vec::new(),
                    Some(None) => {
                        self.state = State::Scanning(job);
                        return Ok(Step::Waiting(SCAN_HELPER_POLL));
                    }
                    Some(Some(Ok(parts))) => parts,
                    Some(Some(Err(e))) => return Err(self.feed_error(e)),
                };
                self.finish_scan(*job, parts)
            }
            State::Summing(mut scanned, mut job) => {
                let file = self.file.as_ref().expect("a file to read");
                let done = job.step(file, &mut scanned.index.entries, budget as u64)?;
                if let Some(h) = self.held.as_mut() {
                    h.refresh();
                }
                if !done {
                    self.state = State::Summing(scanned, job);
                    return Ok(Step::Pending);
                }
                Ok(self.finish_index(*scanned))
            }
        }
    }

    fn feed_error(&self, e: FeedError) -> MboxError {
        match e {
            FeedError::Io(e) => MboxError::Io(e),
            FeedError::Short => MboxError::Changed,
            FeedError::Scan(e) => MboxError::Refused(format!("{}: {e}", self.path.display())),
        }
    }

    /// One lock attempt.
    fn lock(&mut self) -> Result<Step, MboxError> {
        let file = self.file.as_ref().expect("a file to lock");
        let held = match lock::try_acquire(file, &self.path, self.kind, &self.limits)? {
            Try::Held(h) => h,
            Try::Busy => {
                let wait = self.deadline.retry()?;
                self.state = State::Locking;
                return Ok(Step::Waiting(wait));
            }
        };
        // Taken before the stamp: see `verify::quiet`.
        self.checked_at = SystemTime::now();
        let (_, st, owner) = file::stat(file)?;
        self.owner = owner;
        self.stamp = st;
        let journal = journal::path(&self.path).symlink_metadata().is_ok();
        if journal && self.kind == LockKind::Shared {
            // An expunge was interrupted: finishing it needs the exclusive lock.
            drop(held);
            self.kind = LockKind::Exclusive;
            self.state = State::Locking;
            return Ok(Step::Pending);
        }
        if !journal && self.after_expunge && self.cached.is_none() {
            // The expunge is over: the index file it wrote (under the lock
            // just had) saves a scan. Read without the lock, as at the start.
            self.after_expunge = false;
            match stored::Reader::open(&self.path, owner.0, self.id, self.limits.max_messages) {
                Ok(Some(r)) => {
                    drop(held);
                    self.kind = LockKind::Shared;
                    self.state = State::Loading(Box::new(r));
                    return Ok(Step::Pending);
                }
                Ok(None) => {}
                Err(e) => crate::notice!("ignoring {}: {e}", stored::path(&self.path).display()),
            }
        }
        self.held = Some(held);
        if journal {
            match Compactor::resume(
                &self.path,
                file,
                self.id,
                owner.0,
                st.size,
                self.limits.max_messages,
            ) {
                Ok(Found::None) => {}
                Ok(Found::Discarded(why)) => crate::notice!("removed expunge journal {why}"),
                Ok(Found::Resume(c)) => {
                    crate::notice!("{}: finishing an interrupted expunge", self.path.display());
                    self.state = State::Recovering(c);
                    return Ok(Step::Pending);
                }
                Err(e) => {
                    let advice = if e.kind() == std::io::ErrorKind::InvalidData {
                        format!(
                            " (damaged, or not made by pop3d; the mailbox is left as it is: \
                             check it, then remove {})",
                            journal::path(&self.path).display()
                        )
                    } else {
                        String::new()
                    };
                    crate::crit!(
                        "{}: cannot finish an interrupted expunge: {e}{advice}",
                        self.path.display()
                    );
                    return Err(MboxError::Refused(format!(
                        "{}: unfinished expunge: {e}",
                        self.path.display()
                    )));
                }
            }
        }
        self.plan_scan()
    }

    /// Under the lock: decides what to scan, using the cached index if it
    /// checks out.
    fn plan_scan(&mut self) -> Result<Step, MboxError> {
        let file = self.file.as_ref().expect("a file to scan");
        self.checked_at = SystemTime::now();
        let st = file::stamp(file)?;
        self.stamp = st;
        if st.size > self.limits.max_bytes {
            return Err(MboxError::Refused(format!(
                "{}: {} bytes is over the limit of {} bytes",
                self.path.display(),
                st.size,
                self.limits.max_bytes
            )));
        }
        self.retired = retired::load(&self.path, self.owner.0);
        let max = self.limits.max_messages;
        let mut job = ScanJob {
            scanner: Scanner::new(IndexSink::new(max)),
            to: st.size,
            end: st.size,
            from: 0,
            hidden_first: false,
            buf: Vec::new(),
            helpers: None,
            kept: 0,
        };
        if let Some(c) = self.cached.take()
            && st.size >= c.index.end
            && verify::spot_check(file, &c.index).is_ok()
        {
            let mut index = c.index;
            match verify::appended_start(file, &index, st.size)? {
                _ if st.size == index.end => {
                    // Unchanged (the stamp was only too recent to trust).
                    self.held = None;
                    let retired = std::mem::take(&mut self.retired);
                    let at = self.checked_at;
                    let mb = self.mailbox(index, retired, st, at);
                    // Written back once the new confirmation makes it
                    // usable without a lock (not for a stamp in the future).
                    let store = self.from_file && verify::quiet(&st, &st, at);
                    return Ok(self.done(mb, store));
                }
                Some(at) => {
                    job.from = at;
                    job.hidden_first = index.hidden_first;
                    job.scanner = Scanner::at(IndexSink::continuing(index.entries, max), at);
                }
                None => {
                    // The appended bytes continue the last message: scan it again.
                    let last = index.entries.pop();
                    if let Some(last) = last.filter(|_| !index.entries.is_empty()) {
                        job.from = last.raw_start;
                        job.hidden_first = index.hidden_first;
                        job.scanner =
                            Scanner::at(IndexSink::continuing(index.entries, max), last.raw_start);
                    }
                }
            }
        }
        // A long scan is shared with helper threads, if there are CPUs for it.
        job.kept = job.scanner.sink().entries.len();
        job.helpers = Helpers::start(file, job.from, job.end, &self.limits, job.kept);
        if let Some(h) = &job.helpers {
            job.to = h.first_end();
            job.scanner.sink_mut().share(h.count());
        }
        job.buf = vec![0; SCAN_CHUNK.min(job.to.saturating_sub(job.from).max(1) as usize)];
        self.state = State::Scanning(Box::new(job));
        Ok(Step::Pending)
    }

    /// Ends a scan, joining the helpers' `parts` (in file order) to the
    /// scanner's own.
    fn finish_scan(&mut self, job: ScanJob, parts: Vec<Part>) -> Result<Step, MboxError> {
        let scan_parts = 1 + parts.len();
        let tail = parts.last().map_or(job.scanner.tail(), |p| p.tail);
        let hidden_first = if job.from == 0 {
            job.scanner.first_is_pseudo()
        } else {
            job.hidden_first
        };
        let mut entries = match job.scanner.finish() {
            Ok(sink) => sink.entries,
            Err(e) => return Err(self.feed_error(FeedError::Scan(e))),
        };
        if !parts.is_empty() {
            entries.reserve_exact(parts.iter().map(|p| p.entries.len()).sum());
            for p in parts {
                entries.extend_from_slice(&p.entries);
            }
        }
        entries.shrink_to_fit();
        let index = Index {
            entries,
            end: job.end,
            tail,
            hidden_first,
        };
        let skip = usize::from(index.hidden_first).min(index.entries.len());
        let visible = &index.entries[skip..];
        let contested = uidl::contested(visible, &self.retired);
        let need = uidl::needing_sums(
            visible,
            &contested,
            &self.retired,
            job.kept.saturating_sub(skip),
        );
        let scanned = Scanned {
            index,
            contested,
            from: job.from,
            end: job.end,
            parts: scan_parts,
        };
        if need.is_empty() {
            return Ok(self.finish_index(scanned));
        }
        let need = need.into_iter().map(|m| m + skip).collect();
        let sums = SumJob::new(&scanned.index.entries, need);
        self.state = State::Summing(Box::new(scanned), Box::new(sums));
        Ok(Step::Pending)
    }

    /// Drops the locks, assigns the UIDLs of a scanned index and hands over
    /// the mailbox.
    fn finish_index(&mut self, s: Scanned) -> Step {
        self.held = None;
        let mut index = s.index;
        let skip = usize::from(index.hidden_first).min(index.entries.len());
        uidl::assign(&mut index.entries[skip..], &s.contested, &self.retired);
        let retired = std::mem::take(&mut self.retired);
        let mut mb = self.mailbox(index, retired, self.stamp, self.checked_at);
        mb.scanned = s.end - s.from;
        mb.scan_parts = s.parts;
        let store = stored::worth_storing(mb.scanned, mb.index.entries.len());
        if !store && s.from == 0 {
            stored::remove(&self.path);
        }
        self.done(mb, store)
    }

    /// Hands over `mb`, with its index file started if `store`: the rest of
    /// the file is written by [`Mailbox::store_step`], after the caller has
    /// answered its client.
    fn done(&mut self, mut mb: Mailbox, store: bool) -> Step {
        if store {
            mb.storing = stored::Writer::start(&mb).map(Box::new);
        }
        Step::Done(Box::new(mb))
    }

    fn mailbox(
        &mut self,
        index: Index,
        retired: Retired,
        stamp: Stamp,
        checked_at: SystemTime,
    ) -> Mailbox {
        let mut mb = Mailbox::empty(&self.path, &self.limits, self.file.take());
        mb.id = self.id;
        mb.owner = self.owner;
        mb.index = index;
        mb.retired = retired;
        mb.stamp = stamp;
        mb.checked_at = checked_at;
        mb
    }
}
