//! SASL PLAIN (RFC 4616) for the POP3 AUTH command (RFC 5034): strict base64
//! decoding (RFC 4648, padded) and the `authzid NUL authcid NUL passwd` layout.

/// A malformed SASL response (bad base64 or a bad PLAIN layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// Decodes padded standard base64 into `out`. Whitespace, missing or misplaced
/// padding, non-zero trailing bits and any other alphabet are refused.
pub fn decode_base64(input: &[u8], out: &mut Vec<u8>) -> Result<(), Malformed> {
    if !input.len().is_multiple_of(4) {
        return Err(Malformed);
    }
    out.clear();
    out.reserve(input.len() / 4 * 3);
    let quads = input.len() / 4;
    for (q, chunk) in input.chunks_exact(4).enumerate() {
        let last = q + 1 == quads;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return Err(Malformed);
        }
        let mut v: u32 = 0;
        for &c in &chunk[..4 - pad] {
            v = (v << 6) | u32::from(sextet(c).ok_or(Malformed)?);
        }
        match pad {
            0 => out.extend_from_slice(&[(v >> 16) as u8, (v >> 8) as u8, v as u8]),
            1 => {
                if v & 0x3 != 0 {
                    return Err(Malformed);
                }
                v >>= 2;
                out.extend_from_slice(&[(v >> 8) as u8, v as u8]);
            }
            _ => {
                if v & 0xf != 0 {
                    return Err(Malformed);
                }
                v >>= 4;
                out.push(v as u8);
            }
        }
    }
    Ok(())
}

fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Splits a decoded PLAIN message into (authcid, passwd). The authzid must be
/// empty or equal to the authcid (we never log in as someone else); neither
/// the authcid nor the password may be empty.
pub fn parse_plain(msg: &[u8]) -> Result<(&[u8], &[u8]), Malformed> {
    let mut parts = msg.splitn(3, |&b| b == 0);
    let authzid = parts.next().ok_or(Malformed)?;
    let authcid = parts.next().ok_or(Malformed)?;
    let passwd = parts.next().ok_or(Malformed)?;
    if authcid.is_empty() || passwd.is_empty() || passwd.contains(&0) {
        return Err(Malformed);
    }
    if !authzid.is_empty() && authzid != authcid {
        return Err(Malformed);
    }
    Ok((authcid, passwd))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Result<Vec<u8>, Malformed> {
        let mut v = Vec::new();
        decode_base64(s.as_bytes(), &mut v).map(|()| v)
    }

    #[test]
    fn base64_vectors() {
        // RFC 4648 section 10.
        assert_eq!(dec("").unwrap(), b"");
        assert_eq!(dec("Zg==").unwrap(), b"f");
        assert_eq!(dec("Zm8=").unwrap(), b"fo");
        assert_eq!(dec("Zm9v").unwrap(), b"foo");
        assert_eq!(dec("Zm9vYg==").unwrap(), b"foob");
        assert_eq!(dec("Zm9vYmE=").unwrap(), b"fooba");
        assert_eq!(dec("Zm9vYmFy").unwrap(), b"foobar");
        for bad in [
            "Zg", "Zg=", "Z===", "Zh==", "Zm9=", "Zg==Zg==", "Zm 9", "Zm9v\n", "Zm-v",
        ] {
            assert!(dec(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plain_layout() {
        assert_eq!(parse_plain(b"\0bob\0pw"), Ok((&b"bob"[..], &b"pw"[..])));
        assert_eq!(
            parse_plain(b"bob\0bob\0p w"),
            Ok((&b"bob"[..], &b"p w"[..]))
        );
        assert!(parse_plain(b"eve\0bob\0pw").is_err());
        assert!(parse_plain(b"\0bob\0").is_err());
        assert!(parse_plain(b"\0\0pw").is_err());
        assert!(parse_plain(b"bob\0pw").is_err());
        assert!(parse_plain(b"\0bob\0pw\0x").is_err());
    }
}
