//! Authentication: who may log in, checked against passwd(5) and shadow(5) files
//! read fresh for every login, with crypt(3) hashes verified in pure Rust.
//!
//! Owned here: the account database readers, the crypt scheme dispatch, the
//! account policy (locked, empty, uid 0, uid not served) and the dummy
//! verification for unknown users. Callers get an [`Account`] or a [`Refusal`];
//! every refusal must be answered on the wire exactly like a wrong password.

mod b64;
pub mod crypt;
mod md5crypt;
mod secret;
mod shacrypt;
mod yescrypt_mcf;

use std::path::PathBuf;

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
        let _ = f;
        todo!("auth helper")
    }
}

/// Checks `user`/`pass` and returns the account on success.
pub fn authenticate(settings: &AuthSettings, user: &[u8], pass: &[u8]) -> Result<Account, Refusal> {
    let _ = (settings, user, pass);
    todo!("auth helper")
}

/// Start-up check: the passwd and shadow files can be opened and read.
/// The error is one line naming the file and the problem.
pub fn check_files(settings: &AuthSettings) -> Result<(), String> {
    let _ = settings;
    todo!("auth helper")
}
