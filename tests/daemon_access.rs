//! Access rules of the standalone daemon: `--hosts-allow FILE` and
//! `--hosts-deny FILE` in the hosts_access(5) form, daemon name `pop3d`.
//! One test per pattern form, each through the real server with clients
//! connecting from chosen loopback addresses (127.0.0.N and ::1, through
//! the python client swarm, since std cannot bind a client socket): `ALL`,
//! an exact address, a `127.0.1.` prefix, net/mask, CIDR, `[v6]` and
//! `[v6]/len`, `EXCEPT` (in client and daemon lists), daemon lists, the
//! `: allow` / `: deny` options, missing files (everyone allowed), a rewrite
//! of a file picked up without a restart (checked about once a second) or at
//! SIGHUP, and `spawn`/`twist` options that must never run anything.
//!
//! Allowed: the greeting. Denied: the connection closes without a greeting
//! (an `-ERR` line first is allowed) and the log names the client address
//! in a line about the refusal.

mod common;

use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// A server with access files in its world directory.
struct Guarded {
    d: Daemon,
    v4: SocketAddr,
    v6: Option<SocketAddr>,
    allow: PathBuf,
    deny: PathBuf,
}

/// Writes `allow` and `deny` (None: no such file), aged so any rewrite
/// changes their mtime, and starts the server on 127.0.0.1 (and [::1] when
/// `v6`).
fn start(w: &World, allow: Option<&str>, deny: Option<&str>, v6: bool) -> Guarded {
    let allow_path = w.dir.join("hosts.allow");
    let deny_path = w.dir.join("hosts.deny");
    for (p, text) in [(&allow_path, allow), (&deny_path, deny)] {
        if let Some(t) = text {
            fs::write(p, t).unwrap();
            age_file(p);
        }
    }
    let mut cmd = pop3d_command();
    cmd.args(["-D", "-F", "--listen", "127.0.0.1:0"]);
    if v6 {
        cmd.args(["--listen", "[::1]:0"]);
    }
    cmd.args(w.args())
        .arg("--hosts-allow")
        .arg(&allow_path)
        .arg("--hosts-deny")
        .arg(&deny_path);
    let d = Daemon::start(cmd);
    let v6_addr = v6.then(|| {
        let l = d
            .wait_log(Duration::from_secs(20), |l| {
                l.contains("listening on [::1]:")
            })
            .unwrap_or_else(|| panic!("no [::1] listener: {:?}", d.log()));
        l.split("listening on ")
            .nth(1)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    });
    Guarded {
        v4: d.addr,
        v6: v6_addr,
        d,
        allow: allow_path,
        deny: deny_path,
    }
}

/// Does the log have a line about refusing `src`?
fn refusal_logged(d: &Daemon, src: &str) -> bool {
    d.wait_log(Duration::from_secs(3), |l| {
        let low = l.to_lowercase();
        l.contains(src)
            && ["den", "refus", "reject", "access", "not allowed", "forbid"]
                .iter()
                .any(|w| low.contains(w))
    })
    .is_some()
}

impl Guarded {
    fn target(&self, src: IpAddr) -> SocketAddr {
        match src {
            IpAddr::V4(_) => self.v4,
            IpAddr::V6(_) => self
                .v6
                .expect("an IPv6 client needs the server started with v6"),
        }
    }

    /// Connects from `src`: Some(true) when greeted, Some(false) when
    /// refused; panics on anything else.
    fn verdict(&self, sw: &mut Swarm, src: &str) -> bool {
        let ip: IpAddr = src.parse().unwrap();
        let (id, got) = sw.probe(ip, self.target(ip), Duration::from_secs(10));
        let allowed = match &got {
            Got::Line(l) if is_ok(l) => true,
            Got::Line(l) if is_err(l) => {
                let next = sw.read(id, Duration::from_secs(10));
                assert!(
                    next.closed(),
                    "client {src}: after {l:?} the connection must close, got {next:?}"
                );
                false
            }
            g if g.closed() => false,
            other => panic!("client {src}: neither a greeting nor a refusal: {other:?}"),
        };
        if allowed {
            sw.send(id, b"QUIT\r\n");
            let r = sw.read(id, REPLY_TIMEOUT);
            assert!(r.is_ok_line(), "client {src}: QUIT got {r:?}");
        }
        sw.close(id);
        allowed
    }

    /// Asserts each (source, allowed) pair; `ctx` names the rules.
    fn expect(&self, sw: &mut Swarm, cases: &[(&str, bool)], ctx: &str) {
        for &(src, want) in cases {
            let got = self.verdict(sw, src);
            assert_eq!(
                got,
                want,
                "client {src} was {} but must be {} with {ctx}",
                if got { "allowed" } else { "denied" },
                if want { "allowed" } else { "denied" }
            );
            if !want {
                assert!(
                    refusal_logged(&self.d, src),
                    "no log line about refusing {src}: {:?}",
                    self.d.log()
                );
            }
        }
    }

    /// Polls until `src` gets the verdict `want` (after a rules change).
    fn wait_verdict(&self, sw: &mut Swarm, src: &str, want: bool, within: Duration, ctx: &str) {
        let t = Instant::now();
        while self.verdict(sw, src) != want {
            assert!(
                t.elapsed() < within,
                "client {src} still not {} {within:?} after {ctx}",
                if want { "allowed" } else { "denied" }
            );
            thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Rewrites a rules file (its mtime moves forward: it was aged).
fn rewrite(p: &Path, text: &str) {
    fs::write(p, text).unwrap();
}

#[test]
fn missing_files_allow_everyone() {
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let g = start(&w, None, None, false);
    let mut sw = Swarm::new();
    g.expect(
        &mut sw,
        &[("127.0.0.1", true), ("127.0.0.2", true)],
        "no access files",
    );
    let mut pop = g.d.connect();
    pop.login(&u.name, &u.pass);
    pop.quit();
}

#[test]
fn all_in_hosts_deny() {
    let w = World::new();
    let g = start(&w, Some(""), Some("pop3d: ALL\n"), false);
    let mut sw = Swarm::new();
    g.expect(
        &mut sw,
        &[("127.0.0.1", false), ("127.0.0.2", false)],
        "hosts.deny `pop3d: ALL`",
    );
}

#[test]
fn exact_ipv4_address() {
    let w = World::new();
    let g = start(
        &w,
        Some("# nothing allowed explicitly\n\n"),
        Some("# one address\npop3d: 127.0.0.3\n"),
        false,
    );
    let mut sw = Swarm::new();
    g.expect(
        &mut sw,
        &[
            ("127.0.0.3", false),
            ("127.0.0.2", true),
            ("127.0.0.4", true),
            ("127.0.0.33", true),
        ],
        "hosts.deny `pop3d: 127.0.0.3`",
    );
}

#[test]
fn dotted_prefix() {
    let w = World::new();
    let g = start(&w, Some("pop3d: 127.0.1.\n"), Some("pop3d: ALL\n"), false);
    let mut sw = Swarm::new();
    g.expect(
        &mut sw,
        &[
            ("127.0.1.5", true),
            ("127.0.1.200", true),
            ("127.0.0.5", false),
            ("127.0.10.5", false),
        ],
        "hosts.allow `pop3d: 127.0.1.`, hosts.deny `pop3d: ALL`",
    );
}

#[test]
fn net_slash_mask() {
    let w = World::new();
    let g = start(
        &w,
        Some("pop3d: 127.0.2.0/255.255.255.0\n"),
        Some("pop3d: ALL\n"),
        false,
    );
    let mut sw = Swarm::new();
    g.expect(
        &mut sw,
        &[
            ("127.0.2.9", true),
            ("127.0.2.254", true),
            ("127.0.3.9", false),
            ("127.0.0.1", false),
        ],
        "hosts.allow `pop3d: 127.0.2.0/255.255.255.0`",
    );
}

#[test]
fn cidr() {
    let w = World::new();
    let g = start(
        &w,
        Some("pop3d: 127.0.4.0/23\n"),
        Some("pop3d: ALL\n"),
        false,
    );
    let mut sw = Swarm::new();
    g.expect(
        &mut sw,
        &[
            ("127.0.4.1", true),
            ("127.0.5.250", true),
            ("127.0.6.1", false),
            ("127.0.3.255", false),
        ],
        "hosts.allow `pop3d: 127.0.4.0/23`",
    );
}

/// Fails, naming the cause, unless the IPv6 loopback address exists (see
/// daemon_life.rs for why this is a failure and not a skip).
fn require_ipv6_loopback() {
    let table = fs::read_to_string("/proc/net/if_inet6").unwrap_or_default();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("00000000000000000000000000000001")),
        "this test needs the IPv6 loopback address ::1, which this machine lacks; \
         enable IPv6 on lo (sysctl net.ipv6.conf.lo.disable_ipv6=0)"
    );
}

#[test]
fn ipv6_address_in_brackets() {
    require_ipv6_loopback();
    let w = World::new();
    let g = start(&w, Some(""), Some("pop3d: [::1]\n"), true);
    let mut sw = Swarm::new();
    g.expect(
        &mut sw,
        &[("::1", false), ("127.0.0.1", true)],
        "hosts.deny `pop3d: [::1]`",
    );
}

#[test]
fn ipv6_prefix_length() {
    require_ipv6_loopback();
    let w = World::new();
    let g = start(&w, Some("pop3d: [::1]/128\n"), Some("pop3d: ALL\n"), true);
    let mut sw = Swarm::new();
    g.expect(
        &mut sw,
        &[("::1", true), ("127.0.0.1", false)],
        "hosts.allow `pop3d: [::1]/128`, hosts.deny ALL",
    );
    drop(g);
    let g = start(&w, Some("pop3d: [fe80::]/10\n"), Some("pop3d: ALL\n"), true);
    g.expect(
        &mut sw,
        &[("::1", false)],
        "hosts.allow `pop3d: [fe80::]/10`, hosts.deny ALL",
    );
    drop(g);
    let g = start(&w, Some(""), Some("pop3d: [::]/127\n"), true);
    g.expect(
        &mut sw,
        &[("::1", false), ("127.0.0.1", true)],
        "hosts.deny `pop3d: [::]/127`",
    );
}

#[test]
fn except_in_client_and_daemon_lists() {
    let w = World::new();
    let g = start(
        &w,
        Some(""),
        Some(
            "pop3d: 127.0.0.0/255.255.255.0 EXCEPT 127.0.0.7 127.0.0.8\n\
             ALL EXCEPT pop3d: 127.0.1.10\n\
             ALL EXCEPT sshd: 127.0.1.11\n",
        ),
        false,
    );
    let mut sw = Swarm::new();
    g.expect(
        &mut sw,
        &[
            ("127.0.0.7", true),
            ("127.0.0.8", true),
            ("127.0.0.9", false),
            ("127.0.1.10", true),
            ("127.0.1.11", false),
        ],
        "hosts.deny with EXCEPT",
    );
}

#[test]
fn daemon_lists_and_other_daemons() {
    let w = World::new();
    let g = start(
        &w,
        Some("sshd: 127.0.0.14\n"),
        Some(
            "sshd: ALL\n\
             in.telnetd, pop3d: 127.0.0.12\n\
             ALL: 127.0.0.13\n\
             pop3d: 127.0.0.14\n",
        ),
        false,
    );
    let mut sw = Swarm::new();
    g.expect(
        &mut sw,
        &[
            ("127.0.0.12", false),
            ("127.0.0.13", false),
            // Allowed for sshd only: still denied for pop3d.
            ("127.0.0.14", false),
            ("127.0.0.15", true),
        ],
        "daemon lists (sshd rules do not apply to pop3d)",
    );
}

#[test]
fn allow_and_deny_options() {
    let w = World::new();
    let g = start(
        &w,
        Some("pop3d: 127.0.0.15 : deny\n"),
        Some("pop3d: 127.0.0.16 : allow\npop3d: ALL\n"),
        false,
    );
    let mut sw = Swarm::new();
    g.expect(
        &mut sw,
        &[
            ("127.0.0.15", false),
            ("127.0.0.16", true),
            ("127.0.0.17", false),
        ],
        "`: deny` in hosts.allow and `: allow` in hosts.deny",
    );
}

#[test]
fn rules_reload_when_a_file_changes() {
    let w = World::new();
    let g = start(&w, Some(""), None, false);
    let mut sw = Swarm::new();
    g.expect(
        &mut sw,
        &[("127.0.0.20", true), ("127.0.0.21", true)],
        "no hosts.deny yet",
    );

    // The deny file appears.
    rewrite(&g.deny, "pop3d: 127.0.0.20\n");
    thread::sleep(Duration::from_millis(1500));
    g.wait_verdict(
        &mut sw,
        "127.0.0.20",
        false,
        Duration::from_secs(3),
        "creating hosts.deny",
    );
    g.expect(&mut sw, &[("127.0.0.21", true)], "hosts.deny 127.0.0.20");

    // The deny file changes.
    age_file(&g.deny);
    thread::sleep(Duration::from_millis(100));
    rewrite(&g.deny, "pop3d: 127.0.0.21\n");
    thread::sleep(Duration::from_millis(1500));
    g.wait_verdict(
        &mut sw,
        "127.0.0.21",
        false,
        Duration::from_secs(3),
        "rewriting hosts.deny",
    );
    g.expect(&mut sw, &[("127.0.0.20", true)], "hosts.deny 127.0.0.21");

    // The allow file changes.
    rewrite(&g.allow, "pop3d: 127.0.0.21\n");
    thread::sleep(Duration::from_millis(1500));
    g.wait_verdict(
        &mut sw,
        "127.0.0.21",
        true,
        Duration::from_secs(3),
        "allowing 127.0.0.21 in hosts.allow",
    );

    // The deny file goes away: everyone is allowed again.
    rewrite(&g.allow, "");
    fs::remove_file(&g.deny).unwrap();
    thread::sleep(Duration::from_millis(1500));
    g.wait_verdict(
        &mut sw,
        "127.0.0.21",
        true,
        Duration::from_secs(3),
        "removing hosts.deny",
    );
    g.expect(&mut sw, &[("127.0.0.20", true)], "no hosts.deny");
}

#[test]
fn sighup_rereads_the_files() {
    let w = World::new();
    let g = start(&w, Some(""), Some("pop3d: 127.0.0.22\n"), false);
    let mut sw = Swarm::new();
    g.expect(
        &mut sw,
        &[("127.0.0.22", false), ("127.0.0.23", true)],
        "hosts.deny 127.0.0.22",
    );
    // Same length, same (old) mtime: only SIGHUP says it changed.
    rewrite(&g.deny, "pop3d: 127.0.0.23\n");
    age_file(&g.deny);
    g.d.signal("HUP");
    g.wait_verdict(
        &mut sw,
        "127.0.0.23",
        false,
        Duration::from_secs(3),
        "SIGHUP",
    );
    g.expect(&mut sw, &[("127.0.0.22", true)], "hosts.deny 127.0.0.23");
}

#[test]
fn spawn_and_twist_never_run() {
    let w = World::new();
    let f = |n: u32| w.dir.join(format!("ran-{n}"));
    let g = start(
        &w,
        Some(&format!(
            "pop3d: 127.0.0.25 : spawn (touch {}) : allow\n\
             pop3d: 127.0.0.26 : twist (touch {})\n\
             pop3d: 127.0.0.27 : spawn /bin/touch {} : allow\n",
            f(2).display(),
            f(3).display(),
            f(4).display(),
        )),
        Some(&format!(
            "pop3d: 127.0.0.24 : spawn (touch {}; touch {}_%a)\n",
            f(1).display(),
            f(5).display(),
        )),
        false,
    );
    let mut sw = Swarm::new();
    g.expect(
        &mut sw,
        &[
            ("127.0.0.24", false),
            ("127.0.0.25", true),
            ("127.0.0.27", true),
        ],
        "rules with spawn options",
    );
    // Whatever twist means for the verdict, nothing is run.
    let _ = g.verdict(&mut sw, "127.0.0.26");
    thread::sleep(Duration::from_millis(500));
    let ran: Vec<String> = fs::read_dir(&w.dir.path)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ran-"))
        .collect();
    assert!(
        ran.is_empty(),
        "a spawn/twist command was run: it created {ran:?}"
    );
    assert!(!f(1).exists() && !f(2).exists() && !f(3).exists() && !f(4).exists());
}
