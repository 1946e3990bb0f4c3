//! Command line (argh) to [`pop3d::config::Config`], then inetd or daemon mode.

fn main() {}
