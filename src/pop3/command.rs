//! Wire parsing of one POP3 command line into a [`Command`].
//!
//! Rules (RFC 1939, with popa3d's tolerances where they are harmless): the
//! keyword runs to the first space and is matched case-insensitively; arguments
//! are separated by single spaces and one trailing space is tolerated; message
//! numbers are plain decimal digits (no sign), at least 1; `PASS` takes the rest
//! of the line byte for byte, spaces included.

/// One parsed command. Byte-string arguments borrow from the input line.
#[derive(Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// `USER name`
    User(&'a [u8]),
    /// `PASS secret` (everything after the first space)
    Pass(&'a [u8]),
    /// `QUIT`
    Quit,
    /// `STAT`
    Stat,
    /// `LIST [n]`
    List(Option<u64>),
    /// `RETR n`
    Retr(u64),
    /// `DELE n`
    Dele(u64),
    /// `NOOP`
    Noop,
    /// `RSET`
    Rset,
    /// `TOP n lines`
    Top(u64, u64),
    /// `UIDL [n]`
    Uidl(Option<u64>),
    /// `LAST` (RFC 1460, kept by popa3d)
    Last,
    /// `CAPA` (RFC 2449)
    Capa,
    /// `AUTH [mechanism [initial-response]]` (RFC 5034)
    Auth(Option<&'a [u8]>, Option<&'a [u8]>),
}

/// Why a line is not a command.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum ParseError {
    /// The keyword is not one we know.
    Unknown,
    /// A known keyword with missing, extra or malformed arguments.
    Syntax,
}

/// Longest argument token accepted (RFC 1939: 40 characters; user names may be a
/// little longer in practice).
const TOKEN_MAX: usize = crate::config::USER_MAX;

/// Parses one line (without its line end).
pub fn parse(line: &[u8]) -> Result<Command<'_>, ParseError> {
    if line.contains(&0) {
        return Err(ParseError::Syntax);
    }
    let (keyword, rest) = match line.iter().position(|&b| b == b' ') {
        Some(i) => (&line[..i], Some(&line[i + 1..])),
        None => (line, None),
    };
    if keyword.len() > 4 || keyword.is_empty() {
        return Err(ParseError::Unknown);
    }
    let mut kw = [0u8; 4];
    for (d, s) in kw.iter_mut().zip(keyword) {
        *d = s.to_ascii_uppercase();
    }
    let kw = &kw[..keyword.len()];

    if kw == b"PASS" {
        return match rest {
            Some(p) if !p.is_empty() => Ok(Command::Pass(p)),
            _ => Err(ParseError::Syntax),
        };
    }

    let known: &[&[u8]] = &[
        b"USER", b"QUIT", b"STAT", b"LIST", b"RETR", b"DELE", b"NOOP", b"RSET", b"TOP", b"UIDL",
        b"LAST", b"CAPA", b"AUTH",
    ];
    if !known.contains(&kw) {
        return Err(ParseError::Unknown);
    }
    let token_max = if kw == b"AUTH" {
        crate::config::AUTH_LINE_MAX
    } else {
        TOKEN_MAX
    };
    let args = split_args(rest.unwrap_or(b""), token_max).ok_or(ParseError::Syntax)?;
    let a = &args.items[..args.len];
    let cmd = match (kw, a) {
        (b"USER", [name]) => Command::User(name),
        (b"QUIT", []) => Command::Quit,
        (b"STAT", []) => Command::Stat,
        (b"LIST", []) => Command::List(None),
        (b"LIST", [n]) => Command::List(Some(msg_number(n)?)),
        (b"RETR", [n]) => Command::Retr(msg_number(n)?),
        (b"DELE", [n]) => Command::Dele(msg_number(n)?),
        (b"NOOP", []) => Command::Noop,
        (b"RSET", []) => Command::Rset,
        (b"TOP", [n, k]) => Command::Top(msg_number(n)?, count(k)?),
        (b"UIDL", []) => Command::Uidl(None),
        (b"UIDL", [n]) => Command::Uidl(Some(msg_number(n)?)),
        (b"LAST", []) => Command::Last,
        (b"CAPA", []) => Command::Capa,
        (b"AUTH", []) => Command::Auth(None, None),
        (b"AUTH", [m]) => Command::Auth(Some(m), None),
        (b"AUTH", [m, r]) => Command::Auth(Some(m), Some(r)),
        _ => return Err(ParseError::Syntax),
    };
    Ok(cmd)
}

/// Up to three argument tokens.
struct Args<'a> {
    items: [&'a [u8]; 3],
    len: usize,
}

/// Splits on single spaces. One trailing space is tolerated; empty tokens
/// (two spaces), more than three tokens or over-long tokens are refused.
fn split_args(rest: &[u8], token_max: usize) -> Option<Args<'_>> {
    let rest = rest.strip_suffix(b" ").unwrap_or(rest);
    let mut args = Args {
        items: [&[]; 3],
        len: 0,
    };
    if rest.is_empty() {
        return Some(args);
    }
    for tok in rest.split(|&b| b == b' ') {
        if tok.is_empty() || tok.len() > token_max || args.len == args.items.len() {
            return None;
        }
        args.items[args.len] = tok;
        args.len += 1;
    }
    Some(args)
}

/// A non-negative decimal count: digits only, no sign, fits in u64.
fn count(tok: &[u8]) -> Result<u64, ParseError> {
    if tok.is_empty() || !tok.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::Syntax);
    }
    let mut n: u64 = 0;
    for &d in tok {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or(ParseError::Syntax)?;
    }
    Ok(n)
}

/// A message number: a count of at least 1.
fn msg_number(tok: &[u8]) -> Result<u64, ParseError> {
    match count(tok)? {
        0 => Err(ParseError::Syntax),
        n => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_case_insensitive() {
        assert_eq!(parse(b"stat"), Ok(Command::Stat));
        assert_eq!(parse(b"sTaT"), Ok(Command::Stat));
        assert_eq!(parse(b"top 1 0"), Ok(Command::Top(1, 0)));
    }

    #[test]
    fn numbers_are_strict() {
        for bad in [
            &b"RETR 0"[..],
            b"RETR -1",
            b"RETR +2",
            b"RETR 2x",
            b"RETR 99999999999999999999",
            b"RETR",
            b"RETR 1 2",
            b"RETR  1",
            b"RETR 1\t",
            b"TOP 1",
            b"TOP 1 -1",
            b"TOP 1 2 3",
        ] {
            assert_eq!(parse(bad), Err(ParseError::Syntax), "{:?}", bad);
        }
        assert_eq!(parse(b"RETR 1 "), Ok(Command::Retr(1)));
        assert_eq!(parse(b"RETR 01"), Ok(Command::Retr(1)));
        assert_eq!(
            parse(b"LIST 18446744073709551615"),
            Ok(Command::List(Some(u64::MAX)))
        );
    }

    #[test]
    fn extra_arguments_are_refused() {
        for bad in [
            &b"NOOP x"[..],
            b"STAT 1",
            b"QUIT x",
            b"RSET 1",
            b"LAST 1",
            b"UIDL 1 2",
            b"LIST 1 2",
            b"CAPA x",
        ] {
            assert_eq!(parse(bad), Err(ParseError::Syntax), "{:?}", bad);
        }
        assert_eq!(parse(b"STAT "), Ok(Command::Stat));
    }

    #[test]
    fn pass_takes_the_rest_verbatim() {
        assert_eq!(
            parse(b"PASS  secret pw "),
            Ok(Command::Pass(b" secret pw "))
        );
        assert_eq!(parse(b"PASS"), Err(ParseError::Syntax));
        assert_eq!(parse(b"PASS "), Err(ParseError::Syntax));
    }

    #[test]
    fn unknown_and_malformed_lines() {
        assert_eq!(parse(b""), Err(ParseError::Unknown));
        assert_eq!(parse(b" STAT"), Err(ParseError::Unknown));
        assert_eq!(parse(b"XTND"), Err(ParseError::Unknown));
        assert_eq!(parse(b"STATS"), Err(ParseError::Unknown));
        assert_eq!(parse(b"STAT\0"), Err(ParseError::Syntax));
        assert_eq!(parse(b"USER"), Err(ParseError::Syntax));
        assert_eq!(parse(b"USER a b"), Err(ParseError::Syntax));
        assert_eq!(parse(b"USER bob"), Ok(Command::User(b"bob")));
        assert_eq!(
            parse(b"auth plain AGJvYgBwdw=="),
            Ok(Command::Auth(Some(b"plain"), Some(b"AGJvYgBwdw==")))
        );
        assert_eq!(parse(b"AUTH"), Ok(Command::Auth(None, None)));
        assert_eq!(parse(b"AUTH PLAIN x y"), Err(ParseError::Syntax));
    }
}
