//! Virtual users through the real binary: `--users FILE` (Dovecot passwd-file
//! format) replaces passwd and shadow; the uid and gid in the file are the
//! identity used for the mailbox, so all users' mailboxes may belong to one
//! service account; `{SCHEME}` prefixes are understood; without root only the
//! server's own uid is served.

mod auth_common;

use auth_common::{REFUSED, Server, World, run_to_end};

/// libxcrypt hashes of "r" and of "alice's secret-PW 1".
const R_YESCRYPT: &str =
    "$y$j7T$Kzfma2AuB.6jPjTyj/iJV1$m8HbjEvKfvThF0M6v0NfkLhMpZJrxuiQAzuPesMaAn6";
const R_SHA512: &str = "$6$rounds=1000$RzGidBZrPBXHTCMJ$xgyJsH3.deQ71t/Ogz2DKwC3YXp6rcYrzUUh.evKTso77kbSIfaR4txa5d.1LWGPk89Z9qzc6.w5ZTyOxPoHK.";
const R_BCRYPT: &str = "$2y$05$IBIil4Xzy6pklLPPPW5k7.5veh0l/radjbhITqbiDSXmy88mRCpS2";
const ALICE_PW: &str = "alice's secret-PW 1";
const ALICE_HASH: &str = "$6$rounds=1000$Ld8E9I/jLJpLWa2c$dobWoAXB/vkbnf/bWXqxqckShtdVHlqWSn799lUqdL.1QIbZbVB4MfsprrfH09FMOMPXfALGC8t9DSJWfdmaY/";

fn users_args(w: &World) -> Vec<String> {
    let mut a = w.args();
    a.extend([
        "--users".to_owned(),
        w.path("users").display().to_string(),
        "--fail-delay".to_owned(),
        "0".to_owned(),
        // passwd and shadow that would let "alice" in: they must be ignored.
        "--passwd".to_owned(),
        w.path("passwd").display().to_string(),
        "--shadow".to_owned(),
        w.path("shadow").display().to_string(),
    ]);
    a
}

#[test]
fn virtual_users_log_in_with_the_service_identity() {
    let w = World::new("auth-users");
    let svc = w.uid;
    w.write(
        "users",
        &format!(
            "# Dovecot passwd-file: user:password:uid:gid:gecos:home:shell:extra\n\
             ann:{{SHA512-CRYPT}}{R_SHA512}:{svc}:{svc}::/srv/mail/ann::\n\
             ben:{R_YESCRYPT}:{svc}:{svc}::/srv/mail/ben:\n\
             cat:{{BLF-CRYPT}}{R_BCRYPT}:{svc}:{svc}\n\
             dan:{{PLAIN}}r:{svc}:{svc}::/srv/mail/dan::\n\
             eve:{R_SHA512}:{}:{}::/srv/mail/eve::\n",
            svc + 1,
            svc + 1
        ),
    );
    w.write("passwd", &w.passwd_line("alice"));
    w.write("shadow", &format!("alice:{ALICE_HASH}:::::::\n"));
    // Every mailbox belongs to the one service account.
    w.mailbox("ann", 2, svc);
    w.mailbox("ben", 1, svc);
    w.mailbox("alice", 1, svc);
    let server = Server::start(&users_args(&w));

    let mut c = server.connect();
    assert_eq!(c.login("ann", "r"), "+OK 2 messages (44 octets)");
    assert_eq!(c.cmd("STAT"), "+OK 2 44");
    c.quit();
    let mut c = server.connect();
    assert_eq!(c.login("ben", "r"), "+OK 1 message (22 octets)");
    c.quit();
    let mut c = server.connect();
    assert_eq!(c.login("cat", "r"), "+OK 0 messages (0 octets)");
    c.quit();

    // Refused: wrong password, a non-crypt scheme, a system account.
    let mut c = server.connect();
    assert_eq!(c.login("ann", "R"), REFUSED);
    assert_eq!(c.login("dan", "r"), REFUSED);
    assert_eq!(c.login("alice", ALICE_PW), REFUSED);
    assert!(c.closed());

    // Another uid: served only when the server runs as root.
    let mut c = server.connect();
    let reply = c.login("eve", "r");
    let is_root = auth_common::own_uid() == 0;
    if is_root {
        assert!(reply.starts_with("+OK"), "{reply}");
    } else {
        assert_eq!(reply, REFUSED);
    }
    c.quit();

    let log = server.wait_log("authentication failed for", 3 + usize::from(!is_root));
    assert!(
        log.contains(
            "authentication failed for dan from 127.0.0.1: unsupported hash scheme {PLAIN}"
        ),
        "{log}"
    );
    assert!(
        log.contains("authentication failed for UNKNOWN USER from 127.0.0.1: unknown user"),
        "{log}"
    );
    if !is_root {
        assert!(
            log.contains("authentication failed for eve from 127.0.0.1: uid not served"),
            "{log}"
        );
    }
}

#[test]
fn users_file_needs_no_system_files_and_must_exist() {
    let w = World::new("auth-users-files");
    let svc = w.uid;
    w.write(
        "users",
        &format!("ann:{R_SHA512}:{svc}:{svc}::/srv/mail/ann::\n"),
    );
    // No passwd or shadow at all: fine with --users.
    let server = Server::start(&users_args(&w));
    let mut c = server.connect();
    assert_eq!(c.login("ann", "r"), "+OK 0 messages (0 octets)");
    c.quit();
    drop(server);

    auth_common::remove(&w.path("users"));
    let (ok, stderr) = run_to_end(&users_args(&w));
    assert!(!ok);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("No such file or directory (pass --users FILE)"),
        "{stderr}"
    );
}
