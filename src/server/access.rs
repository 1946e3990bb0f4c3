//! Host access control: a subset of hosts_access(5) (TCP wrappers) evaluated on
//! the client's IP address only.
//!
//! This module owns reading and parsing `/etc/hosts.allow` and
//! `/etc/hosts.deny`, the allow/deny decision for one (daemon, client address)
//! pair ([`Rules::permits`], [`Rules::check`]) and the cheap change detection
//! the server uses to reload them ([`Watcher`]). It does no I/O other than
//! reading and `stat`ing those two files: no DNS, no ident, no NIS, no shell.
//!
//! # Decision
//!
//! As in hosts_access(5): the first rule of hosts.allow that matches decides
//! (it grants, or refuses if it carries the `deny` option); otherwise the
//! first matching rule of hosts.deny decides (it refuses, or grants with the
//! `allow` option); otherwise access is granted. A missing file is an empty
//! file.
//!
//! # File format
//!
//! `daemon_list : client_list [ : option : option ... ]`, one rule a line.
//! A backslash right before the newline joins the next line (as in tcpd, before
//! anything else, so a comment can be continued too). Blank lines and lines
//! whose first non-blank character is `#` are ignored. Unlike tcpd, a `#` that
//! follows white space also starts a comment (with a warning: tcpd would read
//! the rest as patterns). Lists are separated by commas and/or white space.
//! Keywords (`ALL`, `EXCEPT`, ...) and daemon names are case-insensitive.
//! IPv6 addresses must be in brackets; colons inside brackets do not separate
//! fields.
//!
//! # Daemon list
//!
//! `ALL`, a daemon name (matches [`DAEMON`] and the process name the caller
//! passes to [`Rules::permits`]), `KNOWN` (every daemon), `*`/`?` wildcards,
//! and `EXCEPT`. `daemon@host` needs the server address, which is not checked:
//! such a pattern is *undecidable* (see below).
//!
//! # Client patterns
//!
//! | pattern | meaning here |
//! |---|---|
//! | `ALL` | every client |
//! | `192.168.1.5` | that IPv4 address |
//! | `192.168.` | an IPv4 prefix of whole octets (trailing dot) |
//! | `192.168.0.0/255.255.255.0` | IPv4 net/mask (host bits of the net are masked off, with a warning) |
//! | `10.0.0.0/8` | IPv4 CIDR |
//! | `192.168.1.*`, `10.0.0.?` | wildcards on the dotted IPv4 address |
//! | `[2001:db8::1]` | that IPv6 address |
//! | `[2001:db8::]/32`, `[2001:db8::/32]` | IPv6 prefix |
//! | `ALL EXCEPT 10.0.0.0/8` | `EXCEPT`, nested right to left as in tcpd: `a EXCEPT b EXCEPT c` is `a EXCEPT (b EXCEPT c)` |
//!
//! An IPv4-mapped IPv6 client (`::ffff:a.b.c.d`) is the IPv4 client `a.b.c.d`
//! for every pattern, and an IPv4-mapped IPv6 pattern matches the IPv4 client.
//!
//! Host names are never looked up, so patterns about names *never match* (each
//! is reported as a warning): host names, `.domain` suffixes, `name.` prefixes,
//! `@netgroup`, `LOCAL` (a name without a dot) and `PARANOID` (a name that
//! does not map back to the address: it guards name patterns against DNS
//! spoofing, and name patterns grant nothing here).
//!
//! # Undecidable patterns fail closed
//!
//! Some patterns cannot be decided without information we do not have:
//! `KNOWN` and `UNKNOWN` (whether the client's name is known), `user@host`
//! with a user other than `ALL` (needs ident), `daemon@host`, `/file`
//! patterns (not read), and malformed address patterns (`10.0.0.300`,
//! `10.0.0.0/33`, `[zz::]`: the admin meant some address, we cannot tell
//! which). They evaluate to "unsure", combined with `EXCEPT` in Kleene's
//! three-valued logic. A granting rule applies only when it surely matches;
//! a refusing rule applies when it surely or possibly matches. So in practice
//! `pop3d : UNKNOWN` in hosts.allow grants nobody, and `ALL : KNOWN` in
//! hosts.deny refuses everybody not granted before it.
//!
//! # Options
//!
//! The third and later fields are hosts_options(5) options separated by
//! `:` (`\:` escapes a colon). `allow` and `deny` are honoured (they must be
//! the last option, as in tcpd). `spawn` and `twist` are **never executed**:
//! they are reported and ignored, and the rule still applies; since `twist`
//! replaces the service, a rule with `twist` refuses. Other tcpd options
//! (`setenv`, `umask`, `user`, `banners`, `nice`, `severity`, ...) are reported
//! and ignored. An unknown option makes the rule refuse (tcpd refuses service
//! on option errors too). A third field whose first word is not an option is
//! an old-style shell command: reported, not executed, and the rule applies.
//!
//! # Failures fail closed
//!
//! - A file that exists but cannot be read, is not a regular file, is larger
//!   than [`MAX_FILE`] or has a (logical) line longer than [`MAX_LINE`] is
//!   refused as a whole and replaced by the single rule `ALL : ALL : deny`.
//!   For hosts.deny this refuses every client hosts.allow does not grant; for
//!   hosts.allow it refuses everybody (hosts.allow can hold `deny` rules we can
//!   no longer see).
//! - A line without a `:` separator cannot be understood at all and becomes
//!   `ALL : ALL : deny` at its place in the file.
//! - An empty daemon or client list names nobody: the rule never matches
//!   (as in tcpd), with a warning.
//!
//! Every warning names `file:line`; at most [`MAX_WARNINGS`] are kept per
//! file.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The default allow file.
pub const HOSTS_ALLOW: &str = "/etc/hosts.allow";
/// The default deny file.
pub const HOSTS_DENY: &str = "/etc/hosts.deny";
/// Our daemon name: a daemon-list entry equal to it always names us.
pub const DAEMON: &str = "pop3d";
/// Largest access file read; a larger one is refused (fail closed).
pub const MAX_FILE: u64 = 1 << 20;
/// Longest logical line (after joining continuations); a file with a longer
/// one is refused (fail closed).
pub const MAX_LINE: usize = 64 << 10;
/// Most warnings kept per file; the rest are counted in one last warning.
pub const MAX_WARNINGS: usize = 100;
/// Longest token shown in a warning.
const SHOWN_MAX: usize = 64;
/// List separators, as in tcpd.
const SEPARATORS: &[char] = &[',', ' ', '\t', '\r', '\n'];

/// Three-valued match result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tri {
    No,
    Unsure,
    Yes,
}

impl Tri {
    fn both(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::No, _) | (_, Tri::No) => Tri::No,
            (Tri::Yes, Tri::Yes) => Tri::Yes,
            _ => Tri::Unsure,
        }
    }

    fn either(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::Yes, _) | (_, Tri::Yes) => Tri::Yes,
            (Tri::No, Tri::No) => Tri::No,
            _ => Tri::Unsure,
        }
    }

    fn negate(self) -> Tri {
        match self {
            Tri::No => Tri::Yes,
            Tri::Yes => Tri::No,
            Tri::Unsure => Tri::Unsure,
        }
    }
}

/// What a matching rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Grant,
    Deny,
}

/// A list with exceptions: `groups[0] EXCEPT groups[1] EXCEPT ...`, nested to
/// the right. Kept flat so that evaluating and dropping never recurse.
#[derive(Clone, Debug)]
struct List<P> {
    groups: Vec<Vec<P>>,
}

impl<P> List<P> {
    fn eval(&self, mut f: impl FnMut(&P) -> Tri) -> Tri {
        let mut value = Tri::No;
        for group in self.groups.iter().rev() {
            let mut any = Tri::No;
            for p in group {
                any = any.either(f(p));
                if any == Tri::Yes {
                    break;
                }
            }
            value = any.both(value.negate());
        }
        value
    }

    fn all(p: P) -> List<P> {
        List {
            groups: vec![vec![p]],
        }
    }
}

/// A daemon-list entry.
#[derive(Clone, Debug)]
struct DaemonPattern {
    name: NamePattern,
    /// `daemon@host`: the server address is not checked.
    at_host: bool,
}

#[derive(Clone, Debug)]
enum NamePattern {
    All,
    /// Lower case.
    Exact(String),
    /// Lower case, with `*` and `?`.
    Wild(String),
}

impl DaemonPattern {
    fn eval(&self, daemon: &str) -> Tri {
        let hit = match &self.name {
            NamePattern::All => true,
            NamePattern::Exact(n) => {
                n.eq_ignore_ascii_case(DAEMON) || n.eq_ignore_ascii_case(daemon)
            }
            NamePattern::Wild(p) => {
                wildcard(p.as_bytes(), DAEMON.as_bytes())
                    || wildcard(p.as_bytes(), daemon.as_bytes())
            }
        };
        let base = if hit { Tri::Yes } else { Tri::No };
        if self.at_host {
            base.both(Tri::Unsure)
        } else {
            base
        }
    }
}

/// A client-list entry.
#[derive(Clone, Debug)]
struct ClientPattern {
    host: HostPattern,
    /// `user@host` with a user pattern other than `ALL`: needs ident.
    user_unknown: bool,
}

#[derive(Clone, Debug)]
enum HostPattern {
    All,
    /// Names, netgroups, LOCAL, PARANOID.
    Never,
    /// KNOWN, UNKNOWN, /file, malformed addresses.
    Unsure,
    /// In the IPv4-mapped IPv6 space; `addr` is already masked.
    Net {
        addr: u128,
        mask: u128,
    },
    /// Wildcards on the dotted IPv4 form.
    Wild(String),
}

/// The client address in the forms patterns need.
struct Client {
    /// IPv6, with IPv4 as IPv4-mapped.
    v6: u128,
    /// The IPv4 address, for IPv4 and IPv4-mapped clients.
    v4: Option<Ipv4Addr>,
}

impl Client {
    fn new(ip: IpAddr) -> Client {
        match ip {
            IpAddr::V4(a) => Client {
                v6: u128::from(a.to_ipv6_mapped()),
                v4: Some(a),
            },
            IpAddr::V6(a) => Client {
                v6: u128::from(a),
                v4: a.to_ipv4_mapped(),
            },
        }
    }
}

impl ClientPattern {
    fn eval(&self, client: &Client) -> Tri {
        let host = match &self.host {
            HostPattern::All => Tri::Yes,
            HostPattern::Never => Tri::No,
            HostPattern::Unsure => Tri::Unsure,
            HostPattern::Net { addr, mask } => {
                if client.v6 & mask == *addr {
                    Tri::Yes
                } else {
                    Tri::No
                }
            }
            HostPattern::Wild(p) => match client.v4 {
                Some(v4) if wildcard(p.as_bytes(), v4.to_string().as_bytes()) => Tri::Yes,
                _ => Tri::No,
            },
        };
        if self.user_unknown {
            host.both(Tri::Unsure)
        } else {
            host
        }
    }
}

/// One rule of an access file.
#[derive(Clone, Debug)]
pub struct Rule {
    origin: String,
    daemons: List<DaemonPattern>,
    clients: List<ClientPattern>,
    /// `allow`/`deny` options; `None` = the file's default.
    action: Option<Action>,
}

impl Rule {
    /// `ALL : ALL : deny`, standing in for something we refuse to interpret.
    fn deny_all(origin: String) -> Rule {
        Rule {
            origin,
            daemons: List::all(DaemonPattern {
                name: NamePattern::All,
                at_host: false,
            }),
            clients: List::all(ClientPattern {
                host: HostPattern::All,
                user_unknown: false,
            }),
            action: Some(Action::Deny),
        }
    }

    /// Where the rule comes from: `file:line`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    fn eval(&self, daemon: &str, client: &Client) -> Tri {
        let d = self.daemons.eval(|p| p.eval(daemon));
        if d == Tri::No {
            return Tri::No;
        }
        d.both(self.clients.eval(|p| p.eval(client)))
    }
}

/// The outcome of [`Rules::check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict<'a> {
    /// Whether the client may be served.
    pub permit: bool,
    /// `file:line` of the deciding rule; `None` when no rule matched.
    pub origin: Option<&'a str>,
}

/// The rules of hosts.allow and hosts.deny. The default is no rules: every
/// client is permitted.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    allow: Vec<Rule>,
    deny: Vec<Rule>,
}

impl Rules {
    /// Rules from already parsed files (see [`parse`]).
    pub fn new(allow: Vec<Rule>, deny: Vec<Rule>) -> Rules {
        Rules { allow, deny }
    }

    /// Reads and parses both files. Never fails: problems are warnings (each
    /// with `file:line` or `file`), and a file that cannot be used fails
    /// closed (see the module documentation).
    pub fn load(allow: &Path, deny: &Path) -> (Rules, Vec<String>) {
        let mut warnings = Vec::new();
        let allow = load_file(allow, &mut warnings);
        let deny = load_file(deny, &mut warnings);
        (Rules { allow, deny }, warnings)
    }

    /// Whether `client` may use `daemon`: our process name (the base name of
    /// argv\[0\], say); rules naming [`DAEMON`] apply too.
    pub fn permits(&self, daemon: &str, client: IpAddr) -> bool {
        self.check(daemon, client).permit
    }

    /// Like [`Rules::permits`], also naming the deciding rule for the log.
    pub fn check(&self, daemon: &str, client: IpAddr) -> Verdict<'_> {
        let client = Client::new(client);
        for (rules, default) in [(&self.allow, Action::Grant), (&self.deny, Action::Deny)] {
            for rule in rules {
                let m = rule.eval(daemon, &client);
                let applies = match rule.action.unwrap_or(default) {
                    Action::Grant => m == Tri::Yes,
                    Action::Deny => m != Tri::No,
                };
                if applies {
                    return Verdict {
                        permit: rule.action.unwrap_or(default) == Action::Grant,
                        origin: Some(&rule.origin),
                    };
                }
            }
        }
        Verdict {
            permit: true,
            origin: None,
        }
    }

    /// Number of rules from hosts.allow and from hosts.deny.
    pub fn counts(&self) -> (usize, usize) {
        (self.allow.len(), self.deny.len())
    }
}

/// What `stat` said about one access file, to notice changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stamp {
    /// The file does not exist.
    Missing,
    /// `stat` failed otherwise.
    Error(io::ErrorKind),
    /// Identity, size and times of the file.
    File {
        /// Device.
        dev: u64,
        /// Inode.
        ino: u64,
        /// Size in bytes.
        len: u64,
        /// Modification time, seconds.
        mtime: i64,
        /// Modification time, nanoseconds.
        mtime_nsec: i64,
        /// Status change time, seconds.
        ctime: i64,
        /// Status change time, nanoseconds.
        ctime_nsec: i64,
    },
}

impl Stamp {
    /// `stat`s `path` (following symbolic links).
    pub fn of(path: &Path) -> Stamp {
        match std::fs::metadata(path) {
            Ok(m) => Stamp::File {
                dev: m.dev(),
                ino: m.ino(),
                len: m.len(),
                mtime: m.mtime(),
                mtime_nsec: m.mtime_nsec(),
                ctime: m.ctime(),
                ctime_nsec: m.ctime_nsec(),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Stamp::Missing,
            Err(e) => Stamp::Error(e.kind()),
        }
    }
}

/// Notices changes to the two access files with two `stat` calls (device,
/// inode, size, mtime and ctime with nanoseconds), cheap enough to call once a
/// second; on SIGHUP just call [`Watcher::load`].
///
/// ```no_run
/// # use pop3d::server::access::Watcher;
/// let mut w = Watcher::new("/etc/hosts.allow", "/etc/hosts.deny");
/// let (mut rules, _warnings) = w.load();
/// // once a second:
/// if w.changed() {
///     (rules, _) = w.load();
/// }
/// # let _ = rules;
/// ```
#[derive(Clone, Debug)]
pub struct Watcher {
    allow: PathBuf,
    deny: PathBuf,
    /// Stamps taken just before the last load; `None` before the first.
    seen: Option<[Stamp; 2]>,
}

impl Watcher {
    /// Watches `allow` and `deny`; nothing is read yet, so [`Watcher::changed`]
    /// is true until the first [`Watcher::load`].
    pub fn new(allow: impl Into<PathBuf>, deny: impl Into<PathBuf>) -> Watcher {
        Watcher {
            allow: allow.into(),
            deny: deny.into(),
            seen: None,
        }
    }

    /// The current stamps of both files.
    pub fn stamps(&self) -> [Stamp; 2] {
        [Stamp::of(&self.allow), Stamp::of(&self.deny)]
    }

    /// Whether either file changed (or appeared, or vanished) since the last
    /// [`Watcher::load`]. Does not reset: it stays true until the next load.
    pub fn changed(&self) -> bool {
        self.seen != Some(self.stamps())
    }

    /// Stamps both files, then loads them. Stamping first means a change made
    /// while reading is seen by the next [`Watcher::changed`].
    pub fn load(&mut self) -> (Rules, Vec<String>) {
        self.seen = Some(self.stamps());
        Rules::load(&self.allow, &self.deny)
    }
}

/// Parses the text of one access file; `file_label` prefixes the warnings
/// (`label:line: ...`) and the rules' origins. A line longer than
/// [`MAX_LINE`] makes the whole text one `ALL : ALL : deny` rule.
pub fn parse(text: &str, file_label: &str) -> (Vec<Rule>, Vec<String>) {
    let mut w = Warnings::new(file_label);
    let lines = match logical_lines(text) {
        Ok(lines) => lines,
        Err(line) => {
            w.line = Some(line);
            w.warn(format_args!(
                "line longer than {MAX_LINE} bytes: refusing the whole file, \
                 treating it as `ALL : ALL : deny`"
            ));
            let rule = Rule::deny_all(format!("{file_label}:{line}"));
            return (vec![rule], w.finish());
        }
    };
    let mut rules = Vec::new();
    for (no, line) in lines {
        w.line = Some(no);
        if let Some(rule) = parse_line(&line, format!("{file_label}:{no}"), &mut w) {
            rules.push(rule);
        }
    }
    (rules, w.finish())
}

fn load_file(path: &Path, warnings: &mut Vec<String>) -> Vec<Rule> {
    let label = path.display().to_string();
    match read_bounded(path) {
        Ok(None) => Vec::new(),
        Ok(Some(text)) => {
            let (rules, w) = parse(&text, &label);
            warnings.extend(w);
            rules
        }
        Err(e) => {
            warnings.push(format!(
                "{label}: {e}: refusing the file, treating it as `ALL : ALL : deny`"
            ));
            vec![Rule::deny_all(label)]
        }
    }
}

/// The file's text, `None` if it does not exist.
fn read_bounded(path: &Path) -> Result<Option<String>, String> {
    // O_NONBLOCK: opening a FIFO must not hang the server.
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot open: {e}")),
    };
    let meta = file.metadata().map_err(|e| format!("cannot stat: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file".to_string());
    }
    let too_big = || format!("larger than {MAX_FILE} bytes");
    if meta.len() > MAX_FILE {
        return Err(too_big());
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read: {e}"))?;
    if buf.len() as u64 > MAX_FILE {
        return Err(too_big());
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// Warnings of one file, bounded.
struct Warnings {
    label: String,
    line: Option<usize>,
    out: Vec<String>,
    dropped: usize,
}

impl Warnings {
    fn new(label: &str) -> Warnings {
        Warnings {
            label: label.to_string(),
            line: None,
            out: Vec::new(),
            dropped: 0,
        }
    }

    fn warn(&mut self, msg: impl fmt::Display) {
        if self.out.len() >= MAX_WARNINGS {
            self.dropped += 1;
            return;
        }
        let text = match self.line {
            Some(n) => format!("{}:{n}: {msg}", self.label),
            None => format!("{}: {msg}", self.label),
        };
        self.out.push(text);
    }

    fn finish(mut self) -> Vec<String> {
        if self.dropped > 0 {
            self.out.push(format!(
                "{}: {} more warnings not shown",
                self.label, self.dropped
            ));
        }
        self.out
    }
}

/// A token or text fit for a log line: bounded, control characters replaced.
struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.0.chars().enumerate() {
            if i == SHOWN_MAX {
                return f.write_str("...");
            }
            let c = if c.is_control() { '?' } else { c };
            fmt::Write::write_char(f, c)?;
        }
        Ok(())
    }
}

/// Joins backslash-newline continuations. Returns (first physical line number,
/// logical line), or the number of a line longer than [`MAX_LINE`].
fn logical_lines(text: &str) -> Result<Vec<(usize, String)>, usize> {
    let mut lines = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (i, phys) in text.split('\n').enumerate() {
        let no = i + 1;
        if current.is_empty() {
            start = no;
        }
        let (body, continued) = match phys.strip_suffix('\\') {
            Some(b) => (b, true),
            None => match phys.strip_suffix("\\\r") {
                Some(b) => (b, true),
                None => (phys, false),
            },
        };
        if current.len() + body.len() > MAX_LINE {
            return Err(start);
        }
        current.push_str(body);
        if !continued {
            lines.push((start, std::mem::take(&mut current)));
        }
    }
    if !current.is_empty() {
        lines.push((start, current));
    }
    Ok(lines)
}

/// The line without its comment.
fn strip_comment<'a>(line: &'a str, w: &mut Warnings) -> &'a str {
    if line.trim_start().starts_with('#') {
        return "";
    }
    let cut = line
        .as_bytes()
        .windows(2)
        .position(|p| matches!(p, [b' ' | b'\t', b'#']));
    match cut {
        Some(i) => {
            w.warn("text after \" #\" ignored as a comment (tcpd would read it as patterns)");
            &line[..i + 1]
        }
        None => line,
    }
}

/// Splits at the first `:` outside `[...]`.
fn split_field(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'[' => {
                if let Some(j) = s[i..].find(']') {
                    i += j;
                }
            }
            b':' => return Some((&s[..i], &s[i + 1..])),
            _ => {}
        }
        i += 1;
    }
    None
}

fn parse_line(line: &str, origin: String, w: &mut Warnings) -> Option<Rule> {
    let line = strip_comment(line, w);
    if line.trim().is_empty() {
        return None;
    }
    let Some((daemons, rest)) = split_field(line) else {
        w.warn("missing \":\" separator: treating the line as `ALL : ALL : deny`");
        return Some(Rule::deny_all(origin));
    };
    let (clients, options) = match split_field(rest) {
        Some((c, o)) => (c, Some(o)),
        None => (rest, None),
    };
    let daemons = parse_list(daemons, "daemon", w, parse_daemon);
    let clients = parse_list(clients, "client", w, parse_client);
    let action = options.and_then(|o| parse_options(o, w));
    Some(Rule {
        origin,
        daemons,
        clients,
        action,
    })
}

fn parse_list<P>(
    text: &str,
    what: &str,
    w: &mut Warnings,
    mut item: impl FnMut(&str, &mut Warnings) -> P,
) -> List<P> {
    let mut groups = vec![Vec::new()];
    let mut saw_except = false;
    for tok in text.split(SEPARATORS).filter(|t| !t.is_empty()) {
        if tok.eq_ignore_ascii_case("EXCEPT") {
            saw_except = true;
            groups.push(Vec::new());
        } else if let Some(group) = groups.last_mut() {
            group.push(item(tok, w));
        }
    }
    if !saw_except && groups[0].is_empty() {
        w.warn(format_args!("empty {what} list: the rule never matches"));
    } else if groups[0].is_empty() {
        w.warn(format_args!(
            "{what} list starts with EXCEPT: the rule never matches"
        ));
    } else if groups.iter().skip(1).any(Vec::is_empty) {
        w.warn(format_args!(
            "EXCEPT with nothing after it in the {what} list"
        ));
    }
    List { groups }
}

fn parse_daemon(tok: &str, w: &mut Warnings) -> DaemonPattern {
    // As tcpd: an '@' at the very start is part of the name.
    let (name, at_host) = match tok.get(1..).and_then(|t| t.find('@')) {
        Some(at) => (&tok[..at + 1], true),
        None => (tok, false),
    };
    if at_host {
        w.warn(format_args!(
            "`{}`: daemon@host needs the server address, which is not checked: \
             the rule can refuse but never grant",
            Shown(tok)
        ));
    }
    let name = if name.eq_ignore_ascii_case("ALL") || name.eq_ignore_ascii_case("KNOWN") {
        NamePattern::All
    } else if name.contains(['*', '?']) {
        NamePattern::Wild(name.to_ascii_lowercase())
    } else {
        NamePattern::Exact(name.to_ascii_lowercase())
    };
    DaemonPattern { name, at_host }
}

fn parse_client(tok: &str, w: &mut Warnings) -> ClientPattern {
    if !tok.starts_with('@')
        && let Some(at) = tok.find('@')
    {
        let (user, host) = (&tok[..at], &tok[at + 1..]);
        let user_unknown = !user.eq_ignore_ascii_case("ALL");
        if user_unknown {
            w.warn(format_args!(
                "`{}`: user patterns need ident (RFC 931) look-ups, which are not done: \
                 the rule can refuse but never grant",
                Shown(tok)
            ));
        }
        return ClientPattern {
            host: parse_host(host, w),
            user_unknown,
        };
    }
    ClientPattern {
        host: parse_host(tok, w),
        user_unknown: false,
    }
}

fn parse_host(tok: &str, w: &mut Warnings) -> HostPattern {
    let shown = Shown(tok);
    let keyword = |k: &str| tok.eq_ignore_ascii_case(k);
    if keyword("ALL") {
        return HostPattern::All;
    }
    if keyword("KNOWN") || keyword("UNKNOWN") {
        w.warn(format_args!(
            "{shown} cannot be decided without DNS: the rule can refuse but never grant"
        ));
        return HostPattern::Unsure;
    }
    if keyword("LOCAL") || keyword("PARANOID") {
        w.warn(format_args!(
            "{shown} is about host names, which are not looked up: never matches"
        ));
        return HostPattern::Never;
    }
    if tok.starts_with('@') {
        w.warn(format_args!(
            "`{shown}`: netgroups are not looked up: never matches"
        ));
        return HostPattern::Never;
    }
    if tok.starts_with('/') {
        w.warn(format_args!(
            "`{shown}`: file patterns are not supported: the rule can refuse but never grant"
        ));
        return HostPattern::Unsure;
    }
    let parsed = if tok.starts_with('[') {
        parse_v6(tok)
    } else if let Some(body) = tok.strip_suffix('.')
        && !looks_like_name(tok)
    {
        parse_v4_prefix(body)
    } else if tok.contains('/') && !looks_like_name(tok) {
        parse_v4_net(tok)
    } else if tok.contains(['*', '?']) && tok.bytes().all(|b| b"0123456789.*?".contains(&b)) {
        return HostPattern::Wild(tok.to_string());
    } else if let Ok(a) = tok.parse::<Ipv4Addr>() {
        Some((u128::from(a.to_ipv6_mapped()), u128::MAX, false))
    } else if looks_like_name(tok) {
        w.warn(format_args!(
            "`{shown}`: host names are not looked up: never matches"
        ));
        return HostPattern::Never;
    } else {
        None
    };
    match parsed {
        Some((addr, mask, host_bits)) => {
            if host_bits {
                w.warn(format_args!(
                    "`{shown}`: address has bits outside the mask; they are ignored"
                ));
            }
            HostPattern::Net {
                addr: addr & mask,
                mask,
            }
        }
        None => {
            w.warn(format_args!(
                "`{shown}`: malformed address pattern: the rule can refuse but never grant"
            ));
            HostPattern::Unsure
        }
    }
}

/// Letters (or anything outside ASCII) make a host name; hex digits in
/// IPv6 addresses are handled before this is asked.
fn looks_like_name(tok: &str) -> bool {
    tok.chars().any(|c| c.is_alphabetic() || !c.is_ascii())
}

/// Mask with the top `bits` of 128 set.
fn mask_bits(bits: u32) -> u128 {
    if bits == 0 {
        0
    } else {
        u128::MAX << (128 - bits)
    }
}

/// A prefix length: decimal digits only, at most `max`.
fn parse_len(s: &str, max: u32) -> Option<u32> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|n| *n <= max)
}

/// `192.168` (of `192.168.`): one to three octets.
fn parse_v4_prefix(body: &str) -> Option<(u128, u128, bool)> {
    let mut value: u32 = 0;
    let mut count = 0;
    for part in body.split('.') {
        let octet = parse_octet(part)?;
        count += 1;
        if count > 3 {
            return None;
        }
        value = (value << 8) | octet;
    }
    let bits = 8 * count;
    let addr = Ipv4Addr::from(value << (32 - bits));
    Some((
        u128::from(addr.to_ipv6_mapped()),
        mask_bits(96 + bits),
        false,
    ))
}

fn parse_octet(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok().filter(|n| *n <= 255)
}

/// `net/255.255.0.0` or `net/16`.
fn parse_v4_net(tok: &str) -> Option<(u128, u128, bool)> {
    let (net, mask) = tok.split_once('/')?;
    let net: Ipv4Addr = net.parse().ok()?;
    let mask: u32 = if mask.contains('.') {
        u32::from(mask.parse::<Ipv4Addr>().ok()?)
    } else {
        let bits = parse_len(mask, 32)?;
        (mask_bits(96 + bits) & u128::from(u32::MAX)) as u32
    };
    let host_bits = u32::from(net) & !mask != 0;
    let mask = (u128::MAX << 32) | u128::from(mask);
    Some((u128::from(net.to_ipv6_mapped()), mask, host_bits))
}

/// `[addr]`, `[addr]/len` or `[addr/len]`.
fn parse_v6(tok: &str) -> Option<(u128, u128, bool)> {
    let (inner, after) = tok.strip_prefix('[')?.split_once(']')?;
    let (addr, len_inside) = match inner.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (inner, None),
    };
    let len_after = if after.is_empty() {
        None
    } else {
        Some(after.strip_prefix('/')?)
    };
    let bits = match (len_inside, len_after) {
        (Some(_), Some(_)) => return None,
        (Some(l), None) | (None, Some(l)) => parse_len(l, 128)?,
        (None, None) => 128,
    };
    let addr = u128::from(addr.parse::<Ipv6Addr>().ok()?);
    let mask = mask_bits(bits);
    Some((addr, mask, addr & !mask != 0))
}

/// tcpd option names (hosts_options(5)).
const OPTIONS: &[&str] = &[
    "allow",
    "deny",
    "spawn",
    "twist",
    "setenv",
    "umask",
    "user",
    "group",
    "banners",
    "keepalive",
    "linger",
    "nice",
    "rfc931",
    "severity",
];

/// `name value`, `name=value` or `name`.
fn option_name(opt: &str) -> (&str, &str) {
    let end = opt
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(opt.len());
    let value = opt[end..].trim_start();
    let value = value.strip_prefix('=').unwrap_or(value).trim();
    (&opt[..end], value)
}

/// Splits at `:` not preceded by a backslash; `\:` becomes `:`.
fn split_options(s: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ':' => out.push(String::new()),
            c => {
                let c = if c == '\\' && chars.peek() == Some(&':') {
                    chars.next();
                    ':'
                } else {
                    c
                };
                if let Some(o) = out.last_mut() {
                    o.push(c);
                }
            }
        }
    }
    out
}

/// The action the options ask for, after warning about what is ignored.
fn parse_options(text: &str, w: &mut Warnings) -> Option<Action> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return None;
    }
    let (first, _) = option_name(trimmed);
    if !OPTIONS.iter().any(|o| o.eq_ignore_ascii_case(first)) {
        w.warn(format_args!(
            "shell command not executed: {}",
            Shown(trimmed)
        ));
        return None;
    }
    let options = split_options(text);
    let options: Vec<&str> = options
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .collect();
    let mut action = None;
    let mut refuse = false;
    for (i, opt) in options.iter().enumerate() {
        let (name, value) = option_name(opt);
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "allow" | "deny" => {
                if !value.is_empty() {
                    w.warn(format_args!(
                        "option `{lower}` takes no value: the rule refuses"
                    ));
                    refuse = true;
                }
                if i + 1 != options.len() {
                    w.warn(format_args!(
                        "option `{lower}` must be the last option: the rule refuses"
                    ));
                    refuse = true;
                }
                action = Some(if lower == "allow" {
                    Action::Grant
                } else {
                    Action::Deny
                });
            }
            "spawn" => w.warn(format_args!("spawn not executed: {}", Shown(value))),
            "twist" => {
                w.warn(format_args!(
                    "twist not executed: {}; the rule refuses (twist replaces the service)",
                    Shown(value)
                ));
                refuse = true;
            }
            _ if OPTIONS.contains(&lower.as_str()) => {
                w.warn(format_args!("option `{lower}` ignored"));
            }
            _ => {
                w.warn(format_args!(
                    "unknown option `{}`: the rule refuses",
                    Shown(name)
                ));
                refuse = true;
            }
        }
    }
    if refuse { Some(Action::Deny) } else { action }
}

/// `*` and `?` wildcards, ASCII case-insensitive.
fn wildcard(pattern: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p].eq_ignore_ascii_case(&s[i])) {
            p += 1;
            i += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, i));
            p += 1;
        } else if let Some((sp, si)) = star {
            p = sp + 1;
            i = si + 1;
            star = Some((sp, si + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// How `pop3d : {pattern}` evaluates for `client`.
    fn eval(pattern: &str, client: &str) -> Tri {
        let (rules, _) = parse(&format!("pop3d : {pattern}"), "t");
        assert_eq!(rules.len(), 1, "{pattern}");
        rules[0].eval("pop3d", &Client::new(ip(client)))
    }

    /// The warnings of parsing `text`.
    fn warnings(text: &str) -> Vec<String> {
        parse(text, "f").1
    }

    fn rules(allow: &str, deny: &str) -> Rules {
        let (a, _) = parse(allow, "allow");
        let (d, _) = parse(deny, "deny");
        Rules::new(a, d)
    }

    fn permits(r: &Rules, client: &str) -> bool {
        r.permits(DAEMON, ip(client))
    }

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let p = std::env::temp_dir().join(format!("pop3d-access-{}-{tag}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    use Tri::{No, Unsure, Yes};

    #[test]
    fn all_matches_everyone() {
        assert_eq!(eval("ALL", "192.0.2.1"), Yes);
        assert_eq!(eval("ALL", "2001:db8::1"), Yes);
        assert_eq!(eval("all", "10.0.0.1"), Yes);
        assert!(warnings("ALL : ALL").is_empty());
    }

    #[test]
    fn exact_ipv4() {
        assert_eq!(eval("192.168.1.5", "192.168.1.5"), Yes);
        assert_eq!(eval("192.168.1.5", "192.168.1.50"), No);
        assert_eq!(eval("192.168.1.5", "192.168.1.4"), No);
        assert_eq!(eval("192.168.1.5", "2001:db8::1"), No);
        assert_eq!(eval("10.0.0.1, 10.0.0.2 10.0.0.3", "10.0.0.3"), Yes);
    }

    #[test]
    fn ipv4_prefix_with_trailing_dot() {
        assert_eq!(eval("192.168.", "192.168.3.4"), Yes);
        assert_eq!(eval("192.168.", "192.169.3.4"), No);
        assert_eq!(eval("10.", "10.255.0.1"), Yes);
        assert_eq!(eval("10.", "100.0.0.1"), No);
        assert_eq!(eval("1.2.3.", "1.2.3.99"), Yes);
        assert_eq!(eval("1.2.3.", "1.2.4.1"), No);
        assert!(warnings("pop3d : 192.168.").is_empty());
    }

    #[test]
    fn ipv4_net_mask() {
        let p = "192.168.0.0/255.255.255.0";
        assert_eq!(eval(p, "192.168.0.77"), Yes);
        assert_eq!(eval(p, "192.168.1.77"), No);
        assert_eq!(eval("10.0.0.0/255.0.0.0", "10.9.8.7"), Yes);
        // Host bits in the net are masked off, with a warning.
        assert_eq!(eval("192.168.0.9/255.255.255.0", "192.168.0.1"), Yes);
        let w = warnings("pop3d : 192.168.0.9/255.255.255.0");
        assert!(w[0].contains("outside the mask"), "{w:?}");
    }

    #[test]
    fn ipv4_cidr() {
        assert_eq!(eval("10.0.0.0/8", "10.200.3.4"), Yes);
        assert_eq!(eval("10.0.0.0/8", "11.0.0.1"), No);
        assert_eq!(eval("192.0.2.1/32", "192.0.2.1"), Yes);
        assert_eq!(eval("192.0.2.1/32", "192.0.2.2"), No);
        assert_eq!(eval("0.0.0.0/0", "203.0.113.9"), Yes);
        assert_eq!(eval("0.0.0.0/0", "2001:db8::1"), No);
        assert_eq!(eval("172.16.0.0/12", "172.31.255.255"), Yes);
        assert_eq!(eval("172.16.0.0/12", "172.32.0.0"), No);
    }

    #[test]
    fn ipv6_exact() {
        assert_eq!(eval("[2001:db8::1]", "2001:db8::1"), Yes);
        assert_eq!(eval("[2001:db8::1]", "2001:db8::2"), No);
        assert_eq!(eval("[2001:DB8:0::1]", "2001:db8::1"), Yes);
        assert_eq!(eval("[2001:db8::1]", "192.0.2.1"), No);
        // Colons inside brackets do not separate fields.
        let r = rules("pop3d : [2001:db8::1], [::1] : deny\n", "");
        assert!(!permits(&r, "2001:db8::1"));
        assert!(!permits(&r, "::1"));
        assert!(permits(&r, "2001:db8::2"));
    }

    #[test]
    fn ipv6_prefix() {
        assert_eq!(eval("[2001:db8::]/32", "2001:db8:ffff::1"), Yes);
        assert_eq!(eval("[2001:db8::]/32", "2001:db9::1"), No);
        assert_eq!(eval("[2001:db8::/32]", "2001:db8:1::1"), Yes);
        assert_eq!(eval("[fe80::]/10", "febf::1"), Yes);
        assert_eq!(eval("[fe80::]/10", "fec0::1"), No);
        assert_eq!(eval("[::]/0", "2001:db8::1"), Yes);
    }

    #[test]
    fn mapped_ipv4_clients_match_ipv4_patterns() {
        let c = "::ffff:10.1.2.3";
        assert_eq!(eval("10.1.2.3", c), Yes);
        assert_eq!(eval("10.1.", c), Yes);
        assert_eq!(eval("10.0.0.0/8", c), Yes);
        assert_eq!(eval("10.0.0.0/255.0.0.0", c), Yes);
        assert_eq!(eval("10.1.2.*", c), Yes);
        assert_eq!(eval("11.0.0.0/8", c), No);
        // An IPv4-mapped IPv6 pattern matches the plain IPv4 client.
        assert_eq!(eval("[::ffff:10.0.0.0]/104", "10.9.9.9"), Yes);
        assert_eq!(eval("[::ffff:10.0.0.0]/104", "11.9.9.9"), No);
        // An IPv4 pattern does not match a non-mapped IPv6 client.
        assert_eq!(eval("0.0.0.0/0", "::a01:203"), No);
    }

    #[test]
    fn ipv4_wildcards() {
        assert_eq!(eval("192.168.1.*", "192.168.1.77"), Yes);
        assert_eq!(eval("192.168.1.*", "192.168.2.77"), No);
        assert_eq!(eval("10.0.0.?", "10.0.0.5"), Yes);
        assert_eq!(eval("10.0.0.?", "10.0.0.55"), No);
        assert_eq!(eval("10.*.1", "10.20.30.1"), Yes);
        assert_eq!(eval("10.*", "2001:db8::1"), No);
    }

    #[test]
    fn except_in_daemon_list() {
        let deny_all = "ALL : ALL\n";
        assert!(!permits(
            &rules("ALL EXCEPT pop3d : ALL", deny_all),
            "192.0.2.1"
        ));
        assert!(permits(
            &rules("ALL EXCEPT sshd : ALL", deny_all),
            "192.0.2.1"
        ));
        assert!(permits(
            &rules("ALL EXCEPT sshd, ftpd : ALL", deny_all),
            "192.0.2.1"
        ));
        let r = rules("", "ALL EXCEPT in.pop3d : ALL");
        assert!(r.permits("in.pop3d", ip("192.0.2.1")));
        assert!(!r.permits("pop3d", ip("192.0.2.1")));
    }

    #[test]
    fn except_in_client_list() {
        let p = "ALL EXCEPT 10.0.0.0/8";
        assert_eq!(eval(p, "10.1.1.1"), No);
        assert_eq!(eval(p, "192.0.2.1"), Yes);
        let p = "192.168., 10.0.0.0/8 except 10.0.0.1 10.0.0.2";
        assert_eq!(eval(p, "10.0.0.1"), No);
        assert_eq!(eval(p, "10.0.0.2"), No);
        assert_eq!(eval(p, "10.0.0.3"), Yes);
        assert_eq!(eval(p, "192.168.0.1"), Yes);
        assert_eq!(eval(p, "172.16.0.1"), No);
    }

    #[test]
    fn nested_except_right_to_left() {
        // ALL EXCEPT (10/8 EXCEPT 10.1/16)
        let p = "ALL EXCEPT 10.0.0.0/8 EXCEPT 10.1.0.0/16";
        assert_eq!(eval(p, "10.1.2.3"), Yes);
        assert_eq!(eval(p, "10.2.0.1"), No);
        assert_eq!(eval(p, "192.0.2.1"), Yes);
        // 10/8 EXCEPT (10.1/16 EXCEPT 10.1.2.3)
        let p = "10.0.0.0/8 EXCEPT 10.1.0.0/16 EXCEPT 10.1.2.3";
        assert_eq!(eval(p, "10.1.2.3"), Yes);
        assert_eq!(eval(p, "10.1.2.4"), No);
        assert_eq!(eval(p, "10.5.0.0"), Yes);
        assert_eq!(eval(p, "11.0.0.1"), No);
        // A list that starts with EXCEPT names nobody (tcpd gives up there).
        assert_eq!(eval("EXCEPT 10.0.0.1", "192.0.2.1"), No);
        assert!(warnings("pop3d : EXCEPT 10.0.0.1")[0].contains("starts with EXCEPT"));
        // Nothing after EXCEPT excepts nobody.
        assert_eq!(eval("ALL EXCEPT", "192.0.2.1"), Yes);
    }

    #[test]
    fn deep_except_nesting_does_not_recurse() {
        let mut p = String::from("ALL");
        for i in 0..3000 {
            p.push_str(&format!(" EXCEPT 10.0.{}.{}", i / 256 % 256, i % 256));
        }
        assert!(p.len() < MAX_LINE);
        assert_eq!(eval(&p, "192.0.2.1"), Yes);
        // 10.0.0.0 is in the first exception only: odd depth, excepted.
        assert_eq!(eval(&p, "10.0.0.0"), No);
    }

    #[test]
    fn allow_and_deny_options() {
        // One hosts.allow holding everything, hosts_options style.
        let allow = "pop3d : 10.0.0.0/8 : deny\npop3d : ALL : allow\n";
        let r = rules(allow, "");
        assert!(!permits(&r, "10.0.0.1"));
        assert!(permits(&r, "192.0.2.1"));
        // `allow` in hosts.deny grants before later deny rules.
        let deny = "pop3d : 192.0.2.1 : ALLOW\nALL : ALL\n";
        let r = rules("", deny);
        assert!(permits(&r, "192.0.2.1"));
        assert!(!permits(&r, "192.0.2.2"));
        // `: deny` in hosts.allow refuses even when hosts.deny is empty.
        let r = rules("ALL : 192.0.2.7 : severity auth.notice : deny", "");
        assert!(!permits(&r, "192.0.2.7"));
        // allow/deny must be the last option; otherwise the rule refuses.
        let (rs, w) = parse("pop3d : ALL : allow : umask 022", "f");
        assert!(!Rules::new(rs, vec![]).permits(DAEMON, ip("192.0.2.1")));
        assert!(
            w.iter().any(|w| w.contains("must be the last option")),
            "{w:?}"
        );
        // `\:` escapes a colon inside an option.
        let r = rules("pop3d : ALL : setenv X a\\:b : deny", "");
        assert!(!permits(&r, "192.0.2.1"));
    }

    #[test]
    fn unknown_option_refuses() {
        let (rs, w) = parse("pop3d : ALL : severity auth.info : frobnicate : allow", "f");
        assert!(!Rules::new(rs, vec![]).permits(DAEMON, ip("192.0.2.1")));
        assert!(
            w.iter().any(|w| w.contains("unknown option `frobnicate`")),
            "{w:?}"
        );
    }

    #[test]
    fn comments_and_blank_lines() {
        let text = "# pop3d : ALL : deny\n\n   \t\n  # indented comment\n\
                    pop3d : 10.0.0.1 # the office\n#last";
        let (rs, w) = parse(text, "f");
        assert_eq!(rs.len(), 1);
        assert_eq!(rs[0].origin(), "f:5");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("f:5: ") && w[0].contains("comment"),
            "{w:?}"
        );
        let r = Rules::new(rs, vec![]);
        assert!(permits(&r, "10.0.0.1"));
        assert!(r.check(DAEMON, ip("10.0.0.1")).origin == Some("f:5"));
        // A '#' inside a token is not a comment.
        assert!(warnings("pop3d : 10.0.0.1#2")[0].contains("malformed"));
    }

    #[test]
    fn backslash_continuation() {
        let text = "pop3d : 10.0.0.1,\\\n 10.0.0.2 \\\n 10.0.0.3\nsshd : ALL\n";
        let (rs, w) = parse(text, "f");
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(rs.len(), 2);
        assert_eq!(rs[0].origin(), "f:1");
        assert_eq!(rs[1].origin(), "f:4");
        let client = |c| rs[0].eval(DAEMON, &Client::new(ip(c)));
        assert_eq!(client("10.0.0.2"), Yes);
        assert_eq!(client("10.0.0.3"), Yes);
        // CRLF files, and a continued comment swallows the next line.
        let (rs, _) = parse(
            "# note \\\r\npop3d : ALL : deny\r\npop3d : 10.0.0.1\r\n",
            "f",
        );
        assert_eq!(rs.len(), 1);
        assert_eq!(rs[0].origin(), "f:3");
        // The backslash and newline vanish, as in tcpd.
        assert_eq!(eval("10.0.\\\n0.1", "10.0.0.1"), Yes);
    }

    #[test]
    fn malformed_lines_reported_with_file_and_line() {
        let text = "pop3d 10.0.0.1\n\npop3d : 10.0.0.300\n : 10.0.0.1\npop3d :\n[::1 : x\n";
        let (rs, w) = parse(text, "/etc/hosts.deny");
        assert!(
            w[0].starts_with("/etc/hosts.deny:1: missing \":\""),
            "{w:?}"
        );
        assert!(
            w[1].starts_with("/etc/hosts.deny:3: `10.0.0.300`: malformed"),
            "{w:?}"
        );
        assert!(
            w[2].starts_with("/etc/hosts.deny:4: empty daemon list"),
            "{w:?}"
        );
        assert!(
            w[3].starts_with("/etc/hosts.deny:5: empty client list"),
            "{w:?}"
        );
        assert!(w[4].starts_with("/etc/hosts.deny:6: "), "{w:?}");
        // The line without a separator fails closed: ALL : ALL : deny.
        assert_eq!(rs[0].origin(), "/etc/hosts.deny:1");
        let r = Rules::new(rs, vec![]);
        let v = r.check(DAEMON, ip("192.0.2.1"));
        assert!(!v.permit);
        assert_eq!(v.origin, Some("/etc/hosts.deny:1"));
    }

    #[test]
    fn malformed_addresses_can_refuse_but_never_grant() {
        for p in [
            "10.0.0.300",
            "10.0.0.0/33",
            "10.0.0.0/255.0.0.256",
            "1.2.3.4.",
            "010.0.0.1",
            "1.2.3",
            "[zz::1]",
            "[2001:db8::]/129",
            "[2001:db8::",
            "12345",
        ] {
            assert_eq!(eval(p, "192.0.2.1"), Unsure, "{p}");
            let w = warnings(&format!("pop3d : {p}"));
            assert!(w.iter().any(|w| w.contains("malformed")), "{p}: {w:?}");
        }
        // In hosts.allow: no grant; in hosts.deny: refused.
        assert!(!permits(
            &rules("pop3d : 10.0.0.300", "ALL : ALL"),
            "10.0.0.3"
        ));
        assert!(!permits(&rules("", "pop3d : 10.0.0.300"), "192.0.2.1"));
        // A surely matching entry still grants.
        assert!(permits(
            &rules("pop3d : 10.0.0.300, 192.0.2.1", "ALL : ALL"),
            "192.0.2.1"
        ));
    }

    #[test]
    fn host_names_never_match() {
        for p in [
            "localhost",
            "mail.example.com",
            ".example.com",
            "host.",
            "*.example.com",
            "@trusted",
            "LOCAL",
            "PARANOID",
            "münchen.example",
        ] {
            assert_eq!(eval(p, "127.0.0.1"), No, "{p}");
            assert_eq!(eval(p, "::1"), No, "{p}");
            assert_eq!(warnings(&format!("pop3d : {p}")).len(), 1, "{p}");
        }
        // So they neither grant nor refuse.
        assert!(!permits(
            &rules("pop3d : localhost", "ALL : ALL"),
            "127.0.0.1"
        ));
        assert!(permits(
            &rules("", "ALL : .example.com, PARANOID"),
            "127.0.0.1"
        ));
    }

    #[test]
    fn known_and_unknown_can_refuse_but_never_grant() {
        for p in ["KNOWN", "UNKNOWN", "ALL EXCEPT KNOWN", "ALL EXCEPT UNKNOWN"] {
            assert_eq!(eval(p, "192.0.2.1"), Unsure, "{p}");
            let allow = format!("pop3d : {p}");
            assert!(!permits(&rules(&allow, "ALL : ALL"), "192.0.2.1"), "{p}");
            assert!(!permits(&rules("", &allow), "192.0.2.1"), "{p}");
        }
        // A sure exception still decides.
        assert_eq!(eval("UNKNOWN EXCEPT 10.0.0.1", "10.0.0.1"), No);
        assert_eq!(eval("10.0.0.1 EXCEPT KNOWN", "10.0.0.2"), No);
    }

    #[test]
    fn user_and_file_patterns() {
        assert_eq!(eval("ALL@10.0.0.1", "10.0.0.1"), Yes);
        assert_eq!(eval("root@10.0.0.1", "10.0.0.1"), Unsure);
        assert_eq!(eval("root@10.0.0.1", "10.0.0.2"), No);
        assert_eq!(eval("ALL@@netgroup", "10.0.0.2"), No);
        assert_eq!(eval("/etc/pop3d.clients", "10.0.0.2"), Unsure);
        assert!(warnings("pop3d : /etc/pop3d.clients")[0].contains("not supported"));
    }

    #[test]
    fn daemon_names() {
        let r = |d: &str| parse(&format!("{d} : ALL"), "f").0.remove(0);
        let c = Client::new(ip("192.0.2.1"));
        assert_eq!(r("pop3d").eval("in.pop3d", &c), Yes);
        assert_eq!(r("in.pop3d").eval("in.pop3d", &c), Yes);
        assert_eq!(r("in.pop3d").eval("pop3d", &c), No);
        assert_eq!(r("POP3D").eval("pop3d", &c), Yes);
        assert_eq!(r("sshd, imapd").eval("pop3d", &c), No);
        assert_eq!(r("sshd, pop3d").eval("pop3d", &c), Yes);
        assert_eq!(r("pop*").eval("pop3d", &c), Yes);
        assert_eq!(r("ALL").eval("pop3d", &c), Yes);
        assert_eq!(r("pop3d@192.0.2.9").eval("pop3d", &c), Unsure);
        assert_eq!(r("sshd@192.0.2.9").eval("pop3d", &c), No);
    }

    #[test]
    fn spawn_and_shell_commands_are_not_executed() {
        let dir = TempDir::new("spawn");
        let marker = dir.0.join("executed");
        let m = marker.display();
        let allow = format!("pop3d : 10.0.0.1 : spawn /bin/touch {m}\n");
        let deny = format!("ALL : ALL : /bin/touch {m}\n");
        let (a, wa) = parse(&allow, "allow");
        let (d, wd) = parse(&deny, "deny");
        assert!(
            wa[0].starts_with("allow:1: spawn not executed: /bin/touch"),
            "{wa:?}"
        );
        assert!(
            wd[0].starts_with("deny:1: shell command not executed"),
            "{wd:?}"
        );
        let r = Rules::new(a, d);
        // The rules still apply.
        assert!(permits(&r, "10.0.0.1"));
        assert!(!permits(&r, "10.0.0.2"));
        assert!(!marker.exists());
    }

    #[test]
    fn twist_refuses() {
        let (rs, w) = parse("pop3d : 10.0.0.1 : twist /bin/echo go away", "f");
        assert!(w[0].contains("twist not executed"), "{w:?}");
        let r = Rules::new(rs, vec![]);
        assert!(!permits(&r, "10.0.0.1"));
        assert!(permits(&r, "10.0.0.2"));
    }

    #[test]
    fn allow_before_deny_order() {
        let r = rules("pop3d : 10.0.0.1\n", "ALL : ALL\n");
        assert!(permits(&r, "10.0.0.1"));
        assert!(!permits(&r, "10.0.0.2"));
        let v = r.check(DAEMON, ip("10.0.0.2"));
        assert_eq!(v.origin, Some("deny:1"));
        // First match in hosts.allow wins, even over a later `deny` there.
        let r = rules("pop3d : 10.0.0.1\npop3d : ALL : deny\n", "");
        assert!(permits(&r, "10.0.0.1"));
        assert!(!permits(&r, "10.0.0.2"));
        // No match anywhere: granted.
        let r = rules("pop3d : 10.0.0.1\n", "sshd : ALL\n");
        let v = r.check(DAEMON, ip("10.0.0.9"));
        assert!(v.permit && v.origin.is_none());
        assert!(Rules::default().permits(DAEMON, ip("192.0.2.1")));
    }

    #[test]
    fn warnings_are_bounded() {
        let names: Vec<String> = (0..500).map(|i| format!("host{i}")).collect();
        let w = warnings(&format!("pop3d : {}", names.join(" ")));
        assert_eq!(w.len(), MAX_WARNINGS + 1);
        assert!(w[MAX_WARNINGS].contains("400 more warnings"));
        let long = "x".repeat(1000);
        let w = warnings(&format!("pop3d : {long}\u{1b}"));
        assert!(w[0].len() < 200 && !w[0].contains('\u{1b}'), "{w:?}");
    }

    #[test]
    fn long_line_refuses_the_file() {
        let text = format!("pop3d : 10.0.0.1\nsshd : {}\n", "1".repeat(MAX_LINE));
        let (rs, w) = parse(&text, "f");
        assert_eq!(rs.len(), 1);
        assert!(w[0].starts_with("f:2: line longer"), "{w:?}");
        assert!(!Rules::new(rs, vec![]).permits(DAEMON, ip("10.0.0.1")));
    }

    #[test]
    fn load_missing_files_as_empty() {
        let dir = TempDir::new("missing");
        let (r, w) = Rules::load(&dir.0.join("allow"), &dir.0.join("deny"));
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(r.counts(), (0, 0));
        assert!(permits(&r, "192.0.2.1"));
    }

    #[test]
    fn load_refuses_unusable_files() {
        let dir = TempDir::new("unusable");
        let allow = dir.0.join("allow");
        let deny = dir.0.join("deny");
        fs::write(&allow, "pop3d : 10.0.0.1\n").unwrap();
        // A directory as hosts.deny: refused, everything not allowed is denied.
        fs::create_dir(&deny).unwrap();
        let (r, w) = Rules::load(&allow, &deny);
        assert!(w[0].contains("not a regular file"), "{w:?}");
        assert!(permits(&r, "10.0.0.1"));
        assert!(!permits(&r, "10.0.0.2"));
        // An oversized hosts.allow: refused, everybody denied.
        fs::remove_dir(&deny).unwrap();
        let mut big = "# padding\n".repeat((MAX_FILE as usize) / 10);
        big.push_str("pop3d : ALL\n");
        fs::write(&allow, big).unwrap();
        let (r, w) = Rules::load(&allow, &deny);
        assert!(w[0].contains("larger than"), "{w:?}");
        assert!(!permits(&r, "10.0.0.1"));
    }

    #[test]
    fn watcher_notices_changes() {
        let dir = TempDir::new("watch");
        let allow = dir.0.join("allow");
        let deny = dir.0.join("deny");
        let mut w = Watcher::new(&allow, &deny);
        assert!(w.changed());
        let (r, _) = w.load();
        assert!(!w.changed());
        assert!(permits(&r, "10.0.0.1"));
        fs::write(&deny, "ALL : ALL\n").unwrap();
        assert!(w.changed());
        assert!(w.changed(), "stays changed until loaded");
        let (r, _) = w.load();
        assert!(!w.changed());
        assert!(!permits(&r, "10.0.0.1"));
        fs::write(&allow, "pop3d : 10.0.0.1\n").unwrap();
        assert!(w.changed());
        let (r, _) = w.load();
        assert!(permits(&r, "10.0.0.1"));
        fs::remove_file(&deny).unwrap();
        assert!(w.changed());
    }

    #[test]
    fn three_valued_logic() {
        assert_eq!(Unsure.both(No), No);
        assert_eq!(Unsure.both(Yes), Unsure);
        assert_eq!(Unsure.either(Yes), Yes);
        assert_eq!(Unsure.either(No), Unsure);
        assert_eq!(Unsure.negate(), Unsure);
        assert!(wildcard(b"a*b?c", b"AxxbYc"));
        assert!(!wildcard(b"a*b?c", b"axxbc"));
        assert!(wildcard(b"*", b""));
    }
}
