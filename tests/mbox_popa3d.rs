//! Differential tests against Debian's popa3d: the same mailboxes served by
//! popa3d and by pop3d, both in inetd mode over a socketpair, as the same
//! system user; STAT, LIST, UIDL, TOP and RETR compared.
//!
//! popa3d is extracted (not installed: it conflicts with Dovecot in apt) by
//! `scripts/fetch-peers.sh popa3d` into `target/peers/popa3d`. Debian's build
//! authenticates through PAM against real users and serves `/var/mail/USER`,
//! so this test needs root: it creates the `popa3d` system user and its
//! chroot directory `/var/lib/popa3d` if missing (what the package's postinst
//! would do), a PAM service file if missing, and a throw-away user `p3dNNNN`
//! with a password, removed at the end. Without root, or where popa3d cannot
//! be fetched (no apt), the test fails saying why; `POP3D_TEST_NONROOT=1`
//! turns that into a reported skip, as for the other root-only tests.
//!
//! Intended differences (everything else must be byte-identical):
//!
//! 1. **Size of a message without a final newline**: popa3d's LIST/STAT
//!    count the last line as length + 1 but RETR sends length + 2 (CRLF
//!    added); ours is what RETR sends, one more than popa3d's.
//! 2. **UIDL where popa3d repeats an id** (identical messages, messages with
//!    none of the hashed headers): the first message with that id in file
//!    order keeps popa3d's id; the others get `ID-XXXXXXXX` (8 hex digits of
//!    a 32-bit hash of the message data, not popa3d's MD5), `ID-XXXXXXXX-k`
//!    for further identical copies. An id that an earlier expunge deleted is
//!    never given again: a re-delivered copy of a deleted message gets
//!    popa3d's id from popa3d, a new one from us.
//! 3. **CRLF mailboxes**: popa3d does not see `\r\n` as an empty line, so a
//!    CRLF mbox is one message to it, sent as CR CR LF; ours splits it and
//!    sends CR LF. Its TOP finds the header end too.
//! 4. **UW IMAP / Pine's "FOLDER INTERNAL DATA" first message**: served by
//!    popa3d, hidden by ours (message numbers shift by one).
//! 5. Reply texts after `+OK`/`-ERR` differ (popa3d sends bare `+OK`); only
//!    the data lines are compared.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

const FROM: &str = "From sender@example.org Mon Jan  1 00:00:00 2024\n";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The test cannot run here. That is a failure (CI runs as root with the
/// package registry at hand), unless POP3D_TEST_NONROOT=1 says that this is
/// a developer's unprivileged run, where it is reported and skipped.
fn skip(why: &str) {
    if std::env::var("POP3D_TEST_NONROOT").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED differential test against popa3d: {why}");
        return;
    }
    panic!("differential test against popa3d cannot run: {why} (POP3D_TEST_NONROOT=1 skips it)");
}

fn sh(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The throw-away system user; removed on drop.
struct SysUser(String);

impl SysUser {
    fn create() -> SysUser {
        let name = format!("p3d{}", std::process::id() % 100_000);
        let _ = sh("userdel", &[&name]);
        assert!(
            sh(
                "useradd",
                &["-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", &name]
            ),
            "useradd {name}"
        );
        let mut c = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin
            .take()
            .unwrap()
            .write_all(format!("{name}:Diff-pw-1\n").as_bytes())
            .unwrap();
        assert!(c.wait().unwrap().success(), "chpasswd");
        // Files an earlier run with the same name may have left (its
        // retired ids would change ours).
        let user = SysUser(name);
        user.clean();
        user
    }

    fn mbox(&self) -> PathBuf {
        Path::new("/var/mail").join(&self.0)
    }

    /// Removes the mailbox and pop3d's files beside it.
    fn clean(&self) {
        let _ = fs::remove_file(self.mbox());
        for suffix in [".pop3d-uids", ".pop3d-journal", ".pop3d-index"] {
            let _ = fs::remove_file(Path::new("/var/mail").join(format!(".{}{suffix}", self.0)));
        }
    }
}

impl Drop for SysUser {
    fn drop(&mut self) {
        self.clean();
        let _ = sh("userdel", &[&self.0]);
    }
}

/// What popa3d's Debian package would have set up.
fn prepare_popa3d() -> Result<PathBuf, String> {
    let bin = repo().join("target/peers/popa3d/usr/sbin/popa3d");
    if !bin.exists() {
        let st = Command::new("bash")
            .arg(repo().join("scripts/fetch-peers.sh"))
            .arg("popa3d")
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("scripts/fetch-peers.sh: {e}"))?;
        if !st.success() || !bin.exists() {
            return Err("scripts/fetch-peers.sh popa3d failed".into());
        }
    }
    if !sh("id", &["popa3d"]) {
        let _ = sh(
            "useradd",
            &[
                "--system",
                "-M",
                "-d",
                "/var/lib/popa3d",
                "-s",
                "/usr/sbin/nologin",
                "popa3d",
            ],
        );
    }
    fs::create_dir_all("/var/lib/popa3d").map_err(|e| format!("/var/lib/popa3d: {e}"))?;
    let pam = Path::new("/etc/pam.d/popa3d");
    if !pam.exists() {
        let shipped = repo().join("target/peers/popa3d/etc/pam.d/popa3d");
        fs::copy(&shipped, pam).map_err(|e| format!("{}: {e}", pam.display()))?;
    }
    Ok(bin)
}

/// A POP3 conversation over one end of a socketpair.
struct Conv {
    child: Child,
    r: BufReader<UnixStream>,
    w: UnixStream,
}

impl Conv {
    fn start(mut cmd: Command) -> Conv {
        let (ours, theirs) = UnixStream::pair().unwrap();
        ours.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let fd: OwnedFd = theirs.into();
        let fd2 = fd.try_clone().unwrap();
        let child = cmd
            .stdin(Stdio::from(fd))
            .stdout(Stdio::from(fd2))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut c = Conv {
            child,
            r: BufReader::new(ours.try_clone().unwrap()),
            w: ours,
        };
        let hello = c.line();
        assert!(hello.starts_with("+OK"), "greeting {hello:?}");
        c
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).unwrap();
        l.trim_end_matches(['\r', '\n']).to_string()
    }

    fn cmd(&mut self, c: &str) -> String {
        self.w.write_all(format!("{c}\r\n").as_bytes()).unwrap();
        self.line()
    }

    /// The raw data lines of a multi-line reply (as sent, stuffing included).
    fn multi(&mut self, c: &str) -> Option<Vec<u8>> {
        let first = self.cmd(c);
        if !first.starts_with("+OK") {
            return None;
        }
        let mut body = Vec::new();
        loop {
            let mut l = Vec::new();
            self.r.read_until(b'\n', &mut l).unwrap();
            if l == b".\r\n" || l.is_empty() {
                return Some(body);
            }
            body.extend_from_slice(&l);
        }
    }
}

impl Drop for Conv {
    fn drop(&mut self) {
        let _ = self.w.write_all(b"QUIT\r\n");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one server said about a mailbox.
#[derive(Debug, Default)]
struct View {
    count: usize,
    sizes: Vec<u64>,
    uids: Vec<String>,
    retr: Vec<Vec<u8>>,
    top0: Vec<Vec<u8>>,
    top2: Vec<Vec<u8>>,
}

fn session(cmd: Command, user: &str) -> View {
    let mut c = Conv::start(cmd);
    assert!(c.cmd(&format!("USER {user}")).starts_with("+OK"));
    let r = c.cmd("PASS Diff-pw-1");
    assert!(r.starts_with("+OK"), "PASS: {r}");
    let stat = c.cmd("STAT");
    let count: usize = stat.split(' ').nth(1).unwrap().parse().unwrap();
    let list = c.multi("LIST").unwrap();
    let sizes = String::from_utf8(list)
        .unwrap()
        .lines()
        .map(|l| l.split(' ').nth(1).unwrap().parse().unwrap())
        .collect();
    let uidl = c.multi("UIDL").unwrap();
    let uids = String::from_utf8(uidl)
        .unwrap()
        .lines()
        .map(|l| l.split(' ').nth(1).unwrap().to_string())
        .collect();
    let mut v = View {
        count,
        sizes,
        uids,
        ..View::default()
    };
    for i in 1..=count {
        v.retr.push(c.multi(&format!("RETR {i}")).unwrap());
        v.top0.push(c.multi(&format!("TOP {i} 0")).unwrap());
        v.top2.push(c.multi(&format!("TOP {i} 2")).unwrap());
    }
    v
}

fn popa3d(bin: &Path) -> Command {
    Command::new(bin)
}

fn ours() -> Command {
    let bin = env!("CARGO_BIN_EXE_pop3d");
    let mut c = match std::env::var("TEST_EXEC_RUNNER") {
        Ok(r) if !r.is_empty() => {
            let mut c = Command::new(r);
            c.arg(bin);
            c
        }
        _ => Command::new(bin),
    };
    c.args(["--spool", "/var/mail", "--log", "stderr"]);
    c
}

/// Deletes message 1 in a session of `cmd` (QUIT must answer +OK).
fn delete_first(cmd: Command, user: &str) {
    let mut c = Conv::start(cmd);
    assert!(c.cmd(&format!("USER {user}")).starts_with("+OK"));
    assert!(c.cmd("PASS Diff-pw-1").starts_with("+OK"));
    assert!(c.cmd("DELE 1").starts_with("+OK"));
    let q = c.cmd("QUIT");
    assert!(q.starts_with("+OK"), "QUIT: {q}");
}

/// Sets the mailbox's mtime an hour back (popa3d holds its lock one more
/// second for a mailbox written in the current second).
fn age(p: &Path) {
    fs::File::options()
        .write(true)
        .open(p)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
}

/// Writes the mailbox for `user` (mode 0600, owned by the user, old mtime).
fn put(user: &SysUser, data: &[u8]) {
    let p = user.mbox();
    fs::write(&p, data).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    let out = Command::new("id").args(["-u", &user.0]).output().unwrap();
    let u: u32 = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let out = Command::new("id").args(["-g", &user.0]).output().unwrap();
    let g: u32 = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    std::os::unix::fs::chown(&p, Some(u), Some(g)).unwrap();
    age(&p);
}

fn mbox(msgs: &[&str]) -> Vec<u8> {
    let mut m = String::new();
    for (k, msg) in msgs.iter().enumerate() {
        if k > 0 {
            m.push('\n');
        }
        m.push_str(FROM);
        m.push_str(msg);
    }
    m.into_bytes()
}

fn compare_same(name: &str, p: &View, o: &View) {
    assert_eq!(p.count, o.count, "{name}: STAT");
    assert_eq!(p.sizes, o.sizes, "{name}: LIST");
    assert_eq!(p.uids, o.uids, "{name}: UIDL");
    assert_eq!(p.retr, o.retr, "{name}: RETR");
    assert_eq!(p.top0, o.top0, "{name}: TOP n 0");
    assert_eq!(p.top2, o.top2, "{name}: TOP n 2");
}

#[test]
fn same_mailboxes_served_by_popa3d_and_pop3d() {
    if fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1) != 0 {
        return skip("needs root (PAM users, /var/mail, chroot)");
    }
    let bin = match prepare_popa3d() {
        Ok(b) => b,
        Err(why) => return skip(&why),
    };
    let user = SysUser::create();
    let u = user.0.clone();

    // 1. Ordinary mail: identical in every respect.
    let long = format!("Subject: long\n\n{}\n.\n..\n", "L".repeat(70_000));
    let plain = mbox(&[
        "Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\nSubject: one\n\nbody one\n",
        "Date: Tue, 2 Jan 2024\nMessage-ID: <2@x>\nSubject: two\n\n.dot\n..two dots\n>From quoted\n\n\nmore\n",
        "Delivered-To: u@x\nX-Delivery-ID: 77\nSubject: three\n\nl1\nl2\nl3\nl4\n",
        &long,
        ".Hdr: dotted header\nMessage-ID: <4@x>\n\nx\n",
        "Message-ID: <5@x>\nSubject: headers only\n",
        "Message-ID: <6@x>\nSubject: no body\n\n",
        "Message-ID: <7@x>\nSubject: nul\n\na\0b\n\0\n",
        "Received: from c\n\tby d\nSubject: folded\n\nbody\n",
    ]);
    put(&user, &plain);
    let p = session(popa3d(&bin), &u);
    let o = session(ours(), &u);
    assert_eq!(p.count, 9);
    compare_same("plain", &p, &o);

    // 2. No final newline: our size is what RETR sends, popa3d's one less.
    let open_end = mbox(&[
        "Message-ID: <a@x>\nSubject: a\n\nbody\n",
        "Message-ID: <b@x>\nSubject: three\n\nlast line without newline",
    ]);
    put(&user, &open_end);
    let p = session(popa3d(&bin), &u);
    let o = session(ours(), &u);
    assert_eq!(p.retr, o.retr, "open end: RETR");
    assert_eq!((&p.top0, &p.top2), (&o.top0, &o.top2), "open end: TOP");
    assert_eq!(p.uids, o.uids);
    assert_eq!(p.sizes[0], o.sizes[0]);
    assert_eq!(p.sizes[1] + 1, o.sizes[1], "difference 1");
    assert_eq!(o.sizes[1], o.retr[1].len() as u64);

    // 3. Repeated popa3d ids: the first keeps it, the others are told apart.
    let dups = mbox(&[
        "Subject: a\n\nsame\n",
        "Subject: b\n\nother body, same (no) hashed headers\n",
        "Subject: a\n\nsame\n",
        "Message-ID: <unique@x>\n\nunique\n",
    ]);
    put(&user, &dups);
    let p = session(popa3d(&bin), &u);
    let o = session(ours(), &u);
    assert_eq!(p.retr, o.retr);
    assert_eq!((&p.top0, &p.top2), (&o.top0, &o.top2), "repeated ids: TOP");
    assert_eq!(p.sizes, o.sizes);
    assert_eq!(p.uids[0], p.uids[1]);
    assert_eq!(p.uids[0], p.uids[2]);
    assert_eq!(
        o.uids[0], p.uids[0],
        "difference 2: the first keeps popa3d's id"
    );
    assert_eq!(o.uids[3], p.uids[3]);
    for i in [1, 2] {
        assert!(
            o.uids[i].starts_with(&format!("{}-", p.uids[i])),
            "{:?}",
            o.uids
        );
        assert_eq!(o.uids[i].len(), 25);
    }
    assert_ne!(o.uids[1], o.uids[2]);

    // 4. A CRLF mailbox: one message to popa3d, two to us.
    let crlf = format!("{FROM}Subject: x\r\n\r\nbody\r\n\r\n{FROM}Subject: y\r\n\r\nbody2\r\n")
        .into_bytes();
    put(&user, &crlf);
    let p = session(popa3d(&bin), &u);
    let o = session(ours(), &u);
    assert_eq!(p.count, 1);
    assert_eq!(o.count, 2, "difference 3");
    assert!(p.retr[0].windows(3).any(|w| w == b"\r\r\n"));
    assert_eq!(o.retr[0], b"Subject: x\r\n\r\nbody\r\n");
    assert_eq!(o.retr[1], b"Subject: y\r\n\r\nbody2\r\n");
    assert_eq!(o.top0[0], b"Subject: x\r\n\r\n", "difference 3: TOP");
    assert_eq!(o.top2[1], b"Subject: y\r\n\r\nbody2\r\n");

    // 5. UW IMAP's pseudo-message: served by popa3d, hidden by us.
    let pseudo = mbox(&[
        "Date: Mon, 1 Jan 2024\nFrom: Mail System Internal Data <MAILER-DAEMON@x>\n\
         Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\nMessage-ID: <1@x>\n\
         X-IMAP: 1 2\nStatus: RO\n\nThis text is part of the internal format of your mail folder.\n",
        "Message-ID: <m1@x>\nSubject: real\n\nreal mail\n",
    ]);
    put(&user, &pseudo);
    let p = session(popa3d(&bin), &u);
    let o = session(ours(), &u);
    assert_eq!(p.count, 2);
    assert_eq!(o.count, 1, "difference 4");
    assert_eq!(o.retr[0], p.retr[1]);
    assert_eq!((&o.top0[0], &o.top2[0]), (&p.top0[1], &p.top2[1]));
    assert_eq!(o.uids[0], p.uids[1]);
    assert_eq!(o.sizes[0], p.sizes[1]);

    // 6. A message deleted through us, then delivered again (appended by
    // an MDA): popa3d gives the copy the deleted message's id, which a
    // client may still remember as already fetched; we give a new one.
    let again = "Message-ID: <again@x>\nSubject: again\n\nsame text\n";
    put(&user, &mbox(&[again, "Message-ID: <stays@x>\n\nstays\n"]));
    let p0 = session(popa3d(&bin), &u);
    compare_same("before the deletion", &p0, &session(ours(), &u));
    delete_first(ours(), &u);
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(user.mbox())
        .unwrap();
    f.write_all(format!("\n{FROM}{again}").as_bytes()).unwrap();
    drop(f);
    age(&user.mbox());
    let p = session(popa3d(&bin), &u);
    let o = session(ours(), &u);
    assert_eq!((p.count, o.count), (2, 2));
    assert_eq!(p.retr, o.retr, "re-delivered: RETR");
    assert_eq!((&p.top0, &p.top2), (&o.top0, &o.top2), "re-delivered: TOP");
    assert_eq!(p.sizes, o.sizes);
    assert_eq!(p.retr[1], p0.retr[0], "the copy is the deleted message");
    assert_eq!(p.uids, [p0.uids[1].clone(), p0.uids[0].clone()], "popa3d");
    assert_eq!(o.uids[0], p0.uids[1]);
    assert!(
        o.uids[1].starts_with(&format!("{}-", p0.uids[0])),
        "difference 2, re-delivered: {:?}",
        o.uids
    );
}
