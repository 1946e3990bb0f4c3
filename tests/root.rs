//! Root-only tests of the real-uid paths (they fail when not run as root,
//! unless POP3D_TEST_NONROOT=1 says to skip them): the daemon, running as
//! root, serves a mailbox owned by an unprivileged test uid and keeps its
//! owner and mode through an expunge; it refuses a spool file that user may
//! not read although the daemon itself could; in inetd mode, after login,
//! every process of the session has the user's uids and gids; the index file
//! of a large mailbox is the user's and serves a restarted daemon.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use common::*;

#[test]
fn root_daemon_serves_mailbox_owned_by_user() {
    if !require_root("root_daemon_serves_mailbox_owned_by_user") {
        return;
    }
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    assert_ne!(u.uid, 0);
    let mbox = tricky_mbox();
    let path = w.write_mailbox(&u, &mbox.bytes());
    let d = w.daemon(&[]);
    let mut pop = d.connect();
    pop.login(&u.name, &u.pass);
    assert_eq!(pop.stat(), (mbox.len() as u64, mbox.expected_total(&[])));
    for k in 1..=mbox.len() {
        let (_, body) = pop.multi(&format!("RETR {k}"));
        assert_bytes_eq(&body.data(), &mbox.expected_retr(k), &format!("RETR {k}"));
    }
    pop.ok("DELE 1");
    pop.ok("DELE 5");
    pop.quit();

    assert_bytes_eq(
        &fs::read(&path).unwrap(),
        &mbox.bytes_without(&[1, 5]),
        "mailbox after expunge",
    );
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (u.uid, u.gid),
        "mailbox owner after expunge"
    );
    assert_eq!(
        meta.permissions().mode() & 0o7777,
        0o600,
        "mailbox mode after expunge"
    );
    // Nothing is left behind in the spool (no stale dot-lock, journal or
    // temporary file); the only other file is the record of the deleted
    // messages' UIDLs (so they are never given to new mail), owned by alice.
    let mut names: Vec<String> = fs::read_dir(&w.spool)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let retired = w.spool.join(".alice.pop3d-uids");
    let rmeta = fs::metadata(&retired).expect("retired-UIDL file after an expunge");
    assert_eq!(
        (rmeta.uid(), rmeta.gid()),
        (u.uid, u.gid),
        "owner of {}",
        retired.display()
    );
    assert_eq!(
        names,
        vec![".alice.pop3d-uids".to_owned(), "alice".to_owned()],
        "files in the spool after the session"
    );
}

#[test]
fn root_refuses_mailbox_the_user_cannot_read() {
    if !require_root("root_refuses_mailbox_the_user_cannot_read") {
        return;
    }
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let mbox = simple_mbox(2);
    let path = w.write_mailbox(&u, &mbox.bytes());
    // Root's file, mode 0600: the daemon could read it, alice may not.
    std::os::unix::fs::chown(&path, Some(0), Some(0)).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    age_file(&path);
    let before = snapshot(&path);
    let d = w.daemon(&[]);
    let mut pop = d.connect();
    pop.login_refused(&u.name, &u.pass, "SYS/PERM", "a mailbox alice may not read");
    pop.set_read_timeout(std::time::Duration::from_secs(10));
    pop.expecting("the close after a mailbox refusal");
    pop.expect_closed();
    let after = snapshot(&path);
    assert_bytes_eq(&after.0, &before.0, "refused mailbox");
    assert_eq!(after.1, before.1, "mtime of the refused mailbox");
}

#[test]
fn root_inetd_session_runs_as_the_user() {
    if !require_root("root_inetd_session_runs_as_the_user") {
        return;
    }
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let mbox = simple_mbox(2);
    w.write_mailbox(&u, &mbox.bytes());
    let (mut server, mut pop) = w.inetd(&[]);
    pop.greeting();
    pop.login(&u.name, &u.pass);
    assert_eq!(pop.stat().0, 2);

    // While the session is open, the server and anything it forked run as
    // alice: real, effective, saved and file-system ids, no group 0.
    let tree = process_tree(server.pid());
    let uids = proc_status_ids(server.pid(), "Uid").expect("the inetd server is running");
    assert_eq!(
        uids,
        vec![u.uid; 4],
        "Uid: of the session process {}",
        server.pid()
    );
    for pid in tree {
        let (Some(uids), Some(gids), Some(groups)) = (
            proc_status_ids(pid, "Uid"),
            proc_status_ids(pid, "Gid"),
            proc_status_ids(pid, "Groups"),
        ) else {
            continue; // gone meanwhile
        };
        assert_eq!(uids, vec![u.uid; 4], "Uid: of session process {pid}");
        assert_eq!(gids, vec![u.gid; 4], "Gid: of session process {pid}");
        assert!(
            !groups.contains(&0),
            "session process {pid} keeps group 0: {groups:?}"
        );
    }

    let (_, body) = pop.multi("RETR 1");
    assert_bytes_eq(&body.data(), &mbox.expected_retr(1), "RETR 1");
    pop.quit();
    let status = server.wait_exit(REPLY_TIMEOUT);
    assert!(status.success(), "inetd-mode pop3d exited with {status}");
}

/// A Debian-style spool (root:mail 2775, mailboxes user:mail 0660): the mail
/// user may not create files there by itself; the daemon keeps the spool's
/// group so that its dot-lock, expunge journal and UIDL record can be made,
/// exactly as setgid-mail delivery agents do. DELE + QUIT works, in daemon
/// and in inetd mode, and nothing but the UIDL record is left behind.
#[test]
fn debian_style_spool_allows_locks_and_expunge() {
    if !require_root("debian_style_spool_allows_locks_and_expunge") {
        return;
    }
    const MAIL_GID: u32 = 4343;
    for inetd in [false, true] {
        let mut w = World::new();
        let u = w.user("alice", "alice-pw");
        let mbox = simple_mbox(3);
        let path = w.write_mailbox(&u, &mbox.bytes());
        std::os::unix::fs::chown(&path, Some(u.uid), Some(MAIL_GID)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o660)).unwrap();
        std::os::unix::fs::chown(&w.spool, Some(0), Some(MAIL_GID)).unwrap();
        fs::set_permissions(&w.spool, fs::Permissions::from_mode(0o2775)).unwrap();

        let quit = |pop: &mut Pop3| {
            pop.login(&u.name, &u.pass);
            pop.ok("DELE 2");
            let r = pop.cmd("QUIT");
            assert!(r.starts_with("+OK"), "QUIT (inetd: {inetd}): {r}");
        };
        if inetd {
            let (mut server, mut pop) = w.inetd(&[]);
            pop.greeting();
            quit(&mut pop);
            server.wait_exit(REPLY_TIMEOUT);
        } else {
            let d = w.daemon(&[]);
            let mut pop = d.connect();
            quit(&mut pop);
        }
        assert_bytes_eq(
            &fs::read(&path).unwrap(),
            &mbox.bytes_without(&[2]),
            "mailbox after expunge",
        );
        let mut names: Vec<String> = fs::read_dir(&w.spool)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [".alice.pop3d-uids", "alice"],
            "spool (inetd: {inetd})"
        );
    }
}

/// The index file in a Debian-style spool, made by the root daemon with the
/// mail user's identity: alice's, mode 0600; a restarted daemon (a new
/// process, nothing in memory) serves the large mailbox from it reading
/// only a fraction of the mailbox, with the same answers; an expunge
/// rewrites it for the new file.
#[test]
fn root_daemon_keeps_the_index_file_across_restarts() {
    if !require_root("root_daemon_keeps_the_index_file_across_restarts") {
        return;
    }
    const MAIL_GID: u32 = 4343;
    let mut w = World::new();
    let u = w.user("alice", "alice-pw");
    let data = large_mbox(16_000);
    let size = data.len() as u64;
    let path = w.write_mailbox(&u, &data);
    std::os::unix::fs::chown(&path, Some(u.uid), Some(MAIL_GID)).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o660)).unwrap();
    std::os::unix::fs::chown(&w.spool, Some(0), Some(MAIL_GID)).unwrap();
    fs::set_permissions(&w.spool, fs::Permissions::from_mode(0o2775)).unwrap();
    age_file(&path);
    let index = w.spool.join(".alice.pop3d-index");
    // One daemon, one session: the bytes the daemon read for it, STAT, UIDL.
    let session = |dele: bool| {
        let d = w.daemon(&[]);
        let before = bytes_read(d.pid());
        let mut pop = d.connect();
        pop.login(&u.name, &u.pass);
        let stat = pop.stat();
        let uidl = pop.multi("UIDL").1.text();
        let read = bytes_read(d.pid()) - before;
        if dele {
            pop.ok("DELE 1");
        }
        pop.quit();
        // The index file a scan started is written after PASS is answered,
        // and finished after the end if the session is quicker; it appears
        // whole (renamed into place). Dropping `d` kills the daemon.
        let t = std::time::Instant::now();
        while !index.exists() && t.elapsed() < REPLY_TIMEOUT {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        (read, stat, uidl)
    };
    let (cold, stat, uidl) = session(false);
    assert!(cold >= size, "the first daemon read {cold} bytes of {size}");
    let owner = |what: &str| {
        let m = fs::metadata(&index).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!((m.uid(), m.mode() & 0o777), (u.uid, 0o600), "{what}");
    };
    owner("index file after the first session");
    let (read, stat2, uidl2) = session(true);
    assert_eq!((stat2, &uidl2), (stat, &uidl));
    assert!(
        read < size / 10,
        "a restarted daemon read {read} bytes of {size}"
    );
    owner("index file after an expunge");
    let (read, (n, _), uidl3) = session(false);
    assert_eq!(n, stat.0 - 1);
    let ids = |v: &[String]| -> Vec<String> {
        v.iter()
            .map(|l| l.split(' ').nth(1).expect("UIDL line").to_owned())
            .collect()
    };
    assert_eq!(ids(&uidl3), ids(&uidl)[1..], "UIDLs after DELE 1");
    assert!(
        read < size / 10,
        "after the expunge: read {read} bytes of {size}"
    );
}
