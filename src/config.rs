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
/// Reply buffer lent to a connection whose client takes each full reply
/// buffer at once (a long RETR to a client that keeps up): a quarter of the
/// reads, encoder calls and writes per megabyte.
pub const OUTPUT_BUF_LARGE: usize = 64 * 1024;
/// Connections that may hold [`OUTPUT_BUF_LARGE`] at once, in the whole
/// process; the others keep [`OUTPUT_BUF`] (all work the same, slower).
pub const LARGE_OUTPUT_BUFFERS: usize = 16;
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
/// Bytes of mailbox one scan step reads (one event-loop turn of an opening).
pub const SCAN_BUDGET: usize = 1024 * 1024;
/// Bytes of mailbox one expunge step copies (one event-loop turn of an expunge).
pub const EXPUNGE_BUDGET: usize = 1024 * 1024;
/// Bytes of index file one step writes after PASS was answered, while the
/// session waits for a command (small: a command that arrives waits for at
/// most one step, a fraction of a millisecond).
pub const STORE_BUDGET: usize = 256 * 1024;

/// An expunge that moves at least this many bytes answers QUIT as soon as its
/// plan is durable (the journal is fsynced: the deletion can no longer be
/// lost or undone) and finishes the compaction after the connection is
/// closed; a smaller one finishes first, so that the answer comes with the
/// file already compacted. The client of a large mailbox on slow storage
/// does not wait for (or time out on) a rewrite that is certain to happen.
pub const EXPUNGE_EARLY_ANSWER: u64 = 8 * 1024 * 1024;
/// Largest block of an expunge whose bytes are copied into the journal before
/// they overwrite the mailbox (needed where a block's source and destination
/// overlap). The journal then needs up to twice this on disk, for a moment;
/// each block costs two fsyncs. Copies stream through [`COPY_CHUNK`] bytes of
/// memory whatever the block size.
pub const JOURNAL_BLOCK: usize = 16 * 1024 * 1024;
/// Threads a scan uses by default at most (`--scan-threads 0`, one per CPU).
pub const SCAN_THREADS_AUTO_MAX: usize = 4;
/// Scan helper threads running at once in the whole process, whatever the
/// number of sessions opening large mailboxes.
pub const SCAN_HELPERS_MAX: usize = 7;
/// How often the event loop looks whether a scan's helpers are done, once
/// its own part is scanned.
pub const SCAN_HELPER_POLL: Duration = Duration::from_millis(1);
/// How often to try again for a mailbox lock held by another program.
pub const LOCK_RETRY: Duration = Duration::from_millis(25);
/// A `USER.lock` dotlock older than this is stale and removed (liblockfile,
/// procmail and Debian policy use 5 minutes).
pub const DOTLOCK_STALE: Duration = Duration::from_secs(300);
/// How often a held dotlock's mtime is refreshed during long operations.
pub const DOTLOCK_REFRESH: Duration = Duration::from_secs(60);
// A held dotlock must never look stale to others.
const _: () = assert!(DOTLOCK_REFRESH.as_secs() * 2 <= DOTLOCK_STALE.as_secs());
/// Mailboxes whose message indexes the daemon remembers between sessions.
pub const INDEX_CACHE_ENTRIES: usize = 256;
/// Memory the remembered indexes may use in total (40 bytes per message).
pub const INDEX_CACHE_BYTES: usize = 32 * 1024 * 1024;
/// A mailbox's index is kept in a file next to it (`.USER.pop3d-index`) once
/// an opening had to scan at least this many bytes (and more than the file
/// would take, 40 bytes per message); smaller scans cost less than the file.
pub const INDEX_FILE_MIN_SCAN: u64 = 1024 * 1024;
/// Messages re-scanned at random, besides the last one, when a cheap check
/// must confirm that the indexed part of a mailbox is unchanged.
pub const SPOT_CHECK_MESSAGES: usize = 8;
/// Largest message re-scanned whole by a spot check; of a larger one only the
/// From_ line and its separator are checked.
pub const SPOT_CHECK_BYTES: u64 = 64 * 1024;
/// Retired UIDLs remembered per mailbox (16 bytes each, in
/// `SPOOL/.USER.pop3d-uids`), so that an id is not given to another message.
pub const UID_RETIRED_MAX: usize = 16 * 1024;

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
    /// Also take a `SPOOL/USER.lock` dotlock (Debian policy; default on).
    pub dotlock: bool,
    /// Also take a `flock(2)` lock (default off; do not enable on NFS, where
    /// Linux emulates flock with the same record locks as fcntl).
    pub flock: bool,
    /// Threads that scan one mailbox with no index yet (the event loop and
    /// up to this many minus one helpers, never more than
    /// [`SCAN_HELPERS_MAX`] helpers in the process); 0: one per CPU, at
    /// most [`SCAN_THREADS_AUTO_MAX`].
    pub scan_threads: usize,
    /// Least bytes of mailbox per thread of such a scan: a smaller scan
    /// stays on the event loop.
    pub scan_part_min: u64,
}

impl Default for MailboxLimits {
    fn default() -> Self {
        MailboxLimits {
            max_messages: 2_097_152,
            max_bytes: 2_147_483_647,
            // Waiting is a timer in the event loop, not a sleep, so the wait
            // can be as long as a delivery agent may hold its locks.
            lock_wait: Duration::from_secs(10),
            dotlock: true,
            flock: false,
            scan_threads: 0,
            scan_part_min: 8 * 1024 * 1024,
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
    /// The syslog socket.
    pub syslog_socket: PathBuf,
    /// Most concurrent sessions (size of the connection table).
    pub max_sessions: usize,
    /// Most sessions per client address.
    pub max_per_source: usize,
    /// A session counts against the limits for at least this long after it
    /// starts (popa3d's MIN_DELAY), so connect-quit loops are throttled.
    pub min_delay: Duration,
    /// After SIGTERM/SIGINT: how long running sessions may take to finish
    /// before they are closed (without expunging).
    pub shutdown_grace: Duration,
    /// Daemon mode: file to write the pid into.
    pub pidfile: Option<PathBuf>,
    /// hosts_access(5) files (missing files permit everyone).
    pub hosts_allow: PathBuf,
    /// See `hosts_allow`.
    pub hosts_deny: PathBuf,
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
            syslog_socket: PathBuf::from("/dev/log"),
            max_sessions: 500,
            max_per_source: 50,
            min_delay: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            pidfile: None,
            hosts_allow: PathBuf::from("/etc/hosts.allow"),
            hosts_deny: PathBuf::from("/etc/hosts.deny"),
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
