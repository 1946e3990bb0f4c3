//! File birth time via `statx(2)`, which std reports only on glibc targets.
//!
//! The mailbox engine uses it to tell a mailbox file from a new file that was
//! given the same inode number (after the old one was deleted), so that an
//! expunge journal or a remembered index is never applied to the wrong file.

use std::fs::File;
use std::os::fd::AsRawFd;

/// The birth time of `file` in nanoseconds since the epoch, or `None` where
/// the kernel or the file system does not record it.
pub fn birth_time(file: &File) -> Option<i128> {
    // SAFETY: `statx` is a plain C struct of integers (and padding); the
    // all-zero bit pattern is a valid value of it.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    let empty = c"";
    // SAFETY: the descriptor is open for the whole call because `file`
    // borrows it; `empty` is a valid NUL-terminated string; `stx` is a valid,
    // writable `statx` that outlives the call, which only writes into it.
    let rc = unsafe {
        libc::statx(
            file.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_BTIME,
            &mut stx,
        )
    };
    if rc != 0 || stx.stx_mask & libc::STATX_BTIME == 0 {
        return None;
    }
    Some(i128::from(stx.stx_btime.tv_sec) * 1_000_000_000 + i128::from(stx.stx_btime.tv_nsec))
}

#[cfg(test)]
mod tests {
    use super::birth_time;

    #[test]
    fn a_recreated_file_is_born_again() {
        let p = std::env::temp_dir().join(format!("pop3d-statx-{}", std::process::id()));
        std::fs::write(&p, b"x").unwrap();
        let a = birth_time(&File::open(&p).unwrap());
        std::fs::remove_file(&p).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&p, b"x").unwrap();
        let b = birth_time(&File::open(&p).unwrap());
        std::fs::remove_file(&p).unwrap();
        if let (Some(a), Some(b)) = (a, b) {
            assert!(b > a);
        }
    }

    use std::fs::File;
}
