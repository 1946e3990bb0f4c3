//! The retired-UIDL file `DIR/.NAME.pop3d-uids`: the ids of messages that an
//! expunge deleted, so that no later message is given one of them (see
//! `uidl.rs` for why this makes ids stable and never reused).
//!
//! Format: a 16-byte magic line, then 16-byte records (popa3d digest 8 bytes,
//! data sum 4 bytes, candidate number k as u32 little-endian), oldest first.
//! An expunge appends its records once the compaction is complete (the
//! journal holds them until then, so a redo appends them too; a duplicate is
//! harmless). Past [`UID_RETIRED_MAX`] records the file is rewritten (temporary
//! file + rename) keeping every record that a message still in the mailbox
//! depends on and the newest others.
//!
//! The file is made by the same identity that makes the dotlock and the
//! journal, in the mailbox's directory. One that is not a regular file owned
//! by the mailbox's owner, or that others may write, is ignored (with a log
//! line): a stranger's file must not decide anybody's ids.

use std::fs::{self, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::file::{append_own, give, open_own, sibling};
use super::index::Entry;
use super::uidl::{Retired, UidKey};
use crate::config::UID_RETIRED_MAX;

const MAGIC: &[u8; 16] = b"pop3d-uids v1\n\0\0";
const RECORD: usize = 16;

/// The most records read back: the cap and more than one expunge of a
/// mailbox at the default message limit adds while it cannot prune.
const READ_MAX: usize = UID_RETIRED_MAX * 4 + 4 * 1024 * 1024;

/// The file's path for the mailbox at `mailbox`.
pub fn path(mailbox: &Path) -> PathBuf {
    sibling(mailbox, ".pop3d-uids")
}

fn encode(k: &UidKey) -> [u8; RECORD] {
    let mut r = [0u8; RECORD];
    r[..8].copy_from_slice(&k.0);
    r[8..12].copy_from_slice(&k.1);
    r[12..].copy_from_slice(&k.2.to_le_bytes());
    r
}

fn decode(r: &[u8]) -> UidKey {
    let mut d = [0u8; 8];
    d.copy_from_slice(&r[..8]);
    let mut s = [0u8; 4];
    s.copy_from_slice(&r[8..12]);
    let mut k = [0u8; 4];
    k.copy_from_slice(&r[12..16]);
    (d, s, u32::from_le_bytes(k))
}

/// All records in file order (at most a bounded number; see the module doc).
fn read_records(p: &Path, owner: u32, read_max: usize) -> io::Result<Vec<UidKey>> {
    let Some(f) = open_own(p, owner)? else {
        return Ok(Vec::new());
    };
    let limit = (MAGIC.len() + RECORD * read_max) as u64;
    let mut bytes = Vec::new();
    f.take(limit).read_to_end(&mut bytes)?;
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Ok(Vec::new());
    }
    // A torn last record (a crash while appending) is ignored.
    Ok(bytes[MAGIC.len()..]
        .chunks_exact(RECORD)
        .map(decode)
        .collect())
}

/// The retired ids of the mailbox at `mailbox` (owned by `owner`). Problems
/// are logged and give an empty set: ids are then computed as if nothing had
/// been deleted before.
pub fn load(mailbox: &Path, owner: u32) -> Retired {
    let p = path(mailbox);
    match read_records(&p, owner, READ_MAX) {
        Ok(keys) => Retired::from_keys(keys),
        Err(e) => {
            crate::notice!("ignoring {}: {e}", p.display());
            Retired::default()
        }
    }
}

/// Records `new` as retired for the mailbox at `mailbox` (owned by
/// `owner`) whose messages are now `live`, and returns the whole set. With
/// `live` unknown (`None`, while finishing an interrupted expunge) the file
/// may grow past its bound until the next commit prunes it, but not past
/// what is read back.
pub fn commit(
    mailbox: &Path,
    owner: (u32, u32),
    new: &[UidKey],
    live: Option<&[Entry]>,
) -> io::Result<Retired> {
    commit_within(mailbox, owner, new, live, READ_MAX)
}

/// [`commit`], with `read_max` records read back at most.
fn commit_within(
    mailbox: &Path,
    owner: (u32, u32),
    new: &[UidKey],
    live: Option<&[Entry]>,
    read_max: usize,
) -> io::Result<Retired> {
    let (owner, group) = owner;
    let p = path(mailbox);
    let mut all = read_records(&p, owner, read_max)?;
    if new.is_empty() {
        return Ok(Retired::from_keys(all));
    }
    let fresh = all.is_empty();
    all.extend_from_slice(new);
    // Without the messages (finishing an interrupted expunge) the file is
    // pruned only where it would outgrow what is read back; records a
    // message depends on may then be forgotten, which a real expunge never
    // comes near (a crafted journal could).
    let live = match live {
        Some(l) if all.len() > UID_RETIRED_MAX => Some(l),
        None if all.len() > read_max => Some(&[][..]),
        _ => None,
    };
    let Some(live) = live else {
        let mut f = append_own(&p, owner)?;
        give(&f, owner, group)?;
        let mut out = Vec::with_capacity(MAGIC.len() + new.len() * RECORD);
        if fresh || f.metadata()?.len() < MAGIC.len() as u64 {
            f.set_len(0)?;
            out.extend_from_slice(MAGIC);
            out.extend(all.iter().flat_map(encode));
        } else {
            // A torn record at the end would shift every later record.
            let len = f.metadata()?.len();
            let whole =
                MAGIC.len() as u64 + (len - MAGIC.len() as u64) / RECORD as u64 * RECORD as u64;
            if whole != len {
                f.set_len(whole)?;
            }
            out.extend(new.iter().flat_map(encode));
        }
        f.write_all(&out)?;
        f.sync_data()?;
        return Ok(Retired::from_keys(all));
    };
    let kept = prune(all, live);
    let tmp = sibling(mailbox, ".pop3d-uids.new");
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(&tmp)?;
    give(&f, owner, group)?;
    let mut out = Vec::with_capacity(MAGIC.len() + kept.len() * RECORD);
    out.extend_from_slice(MAGIC);
    out.extend(kept.iter().flat_map(encode));
    f.write_all(&out)?;
    f.sync_all()?;
    fs::rename(&tmp, &p)?;
    Ok(Retired::from_keys(kept))
}

/// Keeps (in order) every record a live message depends on — its id comes
/// after that candidate — and the newest others, up to [`UID_RETIRED_MAX`].
fn prune(all: Vec<UidKey>, live: &[Entry]) -> Vec<UidKey> {
    let mut plain: Vec<[u8; 8]> = live
        .iter()
        .filter(|e| e.uid_k > 0)
        .map(|e| e.digest)
        .collect();
    plain.sort_unstable();
    let mut held: Vec<([u8; 8], [u8; 4], u32)> = live
        .iter()
        .filter(|e| e.uid_k > 1)
        .map(|e| (e.digest, e.data_sum, e.uid_k))
        .collect();
    held.sort_unstable();
    let pinned = |k: &UidKey| -> bool {
        if k.2 == 0 {
            return plain.binary_search(&k.0).is_ok();
        }
        // Some live message with the same digest and sum holds a later k.
        let from = held.partition_point(|h| (h.0, h.1) < (k.0, k.1));
        held[from..]
            .iter()
            .take_while(|h| (h.0, h.1) == (k.0, k.1))
            .any(|h| h.2 > k.2)
    };
    let mut keep = vec![false; all.len()];
    let mut room = UID_RETIRED_MAX;
    for (i, k) in all.iter().enumerate() {
        if pinned(k) {
            keep[i] = true;
            room = room.saturating_sub(1);
        }
    }
    for i in (0..all.len()).rev() {
        if room == 0 {
            break;
        }
        if !keep[i] {
            keep[i] = true;
            room -= 1;
        }
    }
    all.into_iter()
        .zip(keep)
        .filter_map(|(k, keep)| keep.then_some(k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn entry(d: u8, s: u8, k: u32) -> Entry {
        Entry {
            raw_start: 0,
            data_len: 1,
            size_extra: 1,
            from_len: 6,
            digest: [d; 8],
            data_sum: [s; 4],
            uid_k: k,
        }
    }

    /// Finishing interrupted expunges cannot prune (the messages are not
    /// known yet), but the file never outgrows what is read back, however
    /// many such expunges its owner's journals ask for; the newest ids stay.
    /// (With a smaller read bound than the daemon's, to be quick.)
    #[test]
    fn unpruned_commits_never_outgrow_what_is_read() {
        let dir = std::env::temp_dir().join(format!("pop3d-retired-grow-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let mbox = dir.join("u");
        fs::write(&mbox, b"").unwrap();
        let owner = fs::metadata(&mbox).unwrap().uid();
        let read_max = 60_000;
        let batch: Vec<UidKey> = (0..20_000u32)
            .map(|i| {
                let mut d = [0u8; 8];
                d[..4].copy_from_slice(&i.to_le_bytes());
                (d, [1; 4], 0)
            })
            .collect();
        let mut records = Vec::new();
        for _ in 0..6 {
            commit_within(&mbox, (owner, 0), &batch, None, read_max).unwrap();
            let len = fs::metadata(path(&mbox)).unwrap().len() as usize;
            records.push((len - MAGIC.len()) / RECORD);
        }
        assert!(records.iter().all(|&n| n <= read_max), "{records:?}");
        assert!(records.windows(2).any(|w| w[1] < w[0]), "{records:?}");
        let back = read_records(&path(&mbox), owner, read_max).unwrap();
        assert_eq!(back.last(), batch.last());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn records_round_trip_and_prune_keeps_pinned() {
        let dir = std::env::temp_dir().join(format!(
            "pop3d-retired-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        fs::create_dir_all(&dir).unwrap();
        let mb = dir.join("user");
        let owner = fs::metadata(&dir).unwrap().uid();
        assert!(load(&mb, owner).is_empty());
        let a = ([1; 8], [0; 4], 0);
        let b = ([1; 8], [2; 4], 1);
        let r = commit(&mb, (owner, 0), &[a, b], Some(&[])).unwrap();
        assert!(r.contains(&a) && r.contains(&b));
        assert_eq!(load(&mb, owner), r);
        // A torn record is ignored and repaired by the next commit.
        let mut f = OpenOptions::new().append(true).open(path(&mb)).unwrap();
        f.write_all(&[9; 5]).unwrap();
        assert_eq!(load(&mb, owner).len(), 2);
        let c = ([3; 8], [0; 4], 0);
        commit(&mb, (owner, 0), &[c], None).unwrap();
        assert_eq!(load(&mb, owner).len(), 3);
        // Someone else's file is ignored.
        if owner == 0 {
            let other = dir.join("other");
            fs::write(path(&other), MAGIC).unwrap();
            assert!(load(&other, 4242).is_empty());
        }
        fs::remove_dir_all(&dir).unwrap();

        // Pruning: the newest survive, and so do records live messages need.
        let mut all: Vec<UidKey> = (0..UID_RETIRED_MAX as u32 + 10)
            .map(|i| ([9; 8], [0; 4], i + 1))
            .collect();
        all.insert(0, ([7; 8], [0; 4], 0));
        all.insert(1, ([8; 8], [5; 4], 1));
        let live = [entry(7, 1, 1), entry(8, 5, 2)];
        let kept = prune(all.clone(), &live);
        assert_eq!(kept.len(), UID_RETIRED_MAX);
        assert_eq!(kept[0], all[0]);
        assert_eq!(kept[1], all[1]);
        assert_eq!(kept.last(), all.last());
    }
}
