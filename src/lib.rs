//! pop3d: a small POP3 server (RFC 1939 and extensions) for mbox spools and
//! crypt(3) hashes in /etc/shadow, built as one static binary.
//!
//! Layers, each in its own module:
//! - [`pop3`]: the sans-IO protocol core (bytes in, bytes out, no sockets or files);
//! - [`mbox`]: mailbox scanning, message index, UIDL, the RETR/TOP encoder, locks, expunge;
//! - [`auth`]: passwd/shadow readers, crypt(3) schemes, account policy;
//! - [`server`]: the mio event loop, connection table, inetd glue;
//! - [`sys`]: the only module that calls libc directly (each such block justified);
//! - [`config`]: every limit and path with its default; [`log`]: syslog or stderr;
//!   [`budget`]: process-wide bounds on what sessions hold for a while.

pub mod auth;
pub mod budget;
pub mod config;
pub mod log;
pub mod mbox;
pub mod pop3;
pub mod server;
pub mod sys;
