//! Byte search in one 32-byte block with the CPU's vector unit, for the hot
//! loops of the RETR encoder and the mailbox scanner: two 16-byte compares
//! instead of a loop.
//! x86-64 only (SSE2, which every x86-64 CPU has); other architectures use
//! the portable word-at-a-time search (`mbox::scan::find_byte`).

/// Bytes in a block.
pub const BLOCK: usize = 32;

/// Bit `k` set where `block[k] == needle`.
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
