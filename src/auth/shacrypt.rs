//! sha256-crypt (`$5$`) and sha512-crypt (`$6$`): setting parsing and output
//! encoding here, the digest itself from the `sha-crypt` crate's low-level
//! `sha256_crypt` / `sha512_crypt` functions.
//!
//! Setting: the prefix, an optional `rounds=N$` (1000 ≤ N ≤ 999999999, decimal,
//! no leading zero; anything else is refused as libxcrypt refuses it), then a
//! salt of up to 16 bytes ending at the next `$` (longer salts are cut to 16).
//! Output: the prefix, `rounds=N$` if it was given (also when N is 5000), the
//! salt, `$`, and the digest in crypt base64 with the scheme's byte order.

use super::b64;
use super::crypt::Malformed;
use super::secret::{Secret, wipe};
use sha_crypt::Params;

/// `$5$` prefix.
pub(crate) const PREFIX_256: &str = "$5$";
/// `$6$` prefix.
pub(crate) const PREFIX_512: &str = "$6$";
/// Longest salt used.
const SALT_MAX: usize = 16;
/// Rounds when the setting does not say.
const ROUNDS_DEFAULT: u32 = 5000;
/// Estimated nanoseconds per round for a short password (see `crypt::cost`;
/// measured on x86_64, where SHA-256 has hardware support and SHA-512 not).
const NS_PER_ROUND_256: u64 = 120;
/// Estimated nanoseconds per round for a short password.
const NS_PER_ROUND_512: u64 = 500;

/// Which digest.
#[derive(Clone, Copy)]
enum Variant {
    Sha256,
    Sha512,
}

/// A parsed setting.
struct Setting<'a> {
    variant: Variant,
    /// `Some` when the setting spelled out `rounds=`.
    rounds: Option<u32>,
    salt: &'a [u8],
}

/// Parses decimal rounds as libxcrypt accepts them.
fn parse_rounds(digits: &[u8]) -> Result<u32, Malformed> {
    let well_formed = !digits.is_empty()
        && digits.len() <= 9
        && digits[0] != b'0'
        && digits.iter().all(u8::is_ascii_digit);
    if !well_formed {
        return Err(Malformed("bad rounds="));
    }
    let n = digits
        .iter()
        .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    if !(Params::ROUNDS_MIN..=Params::ROUNDS_MAX).contains(&n) {
        return Err(Malformed("rounds= out of range"));
    }
    Ok(n)
}

fn parse(setting: &str) -> Result<Setting<'_>, Malformed> {
    let s = setting.as_bytes();
    let (variant, mut rest) = if let Some(r) = s.strip_prefix(PREFIX_256.as_bytes()) {
        (Variant::Sha256, r)
    } else if let Some(r) = s.strip_prefix(PREFIX_512.as_bytes()) {
        (Variant::Sha512, r)
    } else {
        return Err(Malformed("not sha-crypt"));
    };
    let mut rounds = None;
    if let Some(r) = rest.strip_prefix(b"rounds=") {
        let end = r
            .iter()
            .position(|&c| c == b'$')
            .ok_or(Malformed("bad rounds="))?;
        rounds = Some(parse_rounds(&r[..end])?);
        rest = &r[end + 1..];
    }
    let end = rest.iter().position(|&c| c == b'$').unwrap_or(rest.len());
    Ok(Setting {
        variant,
        rounds,
        salt: &rest[..end.min(SALT_MAX)],
    })
}

/// Byte groups `(high, mid, low)` of the sha512-crypt output, 4 characters each;
/// byte 63 follows alone as 2 characters.
const GROUPS_512: [(usize, usize, usize); 21] = [
    (0, 21, 42),
    (22, 43, 1),
    (44, 2, 23),
    (3, 24, 45),
    (25, 46, 4),
    (47, 5, 26),
    (6, 27, 48),
    (28, 49, 7),
    (50, 8, 29),
    (9, 30, 51),
    (31, 52, 10),
    (53, 11, 32),
    (12, 33, 54),
    (34, 55, 13),
    (56, 14, 35),
    (15, 36, 57),
    (37, 58, 16),
    (59, 17, 38),
    (18, 39, 60),
    (40, 61, 19),
    (62, 20, 41),
];

/// Byte groups of the sha256-crypt output, 4 characters each; bytes 31 and 30
/// follow as 3 characters.
const GROUPS_256: [(usize, usize, usize); 10] = [
    (0, 10, 20),
    (21, 1, 11),
    (12, 22, 2),
    (3, 13, 23),
    (24, 4, 14),
    (15, 25, 5),
    (6, 16, 26),
    (27, 7, 17),
    (18, 28, 8),
    (9, 19, 29),
];

/// crypt(3) for `$5$` and `$6$`: the full output string for `password`.
pub(crate) fn crypt(setting: &str, password: &[u8]) -> Result<Secret, Malformed> {
    let st = parse(setting)?;
    let rounds = st.rounds.unwrap_or(ROUNDS_DEFAULT);
    let params = Params::new(rounds).map_err(|_| Malformed("rounds= out of range"))?;

    let mut out = Secret::with_capacity(3 + 17 + SALT_MAX + 1 + 86);
    let v = out.vec();
    v.extend_from_slice(&setting.as_bytes()[..3]);
    if let Some(r) = st.rounds {
        v.extend_from_slice(format!("rounds={r}$").as_bytes());
    }
    v.extend_from_slice(st.salt);
    v.push(b'$');
    match st.variant {
        Variant::Sha512 => {
            let mut d = sha_crypt::sha512_crypt(password, st.salt, params);
            for (hi, mid, lo) in GROUPS_512 {
                b64::push_24(v, d[hi], d[mid], d[lo], 4);
            }
            b64::push_24(v, 0, 0, d[63], 2);
            wipe(&mut d);
        }
        Variant::Sha256 => {
            let mut d = sha_crypt::sha256_crypt(password, st.salt, params);
            for (hi, mid, lo) in GROUPS_256 {
                b64::push_24(v, d[hi], d[mid], d[lo], 4);
            }
            b64::push_24(v, 0, d[31], d[30], 3);
            wipe(&mut d);
        }
    }
    Ok(out)
}

/// Estimated verification cost in nanoseconds, proportional to the rounds.
pub(crate) fn cost(setting: &str) -> Result<u64, Malformed> {
    let st = parse(setting)?;
    let rounds = u64::from(st.rounds.unwrap_or(ROUNDS_DEFAULT));
    Ok(match st.variant {
        Variant::Sha256 => rounds * NS_PER_ROUND_256,
        Variant::Sha512 => rounds * NS_PER_ROUND_512,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(setting: &str, pw: &[u8]) -> String {
        String::from_utf8(crypt(setting, pw).unwrap().as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn known_vectors() {
        // Debian 12 mkpasswd and Python's crypt (libxcrypt).
        for (pw, h) in [
            (
                "correct horse battery",
                "$6$M/gVC3yZxx44nIYR$.02//v/Dr5p3b79bIdWe79GPQgbP9cKHgWDa6L7Bnv9eff1iCw2q81M1MhtzKz1jbTSYpiHHQT/cPWl78xNDX0",
            ),
            (
                "pässwörd ✓ 日本",
                "$6$NeLdd52jIWsBgI86$Dx2V2HUBkDxKm1dx/5LG5puM4R432Msoga1uopfhLWeu7WbRJe6cI1NWrk9ZvJqo8CaR6FxI.HVnE82nQaOUm1",
            ),
            (
                "correct horse battery",
                "$5$bMzRWj3iQoJxHGQ5$.2Z0L8aoEN9YDnD7LYX0mL0TrlPK9hgfmc7sSap8sx8",
            ),
            (
                "pässwörd ✓ 日本",
                "$5$nCOV6U/k3HjjzZzZ$a//KQDIL5gsyIFjgBmzBTwvxUjMWxlMCxj2J3ltNjQ7",
            ),
            (
                "r",
                "$6$rounds=5000$saltsaltsalt$QX3LKY5IhgWNONsKJMPJDSEjR3niirCwGoZRKqHHH1xV52hXVjHcOFzk41s4k.54FSrO2l/s5DbR4MgtByvHp.",
            ),
            (
                "r",
                "$5$rounds=5000$saltsaltsalt$8gJ2EjSlwK0xztgHFQQW.4A9Ta1dMdsINjB8u8mpcW2",
            ),
            (
                "r",
                "$5$rounds=20000$Q7bpnFEPzwByBnHt$gnzmD4SJnHCy.n0XOEcix1U2SknX0h3n53P28hc3o6A",
            ),
            (
                "x",
                "$6$rounds=1000$WB9IvMY.28GzEaWM$Nk02lXRC4m92kffR3i/Fc2I5ApuWRV7KZe1gXYOAAEaeePJlq0DVUxSsV0gQSCWIhRhbjBfMrf3hInE.oLvX1/",
            ),
        ] {
            assert_eq!(out(h, pw.as_bytes()), h);
        }
    }

    #[test]
    fn salt_is_cut_to_sixteen() {
        assert_eq!(
            out("$6$saltsaltsaltsaltsalt$", b"r"),
            "$6$saltsaltsaltsalt$oRXSB4eQuq6p1wDDs4lxs5nxMRSrK4OTUYsUe0E78wBMtqrjZ348L96EJiaiar2bR2wH2RALT3dDyjBY0ffPC0"
        );
    }

    #[test]
    fn bad_rounds_are_malformed() {
        for s in [
            "$6$rounds=10$salt$",
            "$6$rounds=999$salt$",
            "$6$rounds=05000$salt$",
            "$6$rounds=$salt$",
            "$6$rounds=12a$salt$",
            "$6$rounds=1000000000$salt$",
            "$6$rounds=99999999999999999999$salt$",
            "$5$rounds=5000",
        ] {
            assert!(crypt(s, b"x").is_err(), "{s}");
            assert!(cost(s).is_err(), "{s}");
        }
    }

    #[test]
    fn cost_scales_with_rounds() {
        assert!(cost("$6$rounds=10000$s$").unwrap() > cost("$6$s$").unwrap());
        assert!(cost("$6$s$").unwrap() > cost("$5$s$").unwrap());
        assert_eq!(cost("$6$rounds=5000$s$"), cost("$6$s$"));
    }
}
