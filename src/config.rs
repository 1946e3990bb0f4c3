//! Every limit and path pop3d uses, each with its default, in one place.
//!
//! Compile-time sizes (buffers) are constants here; run-time settings live in
//! [`Config`], filled from the command line by `main.rs`. Modules take what they
//! need from here rather than defining their own numbers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Longest command line kept, CRLF excluded (RFC 2449 allows 255 octets).
pub const LINE_MAX: usize = 255;
/// Longest `AUTH` command or SASL response line kept, CRLF excluded: room for
/// a base64 PLAIN message with a 64-byte name and a password of over 600 bytes.
pub const AUTH_LINE_MAX: usize = 1024;
/// Size of the per-connection input buffer (unprocessed client bytes). Pipelined
/// input beyond it stays in the socket until replies drain.
pub const INPUT_BUF: usize = 2048;
/// Size of the per-connection reply buffer. Every reply line is shorter than
/// [`REPLY_LINE_MAX`], so any single reply line always fits.
pub const OUTPUT_BUF: usize = 16 * 1024;
/// Longest single reply line we ever produce (RFC 2449: 512 octets with CRLF).
pub const REPLY_LINE_MAX: usize = 512;
/// Longest user name accepted (bytes).
pub const USER_MAX: usize = 64;
/// Bytes of client output one connection may produce in one event-loop turn
/// before yielding to the others (fairness).
pub const TURN_OUTPUT_BUDGET: usize = 256 * 1024;
/// Bytes copied per step when compacting a mailbox.
pub const COPY_CHUNK: usize = 64 * 1024;
/// Read buffer for scanning a mailbox.
pub const SCAN_CHUNK: usize = 64 * 1024;

/// Default standalone port (RFC 1939).
pub const DEFAULT_PORT: u16 = 110;
/// Default spool directory: the mailbox of USER is `SPOOL/USER`.
pub const DEFAULT_SPOOL: &str = "/var/mail";
/// Default account database files.
pub const DEFAULT_PASSWD: &str = "/etc/passwd";
/// Default shadow file.
pub const DEFAULT_SHADOW: &str = "/etc/shadow";

/// Where log lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogTarget {
    /// `/dev/log`, facility mail, ident `pop3d`, with the pid.
    Syslog,
    /// Standard error, one line per event.
    Stderr,
}

/// Mailbox limits (popa3d's defaults: 2^21 messages, 2 GiB).
#[derive(Clone, Copy, Debug)]
pub struct MailboxLimits {
    /// Most messages a mailbox may hold; one more refuses the mailbox.
    pub max_messages: usize,
    /// Largest mailbox file accepted, in bytes.
    pub max_bytes: u64,
    /// How long to keep trying for a mailbox lock before answering `[IN-USE]`.
    pub lock_wait: Duration,
}

impl Default for MailboxLimits {
    fn default() -> Self {
        MailboxLimits {
            max_messages: 2_097_152,
            max_bytes: 2_147_483_647,
            lock_wait: Duration::from_millis(1000),
        }
    }
}

/// Per-session protocol limits, used by the sans-IO core.
#[derive(Clone, Copy, Debug)]
pub struct SessionLimits {
    /// Failed logins after which the connection closes.
    pub max_auth_failures: u32,
    /// Unknown or malformed commands after which the connection closes.
    pub max_bad_commands: u32,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            max_auth_failures: 3,
            max_bad_commands: 20,
        }
    }
}

/// Everything the server needs at run time.
#[derive(Clone, Debug)]
pub struct Config {
    /// `-D`: standalone daemon; otherwise inetd mode on fd 0/1.
    pub daemon: bool,
    /// `-F`: stay in the foreground (no fork, no setsid).
    pub foreground: bool,
    /// Addresses to listen on in daemon mode.
    pub listen: Vec<SocketAddr>,
    /// Spool directory: the mailbox of USER is `spool/USER`.
    pub spool: PathBuf,
    /// passwd(5) file.
    pub passwd: PathBuf,
    /// shadow(5) file.
    pub shadow: PathBuf,
    /// Dovecot-style passwd-file of virtual users (`--users`); when set, used
    /// instead of `passwd` and `shadow`.
    pub users: Option<PathBuf>,
    /// Log destination.
    pub log: LogTarget,
    /// Most concurrent sessions (size of the connection table).
    pub max_sessions: usize,
    /// Idle timeout after login (RFC 1939: at least 10 minutes).
    pub idle_timeout: Duration,
    /// Timeout before login completes.
    pub login_timeout: Duration,
    /// Delay before a failed login is answered; doubles for each recent
    /// failure from the same source address, up to `fail_delay_max`.
    pub fail_delay: Duration,
    /// Upper bound of the failed-login delay.
    pub fail_delay_max: Duration,
    /// Threads that verify passwords, off the event loop.
    pub auth_threads: usize,
    /// Mailbox limits.
    pub mailbox: MailboxLimits,
    /// Protocol limits.
    pub session: SessionLimits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            daemon: false,
            foreground: false,
            listen: Vec::new(),
            spool: PathBuf::from(DEFAULT_SPOOL),
            passwd: PathBuf::from(DEFAULT_PASSWD),
            shadow: PathBuf::from(DEFAULT_SHADOW),
            users: None,
            log: LogTarget::Syslog,
            max_sessions: 500,
            idle_timeout: Duration::from_secs(600),
            login_timeout: Duration::from_secs(60),
            fail_delay: Duration::from_secs(2),
            fail_delay_max: Duration::from_secs(15),
            auth_threads: 2,
            mailbox: MailboxLimits::default(),
            session: SessionLimits::default(),
        }
    }
}
