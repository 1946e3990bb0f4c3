//! Unique ids (UIDL): popa3d's header digest and its text form, and the
//! disambiguation that makes ids unique within a mailbox.
//!
//! popa3d's id is the MD5 of selected header lines (with their continuation
//! lines and line ends, in file order): the first `Received:`; `Date:` and
//! `Message-ID:` only before the first `Received:`; every `Delivered-To:`; every
//! `X-Delivery-ID:` with an upper-case `X`. Names are otherwise matched without
//! regard to case and must be followed directly by the colon. The text form is
//! digest bytes 3,2,1,0,7,6,5,4 in lower-case hex (16 characters).
//!
//! popa3d's id is kept for every message whose id is unique in the mailbox, so
//! clients switching from popa3d see the same ids. A message whose popa3d id is
//! shared gets `<popa3d id>-<8 hex digits of the MD5 of its data>`, and the
//! second, third, ... byte-identical copy gets `-2`, `-3`, ... appended. The
//! id then depends only on the message's content and on its identical copies
//! before it, so it survives deletions of other messages — except that a
//! message whose popa3d id becomes unique again (its last twin was deleted)
//! goes back to the plain popa3d id, which clients see as a new message.

use std::fmt::Write as _;

use super::Uid;
use super::index::Entry;

/// True if `head` starts with `name` (ASCII case-insensitive).
fn has_name(head: &[u8], name: &[u8]) -> bool {
    head.len() >= name.len() && head[..name.len()].eq_ignore_ascii_case(name)
}

/// Whether a header line whose first bytes are `head` goes into the digest.
///
/// `prev` is the status of the line before (continuation lines inherit it);
/// `seen_received` records whether a `Received:` line was seen in this message.
pub fn select(head: &[u8], prev: bool, seen_received: &mut bool) -> bool {
    match head.first() {
        Some(b' ') | Some(b'\t') => return prev,
        None => return false,
        _ => {}
    }
    if has_name(head, b"received:") {
        let first = !*seen_received;
        *seen_received = true;
        return first;
    }
    if has_name(head, b"date:") || has_name(head, b"message-id:") {
        return !*seen_received;
    }
    if has_name(head, b"delivered-to:") {
        return true;
    }
    head[0] == b'X' && has_name(head, b"x-delivery-id:")
}

/// The id of a message: popa3d's form, or the disambiguated form when `dup`
/// gives its ordinal among messages sharing the popa3d id.
pub fn format(entry: &Entry, dup: Option<u32>) -> Uid {
    let mut uid = Uid::new();
    let d = &entry.digest;
    // Writing at most 16 + 9 + 11 ASCII characters into 72 bytes cannot fail.
    for k in [3, 2, 1, 0, 7, 6, 5, 4] {
        let _ = write!(uid, "{:02x}", d[k]);
    }
    if let Some(ordinal) = dup {
        let _ = uid.push('-');
        for b in entry.data_sum {
            let _ = write!(uid, "{b:02x}");
        }
        if ordinal > 0 {
            let _ = write!(uid, "-{}", u64::from(ordinal) + 1);
        }
    }
    uid
}

/// Finds the messages whose popa3d id is not unique: `(message, ordinal)`
/// sorted by message, where the ordinal counts earlier messages with the same
/// popa3d digest and the same data sum.
pub fn find_dups(entries: &[Entry]) -> Vec<(u32, u32)> {
    let n = entries.len();
    if n < 2 {
        return Vec::new();
    }
    let mut order: Vec<u32> = (0..n as u32).collect();
    let key = |m: u32| {
        let e = &entries[m as usize];
        (e.digest, e.data_sum, m)
    };
    order.sort_unstable_by_key(|&m| key(m));
    let mut dups = Vec::new();
    let mut i = 0;
    while i < n {
        let digest = entries[order[i] as usize].digest;
        let mut j = i + 1;
        while j < n && entries[order[j] as usize].digest == digest {
            j += 1;
        }
        if j - i > 1 {
            let mut ordinal = 0;
            for k in i..j {
                let same = k > i
                    && entries[order[k] as usize].data_sum
                        == entries[order[k - 1] as usize].data_sum;
                ordinal = if same { ordinal + 1 } else { 0 };
                dups.push((order[k], ordinal));
            }
        }
        i = j;
    }
    dups.sort_unstable_by_key(|&(m, _)| m);
    dups
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::{Digest, Md5};

    fn entry(digest_of: &[u8], data_sum: [u8; 4]) -> Entry {
        let d = Md5::digest(digest_of);
        let mut digest = [0; 8];
        digest.copy_from_slice(&d[..8]);
        Entry {
            raw_start: 0,
            data_len: 1,
            size: 2,
            digest,
            data_sum,
            from_len: 5,
        }
    }

    #[test]
    fn verified_popa3d_values() {
        assert_eq!(
            format(&entry(b"", [0; 4]), None).as_str(),
            "d98c1dd404b2008f"
        );
        let r = b"Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\n";
        assert_eq!(format(&entry(r, [0; 4]), None).as_str(), "fed9c3594b4c341c");
    }

    #[test]
    fn disambiguated_form() {
        let e = entry(b"", [0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(format(&e, Some(0)).as_str(), "d98c1dd404b2008f-deadbeef");
        assert_eq!(format(&e, Some(2)).as_str(), "d98c1dd404b2008f-deadbeef-3");
        let long = format(&e, Some(u32::MAX));
        assert!(long.len() <= 70);
        assert!(long.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    }

    #[test]
    fn selection_rules() {
        let mut seen = false;
        assert!(select(b"Date: x\n", false, &mut seen));
        assert!(select(b"message-ID: <", false, &mut seen));
        assert!(!select(b"Subject: x\n", true, &mut seen));
        assert!(select(b" cont\n", true, &mut seen));
        assert!(!select(b"\tcont\n", false, &mut seen));
        assert!(!select(b"Received : x\n", false, &mut seen));
        assert!(!seen);
        assert!(select(b"rECEIVED: x\n", false, &mut seen));
        assert!(seen);
        assert!(!select(b"Received: y\n", false, &mut seen));
        assert!(!select(b"Date: x\n", false, &mut seen));
        assert!(!select(b"Message-Id: x", false, &mut seen));
        assert!(select(b"Delivered-To: u\n", false, &mut seen));
        assert!(select(b"X-DELIVERY-ID:", false, &mut seen));
        assert!(select(b"X-Delivery-Id:", false, &mut seen));
        assert!(!select(b"x-delivery-id:", false, &mut seen));
        assert!(!select(b"X-Delivery-ID", false, &mut seen));
        assert!(!select(b"Dat\n", false, &mut seen));
    }

    #[test]
    fn dups_and_ordinals() {
        let a = entry(b"a", [1; 4]);
        let b = entry(b"b", [1; 4]);
        let a2 = entry(b"a", [2; 4]);
        assert_eq!(find_dups(&[a, b]), []);
        assert_eq!(find_dups(&[a, b, a2]), [(0, 0), (2, 0)]);
        assert_eq!(
            find_dups(&[a, a, b, a2, a]),
            [(0, 0), (1, 1), (3, 0), (4, 2)]
        );
        assert_eq!(find_dups(&[]), []);
    }
}
