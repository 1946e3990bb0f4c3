//! crypt(3) hash verification: the scheme table, the constant-time comparison,
//! cost estimates for the dummy verification, and log-safe scheme names.
//!
//! Every scheme is a `crypt` function that computes the full output string
//! crypt(3) would give for the password under the stored hash used as setting;
//! [`verify`] then compares that string with the stored one in constant time,
//! as pam_unix and popa3d do with the C library. Non-canonical strings (a salt
//! longer than the scheme uses, `rounds=05000`) therefore never verify.
//!
//! To add a scheme, write a module with `crypt` and `cost` functions of the same
//! shape and add one line to `SCHEMES`. Schemes without a `$id$` prefix
//! (traditional DES, BSDi `_`) would get an entry whose prefix is matched after
//! all `$` schemes; [`scheme_id`] already names them for logs.

use super::secret::Secret;
use super::{md5crypt, shacrypt, yescrypt_mcf};
use subtle::ConstantTimeEq;

/// Result of checking a password against a stored hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The password produces the stored hash.
    Match,
    /// It does not.
    Mismatch,
    /// The hash uses a scheme not implemented here; carries [`scheme_id`].
    Unsupported(String),
    /// The scheme is known but the string cannot be used (bad parameters, cost
    /// above our limits). Carries the scheme prefix and a fixed reason.
    Malformed {
        /// The scheme prefix, e.g. `$y$`.
        scheme: &'static str,
        /// Why, e.g. "bad rounds=".
        reason: &'static str,
    },
}

/// Why a stored string cannot be used by its scheme (a fixed phrase, never any
/// part of the hash).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Malformed(pub(crate) &'static str);

/// One supported scheme.
struct Scheme {
    /// The prefix that selects it, including both `$`.
    prefix: &'static str,
    /// crypt(3): the full output for the password with the stored string as setting.
    crypt: fn(&str, &[u8]) -> Result<Secret, Malformed>,
    /// Estimated cost of one verification, in nanoseconds on a current x86_64
    /// core; only the order between hashes matters.
    cost: fn(&str) -> Result<u64, Malformed>,
}

/// The supported schemes. See the module comment for adding one.
static SCHEMES: &[Scheme] = &[
    Scheme {
        prefix: yescrypt_mcf::PREFIX,
        crypt: yescrypt_mcf::crypt,
        cost: yescrypt_mcf::cost,
    },
    Scheme {
        prefix: shacrypt::PREFIX_512,
        crypt: shacrypt::crypt,
        cost: shacrypt::cost,
    },
    Scheme {
        prefix: shacrypt::PREFIX_256,
        crypt: shacrypt::crypt,
        cost: shacrypt::cost,
    },
    Scheme {
        prefix: md5crypt::PREFIX,
        crypt: md5crypt::crypt,
        cost: md5crypt::cost,
    },
];

/// A hash for the dummy verification when no account hash is at hand: yescrypt
/// at Debian's default cost (`mkpasswd -m yescrypt`, of a password nobody uses).
pub const DEFAULT_DUMMY_HASH: &str =
    "$y$j9T$FViHg2rb9HcV4HsLPjZoj.$jpu6aFZl.ozc2cgVnZlOKCgKtu5ncQnoObS59RdstU/";

fn scheme_for(hash: &str) -> Option<&'static Scheme> {
    SCHEMES.iter().find(|s| hash.starts_with(s.prefix))
}

/// Checks `password` against the stored crypt(3) string `hash`.
///
/// The cost is that of the scheme and its parameters. Callers bound the
/// password length (sha-crypt's work grows with its square).
pub fn verify(hash: &str, password: &[u8]) -> Verdict {
    let Some(scheme) = scheme_for(hash) else {
        return Verdict::Unsupported(scheme_id(hash));
    };
    match (scheme.crypt)(hash, password) {
        Ok(computed) => {
            if bool::from(computed.as_bytes().ct_eq(hash.as_bytes())) {
                Verdict::Match
            } else {
                Verdict::Mismatch
            }
        }
        Err(Malformed(reason)) => Verdict::Malformed {
            scheme: scheme.prefix,
            reason,
        },
    }
}

/// Estimated cost of verifying against `hash`, in nanoseconds; `None` when the
/// scheme is unsupported or the string malformed.
pub fn cost(hash: &str) -> Option<u64> {
    scheme_for(hash).and_then(|s| (s.cost)(hash).ok())
}

/// A name for the scheme of `hash` that is safe to log: `$id$` for a modular
/// crypt string whose id is short and plain, "DES" or "BSDi DES" for the
/// traditional forms, otherwise "unknown". Never any salt or hash characters
/// beyond the id.
pub fn scheme_id(hash: &str) -> String {
    let b = hash.as_bytes();
    if let Some(rest) = b.strip_prefix(b"$") {
        if let Some(end) = rest.iter().position(|&c| c == b'$') {
            let id = &rest[..end];
            let plain = id
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_');
            if !id.is_empty() && id.len() <= 8 && plain {
                return format!("${}$", String::from_utf8_lossy(id));
            }
        }
        return "unknown".to_owned();
    }
    let crypt64 = |s: &[u8]| s.iter().all(|&c| super::b64::value(c).is_some());
    if b.len() == 13 && crypt64(b) {
        "DES".to_owned()
    } else if b.len() == 20 && b[0] == b'_' && crypt64(&b[1..]) {
        "BSDi DES".to_owned()
    } else {
        "unknown".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch_and_mismatch() {
        let h = "$1$Vf9g0DIu$H9qwNuhmZ4/FeuHVlp7ji1";
        assert_eq!(verify(h, b"correct horse battery"), Verdict::Match);
        assert_eq!(verify(h, b"correct horse batterz"), Verdict::Mismatch);
        assert_eq!(verify(h, b""), Verdict::Mismatch);
    }

    #[test]
    fn default_dummy_is_valid_and_costly() {
        assert_eq!(
            verify(DEFAULT_DUMMY_HASH, b"dummy password for unknown users"),
            Verdict::Match
        );
        assert!(cost(DEFAULT_DUMMY_HASH).unwrap() > cost("$6$rounds=50000$s$").unwrap());
    }

    #[test]
    fn unsupported_schemes() {
        for (h, id) in [
            (
                "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
                "$2b$",
            ),
            ("$gy$j9T$salt$hash", "$gy$"),
            ("$7$CU..../....salt$hash", "$7$"),
            ("$sha1$40000$salt$hash", "$sha1$"),
            ("abJnggxhB/yWI", "DES"),
            ("_J9..CCCCXBrJUJV154M", "BSDi DES"),
            ("$", "unknown"),
            ("$$", "unknown"),
            ("$verylongid$x", "unknown"),
            ("$a b$x", "unknown"),
            ("plain text", "unknown"),
            ("", "unknown"),
        ] {
            assert_eq!(verify(h, b"pw"), Verdict::Unsupported(id.to_owned()), "{h}");
            assert_eq!(cost(h), None);
        }
    }

    #[test]
    fn malformed_is_not_a_match() {
        assert_eq!(
            verify("$6$rounds=10$salt$hash", b"pw"),
            Verdict::Malformed {
                scheme: "$6$",
                reason: "rounds= out of range"
            }
        );
        assert!(matches!(
            verify("$y$jZT$abcd$hash", b"pw"),
            Verdict::Malformed { scheme: "$y$", .. }
        ));
    }

    #[test]
    fn truncated_or_extended_hashes_do_not_match() {
        let h = "$5$bMzRWj3iQoJxHGQ5$.2Z0L8aoEN9YDnD7LYX0mL0TrlPK9hgfmc7sSap8sx8";
        let pw = b"correct horse battery";
        assert_eq!(verify(h, pw), Verdict::Match);
        assert_eq!(verify(&h[..h.len() - 1], pw), Verdict::Mismatch);
        assert_eq!(verify(&format!("{h}x"), pw), Verdict::Mismatch);
        assert_eq!(verify(&format!("{h}\r"), pw), Verdict::Mismatch);
        assert_eq!(verify("$5$bMzRWj3iQoJxHGQ5", pw), Verdict::Mismatch);
        // A salt longer than 16 never verifies: crypt(3) would print it cut.
        assert_eq!(
            verify(
                "$6$saltsaltsaltsaltsalt$oRXSB4eQuq6p1wDDs4lxs5nxMRSrK4OTUYsUe0E78wBMtqrjZ348L96EJiaiar2bR2wH2RALT3dDyjBY0ffPC0",
                b"r"
            ),
            Verdict::Mismatch
        );
    }
}
