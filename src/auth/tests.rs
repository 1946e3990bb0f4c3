//! Tests of the whole module: golden vectors made at test time by the system's
//! libxcrypt (`mkpasswd` from Debian's `whois`, and `openssl passwd`), and every
//! policy refusal and file-format rule through [`authenticate`] on temporary
//! passwd/shadow files.

use super::crypt::{Verdict, verify};
use super::*;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

// ---------------------------------------------------------------- helpers

/// The passwords every scheme is checked with.
fn passwords() -> Vec<Vec<u8>> {
    let long200: String = (0..200u32)
        .map(|i| char::from(0x21 + ((i * 7) % 90) as u8))
        .collect();
    let long73: String = "0123456789abcdefghijklmnopqrstuvwxyz"
        .repeat(3)
        .chars()
        .take(73)
        .collect();
    vec![
        b"pass word with spaces".to_vec(),
        "pässwörd ✓ 日本".as_bytes().to_vec(),
        b"x".to_vec(),
        long73.into_bytes(),
        long200.into_bytes(),
    ]
}

/// `pw` with one byte changed (the last, or the given index).
fn changed(pw: &[u8], at: usize) -> Vec<u8> {
    let mut v = pw.to_vec();
    v[at] ^= 0x01;
    v
}

/// Runs a hash generator; fails the test (never skips) if it is missing.
fn generate(program: &str, package: &str, args: &[&str], pw: &[u8]) -> String {
    use std::os::unix::ffi::OsStrExt;
    let out = Command::new(program)
        .args(args)
        .arg(std::ffi::OsStr::from_bytes(pw))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{program}` ({e}): install the Debian package `{package}` \
                 (apt-get install {package}); the golden crypt vectors come from it"
            )
        });
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
}

fn mkpasswd(args: &[&str], pw: &[u8]) -> String {
    generate("mkpasswd", "whois", args, pw)
}

fn openssl_passwd(flag: &str, pw: &[u8]) -> String {
    generate("openssl", "openssl", &["passwd", flag], pw)
}

/// Right password matches; the password with its first or last byte changed,
/// or one byte shorter, does not.
fn assert_verifies(hash: &str, pw: &[u8]) {
    assert_eq!(verify(hash, pw), Verdict::Match, "{hash}");
    assert_eq!(
        verify(hash, &changed(pw, pw.len() - 1)),
        Verdict::Mismatch,
        "{hash}"
    );
    assert_eq!(verify(hash, &changed(pw, 0)), Verdict::Mismatch, "{hash}");
    if pw.len() > 1 {
        assert_eq!(
            verify(hash, &pw[..pw.len() - 1]),
            Verdict::Mismatch,
            "{hash}"
        );
    }
}

/// Temporary passwd and shadow files, removed on drop.
struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new(passwd: &[u8], shadow: &[u8]) -> Fixture {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pop3d-auth-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("passwd"), passwd).unwrap();
        std::fs::write(dir.join("shadow"), shadow).unwrap();
        Fixture { dir }
    }

    fn settings(&self) -> AuthSettings {
        AuthSettings {
            passwd: self.dir.join("passwd"),
            shadow: self.dir.join("shadow"),
            only_uid: None,
        }
    }

    fn auth(&self, user: &str, pass: &str) -> Result<Account, Refusal> {
        authenticate(&self.settings(), user.as_bytes(), pass.as_bytes())
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Fixed vectors (Debian 12 mkpasswd) used by the policy tests.
const PW_A: &str = "correct horse battery";
const SHA512_A: &str = "$6$M/gVC3yZxx44nIYR$.02//v/Dr5p3b79bIdWe79GPQgbP9cKHgWDa6L7Bnv9eff1iCw2q81M1MhtzKz1jbTSYpiHHQT/cPWl78xNDX0";
const MD5_A: &str = "$1$Vf9g0DIu$H9qwNuhmZ4/FeuHVlp7ji1";
const YESCRYPT_A: &str =
    "$y$j9T$cT7zPn9VzXtyJ3AtnjR7A0$LIj7h5PY2ZojCJCC3Wt7G9Jm2CIshVcBzpkwi54tbu6";
const PW_B: &str = "pässwörd ✓ 日本";
const MD5_B: &str = "$1$/84JbG/A$DksKOLC9KFw7UQdngM7gM/";

const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
    daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
    alice:x:1000:1001:Alice,,,:/home/alice:/bin/bash\n";

fn shadow_with(alice: &str) -> String {
    format!(
        "root:{MD5_A}:19000:0:99999:7:::\n\
         daemon:*:19000:0:99999:7:::\n\
         alice:{alice}:19000:0:99999:7:::\n"
    )
}

fn alice() -> Account {
    Account {
        name: "alice".to_owned(),
        uid: 1000,
        gid: 1001,
        home: PathBuf::from("/home/alice"),
    }
}

// ------------------------------------------------ golden vectors (system)

#[test]
fn mkpasswd_every_scheme_every_password() {
    for method in ["yescrypt", "sha-512", "sha-256", "md5"] {
        for pw in passwords() {
            let hash = mkpasswd(&["-m", method], &pw);
            assert_verifies(&hash, &pw);
        }
    }
}

#[test]
fn mkpasswd_rounds_and_costs() {
    let pw = b"rounds test";
    for (method, rounds, expect) in [
        ("sha-512", "10000", "$6$rounds=10000$"),
        ("sha-512", "1000", "$6$rounds=1000$"),
        ("sha-512", "999", "$6$rounds=1000$"), // libxcrypt raises it to the minimum
        ("sha-512", "5000", "$6$"),            // the default is not written
        ("sha-256", "1000", "$5$rounds=1000$"),
        ("sha-256", "20000", "$5$rounds=20000$"),
        ("yescrypt", "3", "$y$j7T$"),
        ("yescrypt", "7", "$y$jBT$"),
    ] {
        let hash = mkpasswd(&["-m", method, "-R", rounds], pw);
        assert!(hash.starts_with(expect), "{hash} for {method} -R {rounds}");
        assert_verifies(&hash, pw);
    }
}

#[test]
fn openssl_passwd_md5_sha256_sha512() {
    for flag in ["-1", "-5", "-6"] {
        for pw in passwords() {
            let hash = openssl_passwd(flag, &pw);
            assert_verifies(&hash, &pw);
        }
    }
}

#[test]
fn mkpasswd_hash_through_authenticate() {
    let pw = passwords().remove(1);
    let hash = mkpasswd(&["-m", "yescrypt"], &pw);
    let f = Fixture::new(PASSWD.as_bytes(), shadow_with(&hash).as_bytes());
    let s = f.settings();
    assert_eq!(authenticate(&s, b"alice", &pw), Ok(alice()));
    assert_eq!(
        authenticate(&s, b"alice", &changed(&pw, 3)),
        Err(Refusal::WrongPassword)
    );
}

// ------------------------------------------------------ fixed vectors

#[test]
fn fixed_vectors_every_scheme() {
    let p200 = passwords().remove(4);
    let p200 = std::str::from_utf8(&p200).unwrap().to_owned();
    for (pw, hash) in [
        (PW_A, YESCRYPT_A),
        (
            PW_B,
            "$y$j9T$GQIIknK.0emY23Adr49hC.$CqLjOGU.YVeKuxf3mYLqW/YI1TKRECdb/dmlmLqxDF5",
        ),
        (
            p200.as_str(),
            "$y$j9T$FGW/R9RTbHKzaiHMrlDw80$HTSAylOCeOcMIzAYm7WmV2.aw0ZyQlUYC1Lhs/XozH8",
        ),
        (PW_A, SHA512_A),
        (
            p200.as_str(),
            "$6$3.UAhgvWV7qTWdC/$h0mbkPzedgDsoz8p9wRsZ78eom.KwA1iDp0U.DVM8.pKYuV4.YT976dUx9Zl2c5TU9f4EL7GKkp1.8g.B8vY5.",
        ),
        (
            "x",
            "$6$rounds=10000$ZEG7yPpLVt7PGk7e$qDcAeap6FWRIthDyzDWxaqemevx7I1pBQYjTp9PUIe6YSMoHwfRCPQRUbtW9ySzjD.dVxJ79AfLKZwiVgj3VT0",
        ),
        (
            p200.as_str(),
            "$5$iKrNzlS4gLCmet/A$klvYq4iw9xGH6lXs4wvlOWthpEDRiWthIMU2kqfVW8A",
        ),
        (
            "x",
            "$5$rounds=1000$YTmVyfANX5QHwi7E$a3qD1..yU0RCPq1ItOzhsSQHwPRUK6LjosmT/t1cyW0",
        ),
        (
            "pass word",
            "$5$wXHldV/.4Tb6l4cI$qrqg1lOtAqprq4qPtRqHURUufYChLZ515cxW/OEIOX9",
        ),
        (PW_A, MD5_A),
        (PW_B, MD5_B),
        (p200.as_str(), "$1$dGdybwgA$4oROwUWZVjcKkEyUIVS9r."),
        ("abc", "$1$o3dMAfCy$wFJ.1a19D/l/wkOPlJf3U/"),
        (
            "abc",
            "$6$abcdefghijklmnop$zR649rx2TbTWD6FUKFWRMZ1mqJ8nfOUWonL0TTvy/seH9/5KKhgTK/cSwi9YhSGtvlJ5DYnv1tp6JCafhMU5.1",
        ),
    ] {
        assert_verifies(hash, pw.as_bytes());
    }
}

// ------------------------------------------------------------- policy

#[test]
fn accepts_right_password_via_shadow() {
    let f = Fixture::new(PASSWD.as_bytes(), shadow_with(SHA512_A).as_bytes());
    assert_eq!(f.auth("alice", PW_A), Ok(alice()));
}

#[test]
fn wrong_password() {
    let f = Fixture::new(PASSWD.as_bytes(), shadow_with(SHA512_A).as_bytes());
    assert_eq!(f.auth("alice", PW_B), Err(Refusal::WrongPassword));
    assert_eq!(
        f.auth("alice", "correct horse batterY"),
        Err(Refusal::WrongPassword)
    );
    assert_eq!(
        f.auth("Alice", PW_A),
        Err(Refusal::UnknownUser),
        "names are case-sensitive"
    );
}

#[test]
fn hash_in_passwd_needs_no_shadow() {
    let passwd = format!("alice:{MD5_A}:1000:1001:Alice,,,:/home/alice:/bin/bash\n");
    let f = Fixture::new(passwd.as_bytes(), b"");
    std::fs::remove_file(f.dir.join("shadow")).unwrap();
    assert_eq!(f.auth("alice", PW_A), Ok(alice()));
    assert_eq!(f.auth("alice", PW_B), Err(Refusal::WrongPassword));
    assert_eq!(f.auth("bob", PW_A), Err(Refusal::UnknownUser));
}

#[test]
fn unknown_user() {
    let f = Fixture::new(PASSWD.as_bytes(), shadow_with(SHA512_A).as_bytes());
    assert_eq!(f.auth("bob", PW_A), Err(Refusal::UnknownUser));
    // A shadow entry alone is not an account.
    let f = Fixture::new(b"", shadow_with(SHA512_A).as_bytes());
    assert_eq!(f.auth("alice", PW_A), Err(Refusal::UnknownUser));
    // Empty files: the dummy is the default yescrypt one.
    let f = Fixture::new(b"", b"");
    assert_eq!(f.auth("alice", PW_A), Err(Refusal::UnknownUser));
}

#[test]
fn no_shadow_entry() {
    let f = Fixture::new(
        PASSWD.as_bytes(),
        format!("bob:{MD5_A}:::::::\n").as_bytes(),
    );
    assert_eq!(f.auth("alice", PW_A), Err(Refusal::NoShadowEntry));
}

#[test]
fn empty_hash_refuses_every_password() {
    let f = Fixture::new(PASSWD.as_bytes(), shadow_with("").as_bytes());
    assert_eq!(f.auth("alice", PW_A), Err(Refusal::EmptyHash));
    assert_eq!(f.auth("alice", "anything"), Err(Refusal::EmptyHash));
    let f = Fixture::new(b"alice::1000:1001::/home/alice:/bin/sh\n", b"");
    assert_eq!(f.auth("alice", "anything"), Err(Refusal::EmptyHash));
}

#[test]
fn locked_hashes() {
    for locked in [
        "!".to_owned(),
        "!!".to_owned(),
        "*".to_owned(),
        "*LK*".to_owned(),
        format!("!{SHA512_A}"),
        format!("*{MD5_A}"),
    ] {
        let f = Fixture::new(PASSWD.as_bytes(), shadow_with(&locked).as_bytes());
        assert_eq!(f.auth("alice", PW_A), Err(Refusal::Locked), "{locked}");
    }
    let f = Fixture::new(b"alice:*:1000:1001::/home/alice:/bin/sh\n", b"");
    assert_eq!(f.auth("alice", PW_A), Err(Refusal::Locked));
}

#[test]
fn root_is_never_served() {
    let passwd = format!("{PASSWD}toor:x:0:0:alias:/root:/bin/sh\n");
    let shadow = format!("{}toor:{MD5_A}:::::::\n", shadow_with(SHA512_A));
    let f = Fixture::new(passwd.as_bytes(), shadow.as_bytes());
    assert_eq!(f.auth("root", PW_A), Err(Refusal::Root));
    assert_eq!(f.auth("toor", PW_A), Err(Refusal::Root));
    let mut s = f.settings();
    s.only_uid = Some(0);
    assert_eq!(
        authenticate(&s, b"root", PW_A.as_bytes()),
        Err(Refusal::Root)
    );
}

#[test]
fn only_uid() {
    let f = Fixture::new(PASSWD.as_bytes(), shadow_with(SHA512_A).as_bytes());
    let mut s = f.settings();
    s.only_uid = Some(1001);
    assert_eq!(
        authenticate(&s, b"alice", PW_A.as_bytes()),
        Err(Refusal::UidNotServed)
    );
    s.only_uid = Some(1000);
    assert_eq!(authenticate(&s, b"alice", PW_A.as_bytes()), Ok(alice()));
}

#[test]
fn unsupported_and_malformed_schemes() {
    for (hash, id) in [
        ("$sha1$40000$salt$hash", "$sha1$"),
        ("$md5$salt$$hash", "$md5$"),
        ("abJnggxhB/yWIabJnggxhB/yWI", "unknown"),
        (
            "$2b$25$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
            "$2b$ (cost above limit)",
        ),
        ("_J9..$abc", "BSDi DES (bad salt)"),
        ("$6$rounds=10$salt$hash", "$6$ (rounds= out of range)"),
        ("$y$jZT$abcd$hash", "$y$ (cost above limit)"),
    ] {
        let f = Fixture::new(PASSWD.as_bytes(), shadow_with(hash).as_bytes());
        let r = f.auth("alice", PW_A);
        assert_eq!(r, Err(Refusal::UnsupportedScheme(id.to_owned())), "{hash}");
        let shown = r.unwrap_err().to_string();
        assert_eq!(shown, format!("unsupported hash scheme {id}"));
    }
}

#[test]
fn bad_input() {
    let f = Fixture::new(PASSWD.as_bytes(), shadow_with(SHA512_A).as_bytes());
    let s = f.settings();
    let long_name = "a".repeat(crate::config::USER_MAX + 1);
    let long_pass = vec![b'p'; PASSWORD_MAX + 1];
    let pw = PW_A.as_bytes();
    for (user, pass) in [
        (&b""[..], pw),
        (b"alice", b""),
        (b"ali\0ce", pw),
        (b"alice\0", pw),
        (b"alice", b"correct\0horse"),
        (b"../alice", pw),
        (b"al/ice", pw),
        (b".alice", pw),
        (b"alice:x", pw),
        (b"alice\n", pw),
        (b"alice\r", pw),
        (b"al\xffice", pw),
        (long_name.as_bytes(), pw),
        (b"alice", &long_pass),
    ] {
        assert_eq!(
            authenticate(&s, user, pass),
            Err(Refusal::BadInput),
            "{:?}",
            String::from_utf8_lossy(user)
        );
    }
    // At the limits the input is accepted (and the user is unknown).
    let max_name = "a".repeat(crate::config::USER_MAX);
    assert_eq!(
        authenticate(&s, max_name.as_bytes(), &vec![b'p'; PASSWORD_MAX]),
        Err(Refusal::UnknownUser)
    );
}

// --------------------------------------------------------- file format

#[test]
fn malformed_lines_never_authenticate() {
    let passwd = "alice:x:1000:1001:Alice:/home/alice\n\
        alice:x:1000:1001:Alice:/home/alice:/bin/sh:extra\n\
        alice:x:10o0:1001:Alice:/home/alice:/bin/sh\n\
        alice:x:1000:-1:Alice:/home/alice:/bin/sh\n\
        alice:x:4294967296:1001:Alice:/home/alice:/bin/sh\n\
        +alice:x:1000:1001:Alice:/home/alice:/bin/sh\n\
        \n\
        garbage\n";
    let f = Fixture::new(passwd.as_bytes(), shadow_with(SHA512_A).as_bytes());
    assert_eq!(f.auth("alice", PW_A), Err(Refusal::UnknownUser));

    let shadow = format!(
        "alice:{SHA512_A}:19000:0:99999:7::\n\
         alice:{SHA512_A}:19000:0:99999:7::::\n\
         alice:{SHA512_A}:19x00:0:99999:7:::\n"
    );
    let f = Fixture::new(PASSWD.as_bytes(), shadow.as_bytes());
    assert_eq!(f.auth("alice", PW_A), Err(Refusal::NoShadowEntry));

    // A well-formed line after the bad ones still counts.
    let f = Fixture::new(
        format!("{passwd}{PASSWD}").as_bytes(),
        format!("{shadow}{}", shadow_with(SHA512_A)).as_bytes(),
    );
    assert_eq!(f.auth("alice", PW_A), Ok(alice()));
}

#[test]
fn one_mib_lines_are_skipped() {
    let big = "A".repeat(1 << 20);
    let passwd = format!(
        "alice:x:1000:1001:{big}:/home/alice:/bin/sh\n\
         bob:x:1002:1002::/home/bob:/bin/sh\n"
    );
    let shadow = format!(
        "bob:{MD5_A}:::::::{big}\n\
         alice:{SHA512_A}:::::::\n\
         bob:{MD5_B}:::::::\n"
    );
    let f = Fixture::new(passwd.as_bytes(), shadow.as_bytes());
    assert_eq!(f.auth("alice", PW_A), Err(Refusal::UnknownUser));
    // bob's first shadow line is too long, so the second one is his.
    assert_eq!(f.auth("bob", PW_A), Err(Refusal::WrongPassword));
    assert_eq!(f.auth("bob", PW_B).map(|a| a.uid), Ok(1002));
    // A huge file without any newline.
    let f = Fixture::new(big.repeat(3).as_bytes(), big.as_bytes());
    assert_eq!(f.auth("alice", PW_A), Err(Refusal::UnknownUser));
}

#[test]
fn nul_bytes_make_a_line_malformed() {
    let passwd = "alice:x:1000:1001:Al\0ice:/home/alice:/bin/sh\n";
    let f = Fixture::new(passwd.as_bytes(), shadow_with(SHA512_A).as_bytes());
    assert_eq!(f.auth("alice", PW_A), Err(Refusal::UnknownUser));
    let shadow = format!("alice:{SHA512_A}:19000:0:99999:7::\0:\n");
    let f = Fixture::new(PASSWD.as_bytes(), shadow.as_bytes());
    assert_eq!(f.auth("alice", PW_A), Err(Refusal::NoShadowEntry));
}

#[test]
fn duplicate_names_first_wins() {
    let passwd = format!("{PASSWD}alice:x:2000:2000::/home/alice2:/bin/sh\n");
    let shadow = format!("alice:{MD5_B}:::::::\n{}", shadow_with(MD5_A));
    let f = Fixture::new(passwd.as_bytes(), shadow.as_bytes());
    assert_eq!(f.auth("alice", PW_B), Ok(alice()));
    assert_eq!(f.auth("alice", PW_A), Err(Refusal::WrongPassword));
}

#[test]
fn crlf_files_work() {
    // The CR ends up in the last field (shell, reserved), which is not used.
    let passwd = PASSWD.replace('\n', "\r\n");
    let shadow = shadow_with(SHA512_A).replace('\n', "\r\n");
    let f = Fixture::new(passwd.as_bytes(), shadow.as_bytes());
    assert_eq!(f.auth("alice", PW_A), Ok(alice()));
    assert_eq!(f.auth("alice", PW_B), Err(Refusal::WrongPassword));
    // An inline passwd hash is not the last field: no stripping is needed.
    let passwd = format!("alice:{MD5_A}:1000:1001:Alice,,,:/home/alice:/bin/bash\r\n");
    let f = Fixture::new(passwd.as_bytes(), b"");
    assert_eq!(f.auth("alice", PW_A), Ok(alice()));
    // A shadow file with only 2 fields per line (and CRLF) is malformed anyway.
    let f = Fixture::new(
        PASSWD.as_bytes(),
        format!("alice:{SHA512_A}\r\n").as_bytes(),
    );
    assert_eq!(f.auth("alice", PW_A), Err(Refusal::NoShadowEntry));
}

#[test]
fn no_final_newline() {
    let passwd = PASSWD.trim_end();
    let shadow = shadow_with(SHA512_A);
    let f = Fixture::new(passwd.as_bytes(), shadow.trim_end().as_bytes());
    assert_eq!(f.auth("alice", PW_A), Ok(alice()));
}

#[test]
fn unreadable_files() {
    let f = Fixture::new(PASSWD.as_bytes(), shadow_with(SHA512_A).as_bytes());
    let shadow = f.dir.join("shadow");
    std::fs::remove_file(&shadow).unwrap();
    match f.auth("alice", PW_A) {
        Err(Refusal::Unreadable(what)) => {
            assert!(what.starts_with(&shadow.display().to_string()), "{what}");
            assert!(what.ends_with("No such file or directory"), "{what}");
        }
        other => panic!("{other:?}"),
    }
    // Unknown users are still just unknown.
    assert_eq!(f.auth("bob", PW_A), Err(Refusal::UnknownUser));
    std::fs::remove_file(f.dir.join("passwd")).unwrap();
    assert!(matches!(f.auth("alice", PW_A), Err(Refusal::Unreadable(_))));
}

#[test]
fn check_files_messages() {
    let f = Fixture::new(PASSWD.as_bytes(), shadow_with(SHA512_A).as_bytes());
    assert_eq!(check_files(&f.settings()), Ok(()));

    let shadow = f.dir.join("shadow");
    let mut s = f.settings();
    s.shadow = f.dir.join("missing");
    let msg = check_files(&s).unwrap_err();
    assert_eq!(
        msg,
        format!(
            "cannot read {}: No such file or directory (pass --shadow FILE)",
            s.shadow.display()
        )
    );

    let mut s = f.settings();
    s.passwd = f.dir.clone();
    let msg = check_files(&s).unwrap_err();
    assert!(msg.starts_with("cannot read "), "{msg}");
    assert!(msg.contains("directory"), "{msg}");
    assert!(!msg.contains('\n'));

    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shadow, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&shadow).is_err() {
        // Not running as root: the permission check bites.
        let msg = check_files(&f.settings()).unwrap_err();
        assert_eq!(
            msg,
            format!(
                "cannot read {}: Permission denied (run as root, or pass --shadow FILE)",
                shadow.display()
            )
        );
    }
}

#[test]
fn display_is_a_short_phrase_without_secrets() {
    for (r, text) in [
        (Refusal::UnknownUser, "unknown user"),
        (Refusal::NoShadowEntry, "no shadow entry"),
        (Refusal::WrongPassword, "wrong password"),
        (Refusal::EmptyHash, "empty password hash"),
        (Refusal::Locked, "locked account"),
        (Refusal::Root, "root login refused"),
        (Refusal::UidNotServed, "uid not served"),
        (
            Refusal::UnsupportedScheme("$2b$".to_owned()),
            "unsupported hash scheme $2b$",
        ),
        (Refusal::BadInput, "invalid user name or password"),
        (
            Refusal::Unreadable("/etc/shadow: Permission denied".to_owned()),
            "cannot read /etc/shadow: Permission denied",
        ),
    ] {
        assert_eq!(r.to_string(), text);
    }
    // Whatever the stored hash, the refusal names only the scheme.
    let f = Fixture::new(
        PASSWD.as_bytes(),
        shadow_with("$sha1$40000$abcdefghijklmnopqrstuuSECRETSECRETSECRETSECRETSECRETSE")
            .as_bytes(),
    );
    let shown = f.auth("alice", PW_A).unwrap_err().to_string();
    assert_eq!(shown, "unsupported hash scheme $sha1$");
}

#[test]
fn dummy_considers_inline_passwd_hashes() {
    let passwd = format!("carol:{YESCRYPT_A}:1002:1002::/home/carol:/bin/sh\n");
    let mut c = accounts::Costliest::default();
    accounts::scan_passwd(passwd.as_bytes(), b"nobody", &mut c).unwrap();
    assert_eq!(c.dummy_target(), YESCRYPT_A);
    accounts::scan_shadow(shadow_with(SHA512_A).as_bytes(), b"nobody", &mut c).unwrap();
    assert_eq!(
        c.dummy_target(),
        YESCRYPT_A,
        "yescrypt j9T costs more than $6$"
    );
}
