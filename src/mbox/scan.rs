//! The streaming mbox scanner: a state machine fed file bytes in chunks of any
//! size (down to one byte) that finds message boundaries with popa3d's rule and
//! computes each message's data length, POP3 size and digests.
//!
//! Memory does not depend on line or message length: a line is seen as
//! fragments, and only its first [`HEAD`] bytes are kept until the line is
//! classified (From_ separator, empty line, selected header, other data).
//! The scanner does no I/O; whoever drives it (a loop in `Mailbox::open` today,
//! bounded event-loop slices later) reads the file and calls [`Scanner::feed`]
//! and finally [`Scanner::finish`].
//!
//! Splitting rule (popa3d, §3.2 of the reference notes): a line starting with
//! the five bytes `From ` is a separator when it is at file offset 0, directly
//! after an empty line, or directly after another From_ line (which then leaves
//! a message without data, refused). Unlike popa3d, a `\r\n` line counts as
//! empty too, so CRLF mailboxes split. The single empty line before a separator
//! (or at end of file) is not message data, unless it is the line that ends the
//! message's header block (a message without body keeps it).
//!
//! The scanner can also start at any message's From_ line ([`Scanner::at`]):
//! re-checking one message, or continuing an index whose end is known. At any
//! point [`Scanner::tail`] says what appended bytes would have to look like to
//! start a new message without changing the last one. For the first message
//! of a file it notices UW IMAP / Pine's folder-internal-data pseudo-message
//! (its `Subject:` is [`PSEUDO_SUBJECT`]).

use std::fmt;

use md5::{Digest, Md5};

use super::index::Entry;
use super::{md5lanes, uidl};
use crate::sys::simd::{BLOCK, mask_in_block};

/// Bytes of a line kept before it is classified: enough for the longest header
/// name the UIDL digest looks at (`X-Delivery-ID:`) and for `From `.
pub const HEAD: usize = 14;

/// The subject of the pseudo-message UW IMAP (c-client) and Pine keep first
/// in an mbox for their own bookkeeping; it is not mail and is hidden.
pub const PSEUDO_SUBJECT: &[u8] = b"DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA";

/// What appended bytes must look like, given where the scan stands, for the
/// last message to stay as it is and a new message to start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tail {
    /// Nothing scanned yet: the next byte must start a From_ line.
    #[default]
    Start,
    /// The last line was an empty line (a separator or the end of a header
    /// block): a From_ line must follow at once.
    Empty,
    /// The last line was a complete body line: an empty line (`\n` or
    /// `\r\n`) and then a From_ line must follow.
    Body,
    /// Anything appended changes the last message (it ends inside a line, or
    /// in its header block).
    Other,
}

/// What the bytes appended after a scanned end are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Appended {
    /// A new message starts this many bytes (0, 1 or 2) into them.
    Starts(usize),
    /// Too few bytes to tell, but what is there can still become a new
    /// message (a writer may be in the middle of appending it).
    Undecided,
    /// They continue the last message instead.
    Continues,
}

impl Tail {
    /// Judges `appended`, the bytes after the scanned end (at most
    /// [`APPEND_PROBE`] of them are looked at).
    pub fn judge(self, appended: &[u8]) -> Appended {
        let lead: &[u8] = match self {
            Tail::Start | Tail::Empty => b"",
            Tail::Body if appended.first() == Some(&b'\r') => b"\r\n",
            Tail::Body => b"\n",
            Tail::Other => return Appended::Continues,
        };
        let want = [lead, b"From "].concat();
        let n = appended.len().min(want.len());
        if appended[..n] != want[..n] {
            Appended::Continues
        } else if n < want.len() {
            Appended::Undecided
        } else {
            Appended::Starts(lead.len())
        }
    }
}

/// Bytes after a scanned end that [`Tail::judge`] needs to decide.
pub const APPEND_PROBE: usize = 2 + 5;

/// Progress in recognising the pseudo-message's `Subject:` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pseudo {
    /// Not the first message of the file, or already decided against.
    No,
    /// In the first message's headers, no `Subject:` seen yet.
    Armed,
    /// After `Subject:`, skipping blanks.
    Blank,
    /// This many bytes of [`PSEUDO_SUBJECT`] matched.
    Text(u8),
    /// The whole subject matched; trailing blanks and the line end may follow.
    After,
    /// ... and a CR.
    Cr,
    /// The first message is the pseudo-message.
    Yes,
}

/// Position of the first `needle` in `hay`, eight bytes at a time (the classic
/// "has a zero byte" word trick; no unchecked code, no dependency).
pub fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO.wrapping_mul(u64::from(needle));
    let mut words = hay.chunks_exact(8);
    let mut at = 0;
    for w in &mut words {
        let x = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]) ^ pattern;
        let found = x.wrapping_sub(LO) & !x & HI;
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|p| at + p)
}

/// The UIDL digests (MD5 of the selected header lines) of the messages a
/// feed ends, computed together, [`md5lanes::LANES`] at a time: one MD5 at
/// a time leaves the CPU waiting on each step's result, and was a fifth of
/// a scan.
///
/// Each message's lines gather in a slot of their own, with word-sized moves
/// (each `Md5::update` with a short piece would cost a call to `memcpy`,
/// which the musl libc of the static build makes slow for short copies). A
/// message whose lines outgrow its slot (rare: many `Delivered-To:` lines)
/// streams them through an MD5 of its own instead. Ended messages wait here,
/// their entries without digest, until [`UidBatch::BATCH`] are waiting or
/// the feed ends.
struct UidBatch {
    /// The waiting messages' slots, then the current message's (at index
    /// `waiting.len()`): its bytes, and room for MD5's padding.
    slots: Box<[[u8; UidBatch::SLOT]]>,
    /// Bytes in the current message's slot.
    fill: usize,
    /// The current message's MD5 so far, once its bytes outgrew the slot.
    streamed: Option<Md5>,
    /// Ended messages not yet given to the sink, with the bytes in their
    /// slot (`None`: the digest is in the entry already).
    waiting: Vec<(Entry, Option<usize>)>,
}

impl fmt::Debug for UidBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UidBatch")
            .field("fill", &self.fill)
            .field("waiting", &self.waiting.len())
            .finish()
    }
}

impl UidBatch {
    /// Messages that wait at most.
    const BATCH: usize = 16;
    /// A slot's bytes before it streams.
    const STAGE: usize = 512;
    const SLOT: usize = md5lanes::padded_len(UidBatch::STAGE);

    fn new() -> UidBatch {
        UidBatch {
            slots: vec![[0; UidBatch::SLOT]; UidBatch::BATCH].into_boxed_slice(),
            fill: 0,
            streamed: None,
            waiting: Vec::with_capacity(UidBatch::BATCH),
        }
    }

    /// Adds bytes to the current message's digest.
    fn update(&mut self, mut bytes: &[u8]) {
        let slot = &mut self.slots[self.waiting.len()];
        while !bytes.is_empty() {
            if self.fill == Self::STAGE {
                self.streamed
                    .get_or_insert_with(Md5::new)
                    .update(&slot[..Self::STAGE]);
                self.fill = 0;
            }
            let n = (Self::STAGE - self.fill).min(bytes.len());
            let (now, rest) = bytes.split_at(n);
            copy_short(&mut slot[self.fill..self.fill + n], now);
            self.fill += n;
            bytes = rest;
        }
    }

    /// Ends the current message: `entry` waits for its digest. True if
    /// [`UidBatch::BATCH`] messages now wait.
    fn end(&mut self, mut entry: Entry) -> bool {
        let fill = std::mem::take(&mut self.fill);
        let bytes = match self.streamed.take() {
            Some(mut md5) => {
                md5.update(&self.slots[self.waiting.len()][..fill]);
                entry.digest.copy_from_slice(&md5.finalize()[..8]);
                None
            }
            None => Some(fill),
        };
        self.waiting.push((entry, bytes));
        self.waiting.len() == Self::BATCH
    }

    /// Fills in the waiting entries' digests and hands them out, in order.
    fn drain(&mut self) -> impl Iterator<Item = Entry> + '_ {
        let mut inputs: [&[u8]; UidBatch::BATCH] = [&[]; UidBatch::BATCH];
        let mut which = [0; UidBatch::BATCH];
        let mut n = 0;
        for (k, (slot, (_, bytes))) in self.slots.iter_mut().zip(&self.waiting).enumerate() {
            if let Some(len) = *bytes {
                inputs[n] = md5lanes::pad(slot, len);
                which[n] = k;
                n += 1;
            }
        }
        let mut digests = [[0; 16]; UidBatch::BATCH];
        md5lanes::digest_padded(&inputs[..n], &mut digests);
        for (k, digest) in which[..n].iter().zip(&digests) {
            self.waiting[*k].0.digest.copy_from_slice(&digest[..8]);
        }
        // The current message's bytes so far move to the first slot (when
        // all slots wait, no message has begun).
        if self.fill > 0 && !self.waiting.is_empty() {
            let (first, current) = self.slots.split_at_mut(self.waiting.len());
            first[0][..self.fill].copy_from_slice(&current[0][..self.fill]);
        }
        self.waiting.drain(..).map(|(entry, _)| entry)
    }
}

/// Copies `src` into `dst` (the same length) eight bytes at a time and the
/// last few one by one, in moves the compiler keeps inline (see
/// [`UidBatch`]).
fn copy_short(dst: &mut [u8], src: &[u8]) {
    debug_assert_eq!(dst.len(), src.len());
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (d, s) in (&mut d).zip(&mut s) {
        let w = u64::from_ne_bytes(s.try_into().expect("8 bytes"));
        d.copy_from_slice(&w.to_ne_bytes());
    }
    let (d, s) = (d.into_remainder(), s.remainder());
    for i in 0..7 {
        if i < s.len() {
            d[i] = s[i];
        }
    }
}

/// A fast streaming 64-bit hash of message data (for telling messages
/// apart and noticing edits; not cryptographic; see [`Sink::whole_sum`]
/// for which bytes an entry's sum covers). The same bytes give the
/// same value however they are cut into pieces: word `k` of the data (8
/// bytes, little-endian) goes into lane `k % 4`, four independent chains
/// that keep the multiplier busy. A partial word is kept as an integer, so
/// small updates (header lines) copy no memory.
#[derive(Clone, Debug)]
pub struct DataSum {
    h: [u64; 4],
    /// Lane of the next whole word.
    lane: usize,
    /// Bytes of the next word seen so far, and how many.
    part: u64,
    parts: u32,
    len: u64,
}

impl Default for DataSum {
    fn default() -> Self {
        DataSum {
            h: [1, 2, 3, 4],
            lane: 0,
            part: 0,
            parts: 0,
            len: 0,
        }
    }
}

impl DataSum {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;

    fn mix(h: u64, w: u64) -> u64 {
        (h ^ w).wrapping_mul(Self::K).rotate_left(29)
    }

    fn word(b: &[u8]) -> u64 {
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    fn absorb(&mut self, w: u64) {
        self.h[self.lane] = Self::mix(self.h[self.lane], w);
        self.lane = (self.lane + 1) & 3;
    }

    /// Adds bytes.
    pub fn update(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        while self.parts > 0 {
            let Some((&b, rest)) = bytes.split_first() else {
                return;
            };
            self.part |= u64::from(b) << (8 * self.parts);
            self.parts += 1;
            bytes = rest;
            if self.parts == 8 {
                let w = self.part;
                self.part = 0;
                self.parts = 0;
                self.absorb(w);
            }
        }
        // Words up to the next block boundary, then whole blocks of four.
        while self.lane != 0 && bytes.len() >= 8 {
            self.absorb(Self::word(bytes));
            bytes = &bytes[8..];
        }
        if self.lane == 0 {
            let mut blocks = bytes.chunks_exact(32);
            let mut h = self.h;
            for b in &mut blocks {
                h[0] = Self::mix(h[0], Self::word(&b[0..8]));
                h[1] = Self::mix(h[1], Self::word(&b[8..16]));
                h[2] = Self::mix(h[2], Self::word(&b[16..24]));
                h[3] = Self::mix(h[3], Self::word(&b[24..32]));
            }
            self.h = h;
            bytes = blocks.remainder();
        }
        while bytes.len() >= 8 {
            self.absorb(Self::word(bytes));
            bytes = &bytes[8..];
        }
        for &b in bytes {
            self.part |= u64::from(b) << (8 * self.parts);
            self.parts += 1;
        }
    }

    /// The four bytes of the hash an index entry keeps.
    pub fn entry_bytes(&self) -> [u8; 4] {
        let mut four = [0; 4];
        four.copy_from_slice(&self.finish().to_be_bytes()[..4]);
        four
    }

    /// The hash (murmur3's finaliser over the lanes, the tail and the length).
    pub fn finish(&self) -> u64 {
        let mut x = Self::mix(self.len, self.part);
        for lane in self.h {
            x = Self::mix(x, lane);
        }
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }
}

/// Receives each message's entry, in file order, by the time the
/// [`Scanner::feed`] (or [`Scanner::finish`]) that found its end returns.
pub trait Sink {
    /// Whether the next message's [`Entry::data_sum`] is the sum of all its
    /// data, or only of its header lines (the lines before the empty line
    /// that ends them). The sum of all data is what a UIDL that needs one
    /// uses; hashing it is a sixth of a cold scan's time, and most messages'
    /// UIDLs do not need it, so an index scan takes the header lines' sum
    /// (which still tells in-place header edits apart) and the messages
    /// that need more are hashed afterwards (`sums.rs`). `ahead`: messages
    /// the scanner has ended but not given to the sink yet (the next one
    /// is that many places after the last one given).
    fn whole_sum(&self, ahead: usize) -> bool {
        let _ = ahead;
        true
    }

    /// Called once per message, in file order.
    fn message(&mut self, entry: &Entry) -> Result<(), ScanError>;
}

/// Why scanning stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanFault {
    /// The file does not begin with a `From ` line.
    NoFromAtStart,
    /// A message has no data (two From_ lines in a row, or a From_ line at the end).
    EmptyMessage,
    /// A From_ line longer than 4 GiB.
    FromLineTooLong,
    /// More messages than the limit allows.
    TooManyMessages(usize),
    /// A message whose POP3 size exceeds its stored size by 4 GiB or more.
    MessageTooLarge,
    /// A re-scan found a message different from the indexed one.
    Mismatch,
}

/// A scan failure at a file offset (the start of the line or message concerned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanError {
    /// File offset where the problem is.
    pub offset: u64,
    /// What is wrong.
    pub fault: ScanFault,
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.fault {
            ScanFault::NoFromAtStart => write!(
                f,
                "not an mbox file: no \"From \" line at offset {}",
                self.offset
            ),
            ScanFault::EmptyMessage => {
                write!(f, "message at offset {} has no data", self.offset)
            }
            ScanFault::FromLineTooLong => {
                write!(f, "From_ line at offset {} is too long", self.offset)
            }
            ScanFault::TooManyMessages(max) => write!(
                f,
                "more than {} messages (limit reached at offset {})",
                max, self.offset
            ),
            ScanFault::MessageTooLarge => {
                write!(f, "message at offset {} is too large", self.offset)
            }
            ScanFault::Mismatch => {
                write!(f, "message at offset {} changed", self.offset)
            }
        }
    }
}

/// Bytes at the start of `chunk` (which starts a line that follows a
/// non-empty line) that are complete lines, none of them empty: up to the
/// start of the first empty line, or the end of the last complete line.
/// Also how many of those lines end in LF and in CR LF.
fn body_run(chunk: &[u8]) -> (usize, usize, usize) {
    let starts_empty = |s: usize| match chunk.get(s) {
        Some(b'\n') => Some(true),
        Some(b'\r') => chunk.get(s + 1).map(|&b| b == b'\n'),
        Some(_) => Some(false),
        None => None,
    };
    if starts_empty(0) != Some(false) {
        return (0, 0, 0);
    }
    let (mut from, mut done, mut lfs, mut crlfs) = (0, 0, 0, 0);
    // 32 bytes at a time, each LF in them checked in turn; a block is taken
    // only with the two bytes after it there to look at.
    while from + BLOCK + 2 <= chunk.len() {
        let block: &[u8; BLOCK] = chunk[from..from + BLOCK].try_into().expect("a block");
        let mut lf_bits = mask_in_block(block, b'\n');
        while lf_bits != 0 {
            let lf = from + lf_bits.trailing_zeros() as usize;
            lf_bits &= lf_bits - 1;
            lfs += 1;
            crlfs += usize::from(chunk[lf - 1] == b'\r');
            done = lf + 1;
            let next = chunk[done];
            if next == b'\n' || (next == b'\r' && chunk[done + 1] == b'\n') {
                return (done, lfs, crlfs);
            }
        }
        from += BLOCK;
    }
    // The last bytes a line at a time.
    while let Some(p) = find_byte(&chunk[from..], b'\n') {
        let lf = from + p;
        lfs += 1;
        // A line's first byte is never its LF here: lines are not empty.
        crlfs += usize::from(chunk[lf - 1] == b'\r');
        done = lf + 1;
        match starts_empty(done) {
            Some(false) => from = done,
            // An empty line, or a line whose kind the chunk cannot tell.
            _ => break,
        }
    }
    (done, lfs, crlfs)
}

/// What kind of line the scanner is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Line {
    /// Fewer than [`HEAD`] bytes seen and no LF yet: not classified.
    Undecided,
    /// A From_ separator line: not message data.
    From,
    /// An empty line (complete when classified): held back as `pending`.
    Empty,
    /// Any other line: message data.
    Data,
}

/// An empty line whose fate (data or separator) depends on the next line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    None,
    Lf,
    CrLf,
}

/// The streaming scanner. Feed it the file from offset 0 in order.
///
/// After an error the scanner is spent: feed it nothing more.
#[derive(Debug)]
pub struct Scanner<S> {
    sink: S,
    /// File offset of the next byte fed.
    pos: u64,
    /// Offset of the current line.
    line_start: u64,
    head: [u8; HEAD],
    head_len: usize,
    line: Line,
    /// A message has started (the first From_ line was seen).
    in_msg: bool,
    /// The previous line allows a From_ line to split (empty or From_ line).
    split_ok: bool,
    pending: Pending,
    /// The pending empty line is the one ending the header block.
    pending_ends_headers: bool,
    // The current message.
    raw_start: u64,
    from_len: u64,
    data_len: u64,
    size: u64,
    /// The last data byte was CR (a following LF is not widened to CRLF).
    prev_cr: bool,
    /// The last data byte was LF.
    ends_lf: bool,
    in_headers: bool,
    /// Data bytes of the header lines, once the header block has ended.
    header_len: u64,
    /// `data_sum` is of all data (else of the header lines only).
    whole_sum: bool,
    /// The current header line is part of the UIDL digest.
    selected: bool,
    seen_received: bool,
    uid_md5: UidBatch,
    data_sum: DataSum,
    /// Data bytes of the current message already in `data_sum`. The rest
    /// (all in the chunk being fed) go in at once when the chunk or the
    /// message ends: one update per message and chunk, not two per line.
    summed: u64,
    /// File offset of the chunk being fed (`u64::MAX` outside `feed`).
    chunk_base: u64,
    pseudo: Pseudo,
}

impl<S: Sink> Scanner<S> {
    /// A scanner at file offset 0 delivering entries to `sink`.
    pub fn new(sink: S) -> Scanner<S> {
        Scanner::at(sink, 0)
    }

    /// A scanner at file offset `pos`, where a message (its From_ line) must
    /// start, as at the start of a file.
    pub fn at(sink: S, pos: u64) -> Scanner<S> {
        Scanner {
            sink,
            pos,
            line_start: pos,
            head: [0; HEAD],
            head_len: 0,
            line: Line::Undecided,
            in_msg: false,
            split_ok: false,
            pending: Pending::None,
            pending_ends_headers: false,
            raw_start: 0,
            from_len: 0,
            data_len: 0,
            size: 0,
            prev_cr: false,
            ends_lf: false,
            in_headers: false,
            header_len: 0,
            whole_sum: true,
            selected: false,
            seen_received: false,
            uid_md5: UidBatch::new(),
            data_sum: DataSum::default(),
            summed: 0,
            chunk_base: u64::MAX,
            pseudo: Pseudo::No,
        }
    }

    /// True if the first message of the file (scanned from offset 0) is the
    /// folder-internal-data pseudo-message.
    pub fn first_is_pseudo(&self) -> bool {
        self.pseudo == Pseudo::Yes
    }

    /// What bytes appended right after [`Scanner::pos`] must look like to
    /// start a new message (see [`Tail`]).
    pub fn tail(&self) -> Tail {
        if !self.in_msg {
            return if self.line == Line::Undecided && self.head_len == 0 {
                Tail::Start
            } else {
                Tail::Other
            };
        }
        if self.line != Line::Undecided || self.head_len != 0 {
            return Tail::Other;
        }
        if self.pending != Pending::None {
            Tail::Empty
        } else if self.in_headers {
            Tail::Other
        } else {
            Tail::Body
        }
    }

    /// Bytes fed so far (the file offset of the next byte).
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// The sink, for inspection while scanning.
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// The sink, to adjust while scanning.
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// Scans the next bytes of the file.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), ScanError> {
        self.chunk_base = self.pos;
        let fed = self.feed_lines(chunk, chunk);
        if fed.is_ok() {
            self.sum_data(chunk);
        }
        self.chunk_base = u64::MAX;
        // The messages before a scan error come first: their sink may
        // refuse one of them.
        self.deliver().and(fed)
    }

    /// The body of [`Scanner::feed`]: `chunk` is what is left of `whole`.
    fn feed_lines(&mut self, whole: &[u8], mut chunk: &[u8]) -> Result<(), ScanError> {
        while !chunk.is_empty() {
            if self.line == Line::Undecided
                && self.head_len == 0
                && self.in_msg
                && !self.in_headers
                && self.pending == Pending::None
                && !self.split_ok
            {
                // In a body, after a non-empty line: everything up to the
                // next empty line is plain data (no From_ line can split).
                let (n, lfs, crlfs) = body_run(chunk);
                if n > 0 {
                    self.consume_run(&chunk[..n], lfs, crlfs);
                    self.pos += n as u64;
                    self.line_start = self.pos;
                    chunk = &chunk[n..];
                    continue;
                }
            }
            if self.line == Line::Undecided
                && self.head_len == 0
                && self.in_msg
                && self.in_headers
                && !self.split_ok
                && self.pending == Pending::None
                && matches!(self.pseudo, Pseudo::No | Pseudo::Yes)
            {
                // A header line wholly in this chunk, not the empty line:
                // classified and counted at once (what `decide`, `stream`
                // and `end_line` would do with it in pieces).
                if let Some(p) = find_byte(chunk, b'\n') {
                    let line = &chunk[..=p];
                    if line != b"\n" && line != b"\r\n" {
                        let head = &line[..line.len().min(HEAD)];
                        self.selected = uidl::select(head, self.selected, &mut self.seen_received);
                        self.consume(line);
                        self.pos += line.len() as u64;
                        self.line_start = self.pos;
                        chunk = &chunk[line.len()..];
                        continue;
                    }
                }
            }
            if self.line == Line::Undecided && self.head_len == 0 && chunk.len() >= HEAD {
                // The common case, with fixed-size copies only.
                let mut head = [0u8; HEAD];
                head.copy_from_slice(&chunk[..HEAD]);
                let n = head
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(HEAD, |p| p + 1);
                self.head = head;
                self.head_len = n;
                self.pos += n as u64;
                chunk = &chunk[n..];
                let complete = n < HEAD || head[HEAD - 1] == b'\n';
                self.decide(whole)?;
                if complete {
                    self.end_line();
                }
                continue;
            }
            if self.line == Line::Undecided {
                let take = chunk.len().min(HEAD - self.head_len);
                let n = match chunk[..take].iter().position(|&b| b == b'\n') {
                    Some(p) => p + 1,
                    None => take,
                };
                self.head[self.head_len..self.head_len + n].copy_from_slice(&chunk[..n]);
                self.head_len += n;
                self.pos += n as u64;
                chunk = &chunk[n..];
                let complete = self.head[self.head_len - 1] == b'\n';
                if complete || self.head_len == HEAD {
                    self.decide(whole)?;
                    if complete {
                        self.end_line();
                    }
                }
            } else {
                let (n, complete) = match find_byte(chunk, b'\n') {
                    Some(p) => (p + 1, true),
                    None => (chunk.len(), false),
                };
                self.stream(&chunk[..n])?;
                self.pos += n as u64;
                chunk = &chunk[n..];
                if complete {
                    self.end_line();
                }
            }
        }
        Ok(())
    }

    /// Ends the scan at end of file and returns the sink.
    pub fn finish(mut self) -> Result<S, ScanError> {
        let ended = self.end_file();
        self.deliver().and(ended)?;
        Ok(self.sink)
    }

    fn end_file(&mut self) -> Result<(), ScanError> {
        if self.line == Line::Undecided && self.head_len > 0 {
            // A last line without LF, shorter than HEAD.
            self.decide(&[])?;
        }
        if self.in_msg {
            self.end_message(&[])?;
        }
        Ok(())
    }

    /// Classifies the current line from its first bytes and accounts for
    /// them (`whole`: the chunk being fed, empty outside `feed`).
    fn decide(&mut self, whole: &[u8]) -> Result<(), ScanError> {
        let head_buf = self.head;
        let head = &head_buf[..self.head_len];
        let from = head.starts_with(b"From ");
        if !self.in_msg {
            if !from {
                return Err(ScanError {
                    offset: self.line_start,
                    fault: ScanFault::NoFromAtStart,
                });
            }
            self.start_message(head.len());
            return Ok(());
        }
        if self.split_ok && from {
            self.end_message(whole)?;
            self.start_message(head.len());
            return Ok(());
        }
        self.commit_pending();
        if head == b"\n" || head == b"\r\n" {
            self.pending = if head.len() == 1 {
                Pending::Lf
            } else {
                Pending::CrLf
            };
            self.pending_ends_headers = self.in_headers;
            if self.in_headers {
                self.header_len = self.data_len;
            }
            self.in_headers = false;
            if self.pseudo == Pseudo::Armed {
                self.pseudo = Pseudo::No;
            }
            self.selected = false;
            self.split_ok = true;
            self.line = Line::Empty;
            return Ok(());
        }
        if self.in_headers {
            self.selected = uidl::select(head, self.selected, &mut self.seen_received);
            if self.pseudo == Pseudo::Armed
                && head.len() >= 8
                && head[..8].eq_ignore_ascii_case(b"subject:")
            {
                self.pseudo = Pseudo::Blank;
                self.pseudo_feed(&head[8..]);
            }
        }
        self.split_ok = false;
        self.line = Line::Data;
        self.consume(head);
        Ok(())
    }

    /// Matches bytes of the first message's `Subject:` line against the
    /// pseudo-message's subject.
    fn pseudo_feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.pseudo = match (self.pseudo, b) {
                (Pseudo::Blank, b' ' | b'\t') => Pseudo::Blank,
                (Pseudo::Blank, _) | (Pseudo::Text(_), _) => {
                    let i = match self.pseudo {
                        Pseudo::Text(i) => usize::from(i),
                        _ => 0,
                    };
                    if PSEUDO_SUBJECT[i] != b {
                        Pseudo::No
                    } else if i + 1 == PSEUDO_SUBJECT.len() {
                        Pseudo::After
                    } else {
                        Pseudo::Text((i + 1) as u8)
                    }
                }
                (Pseudo::After, b' ' | b'\t') => Pseudo::After,
                (Pseudo::After, b'\r') => Pseudo::Cr,
                (Pseudo::After | Pseudo::Cr, b'\n') => Pseudo::Yes,
                (Pseudo::Yes, _) => Pseudo::Yes,
                _ => Pseudo::No,
            };
            if matches!(self.pseudo, Pseudo::No | Pseudo::Yes) {
                return;
            }
        }
    }

    /// Accounts for a fragment of a classified line (at most one LF, at its end).
    fn stream(&mut self, bytes: &[u8]) -> Result<(), ScanError> {
        match self.line {
            Line::From => {
                self.from_len += bytes.len() as u64;
                if self.from_len > u64::from(u32::MAX) {
                    return Err(ScanError {
                        offset: self.raw_start,
                        fault: ScanFault::FromLineTooLong,
                    });
                }
            }
            Line::Data => {
                if matches!(
                    self.pseudo,
                    Pseudo::Blank | Pseudo::Text(_) | Pseudo::After | Pseudo::Cr
                ) {
                    self.pseudo_feed(bytes);
                }
                self.consume(bytes)
            }
            // Empty lines are complete when classified; undecided bytes go to `head`.
            Line::Empty | Line::Undecided => debug_assert!(false, "stream in {:?}", self.line),
        }
        Ok(())
    }

    fn end_line(&mut self) {
        if matches!(
            self.pseudo,
            Pseudo::Blank | Pseudo::Text(_) | Pseudo::After | Pseudo::Cr
        ) {
            // The Subject: line ended without matching.
            self.pseudo = Pseudo::No;
        }
        if self.line == Line::From {
            // A From_ line directly after a From_ line is a separator too, so
            // that a message without data is found (and refused).
            self.split_ok = true;
        }
        self.line = Line::Undecided;
        self.head_len = 0;
        self.line_start = self.pos;
    }

    /// Adds whole non-empty data lines (see [`body_run`]), `lfs` of them,
    /// `crlfs` of which end in CR LF.
    fn consume_run(&mut self, bytes: &[u8], lfs: usize, crlfs: usize) {
        debug_assert!(bytes.ends_with(b"\n") && !self.selected);
        self.data_in_sum(bytes);
        self.data_len += bytes.len() as u64;
        self.size += (bytes.len() + lfs - crlfs) as u64;
        self.prev_cr = false;
        self.ends_lf = true;
    }

    /// Adds message data bytes: at most one LF, and only as the last byte.
    fn consume(&mut self, bytes: &[u8]) {
        let Some(&last) = bytes.last() else {
            return;
        };
        debug_assert!(!bytes[..bytes.len() - 1].contains(&b'\n'));
        self.data_in_sum(bytes);
        if self.selected {
            self.uid_md5.update(bytes);
        }
        let mut size = bytes.len() as u64;
        if last == b'\n' {
            let after_cr = match bytes.len() {
                1 => self.prev_cr,
                n => bytes[n - 2] == b'\r',
            };
            if !after_cr {
                size += 1; // LF is sent as CRLF
            }
        }
        self.data_len += bytes.len() as u64;
        self.size += size;
        self.prev_cr = last == b'\r';
        self.ends_lf = last == b'\n';
    }

    /// Data bytes about to be counted: those in the chunk being fed wait for
    /// [`Scanner::sum_data`]; others (a line begun in an earlier chunk, whose
    /// first bytes were kept in `head`) go into the sum now, if it takes them
    /// (all data, or a header line).
    fn data_in_sum(&mut self, bytes: &[u8]) {
        if !self.whole_sum && !self.in_headers {
            return;
        }
        let at = self.raw_start + self.from_len + self.data_len;
        if at < self.chunk_base {
            debug_assert_eq!(self.summed, self.data_len);
            self.data_sum.update(bytes);
            self.summed += bytes.len() as u64;
        }
    }

    /// Adds the current message's data bytes not yet in its sum (all of
    /// them, or up to the end of its header lines), which all lie in
    /// `whole`, the chunk being fed.
    fn sum_data(&mut self, whole: &[u8]) {
        let end = if self.whole_sum || self.in_headers {
            self.data_len
        } else {
            self.header_len
        };
        if !self.in_msg || self.summed == end {
            return;
        }
        let from = self.raw_start + self.from_len + self.summed - self.chunk_base;
        let to = from + (end - self.summed);
        self.data_sum.update(&whole[from as usize..to as usize]);
        self.summed = end;
    }

    fn commit_pending(&mut self) {
        match self.pending {
            Pending::None => {}
            Pending::Lf => self.consume(b"\n"),
            Pending::CrLf => self.consume(b"\r\n"),
        }
        self.pending = Pending::None;
    }

    /// Starts a message at the current line, a From_ line of which `head_len`
    /// bytes were seen.
    fn start_message(&mut self, head_len: usize) {
        self.in_msg = true;
        self.raw_start = self.line_start;
        self.from_len = head_len as u64;
        self.data_len = 0;
        self.summed = 0;
        self.size = 0;
        self.prev_cr = false;
        self.ends_lf = false;
        self.in_headers = true;
        self.header_len = 0;
        self.whole_sum = self.sink.whole_sum(self.uid_md5.waiting.len());
        self.selected = false;
        self.seen_received = false;
        self.pending = Pending::None;
        self.split_ok = false;
        self.line = Line::From;
        self.pseudo = if self.line_start == 0 {
            Pseudo::Armed
        } else if self.pseudo == Pseudo::Yes {
            Pseudo::Yes
        } else {
            Pseudo::No
        };
    }

    /// Ends the current message (at a separator or at end of file; `whole`
    /// as for [`Scanner::decide`]).
    fn end_message(&mut self, whole: &[u8]) -> Result<(), ScanError> {
        if self.pending != Pending::None {
            if self.pending_ends_headers {
                // No body: the header block's empty line stays (popa3d).
                self.commit_pending();
            } else {
                self.pending = Pending::None;
            }
        }
        if self.data_len == 0 {
            return Err(ScanError {
                offset: self.raw_start,
                fault: ScanFault::EmptyMessage,
            });
        }
        if self.pseudo == Pseudo::Armed {
            // The first message ended inside its header block.
            self.pseudo = Pseudo::No;
        }
        let mut size = self.size;
        if !self.ends_lf {
            size += 2; // the encoder ends the last line with CRLF
        }
        let Ok(size_extra) = u32::try_from(size - self.data_len) else {
            return Err(ScanError {
                offset: self.raw_start,
                fault: ScanFault::MessageTooLarge,
            });
        };
        self.sum_data(whole);
        let data_sum = std::mem::take(&mut self.data_sum).entry_bytes();
        let entry = Entry {
            raw_start: self.raw_start,
            data_len: self.data_len,
            size_extra,
            // Checked in `stream`; a From_ head is at most HEAD bytes.
            from_len: self.from_len as u32,
            // Filled in by `uid_md5`.
            digest: [0; 8],
            data_sum,
            uid_k: 0,
        };
        if self.uid_md5.end(entry) {
            self.deliver()?;
        }
        Ok(())
    }

    /// Gives the messages that wait for their digest to the sink.
    fn deliver(&mut self) -> Result<(), ScanError> {
        for entry in self.uid_md5.drain() {
            self.sink.message(&entry)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects entries without limits.
    #[derive(Default)]
    struct Collect(Vec<Entry>);

    impl Sink for Collect {
        fn message(&mut self, entry: &Entry) -> Result<(), ScanError> {
            self.0.push(*entry);
            Ok(())
        }
    }

    fn scan_chunked(data: &[u8], chunk: usize) -> Result<Vec<Entry>, ScanError> {
        let mut s = Scanner::new(Collect::default());
        for c in data.chunks(chunk.max(1)) {
            s.feed(c)?;
        }
        Ok(s.finish()?.0)
    }

    /// Scans whole, in 1-byte chunks and in a few odd sizes; all must agree,
    /// and each entry's data sum must be that of its data bytes.
    fn scan(data: &[u8]) -> Result<Vec<Entry>, ScanError> {
        scan_in_pieces(data, &[1, 2, 3, 5, 7, 13, 14, 15, 64])
    }

    /// [`scan`] with the given piece sizes.
    fn scan_in_pieces(data: &[u8], sizes: &[usize]) -> Result<Vec<Entry>, ScanError> {
        let whole = scan_chunked(data, data.len());
        for &n in sizes {
            assert_eq!(scan_chunked(data, n), whole, "chunk size {n}");
        }
        for e in whole.iter().flatten() {
            assert_eq!(e.data_sum, sum_of(data, e), "{e:?}");
        }
        whole
    }

    /// The data sum an entry should carry, from the file's bytes.
    fn sum_of(data: &[u8], e: &Entry) -> [u8; 4] {
        let mut sum = DataSum::default();
        let start = e.data_start() as usize;
        sum.update(&data[start..start + e.data_len as usize]);
        sum.entry_bytes()
    }

    /// The data bytes of each message.
    fn datas(data: &[u8]) -> Vec<Vec<u8>> {
        scan(data)
            .unwrap()
            .iter()
            .map(|e| {
                let s = e.data_start() as usize;
                data[s..s + e.data_len as usize].to_vec()
            })
            .collect()
    }

    fn fault(data: &[u8]) -> ScanError {
        scan(data).unwrap_err()
    }

    const F: &str = "From x@y Mon Jan  1 00:00:00 2024\n";

    fn mbox(parts: &[&str]) -> Vec<u8> {
        parts.concat().into_bytes()
    }

    #[test]
    fn popa3d_stat_example() {
        let m = mbox(&[
            F,
            "Subject: one\n\nbody1\n\n",
            F,
            "Subject: two\n\nbody2\n\n",
            F,
            "Subject: three\n\nbody3\n\n",
        ]);
        let e = scan(&m).unwrap();
        let sizes: Vec<u64> = e.iter().map(|e| e.size()).collect();
        assert_eq!(sizes, [23, 23, 25]);
        assert_eq!(e[0].raw_start, 0);
        assert_eq!(e[1].raw_start, (F.len() + 21) as u64);
        assert_eq!(e[0].from_len as usize, F.len());
        assert_eq!(
            datas(&m),
            [
                b"Subject: one\n\nbody1\n".to_vec(),
                b"Subject: two\n\nbody2\n".to_vec(),
                b"Subject: three\n\nbody3\n".to_vec()
            ]
        );
    }

    #[test]
    fn non_separators() {
        for line in [
            "From\tx\n",
            "Fromx\n",
            "FROM x\n",
            "from x\n",
            "From: x\n",
            ">From x\n",
        ] {
            let m = mbox(&[F, "A: b\n\nbody\n\n", line, "more\n"]);
            assert_eq!(scan(&m).unwrap().len(), 1, "{line:?}");
        }
        // After a non-empty line, or after a line of spaces.
        let m = mbox(&[F, "A: b\n\nbody\nFrom x\n"]);
        assert_eq!(scan(&m).unwrap().len(), 1);
        let m = mbox(&[F, "A: b\n\nbody\n \nFrom x\n"]);
        assert_eq!(scan(&m).unwrap().len(), 1);
        // Content-Length is ignored: a From_ after an empty line always splits.
        let m = mbox(&[F, "Content-Length: 500\n\nbody\n\nFrom x\nA: b\n\nc\n"]);
        assert_eq!(scan(&m).unwrap().len(), 2);
    }

    #[test]
    fn crlf_mailbox_splits() {
        let m = mbox(&[
            F,
            "Subject: x\r\n\r\nbody\r\n\r\n",
            F,
            "Subject: y\r\n\r\nbody2\r\n\r\n",
        ]);
        assert_eq!(
            datas(&m),
            [
                b"Subject: x\r\n\r\nbody\r\n".to_vec(),
                b"Subject: y\r\n\r\nbody2\r\n".to_vec()
            ]
        );
        let e = scan(&m).unwrap();
        assert_eq!(e[0].size(), 20);
    }

    #[test]
    fn refusals() {
        assert_eq!(fault(b"\nFrom x\nA: b\n").fault, ScanFault::NoFromAtStart);
        assert_eq!(fault(b"\nFrom x\nA: b\n").offset, 0);
        assert_eq!(fault(b"Subject: x\n").fault, ScanFault::NoFromAtStart);
        assert_eq!(fault(b"Fro").fault, ScanFault::NoFromAtStart);
        // Two From_ lines in a row: the first message has no data.
        let e = fault(&mbox(&[F, F, "A: b\n"]));
        assert_eq!(
            e,
            ScanError {
                offset: 0,
                fault: ScanFault::EmptyMessage
            }
        );
        // The last message is only a From_ line (with or without LF).
        let m = mbox(&[F, "A: b\n\nc\n\n", F]);
        let e = fault(&m);
        assert_eq!(e.fault, ScanFault::EmptyMessage);
        assert_eq!(e.offset, (F.len() + 9) as u64);
        let e = fault(&m[..m.len() - 1]);
        assert_eq!(e.fault, ScanFault::EmptyMessage);
        assert_eq!(fault(b"From x").fault, ScanFault::EmptyMessage);
    }

    #[test]
    fn empty_input_has_no_messages() {
        assert_eq!(scan(b"").unwrap(), []);
    }

    #[test]
    fn trailing_empty_lines() {
        // No body: the header block's empty line is kept (size 14).
        let m = mbox(&[F, "Subject: x\n\n", F, "A: b\n\nc\n"]);
        assert_eq!(datas(&m)[0], b"Subject: x\n\n");
        assert_eq!(scan(&m).unwrap()[0].size(), 14);
        // With a body the separator line is dropped.
        let m = mbox(&[F, "Subject: x\n\n\n", F, "A: b\n\nc\n"]);
        assert_eq!(datas(&m)[0], b"Subject: x\n\n");
        // At end of file one final empty line is dropped only with a body.
        let m = mbox(&[F, "Subject: x\n\nb\n\n\n"]);
        assert_eq!(datas(&m)[0], b"Subject: x\n\nb\n\n");
        let m = mbox(&[F, "Subject: x\n\n"]);
        assert_eq!(datas(&m)[0], b"Subject: x\n\n");
        let m = mbox(&[F, "Subject: x\n"]);
        assert_eq!(datas(&m)[0], b"Subject: x\n");
        // Only an empty line: it is the header end, kept.
        let m = mbox(&[F, "\n", F, "A: b\n"]);
        assert_eq!(datas(&m), [b"\n".to_vec(), b"A: b\n".to_vec()]);
        // CRLF empty lines follow the same rules.
        let m = mbox(&[F, "S: x\r\n\r\n", F, "S: y\r\n\r\nb\r\n\r\n"]);
        assert_eq!(
            datas(&m),
            [b"S: x\r\n\r\n".to_vec(), b"S: y\r\n\r\nb\r\n".to_vec()]
        );
    }

    #[test]
    fn no_final_newline() {
        let m = mbox(&[F, "Subject: three\n\nlast line without newline"]);
        let e = scan(&m).unwrap();
        assert_eq!(e[0].data_len, 41);
        // 16 + 2 + 25 + 2 (CRLF the encoder adds): what RETR sends.
        assert_eq!(e[0].size(), 45);
        // A final bare CR is data too.
        let m = mbox(&[F, "A: b\n\nc\r"]);
        assert_eq!(scan(&m).unwrap()[0].size(), 6 + 2 + 2 + 2);
    }

    #[test]
    fn sizes_count_bare_lf_twice() {
        let m = mbox(&[F, "A: b\r\n\nx\ry\r\n.\n"]);
        let e = scan(&m).unwrap();
        // "A: b\r\n"=6, "\n"=2, "x\ry\r\n"=5, ".\n"=3
        assert_eq!(e[0].size(), 16);
    }

    #[test]
    fn long_lines_and_nuls() {
        let mut m = mbox(&[F, "A: b\n\n"]);
        m.extend(std::iter::repeat_n(b'a', 70_001));
        m.extend(b"\0\0\n\n");
        m.extend(F.as_bytes());
        m.extend(std::iter::repeat_n(b'\0', 100));
        let e = scan_chunked(&m, 4096).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].data_len, 6 + 70_001 + 3);
        assert_eq!(e[0].size(), 8 + 70_001 + 4);
        assert_eq!(e[1].data_len, 100);
        assert_eq!(e[1].size(), 102);
        assert_eq!(scan_chunked(&m, 1).unwrap(), e);
    }

    /// Messages of every size around the slot's, in pieces of every size:
    /// each waiting entry gets the MD5 of its bytes, in order, whether it
    /// fit its slot or streamed.
    #[test]
    fn uid_batch_digests_are_md5_of_the_pieces_fed() {
        let data: Vec<u8> = (0..3000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let mut b = UidBatch::new();
        let mut want = Vec::new();
        let mut got = Vec::new();
        let lens = [0, 1, 55, 56, 64, 511, 512, 513, 1024, 1025, 3000, 200, 7];
        for (m, &len) in lens
            .iter()
            .cycle()
            .enumerate()
            .take(3 * UidBatch::BATCH + 5)
        {
            let bytes = &data[..len];
            let mut from = 0;
            for piece in [0usize, 1, 7, 8, 9, 63, 64, 65, 511, 512, 513]
                .iter()
                .cycle()
            {
                let to = (from + piece + m % 3).min(len);
                b.update(&bytes[from..to]);
                if m % 4 == 1 && from < len / 2 && to >= len / 2 {
                    // A feed ends inside this message.
                    got.extend(b.drain().map(|e| (e.raw_start, e.digest)));
                }
                from = to;
                if from == len {
                    break;
                }
            }
            let mut digest = [0; 8];
            digest.copy_from_slice(&Md5::digest(bytes)[..8]);
            want.push(digest);
            let entry = Entry {
                raw_start: m as u64,
                data_len: 1,
                size_extra: 0,
                from_len: 5,
                digest: [0; 8],
                data_sum: [0; 4],
                uid_k: 0,
            };
            if b.end(entry) || m % 5 == 0 {
                got.extend(b.drain().map(|e| (e.raw_start, e.digest)));
            }
        }
        got.extend(b.drain().map(|e| (e.raw_start, e.digest)));
        let want: Vec<(u64, [u8; 8])> = (0u64..).zip(want).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn find_byte_and_data_sum() {
        let mut x = 12345u64;
        let mut bytes = Vec::new();
        for _ in 0..3000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            bytes.push(b"ab\n\rc"[(x % 5) as usize]);
        }
        for start in 0..40 {
            for end in (start..bytes.len()).step_by(97) {
                let hay = &bytes[start..end];
                assert_eq!(find_byte(hay, b'\n'), hay.iter().position(|&b| b == b'\n'));
                assert_eq!(find_byte(hay, b'z'), None);
            }
        }
        let mut whole = DataSum::default();
        whole.update(&bytes);
        for piece in [1, 3, 7, 8, 9, 64, 1000] {
            let mut cut = DataSum::default();
            for c in bytes.chunks(piece) {
                cut.update(c);
            }
            assert_eq!(cut.finish(), whole.finish(), "pieces of {piece}");
        }
        let mut other = DataSum::default();
        other.update(&bytes[1..]);
        assert_ne!(other.finish(), whole.finish());
        let (mut a, mut b) = (DataSum::default(), DataSum::default());
        a.update(b"x");
        b.update(b"x\0");
        assert_ne!(a.finish(), b.finish());
    }

    /// What `body_run` must answer, a byte at a time.
    fn body_run_model(chunk: &[u8]) -> (usize, usize, usize) {
        let empty_at = |s: usize| match chunk.get(s) {
            Some(b'\n') => Some(true),
            Some(b'\r') => chunk.get(s + 1).map(|&b| b == b'\n'),
            Some(_) => Some(false),
            None => None,
        };
        if empty_at(0) != Some(false) {
            return (0, 0, 0);
        }
        let (mut done, mut lfs, mut crlfs) = (0, 0, 0);
        for k in 0..chunk.len() {
            if chunk[k] == b'\n' {
                lfs += 1;
                crlfs += usize::from(chunk[k - 1] == b'\r');
                done = k + 1;
                if empty_at(k + 1) != Some(false) {
                    break;
                }
            }
        }
        (done, lfs, crlfs)
    }

    /// The block-at-a-time body scan against the model, on lines of every
    /// length with LF, CR LF, bare CR and empty lines, from every start.
    #[test]
    fn body_run_matches_its_model() {
        let mut x = 4242u64;
        for round in 0..300 {
            let mut data = Vec::new();
            while data.len() < 40 + round * 3 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let len = (x % 90) as usize;
                data.extend(std::iter::repeat_n(b'a' + (x % 26) as u8, len));
                data.extend_from_slice(match (x >> 8) % 7 {
                    0 => b"\r\n",
                    1 => b"\r",
                    2 => b"\n\n",
                    3 => b"\n\r\n",
                    4 => b"\n\rx",
                    _ => b"\n",
                });
            }
            for start in 0..data.len().min(70) {
                let chunk = &data[start..];
                assert_eq!(
                    body_run(chunk),
                    body_run_model(chunk),
                    "round {round}, start {start}"
                );
            }
        }
    }

    /// Random bytes rich in line ends, empty lines and From_ lines: every way
    /// of cutting them gives the same entries (the body fast path included).
    #[test]
    fn random_input_scans_the_same_in_any_pieces() {
        let mut x = 99u64;
        let parts: [&[u8]; 14] = [
            b"\n",
            b"\r\n",
            b"From x\n",
            b"A: b\n",
            b"\r",
            b"text",
            b".\n",
            b"From ",
            b"\n\n",
            // Headers that go into the UIDL digest, continued or not.
            b"Received: by x\n",
            b"Date: today\r\n",
            b" more\n",
            b"\tmore\n",
            b"Message-ID: <a@b>\n",
        ];
        for round in 0..200 {
            let mut m = b"From a\n".to_vec();
            for _ in 0..(round % 60) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                m.extend_from_slice(parts[(x % parts.len() as u64) as usize]);
            }
            eprintln!("round {round}");
            let _ = scan_in_pieces(&m, &[1, 2, 3, 5, 8, 13, 64]);
        }
    }

    /// Every entry's digest is MD5 of its selected header lines as a plain
    /// line-by-line reading finds them, whatever the number of messages a
    /// feed ends (none to hundreds), however the feeds cut the messages, and
    /// whether a message's selected lines fit their slot or stream (far over
    /// 512 bytes of `Delivered-To:` lines).
    #[test]
    fn digests_are_md5_of_the_selected_lines_in_any_pieces() {
        let mut x = 0x1234_5678_9abc_def1u64;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let names: [&[u8]; 8] = [
            b"Received: ",
            b"Date: ",
            b"Message-ID: ",
            b"Delivered-To: ",
            b"X-Delivery-ID: ",
            b"Subject: ",
            b" ",
            b"\t",
        ];
        for round in 0..300 {
            let nl: &[u8] = if round % 4 == 0 { b"\r\n" } else { b"\n" };
            let mut m = Vec::new();
            for _ in 0..next(70) {
                m.extend_from_slice(b"From a Mon Jan  1 00:00:00 2024");
                m.extend_from_slice(nl);
                let lines = if next(6) == 0 { 5 + next(60) } else { next(12) };
                for _ in 0..lines {
                    m.extend_from_slice(names[next(names.len() as u64) as usize]);
                    let len = [next(4), next(64), next(600)][next(3) as usize];
                    m.extend((0..len).map(|j| b'a' + (j % 26) as u8));
                    m.extend_from_slice(nl);
                }
                m.extend_from_slice(nl);
                m.extend_from_slice(b"body");
                m.extend_from_slice(nl);
                m.extend_from_slice(nl);
            }
            let cuts: Vec<usize> = (0..1 + next(20))
                .map(|_| 1 + [next(3), next(700), next(5000), 1 << 20][next(4) as usize] as usize)
                .collect();
            let mut s = Scanner::new(Collect::default());
            let (mut at, mut k) = (0, 0);
            while at < m.len() {
                let to = (at + cuts[k % cuts.len()]).min(m.len());
                s.feed(&m[at..to]).unwrap();
                (at, k) = (to, k + 1);
            }
            for e in s.finish().unwrap().0 {
                let start = e.data_start() as usize;
                let mut want = Md5::new();
                let (mut selected, mut seen) = (false, false);
                for line in m[start..start + e.data_len as usize].split_inclusive(|&b| b == b'\n') {
                    if line == b"\n" || line == b"\r\n" {
                        break;
                    }
                    selected = uidl::select(&line[..line.len().min(HEAD)], selected, &mut seen);
                    if selected {
                        want.update(line);
                    }
                }
                assert_eq!(e.digest[..], want.finalize()[..8], "round {round}, {e:?}");
            }
        }
    }

    #[test]
    fn long_from_line() {
        let mut m = b"From ".to_vec();
        m.extend(std::iter::repeat_n(b'x', 100_000));
        m.extend(b"\nA: b\n");
        let e = scan_chunked(&m, 1000).unwrap();
        assert_eq!(e[0].from_len, 100_006);
        assert_eq!(e[0].data_len, 5);
    }
}
