//! Authentication: who may log in, checked against passwd(5) and shadow(5)
//! files, or a Dovecot-style users file, read fresh for every login, with
//! crypt(3) hashes verified in pure Rust.
//!
//! Owned here: the account file readers, the crypt scheme dispatch, the
//! account policy (locked, empty, expired, uid 0, uid not served) and the dummy
//! verification for refused logins. Callers get an [`Account`] or a
//! [`Refusal`]; every refusal must be answered on the wire exactly like a wrong
//! password.
//!
//! Files: `accounts` (line readers), `reports` (malformed lines logged once),
//! `dovecot` (`{SCHEME}` prefixes of users files), [`crypt`] (scheme dispatch
//! and constant-time comparison), `yescrypt_mcf` (`$y$`, `$gy$`),
//! `scrypt_mcf` (`$7$`) on the in-tree `pop3d-yescrypt` package in
//! `yescrypt/` (a separate package only to be optimised in test builds), `shacrypt` (`$5$`, `$6$`), `bcrypt` (`$2a$`, `$2b$`,
//! `$2y$`, `$2x$`), `md5crypt` (`$1$`), `descrypt` (traditional DES, BSDi `_`),
//! `b64` (crypt base64), `secret` (wiped buffers).
//!
//! System accounts: passwd gives the uid, gid and home; the hash is the passwd
//! password field, or the shadow entry's when that field is `x`. Users file
//! (`--users`, [`AuthSettings::users`]): one `name:hash:uid:gid::home:` line
//! per user, the hash optionally prefixed `{SHA512-CRYPT}` and the like; the
//! uid and gid are the identity used for the mailbox; passwd and shadow are
//! not read.
//!
//! Policy, in the order checked after the name and password are accepted:
//! unknown user; uid 0; uid not served; `x` with no shadow entry; empty hash;
//! `!`/`*` (locked); shadow expiry date (field 8) reached, as pam_unix decides
//! it: expired from that day on, where 0 means expired (`chage -E 0`) and an
//! empty field or -1 means never; unsupported or malformed hash; wrong
//! password. Every login that gets past input validation costs exactly one
//! verification: the real one, or for any refusal a dummy one against the
//! costliest usable hash seen in the account files during the same pass
//! (yescrypt at Debian's default cost if there is none), so a refusal takes
//! about as long as the costliest real check.
//! Limit: where accounts use hashes of different costs, a login to an account
//! with a cheaper hash (an old `$6$` among `$y$` ones) answers faster than a
//! refusal, so that account's existence still shows in the timing.

#![forbid(unsafe_code)]

mod accounts;
mod b64;
mod bcrypt;
pub mod crypt;
mod descrypt;
mod dovecot;
mod md5crypt;
mod reports;
mod scrypt_mcf;
mod secret;
mod shacrypt;
mod yescrypt_mcf;

#[cfg(test)]
mod tests;

use accounts::{Costliest, PasswdEntry, ShadowEntry};
use crypt::Verdict;
use secret::Secret;
use std::hint::black_box;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest password accepted (bytes). sha-crypt's work grows with the square of
/// the password length, so it must be bounded; POP3 lines are shorter anyway.
pub const PASSWORD_MAX: usize = 1024;

/// Where accounts come from and who may be served.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    /// passwd(5) file.
    pub passwd: PathBuf,
    /// shadow(5) file.
    pub shadow: PathBuf,
    /// A Dovecot-style passwd-file of virtual users; when set, logins are
    /// checked against it only, and `passwd` and `shadow` are not read.
    pub users: Option<PathBuf>,
    /// When set, only this uid may log in (a server not running as root can
    /// serve only its own uid's mailboxes).
    pub only_uid: Option<u32>,
}

/// An authenticated account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Login name, as in passwd.
    pub name: String,
    /// Numeric user id (never 0).
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: PathBuf,
}

/// Why a login was refused. For logs only: the client always gets the same reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No passwd entry for the name.
    UnknownUser,
    /// A passwd entry but no shadow entry (when passwd says `x`).
    NoShadowEntry,
    /// The password does not match.
    WrongPassword,
    /// The hash field is empty.
    EmptyHash,
    /// The hash is locked (`!` or `*` prefix).
    Locked,
    /// The shadow expiry date (field 8) has been reached.
    Expired,
    /// uid 0 is never served.
    Root,
    /// The uid is not the one this server may serve.
    UidNotServed,
    /// The hash uses a scheme we do not implement (the scheme id, never the hash).
    UnsupportedScheme(String),
    /// The name or password is not acceptable (empty, NUL, too long).
    BadInput,
    /// passwd or shadow could not be read (file and error).
    Unreadable(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::UnknownUser => f.write_str("unknown user"),
            Refusal::NoShadowEntry => f.write_str("no shadow entry"),
            Refusal::WrongPassword => f.write_str("wrong password"),
            Refusal::EmptyHash => f.write_str("empty password hash"),
            Refusal::Locked => f.write_str("locked account"),
            Refusal::Expired => f.write_str("account expired"),
            Refusal::Root => f.write_str("root login refused"),
            Refusal::UidNotServed => f.write_str("uid not served"),
            Refusal::UnsupportedScheme(id) => write!(f, "unsupported hash scheme {id}"),
            Refusal::BadInput => f.write_str("invalid user name or password"),
            Refusal::Unreadable(what) => write!(f, "cannot read {what}"),
        }
    }
}

/// The user name as text if `user` and `pass` are acceptable: both non-empty
/// and without NUL; the name at most [`crate::config::USER_MAX`] bytes of UTF-8
/// with no `/`, `:` or control character and not starting with `.`; the
/// password at most [`PASSWORD_MAX`] bytes.
fn check_input<'a>(user: &'a [u8], pass: &[u8]) -> Result<&'a str, Refusal> {
    let name_ok = !user.is_empty()
        && user.len() <= crate::config::USER_MAX
        && user[0] != b'.'
        && !user
            .iter()
            .any(|&c| c == b'/' || c == b':' || c < 0x20 || c == 0x7f);
    let pass_ok = !pass.is_empty() && pass.len() <= PASSWORD_MAX && !pass.contains(&0);
    match std::str::from_utf8(user) {
        Ok(name) if name_ok && pass_ok => Ok(name),
        _ => Err(Refusal::BadInput),
    }
}

/// An I/O error as text without Rust's " (os error N)" suffix.
fn error_text(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => text[..i].to_owned(),
        _ => text,
    };
    text.replace(|c: char| c.is_control(), "?")
}

/// `path` for a one-line message.
fn path_text(path: &Path) -> String {
    path.display()
        .to_string()
        .replace(|c: char| c.is_control(), "?")
}

/// Runs one pass of `scan` over the file at `path`, reporting malformed
/// lines once (see `reports`); errors become "PATH: problem".
fn pass_over<T>(
    path: &Path,
    scan: impl FnOnce(accounts::WipingReader<std::fs::File>, accounts::Report<'_>) -> io::Result<T>,
) -> Result<T, String> {
    let result = std::fs::File::open(path).and_then(|file| {
        let version = reports::Version::of(&file.metadata()?);
        let mut report =
            |line: u64, reason: &'static str| match reports::decide(path, version, line) {
                reports::Decision::Log => reports::emit(format_args!(
                    "{}:{line}: {reason}; line ignored",
                    path_text(path)
                )),
                reports::Decision::Overflow => reports::emit(format_args!(
                    "{}: more than {} malformed lines, not reporting more",
                    path_text(path),
                    reports::LINES_MAX
                )),
                reports::Decision::Quiet => {}
            };
        scan(accounts::WipingReader::new(file), &mut report)
    });
    result.map_err(|e| format!("{}: {}", path_text(path), error_text(&e)))
}

/// Empty and locked hashes.
fn usable(hash: &[u8]) -> Result<(), Refusal> {
    match hash.first() {
        None => Err(Refusal::EmptyHash),
        Some(b'!' | b'*') => Err(Refusal::Locked),
        Some(_) => Ok(()),
    }
}

/// The account of a passwd or users-file entry, after the uid checks.
fn account_of(entry: &PasswdEntry, only_uid: Option<u32>) -> Result<Account, Refusal> {
    if entry.uid == 0 {
        return Err(Refusal::Root);
    }
    if only_uid.is_some_and(|u| u != entry.uid) {
        return Err(Refusal::UidNotServed);
    }
    // The name equals the (UTF-8) login name it was matched against.
    let name = String::from_utf8(entry.name.clone()).map_err(|_| Refusal::BadInput)?;
    Ok(Account {
        name,
        uid: entry.uid,
        gid: entry.gid,
        home: entry.home.clone(),
    })
}

/// System accounts: the account and its hash, or why there is nothing to
/// verify. `today` is the day number since 1970-01-01 (UTC).
fn decide(
    passwd: Result<Option<PasswdEntry>, String>,
    shadow: Result<Option<ShadowEntry>, String>,
    only_uid: Option<u32>,
    today: u64,
) -> Result<(Account, Secret), Refusal> {
    let entry = passwd
        .map_err(Refusal::Unreadable)?
        .ok_or(Refusal::UnknownUser)?;
    let account = account_of(&entry, only_uid)?;
    let (hash, expire) = if entry.password.as_bytes() == b"x" {
        let s = shadow
            .map_err(Refusal::Unreadable)?
            .ok_or(Refusal::NoShadowEntry)?;
        (s.hash, s.expire)
    } else {
        // An inline hash: a readable shadow entry still gives the expiry.
        let expire = shadow.ok().flatten().and_then(|s| s.expire);
        (entry.password, expire)
    };
    usable(hash.as_bytes())?;
    if expire.is_some_and(|day| today >= day) {
        return Err(Refusal::Expired);
    }
    Ok((account, hash))
}

/// Virtual users: the account and its hash (without a `{SCHEME}` prefix).
fn decide_users(
    users: Result<Option<PasswdEntry>, String>,
    only_uid: Option<u32>,
) -> Result<(Account, Secret), Refusal> {
    let entry = users
        .map_err(Refusal::Unreadable)?
        .ok_or(Refusal::UnknownUser)?;
    let account = account_of(&entry, only_uid)?;
    let field = entry.password.as_bytes();
    usable(field)?;
    let (scheme, hash) = dovecot::strip(field);
    if let Some(scheme) = scheme {
        usable(hash)?;
        let text = std::str::from_utf8(hash).unwrap_or("");
        dovecot::check(scheme, text).map_err(Refusal::UnsupportedScheme)?;
    }
    Ok((account, Secret::copy_of(hash)))
}

/// The one verification of a login: `crypt::verify`, recorded in unit tests
/// (scheme and cost) so they can compare dummy and real verifications.
fn verification(hash: &str, pass: &[u8]) -> Verdict {
    #[cfg(test)]
    tests::record_verification(hash);
    crypt::verify(hash, pass)
}

/// The dummy verification: as costly as the costliest hash seen, result unused.
fn dummy(costliest: &Costliest, pass: &[u8]) {
    black_box(verification(black_box(costliest.dummy_target()), pass));
}

/// Today as a day number since 1970-01-01, UTC (the unit of shadow dates).
fn today() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400)
}

/// Checks `user`/`pass` and returns the account on success.
///
/// Reads the account files once each, to the end (no cache), and runs exactly
/// one verification unless the input itself is refused ([`Refusal::BadInput`]).
/// Slow (a yescrypt verification takes tens of milliseconds and 16 MiB or more):
/// call it off the event loop.
pub fn authenticate(settings: &AuthSettings, user: &[u8], pass: &[u8]) -> Result<Account, Refusal> {
    authenticate_on(settings, user, pass, today())
}

/// [`authenticate`] on day `today`.
fn authenticate_on(
    settings: &AuthSettings,
    user: &[u8],
    pass: &[u8],
    today: u64,
) -> Result<Account, Refusal> {
    let name = check_input(user, pass)?;
    let user = name.as_bytes();
    let mut costliest = Costliest::default();
    let found = match &settings.users {
        Some(users) => {
            let entry = pass_over(users, |r, report| {
                accounts::scan_accounts(r, user, true, &mut costliest, report)
            });
            decide_users(entry, settings.only_uid)
        }
        None => {
            let passwd = pass_over(&settings.passwd, |r, report| {
                accounts::scan_accounts(r, user, false, &mut costliest, report)
            });
            let shadow = pass_over(&settings.shadow, |r, report| {
                accounts::scan_shadow(r, user, &mut costliest, report)
            });
            decide(passwd, shadow, settings.only_uid, today)
        }
    };
    let (account, hash) = match found {
        Ok(found) => found,
        Err(refusal) => {
            dummy(&costliest, pass);
            return Err(refusal);
        }
    };
    let verdict = match std::str::from_utf8(hash.as_bytes()) {
        Ok(h) => verification(h, pass),
        Err(_) => Verdict::Unsupported("unknown".to_owned()),
    };
    let refusal = match verdict {
        Verdict::Match => return Ok(account),
        Verdict::Mismatch => return Err(Refusal::WrongPassword),
        Verdict::Unsupported(id) => Refusal::UnsupportedScheme(id),
        Verdict::Malformed { scheme, reason } => {
            Refusal::UnsupportedScheme(format!("{scheme} ({reason})"))
        }
    };
    dummy(&costliest, pass);
    Err(refusal)
}

/// Start-up check: the account files can be opened and read (passwd and
/// shadow, or the users file when one is set). Malformed lines are logged here
/// once, so the admin sees them at start. The error is one line naming the
/// file and the problem.
pub fn check_files(settings: &AuthSettings) -> Result<(), String> {
    let files: Vec<(&Path, &str)> = match &settings.users {
        Some(users) => vec![(users, "--users")],
        None => vec![
            (&settings.passwd, "--passwd"),
            (&settings.shadow, "--shadow"),
        ],
    };
    for (path, flag) in files {
        if let Err(e) = accounts::read_through(path) {
            let hint = match e.kind() {
                io::ErrorKind::PermissionDenied => format!(" (run as root, or pass {flag} FILE)"),
                io::ErrorKind::NotFound => format!(" (pass {flag} FILE)"),
                _ => String::new(),
            };
            return Err(format!(
                "cannot read {}: {}{hint}",
                path_text(path),
                error_text(&e)
            ));
        }
        // A second pass reports malformed lines now rather than at the first login.
        let mut costliest = Costliest::default();
        pass_over(path, |r, report| match flag {
            "--shadow" => accounts::scan_shadow(r, b"", &mut costliest, report).map(drop),
            _ => {
                accounts::scan_accounts(r, b"", flag == "--users", &mut costliest, report).map(drop)
            }
        })
        .map_err(|e| format!("cannot read {e}"))?;
    }
    Ok(())
}
