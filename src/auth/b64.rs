//! The "crypt base64" text encoding shared by md5-crypt, sha-crypt and yescrypt:
//! the alphabet `./0-9A-Za-z`, each character carrying 6 bits, least significant
//! bits first. The schemes differ only in which bytes they group into each 24-bit
//! value, so the encoder takes the three bytes of a group explicitly.

/// The 64 characters, in value order.
pub(crate) const ALPHABET: &[u8; 64] =
    b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The value (0..64) of one character, or `None` if it is not in [`ALPHABET`].
pub(crate) fn value(c: u8) -> Option<u8> {
    let v = match c {
        b'.' => 0,
        b'/' => 1,
        b'0'..=b'9' => c - b'0' + 2,
        b'A'..=b'Z' => c - b'A' + 12,
        b'a'..=b'z' => c - b'a' + 38,
        _ => return None,
    };
    Some(v)
}

/// Appends `chars` characters (at most 4) for the 24-bit value
/// `(high << 16) | (mid << 8) | low`, least significant 6 bits first.
pub(crate) fn push_24(out: &mut Vec<u8>, high: u8, mid: u8, low: u8, chars: usize) {
    let mut v = (u32::from(high) << 16) | (u32::from(mid) << 8) | u32::from(low);
    for _ in 0..chars.min(4) {
        out.push(ALPHABET[(v & 0x3f) as usize]);
        v >>= 6;
    }
}

/// Appends `bytes` encoded little-endian in groups of three (yescrypt's layout):
/// a full group gives 4 characters, a final group of 2 bytes 3, of 1 byte 2.
pub(crate) fn push_le(out: &mut Vec<u8>, bytes: &[u8]) {
    for group in bytes.chunks(3) {
        match *group {
            [a, b, c] => push_24(out, c, b, a, 4),
            [a, b] => push_24(out, 0, b, a, 3),
            [a] => push_24(out, 0, 0, a, 2),
            _ => {}
        }
    }
}

/// Decodes text made by [`push_le`] into `out`. Strict: every character must be
/// in the alphabet, a final group of one character is refused, and the unused
/// high bits of a final partial group must be zero.
pub(crate) fn decode_le(text: &[u8], out: &mut Vec<u8>) -> Option<()> {
    for group in text.chunks(4) {
        let mut v: u32 = 0;
        for (i, &c) in group.iter().enumerate() {
            v |= u32::from(value(c)?) << (6 * i);
        }
        let bytes = match group.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => return None,
        };
        for _ in 0..bytes {
            out.push((v & 0xff) as u8);
            v >>= 8;
        }
        if v != 0 {
            return None;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_matches_alphabet() {
        for (i, &c) in ALPHABET.iter().enumerate() {
            assert_eq!(value(c), Some(i as u8));
        }
        for c in [b'$', b'+', b'-', b'=', b' ', 0, 0xff] {
            assert_eq!(value(c), None);
        }
    }

    #[test]
    fn le_round_trip_every_length() {
        let data: Vec<u8> = (0u8..=255).rev().collect();
        for len in 0..40 {
            let mut text = Vec::new();
            push_le(&mut text, &data[..len]);
            assert_eq!(text.len(), (len * 4).div_ceil(3));
            let mut back = Vec::new();
            decode_le(&text, &mut back).expect("decodes");
            assert_eq!(back, &data[..len]);
        }
    }

    #[test]
    fn decode_is_strict() {
        let mut out = Vec::new();
        assert!(decode_le(b"a", &mut out).is_none(), "lone character");
        assert!(
            decode_le(b"ab$d", &mut Vec::new()).is_none(),
            "bad character"
        );
        // "zz" has bits set above the one byte it encodes.
        assert!(
            decode_le(b"zz", &mut Vec::new()).is_none(),
            "non-zero spare bits"
        );
        assert!(decode_le(b"", &mut Vec::new()).is_some());
    }

    #[test]
    fn push_24_order() {
        let mut out = Vec::new();
        push_24(&mut out, 0, 0, 1, 4);
        assert_eq!(out, b"/...");
        out.clear();
        push_24(&mut out, 0xff, 0xff, 0xff, 4);
        assert_eq!(out, b"zzzz");
    }
}
