//! In-place expunge: compact the kept messages' raw bytes (From_ line to the
//! next message) towards the start of the file in bounded [`COPY_CHUNK`]
//! copies, move mail appended during the session down after them byte for
//! byte, truncate, fsync. The caller holds the exclusive lock and has verified
//! the index. Inode, owner and mode stay; deleting everything leaves 0 bytes.
//!
//! Every copy moves bytes to a lower offset, reading ahead of what has been
//! written, so a single pass is safe. It is not crash-safe: a crash in the
//! middle leaves duplicated bytes. A later journal (write the plan first, redo
//! it at the next open) extends [`compact`] without changing its callers.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::index::Index;
use crate::config::COPY_CHUNK;

/// Copies `len` bytes from offset `from` to offset `to <= from` in `file`.
fn copy_down(file: &File, from: u64, to: u64, len: u64, buf: &mut [u8]) -> io::Result<()> {
    debug_assert!(to <= from);
    if from == to || len == 0 {
        return Ok(());
    }
    let mut done = 0;
    while done < len {
        let n = (len - done).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], from + done)?;
        file.write_all_at(&buf[..n], to + done)?;
        done += n as u64;
    }
    Ok(())
}

/// How many bytes of appended data come before its first From_ line: an empty
/// line that a fresh scan reads as the separator after an indexed end that was
/// not followed by one (0, 1 or 2).
fn appended_lead(file: &File, end: u64, size: u64) -> io::Result<u64> {
    let mut head = [0u8; 7];
    let n = ((size - end).min(7)) as usize;
    file.read_exact_at(&mut head[..n], end)?;
    let head = &head[..n];
    Ok(if head.starts_with(b"\nFrom ") {
        1
    } else if head.starts_with(b"\r\nFrom ") {
        2
    } else {
        0
    })
}

/// Compacts `file` (now `size` bytes long) to the messages of `index` not
/// `deleted`, keeps bytes after `index.end`, truncates and fsyncs; then makes
/// `index` describe the new file. Returns the new file length.
pub fn compact(
    file: &File,
    index: &mut Index,
    deleted: impl Fn(usize) -> bool,
    size: u64,
) -> io::Result<u64> {
    let n = index.entries.len();
    let mut buf = vec![0u8; COPY_CHUNK];
    // Kept messages, in order, from offset 0.
    let mut w = 0u64;
    for i in 0..n {
        let start = index.entries[i].raw_start;
        let len = index.raw_end(i) - start;
        if !deleted(i) {
            copy_down(file, start, w, len, &mut buf)?;
            w += len;
        }
    }
    let kept_end = w;
    // Appended mail. If the last message is kept it still ends where an empty
    // line may be needed before the new From_ line; otherwise what now precedes
    // the appended mail is nothing or a message whose raw bytes end with its
    // separator line, so such an empty line is dropped.
    let mut from = index.end;
    if size > index.end && n > 0 && deleted(n - 1) {
        from += appended_lead(file, index.end, size)?;
    }
    copy_down(file, from, w, size - from, &mut buf)?;
    let new_len = w + (size - from);
    file.set_len(new_len)?;
    file.sync_all()?;

    // The index of the new file: kept entries with their new offsets.
    let mut k = 0;
    let mut off = 0u64;
    for i in 0..n {
        let len = index.raw_end(i) - index.entries[i].raw_start;
        if !deleted(i) {
            let mut e = index.entries[i];
            e.raw_start = off;
            index.entries[k] = e;
            k += 1;
            off += len;
        }
    }
    index.entries.truncate(k);
    index.end = kept_end;
    Ok(new_len)
}
