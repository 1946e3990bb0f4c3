//! Password hash schemes: accounts whose shadow hash was made at test time by
//! `mkpasswd` (Debian package whois, i.e. libxcrypt) with yescrypt, SHA-512,
//! SHA-256 and MD5 crypt log in with their password, and a password one
//! character off is refused with the one `[AUTH]` reply.

mod common;

use std::fs;

use common::*;

const AUTH_FAILED: &str = "-ERR [AUTH] Authentication failed";

fn scheme_logs_in(scheme: &str, prefix: &str) {
    let mut w = World::new();
    let pass = "Scheme-pw.1";
    let u = w.user_with_scheme("alice", pass, scheme);
    let shadow = fs::read_to_string(&w.shadow).unwrap();
    assert!(
        shadow.starts_with(&format!("alice:{prefix}")),
        "mkpasswd -m {scheme} did not make a {prefix} hash: {shadow:?}"
    );
    let mbox = simple_mbox(2);
    w.write_mailbox(&u, &mbox.bytes());
    let d = w.daemon(&[]);

    let mut pop = d.connect();
    pop.ok("USER alice");
    assert_eq!(
        pop.cmd("PASS Scheme-pw.2"),
        AUTH_FAILED,
        "{scheme}: wrong password"
    );
    pop.ok("USER alice");
    assert_eq!(
        pop.cmd("PASS Scheme-pw."),
        AUTH_FAILED,
        "{scheme}: truncated password"
    );
    pop.login("alice", pass);
    assert_eq!(
        pop.stat(),
        (2, mbox.expected_total(&[])),
        "{scheme}: STAT after login"
    );
    pop.quit();
}

#[test]
fn yescrypt_hash_logs_in() {
    scheme_logs_in("yescrypt", "$y$");
}

#[test]
fn sha512_crypt_hash_logs_in() {
    scheme_logs_in("sha-512", "$6$");
}

#[test]
fn sha256_crypt_hash_logs_in() {
    scheme_logs_in("sha-256", "$5$");
}

#[test]
fn md5_crypt_hash_logs_in() {
    scheme_logs_in("md5", "$1$");
}
