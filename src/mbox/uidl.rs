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
//! popa3d's id is kept for every message whose id is unique in the mailbox,
//! so clients switching from popa3d see the same ids. Where popa3d repeats
//! an id, ours must still be unique within the mailbox, stable across
//! sessions and deletions of other messages, and never given to a different
//! message later. Each message has a sequence of candidate ids:
//!
//! - k = 0: popa3d's id `P` (16 hex digits);
//! - k = 1: `P-S`, where `S` is 8 hex digits of the message data's sum
//!   (`DataSum` in `scan.rs`), computed only for the messages that need it
//!   ([`needing_sums`]);
//! - k >= 2: `P-S-k`.
//!
//! Messages take ids in file order: each takes its first candidate that no
//! earlier message has taken and that is not *retired*. When an expunge
//! deletes messages their ids are retired (remembered in
//! `SPOOL/.USER.pop3d-uids`, see `retired.rs`).
//!
//! Why this keeps every promise: a message's id depends only on the messages
//! before it and the retired set. Mail is only ever appended after it; an
//! earlier message that goes away moves its id from "taken" to "retired", so
//! the union the message skips over is unchanged and so is its id. Retiring
//! never touches the id of a message still there (ids are unique), and a
//! later message never gets a retired id. A message whose popa3d id is unique
//! and was never held by a deleted message gets `P`, as with popa3d. Two
//! different messages can share an id only through a 32-bit collision of
//! `S` among messages with the same headers *and* the retired set having
//! forgotten an id (it keeps the newest [`UID_RETIRED_MAX`] entries, and
//! never those a message still present depends on).
//!
//! [`UID_RETIRED_MAX`]: crate::config::UID_RETIRED_MAX

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

/// A candidate id: popa3d digest, data sum (zero for k = 0) and k.
pub type UidKey = ([u8; 8], [u8; 4], u32);

/// The key of candidate `k` of `entry`.
pub fn key(entry: &Entry, k: u32) -> UidKey {
    let sum = if k == 0 { [0; 4] } else { entry.data_sum };
    (entry.digest, sum, k)
}

/// A set of retired ids, sorted for lookup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Retired {
    keys: Vec<UidKey>,
}

impl Retired {
    /// A set of the given keys (in any order, duplicates allowed).
    pub fn from_keys(mut keys: Vec<UidKey>) -> Retired {
        keys.sort_unstable();
        keys.dedup();
        Retired { keys }
    }

    /// True if `k` is retired.
    pub fn contains(&self, k: &UidKey) -> bool {
        self.keys.binary_search(k).is_ok()
    }

    /// True if no id is retired.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Number of retired ids.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.keys.capacity() * std::mem::size_of::<UidKey>()
    }
}

/// The text of `entry`'s id (its `uid_k`-th candidate).
pub fn format(entry: &Entry) -> Uid {
    let mut uid = Uid::new();
    let d = &entry.digest;
    // Writing at most 16 + 9 + 11 ASCII characters into 72 bytes cannot fail.
    for k in [3, 2, 1, 0, 7, 6, 5, 4] {
        let _ = write!(uid, "{:02x}", d[k]);
    }
    if entry.uid_k > 0 {
        let _ = uid.push('-');
        for b in entry.data_sum {
            let _ = write!(uid, "{b:02x}");
        }
        if entry.uid_k > 1 {
            let _ = write!(uid, "-{}", entry.uid_k);
        }
    }
    uid
}

/// The digest as one integer (big-endian, so integers sort as the bytes do).
fn digest_of(e: &Entry) -> u64 {
    u64::from_be_bytes(e.digest)
}

/// Positions in `entries` (the visible messages), in file order, of the
/// messages whose id is not simply popa3d's: those whose digest another
/// message has too, and those whose popa3d id a deleted message held. Only
/// these need a look from [`needing_sums`] and [`assign`]; in most mailboxes
/// there are none.
///
/// Finding that out costs a few passes over the digests with two bit sets
/// of at least 8 bits per message (a digest's low bits pick its bit): only
/// digests whose bit is set twice may repeat, and only those few candidates
/// are sorted to find the digests that do. (Sorting every digest took 4 ms
/// of the 15 ms that follow the scan of a 200,000-message mailbox; this
/// takes 1.5-2.) Digests made to share their low bits cost at most the sort
/// of all of them.
pub fn contested(entries: &[Entry], retired: &Retired) -> Vec<usize> {
    let bits = (entries.len() * 8).next_power_of_two().max(64);
    let slot = |d: u64| ((d as usize & (bits - 1)) / 64, 1u64 << (d % 64));
    let test = |set: &[u64], d: u64| {
        let (w, b) = slot(d);
        set[w] & b != 0
    };
    let (mut seen, mut twice) = (vec![0u64; bits / 64], vec![0u64; bits / 64]);
    for e in entries {
        let (w, b) = slot(digest_of(e));
        twice[w] |= seen[w] & b;
        seen[w] |= b;
    }
    let mut candidates: Vec<u64> = entries
        .iter()
        .map(digest_of)
        .filter(|&d| test(&twice, d))
        .collect();
    candidates.sort_unstable();
    let mut flagged: Vec<u64> = candidates
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    drop(candidates);
    // Retired popa3d ids that a message may have (one that none has flags
    // nothing below).
    flagged.extend(
        retired
            .keys
            .iter()
            .filter(|k| k.2 == 0)
            .map(|k| u64::from_be_bytes(k.0))
            .filter(|&d| test(&seen, d)),
    );
    if flagged.is_empty() {
        return Vec::new();
    }
    flagged.sort_unstable();
    flagged.dedup();
    let mut marked = seen;
    marked.fill(0);
    for &d in &flagged {
        let (w, b) = slot(d);
        marked[w] |= b;
    }
    entries
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            let d = digest_of(e);
            test(&marked, d) && flagged.binary_search(&d).is_ok()
        })
        .map(|(m, _)| m)
        .collect()
}

/// Gives every entry its id (sets `uid_k`), in file order as described in
/// the module documentation. `entries` are the visible messages only;
/// `contested` is what [`contested`] says of them, and every contested
/// message that [`needing_sums`] names must have its data sum.
pub fn assign(entries: &mut [Entry], contested: &[usize], retired: &Retired) {
    for e in entries.iter_mut() {
        e.uid_k = 0;
    }
    // Sorted by digest, data sum and position: keys packed into integers
    // (big-endian, so the order is the bytes' order).
    let mut order: Vec<u128> = contested
        .iter()
        .map(|&m| {
            let e = &entries[m];
            (u128::from(digest_of(e)) << 64)
                | (u128::from(u32::from_be_bytes(e.data_sum)) << 32)
                | m as u128
        })
        .collect();
    order.sort_unstable();
    let digest = |k: u128| ((k >> 64) as u64).to_be_bytes();
    let sum = |k: u128| ((k >> 32) as u32).to_be_bytes();
    let at = |k: u128| k as u32 as usize;
    for group in order.chunk_by(|a, b| a >> 64 == b >> 64) {
        let d = digest(group[0]);
        // popa3d's id goes to the group's first message in file order, unless
        // a deleted message held it.
        let first = group.iter().map(|&k| at(k)).min().unwrap_or(0);
        let plain = !retired.contains(&(d, [0; 4], 0));
        for same_sum in group.chunk_by(|&a, &b| sum(a) == sum(b)) {
            let group_sum = sum(same_sum[0]);
            let mut next_k = 1u32;
            for &k in same_sum {
                let m = at(k);
                if plain && m == first {
                    continue;
                }
                while retired.contains(&(d, group_sum, next_k)) {
                    next_k += 1;
                }
                entries[m].uid_k = next_k;
                next_k += 1;
            }
        }
    }
}

/// Positions in `entries` (the visible messages), from `new_from` on, of the
/// messages whose id will use their data sum: in each group of messages with
/// the same digest, all but the one that keeps popa3d's id (the first in
/// file order, unless a deleted message held it). [`assign`] needs their
/// sums; the entries before `new_from` were assigned before and keep theirs.
/// `contested` is what [`contested`] says of `entries`. In file order.
pub fn needing_sums(
    entries: &[Entry],
    contested: &[usize],
    retired: &Retired,
    new_from: usize,
) -> Vec<usize> {
    let mut order: Vec<(u64, usize)> = contested
        .iter()
        .map(|&m| (digest_of(&entries[m]), m))
        .collect();
    order.sort_unstable();
    let mut need = Vec::new();
    for group in order.chunk_by(|a, b| a.0 == b.0) {
        let plain = !retired.contains(&(group[0].0.to_be_bytes(), [0; 4], 0));
        need.extend(
            group[usize::from(plain)..]
                .iter()
                .map(|&(_, m)| m)
                .filter(|&m| m >= new_from),
        );
    }
    need.sort_unstable();
    need
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
            size_extra: 1,
            from_len: 5,
            digest,
            data_sum,
            uid_k: 0,
        }
    }

    fn ids(entries: &[Entry]) -> Vec<String> {
        entries.iter().map(|e| format(e).to_string()).collect()
    }

    fn assigned(entries: &[Entry], retired: &Retired) -> Vec<String> {
        let mut v = entries.to_vec();
        let c = contested(&v, retired);
        assign(&mut v, &c, retired);
        ids(&v)
    }

    #[test]
    fn verified_popa3d_values() {
        assert_eq!(format(&entry(b"", [0; 4])).as_str(), "d98c1dd404b2008f");
        let r = b"Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\n";
        assert_eq!(format(&entry(r, [0; 4])).as_str(), "fed9c3594b4c341c");
    }

    #[test]
    fn disambiguated_form() {
        let e = entry(b"", [0xde, 0xad, 0xbe, 0xef]);
        let k = |k| format(&Entry { uid_k: k, ..e }).to_string();
        assert_eq!(k(1), "d98c1dd404b2008f-deadbeef");
        assert_eq!(k(3), "d98c1dd404b2008f-deadbeef-3");
        let long = k(u32::MAX);
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
    fn file_order_assignment() {
        let a = entry(b"a", [1; 4]);
        let b = entry(b"b", [1; 4]);
        let a2 = entry(b"a", [2; 4]);
        let none = Retired::default();
        let pa = format(&a).to_string();
        let pb = format(&b).to_string();
        assert_eq!(assigned(&[a, b], &none), [pa.clone(), pb.clone()]);
        // The first message with a shared popa3d id keeps it.
        assert_eq!(
            assigned(&[a, b, a2], &none),
            [pa.clone(), pb.clone(), format!("{pa}-02020202")]
        );
        assert_eq!(
            assigned(&[a, a, b, a2, a], &none),
            [
                pa.clone(),
                format!("{pa}-01010101"),
                pb.clone(),
                format!("{pa}-02020202"),
                format!("{pa}-01010101-2"),
            ]
        );
        assert!(assigned(&[], &none).is_empty());
    }

    /// Scanned entries come without sums: the ones [`needing_sums`] names
    /// get theirs (from `truth`, as the opening reads them), then [`assign`].
    /// Entries before `new_from` keep what they were given before.
    fn assigned_lazily(
        mut v: Vec<Entry>,
        truth: &[Entry],
        retired: &Retired,
        new_from: usize,
    ) -> Vec<Entry> {
        for e in &mut v[new_from..] {
            e.data_sum = [0; 4];
        }
        let c = contested(&v, retired);
        for m in needing_sums(&v, &c, retired, new_from) {
            v[m].data_sum = truth[m].data_sum;
        }
        assign(&mut v, &c, retired);
        v
    }

    /// What `contested` finds, by sorting every digest.
    fn contested_model(entries: &[Entry], retired: &Retired) -> Vec<usize> {
        let mut digests: Vec<u64> = entries.iter().map(digest_of).collect();
        digests.sort_unstable();
        let repeated = |d: u64| {
            let first = digests.partition_point(|&x| x < d);
            digests.get(first + 1) == Some(&d)
        };
        let retired_popa3d = |d: u64| retired.contains(&(d.to_be_bytes(), [0; 4], 0));
        (0..entries.len())
            .filter(|&m| {
                let d = digest_of(&entries[m]);
                repeated(d) || retired_popa3d(d)
            })
            .collect()
    }

    /// Digests drawn from a small pool (so that some repeat) or made to share
    /// their low bits with one another (so that the bit sets say "maybe"
    /// without a repeat), with retired ids held and not held by a message.
    #[test]
    fn contested_matches_a_sort_of_every_digest() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..400 {
            let n = [0, 1, 2, 3, 7, 8, 9, 63, 64, 65, 500, 5000][round % 12];
            let pool = 1 + next() % (2 * n as u64 + 1);
            let shared_low = next() % 3 == 0;
            let entries: Vec<Entry> = (0..n)
                .map(|_| {
                    let mut d = if next() % 2 == 0 {
                        next() % pool
                    } else {
                        next()
                    };
                    if shared_low {
                        d = (d << 16) | 0x5a5a;
                    }
                    let mut e = entry(b"", [0; 4]);
                    e.digest = d.to_be_bytes();
                    e
                })
                .collect();
            let mut keys: Vec<UidKey> = (0..next() % 6)
                .map(|_| match (entries.is_empty(), next() % 3) {
                    (false, 0) => key(&entries[next() as usize % n], 0),
                    (false, 1) => key(&entries[next() as usize % n], 1 + next() as u32 % 3),
                    _ => (next().to_be_bytes(), [0; 4], 0),
                })
                .collect();
            keys.sort_unstable();
            keys.dedup();
            let retired = Retired::from_keys(keys);
            assert_eq!(
                contested(&entries, &retired),
                contested_model(&entries, &retired),
                "round {round}"
            );
        }
    }

    #[test]
    fn sums_are_needed_where_popa3d_ids_repeat() {
        let a = entry(b"a", [1; 4]);
        let b = entry(b"b", [1; 4]);
        let none = Retired::default();
        let need =
            |v: &[Entry], r: &Retired, from: usize| needing_sums(v, &contested(v, r), r, from);
        assert!(contested(&[a, b], &none).is_empty());
        assert!(need(&[a, b], &none, 0).is_empty());
        assert_eq!(contested(&[a, b, a, a, b], &none), [0, 1, 2, 3, 4]);
        assert_eq!(need(&[a, b, a, a, b], &none, 0), [2, 3, 4]);
        assert_eq!(need(&[a, b, a, a, b], &none, 3), [3, 4]);
        assert_eq!(contested(&[a, b, a], &none), [0, 2]);
        // popa3d's id held by a deleted message: every holder of it needs one.
        let gone = Retired::from_keys(vec![key(&a, 0), key(&b, 1)]);
        assert_eq!(contested(&[b, a], &gone), [1]);
        assert_eq!(need(&[b, a, b, a], &gone, 0), [1, 2, 3]);
    }

    /// Simulates sessions: deletions retire ids, appends add messages; every
    /// surviving message keeps its id and no id is ever given to another.
    /// The same ids come from a full scan with every sum, from a full scan
    /// that hashes only the messages named by [`needing_sums`], and from
    /// scanning only the appended messages after the last session's index.
    #[test]
    fn ids_are_stable_and_never_reused() {
        let a = entry(b"", [1; 4]);
        let b = entry(b"", [2; 4]);
        let c = entry(b"c", [3; 4]);
        let mut mailbox = vec![a, b, a, c, b, a];
        let mut last: Vec<Entry> = Vec::new();
        let mut retired: Vec<UidKey> = Vec::new();
        let mut given: std::collections::HashMap<String, usize> = Default::default();
        // Message identities: position in this list of "deliveries".
        let mut who: Vec<usize> = (0..mailbox.len()).collect();
        let mut next_who = mailbox.len();
        let script: &[(&[usize], &[Entry])] = &[
            (&[], &[]),
            (&[0], &[a]),
            (&[1, 2], &[b, a, entry(b"", [3; 4]), c]),
            (&[0, 1, 2, 3, 4], &[a, c]),
            (&[0], &[a, a]),
            (&[], &[]),
        ];
        let mut prev: Vec<(usize, String)> = Vec::new();
        for (dels, adds) in script {
            let r = Retired::from_keys(retired.clone());
            let mut v = mailbox.clone();
            // Every message looked at, as if all were contested.
            let all: Vec<usize> = (0..v.len()).collect();
            assign(&mut v, &all, &r);
            let full = assigned_lazily(mailbox.clone(), &mailbox, &r, 0);
            assert_eq!(ids(&full), ids(&v), "full scan without sums");
            let kept = last.len();
            last.extend_from_slice(&mailbox[kept..]);
            last = assigned_lazily(last, &mailbox, &r, kept);
            assert_eq!(ids(&last), ids(&v), "appended messages scanned");
            let now: Vec<(usize, String)> = who.iter().copied().zip(ids(&v)).collect();
            let set: std::collections::HashSet<&String> = now.iter().map(|(_, u)| u).collect();
            assert_eq!(set.len(), now.len(), "unique: {now:?}");
            for (w, u) in &now {
                if let Some(&owner) = given.get(u) {
                    assert_eq!(owner, *w, "{u} reused");
                }
                given.insert(u.clone(), *w);
                if let Some((_, old)) = prev.iter().find(|(pw, _)| pw == w) {
                    assert_eq!(old, u, "message {w} changed its id");
                }
            }
            prev = now;
            // Delete (indexes into the current mailbox), retire, append.
            let mut keep = Vec::new();
            let mut keep_who = Vec::new();
            let mut kept_index = Vec::new();
            for (i, e) in v.iter().enumerate() {
                if dels.contains(&i) {
                    retired.push(key(e, e.uid_k));
                } else {
                    keep.push(Entry { uid_k: 0, ..*e });
                    keep_who.push(who[i]);
                    kept_index.push(last[i]);
                }
            }
            last = kept_index;
            for e in *adds {
                keep.push(*e);
                keep_who.push(next_who);
                next_who += 1;
            }
            mailbox = keep;
            who = keep_who;
        }
    }
}
