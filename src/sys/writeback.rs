//! Starting the write-back of a file range early (`sync_file_range(2)` with
//! `SYNC_FILE_RANGE_WRITE`): the fsync that later makes the range durable
//! then finds most of it on its way to the disk already, and the disk works
//! while the compaction copies the next bytes. Only a hint: durability still
//! comes from the fsyncs, and a failure here changes nothing.

use std::fs::File;
use std::os::fd::AsRawFd;

/// Asks the kernel to start writing `len` bytes of `file` from `offset` to
/// the disk, without waiting for them.
pub fn start(file: &File, offset: u64, len: u64) {
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: integers and a descriptor that `file` keeps open for the whole
    // call; the kernel reads and writes none of our memory.
    let _ = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
}
