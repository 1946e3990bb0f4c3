//! The server: the mio event loop, the bounded connection table, listeners and
//! the inetd glue, all driving [`crate::pop3`] sessions.
