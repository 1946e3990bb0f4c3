//! scrypt (`$7$`) strings as libxcrypt writes them, verified with the classic
//! flavor of the in-tree `pop3d-yescrypt` package (yescrypt's flavor 0 is scrypt).
//!
//! String: `$7$`, one character for log2(N), five for r and five for p (30-bit
//! numbers, least significant character first, crypt base64 values), then the
//! salt up to the last `$`, used as text (not decoded), then `$` and the 32-byte
//! hash in 43 characters (yescrypt's little-endian groups). The output repeats
//! the setting verbatim up to the salt's end.
//!
//! Limits (ours): memory 128·r·N at most 1 GiB, p ≤ 16, salt ≤ 64 bytes. A
//! string beyond them is refused as malformed.

use super::b64;
use super::crypt::Malformed;
use super::secret::{Secret, wipe};
use pop3d_yescrypt::{Flavor, Params};

/// The scheme prefix.
pub(crate) const PREFIX: &str = "$7$";
/// Raw output length.
const HASH_LEN: usize = 32;
/// Most memory one verification may take, as r·N (128 bytes each).
const RN_MAX: u64 = (1 << 30) / 128;
/// Largest p accepted (each p is one more full pass, run one after another).
const P_MAX: u32 = 16;
/// Longest salt accepted.
const SALT_MAX: usize = 64;
/// Estimated nanoseconds per unit of r·N·p (libxcrypt's default `$7$CU`, r·N =
/// 2^19, takes about 150 ms).
const NS_PER_RN: u64 = 280;

/// A parsed setting.
struct Setting<'a> {
    n_log2: u32,
    r: u32,
    p: u32,
    /// `$7$` and the parameters.
    prefix: &'a str,
    salt: &'a str,
}

/// Five characters as a 30-bit number, least significant first.
fn number30(chars: &[u8]) -> Option<u32> {
    chars
        .iter()
        .rev()
        .try_fold(0u32, |n, &c| b64::value(c).map(|v| (n << 6) | u32::from(v)))
}

fn parse(setting: &str) -> Result<Setting<'_>, Malformed> {
    const BAD: Malformed = Malformed("bad parameters");
    let rest = setting
        .strip_prefix(PREFIX)
        .ok_or(Malformed("not scrypt"))?
        .as_bytes();
    if rest.len() < 11 {
        return Err(BAD);
    }
    let n_log2 = b64::value(rest[0]).map(u32::from).ok_or(BAD)?;
    let r = number30(&rest[1..6]).ok_or(BAD)?;
    let p = number30(&rest[6..11]).ok_or(BAD)?;
    if !(1..=63).contains(&n_log2) || r == 0 || p == 0 {
        return Err(BAD);
    }
    if n_log2 >= 40 || (u64::from(r) << n_log2) > RN_MAX || p > P_MAX {
        return Err(Malformed("cost above limit"));
    }
    let after = &setting[PREFIX.len() + 11..];
    let salt = after.rsplit_once('$').map_or(after, |(salt, _)| salt);
    if salt.len() > SALT_MAX {
        return Err(Malformed("salt too long"));
    }
    Ok(Setting {
        n_log2,
        r,
        p,
        prefix: &setting[..PREFIX.len() + 11],
        salt,
    })
}

/// crypt(3) for `$7$`: the full output string for `password` under `setting`.
pub(crate) fn crypt(setting: &str, password: &[u8]) -> Result<Secret, Malformed> {
    let st = parse(setting)?;
    let params = Params {
        flavor: Flavor::Classic,
        n: 1 << st.n_log2,
        r: st.r,
        p: st.p,
        t: 0,
    };
    let mut hash = [0u8; HASH_LEN];
    pop3d_yescrypt::derive(password, st.salt.as_bytes(), &params, &mut hash)
        .map_err(|_| Malformed("bad parameters"))?;
    let mut out = Secret::with_capacity(st.prefix.len() + st.salt.len() + 1 + 43);
    let v = out.vec();
    v.extend_from_slice(st.prefix.as_bytes());
    v.extend_from_slice(st.salt.as_bytes());
    v.push(b'$');
    b64::push_le(v, &hash);
    wipe(&mut hash);
    Ok(out)
}

/// Estimated verification cost in nanoseconds: proportional to r·N·p.
pub(crate) fn cost(setting: &str) -> Result<u64, Malformed> {
    let st = parse(setting)?;
    Ok((u64::from(st.r) << st.n_log2) * u64::from(st.p) * NS_PER_RN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(setting: &str, pw: &[u8]) -> String {
        String::from_utf8(crypt(setting, pw).unwrap().as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn known_vectors() {
        // Debian 12 libxcrypt: mkpasswd -m scrypt (default, and -R 6).
        for h in [
            "$7$CU..../....NJDtWDVpBRcXEMZHV07Mh.$N2ioomAGNGy9NC9JsySdWYn3YlhiIVapsboMl3VGE15",
            "$7$BU..../..../74zyO7OcMotxuUEaZbbt/$eeBjuK3sgS/mTvtjdHHZrLACKmf1n2Ro9Rs.Y/sBKJC",
        ] {
            assert_eq!(out(h, b"r"), h);
        }
    }

    #[test]
    fn params() {
        let st = parse("$7$CU..../....salt$hash").unwrap();
        assert_eq!((st.n_log2, st.r, st.p), (14, 32, 1));
        assert_eq!(st.salt, "salt");
        assert_eq!(st.prefix, "$7$CU..../....");
        let st = parse("$7$C/....0....salt").unwrap();
        assert_eq!((st.r, st.p, st.salt), (1, 2, "salt"));
    }

    #[test]
    fn malformed() {
        for s in [
            "$7$",
            "$7$CU..../...",
            "$7$.U..../....salt$",
            "$7$C...../....salt$",
            "$7$CU.........salt$",
            "$7$C$.../....salt$",
            "$7$zU..../....salt$",
            "$7$CU..../...zsalt$",
        ] {
            assert!(crypt(s, b"x").is_err(), "{s}");
        }
    }
}
