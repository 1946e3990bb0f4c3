//! passwd(5) and shadow(5) readers: one streaming pass per login over a file,
//! line by line, keeping only the first well-formed entry for the wanted name and
//! the costliest usable hash seen (for the dummy verification).
//!
//! Line rules, the same for both files:
//! - A line ends at `\n`; a last line without one counts. Nothing else is
//!   stripped: a `\r` before the `\n` is an ordinary byte of the last field (the
//!   shell in passwd, the reserved field in shadow, neither used here), so CRLF
//!   files work, and a `\r` anywhere else is part of its field (a name `alice\r`
//!   matches no login name).
//! - Lines longer than [`LINE_MAX`] are skipped; their rest is read and dropped
//!   without being stored. Lines containing a NUL byte are skipped.
//! - passwd lines need exactly 7 fields, a non-empty name not starting with `+`
//!   or `-` (NIS compat entries are not followed), and decimal uid and gid that
//!   fit in 32 bits. shadow lines need exactly 9 fields, a non-empty name, and
//!   fields 3 to 8 empty or decimal. Anything else is skipped and can never
//!   authenticate; a later well-formed line for the same name still counts.
//! - Duplicate names: the first well-formed entry wins, as with getpwnam(3).
//! - A file is read to its end even after the entry is found, so the time taken
//!   does not depend on where the entry is; reading stops with an error after
//!   [`FILE_MAX`] bytes.
//!
//! File contents pass through buffers that are wiped before they are freed.

use super::crypt;
use super::secret::{Secret, wipe, wipe_vec};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufRead, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Longest passwd or shadow line used, newline excluded.
pub(crate) const LINE_MAX: usize = 64 * 1024;
/// Largest passwd or shadow file read (a file of this size or more is refused).
pub(crate) const FILE_MAX: u64 = 64 * 1024 * 1024;
/// Longest hash field remembered as the dummy target.
const HASH_MAX: usize = 512;
/// Read buffer size.
const BUF_SIZE: usize = 8 * 1024;

/// A buffered reader over a file that wipes its buffer on drop and refuses to
/// read past [`FILE_MAX`].
pub(crate) struct WipingReader<R: Read> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    filled: usize,
    total: u64,
}

impl<R: Read> WipingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        WipingReader {
            inner,
            buf: vec![0; BUF_SIZE].into_boxed_slice(),
            pos: 0,
            filled: 0,
            total: 0,
        }
    }
}

impl<R: Read> Read for WipingReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for WipingReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.filled {
            if self.total >= FILE_MAX {
                return Err(io::Error::other(format!(
                    "too large (limit {} MiB)",
                    FILE_MAX >> 20
                )));
            }
            let n = loop {
                match self.inner.read(&mut self.buf) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other?,
                }
            };
            self.pos = 0;
            self.filled = n;
            self.total += n as u64;
        }
        Ok(&self.buf[self.pos..self.filled])
    }

    fn consume(&mut self, amount: usize) {
        self.pos = (self.pos + amount).min(self.filled);
    }
}

impl<R: Read> Drop for WipingReader<R> {
    fn drop(&mut self) {
        wipe(&mut self.buf);
    }
}

/// Opens `path` for a pass.
pub(crate) fn open(path: &Path) -> io::Result<WipingReader<File>> {
    File::open(path).map(WipingReader::new)
}

/// Reads the next line, without its `\n`, into `line` (which must have room
/// for [`LINE_MAX`] bytes). Returns `None` at end of file, `Some(true)` for a
/// line that fit, `Some(false)` for a longer one, whose bytes are dropped.
pub(crate) fn next_line<R: BufRead>(r: &mut R, line: &mut Vec<u8>) -> io::Result<Option<bool>> {
    line.clear();
    let mut fits = true;
    let mut seen = false;
    loop {
        let avail = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(seen.then_some(fits));
        }
        seen = true;
        let newline = avail.iter().position(|&b| b == b'\n');
        let chunk = &avail[..newline.unwrap_or(avail.len())];
        if fits {
            if line.len() + chunk.len() <= LINE_MAX {
                line.extend_from_slice(chunk);
            } else {
                fits = false;
                wipe_vec(line);
            }
        }
        let used = newline.map_or(avail.len(), |i| i + 1);
        r.consume(used);
        if newline.is_some() {
            return Ok(Some(fits));
        }
    }
}

/// Splits `line` at `:` into exactly `N` fields.
fn fields<const N: usize>(line: &[u8]) -> Option<[&[u8]; N]> {
    let mut out: [&[u8]; N] = [&[]; N];
    let mut parts = line.split(|&b| b == b':');
    for slot in out.iter_mut() {
        *slot = parts.next()?;
    }
    parts.next().is_none().then_some(out)
}

/// A decimal number of at most `max_digits` digits, no sign, no blanks.
fn decimal(field: &[u8], max_digits: usize) -> Option<u64> {
    if field.is_empty() || field.len() > max_digits || !field.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(field.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// The hash with the highest estimated verification cost seen so far.
#[derive(Debug, Default)]
pub(crate) struct Costliest {
    best: Option<(u64, Secret)>,
}

impl Costliest {
    /// Remembers `field` if it is a usable hash costlier than the current one.
    pub(crate) fn consider(&mut self, field: &[u8]) {
        if field.len() > HASH_MAX {
            return;
        }
        let Ok(hash) = std::str::from_utf8(field) else {
            return;
        };
        let Some(cost) = crypt::cost(hash) else {
            return;
        };
        if self.best.as_ref().is_none_or(|(c, _)| cost > *c) {
            self.best = Some((cost, Secret::copy_of(field)));
        }
    }

    /// The hash to verify against when no real one applies.
    pub(crate) fn dummy_target(&self) -> &str {
        self.best
            .as_ref()
            .and_then(|(_, h)| std::str::from_utf8(h.as_bytes()).ok())
            .unwrap_or(crypt::DEFAULT_DUMMY_HASH)
    }
}

/// A well-formed passwd entry.
#[derive(Debug)]
pub(crate) struct PasswdEntry {
    pub(crate) name: Vec<u8>,
    /// The password field: `x` (see shadow), or the hash itself.
    pub(crate) password: Secret,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) home: PathBuf,
}

/// Parses one passwd line into its fields, uid and gid; `None` if malformed.
fn parse_passwd(line: &[u8]) -> Option<([&[u8]; 7], u32, u32)> {
    if line.contains(&0) {
        return None;
    }
    let f = fields::<7>(line)?;
    let name = f[0];
    if name.is_empty() || name[0] == b'+' || name[0] == b'-' {
        return None;
    }
    let uid = u32::try_from(decimal(f[2], 10)?).ok()?;
    let gid = u32::try_from(decimal(f[3], 10)?).ok()?;
    Some((f, uid, gid))
}

/// One pass over a passwd file: the first well-formed entry named `user`.
/// Inline hashes (password field other than `x`) are offered to `costliest`.
pub(crate) fn scan_passwd<R: BufRead>(
    mut r: R,
    user: &[u8],
    costliest: &mut Costliest,
) -> io::Result<Option<PasswdEntry>> {
    let mut line = Secret::with_capacity(LINE_MAX);
    let mut found = None;
    while let Some(fits) = next_line(&mut r, line.vec())? {
        if !fits {
            continue;
        }
        let Some((f, uid, gid)) = parse_passwd(line.as_bytes()) else {
            continue;
        };
        if f[1] != b"x" {
            costliest.consider(f[1]);
        }
        if found.is_none() && f[0] == user {
            found = Some(PasswdEntry {
                name: f[0].to_vec(),
                password: Secret::copy_of(f[1]),
                uid,
                gid,
                home: PathBuf::from(OsStr::from_bytes(f[5])),
            });
        }
    }
    Ok(found)
}

/// Parses one shadow line; `None` if malformed.
fn parse_shadow(line: &[u8]) -> Option<[&[u8]; 9]> {
    if line.contains(&0) {
        return None;
    }
    let f = fields::<9>(line)?;
    if f[0].is_empty() {
        return None;
    }
    let numeric = |b: &[u8]| b.is_empty() || decimal(b, 18).is_some();
    f[2..8].iter().all(|b| numeric(b)).then_some(f)
}

/// One pass over a shadow file: the hash field of the first well-formed entry
/// named `user`. Every hash is offered to `costliest`.
pub(crate) fn scan_shadow<R: BufRead>(
    mut r: R,
    user: &[u8],
    costliest: &mut Costliest,
) -> io::Result<Option<Secret>> {
    let mut line = Secret::with_capacity(LINE_MAX);
    let mut found = None;
    while let Some(fits) = next_line(&mut r, line.vec())? {
        if !fits {
            continue;
        }
        let Some(f) = parse_shadow(line.as_bytes()) else {
            continue;
        };
        costliest.consider(f[1]);
        if found.is_none() && f[0] == user {
            found = Some(Secret::copy_of(f[1]));
        }
    }
    Ok(found)
}

/// Reads a whole file the way a login pass does, for the start-up check.
pub(crate) fn read_through(path: &Path) -> io::Result<()> {
    let mut r = open(path)?;
    let mut line = Secret::with_capacity(LINE_MAX);
    while next_line(&mut r, line.vec())?.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<(Vec<u8>, bool)> {
        let mut r = input;
        let mut line = Vec::with_capacity(LINE_MAX);
        let mut out = Vec::new();
        while let Some(fits) = next_line(&mut r, &mut line).unwrap() {
            out.push((line.clone(), fits));
        }
        out
    }

    #[test]
    fn line_splitting() {
        assert!(lines(b"").is_empty());
        assert_eq!(lines(b"a"), vec![(b"a".to_vec(), true)]);
        assert_eq!(lines(b"a\n"), vec![(b"a".to_vec(), true)]);
        assert_eq!(
            lines(b"a\r\n\nb"),
            vec![
                (b"a\r".to_vec(), true),
                (Vec::new(), true),
                (b"b".to_vec(), true)
            ]
        );
    }

    #[test]
    fn long_line_is_dropped_not_stored() {
        let mut input = vec![b'a'; LINE_MAX + 1];
        input.extend_from_slice(b"\nok\n");
        input.extend(vec![b'b'; LINE_MAX]);
        let got = lines(&input);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], (Vec::new(), false));
        assert_eq!(got[1], (b"ok".to_vec(), true));
        assert!(got[2].1 && got[2].0.len() == LINE_MAX);
    }

    #[test]
    fn long_line_through_small_buffer() {
        // Through the file reader, whose buffer is smaller than the line.
        let mut input = vec![b'z'; 3 * LINE_MAX];
        input.extend_from_slice(b"\nend");
        let mut r = WipingReader::new(&input[..]);
        let mut line = Vec::with_capacity(LINE_MAX);
        assert_eq!(next_line(&mut r, &mut line).unwrap(), Some(false));
        assert!(line.is_empty());
        assert_eq!(line.capacity(), LINE_MAX, "never grown");
        assert_eq!(next_line(&mut r, &mut line).unwrap(), Some(true));
        assert_eq!(line, b"end");
        assert_eq!(next_line(&mut r, &mut line).unwrap(), None);
    }

    #[test]
    fn passwd_field_rules() {
        assert!(parse_passwd(b"alice:x:1000:1000:Alice:/home/alice:/bin/sh").is_some());
        assert!(parse_passwd(b"alice:x:1000:1000:::").is_some());
        assert!(parse_passwd(b"alice:x:4294967295:0:::").is_some());
        for bad in [
            &b"alice:x:1000:1000:Alice:/home/alice"[..],
            b"alice:x:1000:1000:Alice:/home/alice:/bin/sh:extra",
            b":x:1000:1000:::",
            b"alice:x:10a0:1000:::",
            b"alice:x::1000:::",
            b"alice:x:-1:1000:::",
            b"alice:x: 1000:1000:::",
            b"alice:x:4294967296:1000:::",
            b"alice:x:1000:99999999999:::",
            b"alice:x:1000:1000:A\0:/home:/bin/sh",
            b"+alice:x:1000:1000:::",
            b"-alice:x:1000:1000:::",
            b"+::::::",
            b"",
            b"# comment",
        ] {
            assert!(
                parse_passwd(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn shadow_field_rules() {
        assert!(parse_shadow(b"alice:$6$s$h:19000:0:99999:7:::").is_some());
        assert!(parse_shadow(b"alice::::::::").is_some());
        for bad in [
            &b"alice:$6$s$h"[..],
            b"alice:$6$s$h:19000:0:99999:7::",
            b"alice:$6$s$h:19000:0:99999:7::::",
            b":$6$s$h:19000:0:99999:7:::",
            b"alice:$6$s$h:19x00:0:99999:7:::",
            b"alice:$6$s$h:-1:0:99999:7:::",
            b"alice:$6$s\0$h:19000:0:99999:7:::",
        ] {
            assert!(
                parse_shadow(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn first_entry_wins_and_costliest_is_tracked() {
        let shadow = b"bob:$1$abc$x:::::::\n\
            alice:$6$first$h:::::::\n\
            alice:$6$second$h:::::::\n\
            carol:$y$jBT$abc$h:::::::\n\
            dave:!$y$jCT$abc$h:::::::\n";
        let mut c = Costliest::default();
        let h = scan_shadow(&shadow[..], b"alice", &mut c).unwrap().unwrap();
        assert_eq!(h.as_bytes(), b"$6$first$h");
        assert_eq!(
            c.dummy_target(),
            "$y$jBT$abc$h",
            "locked hashes are not used"
        );
        let mut c = Costliest::default();
        assert!(scan_shadow(&b"x:y"[..], b"x", &mut c).unwrap().is_none());
        assert_eq!(c.dummy_target(), crypt::DEFAULT_DUMMY_HASH);
    }

    #[test]
    fn passwd_entry_fields() {
        let passwd = b"root:x:0:0:root:/root:/bin/bash\n\
            alice:x:1000:1001:Alice,,,:/home/alice:/bin/bash\n";
        let mut c = Costliest::default();
        let e = scan_passwd(&passwd[..], b"alice", &mut c).unwrap().unwrap();
        assert_eq!(e.name, b"alice");
        assert_eq!(e.password.as_bytes(), b"x");
        assert_eq!((e.uid, e.gid), (1000, 1001));
        assert_eq!(e.home, PathBuf::from("/home/alice"));
        assert!(scan_passwd(&passwd[..], b"alic", &mut c).unwrap().is_none());
    }

    #[test]
    fn file_limit() {
        // A reader over an endless source stops with an error.
        let mut r = WipingReader::new(io::repeat(b'a'));
        let mut line = Vec::with_capacity(LINE_MAX);
        let err = next_line(&mut r, &mut line).unwrap_err();
        assert_eq!(err.to_string(), "too large (limit 64 MiB)");
    }
}
