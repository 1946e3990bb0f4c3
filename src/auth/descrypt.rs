//! DES-based crypt(3): the traditional 13-character form (Seventh Edition
//! Unix, BusyBox's default) and the BSDi extended form (`_`), with a small DES
//! written here from the published standard (FIPS 46-3) and the published
//! descriptions of the two crypt variants.
//!
//! Both encrypt a zero block with a key made from the password, many times in a
//! row, with a salt that swaps pairs of bits in DES's expansion (E) step: salt
//! bit i (least significant first) swaps E output bits i and i + 24.
//!
//! Traditional: two salt characters (12 bits, the first character the low six),
//! the first 8 password bytes each shifted left by one as the key (bit 8 of
//! every byte is lost), 25 encryptions. String: the salt, then the 64-bit
//! result in 11 characters of crypt base64, most significant bits first.
//!
//! BSDi: `_`, four characters of iteration count and four of salt (24 bits each,
//! least significant character first), then 11 result characters. The key
//! takes the whole password: the first 8 bytes as above, then for each further
//! 8 (or fewer) bytes the key is DES-encrypted with itself and the bytes,
//! shifted left by one, are XORed in.
//!
//! Characters outside the crypt base64 alphabet in the salt or count make the
//! string malformed (libxcrypt refuses them too); a count of 0 is malformed.

use super::b64;
use super::crypt::Malformed;
use super::secret::Secret;

/// Length of a traditional string.
pub(crate) const TRADITIONAL_LEN: usize = 13;
/// Length of a BSDi string.
pub(crate) const BSDI_LEN: usize = 20;
/// Encryptions in the traditional form.
const TRADITIONAL_COUNT: u32 = 25;
/// Estimated nanoseconds per DES encryption (16 rounds) here.
const NS_PER_BLOCK: u64 = 400;

/// Initial permutation: output bit k (1-based, most significant first) is
/// input bit `IP[k - 1]`.
const IP: [u8; 64] = [
    58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4, //
    62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8, //
    57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3, //
    61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
];

/// The final permutation, the inverse of [`IP`].
const FP: [u8; 64] = invert(&IP);

/// The permutation P applied to the S-box outputs.
const P: [u8; 32] = [
    16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, //
    2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25,
];

/// Permuted choice 1: the 56 key bits used, from the 64-bit key.
const PC1: [u8; 56] = [
    57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, //
    10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36, //
    63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, //
    14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
];

/// Permuted choice 2: the 48 round-key bits, from the 56 shifted key bits.
const PC2: [u8; 48] = [
    14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, //
    23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2, //
    41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48, //
    44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
];

/// Left rotations of the two key halves before each round.
const SHIFTS: [u32; 16] = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1];

/// The eight S-boxes, each 4 rows of 16 entries.
const S: [[u8; 64]; 8] = [
    [
        14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7, //
        0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8, //
        4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0, //
        15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13,
    ],
    [
        15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10, //
        3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5, //
        0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15, //
        13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9,
    ],
    [
        10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8, //
        13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1, //
        13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7, //
        1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12,
    ],
    [
        7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15, //
        13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9, //
        10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4, //
        3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14,
    ],
    [
        2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9, //
        14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6, //
        4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14, //
        11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3,
    ],
    [
        12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11, //
        10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8, //
        9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6, //
        4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13,
    ],
    [
        4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1, //
        13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6, //
        1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2, //
        6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12,
    ],
    [
        13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7, //
        1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2, //
        7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8, //
        2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11,
    ],
];

/// The inverse of a permutation of 64 bits.
const fn invert(table: &[u8; 64]) -> [u8; 64] {
    let mut out = [0u8; 64];
    let mut k = 0;
    while k < 64 {
        out[table[k] as usize - 1] = k as u8 + 1;
        k += 1;
    }
    out
}

/// For each S-box and 6-bit input, the box's 4-bit output already placed and
/// passed through [`P`], so a round's function is eight lookups ORed together.
const fn sp_tables() -> [[u32; 64]; 8] {
    let mut t = [[0u32; 64]; 8];
    let mut i = 0;
    while i < 8 {
        let mut v = 0;
        while v < 64 {
            // Row from the outer two bits, column from the inner four.
            let row = ((v >> 4) & 2) | (v & 1);
            let col = (v >> 1) & 0xf;
            let placed = (S[i][row * 16 + col] as u32) << (28 - 4 * i);
            let mut out = 0u32;
            let mut k = 0;
            while k < 32 {
                if placed & (1 << (32 - P[k] as u32)) != 0 {
                    out |= 1 << (31 - k);
                }
                k += 1;
            }
            t[i][v] = out;
            v += 1;
        }
        i += 1;
    }
    t
}

static SP: [[u32; 64]; 8] = sp_tables();

/// Applies `table` to the low `width` bits of `input`: output bit k (1-based,
/// most significant first, of `table.len()` bits) is input bit `table[k - 1]`.
fn permute(input: u64, width: u32, table: &[u8]) -> u64 {
    table.iter().fold(0u64, |out, &src| {
        (out << 1) | ((input >> (width - u32::from(src))) & 1)
    })
}

/// The 16 round keys, 48 bits each.
fn key_schedule(key: [u8; 8]) -> [u64; 16] {
    let cd = permute(u64::from_be_bytes(key), 64, &PC1);
    let mut c = (cd >> 28) as u32;
    let mut d = (cd as u32) & 0x0fff_ffff;
    let rotate = |h: u32, n: u32| ((h << n) | (h >> (28 - n))) & 0x0fff_ffff;
    let mut keys = [0u64; 16];
    for (k, &n) in keys.iter_mut().zip(SHIFTS.iter()) {
        c = rotate(c, n);
        d = rotate(d, n);
        *k = permute((u64::from(c) << 28) | u64::from(d), 56, &PC2);
    }
    keys
}

/// DES's round function with the salt's E-bit swaps; `salt` is a 24-bit mask
/// whose bit 23 - i is salt bit i.
fn feistel(r: u32, key: u64, salt: u32) -> u32 {
    // E: eight overlapping 6-bit windows over R extended cyclically by one bit
    // at each end (bit 32, bits 1..32, bit 1).
    let ext = (u64::from(r & 1) << 33) | (u64::from(r) << 1) | u64::from(r >> 31);
    let mut e = 0u64;
    for j in 0..8 {
        e = (e << 6) | ((ext >> (28 - 4 * j)) & 0x3f);
    }
    let swap = u64::from((((e >> 24) as u32) ^ (e as u32)) & salt & 0x00ff_ffff);
    e ^= (swap << 24) | swap;
    e ^= key;
    let mut out = 0u32;
    for (j, table) in SP.iter().enumerate() {
        out |= table[((e >> (42 - 6 * j)) & 0x3f) as usize];
    }
    out
}

/// `count` salted DES encryptions of `block` in a row.
fn encrypt(block: u64, keys: &[u64; 16], salt: u32, count: u32) -> u64 {
    let x = permute(block, 64, &IP);
    let (mut l, mut r) = ((x >> 32) as u32, x as u32);
    for _ in 0..count {
        for &k in keys {
            let next = l ^ feistel(r, k, salt);
            l = r;
            r = next;
        }
        // DES ends with the halves swapped; the final and initial permutations
        // between two encryptions cancel out.
        std::mem::swap(&mut l, &mut r);
    }
    permute((u64::from(l) << 32) | u64::from(r), 64, &FP)
}

/// The 24-bit E-swap mask for `salt` (salt bit i → mask bit 23 - i).
fn salt_mask(salt: u32) -> u32 {
    (0..24)
        .filter(|i| salt & (1 << i) != 0)
        .fold(0, |m, i| m | (1 << (23 - i)))
}

/// `n` crypt base64 characters as a little-endian number (first character
/// lowest), or `None` if one is outside the alphabet.
fn number(chars: &[u8]) -> Option<u32> {
    chars
        .iter()
        .rev()
        .try_fold(0u32, |n, &c| b64::value(c).map(|v| (n << 6) | u32::from(v)))
}

/// Key bytes from up to 8 password bytes: each shifted left by one, zero after
/// the end.
fn key_bytes(chunk: &[u8]) -> [u8; 8] {
    let mut k = [0u8; 8];
    for (slot, &c) in k.iter_mut().zip(chunk) {
        *slot = c << 1;
    }
    k
}

/// Appends the 64-bit result as 11 characters, most significant bits first,
/// the last character carrying 4 bits and two zero bits.
fn push_result(out: &mut Vec<u8>, result: u64) {
    let v = u128::from(result) << 2;
    for i in 0..11 {
        out.push(b64::ALPHABET[((v >> (60 - 6 * i)) & 0x3f) as usize]);
    }
}

/// Whether `hash` has the shape of a traditional DES string.
pub(crate) fn is_traditional(hash: &str) -> bool {
    hash.len() == TRADITIONAL_LEN && hash.bytes().all(|c| b64::value(c).is_some())
}

/// Whether `hash` looks like a BSDi string (starts with `_`).
pub(crate) fn is_bsdi(hash: &str) -> bool {
    hash.starts_with('_')
}

/// crypt(3) for traditional DES: the full output string.
pub(crate) fn crypt_traditional(setting: &str, password: &[u8]) -> Result<Secret, Malformed> {
    let s = setting.as_bytes();
    let salt = s.get(..2).and_then(number).ok_or(Malformed("bad salt"))?;
    let mut key = key_bytes(&password[..password.len().min(8)]);
    let mut keys = key_schedule(key);
    let result = encrypt(0, &keys, salt_mask(salt), TRADITIONAL_COUNT);
    super::secret::wipe(&mut key);
    keys.fill(0);
    std::hint::black_box(&keys);
    let mut out = Secret::with_capacity(TRADITIONAL_LEN);
    out.vec().extend_from_slice(&s[..2]);
    push_result(out.vec(), result);
    Ok(out)
}

/// Count and salt of a BSDi setting.
fn bsdi_params(setting: &str) -> Result<(u32, u32), Malformed> {
    let s = setting.as_bytes();
    if s.len() < 9 || s[0] != b'_' {
        return Err(Malformed("bad BSDi setting"));
    }
    let count = number(&s[1..5]).ok_or(Malformed("bad count"))?;
    let salt = number(&s[5..9]).ok_or(Malformed("bad salt"))?;
    if count == 0 {
        return Err(Malformed("bad count"));
    }
    Ok((count, salt))
}

/// crypt(3) for BSDi extended DES: the full output string.
pub(crate) fn crypt_bsdi(setting: &str, password: &[u8]) -> Result<Secret, Malformed> {
    let (count, salt) = bsdi_params(setting)?;
    let mut chunks = password.chunks(8);
    let mut key = key_bytes(chunks.next().unwrap_or(&[]));
    let mut keys = key_schedule(key);
    for chunk in chunks {
        key = encrypt(u64::from_be_bytes(key), &keys, 0, 1).to_be_bytes();
        for (k, b) in key.iter_mut().zip(key_bytes(chunk)) {
            *k ^= b;
        }
        keys = key_schedule(key);
    }
    let result = encrypt(0, &keys, salt_mask(salt), count);
    super::secret::wipe(&mut key);
    keys.fill(0);
    std::hint::black_box(&keys);
    let mut out = Secret::with_capacity(BSDI_LEN);
    out.vec().extend_from_slice(&setting.as_bytes()[..9]);
    push_result(out.vec(), result);
    Ok(out)
}

/// Estimated cost of a traditional verification in nanoseconds.
pub(crate) fn cost_traditional(setting: &str) -> Result<u64, Malformed> {
    if is_traditional(setting) {
        Ok(u64::from(TRADITIONAL_COUNT) * NS_PER_BLOCK)
    } else {
        Err(Malformed("bad DES string"))
    }
}

/// Estimated cost of a BSDi verification in nanoseconds.
pub(crate) fn cost_bsdi(setting: &str) -> Result<u64, Malformed> {
    let (count, _) = bsdi_params(setting)?;
    Ok(u64::from(count) * NS_PER_BLOCK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: Secret) -> String {
        String::from_utf8(s.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn sboxes_rows_are_permutations() {
        for sbox in &S {
            for row in sbox.chunks(16) {
                let mut seen = [false; 16];
                for &v in row {
                    assert!(!seen[v as usize]);
                    seen[v as usize] = true;
                }
            }
        }
        let mut p: Vec<u8> = P.to_vec();
        p.sort_unstable();
        assert_eq!(p, (1..=32).collect::<Vec<u8>>());
    }

    #[test]
    fn des_standard_vectors() {
        // FIPS 46 worked example and a classic test from the NBS validation set.
        let keys = key_schedule(0x1334_5779_9BBC_DFF1u64.to_be_bytes());
        assert_eq!(
            encrypt(0x0123_4567_89AB_CDEF, &keys, 0, 1),
            0x85E8_1354_0F0A_B405
        );
        let keys = key_schedule(0x0E32_9232_EA6D_0D73u64.to_be_bytes());
        assert_eq!(encrypt(0x8787_8787_8787_8787, &keys, 0, 1), 0);
    }

    #[test]
    fn known_vectors() {
        // Debian 12 libxcrypt: mkpasswd -m descrypt / bsdicrypt.
        assert_eq!(
            text(crypt_traditional("t3mdCwqYmKCFk", b"r").unwrap()),
            "t3mdCwqYmKCFk"
        );
        assert_eq!(
            text(crypt_bsdi("_J9..VErOm7vitUhNd36", b"r").unwrap()),
            "_J9..VErOm7vitUhNd36"
        );
        assert_eq!(
            text(crypt_bsdi("_/...diGvOglWsEjEJjM", b"r").unwrap()),
            "_/...diGvOglWsEjEJjM"
        );
    }

    #[test]
    fn traditional_uses_eight_bytes_of_seven_bits() {
        let a = text(crypt_traditional("ab", b"password").unwrap());
        assert_eq!(
            a,
            text(crypt_traditional("ab", b"password and more").unwrap())
        );
        // The top bit of each byte is shifted out of the key.
        assert_eq!(a, text(crypt_traditional("ab", b"p\xe1ssword").unwrap()));
        assert_ne!(a, text(crypt_traditional("ab", b"passwore").unwrap()));
    }

    #[test]
    fn bsdi_uses_the_whole_password() {
        let s = "_J9..abcd";
        let a = text(crypt_bsdi(s, b"password").unwrap());
        assert_ne!(a, text(crypt_bsdi(s, b"password and more").unwrap()));
        assert_ne!(a, text(crypt_bsdi(s, b"password ").unwrap()));
    }

    #[test]
    fn malformed() {
        assert!(crypt_traditional("a", b"x").is_err());
        assert!(crypt_traditional("a$", b"x").is_err());
        assert!(crypt_bsdi("_J9..abc", b"x").is_err());
        assert!(crypt_bsdi("_J9.$abcd", b"x").is_err());
        assert!(crypt_bsdi("_....abcd", b"x").is_err(), "count 0");
        assert!(is_traditional("t3mdCwqYmKCFk"));
        assert!(!is_traditional("t3mdCwqYmKCF"));
        assert!(!is_traditional("t3mdCwqYmKCF$"));
    }
}
