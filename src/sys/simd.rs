//! Byte search in one 32-byte block, for the hot loops of the RETR encoder
//! and the mailbox scanner: on x86-64 two SSE2 16-byte compares (every
//! x86-64 CPU has SSE2), elsewhere four 8-byte words compared at once with
//! integer arithmetic (no `unsafe` there). Also MD5's block function on
//! eight independent states at once ([`md5_block8`], for the scanner's UIDL
//! digests): SSE2 on x86-64, plain arrays elsewhere.

/// Bytes in a block.
pub const BLOCK: usize = 32;

/// Bit `k` set where `block[k] == needle`.
#[cfg(target_arch = "x86_64")]
pub fn mask_in_block(block: &[u8; BLOCK], needle: u8) -> u32 {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_movemask_epi8, _mm_set_epi64x, _mm_set1_epi8};
    let w = |k: usize| i64::from_le_bytes(block[k..k + 8].try_into().expect("8 bytes"));
    let (a, b, c, d) = (w(0), w(8), w(16), w(24));
    // SAFETY: these intrinsics only need SSE2, which every x86-64 CPU has
    // (it is part of the architecture's baseline, and of Rust's default
    // x86_64 targets); they take values, not pointers, so no memory is
    // touched beyond `block`, read above by safe code.
    unsafe {
        let n = _mm_set1_epi8(needle as i8);
        let lo = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_set_epi64x(b, a), n)) as u32;
        let hi = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_set_epi64x(d, c), n)) as u32;
        lo | hi << 16
    }
}

/// Bit `k` set where `block[k] == needle`.
#[cfg(not(target_arch = "x86_64"))]
pub fn mask_in_block(block: &[u8; BLOCK], needle: u8) -> u32 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let pattern = 0x0101_0101_0101_0101u64 * u64::from(needle);
    let mut mask = 0;
    for (k, w) in block.chunks_exact(8).enumerate() {
        let t = u64::from_le_bytes(w.try_into().expect("8 bytes")) ^ pattern;
        // The top bit of each byte set exactly where the byte is zero...
        let zero = !(((t & LOW7).wrapping_add(LOW7)) | t | LOW7);
        // ... moved down to one bit per byte, byte k to bit k.
        let bits = ((zero >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u32;
        mask |= bits << (8 * k);
    }
    mask
}

/// MD5's sines table (RFC 1321: `floor(abs(sin(i + 1)) * 2^32)`).
#[rustfmt::skip]
const MD5_K: [u32; 64] = [
    0xd76a_a478, 0xe8c7_b756, 0x2420_70db, 0xc1bd_ceee, 0xf57c_0faf, 0x4787_c62a,
    0xa830_4613, 0xfd46_9501, 0x6980_98d8, 0x8b44_f7af, 0xffff_5bb1, 0x895c_d7be,
    0x6b90_1122, 0xfd98_7193, 0xa679_438e, 0x49b4_0821, 0xf61e_2562, 0xc040_b340,
    0x265e_5a51, 0xe9b6_c7aa, 0xd62f_105d, 0x0244_1453, 0xd8a1_e681, 0xe7d3_fbc8,
    0x21e1_cde6, 0xc337_07d6, 0xf4d5_0d87, 0x455a_14ed, 0xa9e3_e905, 0xfcef_a3f8,
    0x676f_02d9, 0x8d2a_4c8a, 0xfffa_3942, 0x8771_f681, 0x6d9d_6122, 0xfde5_380c,
    0xa4be_ea44, 0x4bde_cfa9, 0xf6bb_4b60, 0xbebf_bc70, 0x289b_7ec6, 0xeaa1_27fa,
    0xd4ef_3085, 0x0488_1d05, 0xd9d4_d039, 0xe6db_99e5, 0x1fa2_7cf8, 0xc4ac_5665,
    0xf429_2244, 0x432a_ff97, 0xab94_23a7, 0xfc93_a039, 0x655b_59c3, 0x8f0c_cc92,
    0xffef_f47d, 0x8584_5dd1, 0x6fa8_7e4f, 0xfe2c_e6e0, 0xa301_4314, 0x4e08_11a1,
    0xf753_7e82, 0xbd3a_f235, 0x2ad7_d2bb, 0xeb86_d391,
];

/// Where each of MD5's 64 steps takes its message word from.
const MD5_WORD: [usize; 64] = {
    let mut w = [0; 64];
    let mut n = 0;
    while n < 64 {
        w[n] = match n / 16 {
            0 => n,
            1 => (5 * n + 1) % 16,
            2 => (3 * n + 5) % 16,
            _ => (7 * n) % 16,
        };
        n += 1;
    }
    w
};

/// MD5's rotation amounts, by round and step within a group of four.
#[cfg(any(not(target_arch = "x86_64"), test))]
const MD5_ROT: [[u32; 4]; 4] = [
    [7, 12, 17, 22],
    [5, 9, 14, 20],
    [4, 11, 16, 23],
    [6, 10, 15, 21],
];

/// MD5's block function (RFC 1321) on eight independent states:
/// `state[w][l]` is word `w` (A, B, C, D) of lane `l`, `blocks[l]` the
/// 64-byte block lane `l` takes in. Each block's result is added into its
/// lane's state.
#[cfg(target_arch = "x86_64")]
pub fn md5_block8(state: &mut [[u32; 8]; 4], blocks: [&[u8; 64]; 8]) {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi32, _mm_and_si128, _mm_andnot_si128, _mm_loadu_si128, _mm_or_si128,
        _mm_set1_epi32, _mm_slli_epi32, _mm_srli_epi32, _mm_storeu_si128, _mm_unpackhi_epi32,
        _mm_unpackhi_epi64, _mm_unpacklo_epi32, _mm_unpacklo_epi64, _mm_xor_si128,
    };
    /// Lanes 0-3 and 4-7 of one word: two independent chains the CPU
    /// overlaps (a single MD5 leaves it waiting on each step's result).
    #[derive(Clone, Copy)]
    struct X(__m128i, __m128i);
    // The intrinsics below need only SSE2, which every x86-64 CPU has (it
    // is in the architecture's baseline and in Rust's x86_64 targets).
    // SAFETY: SSE2 (above); two unaligned 16-byte loads (`loadu` needs no
    // alignment) at offsets 0 and 16 of a borrowed `[u32; 8]` (32 bytes).
    let load = |w: &[u32; 8]| unsafe {
        let p = w.as_ptr().cast::<__m128i>();
        X(_mm_loadu_si128(p), _mm_loadu_si128(p.add(1)))
    };
    // SAFETY: SSE2; two unaligned 16-byte stores at offsets 0 and 16 of an
    // exclusively borrowed `[u32; 8]` (32 bytes).
    let store = |w: &mut [u32; 8], x: X| unsafe {
        let p = w.as_mut_ptr().cast::<__m128i>();
        _mm_storeu_si128(p, x.0);
        _mm_storeu_si128(p.add(1), x.1);
    };
    // Words 4q..4q+4 of four lanes' blocks, as four vectors of one word
    // each (a 4x4 transpose).
    // SAFETY: SSE2; each load reads a borrowed 16-byte array (`loadu`
    // needs no alignment), cut from the block by checked indexing.
    let words = |four: [&[u8; 64]; 4], q: usize| unsafe {
        let r = four.map(|b| {
            let part: &[u8; 16] = b[16 * q..16 * q + 16].try_into().expect("16 bytes");
            _mm_loadu_si128(part.as_ptr().cast::<__m128i>())
        });
        let (t0, t1) = (
            _mm_unpacklo_epi32(r[0], r[1]),
            _mm_unpacklo_epi32(r[2], r[3]),
        );
        let (t2, t3) = (
            _mm_unpackhi_epi32(r[0], r[1]),
            _mm_unpackhi_epi32(r[2], r[3]),
        );
        [
            _mm_unpacklo_epi64(t0, t1),
            _mm_unpackhi_epi64(t0, t1),
            _mm_unpacklo_epi64(t2, t3),
            _mm_unpackhi_epi64(t2, t3),
        ]
    };
    #[inline(always)]
    fn add(a: X, b: X) -> X {
        // SAFETY: SSE2 only, on values.
        unsafe { X(_mm_add_epi32(a.0, b.0), _mm_add_epi32(a.1, b.1)) }
    }
    #[inline(always)]
    fn xor(a: X, b: X) -> X {
        // SAFETY: SSE2 only, on values.
        unsafe { X(_mm_xor_si128(a.0, b.0), _mm_xor_si128(a.1, b.1)) }
    }
    #[inline(always)]
    fn and(a: X, b: X) -> X {
        // SAFETY: SSE2 only, on values.
        unsafe { X(_mm_and_si128(a.0, b.0), _mm_and_si128(a.1, b.1)) }
    }
    #[inline(always)]
    fn or(a: X, b: X) -> X {
        // SAFETY: SSE2 only, on values.
        unsafe { X(_mm_or_si128(a.0, b.0), _mm_or_si128(a.1, b.1)) }
    }
    /// `!a & b`
    #[inline(always)]
    fn andnot(a: X, b: X) -> X {
        // SAFETY: SSE2 only, on values.
        unsafe { X(_mm_andnot_si128(a.0, b.0), _mm_andnot_si128(a.1, b.1)) }
    }
    #[inline(always)]
    fn splat(k: u32) -> X {
        // SAFETY: SSE2 only, on values.
        let v = unsafe { _mm_set1_epi32(k as i32) };
        X(v, v)
    }
    /// Rotation left by `L` (`R` = 32 - `L`).
    #[inline(always)]
    fn rotl<const L: i32, const R: i32>(a: X) -> X {
        // SAFETY: SSE2 only, on values.
        unsafe {
            X(
                _mm_or_si128(_mm_slli_epi32::<L>(a.0), _mm_srli_epi32::<R>(a.0)),
                _mm_or_si128(_mm_slli_epi32::<L>(a.1), _mm_srli_epi32::<R>(a.1)),
            )
        }
    }
    #[inline(always)]
    fn f(b: X, c: X, d: X) -> X {
        xor(d, and(b, xor(c, d)))
    }
    #[inline(always)]
    fn g(b: X, c: X, d: X) -> X {
        xor(c, and(d, xor(b, c)))
    }
    #[inline(always)]
    fn h(b: X, c: X, d: X) -> X {
        xor(xor(b, c), d)
    }
    #[inline(always)]
    fn i(b: X, c: X, d: X) -> X {
        xor(c, or(b, andnot(d, splat(u32::MAX))))
    }
    let low = [blocks[0], blocks[1], blocks[2], blocks[3]];
    let high = [blocks[4], blocks[5], blocks[6], blocks[7]];
    let mut m = [splat(0); 16];
    for q in 0..4 {
        let (lo, hi) = (words(low, q), words(high, q));
        for k in 0..4 {
            m[4 * q + k] = X(lo[k], hi[k]);
        }
    }
    let start = [
        load(&state[0]),
        load(&state[1]),
        load(&state[2]),
        load(&state[3]),
    ];
    let [mut a, mut b, mut c, mut d] = start;
    // Step `n`: `a = b + ((a + fun(b, c, d) + K[n] + m[word n]) <<< s)`,
    // written out (the shift counts must be constants).
    macro_rules! step {
        ($fun:ident, $a:ident, $b:ident, $c:ident, $d:ident, $n:expr, $s:literal) => {
            let t = add(
                add($a, $fun($b, $c, $d)),
                add(splat(MD5_K[$n]), m[MD5_WORD[$n]]),
            );
            $a = add(rotl::<$s, { 32 - $s }>(t), $b);
        };
    }
    macro_rules! four {
        ($fun:ident, $n:expr, $s0:literal, $s1:literal, $s2:literal, $s3:literal) => {
            step!($fun, a, b, c, d, $n, $s0);
            step!($fun, d, a, b, c, $n + 1, $s1);
            step!($fun, c, d, a, b, $n + 2, $s2);
            step!($fun, b, c, d, a, $n + 3, $s3);
        };
    }
    four!(f, 0, 7, 12, 17, 22);
    four!(f, 4, 7, 12, 17, 22);
    four!(f, 8, 7, 12, 17, 22);
    four!(f, 12, 7, 12, 17, 22);
    four!(g, 16, 5, 9, 14, 20);
    four!(g, 20, 5, 9, 14, 20);
    four!(g, 24, 5, 9, 14, 20);
    four!(g, 28, 5, 9, 14, 20);
    four!(h, 32, 4, 11, 16, 23);
    four!(h, 36, 4, 11, 16, 23);
    four!(h, 40, 4, 11, 16, 23);
    four!(h, 44, 4, 11, 16, 23);
    four!(i, 48, 6, 10, 15, 21);
    four!(i, 52, 6, 10, 15, 21);
    four!(i, 56, 6, 10, 15, 21);
    four!(i, 60, 6, 10, 15, 21);
    for (w, (s, x)) in state.iter_mut().zip(start.into_iter().zip([a, b, c, d])) {
        store(w, add(s, x));
    }
}

/// MD5's block function on eight states (see the x86-64 version).
#[cfg(not(target_arch = "x86_64"))]
pub fn md5_block8(state: &mut [[u32; 8]; 4], blocks: [&[u8; 64]; 8]) {
    md5_block8_plain(state, blocks);
}

/// [`md5_block8`] in plain arrays, a lane at a time (on x86-64, to check
/// the SSE2 version against).
#[cfg(any(not(target_arch = "x86_64"), test))]
fn md5_block8_plain(state: &mut [[u32; 8]; 4], blocks: [&[u8; 64]; 8]) {
    let mut m = [[0u32; 8]; 16];
    for (l, block) in blocks.iter().enumerate() {
        for (j, w) in block.chunks_exact(4).enumerate() {
            m[j][l] = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        }
    }
    let [mut a, mut b, mut c, mut d] = *state;
    for n in 0..64 {
        for l in 0..8 {
            let (x, y, z) = (b[l], c[l], d[l]);
            let fun = match n / 16 {
                0 => z ^ (x & (y ^ z)),
                1 => y ^ (z & (x ^ y)),
                2 => x ^ y ^ z,
                _ => y ^ (x | !z),
            };
            let t = a[l]
                .wrapping_add(fun)
                .wrapping_add(MD5_K[n])
                .wrapping_add(m[MD5_WORD[n]][l]);
            a[l] = t.rotate_left(MD5_ROT[n / 16][n % 4]).wrapping_add(x);
        }
        (a, b, c, d) = (d, a, b, c);
    }
    for (w, x) in state.iter_mut().zip([a, b, c, d]) {
        for l in 0..8 {
            w[l] = w[l].wrapping_add(x[l]);
        }
    }
}

/// Position of the first `needle` in `block`, if any.
pub fn first_in_block(block: &[u8; BLOCK], needle: u8) -> Option<usize> {
    let mask = mask_in_block(block, needle);
    (mask != 0).then(|| mask.trailing_zeros() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SSE2 block function against the plain one, on random states and
    /// blocks (the plain one is what other targets run; both are checked
    /// against the `md-5` crate through `mbox::md5lanes`).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn md5_block8_sse2_matches_the_plain_version() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..2000 {
            let mut state = [[0u32; 8]; 4];
            for w in state.iter_mut().flatten() {
                *w = next() as u32;
            }
            let mut blocks = [[0u8; 64]; 8];
            for b in blocks.iter_mut().flatten() {
                *b = next() as u8;
            }
            let refs: [&[u8; 64]; 8] = std::array::from_fn(|l| &blocks[l]);
            let (mut sse2, mut plain) = (state, state);
            md5_block8(&mut sse2, refs);
            md5_block8_plain(&mut plain, refs);
            assert_eq!(sse2, plain);
        }
    }

    #[test]
    fn finds_the_first_needle_anywhere() {
        for at in 0..BLOCK {
            let mut b = [b'x'; BLOCK];
            b[at] = b'\n';
            assert_eq!(first_in_block(&b, b'\n'), Some(at));
            if at < BLOCK - 1 {
                b[BLOCK - 1] = b'\n';
                assert_eq!(first_in_block(&b, b'\n'), Some(at));
            }
            // Bytes that differ from the needle in one bit, or by sign.
            b[at] = b'\n' ^ 0x80;
            b[BLOCK - 1] = b'\n' ^ 1;
            assert_eq!(first_in_block(&b, b'\n'), None);
        }
        assert_eq!(first_in_block(&[0xff; BLOCK], 0xff), Some(0));
        assert_eq!(first_in_block(&[0; BLOCK], 1), None);
        let mut b = [0u8; BLOCK];
        for k in [0, 3, 16, 17, 31] {
            b[k] = b'\n';
        }
        assert_eq!(
            mask_in_block(&b, b'\n'),
            1 | 1 << 3 | 1 << 16 | 1 << 17 | 1 << 31
        );
    }
}
