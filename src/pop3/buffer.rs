//! Fixed-size byte buffers shared by the session and its driver: client input
//! waiting to be parsed, and reply bytes waiting to be written.
//!
//! Both are allocated once per connection at a fixed capacity; the driver
//! may lend a connection's reply buffer a larger capacity for a while
//! ([`Buffer::resize`]; see `server/conn.rs`).

use std::fmt::{self, Write as _};

/// A fixed-capacity FIFO of bytes: the producer appends at the end, the
/// consumer removes from the front. Space freed at the front is reclaimed by
/// moving the live bytes down when the tail runs out.
#[derive(Debug)]
pub struct Buffer {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Buffer {
    /// A buffer holding at most `capacity` bytes.
    pub fn new(capacity: usize) -> Buffer {
        Buffer {
            buf: vec![0; capacity].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// Bytes the buffer can hold.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Gives the buffer a new capacity, keeping the waiting bytes (which must
    /// fit in it).
    pub fn resize(&mut self, capacity: usize) {
        let len = self.end - self.start;
        assert!(len <= capacity, "resize below the waiting bytes");
        let mut buf = vec![0; capacity].into_boxed_slice();
        buf[..len].copy_from_slice(self.data());
        self.buf = buf;
        self.start = 0;
        self.end = len;
    }

    /// Bytes waiting to be consumed.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// True when nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Removes `n` bytes from the front.
    pub fn consume(&mut self, n: usize) {
        assert!(n <= self.end - self.start, "consume past end");
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Free space at the tail, after moving live bytes to the front if that helps.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    /// Bytes that could be appended (counting space reclaimable at the front).
    pub fn free(&self) -> usize {
        self.buf.len() - (self.end - self.start)
    }

    /// Marks `n` bytes of [`Buffer::spare`] as filled.
    pub fn commit(&mut self, n: usize) {
        assert!(self.end + n <= self.buf.len(), "commit past capacity");
        self.end += n;
    }

    /// Appends `bytes`; the caller has checked [`Buffer::free`].
    pub fn push(&mut self, bytes: &[u8]) {
        let spare = self.spare();
        assert!(bytes.len() <= spare.len(), "push past capacity");
        spare[..bytes.len()].copy_from_slice(bytes);
        self.commit(bytes.len());
    }

    /// Appends one formatted reply line followed by CRLF. The caller has
    /// checked that [`crate::config::REPLY_LINE_MAX`] bytes are free; a longer
    /// line is cut rather than overflowing.
    pub fn line(&mut self, args: fmt::Arguments<'_>) {
        let spare = self.spare();
        let room = spare.len().saturating_sub(2);
        let mut w = SliceWriter {
            buf: &mut spare[..room],
            len: 0,
        };
        let _ = w.write_fmt(args);
        let n = w.len;
        spare[n] = b'\r';
        spare[n + 1] = b'\n';
        self.commit(n + 2);
    }
}

/// `fmt::Write` into a byte slice, silently truncating.
struct SliceWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        if n < s.len() { Err(fmt::Error) } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_reclaims_front_space() {
        let mut b = Buffer::new(8);
        b.push(b"abcdef");
        b.consume(4);
        assert_eq!(b.data(), b"ef");
        assert_eq!(b.free(), 6);
        b.push(b"ghijkl");
        assert_eq!(b.data(), b"efghijkl");
        assert_eq!(b.free(), 0);
    }

    #[test]
    fn resize_keeps_the_waiting_bytes() {
        let mut b = Buffer::new(8);
        b.push(b"abcdefgh");
        b.consume(5);
        b.resize(32);
        assert_eq!((b.data(), b.free(), b.capacity()), (&b"fgh"[..], 29, 32));
        b.push(&[b'x'; 29]);
        b.consume(30);
        b.resize(4);
        assert_eq!((b.data(), b.free()), (&b"xx"[..], 2));
    }

    #[test]
    fn line_appends_crlf_and_truncates() {
        let mut b = Buffer::new(10);
        b.line(format_args!("+OK {}", 12));
        assert_eq!(b.data(), b"+OK 12\r\n");
        let mut small = Buffer::new(6);
        small.line(format_args!("+OK 123456"));
        assert_eq!(small.data(), b"+OK \r\n");
    }
}
