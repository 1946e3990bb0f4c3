//! The sans-IO POP3 protocol core: command parsing, replies and session states.
//! It consumes client bytes and produces reply bytes; it never touches a socket,
//! a file or a clock.
