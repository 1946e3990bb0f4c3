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
//! shape and add an entry to `SCHEMES`. Entries are tried in order; the DES
//! forms, which have no `$id$` prefix, come last and match by shape.

use super::secret::Secret;
use super::{bcrypt, descrypt, md5crypt, scrypt_mcf, shacrypt, yescrypt_mcf};
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
    /// above our limits). Carries the scheme name and a fixed reason.
    Malformed {
        /// The scheme name, e.g. `$y$` or `BSDi DES`.
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
    /// A short log-safe name: the prefix with both `$`, or the DES form's name.
    name: &'static str,
    /// Whether a stored string belongs to this scheme.
    matches: fn(&str) -> bool,
    /// crypt(3): the full output for the password with the stored string as setting.
    crypt: fn(&str, &[u8]) -> Result<Secret, Malformed>,
    /// Estimated cost of one verification, in nanoseconds on a current x86_64
    /// core; only the order between hashes matters.
    cost: fn(&str) -> Result<u64, Malformed>,
}

/// An entry for a `$id$` scheme.
macro_rules! prefixed {
    ($prefix:expr, $crypt:path, $cost:path) => {
        Scheme {
            name: $prefix,
            matches: |h| h.starts_with($prefix),
            crypt: $crypt,
            cost: $cost,
        }
    };
}

/// The supported schemes. See the module comment for adding one.
static SCHEMES: &[Scheme] = &[
    prefixed!(
        yescrypt_mcf::PREFIX,
        yescrypt_mcf::crypt,
        yescrypt_mcf::cost
    ),
    prefixed!(
        yescrypt_mcf::PREFIX_GOST,
        yescrypt_mcf::crypt_gost,
        yescrypt_mcf::cost
    ),
    prefixed!(scrypt_mcf::PREFIX, scrypt_mcf::crypt, scrypt_mcf::cost),
    prefixed!(shacrypt::PREFIX_512, shacrypt::crypt, shacrypt::cost),
    prefixed!(shacrypt::PREFIX_256, shacrypt::crypt, shacrypt::cost),
    prefixed!("$2b$", bcrypt::crypt, bcrypt::cost),
    prefixed!("$2y$", bcrypt::crypt, bcrypt::cost),
    prefixed!("$2a$", bcrypt::crypt, bcrypt::cost),
    prefixed!("$2x$", bcrypt::crypt, bcrypt::cost),
    prefixed!(md5crypt::PREFIX, md5crypt::crypt, md5crypt::cost),
    Scheme {
        name: "BSDi DES",
        matches: descrypt::is_bsdi,
        crypt: descrypt::crypt_bsdi,
        cost: descrypt::cost_bsdi,
    },
    Scheme {
        name: "DES",
        matches: descrypt::is_traditional,
        crypt: descrypt::crypt_traditional,
        cost: descrypt::cost_traditional,
    },
];

/// A hash for the dummy verification when no account hash is at hand: yescrypt
/// at Debian's default cost (`mkpasswd -m yescrypt`, of a password nobody uses).
pub const DEFAULT_DUMMY_HASH: &str =
    "$y$j9T$FViHg2rb9HcV4HsLPjZoj.$jpu6aFZl.ozc2cgVnZlOKCgKtu5ncQnoObS59RdstU/";

fn scheme_for(hash: &str) -> Option<&'static Scheme> {
    SCHEMES.iter().find(|s| (s.matches)(hash))
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
            scheme: scheme.name,
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
            ("$sha1$40000$salt$hash", "$sha1$"),
            ("$md5,rounds=5000$salt$hash", "unknown"),
            ("$md5$salt$$hash", "$md5$"),
            ("$3$$8846f7eaee8fb117ad06bdd830b7586c", "$3$"),
            (
                "$2$05$IBIil4Xzy6pklLPPPW5k7.5veh0l/radjbhITqbiDSXmy88mRCpS2",
                "$2$",
            ),
            ("abJnggxhB/yWIabJnggxhB/yWI", "unknown"),
            ("abJnggxhB/yW", "unknown"),
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
    fn every_scheme_dispatches() {
        for (h, pw) in [
            (
                "$y$j7T$YDYRbXk5OkyH0S4Qs1AXQ/$hF1IQV2ZXYOUIxzKXmztw3V7NsXSWArCKqK.en1cbh3",
                "r",
            ),
            (
                "$gy$j7T$7El1dCGwNjVr20FeO/wy0/$fhDl48kdbWJHImz2BbPiGCoEc6fCd8.s4r87wSLgqc2",
                "x",
            ),
            (
                "$7$BU..../..../74zyO7OcMotxuUEaZbbt/$eeBjuK3sgS/mTvtjdHHZrLACKmf1n2Ro9Rs.Y/sBKJC",
                "r",
            ),
            (
                "$5$rounds=1000$YTmVyfANX5QHwi7E$a3qD1..yU0RCPq1ItOzhsSQHwPRUK6LjosmT/t1cyW0",
                "x",
            ),
            (
                "$2b$05$IBIil4Xzy6pklLPPPW5k7.5veh0l/radjbhITqbiDSXmy88mRCpS2",
                "r",
            ),
            (
                "$2y$05$IBIil4Xzy6pklLPPPW5k7.5veh0l/radjbhITqbiDSXmy88mRCpS2",
                "r",
            ),
            (
                "$2a$05$0aGTb4eougHvCk5ghDvoTu63n4a.J.9ScIzyOR9zT8Ot60BhWLBPG",
                "r",
            ),
            (
                "$1$Vf9g0DIu$H9qwNuhmZ4/FeuHVlp7ji1",
                "correct horse battery",
            ),
            ("t3mdCwqYmKCFk", "r"),
            ("_J9..VErOm7vitUhNd36", "r"),
        ] {
            assert_eq!(verify(h, pw.as_bytes()), Verdict::Match, "{h}");
            assert_eq!(verify(h, b"R"), Verdict::Mismatch, "{h}");
            assert!(cost(h).is_some(), "{h}");
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
        assert_eq!(
            verify(
                "$2b$25$IBIil4Xzy6pklLPPPW5k7.5veh0l/radjbhITqbiDSXmy88mRCpS2",
                b"pw"
            ),
            Verdict::Malformed {
                scheme: "$2b$",
                reason: "cost above limit"
            }
        );
        assert_eq!(
            verify("_....VErOm7vitUhNd36", b"pw"),
            Verdict::Malformed {
                scheme: "BSDi DES",
                reason: "bad count"
            }
        );
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
