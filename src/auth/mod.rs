//! Authentication: who may log in, checked against passwd(5) and shadow(5) files
//! read fresh for every login, with crypt(3) hashes verified in pure Rust.
//!
//! Owned here: the account database readers, the crypt scheme dispatch, the
//! account policy (locked, empty, uid 0, uid not served) and the dummy
//! verification for unknown users. Callers get an [`Account`] or a [`Refusal`];
//! every refusal must be answered on the wire exactly like a wrong password.
//!
//! Files: `accounts` (passwd/shadow line readers), [`crypt`] (scheme dispatch
//! and constant-time comparison), `yescrypt_mcf` (`$y$`, `$gy$`),
//! `scrypt_mcf` (`$7$`), `shacrypt` (`$5$`, `$6$`), `bcrypt` (`$2a$`, `$2b$`,
//! `$2y$`, `$2x$`), `md5crypt` (`$1$`), `descrypt` (traditional DES, BSDi `_`),
//! `b64` (crypt base64), `secret` (wiped buffers).
//!
//! Policy, in the order checked after the name and password are accepted:
//! unknown user; uid 0; uid not served; `x` with no shadow entry; empty hash;
//! `!`/`*` (locked); unsupported or malformed hash; wrong password. Every login
//! that gets past input validation costs exactly one verification: the real one,
//! or for any refusal a dummy one against the costliest usable hash seen in
//! passwd and shadow during the same pass (yescrypt at Debian's default cost if
//! there is none), so a refusal takes about as long as the costliest real check.
//! Limit: where accounts use hashes of different costs, a login to an account
//! with a cheaper hash (an old `$6$` among `$y$` ones) answers faster than a
//! refusal, so that account's existence still shows in the timing.

#![forbid(unsafe_code)]

mod accounts;
mod b64;
mod bcrypt;
pub mod crypt;
mod descrypt;
mod md5crypt;
mod scrypt_mcf;
mod secret;
mod shacrypt;
mod yescrypt_mcf;

#[cfg(test)]
mod tests;

use accounts::{Costliest, PasswdEntry};
use crypt::Verdict;
use secret::Secret;
use std::hint::black_box;
use std::io;
use std::path::{Path, PathBuf};

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

/// Runs one pass of `scan` over the file at `path`; errors become
/// "PATH: problem".
fn pass_over<T>(
    path: &Path,
    scan: impl FnOnce(accounts::WipingReader<std::fs::File>) -> io::Result<T>,
) -> Result<T, String> {
    accounts::open(path)
        .and_then(scan)
        .map_err(|e| format!("{}: {}", path_text(path), error_text(&e)))
}

/// The account and its hash, or why there is nothing to verify.
fn decide(
    passwd: Result<Option<PasswdEntry>, String>,
    shadow: Result<Option<Secret>, String>,
    only_uid: Option<u32>,
) -> Result<(Account, Secret), Refusal> {
    let entry = passwd
        .map_err(Refusal::Unreadable)?
        .ok_or(Refusal::UnknownUser)?;
    if entry.uid == 0 {
        return Err(Refusal::Root);
    }
    if only_uid.is_some_and(|u| u != entry.uid) {
        return Err(Refusal::UidNotServed);
    }
    let hash = if entry.password.as_bytes() == b"x" {
        shadow
            .map_err(Refusal::Unreadable)?
            .ok_or(Refusal::NoShadowEntry)?
    } else {
        entry.password
    };
    match hash.as_bytes().first() {
        None => return Err(Refusal::EmptyHash),
        Some(b'!' | b'*') => return Err(Refusal::Locked),
        Some(_) => {}
    }
    // The name equals the (UTF-8) login name it was matched against.
    let name = String::from_utf8(entry.name).map_err(|_| Refusal::BadInput)?;
    let account = Account {
        name,
        uid: entry.uid,
        gid: entry.gid,
        home: entry.home,
    };
    Ok((account, hash))
}

/// The dummy verification: as costly as the costliest hash seen, result unused.
fn dummy(costliest: &Costliest, pass: &[u8]) {
    black_box(crypt::verify(black_box(costliest.dummy_target()), pass));
}

/// Checks `user`/`pass` and returns the account on success.
///
/// Reads passwd and shadow once each, to the end (no cache), and runs exactly
/// one verification unless the input itself is refused ([`Refusal::BadInput`]).
/// Slow (a yescrypt verification takes tens of milliseconds and 16 MiB or more):
/// call it off the event loop.
pub fn authenticate(settings: &AuthSettings, user: &[u8], pass: &[u8]) -> Result<Account, Refusal> {
    let name = check_input(user, pass)?;
    let user = name.as_bytes();
    let mut costliest = Costliest::default();
    let passwd = pass_over(&settings.passwd, |r| {
        accounts::scan_passwd(r, user, &mut costliest)
    });
    let shadow = pass_over(&settings.shadow, |r| {
        accounts::scan_shadow(r, user, &mut costliest)
    });
    let (account, hash) = match decide(passwd, shadow, settings.only_uid) {
        Ok(found) => found,
        Err(refusal) => {
            dummy(&costliest, pass);
            return Err(refusal);
        }
    };
    let verdict = match std::str::from_utf8(hash.as_bytes()) {
        Ok(h) => crypt::verify(h, pass),
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

/// Start-up check: the passwd and shadow files can be opened and read.
/// The error is one line naming the file and the problem.
pub fn check_files(settings: &AuthSettings) -> Result<(), String> {
    for (path, flag) in [
        (&settings.passwd, "--passwd"),
        (&settings.shadow, "--shadow"),
    ] {
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
    }
    Ok(())
}
