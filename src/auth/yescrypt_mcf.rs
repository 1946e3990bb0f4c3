//! yescrypt (`$y$`) and gost-yescrypt (`$gy$`) strings as libxcrypt writes
//! them: parsing, resource limits and output encoding here, the key derivation
//! in the in-tree `pop3d-yescrypt` package (`src/auth/yescrypt/`).
//!
//! String: `$y$` PARAMS `$` SALT `$` HASH. PARAMS is yescrypt's compact encoding
//! of flavor, log2(N), r and optional p, t, g, NROM; SALT is crypt base64 of the
//! raw salt (little-endian groups, decoded strictly); HASH is 32 bytes, 43
//! characters. The output repeats the setting verbatim up to the last `$`.
//!
//! gost-yescrypt (libxcrypt's `$gy$`) has the same PARAMS and SALT. Its HASH is
//! the yescrypt output Y passed through two HMACs with Streebog-256 (GOST R
//! 34.11-2012): K = HMAC(Streebog-256(password), "$gy$PARAMS$SALT"), then
//! HASH = HMAC(K, Y), encoded like yescrypt's.
//!
//! Limits (ours, above anything libxcrypt generates: its highest cost is
//! N = 2^18, r = 32, 1 GiB): at most 1 GiB of memory (128·r·N bytes), p ≤ 16,
//! t ≤ 16. A string beyond them is refused as malformed rather than allowed to
//! exhaust memory.

use super::b64;
use super::crypt::Malformed;
use super::secret::{Secret, wipe};
use pop3d_yescrypt::{Flavor, Params};

/// The scheme prefix.
pub(crate) const PREFIX: &str = "$y$";
/// The gost-yescrypt prefix.
pub(crate) const PREFIX_GOST: &str = "$gy$";
/// Raw output length.
const HASH_LEN: usize = 32;
/// Longest decoded salt (libxcrypt's buffer size).
const SALT_MAX: usize = 64;
/// Most memory one verification may take, as r·N (128 bytes each).
const RN_MAX: u64 = (1 << 30) / 128;
/// Largest p accepted.
const P_MAX: u32 = 16;
/// Largest t accepted.
const T_MAX: u32 = 16;
/// Estimated nanoseconds per unit of r·N (Debian's j9T, r·N = 2^17, ~35 ms).
const NS_PER_RN: u64 = 270;
/// The read-write flavor libxcrypt uses; the others are classic scrypt (0) and
/// write-once-read-many (1).
const FLAVOR_RW: u32 = 0b10_1111;

/// What the PARAMS field says.
#[derive(Debug, PartialEq, Eq)]
struct Cost {
    flavor: u32,
    n_log2: u32,
    r: u32,
    p: u32,
    t: u32,
}

/// Reads one number in yescrypt's variable-width encoding at `*pos`, advancing
/// it. The first character's value selects the width: 0..=47 is a one-character
/// number, 48..=55 starts two characters, 56..=59 three, 60..=61 four, 62 five,
/// 63 six; each range continues the count where the previous one ended, and
/// later characters add 6 bits each, most significant first. `min` is added.
fn read_number(s: &[u8], pos: &mut usize, min: u32) -> Option<u32> {
    let first = u64::from(b64::value(*s.get(*pos)?)?);
    *pos += 1;
    let mut start = 0u64; // first value of the current range
    let mut end = 47u64; // last value of the current range
    let mut shift = 0u32; // bits carried by the following characters
    let mut offset = u64::from(min); // numbers taken by the earlier ranges
    while first > end {
        offset += (end + 1 - start) << shift;
        start = end + 1;
        end = start + (62 - end) / 2;
        shift += 6;
    }
    let mut n = offset + ((first - start) << shift);
    while shift > 0 {
        shift -= 6;
        n += u64::from(b64::value(*s.get(*pos)?)?) << shift;
        *pos += 1;
    }
    u32::try_from(n).ok()
}

/// Parses PARAMS fully (every character used) and applies our limits.
fn parse_params(s: &[u8]) -> Result<Cost, Malformed> {
    const BAD: Malformed = Malformed("bad parameters");
    let mut pos = 0;
    let flavor = read_number(s, &mut pos, 0).ok_or(BAD)?;
    let n_log2 = read_number(s, &mut pos, 1).ok_or(BAD)?;
    let r = read_number(s, &mut pos, 1).ok_or(BAD)?;
    let (mut p, mut t) = (1, 0);
    if pos < s.len() {
        let have = read_number(s, &mut pos, 1).ok_or(BAD)?;
        if have & !0b1111 != 0 {
            return Err(BAD);
        }
        if have & 1 != 0 {
            p = read_number(s, &mut pos, 2).ok_or(BAD)?;
        }
        if have & 2 != 0 {
            t = read_number(s, &mut pos, 1).ok_or(BAD)?;
        }
        if have & 4 != 0 {
            read_number(s, &mut pos, 1).ok_or(BAD)?; // g: the crate refuses g != 0
            return Err(Malformed("cost upgrades (g) not supported"));
        }
        if have & 8 != 0 {
            return Err(Malformed("ROM (NROM) not supported"));
        }
    }
    if pos != s.len() {
        return Err(BAD);
    }
    if n_log2 >= 40 || (u64::from(r) << n_log2) > RN_MAX || p > P_MAX || t > T_MAX {
        return Err(Malformed("cost above limit"));
    }
    Ok(Cost {
        flavor,
        n_log2,
        r,
        p,
        t,
    })
}

/// The pieces of a `$y$` string.
struct Parts<'a> {
    params: &'a str,
    salt: &'a str,
    cost: Cost,
}

/// Splits a setting with the given prefix.
fn split<'a>(prefix: &str, setting: &'a str) -> Result<Parts<'a>, Malformed> {
    let rest = setting
        .strip_prefix(prefix)
        .ok_or(Malformed("not yescrypt"))?;
    let (params, after) = rest.split_once('$').ok_or(Malformed("no salt"))?;
    let salt = after.rsplit_once('$').map_or(after, |(salt, _)| salt);
    let cost = parse_params(params.as_bytes())?;
    Ok(Parts { params, salt, cost })
}

/// The raw 32-byte yescrypt output for `password` under the parsed setting.
fn derive(parts: &Parts<'_>, password: &[u8]) -> Result<[u8; HASH_LEN], Malformed> {
    let c = &parts.cost;
    let flavor = match c.flavor {
        0 => Flavor::Classic,
        1 => Flavor::Worm,
        FLAVOR_RW => Flavor::Rw,
        _ => return Err(Malformed("unsupported flavor")),
    };
    let params = Params {
        flavor,
        n: 1 << c.n_log2,
        r: c.r,
        p: c.p,
        t: c.t,
    };

    let mut salt = Vec::with_capacity(SALT_MAX + 3);
    b64::decode_le(parts.salt.as_bytes(), &mut salt).ok_or(Malformed("bad salt"))?;
    if salt.len() > SALT_MAX {
        return Err(Malformed("salt too long"));
    }

    let mut hash = [0u8; HASH_LEN];
    pop3d_yescrypt::derive(password, &salt, &params, &mut hash)
        .map_err(|_| Malformed("bad parameters"))?;
    Ok(hash)
}

/// The output string: `prefix` PARAMS `$` SALT `$` and `hash` encoded.
fn output(prefix: &str, parts: &Parts<'_>, hash: &[u8; HASH_LEN]) -> Secret {
    let mut out =
        Secret::with_capacity(prefix.len() + parts.params.len() + parts.salt.len() + 2 + 43);
    let v = out.vec();
    v.extend_from_slice(prefix.as_bytes());
    v.extend_from_slice(parts.params.as_bytes());
    v.push(b'$');
    v.extend_from_slice(parts.salt.as_bytes());
    v.push(b'$');
    b64::push_le(v, hash);
    out
}

/// crypt(3) for `$y$`: the full output string for `password` under `setting`.
pub(crate) fn crypt(setting: &str, password: &[u8]) -> Result<Secret, Malformed> {
    let parts = split(PREFIX, setting)?;
    let mut hash = derive(&parts, password)?;
    let out = output(PREFIX, &parts, &hash);
    wipe(&mut hash);
    Ok(out)
}

/// crypt(3) for `$gy$`: the full output string for `password` under `setting`.
pub(crate) fn crypt_gost(setting: &str, password: &[u8]) -> Result<Secret, Malformed> {
    use hmac::{KeyInit, Mac};
    use streebog::{Digest, Streebog256};
    type HmacStreebog = hmac::Hmac<Streebog256>;

    let parts = split(PREFIX_GOST, setting)?;
    let mut y = derive(&parts, password)?;
    let mut pw_hash: [u8; 32] = Streebog256::digest(password).into();
    let mut inner = HmacStreebog::new_from_slice(&pw_hash).map_err(|_| Malformed("hmac"))?;
    inner.update(PREFIX_GOST.as_bytes());
    inner.update(parts.params.as_bytes());
    inner.update(b"$");
    inner.update(parts.salt.as_bytes());
    let mut key: [u8; 32] = inner.finalize().into_bytes().into();
    let mut outer = HmacStreebog::new_from_slice(&key).map_err(|_| Malformed("hmac"))?;
    outer.update(&y);
    let mut hash: [u8; HASH_LEN] = outer.finalize().into_bytes().into();
    let out = output(PREFIX_GOST, &parts, &hash);
    for buf in [&mut y, &mut pw_hash, &mut key, &mut hash] {
        wipe(buf);
    }
    Ok(out)
}

/// Estimated verification cost in nanoseconds: proportional to r·N, times
/// (1 + t), times p for the flavors that run p full passes.
pub(crate) fn cost(setting: &str) -> Result<u64, Malformed> {
    let prefix = if setting.starts_with(PREFIX_GOST) {
        PREFIX_GOST
    } else {
        PREFIX
    };
    let c = split(prefix, setting)?.cost;
    let mut units = (u64::from(c.r) << c.n_log2) * u64::from(1 + c.t);
    if c.flavor != FLAVOR_RW {
        units *= u64::from(c.p);
    }
    Ok(units * NS_PER_RN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(setting: &str, pw: &[u8]) -> String {
        String::from_utf8(crypt(setting, pw).unwrap().as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn debian_params() {
        let c = parse_params(b"j9T").unwrap();
        assert_eq!(
            c,
            Cost {
                flavor: FLAVOR_RW,
                n_log2: 12,
                r: 32,
                p: 1,
                t: 0
            }
        );
        assert_eq!(parse_params(b"jBT").unwrap().n_log2, 14);
        assert_eq!(parse_params(b"j7T").unwrap().n_log2, 10);
        // p = 4, r = 8 (the crate's own example encoding).
        let c = parse_params(b"j95.0").unwrap();
        assert_eq!((c.n_log2, c.r, c.p, c.t), (12, 8, 4, 0));
    }

    #[test]
    fn params_refused() {
        for p in [
            &b""[..],
            b"j",
            b"j9",
            b"j9T$",
            b"j9T.",
            b"j953/2",
            b"jC559",
            b"jzT",
        ] {
            assert!(parse_params(p).is_err(), "{}", String::from_utf8_lossy(p));
        }
    }

    #[test]
    fn known_vectors() {
        // Debian 12 mkpasswd -m yescrypt (default j9T, and -R 3 for j7T).
        for (pw, h) in [
            (
                "correct horse battery",
                "$y$j9T$cT7zPn9VzXtyJ3AtnjR7A0$LIj7h5PY2ZojCJCC3Wt7G9Jm2CIshVcBzpkwi54tbu6",
            ),
            (
                "pässwörd ✓ 日本",
                "$y$j9T$GQIIknK.0emY23Adr49hC.$CqLjOGU.YVeKuxf3mYLqW/YI1TKRECdb/dmlmLqxDF5",
            ),
            (
                "r",
                "$y$j7T$YDYRbXk5OkyH0S4Qs1AXQ/$hF1IQV2ZXYOUIxzKXmztw3V7NsXSWArCKqK.en1cbh3",
            ),
        ] {
            assert_eq!(out(h, pw.as_bytes()), h);
        }
        // The setting alone (no hash) gives the same output.
        assert_eq!(
            out("$y$j9T$F5Jx5fExrKuPp53xLKQ..1$", b"r"),
            "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$mLPIoBjnvkNl5e43gQCktSQpLWa.3M.vyTDA6ag3AbD"
        );
    }

    #[test]
    fn other_flavors_and_parameters_match_libxcrypt() {
        // Settings with p, t and the classic and write-once flavors, written
        // by hand and hashed by Debian 12's libxcrypt (Python's crypt module).
        let pw = "pässwörd ✓ 日本".as_bytes();
        for h in [
            // read-write, p = 2 / t = 1 / p = 3, t = 2 / p = 4, t = 3 / t = 1
            "$y$j75..$k2XAnEHBqQ1Ct2aMXFKNa/$qR7aenAW8rf5l5OwAHdfxQz67JSb.JGTCATkwqtFXFB",
            "$y$j75/.$k2XAnEHBqQ1Ct2aMXFKNa/$TaoG.GGL2goyCrum6P/B7jr17u0qA/AuPYvrZx/qQp3",
            "$y$j610//$k2XAnEHBqQ1Ct2aMXFKNa/$BxP40D8IazbvSoY.gb28rKVg3PlFoBx0QF4pzMMMr3/",
            "$y$j5D000$k2XAnEHBqQ1Ct2aMXFKNa/$1iF5ks1iA17q7rOL/n51F86Qw9CLm/.lYrm0/mdqBv2",
            "$y$j8T/.$k2XAnEHBqQ1Ct2aMXFKNa/$goJtRoCxmgErCEcJ.4Ee9Zk7.TkrBHbvA0.oCHJ/uk2",
            // p = 2 at N = 2^12, r = 32; with pre-hashing at p = 2 and at t = 2
            "$y$j9T..$k2XAnEHBqQ1Ct2aMXFKNa/$OVTDXBkyKgxlyIt1gY3RAv2uATv79SWfcjUqp9apQWA",
            "$y$jAT..$k2XAnEHBqQ1Ct2aMXFKNa/$OSFIOdSUSEOK7aUOvqshnJHaRXdG.bLbJ7pyQoVp5L8",
            "$y$j9T//$k2XAnEHBqQ1Ct2aMXFKNa/$Tk6tJq9GK8ULxdy8FIpufqEISch5WERLQoW4LXCoefA",
            // classic scrypt and write-once-read-many flavors
            "$y$.75$k2XAnEHBqQ1Ct2aMXFKNa/$aUd2TPkv3uieAks5HnGL9c3/GGq8iQ3JEElgXn5oivB",
            "$y$.61..$k2XAnEHBqQ1Ct2aMXFKNa/$HCIGzxruTvJDJPc552Mf6JTKuc9JhVB9QS6BE6dKq07",
            "$y$/75$k2XAnEHBqQ1Ct2aMXFKNa/$6IPHJ3qyAly6JI0JvToD4s5I5T1hg04StsjkiUf8L7.",
            "$y$/610..$k2XAnEHBqQ1Ct2aMXFKNa/$hA8KTKnEEbLoLeMMhYFoLzPDZHHXqavHETUzoXOix.6",
        ] {
            assert_eq!(out(h, pw), h);
        }
    }

    #[test]
    fn core_matches_the_yescrypt_crate() {
        // The in-tree derivation against the RustCrypto `yescrypt` crate (a
        // port of the reference code) over many parameter sets.
        use yescrypt::Mode;
        let salt = b"salt for a comparison";
        for (n_log2, r, p, t) in [
            (1, 1, 1, 0),
            (4, 1, 1, 0),
            (5, 2, 1, 1),
            (6, 8, 2, 0),
            (8, 4, 3, 1),
            (7, 1, 4, 2),
            (10, 8, 1, 3),
            (9, 16, 2, 0),
            (8, 512, 1, 0),
            (10, 128, 1, 1),
        ] {
            for (flavor, mode) in [
                (Flavor::Rw, Mode::Rw),
                (Flavor::Worm, Mode::Worm),
                (Flavor::Classic, Mode::Classic),
            ] {
                let n = 1u64 << n_log2;
                if flavor == Flavor::Rw && n / u64::from(p) <= 1 {
                    continue;
                }
                let t = if flavor == Flavor::Classic { 0 } else { t };
                for pw in [&b""[..], b"x", "pässwörd ✓ 日本".as_bytes()] {
                    let params = Params { flavor, n, r, p, t };
                    let mut ours = [0u8; 32];
                    pop3d_yescrypt::derive(pw, salt, &params, &mut ours).unwrap();
                    let theirs_params =
                        yescrypt::Params::new_with_all_params(mode, n, r, p, t, 0).unwrap();
                    let mut theirs = [0u8; 32];
                    yescrypt::yescrypt(pw, salt, &theirs_params, &mut theirs).unwrap();
                    assert_eq!(ours, theirs, "{flavor:?} N=2^{n_log2} r={r} p={p} t={t}");
                }
            }
        }
    }

    #[test]
    fn gost_vectors() {
        // Debian 12 mkpasswd -m gost-yescrypt.
        let h = "$gy$j9T$jU/IrM6XfbJpWVY4hTzUC0$BEu0pmFUhmth1A.7dVk0CELxK5I9/fY0zIF19NpC2U4";
        let got = crypt_gost(h, b"r").unwrap();
        assert_eq!(got.as_bytes(), h.as_bytes());
        // The same salt and password under $y$ give a different hash.
        let y = format!("$y${}", &h[4..]);
        assert_ne!(
            &crypt(&y, b"r").unwrap().as_bytes()[3..],
            &got.as_bytes()[4..]
        );
        assert_eq!(cost(h), cost(&y));
    }

    #[test]
    fn malformed_strings() {
        for s in [
            "$y$",
            "$y$j9T",
            "$y$j9T$bad salt$x",
            "$y$j9T$a$x",
            "$y$jZT$cT7zPn9VzXtyJ3AtnjR7A0$x",
            "$y$jJT$cT7zPn9VzXtyJ3AtnjR7A0$x",
        ] {
            assert!(crypt(s, b"x").is_err(), "{s}");
        }
    }

    #[test]
    fn cost_grows_with_n() {
        let j9 = cost("$y$j9T$abc$").unwrap();
        assert_eq!(j9, (32 << 12) * NS_PER_RN);
        assert!(cost("$y$jBT$abc$").unwrap() > j9);
        assert!(cost("$y$j7T$abc$").unwrap() < j9);
    }
}
