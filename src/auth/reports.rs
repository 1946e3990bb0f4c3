//! Malformed lines in the account files are logged once, not at every login:
//! a small bounded record of the (file, line) pairs already reported for the
//! current version of each file (device, inode, size and modification time).
//! When a file changes, its record starts afresh, so a line still malformed
//! after an edit is reported again, once.
//!
//! Bounds: [`LINES_MAX`] lines per file version (after which one line says
//! that more are not reported) and [`FILES_MAX`] files (the oldest record is
//! dropped). Log lines name the file, the line number and a fixed reason,
//! never the line's contents.

use std::collections::BTreeSet;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Most malformed lines reported per file version.
pub(crate) const LINES_MAX: usize = 256;
/// Most files remembered.
const FILES_MAX: usize = 8;

/// One version of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Version {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
}

impl Version {
    /// The version described by `meta`.
    pub(crate) fn of(meta: &Metadata) -> Version {
        Version {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
        }
    }
}

/// What has been reported for one file.
struct FileRecord {
    path: PathBuf,
    version: Version,
    lines: BTreeSet<u64>,
    overflow: bool,
}

/// The records of every file.
struct Registry {
    files: Vec<FileRecord>,
}

static REPORTED: Mutex<Registry> = Mutex::new(Registry { files: Vec::new() });

/// What to log for a malformed line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Report this line.
    Log,
    /// Too many lines reported for this file version: say so, once.
    Overflow,
    /// Already reported (or past the limit): nothing.
    Quiet,
}

impl Registry {
    fn decide(&mut self, path: &Path, version: Version, line: u64) -> Decision {
        let index = match self.files.iter().position(|f| f.path == path) {
            Some(i) => i,
            None => {
                if self.files.len() >= FILES_MAX {
                    self.files.remove(0);
                }
                self.files.push(FileRecord {
                    path: path.to_owned(),
                    version,
                    lines: BTreeSet::new(),
                    overflow: false,
                });
                self.files.len() - 1
            }
        };
        let record = &mut self.files[index];
        if record.version != version {
            record.version = version;
            record.lines.clear();
            record.overflow = false;
        }
        if record.lines.contains(&line) {
            Decision::Quiet
        } else if record.lines.len() < LINES_MAX {
            record.lines.insert(line);
            Decision::Log
        } else if !record.overflow {
            record.overflow = true;
            Decision::Overflow
        } else {
            Decision::Quiet
        }
    }
}

/// Records that line `line` of `path` (at `version`) is malformed and says
/// whether to log it.
pub(crate) fn decide(path: &Path, version: Version, line: u64) -> Decision {
    REPORTED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .decide(path, version, line)
}

/// Logs `message` (in unit tests: records it for the calling thread).
pub(crate) fn emit(message: std::fmt::Arguments<'_>) {
    #[cfg(test)]
    EMITTED.with(|e| e.borrow_mut().push(message.to_string()));
    #[cfg(not(test))]
    crate::notice!("{message}");
}

#[cfg(test)]
thread_local! {
    static EMITTED: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The messages emitted by this thread since the last call.
#[cfg(test)]
pub(crate) fn take_emitted() -> Vec<String> {
    EMITTED.with(|e| std::mem::take(&mut *e.borrow_mut()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(mtime: i64) -> Version {
        Version {
            dev: 1,
            ino: 2,
            size: 3,
            mtime: (mtime, 0),
        }
    }

    #[test]
    fn once_per_line_and_version() {
        let mut r = Registry { files: Vec::new() };
        let path = Path::new("/test/reports/once");
        assert_eq!(r.decide(path, version(1), 5), Decision::Log);
        assert_eq!(r.decide(path, version(1), 5), Decision::Quiet);
        assert_eq!(r.decide(path, version(1), 6), Decision::Log);
        // The file changed: report again.
        assert_eq!(r.decide(path, version(2), 5), Decision::Log);
        assert_eq!(r.decide(path, version(2), 5), Decision::Quiet);
    }

    #[test]
    fn bounded() {
        let mut r = Registry { files: Vec::new() };
        let path = Path::new("/test/reports/bounded");
        for line in 0..LINES_MAX as u64 {
            assert_eq!(r.decide(path, version(1), line), Decision::Log);
        }
        assert_eq!(r.decide(path, version(1), 100_000), Decision::Overflow);
        assert_eq!(r.decide(path, version(1), 100_001), Decision::Quiet);
        assert_eq!(r.decide(path, version(1), 0), Decision::Quiet);
        for i in 0..2 * FILES_MAX {
            let other = PathBuf::from(format!("/test/reports/file{i}"));
            assert_eq!(r.decide(&other, version(1), 1), Decision::Log);
        }
        assert_eq!(r.files.len(), FILES_MAX);
        // The first file's record was dropped: its lines count as new.
        assert_eq!(r.decide(path, version(1), 0), Decision::Log);
    }
}
