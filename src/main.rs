//! Command line (argh) to [`pop3d::config::Config`], then inetd or daemon mode.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use argh::FromArgs;
use pop3d::config::{self, Config, LogTarget};

/// pop3d: a small POP3 server for mbox spools and crypt(3) hashes in shadow(5).
/// Without -D it serves one session on fd 0/1, as started by inetd.
#[derive(FromArgs)]
struct Args {
    /// run as a standalone daemon
    #[argh(switch, short = 'D')]
    daemon: bool,
    /// with -D: stay in the foreground (for containers and service managers)
    #[argh(switch, short = 'F')]
    foreground: bool,
    /// print the version and exit
    #[argh(switch, short = 'V')]
    version: bool,
    /// with -D: listen on IPv4 (0.0.0.0:110 unless --listen is given)
    #[argh(switch, short = '4')]
    ipv4: bool,
    /// with -D: listen on IPv6 (v6-only [::]:110 unless --listen is given)
    #[argh(switch, short = '6')]
    ipv6: bool,
    /// with -D: address to listen on, ADDR:PORT (repeatable; [v6]:port for IPv6)
    #[argh(option)]
    listen: Vec<SocketAddr>,
    /// spool directory; the mailbox of USER is DIR/USER (default /var/mail)
    #[argh(option, default = "PathBuf::from(config::DEFAULT_SPOOL)")]
    spool: PathBuf,
    /// passwd(5) file (default /etc/passwd)
    #[argh(option, default = "PathBuf::from(config::DEFAULT_PASSWD)")]
    passwd: PathBuf,
    /// shadow(5) file (default /etc/shadow)
    #[argh(option, default = "PathBuf::from(config::DEFAULT_SHADOW)")]
    shadow: PathBuf,
    /// virtual users, Dovecot passwd-file format (name:hash:uid:gid::home:);
    /// when given, passwd and shadow are not used
    #[argh(option)]
    users: Option<PathBuf>,
    /// log destination: syslog or stderr (default syslog; stderr with -F)
    #[argh(option, from_str_fn(parse_log))]
    log: Option<LogTarget>,
    /// hosts_access(5) allow file (default /etc/hosts.allow; daemon name pop3d)
    #[argh(option)]
    hosts_allow: Option<PathBuf>,
    /// hosts_access(5) deny file (default /etc/hosts.deny)
    #[argh(option)]
    hosts_deny: Option<PathBuf>,
    /// syslog socket for --log syslog (default /dev/log)
    #[argh(option)]
    syslog_socket: Option<PathBuf>,
    /// seconds to keep trying for a mailbox lock held by another program
    /// before answering [IN-USE] (default 10)
    #[argh(option)]
    lock_wait: Option<u64>,
    /// also lock the mailbox with flock(2) while scanning and expunging, for
    /// delivery agents that use only flock (not on NFS, where Linux turns
    /// flock into the same locks as fcntl)
    #[argh(switch)]
    flock: bool,
    /// most messages a mailbox may hold; a mailbox with more is refused
    /// with [SYS/PERM] (default 2097152, as popa3d)
    #[argh(option)]
    max_messages: Option<usize>,
    /// largest mailbox file in bytes; a larger one is refused with
    /// [SYS/PERM] (default 2147483647, as popa3d)
    #[argh(option)]
    max_mailbox_bytes: Option<u64>,
    /// threads that scan a mailbox with no index yet, each its own part of
    /// it: 1 scans on the event loop alone (default 0: one per CPU, at most 4)
    #[argh(option)]
    scan_threads: Option<usize>,
    /// most concurrent sessions (default 500)
    #[argh(option)]
    max_sessions: Option<usize>,
    /// most sessions per client address (default 50)
    #[argh(option)]
    max_per_source: Option<usize>,
    /// seconds a session counts against the limits at least, even if it ends
    /// sooner (default 10)
    #[argh(option)]
    min_delay: Option<u64>,
    /// with -D: write the daemon's pid to FILE
    #[argh(option)]
    pidfile: Option<PathBuf>,
    /// seconds open sessions get to finish after SIGTERM/SIGINT (default 10)
    #[argh(option)]
    grace: Option<u64>,
    /// seconds of inactivity after login before the connection is closed (default 600)
    #[argh(option)]
    idle_timeout: Option<u64>,
    /// seconds allowed before login completes (default 60)
    #[argh(option)]
    login_timeout: Option<u64>,
    /// seconds before a failed login is answered, doubling per recent failure
    /// from the same address (default 2)
    #[argh(option)]
    fail_delay: Option<u64>,
    /// upper bound of that delay in seconds (default 15)
    #[argh(option)]
    fail_delay_max: Option<u64>,
}

fn parse_log(s: &str) -> Result<LogTarget, String> {
    match s {
        "syslog" => Ok(LogTarget::Syslog),
        "stderr" => Ok(LogTarget::Stderr),
        _ => Err(format!("--log must be syslog or stderr, not {s:?}")),
    }
}

fn config_from(args: Args) -> Result<Config, String> {
    let mut cfg = Config {
        daemon: args.daemon,
        foreground: args.foreground,
        spool: args.spool,
        passwd: args.passwd,
        shadow: args.shadow,
        users: args.users,
        ..Config::default()
    };
    cfg.log = args.log.unwrap_or(if args.foreground {
        LogTarget::Stderr
    } else {
        LogTarget::Syslog
    });
    if !args.daemon && (args.foreground || !args.listen.is_empty() || args.ipv4 || args.ipv6) {
        return Err("-F, -4, -6 and --listen need -D".into());
    }
    cfg.listen = args.listen;
    if cfg.listen.is_empty() {
        if args.ipv4 || !args.ipv6 {
            cfg.listen.push(SocketAddr::new(
                Ipv4Addr::UNSPECIFIED.into(),
                config::DEFAULT_PORT,
            ));
        }
        if args.ipv6 {
            cfg.listen.push(SocketAddr::new(
                Ipv6Addr::UNSPECIFIED.into(),
                config::DEFAULT_PORT,
            ));
        }
    } else if args.ipv4 || args.ipv6 {
        cfg.listen
            .retain(|a| (a.is_ipv4() && args.ipv4) || (a.is_ipv6() && args.ipv6));
        if cfg.listen.is_empty() {
            return Err("-4/-6 exclude every --listen address".into());
        }
    }
    if let Some(n) = args.max_sessions {
        if n == 0 {
            return Err("--max-sessions must be at least 1".into());
        }
        cfg.max_sessions = n;
    }
    cfg.mailbox.flock = args.flock;
    if let Some(n) = args.max_messages {
        if n == 0 || n > u32::MAX as usize {
            return Err(format!(
                "--max-messages must be between 1 and {}, not {n}",
                u32::MAX
            ));
        }
        cfg.mailbox.max_messages = n;
    }
    if let Some(n) = args.max_mailbox_bytes {
        if n == 0 {
            return Err("--max-mailbox-bytes must be at least 1".into());
        }
        cfg.mailbox.max_bytes = n;
    }
    if let Some(n) = args.scan_threads {
        if n > config::SCAN_HELPERS_MAX + 1 {
            return Err(format!(
                "--scan-threads must be at most {}, not {n}",
                config::SCAN_HELPERS_MAX + 1
            ));
        }
        cfg.mailbox.scan_threads = n;
    }
    if let Some(s) = args.lock_wait {
        cfg.mailbox.lock_wait = Duration::from_secs(s);
    }
    if let Some(p) = args.syslog_socket {
        cfg.syslog_socket = p;
    }
    if let Some(p) = args.hosts_allow {
        cfg.hosts_allow = p;
    }
    if let Some(p) = args.hosts_deny {
        cfg.hosts_deny = p;
    }
    if let Some(n) = args.max_per_source {
        if n == 0 {
            return Err("--max-per-source must be at least 1".into());
        }
        cfg.max_per_source = n;
    }
    if let Some(s) = args.min_delay {
        cfg.min_delay = Duration::from_secs(s);
    }
    if let Some(s) = args.grace {
        cfg.shutdown_grace = Duration::from_secs(s);
    }
    if args.pidfile.is_some() && !cfg.daemon {
        return Err("--pidfile needs -D".into());
    }
    cfg.pidfile = args.pidfile;
    if let Some(s) = args.idle_timeout {
        cfg.idle_timeout = Duration::from_secs(s.max(1));
    }
    if let Some(s) = args.login_timeout {
        cfg.login_timeout = Duration::from_secs(s.max(1));
    }
    if let Some(s) = args.fail_delay {
        cfg.fail_delay = Duration::from_secs(s);
    }
    if let Some(s) = args.fail_delay_max {
        cfg.fail_delay_max = Duration::from_secs(s);
    }
    if !cfg.daemon {
        cfg.max_sessions = 1;
        cfg.auth_threads = 1;
    }
    Ok(cfg)
}

/// True when fd 2 is the same socket as fd 0 (as inetd sets it up).
fn stderr_is_the_client() -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    match (
        std::fs::metadata("/proc/self/fd/0"),
        std::fs::metadata("/proc/self/fd/2"),
    ) {
        (Ok(a), Ok(b)) => a.file_type().is_socket() && a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn main() -> ExitCode {
    let args: Args = argh::from_env();
    if args.version {
        println!("pop3d version {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let mut cfg = match config_from(args) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("pop3d: {e}");
            return ExitCode::from(2);
        }
    };
    if !cfg.daemon && cfg.log == LogTarget::Stderr && stderr_is_the_client() {
        // inetd passes the connection as fd 0, 1 and 2: log lines written to
        // stderr would go to the client. Use syslog instead.
        cfg.log = LogTarget::Syslog;
    }
    pop3d::log::init(cfg.log, &cfg.syslog_socket);
    match pop3d::server::run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            pop3d::crit!("{e}");
            if pop3d::log::target() != LogTarget::Stderr {
                eprintln!("pop3d: {e}");
            }
            ExitCode::FAILURE
        }
    }
}
