//! Expunge in steps: [`Mailbox::expunge_start`] records what to delete;
//! each [`Mailbox::expunge_step`] makes one non-blocking attempt at the
//! exclusive locks (fcntl, dotlock, optional flock; [`ExpungeStep::Waiting`]
//! until `lock_wait` has passed, then [`MboxError::InUse`]), or copies about
//! a budget of bytes.
//!
//! Under the lock, before anything is written: the stamp check and, unless
//! it is quiet, a spot check of the index (`verify.rs`); a From_ line must
//! still start at every point where the compaction cuts; mail appended
//! during the session must start a new message where the index ended
//! (otherwise [`MboxError::Changed`] and nothing is written). Then the plan
//! (kept runs, UIDLs to retire) goes into the journal: once it is fsynced
//! the step reports [`ExpungeStep::Committed`] (the deletion can no longer be
//! lost: a crash from here on is finished by the next opening), and the
//! compaction of `journal.rs` runs, keeping inode, owner and mode; mail appended during
//! the session is moved down after the kept messages byte for byte. At the
//! end the file is truncated and fsynced, the retired UIDLs recorded, the
//! journal removed, and the mailbox describes the new file (every remaining
//! message keeps its UIDL); the locks are dropped after the index file.
//!
//! The hidden pseudo-message is never deleted. Deleting everything leaves
//! an empty file (mode and owner kept), as popa3d does.
//!
//! The index file (`stored.rs`) is removed before the compaction starts and
//! written anew for the compacted file, in steps, after it (when the index
//! covers enough of the file to be worth one), still under the locks.
//!
//! Unbounded work left in a step: writing the plan (16 bytes per run of kept
//! messages and per deleted message) in the step that takes the lock, and
//! the fsyncs (two per journal block).

use std::time::{Duration, SystemTime};

use super::journal::{Compactor, Plan, fault};
use super::lock::{self, Deadline, Held, Try};
use super::scan::Tail;
use super::uidl::{self, UidKey};
use super::{Expunged, Mailbox, MboxError, file, retired, stored, verify};
use crate::sys::lock::LockKind;

/// What an expunge step achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpungeStep {
    /// More to do: call [`Mailbox::expunge_step`] again on a later turn.
    Pending,
    /// Another program holds the lock: call again after this long.
    Waiting(Duration),
    /// The plan is durable (journal written and fsynced, reported once): the
    /// messages are deleted whatever happens now, by the later steps or,
    /// after a crash, by the next opening. `moving` bytes are left to copy.
    /// Call again to carry on.
    Committed {
        /// What the expunge deletes and keeps.
        summary: Expunged,
        /// Bytes the compaction moves.
        moving: u64,
    },
    /// Finished; no lock is held.
    Done(Expunged),
}

/// An expunge in progress (inside the [`Mailbox`]).
#[derive(Debug)]
pub(crate) struct Expunging {
    /// Per entry (the hidden pseudo-message included): delete it.
    deleted: Vec<bool>,
    summary: Expunged,
    deadline: Deadline,
    held: Option<Held>,
    /// The journal is written: from here on the expunge is finished by
    /// the later steps or by the next opening, never undone.
    committed: bool,
    compactor: Option<Box<Compactor>>,
    /// Writing the index file of the compacted mailbox (the expunge itself
    /// is complete).
    storing: Option<Box<stored::Writer>>,
}

impl Mailbox {
    /// Starts removing the messages marked in `deleted` (indexed like
    /// messages; marks past `count()` are ignored, missing marks mean keep).
    /// Nothing is done until [`Mailbox::expunge_step`]. With nothing marked
    /// the file is never touched, even if it changed (as popa3d).
    pub fn expunge_start(&mut self, deleted: &[bool]) {
        // The index is about to change: an index file of it is no use now.
        self.storing = None;
        let skip = usize::from(self.index.hidden_first).min(self.index.entries.len());
        let mut summary = Expunged::default();
        let mut marks = vec![false; self.index.entries.len()];
        for (i, e) in self.index.visible().iter().enumerate() {
            if deleted.get(i).copied().unwrap_or(false) {
                marks[i + skip] = true;
                summary.deleted += 1;
                summary.deleted_bytes += e.size();
            } else {
                summary.kept += 1;
                summary.kept_bytes += e.size();
            }
        }
        self.expunging = Some(Box::new(Expunging {
            deleted: marks,
            summary,
            deadline: Deadline::after(self.limits.lock_wait),
            held: None,
            committed: false,
            compactor: None,
            storing: None,
        }));
    }

    /// Does one bounded piece of the expunge started by
    /// [`Mailbox::expunge_start`]: one lock attempt, or copying about
    /// `budget_bytes`. Must run with the mailbox user's file-system identity.
    ///
    /// On an error nothing was deleted, or (an I/O error in the middle of the
    /// compaction) the journal stays and the next opening finishes the
    /// expunge; either way the mailbox holds no lock and fails every later
    /// check ([`Mailbox::verify`]).
    pub fn expunge_step(&mut self, budget_bytes: usize) -> Result<ExpungeStep, MboxError> {
        let Some(mut x) = self.expunging.take() else {
            return Ok(ExpungeStep::Done(Expunged::default()));
        };
        match self.advance_expunge(&mut x, budget_bytes) {
            Ok(ExpungeStep::Done(done)) => Ok(ExpungeStep::Done(done)),
            Ok(other) => {
                self.expunging = Some(x);
                Ok(other)
            }
            Err(e) => {
                if x.committed {
                    let full = match &e {
                        MboxError::Io(io) if file::no_space(io) => file::spool_hint(io),
                        _ => "",
                    };
                    crate::crit!(
                        "{}: expunge stopped: {e}{full}; the next login finishes it",
                        self.path.display()
                    );
                }
                if matches!(e, MboxError::Changed) || x.committed {
                    self.broken = true;
                }
                Err(e)
            }
        }
    }

    fn advance_expunge(
        &mut self,
        x: &mut Expunging,
        budget: usize,
    ) -> Result<ExpungeStep, MboxError> {
        if x.summary.deleted == 0 {
            return Ok(ExpungeStep::Done(x.summary));
        }
        if let Some(w) = x.storing.as_mut() {
            if !w.advance(&self.index, budget) {
                return Ok(ExpungeStep::Pending);
            }
            x.storing = None;
            return Ok(ExpungeStep::Done(x.summary));
        }
        if self.broken {
            return Err(MboxError::Changed);
        }
        let Some(file) = self.file.as_ref() else {
            return Ok(ExpungeStep::Done(x.summary)); // unreachable: messages imply a file
        };
        if x.held.is_none() {
            match lock::try_acquire(file, &self.path, LockKind::Exclusive, &self.limits)? {
                Try::Held(h) => x.held = Some(h),
                Try::Busy => return Ok(ExpungeStep::Waiting(x.deadline.retry()?)),
            }
            let plan = self.plan(x)?;
            let c = Compactor::create(&self.path, self.owner, plan).map_err(|e| {
                crate::crit!(
                    "{}: cannot create the expunge journal: {e}; nothing deleted{}",
                    self.path.display(),
                    file::spool_hint(&e)
                );
                MboxError::Io(e)
            })?;
            let moving = c.plan().moving();
            x.compactor = Some(Box::new(c));
            x.committed = true;
            // The index file describes the file as it is: gone before the
            // first byte moves, so that no crash can leave it stale.
            stored::remove(&self.path);
            return Ok(ExpungeStep::Committed {
                summary: x.summary,
                moving,
            });
        }
        if let Some(h) = x.held.as_mut() {
            h.refresh();
        }
        if fault::hold() {
            return Ok(ExpungeStep::Waiting(Duration::from_millis(10)));
        }
        let c = x.compactor.as_mut().expect("a plan under the lock");
        let done = c.step(file, budget)?;
        if !done {
            return Ok(ExpungeStep::Pending);
        }
        let c = x.compactor.take().expect("a compaction");
        self.reindex(&x.deleted);
        let live = self.index.visible().to_vec();
        match retired::commit(&self.path, self.owner, &c.plan().retire, Some(&live)) {
            Ok(r) => self.retired = r,
            Err(e) => crate::notice!(
                "cannot record retired UIDLs of {}: {e}",
                self.path.display()
            ),
        }
        c.finish()?;
        self.checked_at = SystemTime::now();
        self.stamp = file::stamp(self.file.as_ref().expect("a file"))?;
        // The locks stay until the index file is written (they go with `x`
        // at the end): whoever waits for them finds it, and the daemon's
        // cache has this index by the time another session can lock.
        if !stored::worth_keeping(self.index.end) {
            stored::remove(&self.path);
            return Ok(ExpungeStep::Done(x.summary));
        }
        match stored::Writer::start(self) {
            Some(w) => {
                x.storing = Some(Box::new(w));
                Ok(ExpungeStep::Pending)
            }
            None => Ok(ExpungeStep::Done(x.summary)),
        }
    }

    /// Under the exclusive lock: checks the file and makes the plan.
    fn plan(&self, x: &Expunging) -> Result<Plan, MboxError> {
        let file = self.file.as_ref().expect("a file");
        let now = file::stamp(file)?;
        let index = &self.index;
        if now.size < index.end {
            return Err(MboxError::Changed);
        }
        if !verify::quiet(&self.stamp, &now, self.checked_at) {
            verify::spot_check(file, index)?;
        }
        let del = &x.deleted;
        let n = index.entries.len();
        verify::cut_points(file, index, |i| {
            (i > 0 && del[i] != del[i - 1]) || (i == 0 && del[0])
        })?;
        let appended = if now.size > index.end {
            match verify::appended_start(file, index, now.size)? {
                Some(at) => Some(at),
                None => return Err(MboxError::Changed),
            }
        } else {
            None
        };
        let mut kept: Vec<(u64, u64)> = Vec::new();
        let mut retire: Vec<UidKey> = Vec::new();
        let mut push = |src: u64, len: u64| match kept.last_mut() {
            Some(last) if last.0 + last.1 == src => last.1 += len,
            _ => kept.push((src, len)),
        };
        for (i, e) in index.entries.iter().enumerate() {
            if del[i] {
                retire.push(uidl::key(e, e.uid_k));
            } else {
                push(e.raw_start, index.raw_end(i) - e.raw_start);
            }
        }
        if let Some(at) = appended {
            // After a kept last message the appended bytes follow as they are
            // (with their separator line); after a deleted one, from the From_
            // line on.
            let from = if n > 0 && !del[n - 1] { index.end } else { at };
            push(from, now.size - from);
        }
        Ok(Plan::new(self.id, now.size, &kept, retire))
    }

    /// Makes the index describe the compacted file.
    fn reindex(&mut self, deleted: &[bool]) {
        self.append_ok = false;
        let index = &mut self.index;
        let n = index.entries.len();
        let last_kept = n > 0 && !deleted[n - 1];
        let mut k = 0;
        let mut off = 0u64;
        for (i, &gone) in deleted.iter().enumerate().take(n) {
            let len = index.raw_end(i) - index.entries[i].raw_start;
            if !gone {
                let mut e = index.entries[i];
                e.raw_start = off;
                index.entries[k] = e;
                k += 1;
                off += len;
            }
        }
        index.entries.truncate(k);
        index.end = off;
        if !last_kept {
            index.tail = if k > 0 { Tail::Empty } else { Tail::Start };
        }
    }
}
