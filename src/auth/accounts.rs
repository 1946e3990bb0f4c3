//! passwd(5), shadow(5) and Dovecot-style passwd-file readers: one streaming
//! pass per login over a file, line by line, keeping only the first well-formed
//! entry for the wanted name and the costliest usable hash seen (for the dummy
//! verification). Nothing is cached between logins.
//!
//! Line rules, the same for every file:
//! - A line ends at `\n`; a last line without one counts.
//! - Blank lines (spaces and tabs only) and lines whose first non-blank byte is
//!   `#` are skipped silently, as glibc skips them; so are NIS compat entries
//!   in passwd (a name starting with `+` or `-`), which are not followed.
//! - Everything else that does not parse is malformed: it is skipped, can never
//!   authenticate, and is reported through the `report` callback with its line
//!   number and a fixed reason (never its contents). Malformed are: lines longer
//!   than [`LINE_MAX`] (their rest is read and dropped without being stored),
//!   lines containing a NUL byte, lines ending in `\r` (a CRLF file), an empty
//!   name, a missing or non-decimal uid or gid, or one above 32 bits, a shadow
//!   number field that is neither empty, `-1` nor decimal, and too few fields.
//! - Field counts follow glibc's parsers. passwd: `name:password:uid:gid`
//!   then optional gecos, home and shell (the shell is the rest of the line).
//!   shadow: `name:hash:lastchg:min:max`, then either nothing (the "old form",
//!   also with one empty sixth field) or `warn:inact:expire` and an optional
//!   `flag`; a field counts as given when it is non-empty or followed by a
//!   `:`, so `name:hash:::` (max missing) is malformed and `name:hash::::`
//!   is not; anything after the ninth field is ignored. Numbers are stricter
//!   than glibc's `strtoul`: no blanks or `+`.
//! - users (Dovecot passwd-file): `name:password:uid:gid`, then optional
//!   gecos, home, shell and extra fields (the extra fields are the rest of the
//!   line and are ignored).
//! - Duplicate names: the first well-formed entry wins, as with getpwnam(3);
//!   a later well-formed entry for the name being looked up is reported as a
//!   duplicate (duplicates of other names are noticed when those log in).
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

/// Receives malformed lines: 1-based line number and a fixed reason.
pub(crate) type Report<'a> = &'a mut dyn FnMut(u64, &'static str);

/// Reason given for a later entry with the name being looked up.
pub(crate) const DUPLICATE: &str = "duplicate name, an earlier entry counts";

/// A decimal number of at most `max_digits` digits, no sign, no blanks.
fn decimal(field: &[u8], max_digits: usize) -> Option<u64> {
    if field.is_empty() || field.len() > max_digits || !field.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(field.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// A uid or gid: decimal, at most 32 bits.
fn id(field: &[u8]) -> Option<u32> {
    decimal(field, 10).and_then(|n| u32::try_from(n).ok())
}

/// What one line holds, before the fields are looked at: `Ok(None)` for a
/// line to skip silently, `Ok(Some(line))` for the text to parse (leading
/// blanks removed), `Err` for a malformed line.
fn content(line: &[u8]) -> Result<Option<&[u8]>, &'static str> {
    let start = line
        .iter()
        .position(|&c| c != b' ' && c != b'\t')
        .unwrap_or(line.len());
    let text = &line[start..];
    if text.is_empty() || text[0] == b'#' {
        return Ok(None);
    }
    if text.contains(&0) {
        return Err("NUL byte");
    }
    if text.ends_with(b"\r") {
        return Err("carriage return at the end (CRLF line ending)");
    }
    Ok(Some(text))
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

/// A well-formed passwd or users-file entry.
#[derive(Debug)]
pub(crate) struct PasswdEntry {
    pub(crate) name: Vec<u8>,
    /// The password field: `x` (see shadow), or the hash itself.
    pub(crate) password: Secret,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) home: PathBuf,
}

/// The fields of a passwd or users line that are used.
struct Fields<'a> {
    name: &'a [u8],
    password: &'a [u8],
    uid: u32,
    gid: u32,
    home: &'a [u8],
}

/// Parses `name:password:uid:gid[:gecos[:home[:rest]]]` (passwd and users
/// files: glibc's passwd rules, which Dovecot's passwd-file shares). `Ok(None)`
/// for a line to skip silently.
fn parse_account(line: &[u8], nis: bool) -> Result<Option<Fields<'_>>, &'static str> {
    let Some(text) = content(line)? else {
        return Ok(None);
    };
    let mut f = text.splitn(7, |&b| b == b':');
    let name = f.next().unwrap_or_default();
    if nis && (name.starts_with(b"+") || name.starts_with(b"-")) {
        return Ok(None);
    }
    if name.is_empty() {
        return Err("empty name");
    }
    let (Some(password), Some(uid), Some(gid)) = (f.next(), f.next(), f.next()) else {
        return Err("too few fields");
    };
    let uid = id(uid).ok_or("bad uid")?;
    let gid = id(gid).ok_or("bad gid")?;
    let _gecos = f.next();
    let home = f.next().unwrap_or_default();
    Ok(Some(Fields {
        name,
        password,
        uid,
        gid,
        home,
    }))
}

/// One pass over a passwd file (`users_file == false`) or a Dovecot-style
/// passwd-file: the first well-formed entry named `user`. Inline hashes are
/// offered to `costliest` (from a users file without its `{SCHEME}` prefix).
pub(crate) fn scan_accounts<R: BufRead>(
    mut r: R,
    user: &[u8],
    users_file: bool,
    costliest: &mut Costliest,
    report: Report<'_>,
) -> io::Result<Option<PasswdEntry>> {
    let mut line = Secret::with_capacity(LINE_MAX);
    let mut found: Option<PasswdEntry> = None;
    let mut number = 0u64;
    while let Some(fits) = next_line(&mut r, line.vec())? {
        number += 1;
        if !fits {
            report(number, "line too long");
            continue;
        }
        let f = match parse_account(line.as_bytes(), !users_file) {
            Ok(Some(f)) => f,
            Ok(None) => continue,
            Err(reason) => {
                report(number, reason);
                continue;
            }
        };
        if users_file {
            costliest.consider(super::dovecot::strip(f.password).1);
        } else if f.password != b"x" {
            costliest.consider(f.password);
        }
        if f.name == user {
            if found.is_some() {
                report(number, DUPLICATE);
                continue;
            }
            found = Some(PasswdEntry {
                name: f.name.to_vec(),
                password: Secret::copy_of(f.password),
                uid: f.uid,
                gid: f.gid,
                home: PathBuf::from(OsStr::from_bytes(f.home)),
            });
        }
    }
    Ok(found)
}

/// A well-formed shadow entry.
#[derive(Debug)]
pub(crate) struct ShadowEntry {
    /// The hash field.
    pub(crate) hash: Secret,
    /// Field 8: the day (since 1970-01-01) from which the account is expired.
    pub(crate) expire: Option<u64>,
}

/// A shadow number field: empty or `-1` (not set), or decimal.
fn shadow_number(field: &[u8]) -> Result<Option<u64>, &'static str> {
    match field {
        b"" | b"-1" => Ok(None),
        _ => decimal(field, 18).map(Some).ok_or("bad number"),
    }
}

/// The fields of a shadow line that are used: name, hash, expiry day.
type ShadowFields<'a> = (&'a [u8], &'a [u8], Option<u64>);

/// Parses one shadow line the way glibc's parser accepts it (see the module
/// comment). `Ok(None)` for a line to skip silently.
fn parse_shadow(line: &[u8]) -> Result<Option<ShadowFields<'_>>, &'static str> {
    let Some(text) = content(line)? else {
        return Ok(None);
    };
    let mut f: [&[u8]; 10] = [&[]; 10];
    let mut n = 0;
    for part in text.split(|&b| b == b':').take(10) {
        f[n] = part;
        n += 1;
    }
    if f[0].is_empty() {
        return Err("empty name");
    }
    // glibc reads a number field only while text remains: the field is
    // non-empty, or a `:` follows it.
    let given = |i: usize| i < n && (i + 1 < n || !f[i].is_empty());
    for (i, field) in f.iter().enumerate().take(5).skip(2) {
        if !given(i) {
            return Err("too few fields");
        }
        shadow_number(field)?;
    }
    let old_form = n == 5 || (n == 6 && f[5].is_empty());
    if old_form {
        return Ok(Some((f[0], f[1], None)));
    }
    for (i, field) in f.iter().enumerate().take(8).skip(5) {
        if !given(i) {
            return Err("too few fields");
        }
        shadow_number(field)?;
    }
    if n > 8 {
        shadow_number(f[8])?;
    }
    Ok(Some((f[0], f[1], shadow_number(f[7])?)))
}

/// One pass over a shadow file: the first well-formed entry named `user`.
/// Every hash is offered to `costliest`.
pub(crate) fn scan_shadow<R: BufRead>(
    mut r: R,
    user: &[u8],
    costliest: &mut Costliest,
    report: Report<'_>,
) -> io::Result<Option<ShadowEntry>> {
    let mut line = Secret::with_capacity(LINE_MAX);
    let mut found: Option<ShadowEntry> = None;
    let mut number = 0u64;
    while let Some(fits) = next_line(&mut r, line.vec())? {
        number += 1;
        if !fits {
            report(number, "line too long");
            continue;
        }
        let (name, hash, expire) = match parse_shadow(line.as_bytes()) {
            Ok(Some(entry)) => entry,
            Ok(None) => continue,
            Err(reason) => {
                report(number, reason);
                continue;
            }
        };
        costliest.consider(hash);
        if name == user {
            if found.is_some() {
                report(number, DUPLICATE);
                continue;
            }
            found = Some(ShadowEntry {
                hash: Secret::copy_of(hash),
                expire,
            });
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

    type Parsed = Option<(u32, u32, Vec<u8>)>;

    fn passwd(line: &[u8]) -> Result<Parsed, &'static str> {
        parse_account(line, true).map(|o| o.map(|f| (f.uid, f.gid, f.home.to_vec())))
    }

    #[test]
    fn passwd_field_rules() {
        let ok = |l: &[u8]| passwd(l).unwrap().unwrap();
        assert_eq!(
            ok(b"alice:x:1000:1001:Alice:/home/alice:/bin/sh"),
            (1000, 1001, b"/home/alice".to_vec())
        );
        assert_eq!(ok(b"alice:x:1000:1000:::").0, 1000);
        assert_eq!(ok(b"alice:x:4294967295:0:::").0, u32::MAX);
        // glibc: gecos, home and shell may be missing; the shell is the rest.
        assert_eq!(ok(b"alice:x:1000:1000").2, b"");
        assert_eq!(ok(b"alice:x:1000:1000:Alice:/home/alice").2, b"/home/alice");
        assert_eq!(ok(b"alice:x:1000:1000:A:/h:/bin/sh:extra").2, b"/h");
        assert_eq!(ok(b"  alice:x:1000:1000:::").0, 1000);
        for (bad, why) in [
            (&b":x:1000:1000:::"[..], "empty name"),
            (b"alice:x:1000", "too few fields"),
            (b"alice", "too few fields"),
            (b"alice:x:10a0:1000:::", "bad uid"),
            (b"alice:x::1000:::", "bad uid"),
            (b"alice:x:-1:1000:::", "bad uid"),
            (b"alice:x: 1000:1000:::", "bad uid"),
            (b"alice:x:4294967296:1000:::", "bad uid"),
            (b"alice:x:1000:99999999999:::", "bad gid"),
            (b"alice:x:1000:1000:A\0:/home:/bin/sh", "NUL byte"),
            (
                b"alice:x:1000:1000:A:/home:/bin/sh\r",
                "carriage return at the end (CRLF line ending)",
            ),
        ] {
            assert_eq!(passwd(bad), Err(why), "{}", String::from_utf8_lossy(bad));
        }
        for skipped in [
            &b"+alice:x:1000:1001:::"[..],
            b"-alice:x:1000:1001:::",
            b"+",
            b"+::::::",
            b"",
            b"  \t ",
            b"# comment",
            b"  # comment: with colons",
        ] {
            assert_eq!(passwd(skipped), Ok(None));
        }
        // In a users file a leading + or - is part of the name.
        assert!(
            parse_account(b"+alice:x:1000:1001", false)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn shadow_field_rules() {
        let ok = |l: &[u8]| parse_shadow(l).unwrap().unwrap().2;
        assert_eq!(ok(b"alice:$6$s$h:19000:0:99999:7:::"), None);
        assert_eq!(ok(b"alice:$6$s$h:19000:0:99999:7::20000:"), Some(20000));
        assert_eq!(ok(b"alice::::::::"), None);
        assert_eq!(ok(b"alice:$6$s$h:19000:0:99999:7::-1:"), None);
        // The old five-field form (and with an empty sixth field).
        assert_eq!(ok(b"alice:$6$s$h:19000:0:99999"), None);
        assert_eq!(ok(b"alice:$6$s$h:19000:0:99999:"), None);
        assert_eq!(ok(b"alice:$6$s$h::::"), None);
        // Eight fields with the expiry given; anything after the ninth.
        assert_eq!(ok(b"alice:$6$s$h:1:2:3:4:5:6"), Some(6));
        assert_eq!(ok(b"alice:$6$s$h:19000:0:99999:7::::"), None);
        assert_eq!(ok(b"alice:$6$s$h:1:2:3:4:5:6:7:junk:more"), Some(6));
        let (name, hash, _) = parse_shadow(b"alice:$6$s$h:::::::").unwrap().unwrap();
        assert_eq!((name, hash), (&b"alice"[..], &b"$6$s$h"[..]));
        for (bad, why) in [
            (&b"alice:$6$s$h"[..], "too few fields"),
            (b"alice:$6$s$h:", "too few fields"),
            (b"alice:$6$s$h:::", "too few fields"),
            (b"alice:$6$s$h:1:2:3:4", "too few fields"),
            (b"alice:$6$s$h:19000:0:99999:7::", "too few fields"),
            (b"alice:$6$s$h:19000:0:99999:7:1:", "too few fields"),
            (b":$6$s$h:19000:0:99999:7:::", "empty name"),
            (b"alice:$6$s$h:19x00:0:99999:7:::", "bad number"),
            (b"alice:$6$s$h:-2:0:99999:7:::", "bad number"),
            (b"alice:$6$s$h:19000:0:99999:7:: 5:", "bad number"),
            (b"alice:$6$s$h:19000:0:99999:7:::x", "bad number"),
            (b"alice:$6$s\0$h:19000:0:99999:7:::", "NUL byte"),
            (
                b"alice:$6$s$h:19000:0:99999:7:::\r",
                "carriage return at the end (CRLF line ending)",
            ),
        ] {
            assert_eq!(
                parse_shadow(bad).map(|_| ()),
                Err(why),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(parse_shadow(b"# x:y"), Ok(None));
    }

    fn shadow_scan(
        input: &[u8],
        user: &[u8],
        c: &mut Costliest,
    ) -> (Option<ShadowEntry>, Vec<(u64, &'static str)>) {
        let mut reports = Vec::new();
        let found = scan_shadow(input, user, c, &mut |n, why| reports.push((n, why))).unwrap();
        (found, reports)
    }

    #[test]
    fn first_entry_wins_and_costliest_is_tracked() {
        let shadow = b"bob:$1$abc$x:::::::\n\
            alice:$6$first$h:::::::\n\
            alice:$6$second$h:::::::\n\
            carol:$y$jBT$abc$h:::::::\n\
            dave:!$y$jCT$abc$h:::::::\n";
        let mut c = Costliest::default();
        let (h, reports) = shadow_scan(shadow, b"alice", &mut c);
        assert_eq!(h.unwrap().hash.as_bytes(), b"$6$first$h");
        assert_eq!(reports, vec![(3, DUPLICATE)]);
        assert_eq!(
            c.dummy_target(),
            "$y$jBT$abc$h",
            "locked hashes are not used"
        );
        let mut c = Costliest::default();
        let (h, reports) = shadow_scan(b"x:y", b"x", &mut c);
        assert!(h.is_none());
        assert_eq!(reports, vec![(1, "too few fields")]);
        assert_eq!(c.dummy_target(), crypt::DEFAULT_DUMMY_HASH);
    }

    #[test]
    fn reports_carry_line_numbers() {
        let shadow = b"# comment\n\nalice:h:1:2\nbob:h:::::::\r\n\
            carol:h:x::::::\nalice:h:::::::\n";
        let (found, reports) = shadow_scan(shadow, b"alice", &mut Costliest::default());
        assert_eq!(found.unwrap().hash.as_bytes(), b"h");
        assert_eq!(
            reports,
            vec![
                (3, "too few fields"),
                (4, "carriage return at the end (CRLF line ending)"),
                (5, "bad number"),
            ]
        );
        let mut long = vec![b'a'; LINE_MAX + 1];
        long.extend_from_slice(b"\nalice:x:1:1\n");
        let mut reports = Vec::new();
        let found = scan_accounts(
            &long[..],
            b"alice",
            false,
            &mut Costliest::default(),
            &mut |n, why| reports.push((n, why)),
        )
        .unwrap();
        assert_eq!(found.unwrap().uid, 1);
        assert_eq!(reports, vec![(1, "line too long")]);
    }

    #[test]
    fn passwd_entry_fields() {
        let passwd = b"root:x:0:0:root:/root:/bin/bash\n\
            alice:x:1000:1001:Alice,,,:/home/alice:/bin/bash\n";
        let mut c = Costliest::default();
        let mut none = |_: u64, why: &'static str| panic!("{why}");
        let e = scan_accounts(&passwd[..], b"alice", false, &mut c, &mut none)
            .unwrap()
            .unwrap();
        assert_eq!(e.name, b"alice");
        assert_eq!(e.password.as_bytes(), b"x");
        assert_eq!((e.uid, e.gid), (1000, 1001));
        assert_eq!(e.home, PathBuf::from("/home/alice"));
        assert!(
            scan_accounts(&passwd[..], b"alic", false, &mut c, &mut none)
                .unwrap()
                .is_none()
        );
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
