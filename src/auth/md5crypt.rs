//! md5-crypt (`$1$`), the FreeBSD/Linux MD5-based crypt(3) scheme, with MD5
//! itself, both written here from their published descriptions (RFC 1321 for
//! MD5; its constants are the integer parts of 2^32·|sin(i)|).
//!
//! Setting: `$1$` then a salt of up to 8 bytes ending at the next `$` (longer
//! salts are cut to 8, as libxcrypt and glibc do). Output: the `$1$`, the salt,
//! `$`, and 22 characters of crypt base64 of the 16-byte digest.
//!
//! Speed: the 1000 strengthening rounds hash one of eight message layouts
//! (which depends on the round number modulo 2, 3 and 7) that differ only in
//! the 16-byte previous digest. Each layout is laid out once, padded, in whole
//! MD5 blocks; a round writes the digest into its slot and runs the block
//! function over the blocks, with no buffering or copying of variable length.

use super::b64;
use super::crypt::Malformed;
use super::secret::{Secret, wipe};

/// The scheme prefix.
pub(crate) const PREFIX: &str = "$1$";
/// Longest salt used.
const SALT_MAX: usize = 8;
/// Fixed number of strengthening rounds.
const ROUNDS: usize = 1000;
/// Estimated cost in nanoseconds (see `crypt::cost`): about 0.25 ms.
const COST_NS: u64 = 250_000;

/// MD5's initial state.
const INIT: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// MD5's additive constants: floor(2^32 · |sin(i + 1)|).
const K: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
];

/// Left rotations, four per round.
const R: [u32; 16] = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];

/// Message word `i` of `block` (little-endian).
#[inline(always)]
fn word(block: &[u8; 64], i: usize) -> u32 {
    u32::from_le_bytes([
        block[4 * i],
        block[4 * i + 1],
        block[4 * i + 2],
        block[4 * i + 3],
    ])
}

/// The MD5 block function. Each step adds the round function last, so that
/// only it, the rotation and one addition wait for the previous step's result.
fn compress(state: &mut [u32; 4], block: &[u8; 64]) {
    let [mut a, mut b, mut c, mut d] = *state;
    // One step: a <- b + ((a + K[i] + M[g] + f(b, c, d)) <<< s), where
    // f(b, c, d) = early(c, d) + late(b, c, d): `early` does not wait for b.
    macro_rules! step {
        ($f:expr, $a:ident, $b:ident, $c:ident, $d:ident, $g:expr, $i:expr) => {
            let (early, late) = $f;
            $a = $b.wrapping_add(
                $a.wrapping_add(K[$i])
                    .wrapping_add(word(block, $g))
                    .wrapping_add(early($c, $d))
                    .wrapping_add(late($b, $c, $d))
                    .rotate_left(R[($i / 16) * 4 + $i % 4]),
            );
        };
    }
    // Sixteen steps of one round; `g` maps the step number to a message word.
    macro_rules! round {
        ($f:expr, $g:expr, $base:expr) => {
            let mut i = $base;
            while i < $base + 16 {
                step!($f, a, b, c, d, $g(i), i);
                step!($f, d, a, b, c, $g(i + 1), i + 1);
                step!($f, c, d, a, b, $g(i + 2), i + 2);
                step!($f, b, c, d, a, $g(i + 3), i + 3);
                i += 4;
            }
        };
    }
    let none = |_: u32, _: u32| 0;
    let f = (none, |x: u32, y: u32, z: u32| z ^ (x & (y ^ z)));
    // (x & z) | (y & !z), as a sum: the two terms share no bits.
    let g = (|y: u32, z: u32| y & !z, |x: u32, _: u32, z: u32| x & z);
    let h = (none, |x: u32, y: u32, z: u32| x ^ (y ^ z));
    let i = (none, |x: u32, y: u32, z: u32| y ^ (x | !z));
    round!(f, |n: usize| n, 0);
    round!(g, |n: usize| (5 * n + 1) % 16, 16);
    round!(h, |n: usize| (3 * n + 5) % 16, 32);
    round!(i, |n: usize| (7 * n) % 16, 48);
    state[0] = state[0].wrapping_add(a);
    state[1] = state[1].wrapping_add(b);
    state[2] = state[2].wrapping_add(c);
    state[3] = state[3].wrapping_add(d);
}

/// A message laid out in whole MD5 blocks, padded (RFC 1321: a 0x80 byte,
/// zeros, the bit length little-endian). Wiped on drop.
struct Padded(Vec<[u8; 64]>);

impl Padded {
    fn new(message: &[u8]) -> Padded {
        let blocks = (message.len() + 9).div_ceil(64);
        let mut v = vec![[0u8; 64]; blocks];
        for (i, &byte) in message.iter().enumerate() {
            v[i / 64][i % 64] = byte;
        }
        let n = message.len();
        v[n / 64][n % 64] = 0x80;
        let bits = (n as u64).wrapping_mul(8).to_le_bytes();
        v[blocks - 1][56..].copy_from_slice(&bits);
        Padded(v)
    }

    /// Writes `bytes` at message offset `at`.
    fn put(&mut self, at: usize, bytes: &[u8; 16]) {
        for (k, &byte) in bytes.iter().enumerate() {
            let p = at + k;
            self.0[p / 64][p % 64] = byte;
        }
    }

    fn digest(&self) -> [u8; 16] {
        self.digest_from(INIT, 0)
    }

    /// The digest, given the state after the first `skip` blocks.
    fn digest_from(&self, mut state: [u32; 4], skip: usize) -> [u8; 16] {
        for block in &self.0[skip..] {
            compress(&mut state, block);
        }
        let mut out = [0u8; 16];
        for (chunk, w) in out.chunks_exact_mut(4).zip(state) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        out
    }
}

impl Drop for Padded {
    fn drop(&mut self) {
        for block in &mut self.0 {
            wipe(block);
        }
    }
}

/// MD5 of the concatenation of `parts`.
fn md5_of(parts: &[&[u8]]) -> [u8; 16] {
    let len = parts.iter().map(|p| p.len()).sum();
    let mut message = Secret::with_capacity(len);
    for p in parts {
        message.vec().extend_from_slice(p);
    }
    Padded::new(message.as_bytes()).digest()
}

/// The 16-byte md5-crypt digest of `password` with `salt` (already cut to 8).
fn digest(password: &[u8], salt: &[u8]) -> [u8; 16] {
    // Digest of password, salt, password: mixed in once per 16 password bytes.
    let mut alt = md5_of(&[password, salt, password]);

    let bit_bytes = usize::BITS - password.len().leading_zeros();
    let len = 2 * password.len() + PREFIX.len() + salt.len() + bit_bytes as usize;
    let mut first = Secret::with_capacity(len);
    let v = first.vec();
    v.extend_from_slice(password);
    v.extend_from_slice(PREFIX.as_bytes());
    v.extend_from_slice(salt);
    let mut left = password.len();
    while left > 0 {
        let n = left.min(alt.len());
        v.extend_from_slice(&alt[..n]);
        left -= n;
    }
    // One byte per bit of the password length: a zero byte for a set bit, the
    // first password byte for a clear one.
    let mut bits = password.len();
    while bits != 0 {
        v.push(if bits & 1 == 1 { 0 } else { password[0] });
        bits >>= 1;
    }
    let mut result = Padded::new(first.as_bytes()).digest();
    wipe(&mut alt);

    // Round i hashes: (odd i ? password : digest), salt unless 3 | i,
    // password unless 7 | i, (odd i ? digest : password). One padded layout
    // per combination, with the digest's offset and the MD5 state after the
    // whole blocks before it (they are the same in every round).
    let layout = |odd: bool, with_salt: bool, with_pw: bool| {
        let mut m = Secret::with_capacity(16 + salt.len() + 2 * password.len());
        let v = m.vec();
        let placeholder = [0u8; 16];
        v.extend_from_slice(if odd { password } else { &placeholder });
        if with_salt {
            v.extend_from_slice(salt);
        }
        if with_pw {
            v.extend_from_slice(password);
        }
        let at = if odd { v.len() } else { 0 };
        v.extend_from_slice(if odd { &placeholder } else { password });
        let padded = Padded::new(m.as_bytes());
        let mut prefix = INIT;
        for block in &padded.0[..at / 64] {
            compress(&mut prefix, block);
        }
        (padded, at, prefix)
    };
    let mut layouts: Vec<(Padded, usize, [u32; 4])> = (0..8)
        .map(|k| layout(k & 1 != 0, k & 2 != 0, k & 4 != 0))
        .collect();
    for round in 0..ROUNDS {
        let k =
            (round % 2) | (usize::from(round % 3 != 0) << 1) | (usize::from(round % 7 != 0) << 2);
        let (padded, at, prefix) = &mut layouts[k];
        padded.put(*at, &result);
        result = padded.digest_from(*prefix, *at / 64);
    }
    for (_, _, prefix) in &mut layouts {
        *prefix = [0; 4];
    }
    std::hint::black_box(&layouts);
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
    fn md5_matches_rfc_1321_and_the_md5_crate() {
        use md5::Digest;
        let hex = |d: [u8; 16]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(hex(md5_of(&[])), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(md5_of(&[b"abc"])), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            hex(md5_of(&[b"abcdefghijklmnopqrstuvwxyz"])),
            "c3fcd3d76192e4007dfb496cca67e13b"
        );
        let digits = b"1234567890".repeat(8);
        assert_eq!(hex(md5_of(&[&digits])), "57edf4a22be3c955ac49da2e2107b67a");
        // Every length across the block boundaries.
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in 0..data.len() {
            let theirs: [u8; 16] = md5::Md5::digest(&data[..len]).into();
            assert_eq!(md5_of(&[&data[..len]]), theirs, "{len}");
        }
    }

    #[test]
    fn one_byte_password() {
        let h = out("$1$abcdefgh$", b"x");
        assert_eq!(h.len(), 3 + 8 + 1 + 22);
        assert_ne!(h, out("$1$abcdefgh$", b"y"));
    }
}
