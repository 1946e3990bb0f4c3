//! The mailbox as a session sees it in the server: a [`Mailbox`] plus the
//! identity its file-system work must run under. In root daemon mode every
//! operation that may create or change files next to the mailbox (locks,
//! expunge) runs with the user's fsuid/fsgid, exactly like the open did;
//! reads and checks on the already open descriptor need no switch.

use crate::mbox::{ExpungeStep, IndexCache, Mailbox, MboxError, Uid};
use crate::pop3::Store;
use crate::sys::process::FsIdentity;

/// A user's open mailbox.
#[derive(Debug)]
pub struct UserMailbox {
    inner: Mailbox,
    /// (uid, gid) to take for file-system work; None when no change is needed.
    as_user: Option<(u32, u32)>,
}

impl UserMailbox {
    /// Wraps an open mailbox.
    pub fn new(inner: Mailbox, as_user: Option<(u32, u32)>) -> UserMailbox {
        UserMailbox { inner, as_user }
    }

    /// Gives the index back to the daemon's cache when the session is over.
    pub fn into_cache(self, cache: &mut IndexCache) {
        self.inner.into_cache(cache);
    }

    /// Runs `f` under the user's file-system identity.
    fn as_user<T>(
        &mut self,
        f: impl FnOnce(&mut Mailbox) -> Result<T, MboxError>,
    ) -> Result<T, MboxError> {
        let _guard = FsIdentity::enter_opt(self.as_user).map_err(MboxError::Io)?;
        f(&mut self.inner)
    }
}

impl Store for UserMailbox {
    fn count(&self) -> usize {
        self.inner.count()
    }
    fn size(&self, i: usize) -> u64 {
        self.inner.size(i)
    }
    fn uid(&self, i: usize) -> Uid {
        self.inner.uid(i)
    }
    fn data_len(&self, i: usize) -> u64 {
        self.inner.data_len(i)
    }
    // Only fstat and pread on the open descriptor, which was opened as the
    // user: no identity switch (two setfsuid/setfsgid pairs per RETR).
    fn verify(&mut self) -> Result<(), MboxError> {
        self.inner.verify()
    }
    fn read_data(&mut self, i: usize, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read_data(i, offset, buf)
    }
    fn expunge_start(&mut self, deleted: &[bool]) {
        self.inner.expunge_start(deleted);
    }
    fn expunge_step(&mut self, budget: usize) -> Result<ExpungeStep, MboxError> {
        self.as_user(|mb| mb.expunge_step(budget))
    }
    fn background_pending(&self) -> bool {
        self.inner.storing()
    }
    // As the user: the index file is renamed into place in the spool.
    fn background_step(&mut self, budget: usize) -> bool {
        match FsIdentity::enter_opt(self.as_user) {
            Ok(_guard) => self.inner.store_step(budget),
            Err(e) => {
                crate::notice!(
                    "cannot write the index file of {}: {e}",
                    self.inner.path().display()
                );
                self.inner.store_give_up();
                false
            }
        }
    }
}
