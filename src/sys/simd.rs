//! Byte search in one 32-byte block, for the hot loops of the RETR encoder
//! and the mailbox scanner: on x86-64 two SSE2 16-byte compares (every
//! x86-64 CPU has SSE2), elsewhere four 8-byte words compared at once with
//! integer arithmetic (no `unsafe` there).

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

/// Position of the first `needle` in `block`, if any.
pub fn first_in_block(block: &[u8; BLOCK], needle: u8) -> Option<usize> {
    let mask = mask_in_block(block, needle);
    (mask != 0).then(|| mask.trailing_zeros() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

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
