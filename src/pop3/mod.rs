//! The sans-IO POP3 protocol core: command parsing, replies and session states.
//! It consumes client bytes and produces reply bytes; it never touches a socket,
//! a file or a clock. The mailbox is reached through the [`Store`] trait, which
//! the server's mailbox (`server::mailbox::UserMailbox`, over [`crate::mbox::Mailbox`]) implements and unit tests fake in memory.

pub mod buffer;
pub mod command;
pub mod sasl;
pub mod session;

pub use buffer::Buffer;
pub use session::{Credentials, End, Finish, Session, Want};

use crate::mbox::{ExpungeStep, MboxError, Uid};

/// What a session needs from an open mailbox. Message indexes are 0-based.
pub trait Store {
    /// Number of messages visible to this session.
    fn count(&self) -> usize;
    /// Octets RETR sends for message `i`, dot-stuffing not counted.
    fn size(&self, i: usize) -> u64;
    /// Unique id of message `i`.
    fn uid(&self, i: usize) -> Uid;
    /// Stored bytes of message `i`.
    fn data_len(&self, i: usize) -> u64;
    /// Confirms that what was indexed is unchanged (appends are fine).
    fn verify(&mut self) -> Result<(), MboxError>;
    /// Reads stored bytes of message `i` starting at `offset` within it.
    fn read_data(&mut self, i: usize, offset: u64, buf: &mut [u8]) -> std::io::Result<usize>;
    /// Starts removing the messages marked in `deleted`; the work is done by
    /// [`Store::expunge_step`].
    fn expunge_start(&mut self, deleted: &[bool]);
    /// Does a bounded piece of the expunge (about `budget` bytes of copying,
    /// or one lock attempt).
    fn expunge_step(&mut self, budget: usize) -> Result<ExpungeStep, MboxError>;
    /// True while the store has work of its own left from the opening
    /// (writing its index file), done by [`Store::background_step`] while
    /// the session waits for a command and after it ends.
    fn background_pending(&self) -> bool;
    /// Does a bounded piece of that work (about `budget` bytes); true while
    /// more remains.
    fn background_step(&mut self, budget: usize) -> bool;
}
