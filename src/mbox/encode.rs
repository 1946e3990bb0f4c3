//! The RETR/TOP encoder: stored message bytes in, POP3 multi-line data out.
//!
//! Pure and incremental (no I/O): the input may be cut anywhere, down to single
//! bytes, and the output buffer may be small; all state (a CR at the end of one
//! chunk, a line start at a chunk boundary, TOP's line count) is carried across
//! calls. Rules:
//! - an LF not preceded by CR becomes CR LF; a stored CR LF stays CR LF (never
//!   CR CR LF); a bare CR passes through unchanged;
//! - a `.` at the start of any line (header lines too) is doubled;
//! - TOP n sends every line up to and including the first empty line (`\n` or
//!   `\r\n`), then n more lines; the whole message if it has no empty line;
//! - [`Encoder::finish`] adds CR LF if the data did not end with a line end,
//!   then the `.` CR LF terminator.
//!
//! Without dot-stuffing, the octets produced before the terminator equal the
//! size the scanner computes for LIST/STAT.

use super::scan::find_byte;
use crate::sys::simd::{BLOCK, first_in_block};

/// Output room [`Encoder::encode_words`] needs for one step: a block of the
/// line, or a dot doubled, plus CR LF.
const WORD_ROOM: usize = BLOCK + 2;

/// Where the current line is, for TOP's empty-line test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineSoFar {
    /// Nothing yet.
    Nothing,
    /// Only a CR.
    Cr,
    /// Anything else.
    Text,
}

/// TOP's progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Top {
    /// RETR: everything.
    All,
    /// In the header block; then this many body lines.
    Headers(u64),
    /// This many body lines still to send (more than 0).
    Body(u64),
    /// Finished: nothing more is sent.
    Done,
}

/// Turns stored message bytes into POP3 multi-line data: LF becomes CRLF (a
/// stored CRLF stays CRLF), a leading `.` is doubled, TOP stops after the header
/// block plus `n` body lines.
#[derive(Clone, Debug)]
pub struct Encoder {
    top: Top,
    line: LineSoFar,
    /// The last byte passed on was CR.
    prev_cr: bool,
    /// Dots added by stuffing so far.
    stuffed: u64,
}

impl Encoder {
    /// Encoder for RETR (the whole message).
    pub fn retr() -> Encoder {
        Encoder::with(Top::All)
    }

    /// Encoder for TOP with `lines` body lines.
    pub fn top(lines: u64) -> Encoder {
        Encoder::with(Top::Headers(lines))
    }

    fn with(top: Top) -> Encoder {
        Encoder {
            top,
            line: LineSoFar::Nothing,
            prev_cr: false,
            stuffed: 0,
        }
    }

    /// Encodes from `input` into `out`; returns (bytes consumed, bytes written).
    ///
    /// Every input byte needs at most 2 output bytes, so this makes progress
    /// (consumes at least one byte of non-empty input) whenever `out.len() >= 2`;
    /// in particular whenever `out.len() >= 2 * input.len()` or `out.len() >= 4`.
    /// Once [`Encoder::done`] is true, all input is consumed and nothing written.
    pub fn encode(&mut self, input: &[u8], out: &mut [u8]) -> (usize, usize) {
        let (mut i, mut o) = if self.top == Top::All {
            self.encode_words(input, out)
        } else {
            (0, 0)
        };
        while i < input.len() {
            if self.top == Top::Done {
                return (input.len(), o);
            }
            let room = out.len() - o;
            let b = input[i];
            if self.line == LineSoFar::Nothing && b == b'.' {
                if room < 2 {
                    break;
                }
                self.stuff_dot(&mut out[o..o + 2]);
                o += 2;
                i += 1;
                continue;
            }
            if b == b'\n' {
                let need = if self.prev_cr { 1 } else { 2 };
                if room < need {
                    break;
                }
                if !self.prev_cr {
                    out[o] = b'\r';
                    o += 1;
                }
                out[o] = b'\n';
                o += 1;
                i += 1;
                let empty = self.line != LineSoFar::Text;
                self.end_of_line(empty);
                self.line = LineSoFar::Nothing;
                self.prev_cr = false;
                continue;
            }
            // A run of line bytes up to (not including) the next LF.
            let end = find_byte(&input[i..], b'\n').map_or(input.len(), |p| i + p);
            let n = (end - i).min(room);
            if n == 0 {
                break;
            }
            out[o..o + n].copy_from_slice(&input[i..i + n]);
            self.line = match self.line {
                LineSoFar::Nothing if n == 1 && b == b'\r' => LineSoFar::Cr,
                _ => LineSoFar::Text,
            };
            self.prev_cr = input[i + n - 1] == b'\r';
            i += n;
            o += n;
        }
        (i, o)
    }

    /// Writes a line's leading dot doubled into `out` (two bytes).
    fn stuff_dot(&mut self, out: &mut [u8]) {
        out.copy_from_slice(b"..");
        self.stuffed += 1;
        self.line = LineSoFar::Text;
        self.prev_cr = false;
    }

    /// RETR's fast path, [`BLOCK`] bytes at a time: each block is copied
    /// whole, then its first LF (if any) ends the line there, and the next
    /// block starts after it (the bytes copied past the LF are written
    /// over). Stops while at least a block of input and [`WORD_ROOM`] bytes
    /// of output remain, leaving the rest to the byte loop; the state it
    /// leaves is the one the byte loop would leave.
    fn encode_words(&mut self, input: &[u8], out: &mut [u8]) -> (usize, usize) {
        let (mut i, mut o) = (0, 0);
        while input.len() - i >= BLOCK && out.len() - o >= WORD_ROOM {
            if self.line == LineSoFar::Nothing && input[i] == b'.' {
                self.stuff_dot(&mut out[o..o + 2]);
                o += 2;
                i += 1;
                continue;
            }
            let block: &[u8; BLOCK] = input[i..i + BLOCK].try_into().expect("a block");
            out[o..o + BLOCK].copy_from_slice(block);
            let Some(p) = first_in_block(block, b'\n') else {
                i += BLOCK;
                o += BLOCK;
                self.line = LineSoFar::Text;
                self.prev_cr = block[BLOCK - 1] == b'\r';
                continue;
            };
            let after_cr = if p > 0 {
                block[p - 1] == b'\r'
            } else {
                self.prev_cr
            };
            o += p;
            if !after_cr {
                out[o] = b'\r';
                o += 1;
            }
            out[o] = b'\n';
            o += 1;
            i += p + 1;
            self.line = LineSoFar::Nothing;
            self.prev_cr = false;
        }
        (i, o)
    }

    /// Counts a finished line for TOP.
    fn end_of_line(&mut self, empty: bool) {
        self.top = match self.top {
            Top::Headers(0) if empty => Top::Done,
            Top::Headers(n) if empty => Top::Body(n),
            Top::Body(1) => Top::Done,
            Top::Body(n) => Top::Body(n - 1),
            other => other,
        };
    }

    /// True when TOP has sent all it should; further input is not needed.
    pub fn done(&self) -> bool {
        self.top == Top::Done
    }

    /// Dots added by dot-stuffing so far (sent, but not counted in sizes).
    pub fn stuffed(&self) -> u64 {
        self.stuffed
    }

    /// Writes the end of the data: CRLF if the data did not end with a line end,
    /// then `.` CRLF. `out` must have room for 5 bytes. Returns bytes written;
    /// 0 (and nothing changed) if `out` is too small for what must be written.
    pub fn finish(&mut self, out: &mut [u8]) -> usize {
        let tail: &[u8] = if self.line == LineSoFar::Nothing || self.done() {
            b".\r\n"
        } else {
            b"\r\n.\r\n"
        };
        if out.len() < tail.len() {
            return 0;
        }
        out[..tail.len()].copy_from_slice(tail);
        self.line = LineSoFar::Nothing;
        self.prev_cr = false;
        self.top = Top::Done;
        tail.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes `data` fed in `chunk`-byte pieces into an output of `room` bytes
    /// at a time, then finishes.
    fn run(mut enc: Encoder, data: &[u8], chunk: usize, room: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0; room];
        for piece in data.chunks(chunk.max(1)) {
            let mut piece = piece;
            while !piece.is_empty() {
                let (used, wrote) = enc.encode(piece, &mut buf);
                assert!(used > 0, "no progress with {room} bytes of room");
                out.extend_from_slice(&buf[..wrote]);
                piece = &piece[used..];
            }
        }
        let mut end = [0; 5];
        let n = enc.finish(&mut end);
        out.extend_from_slice(&end[..n]);
        out
    }

    fn all_ways(make: impl Fn() -> Encoder, data: &[u8]) -> Vec<u8> {
        let whole = run(make(), data, data.len(), 2 * data.len() + 8);
        for (chunk, room) in [(1, 2), (1, 4), (2, 2), (3, 5), (7, 16), (64, 3)] {
            assert_eq!(
                run(make(), data, chunk, room),
                whole,
                "chunk {chunk}, room {room}"
            );
        }
        whole
    }

    fn retr(data: &[u8]) -> Vec<u8> {
        all_ways(Encoder::retr, data)
    }

    fn top(n: u64, data: &[u8]) -> Vec<u8> {
        all_ways(|| Encoder::top(n), data)
    }

    #[test]
    fn line_ends() {
        assert_eq!(retr(b"a\nb\n"), b"a\r\nb\r\n.\r\n");
        assert_eq!(retr(b"a\r\nb\r\n"), b"a\r\nb\r\n.\r\n");
        assert_eq!(retr(b"a\rb\r\r\n"), b"a\rb\r\r\n.\r\n");
        assert_eq!(retr(b"no newline"), b"no newline\r\n.\r\n");
        assert_eq!(retr(b"ends in cr\r"), b"ends in cr\r\r\n.\r\n");
        assert_eq!(retr(b""), b".\r\n");
        assert_eq!(retr(b"\0\xff\n"), b"\0\xff\r\n.\r\n");
    }

    #[test]
    fn dot_stuffing() {
        assert_eq!(
            retr(b".Hdr: x\n\n.dot line\n.\n..two\nx.y\n"),
            b"..Hdr: x\r\n\r\n..dot line\r\n..\r\n...two\r\nx.y\r\n.\r\n"
        );
        assert_eq!(retr(b"."), b"..\r\n.\r\n");
        assert_eq!(retr(b"\r.\n"), b"\r.\r\n.\r\n");
        assert_eq!(retr(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
        let mut e = Encoder::retr();
        let mut out = [0; 32];
        e.encode(b".a\n.\n", &mut out);
        assert_eq!(e.stuffed(), 2);
    }

    #[test]
    fn top_lines() {
        let m = b"Subject: x\n\nl1\n\nl3\n";
        assert_eq!(top(0, m), b"Subject: x\r\n\r\n.\r\n");
        assert_eq!(top(1, m), b"Subject: x\r\n\r\nl1\r\n.\r\n");
        assert_eq!(top(2, m), b"Subject: x\r\n\r\nl1\r\n\r\n.\r\n");
        assert_eq!(top(99, m), b"Subject: x\r\n\r\nl1\r\n\r\nl3\r\n.\r\n");
        // No empty line: the whole message.
        assert_eq!(
            top(0, b"Subject: x\nX-A: y\n"),
            b"Subject: x\r\nX-A: y\r\n.\r\n"
        );
        // CRLF empty line ends the headers; a line of one CR or spaces does not.
        let m = b"S: x\r\n\r\nb1\r\nb2\r\n";
        assert_eq!(top(1, m), b"S: x\r\n\r\nb1\r\n.\r\n");
        let m = b"S: x\n\r\r\n \nb1\n\nb2\n";
        assert_eq!(top(1, m), b"S: x\r\n\r\r\n \r\nb1\r\n\r\nb2\r\n.\r\n");
        // A last body line without LF still gets its CRLF.
        assert_eq!(top(5, b"S: x\n\nb"), b"S: x\r\n\r\nb\r\n.\r\n");
    }

    #[test]
    fn done_consumes_the_rest() {
        let mut e = Encoder::top(0);
        let mut out = [0; 64];
        let (used, wrote) = e.encode(b"A: b\n\nbody\n", &mut out);
        assert_eq!((used, wrote), (11, 8));
        assert!(e.done());
        assert_eq!(e.encode(b"more", &mut out), (4, 0));
    }

    /// RETR's rules, byte by byte, as plainly as they can be written.
    fn retr_model(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut line_start = true;
        let mut prev = 0u8;
        for &b in data {
            if line_start && b == b'.' {
                out.push(b'.');
            }
            if b == b'\n' && prev != b'\r' {
                out.push(b'\r');
            }
            out.push(b);
            line_start = b == b'\n';
            prev = b;
        }
        if !data.is_empty() && !line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        out
    }

    /// Random messages of long and short lines, LF and CR LF, bare CRs and
    /// dots at line starts: the word-at-a-time path and the byte loop, fed
    /// in any pieces into any room, give what the model gives.
    #[test]
    fn random_retr_matches_the_model() {
        let mut x = 7u64;
        let parts: [&[u8]; 10] = [
            b"\n",
            b"\r\n",
            b"\r",
            b".",
            b"..x\n",
            b"Subject: a header line\n",
            b"a body line of some length, longer than a word\r\n",
            b"abcdefg",
            b"\n.\n",
            b"\r\r\n",
        ];
        for round in 0..300 {
            let mut m = Vec::new();
            for _ in 0..(round % 80) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                m.extend_from_slice(parts[(x % parts.len() as u64) as usize]);
            }
            let want = retr_model(&m);
            for (chunk, room) in [
                (m.len().max(1), 2 * m.len() + 8),
                (8, 16),
                (9, 10),
                (64, 11),
                (17, 64),
                (33, 34),
                (100, 35),
                (4096, 4096),
            ] {
                assert_eq!(
                    run(Encoder::retr(), &m, chunk, room),
                    want,
                    "round {round}, chunk {chunk}, room {room}: {:?}",
                    String::from_utf8_lossy(&m)
                );
            }
        }
    }

    #[test]
    fn small_output() {
        let mut e = Encoder::retr();
        let mut out = [0; 1];
        assert_eq!(e.encode(b"\n", &mut out), (0, 0));
        assert_eq!(e.encode(b"ab", &mut out), (1, 1));
        let mut end = [0; 4];
        assert_eq!(e.finish(&mut end), 0);
        let mut end = [0; 5];
        assert_eq!(e.finish(&mut end), 5);
        assert_eq!(&end, b"\r\n.\r\n");
    }
}
