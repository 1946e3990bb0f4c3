//! Tests of the whole module: golden vectors made at test time by the system's
//! libxcrypt (`mkpasswd` from Debian's `whois`, and `openssl passwd`), fixed
//! libxcrypt vectors for runs without it, and every policy refusal, file-format
//! rule and the dummy verification through [`authenticate`] on temporary
//! passwd/shadow/users files.

use super::crypt::{Verdict, verify};
use super::*;
use std::cell::RefCell;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

// ------------------------------------------------------------ test hook

thread_local! {
    /// (scheme id, estimated cost) of each verification run on this thread.
    static VERIFIED: RefCell<Vec<(String, Option<u64>)>> = const { RefCell::new(Vec::new()) };
}

/// Called by `verification` for every verification, real or dummy.
pub(super) fn record_verification(hash: &str) {
    VERIFIED.with(|v| {
        v.borrow_mut()
            .push((crypt::scheme_id(hash), crypt::cost(hash)))
    });
}

/// The verifications run on this thread since the last call.
fn verified() -> Vec<(String, Option<u64>)> {
    VERIFIED.with(|v| std::mem::take(&mut *v.borrow_mut()))
}

// ---------------------------------------------------------------- helpers

/// The 73-byte test password (one past bcrypt's 72).
const P73: &str = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0";
/// The 200-byte test password: printable ASCII, no spaces.
const P200: &str = "!(/6=DKRY`gnu\")07>ELSZahov#*18?FMT[bipw$+29@GNU\\cjqx%,3:AHOV]dkry&-4;BIPW^elsz'.5<CJQX_fmt!(/6=DKRY`gnu\")07>ELSZahov#*18?FMT[bipw$+29@GNU\\cjqx%,3:AHOV]dkry&-4;BIPW^elsz'.5<CJQX_fmt!(/6=DKRY`gnu\")07>EL";
/// A password with spaces.
const SPACES: &str = "pass word with spaces";
/// Non-ASCII UTF-8.
const UTF8: &str = "pässwörd ✓ 日本";
/// One byte.
const ONE: &str = "x";

/// The passwords every scheme is checked with.
fn passwords() -> Vec<Vec<u8>> {
    [SPACES, UTF8, ONE, P73, P200]
        .iter()
        .map(|p| p.as_bytes().to_vec())
        .collect()
}

/// How many leading password bytes the scheme of `hash` uses: bcrypt 72,
/// traditional DES 8, the others all.
fn significant(hash: &str) -> usize {
    if hash.starts_with("$2") {
        72
    } else if hash.len() == 13 && !hash.starts_with('$') {
        8
    } else {
        usize::MAX
    }
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
/// or one byte shorter, does not, unless the change lies beyond the bytes the
/// scheme uses (bcrypt: 72, DES: 8), in which case it still matches.
fn assert_verifies(hash: &str, pw: &[u8]) {
    let used = significant(hash);
    let expect = |at: usize| {
        if at < used {
            Verdict::Mismatch
        } else {
            Verdict::Match
        }
    };
    assert_eq!(verify(hash, pw), Verdict::Match, "{hash}");
    let last = pw.len() - 1;
    assert_eq!(verify(hash, &changed(pw, last)), expect(last), "{hash}");
    assert_eq!(verify(hash, &changed(pw, 0)), Verdict::Mismatch, "{hash}");
    if pw.len() > 1 {
        assert_eq!(verify(hash, &pw[..last]), expect(last), "{hash}");
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
            users: None,
            only_uid: None,
        }
    }

    /// Settings that use `users` (written into the fixture) instead.
    fn users(&self, users: &str) -> AuthSettings {
        std::fs::write(self.dir.join("users"), users).unwrap();
        AuthSettings {
            users: Some(self.dir.join("users")),
            ..self.settings()
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

/// Every `mkpasswd -m` method the scheme table covers, with the cheapest
/// rounds setting libxcrypt accepts (costs have their own test below).
const METHODS: &[(&str, &[&str])] = &[
    ("yescrypt", &["-R", "1"]),
    ("gost-yescrypt", &["-R", "1"]),
    ("scrypt", &["-R", "6"]),
    ("bcrypt", &["-R", "4"]),
    ("bcrypt-a", &["-R", "4"]),
    ("sha512crypt", &["-R", "1000"]),
    ("sha256crypt", &["-R", "1000"]),
    ("md5crypt", &[]),
    ("descrypt", &[]),
    ("bsdicrypt", &["-R", "1"]),
];

#[test]
fn mkpasswd_every_scheme_every_password() {
    for (method, rounds) in METHODS {
        for pw in passwords() {
            let mut args = vec!["-m", method];
            args.extend_from_slice(rounds);
            let hash = mkpasswd(&args, &pw);
            assert_verifies(&hash, &pw);
        }
    }
}

#[test]
fn mkpasswd_default_costs() {
    // Each method at libxcrypt's default cost, as `passwd` would write it.
    for (method, prefix) in [
        ("yescrypt", "$y$j9T$"),
        ("gost-yescrypt", "$gy$j9T$"),
        ("scrypt", "$7$CU..../...."),
        ("bcrypt", "$2b$05$"),
        ("bcrypt-a", "$2a$05$"),
        ("sha512crypt", "$6$"),
        ("sha256crypt", "$5$"),
        ("md5crypt", "$1$"),
        ("bsdicrypt", "_J9.."),
    ] {
        let pw = UTF8.as_bytes();
        let hash = mkpasswd(&["-m", method], pw);
        assert!(hash.starts_with(prefix), "{hash} for {method}");
        assert_verifies(&hash, pw);
    }
}

#[test]
fn bcrypt_truncation_matches_libxcrypt() {
    // libxcrypt decides, for the same salt, which longer passwords give the
    // same string; our verdict must agree every time.
    for method in ["bcrypt", "bcrypt-a"] {
        for pw in [P73.as_bytes(), P200.as_bytes()] {
            let hash = mkpasswd(&["-m", method, "-R", "4"], pw);
            let salt = &hash[7..29];
            let mut variants = vec![
                pw[..72].to_vec(),
                changed(pw, 72),
                changed(pw, pw.len() - 1),
                pw[..71].to_vec(),
                changed(pw, 71),
                changed(pw, 0),
            ];
            variants.push([pw, b"more"].concat());
            for v in variants {
                let theirs = mkpasswd(&["-m", method, "-R", "4", "-S", salt], &v);
                let same = theirs == hash;
                let ours = verify(&hash, &v);
                assert_eq!(ours == Verdict::Match, same, "{hash} {}", v.len());
            }
            // And the cut-off is where bcrypt documents it.
            assert_eq!(verify(&hash, &pw[..72]), Verdict::Match);
            assert_eq!(verify(&hash, &pw[..71]), Verdict::Mismatch);
        }
    }
}

#[test]
fn descrypt_eight_bytes_match_libxcrypt() {
    for pw in [P73.as_bytes(), SPACES.as_bytes()] {
        let hash = mkpasswd(&["-m", "descrypt"], pw);
        for v in [
            pw[..8].to_vec(),
            changed(pw, 8),
            pw[..7].to_vec(),
            changed(pw, 7),
        ] {
            let theirs = mkpasswd(&["-m", "descrypt", "-S", &hash[..2]], &v);
            assert_eq!(
                verify(&hash, &v) == Verdict::Match,
                theirs == hash,
                "{hash}"
            );
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
        ("gost-yescrypt", "7", "$gy$jBT$"),
        ("scrypt", "9", "$7$EU..../...."),
        ("bcrypt", "8", "$2b$08$"),
        ("bcrypt-a", "10", "$2a$10$"),
        ("bsdicrypt", "5000", "_"),
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

/// libxcrypt strings (Debian 12 `mkpasswd`) for the five test passwords in
/// every scheme, so that runs without `mkpasswd` (and the aarch64 run under
/// qemu) check every scheme too.
const FIXED: &[(&str, &str)] = &[
    (
        SPACES,
        "$y$j7T$F6TwmtLHR2lHQ0/KLiiID/$agPLEi8wRsGlgsahUfjgzP02NAKPI5YftM/AEUwO/P/",
    ),
    (
        UTF8,
        "$y$j7T$9ztp3d3X7Gnv5yrMb3YX..$Cr9KcACKSVzGC4hIykR3lYc8sTAOwf1mLcEzA8psaF8",
    ),
    (
        ONE,
        "$y$j7T$uJGaFATtO3YrVY3u46zeX0$5C3GLBwWQZCebCPyDo4qMfJUsjb35TMo0t9gMqgsuH0",
    ),
    (
        P73,
        "$y$j7T$pLacj3xyFfctWnrEyjWil0$/Af83PjrrC0n/l3oYabFJ0uQsoMXwMrEvsgCmX/IAYC",
    ),
    (
        P200,
        "$y$j7T$0tFJpc1TzDzhKzd8uIaW.0$fT2bN.kBlTkLmhxUaGBhuUjHu0fBV3YN3b6GQ/W/dNA",
    ),
    (
        SPACES,
        "$gy$j7T$2EN6DgR7MI1qfZD0jPbMc0$yISppPddRalbKQqsbjH7Lsm88nE3etD5DDApdkrH747",
    ),
    (
        UTF8,
        "$gy$j7T$iZRqoKmT4Rrg7Bnul3s55/$qkpc8wCSG/W1HYPH12GvoCdiaJS4qO8ZyVP6daFahJD",
    ),
    (
        ONE,
        "$gy$j7T$rZHUljViocKe07Ji/I42X0$0Jn9jlTIGtx8b5v1COprYqt.gDjEw9psLzbqKFx4bh4",
    ),
    (
        P73,
        "$gy$j7T$c8OQL2BNN5knnynvoqLtY/$zZ/zuRY2r5PVNRwg5VcWf0CNw881cbRS9tOiusTh5xC",
    ),
    (
        P200,
        "$gy$j7T$G2uPexk8gneOfacCnqJ63.$Kk5tyCW3PzIu5cRUd6UfbzvIkn6Wi7Ra7gD2bpIz9c.",
    ),
    (
        SPACES,
        "$7$BU..../....jfdDBnyhFULql/kiOPdjW/$syU08zAvlYApmZYHyH2XcsSoabq/d9ICOWcPsYlePV.",
    ),
    (
        UTF8,
        "$7$BU..../....FPDf2oW0cqXUb8UopoXGy1$371r/fbMI09HGm3Q9d8Dluo6Ol4LTtzeJDS2nmoxYJA",
    ),
    (
        ONE,
        "$7$BU..../....bZYJxCaYc8QYgkXPYO3T01$00PP.CjsZtRVgt6EUAqPTPZge2TWFdbg76ff9XmoQK/",
    ),
    (
        P73,
        "$7$BU..../....u/59h7Z58RUi8gPMUY2aS.$/8MnBK/FS6P77gnp8k0m7WEY5HAGeHrugAvQ7ku4kc5",
    ),
    (
        P200,
        "$7$BU..../....NaDtQs1ISNScJkSEBB75z1$HrSdgjqWnZp.rXt8QIBO3qxEM9VZQjORBfYnJKDmn86",
    ),
    (
        SPACES,
        "$2b$05$rhkuO1X7QzArXRqU7Q81BOteQKjugohsCGmCAVWrBa7V3mb1tYqIe",
    ),
    (
        UTF8,
        "$2b$05$45t3YsnQWEH72Qg60q4UN.srfQWZ9dD.n.w/Z8JGqf56fYgOk6uCu",
    ),
    (
        ONE,
        "$2b$05$r0oOZWehaDw31GTxJGep1eoVqvJupGwZ5v/GVFaEYn/7NGJbK5gVK",
    ),
    (
        P73,
        "$2b$05$dekuz8CcOQ6TExnr3bpL3uMs8Ch/46eF5s5mGbDYfHeZ4yvdO.KJ.",
    ),
    (
        P200,
        "$2b$05$QikLislJhS8hNI4ND1pX2unurCtpSdG38.OcCGsmu2rHYlcuK.D4q",
    ),
    (
        SPACES,
        "$2a$05$i5cTnkiU6ruX5RjR8K/NAe6pHimIWIIsaRJ866Jm9JhHML71FgwcG",
    ),
    (
        UTF8,
        "$2a$05$tX8gxrdOs1pEZ7a86b1dzuPPYwv50bZ52NbAFa3SUVmOxdmuun27e",
    ),
    (
        ONE,
        "$2a$05$Acf8lH4C9W5jUBpAVT6D8evGiXrlTj7YD6iTqxACr/oaKXUXLDPFW",
    ),
    (
        P73,
        "$2a$05$BQl1tin.oL1dI8Qt..ZDduPmgGk62hItzb1POk1e1iQ6z.sFliggS",
    ),
    (
        P200,
        "$2a$05$daBIYDklcWabYibqVA2cYe.5OZkoRdL9F05WLIVkND0d9c77rf0NG",
    ),
    (
        SPACES,
        "$6$rounds=1000$MkXnY5y7Y4oJUJw8$rna/k4shrtLPsHYaDqmUtXGqKd0SClF8RymEVknKUkXxvcK1GsxBQEw3adtOTtr7inb7FirfilyChR2uA8xZ91",
    ),
    (
        UTF8,
        "$6$rounds=1000$QzViMfwIDztfo3OX$pb4gZqOb7tvkZ0N1AmnPI3x2PiKiwbG60Qh5maDdd.EInFVw7bjGuQBxdRQV1BxcHKgQR2/ShDvcBKde3UUYl0",
    ),
    (
        ONE,
        "$6$rounds=1000$DKKgL/hlC0BKQyds$mYo0KkZhBd4w2DYW9IM57m0b7Ag3jMVLQNxBpdxvZrVMzlJ0UgUsnVS71Sp.qXedWiE1coC/xKTrbONYm5ryj/",
    ),
    (
        P73,
        "$6$rounds=1000$wflqnHHyM4UOXdv.$1SfY6pBDzeXoMpw63sAmyZnZz/almjbZJXbSVjQKfZL8Ex2XQ2/M1WHb8YdIGEGdxnarVFC9MF6el42ApfCLq1",
    ),
    (
        P200,
        "$6$rounds=1000$/O0mNU1oTGhrM1kl$EfxfP1KiIfsofiR7614qyE0QlYa024qz.E72APHEnT6MCvHb7LqhHgOZOFhCS1u2t4vY15OTfJ2pJr9WXgM5y1",
    ),
    (
        SPACES,
        "$5$zB8mF5Urvcn/qsZL$fKXgu2P25Wo/Ts4pZfEywt6l1yw9Wdo2mMSaRi6Wqf8",
    ),
    (
        UTF8,
        "$5$K/bXhft5fWKTDcBG$AT/hu/CzDhdKaxg9kV5FowH5RjtTHLU8p92bCRhJO76",
    ),
    (
        ONE,
        "$5$kWPR4yQJWE02dDM2$ffSY0n5tEmZdakDsS84NFNJftZsa/AFgahQ5AD5kKi5",
    ),
    (
        P73,
        "$5$rh7eduVrJHEW6Pos$YklEZfPft8uuoPYRLptCx8qecS1iyGK27ctXJskOALD",
    ),
    (
        P200,
        "$5$aUVI1F93FyHcIco9$GhmjRjalZjyoesDz4Gk5KgsuQ0YWyNIw8l5uy.zfQg8",
    ),
    (SPACES, "$1$i.cS3zTR$VRD6.yYEqBD1neOjSnYvQ."),
    (UTF8, "$1$hdpJbYLk$bfWzpyN26CgdJstiJ7Jm1/"),
    (ONE, "$1$eHqoG1Bo$ogZzeNAvRCRiJVQUkr/DK1"),
    (P73, "$1$pkmzY9jm$YK3aW8I1YK52Kx.84bZ5T."),
    (P200, "$1$CWMeFlaN$OPunUfP1CvSM1fsG4IelR/"),
    (SPACES, "wEHgNhYoIRZ9Y"),
    (UTF8, "1ulzAYhjGqJdM"),
    (ONE, "GYyzyxSW2FmdM"),
    (P73, "eof1HmjiENNlM"),
    (P200, "k3trcEfClUj2k"),
    (SPACES, "_J9..LNXzcSsB4GmABfk"),
    (UTF8, "_J9..9k7hWAeexq.ffds"),
    (ONE, "_J9..8B5yrLyLOpk.TfA"),
    (P73, "_J9..dKxu0GDPeDqZYQk"),
    (P200, "_J9..1siYggtWjz/cxgs"),
];

#[test]
fn fixed_vectors_every_scheme() {
    for (pw, hash) in FIXED {
        assert_verifies(hash, pw.as_bytes());
    }
    for (pw, hash) in [
        (PW_A, YESCRYPT_A),
        (
            PW_B,
            "$y$j9T$GQIIknK.0emY23Adr49hC.$CqLjOGU.YVeKuxf3mYLqW/YI1TKRECdb/dmlmLqxDF5",
        ),
        (
            P200,
            "$y$j9T$FGW/R9RTbHKzaiHMrlDw80$HTSAylOCeOcMIzAYm7WmV2.aw0ZyQlUYC1Lhs/XozH8",
        ),
        (PW_A, SHA512_A),
        (
            P200,
            "$6$3.UAhgvWV7qTWdC/$h0mbkPzedgDsoz8p9wRsZ78eom.KwA1iDp0U.DVM8.pKYuV4.YT976dUx9Zl2c5TU9f4EL7GKkp1.8g.B8vY5.",
        ),
        (
            "x",
            "$6$rounds=10000$ZEG7yPpLVt7PGk7e$qDcAeap6FWRIthDyzDWxaqemevx7I1pBQYjTp9PUIe6YSMoHwfRCPQRUbtW9ySzjD.dVxJ79AfLKZwiVgj3VT0",
        ),
        (
            P200,
            "$5$iKrNzlS4gLCmet/A$klvYq4iw9xGH6lXs4wvlOWthpEDRiWthIMU2kqfVW8A",
        ),
        (
            "pass word",
            "$5$wXHldV/.4Tb6l4cI$qrqg1lOtAqprq4qPtRqHURUufYChLZ515cxW/OEIOX9",
        ),
        (PW_A, MD5_A),
        (PW_B, MD5_B),
        (P200, "$1$dGdybwgA$4oROwUWZVjcKkEyUIVS9r."),
        (
            "abc",
            "$6$abcdefghijklmnop$zR649rx2TbTWD6FUKFWRMZ1mqJ8nfOUWonL0TTvy/seH9/5KKhgTK/cSwi9YhSGtvlJ5DYnv1tp6JCafhMU5.1",
        ),
        (
            "r",
            "$gy$j9T$jU/IrM6XfbJpWVY4hTzUC0$BEu0pmFUhmth1A.7dVk0CELxK5I9/fY0zIF19NpC2U4",
        ),
        (
            "r",
            "$7$CU..../....NJDtWDVpBRcXEMZHV07Mh.$N2ioomAGNGy9NC9JsySdWYn3YlhiIVapsboMl3VGE15",
        ),
    ] {
        assert_verifies(hash, pw.as_bytes());
    }
}

#[test]
fn fixed_vectors_cover_every_scheme() {
    for prefix in [
        "$y$", "$gy$", "$7$", "$2b$", "$2a$", "$6$", "$5$", "$1$", "_",
    ] {
        let n = FIXED.iter().filter(|(_, h)| h.starts_with(prefix)).count();
        assert_eq!(n, 5, "{prefix}");
    }
    let des = FIXED.iter().filter(|(_, h)| significant(h) == 8).count();
    assert_eq!(des, 5);
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
    let passwd = "alice:x:1000\n\
        alice:x:10o0:1001:Alice:/home/alice:/bin/sh\n\
        alice:x:1000:-1:Alice:/home/alice:/bin/sh\n\
        alice:x:4294967296:1001:Alice:/home/alice:/bin/sh\n\
        alice:x:1000:1001:Alice:/home/alice:/bin/sh\r\n\
        +alice:x:1000:1001:Alice:/home/alice:/bin/sh\n\
        \n\
        garbage\n";
    let f = Fixture::new(passwd.as_bytes(), shadow_with(SHA512_A).as_bytes());
    assert_eq!(f.auth("alice", PW_A), Err(Refusal::UnknownUser));
    let logged = reports::take_emitted();
    let file = f.dir.join("passwd").display().to_string();
    assert_eq!(
        logged,
        vec![
            format!("{file}:1: too few fields; line ignored"),
            format!("{file}:2: bad uid; line ignored"),
            format!("{file}:3: bad gid; line ignored"),
            format!("{file}:4: bad uid; line ignored"),
            format!("{file}:5: carriage return at the end (CRLF line ending); line ignored"),
            format!("{file}:8: too few fields; line ignored"),
        ]
    );
    // Logged once: the next login (same file version) logs nothing.
    assert_eq!(f.auth("alice", PW_A), Err(Refusal::UnknownUser));
    assert_eq!(reports::take_emitted(), Vec::<String>::new());

    let shadow = format!(
        "alice:{SHA512_A}:19000:0:99999:7::\n\
         alice:{SHA512_A}:19000:0\n\
         alice:{SHA512_A}:19x00:0:99999:7:::\n\
         alice:{SHA512_A}:19000:0:99999:7:::\r\n"
    );
    let f = Fixture::new(PASSWD.as_bytes(), shadow.as_bytes());
    assert_eq!(f.auth("alice", PW_A), Err(Refusal::NoShadowEntry));
    assert_eq!(reports::take_emitted().len(), 4);

    // A well-formed line after the bad ones still counts.
    let f = Fixture::new(
        format!("{passwd}{PASSWD}").as_bytes(),
        format!("{shadow}{}", shadow_with(SHA512_A)).as_bytes(),
    );
    assert_eq!(f.auth("alice", PW_A), Ok(alice()));
    reports::take_emitted();
}

#[test]
fn changed_file_reports_again() {
    let f = Fixture::new(PASSWD.as_bytes(), b"bob:x\n");
    assert_eq!(f.auth("bob", PW_A), Err(Refusal::UnknownUser));
    assert_eq!(reports::take_emitted().len(), 1);
    assert_eq!(f.auth("bob", PW_A), Err(Refusal::UnknownUser));
    assert!(reports::take_emitted().is_empty());
    // Rewritten (new size, and a new mtime where the clock allows): reported
    // again, once.
    std::fs::write(f.dir.join("shadow"), b"carol:x:1\nbob:x\n").unwrap();
    assert_eq!(f.auth("bob", PW_A), Err(Refusal::UnknownUser));
    let file = f.dir.join("shadow").display().to_string();
    assert_eq!(
        reports::take_emitted(),
        vec![
            format!("{file}:1: too few fields; line ignored"),
            format!("{file}:2: too few fields; line ignored"),
        ]
    );
}

#[test]
fn short_shadow_lines_as_glibc_reads_them() {
    // The old five-field form and eight fields with an expiry are accepted.
    for shadow in [
        format!("alice:{SHA512_A}:19000:0:99999\n"),
        format!("alice:{SHA512_A}:19000:0:99999:\n"),
        format!("alice:{SHA512_A}::::\n"),
        format!("alice:{SHA512_A}:19000:0:99999:7::99999\n"),
        format!("alice:{SHA512_A}:19000:0:99999:7:::\n"),
        format!("alice:{SHA512_A}:19000:0:99999:7:::1:more\n"),
    ] {
        let f = Fixture::new(PASSWD.as_bytes(), shadow.as_bytes());
        assert_eq!(f.auth("alice", PW_A), Ok(alice()), "{shadow}");
        assert!(reports::take_emitted().is_empty(), "{shadow}");
    }
    // Shorter ones are malformed, as glibc finds them.
    for shadow in [
        format!("alice:{SHA512_A}\n"),
        format!("alice:{SHA512_A}:\n"),
        format!("alice:{SHA512_A}:::\n"),
        format!("alice:{SHA512_A}:19000:0:99999:7\n"),
        format!("alice:{SHA512_A}:19000:0:99999:7::\n"),
    ] {
        let f = Fixture::new(PASSWD.as_bytes(), shadow.as_bytes());
        assert_eq!(
            f.auth("alice", PW_A),
            Err(Refusal::NoShadowEntry),
            "{shadow}"
        );
        assert_eq!(reports::take_emitted().len(), 1, "{shadow}");
    }
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
fn crlf_lines_never_authenticate() {
    let passwd = PASSWD.replace('\n', "\r\n");
    let f = Fixture::new(passwd.as_bytes(), shadow_with(SHA512_A).as_bytes());
    assert_eq!(f.auth("alice", PW_A), Err(Refusal::UnknownUser));
    let shadow = shadow_with(SHA512_A).replace('\n', "\r\n");
    let f = Fixture::new(PASSWD.as_bytes(), shadow.as_bytes());
    assert_eq!(f.auth("alice", PW_A), Err(Refusal::NoShadowEntry));
    let passwd = format!("alice:{MD5_A}:1000:1001:Alice,,,:/home/alice:/bin/bash\r\n");
    let f = Fixture::new(passwd.as_bytes(), b"");
    assert_eq!(f.auth("alice", PW_A), Err(Refusal::UnknownUser));
    let logged = reports::take_emitted();
    assert_eq!(logged.len(), 3 + 3 + 1, "{logged:?}");
    assert!(logged.iter().all(|l| l.contains("CRLF")));
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
    let mut quiet = |_: u64, _: &'static str| {};
    accounts::scan_accounts(passwd.as_bytes(), b"nobody", false, &mut c, &mut quiet).unwrap();
    assert_eq!(c.dummy_target(), YESCRYPT_A);
    accounts::scan_shadow(
        shadow_with(SHA512_A).as_bytes(),
        b"nobody",
        &mut c,
        &mut quiet,
    )
    .unwrap();
    assert_eq!(
        c.dummy_target(),
        YESCRYPT_A,
        "yescrypt j9T costs more than $6$"
    );
}

// ------------------------------------------------------ timing oracle

#[test]
fn dummy_runs_the_scheme_and_cost_of_a_real_check() {
    // Every scheme family, at a non-default cost where it has one: a refusal
    // of any kind runs exactly one verification with the same scheme and cost
    // as a wrong password for the real account.
    for hash in [
        YESCRYPT_A,
        "$y$j7T$YDYRbXk5OkyH0S4Qs1AXQ/$hF1IQV2ZXYOUIxzKXmztw3V7NsXSWArCKqK.en1cbh3",
        "$gy$j7T$7El1dCGwNjVr20FeO/wy0/$fhDl48kdbWJHImz2BbPiGCoEc6fCd8.s4r87wSLgqc2",
        "$7$BU..../..../74zyO7OcMotxuUEaZbbt/$eeBjuK3sgS/mTvtjdHHZrLACKmf1n2Ro9Rs.Y/sBKJC",
        "$2b$05$IBIil4Xzy6pklLPPPW5k7.5veh0l/radjbhITqbiDSXmy88mRCpS2",
        SHA512_A,
        "$6$rounds=10000$ZEG7yPpLVt7PGk7e$qDcAeap6FWRIthDyzDWxaqemevx7I1pBQYjTp9PUIe6YSMoHwfRCPQRUbtW9ySzjD.dVxJ79AfLKZwiVgj3VT0",
        "$5$rounds=1000$YTmVyfANX5QHwi7E$a3qD1..yU0RCPq1ItOzhsSQHwPRUK6LjosmT/t1cyW0",
        MD5_A,
        "t3mdCwqYmKCFk",
        "_J9..VErOm7vitUhNd36",
    ] {
        let passwd = format!(
            "{PASSWD}bob:x:1002:1002::/home/bob:/bin/sh\n\
             carol:x:1003:1003::/home/carol:/bin/sh\n\
             dave:x:1004:1004::/home/dave:/bin/sh\n\
             erin:x:1005:1005::/home/erin:/bin/sh\n"
        );
        let shadow = format!(
            "alice:{hash}:19000:0:99999:7:::\n\
             bob:!{hash}:19000:0:99999:7:::\n\
             carol::19000:0:99999:7:::\n\
             dave:{hash}:19000:0:99999:7::1:\n"
        );
        let f = Fixture::new(passwd.as_bytes(), shadow.as_bytes());
        f.auth("alice", "wrong").unwrap_err();
        let real = verified();
        assert_eq!(real.len(), 1);
        assert_eq!(real[0].0, crypt::scheme_id(hash));
        assert!(real[0].1.is_some());
        for (user, refusal) in [
            ("nobody", Refusal::UnknownUser),
            ("bob", Refusal::Locked),
            ("carol", Refusal::EmptyHash),
            ("dave", Refusal::Expired),
            ("erin", Refusal::NoShadowEntry),
            ("root", Refusal::Root),
        ] {
            assert_eq!(f.auth(user, "wrong"), Err(refusal), "{user} {hash}");
            assert_eq!(verified(), real, "{user} {hash}");
        }
    }
}

#[test]
fn dummy_takes_the_costliest_hash_present() {
    let shadow = format!(
        "root:{MD5_A}:::::::\n\
         daemon:*:::::::\n\
         alice:{SHA512_A}:::::::\n\
         bob:$y$jBT$abcdefghijklmnopqrstuv$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ:::::::\n"
    );
    let f = Fixture::new(PASSWD.as_bytes(), shadow.as_bytes());
    f.auth("nobody", "pw").unwrap_err();
    let used = verified();
    assert_eq!(used.len(), 1);
    assert_eq!(
        used[0],
        (
            "$y$".to_owned(),
            crypt::cost("$y$jBT$abcdefghijklmnopqrstuv$")
        )
    );
    // Nothing usable: the default dummy.
    let f = Fixture::new(PASSWD.as_bytes(), b"");
    f.auth("nobody", "pw").unwrap_err();
    assert_eq!(
        verified(),
        vec![("$y$".to_owned(), crypt::cost(crypt::DEFAULT_DUMMY_HASH))]
    );
    // Bad input is refused before any verification.
    assert_eq!(f.auth("", "pw"), Err(Refusal::BadInput));
    assert!(verified().is_empty());
}

// ------------------------------------------------------------- expiry

#[test]
fn expiry_date() {
    let f = Fixture::new(
        PASSWD.as_bytes(),
        format!("alice:{SHA512_A}:19000:0:99999:7::20000:\n").as_bytes(),
    );
    let s = f.settings();
    let pw = PW_A.as_bytes();
    assert_eq!(authenticate_on(&s, b"alice", pw, 19_999), Ok(alice()));
    assert_eq!(
        authenticate_on(&s, b"alice", pw, 20_000),
        Err(Refusal::Expired)
    );
    assert_eq!(
        authenticate_on(&s, b"alice", pw, 20_001),
        Err(Refusal::Expired)
    );
    // With today's clock: a date in the past, 0 (chage -E 0), and never.
    for (expire, result) in [
        ("1", Err(Refusal::Expired)),
        ("0", Err(Refusal::Expired)),
        ("", Ok(alice())),
        ("-1", Ok(alice())),
        ("999999", Ok(alice())),
    ] {
        let f = Fixture::new(
            PASSWD.as_bytes(),
            format!("alice:{SHA512_A}:19000:0:99999:7::{expire}:\n").as_bytes(),
        );
        assert_eq!(f.auth("alice", PW_A), result, "expire {expire:?}");
    }
    assert_eq!(Refusal::Expired.to_string(), "account expired");
}

#[test]
fn expiry_applies_to_inline_passwd_hashes() {
    let passwd = format!("alice:{MD5_A}:1000:1001:Alice,,,:/home/alice:/bin/bash\n");
    let f = Fixture::new(passwd.as_bytes(), b"alice:*:19000:0:99999:7::1:\n");
    assert_eq!(f.auth("alice", PW_A), Err(Refusal::Expired));
    let f = Fixture::new(passwd.as_bytes(), b"alice:*:19000:0:99999:7:::\n");
    assert_eq!(f.auth("alice", PW_A), Ok(alice()));
}

// ------------------------------------------------------- users file

/// A users file line for `name`.
fn user_line(name: &str, hash: &str, uid: u32) -> String {
    format!("{name}:{hash}:{uid}:{uid}::/srv/mail/{name}::userdb_quota_rule=*:storage=1G\n")
}

#[test]
fn users_file_accounts() {
    // passwd and shadow hold a different alice; with --users they are not read.
    let f = Fixture::new(PASSWD.as_bytes(), shadow_with(MD5_B).as_bytes());
    let users = format!(
        "# virtual users\n\
         {}{}{}{}{}",
        user_line("alice", &format!("{{SHA512-CRYPT}}{SHA512_A}"), 5000),
        user_line("bob", MD5_A, 5000),
        user_line("carol", &format!("{{crypt}}{YESCRYPT_A}"), 5001),
        user_line("dave", &format!("{{PLAIN}}{PW_A}"), 5000),
        user_line("erin", &format!("{{MD5-CRYPT}}{SHA512_A}"), 5000),
    );
    let s = f.users(&users);
    let auth = |user: &str, pw: &str| authenticate(&s, user.as_bytes(), pw.as_bytes());
    let alice = Account {
        name: "alice".to_owned(),
        uid: 5000,
        gid: 5000,
        home: PathBuf::from("/srv/mail/alice"),
    };
    assert_eq!(auth("alice", PW_A), Ok(alice));
    assert_eq!(auth("alice", PW_B), Err(Refusal::WrongPassword));
    assert_eq!(auth("bob", PW_A).map(|a| a.uid), Ok(5000));
    assert_eq!(auth("carol", PW_A).map(|a| a.gid), Ok(5001));
    assert_eq!(
        auth("dave", PW_A),
        Err(Refusal::UnsupportedScheme("{PLAIN}".to_owned()))
    );
    assert_eq!(
        auth("erin", PW_A),
        Err(Refusal::UnsupportedScheme(
            "{MD5-CRYPT} holding $6$".to_owned()
        ))
    );
    assert_eq!(auth("root", PW_A), Err(Refusal::UnknownUser));
    assert!(reports::take_emitted().is_empty());
    // The server's own uid only, when it is not root.
    let mut s = s.clone();
    s.only_uid = Some(5000);
    assert!(authenticate(&s, b"alice", PW_A.as_bytes()).is_ok());
    assert_eq!(
        authenticate(&s, b"carol", PW_A.as_bytes()),
        Err(Refusal::UidNotServed)
    );
}

#[test]
fn users_file_policy() {
    let f = Fixture::new(b"", b"");
    let users = format!(
        "{}{}{}{}{}{}",
        user_line("root2", MD5_A, 0),
        user_line("locked", &format!("!{MD5_A}"), 5000),
        user_line("locked2", &format!("{{MD5-CRYPT}}!{MD5_A}"), 5000),
        user_line("empty", "", 5000),
        user_line("empty2", "{CRYPT}", 5000),
        "short:{CRYPT}$1$x$y\nbaduid:x:u:1\n",
    );
    let s = f.users(&users);
    let auth = |user: &str| authenticate(&s, user.as_bytes(), PW_A.as_bytes());
    assert_eq!(auth("root2"), Err(Refusal::Root));
    assert_eq!(auth("locked"), Err(Refusal::Locked));
    assert_eq!(auth("locked2"), Err(Refusal::Locked));
    assert_eq!(auth("empty"), Err(Refusal::EmptyHash));
    assert_eq!(auth("empty2"), Err(Refusal::EmptyHash));
    assert_eq!(auth("short"), Err(Refusal::UnknownUser));
    assert_eq!(auth("baduid"), Err(Refusal::UnknownUser));
    let file = f.dir.join("users").display().to_string();
    assert_eq!(
        reports::take_emitted(),
        vec![
            format!("{file}:6: too few fields; line ignored"),
            format!("{file}:7: bad uid; line ignored"),
        ]
    );
    // Missing users file: unreadable, and start-up says which flag.
    std::fs::remove_file(f.dir.join("users")).unwrap();
    assert!(matches!(auth("locked"), Err(Refusal::Unreadable(_))));
    let msg = check_files(&s).unwrap_err();
    assert!(
        msg.ends_with("No such file or directory (pass --users FILE)"),
        "{msg}"
    );
}

#[test]
fn check_files_reports_malformed_lines_at_start() {
    let f = Fixture::new(
        format!("{PASSWD}bad line\n").as_bytes(),
        shadow_with(SHA512_A).as_bytes(),
    );
    assert_eq!(check_files(&f.settings()), Ok(()));
    let file = f.dir.join("passwd").display().to_string();
    assert_eq!(
        reports::take_emitted(),
        vec![format!("{file}:4: too few fields; line ignored")]
    );
    // Not again at the first login.
    assert_eq!(f.auth("alice", PW_A), Ok(alice()));
    assert!(reports::take_emitted().is_empty());
}
