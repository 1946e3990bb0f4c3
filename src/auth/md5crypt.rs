//! md5-crypt (`$1$`), the FreeBSD/Linux MD5-based crypt(3) scheme, written here on
//! the `md-5` crate from the published description of the algorithm.
//!
//! Setting: `$1$` then a salt of up to 8 bytes ending at the next `$` (longer
//! salts are cut to 8, as libxcrypt and glibc do). Output: the `$1$`, the salt,
//! `$`, and 22 characters of crypt base64 of the 16-byte digest.

use super::b64;
use super::crypt::Malformed;
use super::secret::{Secret, wipe};
use md5::{Digest, Md5};

/// The scheme prefix.
pub(crate) const PREFIX: &str = "$1$";
/// Longest salt used.
const SALT_MAX: usize = 8;
/// Fixed number of strengthening rounds.
const ROUNDS: usize = 1000;
/// Estimated cost in nanoseconds (see `crypt::cost`): about 0.15 ms.
const COST_NS: u64 = 150_000;

/// The 16-byte md5-crypt digest of `password` with `salt` (already cut to 8).
fn digest(password: &[u8], salt: &[u8]) -> [u8; 16] {
    // Digest of password, salt, password: mixed in below once per 16
    // password bytes.
    let mut alt: [u8; 16] = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize()
        .into();

    let mut ctx = Md5::new()
        .chain_update(password)
        .chain_update(PREFIX)
        .chain_update(salt);
    let mut left = password.len();
    while left > 0 {
        let n = left.min(alt.len());
        ctx.update(&alt[..n]);
        left -= n;
    }
    // One byte per bit of the password length: a zero byte for a set bit, the
    // first password byte for a clear one.
    let mut bits = password.len();
    while bits != 0 {
        if bits & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..1]);
        }
        bits >>= 1;
    }
    let mut result: [u8; 16] = ctx.finalize().into();

    for round in 0..ROUNDS {
        let mut c = Md5::new();
        if round % 2 == 1 {
            c.update(password);
        } else {
            c.update(result);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(password);
        }
        if round % 2 == 1 {
            c.update(result);
        } else {
            c.update(password);
        }
        result = c.finalize().into();
    }
    wipe(&mut alt);
    result
}

/// The salt named by `setting` (which starts with [`PREFIX`]).
fn salt_of(setting: &[u8]) -> &[u8] {
    let rest = &setting[PREFIX.len()..];
    let end = rest.iter().position(|&c| c == b'$').unwrap_or(rest.len());
    &rest[..end.min(SALT_MAX)]
}

/// crypt(3) for `$1$`: the full output string for `password` under `setting`.
pub(crate) fn crypt(setting: &str, password: &[u8]) -> Result<Secret, Malformed> {
    let setting = setting.as_bytes();
    if !setting.starts_with(PREFIX.as_bytes()) {
        return Err(Malformed("not md5-crypt"));
    }
    let salt = salt_of(setting);
    let mut d = digest(password, salt);

    let mut out = Secret::with_capacity(PREFIX.len() + salt.len() + 1 + 22);
    let v = out.vec();
    v.extend_from_slice(PREFIX.as_bytes());
    v.extend_from_slice(salt);
    v.push(b'$');
    for (hi, mid, lo) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        b64::push_24(v, d[hi], d[mid], d[lo], 4);
    }
    b64::push_24(v, 0, 0, d[11], 2);
    wipe(&mut d);
    Ok(out)
}

/// Estimated verification cost in nanoseconds: fixed for md5-crypt.
pub(crate) fn cost(setting: &str) -> Result<u64, Malformed> {
    if setting.starts_with(PREFIX) {
        Ok(COST_NS)
    } else {
        Err(Malformed("not md5-crypt"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(setting: &str, pw: &[u8]) -> String {
        String::from_utf8(crypt(setting, pw).unwrap().as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn known_vectors() {
        // From Debian 12 `mkpasswd -m md5` and Python's crypt (libxcrypt).
        let h = "$1$Vf9g0DIu$H9qwNuhmZ4/FeuHVlp7ji1";
        assert_eq!(out(h, b"correct horse battery"), h);
        let h = "$1$/84JbG/A$DksKOLC9KFw7UQdngM7gM/";
        assert_eq!(out(h, "pässwörd ✓ 日本".as_bytes()), h);
    }

    #[test]
    fn salt_is_cut_to_eight() {
        // libxcrypt: crypt("r", "$1$saltsaltsalt$")
        assert_eq!(
            out("$1$saltsaltsalt$", b"r"),
            "$1$saltsalt$OL/LAUXV1Y0d/Thi0bt3l0"
        );
        assert_eq!(
            out("$1$saltsalt", b"r"),
            "$1$saltsalt$OL/LAUXV1Y0d/Thi0bt3l0"
        );
    }

    #[test]
    fn one_byte_password() {
        let h = out("$1$abcdefgh$", b"x");
        assert_eq!(h.len(), 3 + 8 + 1 + 22);
        assert_ne!(h, out("$1$abcdefgh$", b"y"));
    }
}
