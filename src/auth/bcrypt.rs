//! bcrypt (`$2a$`, `$2b$`, `$2y$`, and the legacy `$2x$`) as libxcrypt's
//! crypt_blowfish computes it, on the Blowfish cipher of the `blowfish` crate
//! (its `bcrypt` feature gives the salted key schedule); the key setup, the
//! cost loop and the string format are here, written from the published
//! description of the algorithm.
//!
//! String: `$2?$` COST `$` SALT HASH, where COST is two decimal digits from 04
//! to 31, SALT is 22 characters (16 bytes) and HASH 31 characters (23 bytes),
//! both in bcrypt's own base64 (alphabet `./A-Za-z0-9`, most significant bits
//! first). The output repeats the first 29 characters of the setting verbatim,
//! as libxcrypt does, so a stored string whose last salt character carries
//! stray low bits still verifies exactly when crypt(3) would accept it.
//!
//! Key: the password bytes followed by one NUL, repeated to fill 72 bytes; a
//! password of 72 bytes or more is cut to its first 72 (bcrypt's documented
//! truncation, the same in libxcrypt). The four subtypes differ only in the key
//! words: `$2b$` and `$2y$` are the correct algorithm; `$2x$` reproduces the
//! sign-extension bug of crypt_blowfish before 1.1 for bytes ≥ 0x80; `$2a$`
//! is the correct algorithm plus crypt_blowfish's safety measure, which flips
//! bit 16 of the first initial key word when the buggy and correct key words are
//! equal although a sign extension happened (only possible with `0xff` bytes).
//!
//! Limit (ours): cost at most [`COST_MAX`]; higher costs take minutes to hours
//! per login and are refused as malformed.

use super::crypt::Malformed;
use super::secret::{Secret, wipe};
use blowfish::Blowfish;

/// Longest key bcrypt uses, in bytes (18 words of 32 bits).
const KEY_LEN: usize = 72;
/// Salt bytes.
const SALT_LEN: usize = 16;
/// Hash bytes written (the last of the 24 ciphertext bytes is dropped).
const HASH_LEN: usize = 23;
/// Length of `$2b$05$` plus the 22 salt characters.
const SETTING_LEN: usize = 7 + 22;
/// Length of a whole string.
const FULL_LEN: usize = SETTING_LEN + 31;
/// Smallest cost crypt_blowfish accepts.
const COST_MIN: u32 = 4;
/// Largest cost we accept (about a minute per verification).
pub(crate) const COST_MAX: u32 = 20;
/// Estimated nanoseconds per unit of 2^cost (cost 12 takes about 230 ms).
const NS_PER_ITERATION: u64 = 57_000;
/// The text encrypted 64 times: "OrpheanBeholderScryDoubt".
const MAGIC: &[u8; 24] = b"OrpheanBeholderScryDoubt";

/// bcrypt's base64 alphabet.
const ALPHABET: &[u8; 64] = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The value of one character of [`ALPHABET`].
fn value(c: u8) -> Option<u32> {
    let v = match c {
        b'.' => 0,
        b'/' => 1,
        b'A'..=b'Z' => c - b'A' + 2,
        b'a'..=b'z' => c - b'a' + 28,
        b'0'..=b'9' => c - b'0' + 54,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes 22 characters into the 16 salt bytes (the 4 spare bits of the last
/// character are ignored, as crypt_blowfish ignores them).
fn decode_salt(text: &[u8]) -> Option<[u8; SALT_LEN]> {
    if text.len() != 22 {
        return None;
    }
    let mut out = [0u8; SALT_LEN];
    let mut n = 0;
    for group in text.chunks(4) {
        let mut v = 0u32;
        for (i, &c) in group.iter().enumerate() {
            v |= value(c)? << (18 - 6 * i);
        }
        for k in 0..(group.len() - 1) {
            out[n] = (v >> (16 - 8 * k)) as u8;
            n += 1;
        }
    }
    Some(out)
}

/// Appends `bytes` in bcrypt's base64: 3 bytes to 4 characters, a final group
/// of 1 or 2 bytes to 2 or 3.
fn encode(out: &mut Vec<u8>, bytes: &[u8]) {
    for group in bytes.chunks(3) {
        let mut v = 0u32;
        for (i, &b) in group.iter().enumerate() {
            v |= u32::from(b) << (16 - 8 * i);
        }
        for i in 0..=group.len() {
            out.push(ALPHABET[((v >> (18 - 6 * i)) & 0x3f) as usize]);
        }
    }
}

/// The subtype letter's key handling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Subtype {
    /// `$2b$`, `$2y$`: the correct algorithm.
    Correct,
    /// `$2a$`: correct, with crypt_blowfish's anti-collision safety measure.
    Safety,
    /// `$2x$`: the old sign-extension bug.
    Bug,
}

/// A parsed setting.
struct Setting<'a> {
    subtype: Subtype,
    cost: u32,
    salt: [u8; SALT_LEN],
    /// `$2?$NN$` and the 22 salt characters, copied to the output.
    text: &'a [u8],
}

fn parse(setting: &str) -> Result<Setting<'_>, Malformed> {
    let s = setting.as_bytes();
    if s.len() < SETTING_LEN || !s.starts_with(b"$2") || s[3] != b'$' || s[6] != b'$' {
        return Err(Malformed("bad bcrypt setting"));
    }
    let subtype = match s[2] {
        b'a' => Subtype::Safety,
        b'b' | b'y' => Subtype::Correct,
        b'x' => Subtype::Bug,
        _ => return Err(Malformed("unknown bcrypt subtype")),
    };
    if !s[4].is_ascii_digit() || !s[5].is_ascii_digit() {
        return Err(Malformed("bad cost"));
    }
    let cost = u32::from(s[4] - b'0') * 10 + u32::from(s[5] - b'0');
    if !(COST_MIN..=31).contains(&cost) {
        return Err(Malformed("bad cost"));
    }
    if cost > COST_MAX {
        return Err(Malformed("cost above limit"));
    }
    let salt = decode_salt(&s[7..SETTING_LEN]).ok_or(Malformed("bad salt"))?;
    Ok(Setting {
        subtype,
        cost,
        salt,
        text: &s[..SETTING_LEN],
    })
}

/// The 18 key words for `password` (cycled with its NUL terminator) under
/// `subtype`: `(initial, expanded)`, the words mixed into the first key
/// schedule and into the cost loop's. They differ only for `$2a$`'s safety
/// measure. Returned as big-endian bytes, the form the cipher reads back.
fn key_words(password: &[u8], subtype: Subtype) -> ([u8; KEY_LEN], [u8; KEY_LEN]) {
    let mut expanded = [0u8; KEY_LEN];
    let mut pos = 0;
    let mut sign = 0u32;
    let mut diff = 0u32;
    for word in expanded.chunks_exact_mut(4) {
        let mut correct = 0u32;
        let mut buggy = 0u32;
        for j in 0..4 {
            // Position `password.len()` is the terminating NUL.
            let c = password.get(pos).copied().unwrap_or(0);
            correct = (correct << 8) | u32::from(c);
            buggy = (buggy << 8) | (i32::from(c as i8) as u32);
            if j > 0 {
                sign |= buggy & 0x80;
            }
            pos = if pos >= password.len() { 0 } else { pos + 1 };
        }
        diff |= correct ^ buggy;
        let w = if subtype == Subtype::Bug {
            buggy
        } else {
            correct
        };
        word.copy_from_slice(&w.to_be_bytes());
    }
    let mut initial = expanded;
    if subtype == Subtype::Safety {
        // Bit 16 set in `changed` iff some word differed between the two forms.
        let folded = (diff | (diff >> 16)) & 0xffff;
        let changed = folded + 0xffff;
        let flip = (sign << 9) & !changed & 0x1_0000;
        let first = u32::from_be_bytes([initial[0], initial[1], initial[2], initial[3]]) ^ flip;
        initial[..4].copy_from_slice(&first.to_be_bytes());
    }
    (initial, expanded)
}

/// The 24-byte bcrypt ciphertext.
fn raw(password: &[u8], st: &Setting<'_>) -> [u8; 24] {
    let (mut initial, mut expanded) = key_words(password, st.subtype);
    let mut state = Blowfish::bc_init_state();
    state.salted_expand_key(&st.salt, &initial);
    for _ in 0..(1u64 << st.cost) {
        state.bc_expand_key(&expanded);
        state.bc_expand_key(&st.salt);
    }
    wipe(&mut initial);
    wipe(&mut expanded);

    let mut words = [0u32; 6];
    for (w, chunk) in words.iter_mut().zip(MAGIC.chunks_exact(4)) {
        *w = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    for _ in 0..64 {
        for pair in words.chunks_exact_mut(2) {
            let [l, r] = state.bc_encrypt([pair[0], pair[1]]);
            pair[0] = l;
            pair[1] = r;
        }
    }
    let mut out = [0u8; 24];
    for (chunk, w) in out.chunks_exact_mut(4).zip(words) {
        chunk.copy_from_slice(&w.to_be_bytes());
    }
    // The cipher state is password-derived; it has no wiping of its own, so
    // overwrite it with the public initial state.
    state = Blowfish::bc_init_state();
    std::hint::black_box(&state);
    out
}

/// crypt(3) for bcrypt: the full output string for `password` under `setting`.
pub(crate) fn crypt(setting: &str, password: &[u8]) -> Result<Secret, Malformed> {
    let st = parse(setting)?;
    let mut ct = raw(password, &st);
    let mut out = Secret::with_capacity(FULL_LEN);
    let v = out.vec();
    v.extend_from_slice(st.text);
    encode(v, &ct[..HASH_LEN]);
    wipe(&mut ct);
    Ok(out)
}

/// Estimated verification cost in nanoseconds: proportional to 2^cost.
pub(crate) fn cost(setting: &str) -> Result<u64, Malformed> {
    let st = parse(setting)?;
    Ok((1u64 << st.cost) * NS_PER_ITERATION)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(setting: &str, pw: &[u8]) -> String {
        String::from_utf8(crypt(setting, pw).unwrap().as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn known_vectors() {
        // Debian 12 libxcrypt (mkpasswd -m bcrypt / bcrypt-a, Python's crypt).
        for (pw, h) in [
            (
                &b"r"[..],
                "$2b$05$IBIil4Xzy6pklLPPPW5k7.5veh0l/radjbhITqbiDSXmy88mRCpS2",
            ),
            (
                b"r",
                "$2y$05$IBIil4Xzy6pklLPPPW5k7.5veh0l/radjbhITqbiDSXmy88mRCpS2",
            ),
            (
                b"r",
                "$2x$05$IBIil4Xzy6pklLPPPW5k7.5veh0l/radjbhITqbiDSXmy88mRCpS2",
            ),
            (
                b"r",
                "$2a$05$0aGTb4eougHvCk5ghDvoTu63n4a.J.9ScIzyOR9zT8Ot60BhWLBPG",
            ),
            // Stray bits in the last salt character: copied, and they count.
            (
                b"r",
                "$2b$05$IBIil4Xzy6pklLPPPW5k7uW.2SKYJBLQ9m27iQXfRDc/PKajC2gPS",
            ),
            // $2a$'s safety measure: it fires for this key, so $2a$ and $2b$
            // differ for the same salt.
            (
                b"\xff\xff\xff",
                "$2a$05$IBIil4Xzy6pklLPPPW5k7.7McnObfR3joxZVwatpVrgPb.SRWuIu.",
            ),
            (
                b"\xff\xff\xff",
                "$2b$05$IBIil4Xzy6pklLPPPW5k7.3wjHopnBNIa2pcePF3xhFNhxh478bF.",
            ),
        ] {
            assert_eq!(out(h, pw), h);
        }
    }

    #[test]
    fn seventy_two_byte_truncation() {
        let long = [b'a'; 100];
        let s = "$2b$04$IBIil4Xzy6pklLPPPW5k7.";
        assert_eq!(out(s, &long[..72]), out(s, &long));
        assert_ne!(out(s, &long[..71]), out(s, &long[..72]));
    }

    #[test]
    fn key_cycles_with_nul() {
        let (initial, expanded) = key_words(b"ab", Subtype::Correct);
        assert_eq!(initial, expanded);
        assert_eq!(&expanded[..8], b"ab\0ab\0ab");
        let (_, expanded) = key_words(&[b'z'; 72], Subtype::Correct);
        assert_eq!(expanded, [b'z'; 72]);
    }

    #[test]
    fn malformed_settings() {
        for s in [
            "$2b$05$IBIil4Xzy6pklLPPPW5k7",
            "$2c$05$IBIil4Xzy6pklLPPPW5k7.",
            "$2b$03$IBIil4Xzy6pklLPPPW5k7.",
            "$2b$32$IBIil4Xzy6pklLPPPW5k7.",
            "$2b$21$IBIil4Xzy6pklLPPPW5k7.",
            "$2b$5$IBIil4Xzy6pklLPPPW5k7..",
            "$2b$05$IBIil4Xzy6pklLPPPW5k7$",
            "$2b$05IBIil4Xzy6pklLPPPW5k7..",
            "$2$05$IBIil4Xzy6pklLPPPW5k7...",
        ] {
            assert!(crypt(s, b"x").is_err(), "{s}");
        }
    }

    #[test]
    fn cost_doubles() {
        let c5 = cost("$2b$05$IBIil4Xzy6pklLPPPW5k7.").unwrap();
        let c6 = cost("$2b$06$IBIil4Xzy6pklLPPPW5k7.").unwrap();
        assert_eq!(c6, 2 * c5);
    }
}
