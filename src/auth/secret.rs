//! Byte buffers that may hold passwords or hashes, wiped before they are freed.
//!
//! Wiping is best effort in safe Rust: the bytes are overwritten with zeros and
//! the buffer is passed through [`std::hint::black_box`] so the stores are not
//! optimised away. Buffers are allocated once at their final capacity and never
//! grown, so no reallocation leaves an unwiped copy behind.

use std::hint::black_box;

/// Overwrites `buf` with zeros.
pub(crate) fn wipe(buf: &mut [u8]) {
    buf.fill(0);
    black_box(buf);
}

/// Overwrites the whole allocation of `v` (also past its length) and empties it.
pub(crate) fn wipe_vec(v: &mut Vec<u8>) {
    v.fill(0);
    let cap = v.capacity();
    v.resize(cap, 0);
    black_box(v.as_mut_slice());
    v.clear();
}

/// A `Vec<u8>` with a fixed capacity, wiped on drop.
pub(crate) struct Secret(Vec<u8>, usize);

impl Secret {
    /// An empty buffer that holds up to `cap` bytes without reallocating.
    pub(crate) fn with_capacity(cap: usize) -> Self {
        let v = Vec::with_capacity(cap);
        let allocated = v.capacity();
        Secret(v, allocated)
    }

    /// A copy of `bytes`.
    pub(crate) fn copy_of(bytes: &[u8]) -> Self {
        let mut s = Secret::with_capacity(bytes.len());
        s.0.extend_from_slice(bytes);
        s
    }

    /// The bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The underlying vector, for appending. Callers must stay within the
    /// capacity given at construction (checked in debug builds on drop).
    pub(crate) fn vec(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        debug_assert_eq!(self.0.capacity(), self.1, "Secret grew past its capacity");
        wipe_vec(&mut self.0);
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wipe_vec_zeroes_and_empties() {
        let mut v = Vec::with_capacity(16);
        v.extend_from_slice(b"hunter2");
        wipe_vec(&mut v);
        assert!(v.is_empty());
        assert_eq!(v.capacity(), 16);
        v.resize(16, 1);
        let mut w = v.clone();
        wipe(&mut w);
        assert!(w.iter().all(|&b| b == 0));
    }

    #[test]
    fn debug_hides_contents() {
        let s = Secret::copy_of(b"$6$salt$hash");
        assert_eq!(format!("{s:?}"), "Secret(12 bytes)");
    }
}
