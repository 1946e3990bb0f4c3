//! MD5 of many short inputs at once: the UIDL digests of the messages a scan
//! finds (a few hundred bytes each) computed [`LANES`] messages side by side.
//!
//! One MD5 is a chain of 64 dependent steps per 64-byte block, so a single
//! digest leaves most of a CPU idle waiting on the chain. Here each step works
//! on [`LANES`] independent states at once ([`md5_block8`]: SSE2 vectors on
//! x86-64). When an input ends, its lane takes the next input at once, so the
//! lanes stay busy however the lengths differ.
//!
//! Inputs come padded ([`pad`]), in buffers their owner keeps, so that no
//! block is copied. The algorithm is RFC 1321's; the tests check it against
//! the `md-5` crate on every length around the block and padding boundaries.

use crate::sys::simd::md5_block8;

/// Inputs hashed side by side.
pub const LANES: usize = 8;

/// The initial state (A, B, C, D).
const IV: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// What an idle lane takes in (its result is not used).
static IDLE: [u8; 64] = [0; 64];

/// Bytes `len` bytes of input take once padded: the 0x80 byte, zeros and the
/// 8-byte bit length, to a multiple of 64.
pub const fn padded_len(len: usize) -> usize {
    (len + 8) / 64 * 64 + 64
}

/// Pads the `len` bytes at the start of `buf` in place and returns them
/// padded, ready for [`digest_padded`].
///
/// # Panics
/// If `buf` is shorter than [`padded_len`]`(len)`.
pub fn pad(buf: &mut [u8], len: usize) -> &[u8] {
    let end = padded_len(len);
    let buf = &mut buf[..end];
    buf[len] = 0x80;
    buf[len + 1..end - 8].fill(0);
    buf[end - 8..].copy_from_slice(&(len as u64).wrapping_mul(8).to_le_bytes());
    buf
}

/// Writes the MD5 digest of `inputs[n]` to `out[n]`, for every `n`; each
/// input is a message as [`pad`] leaves it.
///
/// # Panics
/// If `out` is shorter than `inputs`, or an input's length is not a
/// multiple of 64.
pub fn digest_padded(inputs: &[&[u8]], out: &mut [[u8; 16]]) {
    assert!(out.len() >= inputs.len());
    assert!(inputs.iter().all(|i| i.len() % 64 == 0 && !i.is_empty()));
    let mut state = [
        [IV[0]; LANES],
        [IV[1]; LANES],
        [IV[2]; LANES],
        [IV[3]; LANES],
    ];
    // Each lane's input and its next block.
    let mut lanes: [Option<(usize, usize)>; LANES] = [None; LANES];
    let mut next = 0;
    for lane in &mut lanes {
        if next < inputs.len() {
            *lane = Some((next, 0));
            next += 1;
        }
    }
    while lanes.iter().any(Option::is_some) {
        let blocks = lanes.map(|lane| match lane {
            Some((input, block)) => inputs[input][64 * block..64 * block + 64]
                .try_into()
                .expect("64 bytes"),
            None => &IDLE,
        });
        md5_block8(&mut state, blocks);
        for (l, lane) in lanes.iter_mut().enumerate() {
            let Some((input, block)) = lane else {
                continue;
            };
            *block += 1;
            if 64 * *block < inputs[*input].len() {
                continue;
            }
            let digest = &mut out[*input];
            for (k, word) in state.iter_mut().enumerate() {
                digest[4 * k..4 * k + 4].copy_from_slice(&word[l].to_le_bytes());
                word[l] = IV[k];
            }
            *lane = (next < inputs.len()).then_some((next, 0));
            next += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::{Digest, Md5};

    fn reference(bytes: &[u8]) -> [u8; 16] {
        Md5::digest(bytes).into()
    }

    /// Digests of `inputs` through [`pad`] and [`digest_padded`].
    fn lanes(inputs: &[&[u8]]) -> Vec<[u8; 16]> {
        let mut bufs: Vec<Vec<u8>> = inputs
            .iter()
            .map(|i| {
                let mut b = i.to_vec();
                // Garbage where the padding goes: `pad` must overwrite it.
                b.resize(padded_len(i.len()) + 5, 0xa5);
                b
            })
            .collect();
        let padded: Vec<&[u8]> = bufs
            .iter_mut()
            .zip(inputs)
            .map(|(b, i)| pad(b, i.len()))
            .collect();
        let mut out = vec![[0u8; 16]; inputs.len()];
        digest_padded(&padded, &mut out);
        out
    }

    #[test]
    fn matches_md5_on_every_length_around_the_padding() {
        let data: Vec<u8> = (0..400u32).map(|k| (k * 7 + k / 13) as u8).collect();
        // Lengths 0..=200 (one, two and three blocks with every padding
        // case), in batches shorter and longer than the lanes.
        let inputs: Vec<&[u8]> = (0..=200).map(|n| &data[n % 50..n % 50 + n]).collect();
        for batch in [1, 3, LANES, LANES + 1, inputs.len()] {
            for group in inputs.chunks(batch) {
                for (bytes, got) in group.iter().zip(lanes(group)) {
                    assert_eq!(got, reference(bytes), "length {}", bytes.len());
                }
            }
        }
    }

    #[test]
    fn known_digests() {
        let hex = |d: &[u8; 16]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let out = lanes(&[b"", b"abc"]);
        assert_eq!(hex(&out[0]), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(&out[1]), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn lengths_that_differ_widely_share_the_lanes() {
        let data: Vec<u8> = (0..5000u32).map(|k| (k ^ (k >> 5)) as u8).collect();
        let lens = [
            4000, 1, 63, 64, 0, 2000, 55, 56, 57, 119, 120, 121, 700, 3, 4999,
        ];
        let inputs: Vec<&[u8]> = lens.iter().map(|&n| &data[..n]).collect();
        for (bytes, got) in inputs.iter().zip(lanes(&inputs)) {
            assert_eq!(got, reference(bytes), "length {}", bytes.len());
        }
    }

    #[test]
    fn padded_lengths() {
        for (len, want) in [
            (0, 64),
            (55, 64),
            (56, 128),
            (63, 128),
            (64, 128),
            (119, 128),
        ] {
            assert_eq!(padded_len(len), want, "{len}");
        }
        assert_eq!(padded_len(120), 192);
    }
}
