//! The only module with `unsafe` code: thin, safe wrappers around libc calls that
//! std does not offer (file-system identity, privilege drops, OFD locks, process
//! control). Every `unsafe` block carries a comment saying why it is sound.

pub mod clock;
pub mod dotlock;
pub mod lock;
pub mod net;
pub mod process;
pub mod reserve;
pub mod signal;
pub mod simd;
pub mod statx;
pub mod writeback;
