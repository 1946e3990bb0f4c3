//! Reserving disk space for a file range before it is written
//! (`fallocate(2)` with `FALLOC_FL_KEEP_SIZE`): later writes into the range
//! cannot fail for want of space, and the file's size is unchanged until
//! they come. Where a file system cannot reserve, the free space it reports
//! (`fstatvfs(2)`) is the best estimate left.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Reserves `len` bytes of `file` from `offset`. `Ok(true)`: reserved;
/// `Ok(false)`: the file system cannot reserve (no `fallocate`, e.g. some
/// network and FUSE file systems), so writes may still find the disk full;
/// `Err`: it can, but not this much (`ENOSPC`, `EDQUOT`), or another error.
pub fn reserve(file: &File, offset: u64, len: u64) -> io::Result<bool> {
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Err(io::Error::from_raw_os_error(libc::EFBIG));
    };
    if len == 0 {
        return Ok(true);
    }
    loop {
        // SAFETY: integers and a descriptor that `file` keeps open for the
        // whole call; the kernel reads and writes none of our memory.
        let r =
            unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, offset, len) };
        if r == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EOPNOTSUPP | libc::ENOSYS) => return Ok(false),
            _ => return Err(e),
        }
    }
}

/// The bytes that unprivileged writers may still use on the file system
/// of `file` (blocks free to non-root users times the fragment size).
pub fn available(file: &File) -> io::Result<u64> {
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `st` is a writable buffer of the struct's size, which the
    // kernel fills on success; the descriptor stays open for the call.
    let r = unsafe { libc::fstatvfs(file.as_raw_fd(), st.as_mut_ptr()) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstatvfs returned 0, so it filled the whole struct.
    let st = unsafe { st.assume_init() };
    // Both are u64 on 64-bit targets; `f_frsize` is a 32-bit `c_ulong` on
    // 32-bit ones.
    #[allow(clippy::useless_conversion)]
    Ok(u64::from(st.f_bavail).saturating_mul(u64::from(st.f_frsize)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserves_without_changing_the_size() {
        let p = std::env::temp_dir().join(format!("pop3d-reserve-{}", std::process::id()));
        let f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        use std::os::unix::fs::MetadataExt;
        let blocks = f.metadata().unwrap().blocks();
        // Every local Linux file system the tests run on can reserve.
        assert!(reserve(&f, 8192, 1 << 20).unwrap());
        let m = f.metadata().unwrap();
        assert_eq!(m.len(), 0);
        assert!(m.blocks() >= blocks + 2048, "{} blocks", m.blocks());
        assert!(reserve(&f, 0, 0).unwrap());
        // (`available` is asserted in tests/mbox_disk_full.rs, on a file
        // system of a known size that no other test writes to.)
        std::fs::remove_file(&p).unwrap();
    }
}
