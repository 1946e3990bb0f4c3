//! Dovecot password-scheme prefixes in a users file (`--users`): a password
//! field may start with `{SCHEME}` naming how the rest is to be checked, as in
//! `alice:{SHA512-CRYPT}$6$...`.
//!
//! The crypt(3) schemes are accepted: `{CRYPT}` (any crypt(3) string), and
//! `{DES-CRYPT}`, `{MD5-CRYPT}` (and its old alias `{MD5}`), `{SHA256-CRYPT}`,
//! `{SHA512-CRYPT}`, `{BLF-CRYPT}`, each of which must hold a string of the
//! scheme it names. Names are matched without regard to case, as Dovecot does.
//! Every other scheme (`{PLAIN}`, `{SSHA}`, `{ARGON2ID}` …) is refused as
//! unsupported, named in the log by its `{SCHEME}` only. A field without a
//! prefix is a crypt(3) string.

use super::crypt;

/// Longest scheme name shown in logs.
const NAME_MAX: usize = 24;

/// Splits a leading `{SCHEME}` off `field`: `(Some(scheme), rest)`, or
/// `(None, field)` when there is no well-formed prefix.
pub(crate) fn strip(field: &[u8]) -> (Option<&[u8]>, &[u8]) {
    if let Some(rest) = field.strip_prefix(b"{")
        && let Some(end) = rest.iter().position(|&c| c == b'}')
    {
        return (Some(&rest[..end]), &rest[end + 1..]);
    }
    (None, field)
}

/// Checks that `scheme` (from a `{SCHEME}` prefix) is a crypt(3) scheme that
/// may hold `hash`. The error is a log-safe scheme description.
pub(crate) fn check(scheme: &[u8], hash: &str) -> Result<(), String> {
    let upper = scheme.to_ascii_uppercase();
    let id = crypt::scheme_id(hash);
    let fits = match upper.as_slice() {
        b"CRYPT" => true,
        b"DES-CRYPT" => id == "DES",
        b"MD5-CRYPT" | b"MD5" => id == "$1$",
        b"SHA256-CRYPT" => id == "$5$",
        b"SHA512-CRYPT" => id == "$6$",
        b"BLF-CRYPT" => matches!(id.as_str(), "$2a$" | "$2b$" | "$2y$" | "$2x$"),
        _ => return Err(format!("{{{}}}", safe_name(scheme))),
    };
    if fits {
        Ok(())
    } else {
        Err(format!("{{{}}} holding {id}", safe_name(scheme)))
    }
}

/// `scheme` if it is short and plain (letters, digits, `-`, `_`, `.`),
/// otherwise "?".
fn safe_name(scheme: &[u8]) -> String {
    let plain = scheme
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if plain && !scheme.is_empty() && scheme.len() <= NAME_MAX {
        String::from_utf8_lossy(scheme).into_owned()
    } else {
        "?".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_prefixes() {
        assert_eq!(
            strip(b"{SHA512-CRYPT}$6$s$h"),
            (Some(&b"SHA512-CRYPT"[..]), &b"$6$s$h"[..])
        );
        assert_eq!(strip(b"$6$s$h"), (None, &b"$6$s$h"[..]));
        assert_eq!(strip(b"{open"), (None, &b"{open"[..]));
        assert_eq!(strip(b"{}x"), (Some(&b""[..]), &b"x"[..]));
    }

    #[test]
    fn crypt_schemes_accepted_when_they_fit() {
        for (scheme, hash) in [
            ("CRYPT", "$y$j9T$a$b"),
            ("crypt", "abJnggxhB/yWI"),
            ("DES-CRYPT", "abJnggxhB/yWI"),
            ("MD5-CRYPT", "$1$s$h"),
            ("MD5", "$1$s$h"),
            ("SHA256-CRYPT", "$5$s$h"),
            ("SHA512-CRYPT", "$6$rounds=5000$s$h"),
            ("Sha512-Crypt", "$6$s$h"),
            ("BLF-CRYPT", "$2y$05$x"),
            ("BLF-CRYPT", "$2b$05$x"),
        ] {
            assert_eq!(check(scheme.as_bytes(), hash), Ok(()), "{scheme} {hash}");
        }
    }

    #[test]
    fn other_schemes_refused_with_a_safe_name() {
        assert_eq!(check(b"PLAIN", "secret"), Err("{PLAIN}".to_owned()));
        assert_eq!(check(b"SSHA256", "abc"), Err("{SSHA256}".to_owned()));
        assert_eq!(check(b"a b", "abc"), Err("{?}".to_owned()));
        assert_eq!(
            check(b"MD5-CRYPT", "$6$s$h"),
            Err("{MD5-CRYPT} holding $6$".to_owned())
        );
        assert_eq!(
            check(b"SHA512-CRYPT", "secret"),
            Err("{SHA512-CRYPT} holding unknown".to_owned())
        );
    }
}
