//! The yescrypt key derivation function (and classic scrypt, which is
//! yescrypt's flavor 0), written for pop3d from the yescrypt specification and
//! its reference description, for speed: the `yescrypt` crate (a direct port
//! of the reference code) verified Debian's default `$y$j9T` hash in about
//! three times libxcrypt's time. pop3d's `src/auth/yescrypt_mcf.rs` and
//! `scrypt_mcf.rs` parse the `$y$`/`$7$` strings and call [`derive`]; the
//! tests are there too (libxcrypt vectors, and a comparison with the
//! `yescrypt` crate over many parameter sets).
//!
//! Differences from a literal transcription, none of them visible in results:
//! a 64-byte block is eight 64-bit lanes, kept in yescrypt's "shuffled" word
//! order (word i of a block is Salsa20 word 5i mod 16, as in the reference
//! code) for the whole of SMix, so pwxform reads its lanes directly and only
//! Salsa20 maps words; the three pwxform S-boxes are separate boxed arrays
//! whose indices are masked to their size, and their rotation swaps pointers.
//!
//! Supported: flavors 0 (classic scrypt), 1 (write-once-read-many) and the
//! read-write flavor libxcrypt uses (47: 6 pwxform rounds, 4 gather lanes of
//! 2 simple lanes, 8-bit S-box indices); any N, r, p, t the callers' limits
//! allow; no ROM and no cost upgrades (g = 0). The `$y$` and `$7$` string
//! formats are in `yescrypt_mcf` and `scrypt_mcf`.

#![forbid(unsafe_code)]

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = hmac::Hmac<Sha256>;

/// Overwrites `buf` with zeros (best effort, as pop3d's `secret::wipe`).
fn wipe(buf: &mut [u8]) {
    buf.fill(0);
    std::hint::black_box(buf);
}

/// A 64-byte block: eight little-endian 64-bit lanes, words in shuffled order.
type Block = [u64; 8];

/// An S-box: 256 entries of two 64-bit lanes (4 KiB).
type Sbox = [[u64; 2]; 256];

/// Which computation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// Classic scrypt.
    Classic,
    /// Write-once-read-many: scrypt's mixing with yescrypt's pre- and
    /// post-processing.
    Worm,
    /// Read-write with pwxform (libxcrypt's `$y$`).
    Rw,
}

/// The parameters of one derivation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    pub flavor: Flavor,
    /// N, a power of 2 above 1.
    pub n: u64,
    pub r: u32,
    pub p: u32,
    pub t: u32,
}

/// Parameters that yescrypt refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadParams;

/// pwxform rounds.
const ROUNDS: usize = 6;
/// Mask of an S-box index, in bytes (before dividing by the 16-byte entry).
const SMASK: u64 = 0xff0;
/// Blocks of S-box material generated per SMix (3 S-boxes of 4 KiB).
const SBOX_BLOCKS: usize = 3 * 64;

/// Word `i` (shuffled order) of a block.
#[inline(always)]
fn word(b: &Block, i: usize) -> u32 {
    (b[i / 2] >> (32 * (i % 2))) as u32
}

/// XORs `src` into `dst`.
#[inline(always)]
fn xor(dst: &mut Block, src: &Block) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d ^= s;
    }
}

/// XORs a run of blocks into another.
#[inline(always)]
fn xor_all(dst: &mut [Block], src: &[Block]) {
    for (d, s) in dst.iter_mut().zip(src) {
        xor(d, s);
    }
}

/// Salsa20 with `double_rounds` double rounds, on a block in shuffled order.
fn salsa20(b: &mut Block, double_rounds: usize) {
    let mut w = [0u32; 16];
    for i in 0..16 {
        w[i * 5 % 16] = word(b, i);
    }
    let mut x = w;
    macro_rules! quarter {
        ($a:expr, $b:expr, $c:expr, $d:expr) => {
            x[$b] ^= x[$a].wrapping_add(x[$d]).rotate_left(7);
            x[$c] ^= x[$b].wrapping_add(x[$a]).rotate_left(9);
            x[$d] ^= x[$c].wrapping_add(x[$b]).rotate_left(13);
            x[$a] ^= x[$d].wrapping_add(x[$c]).rotate_left(18);
        };
    }
    for _ in 0..double_rounds {
        quarter!(0, 4, 8, 12);
        quarter!(5, 9, 13, 1);
        quarter!(10, 14, 2, 6);
        quarter!(15, 3, 7, 11);
        quarter!(0, 1, 2, 3);
        quarter!(5, 6, 7, 4);
        quarter!(10, 11, 8, 9);
        quarter!(15, 12, 13, 14);
    }
    for (wi, xi) in w.iter_mut().zip(x) {
        *wi = wi.wrapping_add(xi);
    }
    for (k, lane) in b.iter_mut().enumerate() {
        let lo = w[(2 * k) * 5 % 16];
        let hi = w[(2 * k + 1) * 5 % 16];
        *lane = u64::from(lo) | (u64::from(hi) << 32);
    }
}

/// The pwxform state of one SMix: three S-boxes and the write position.
struct Pwx {
    s0: Box<Sbox>,
    s1: Box<Sbox>,
    s2: Box<Sbox>,
    w: usize,
}

/// One pwxform round over the four gather lanes; with `WRITE`, the results
/// also go to S2 at the write position.
#[inline(always)]
fn pwx_round<const WRITE: bool>(x: &mut Block, s0: &Sbox, s1: &Sbox, s2: &mut Sbox, w: &mut usize) {
    for j in 0..4 {
        let x0 = x[2 * j];
        let p0 = s0[((x0 & SMASK) >> 4) as usize];
        let p1 = s1[(((x0 >> 32) & SMASK) >> 4) as usize];
        let mut lanes = [x[2 * j], x[2 * j + 1]];
        for (k, lane) in lanes.iter_mut().enumerate() {
            let v = (*lane >> 32).wrapping_mul(*lane & 0xffff_ffff);
            *lane = v.wrapping_add(p0[k]) ^ p1[k];
        }
        x[2 * j] = lanes[0];
        x[2 * j + 1] = lanes[1];
        if WRITE {
            s2[*w & 255] = lanes;
            *w += 1;
        }
    }
}

impl Pwx {
    /// S-boxes from 192 blocks of generated material: S2 the first 64
    /// blocks, S1 the next, S0 the last.
    fn new(material: &[Block]) -> Pwx {
        let sbox = |blocks: &[Block]| {
            let mut s = Box::new([[0u64; 2]; 256]);
            for (e, entry) in s.iter_mut().enumerate() {
                let b = &blocks[e / 4];
                *entry = [b[2 * (e % 4)], b[2 * (e % 4) + 1]];
            }
            s
        };
        Pwx {
            s2: sbox(&material[..64]),
            s1: sbox(&material[64..128]),
            s0: sbox(&material[128..192]),
            w: 0,
        }
    }

    /// pwxform on one block: six rounds, the middle four writing to S2.
    #[inline(always)]
    fn pwxform(&mut self, x: &mut Block) {
        let (s0, s1, s2) = (&*self.s0, &*self.s1, &mut *self.s2);
        let mut w = self.w;
        pwx_round::<false>(x, s0, s1, s2, &mut w);
        for _ in 0..ROUNDS - 2 {
            pwx_round::<true>(x, s0, s1, s2, &mut w);
        }
        pwx_round::<false>(x, s0, s1, s2, &mut w);
        self.w = w & 255;
        // (S0, S1, S2) <- (S2, S0, S1)
        std::mem::swap(&mut self.s0, &mut self.s2);
        std::mem::swap(&mut self.s1, &mut self.s2);
    }

    /// BlockMix with pwxform of `a` XOR `b` (when given) into `out`.
    fn mix_into(&mut self, a: &[Block], b: Option<&[Block]>, out: &mut [Block]) {
        let last = a.len() - 1;
        let input = |k: usize| {
            let mut v = a[k];
            if let Some(b) = b {
                xor(&mut v, &b[k]);
            }
            v
        };
        let mut x = input(last);
        for (k, o) in out.iter_mut().enumerate() {
            xor(&mut x, &input(k));
            self.pwxform(&mut x);
            *o = x;
        }
        salsa20(&mut out[last], 1);
    }

    /// BlockMix with pwxform of `x` XOR `v`, in place in `x`; with `write`,
    /// `v` is set to that XOR first (yescrypt's read-write step).
    fn mix_xor_in_place(&mut self, x: &mut [Block], v: &mut [Block], write: bool) {
        let last = x.len() - 1;
        let mut acc = x[last];
        xor(&mut acc, &v[last]);
        for (xk, vk) in x.iter_mut().zip(v.iter_mut()) {
            let mut t = *xk;
            xor(&mut t, vk);
            if write {
                *vk = t;
            }
            xor(&mut acc, &t);
            self.pwxform(&mut acc);
            *xk = acc;
        }
        salsa20(&mut x[last], 1);
    }
}

impl Drop for Pwx {
    fn drop(&mut self) {
        for s in [&mut self.s0, &mut self.s1, &mut self.s2] {
            s.fill([0; 2]);
            std::hint::black_box(&s);
        }
    }
}

/// scrypt's BlockMix with Salsa20/8 of `a` XOR `b` (when given) into `out`
/// (sub-block k goes to k/2, or r + k/2 when k is odd).
fn salsa8_mix_into(a: &[Block], b: Option<&[Block]>, out: &mut [Block]) {
    let r = a.len() / 2;
    let input = |k: usize| {
        let mut v = a[k];
        if let Some(b) = b {
            xor(&mut v, &b[k]);
        }
        v
    };
    let mut x = input(2 * r - 1);
    for k in 0..2 * r {
        xor(&mut x, &input(k));
        salsa20(&mut x, 4);
        out[k / 2 + (k % 2) * r] = x;
    }
}

/// BlockMix (pwxform or Salsa20/8) of `a` XOR `b` into `out`.
fn mix_into(pwx: &mut Option<&mut Pwx>, a: &[Block], b: Option<&[Block]>, out: &mut [Block]) {
    match pwx {
        Some(ctx) => ctx.mix_into(a, b, out),
        None => salsa8_mix_into(a, b, out),
    }
}

/// Integerify: the first and fourteenth words of the last block.
#[inline(always)]
fn integerify(x: &[Block]) -> u64 {
    let last = &x[x.len() - 1];
    (last[6] & 0xffff_ffff_0000_0000) | (last[0] & 0xffff_ffff)
}

/// The largest power of two not above `x` (`x` > 0).
fn prev_power_of_two(x: u64) -> u64 {
    1 << (63 - x.leading_zeros())
}

/// Natural-order words (as PBKDF2 produced them) to a shuffled block.
fn shuffle(words: &[u32; 16]) -> Block {
    let mut b = [0u64; 8];
    for (k, lane) in b.iter_mut().enumerate() {
        let lo = words[(2 * k) * 5 % 16];
        let hi = words[(2 * k + 1) * 5 % 16];
        *lane = u64::from(lo) | (u64::from(hi) << 32);
    }
    b
}

/// The inverse of [`shuffle`].
fn unshuffle(b: &Block) -> [u32; 16] {
    let mut words = [0u32; 16];
    for i in 0..16 {
        words[i * 5 % 16] = word(b, i);
    }
    words
}

/// Scratch space of one SMix: X and Y, 2r blocks each.
struct Scratch {
    x: Vec<Block>,
    y: Vec<Block>,
}

/// SMix1: fills `v` (n · 2r blocks) from `b` (2r natural-order blocks). Each
/// step mixes V_i (XOR V_j in the read-write flavor) straight into V_{i+1};
/// the last step's output is the new X.
fn smix1(
    b: &mut [[u32; 16]],
    n: u64,
    rw: bool,
    v: &mut [Block],
    scratch: &mut Scratch,
    pwx: &mut Option<&mut Pwx>,
) {
    let s = b.len();
    let n = n as usize;
    for (vb, bb) in v[..s].iter_mut().zip(b.iter()) {
        *vb = shuffle(bb);
    }
    for i in 0..n {
        let (done, rest) = v.split_at_mut((i + 1) * s);
        let current = &done[i * s..];
        let other = if rw && i > 1 {
            let top = prev_power_of_two(i as u64);
            let j = ((integerify(current) & (top - 1)) + (i as u64 - top)) as usize;
            Some(&done[j * s..(j + 1) * s])
        } else {
            None
        };
        let out = if i + 1 < n {
            &mut rest[..s]
        } else {
            &mut scratch.x[..s]
        };
        mix_into(pwx, current, other, out);
    }
    for (bb, xb) in b.iter_mut().zip(scratch.x.iter()) {
        *bb = unshuffle(xb);
    }
}

/// SMix2: `nloop` steps of reading (and with `write` updating) `v`.
fn smix2(
    b: &mut [[u32; 16]],
    n: u64,
    nloop: u64,
    write: bool,
    v: &mut [Block],
    scratch: &mut Scratch,
    pwx: &mut Option<&mut Pwx>,
) {
    let s = b.len();
    for (xb, bb) in scratch.x[..s].iter_mut().zip(b.iter()) {
        *xb = shuffle(bb);
    }
    for _ in 0..nloop {
        let j = (integerify(&scratch.x[..s]) & (n - 1)) as usize;
        let vj = &mut v[j * s..(j + 1) * s];
        match pwx {
            Some(ctx) => ctx.mix_xor_in_place(&mut scratch.x[..s], vj, write),
            None => {
                if write {
                    xor_all(&mut scratch.x[..s], vj);
                    vj.copy_from_slice(&scratch.x[..s]);
                    salsa8_mix_into(&scratch.x[..s], None, &mut scratch.y[..s]);
                } else {
                    salsa8_mix_into(&scratch.x[..s], Some(vj), &mut scratch.y[..s]);
                }
                std::mem::swap(&mut scratch.x, &mut scratch.y);
            }
        }
    }
    for (bb, xb) in b.iter_mut().zip(scratch.x.iter()) {
        *bb = unshuffle(xb);
    }
}

/// The little-endian bytes of natural-order words.
fn bytes_of(words: &[[u32; 16]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(words.len() * 64);
    for block in words {
        for w in block {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }
    out
}

/// SMix over all of B (p slices of 2r blocks) for the read-write flavor, or
/// over one slice (p = 1) for the others. `passwd` is updated as yescrypt
/// specifies for the read-write flavor.
#[allow(clippy::too_many_arguments)]
fn smix(
    b: &mut [[u32; 16]],
    r: usize,
    n: u64,
    p: u32,
    t: u32,
    flavor: Flavor,
    v: &mut [Block],
    scratch: &mut Scratch,
    passwd: &mut [u8; 32],
) {
    let s = 2 * r;
    let rw = flavor == Flavor::Rw;
    let p64 = u64::from(p);
    let mut nchunk = n / p64;
    let mut nloop_all = nchunk;
    if rw {
        if t <= 1 {
            if t != 0 {
                nloop_all *= 2;
            }
            nloop_all = nloop_all.div_ceil(3);
        } else {
            nloop_all *= u64::from(t) - 1;
        }
    } else if t != 0 {
        if t == 1 {
            nloop_all += nloop_all.div_ceil(2);
        }
        nloop_all *= u64::from(t);
    }
    let mut nloop_rw = if rw { nloop_all / p64 } else { 0 };
    nchunk &= !1;
    nloop_all = (nloop_all + 1) & !1;
    nloop_rw = (nloop_rw + 1) & !1;

    let mut contexts: Vec<Pwx> = Vec::with_capacity(if rw { p as usize } else { 0 });
    let mut vchunk = 0u64;
    for i in 0..p as usize {
        let np = if i + 1 < p as usize {
            nchunk
        } else {
            n - vchunk
        };
        let bi = &mut b[i * s..(i + 1) * s];
        let vp = &mut v[(vchunk as usize) * s..];
        if rw {
            // S-box material: SMix1 with r = 1 (over the first two blocks of
            // B_i) and N = 96, classic mixing.
            let mut material = vec![[0u64; 8]; SBOX_BLOCKS];
            smix1(
                &mut bi[..2],
                (SBOX_BLOCKS / 2) as u64,
                false,
                &mut material,
                scratch,
                &mut None,
            );
            contexts.push(Pwx::new(&material));
            for block in &mut material {
                block.fill(0);
            }
            std::hint::black_box(&material);
            if i == 0 {
                let mut key = [0u8; 64];
                for (chunk, w) in key.chunks_exact_mut(4).zip(bi[s - 1]) {
                    chunk.copy_from_slice(&w.to_le_bytes());
                }
                let mut mac = HmacSha256::new_from_slice(&key).expect("any key length");
                mac.update(passwd);
                let mut digest: [u8; 32] = mac.finalize().into_bytes().into();
                passwd.copy_from_slice(&digest);
                wipe(&mut digest);
                wipe(&mut key);
            }
        }
        let mut pwx = contexts.last_mut();
        smix1(bi, np, rw, vp, scratch, &mut pwx);
        smix2(
            bi,
            prev_power_of_two(np),
            nloop_rw,
            rw,
            vp,
            scratch,
            &mut pwx,
        );
        vchunk += nchunk;
    }
    for i in 0..p as usize {
        let mut pwx = contexts.get_mut(i);
        smix2(
            &mut b[i * s..(i + 1) * s],
            n,
            nloop_all - nloop_rw,
            false,
            v,
            scratch,
            &mut pwx,
        );
    }
}

/// HMAC-SHA256.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// PBKDF2-HMAC-SHA256 with one iteration, filling `out`.
fn pbkdf2_once(passwd: &[u8], salt: &[u8], out: &mut [u8]) {
    let keyed = HmacSha256::new_from_slice(passwd).expect("any key length");
    for (i, chunk) in out.chunks_mut(32).enumerate() {
        let mut mac = keyed.clone();
        mac.update(salt);
        mac.update(&(i as u32 + 1).to_be_bytes());
        let mut t: [u8; 32] = mac.finalize().into_bytes().into();
        chunk.copy_from_slice(&t[..chunk.len()]);
        wipe(&mut t);
    }
}

/// Checks the parameters as yescrypt does.
fn check(params: &Params) -> Result<(), BadParams> {
    let Params { flavor, n, r, p, t } = *params;
    let (r64, p64) = (u64::from(r), u64::from(p));
    let ok = n > 1
        && n.is_power_of_two()
        && r >= 1
        && p >= 1
        && r64 * p64 < 1 << 30
        && n <= u64::MAX / 128 / r64
        && n <= u64::MAX / (u64::from(t) + 1)
        && (flavor != Flavor::Rw || n / p64 > 1);
    if ok { Ok(()) } else { Err(BadParams) }
}

/// The body of yescrypt (one pass; [`derive`] may run it twice).
fn body(
    passwd: &[u8],
    salt: &[u8],
    params: &Params,
    prehash: bool,
    out: &mut [u8; 32],
) -> Result<(), BadParams> {
    check(params)?;
    let Params { flavor, n, r, p, t } = *params;
    let r = r as usize;
    let s = 2 * r;
    let blocks = usize::try_from(n)
        .ok()
        .and_then(|n| n.checked_mul(s))
        .ok_or(BadParams)?;
    let mut v: Vec<Block> = vec![[0; 8]; blocks];
    let mut scratch = Scratch {
        x: vec![[0; 8]; s],
        y: vec![[0; 8]; s],
    };

    let mut key = [0u8; 32];
    let passwd: &[u8] = if flavor == Flavor::Classic {
        passwd
    } else {
        let label: &[u8] = if prehash {
            b"yescrypt-prehash"
        } else {
            b"yescrypt"
        };
        key = hmac_sha256(label, passwd);
        &key
    };
    let mut bytes = vec![0u8; p as usize * s * 64];
    pbkdf2_once(passwd, salt, &mut bytes);
    let mut b: Vec<[u32; 16]> = bytes
        .chunks_exact(64)
        .map(|c| {
            std::array::from_fn(|i| {
                u32::from_le_bytes([c[4 * i], c[4 * i + 1], c[4 * i + 2], c[4 * i + 3]])
            })
        })
        .collect();
    wipe(&mut bytes);

    let mut sha = [0u8; 32];
    let passwd: &[u8] = if flavor == Flavor::Classic {
        for bi in b.chunks_exact_mut(s) {
            smix(bi, r, n, 1, t, flavor, &mut v, &mut scratch, &mut sha);
        }
        passwd
    } else {
        for (chunk, w) in sha.chunks_exact_mut(4).zip(b[0]) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        if flavor == Flavor::Rw {
            smix(&mut b, r, n, p, t, flavor, &mut v, &mut scratch, &mut sha);
        } else {
            for bi in b.chunks_exact_mut(s) {
                let mut unused = sha;
                smix(bi, r, n, 1, t, flavor, &mut v, &mut scratch, &mut unused);
            }
        }
        &sha
    };

    let mut all = bytes_of(&b);
    let mut dk = [0u8; 32];
    pbkdf2_once(passwd, &all, &mut dk);
    if flavor != Flavor::Classic && !prehash {
        let mut client_key = hmac_sha256(&dk, b"Client Key");
        *out = Sha256::digest(client_key).into();
        wipe(&mut client_key);
    } else {
        *out = dk;
    }

    wipe(&mut dk);
    wipe(&mut all);
    wipe(&mut key);
    wipe(&mut sha);
    // V (megabytes) is not wiped, as libxcrypt does not wipe it: it holds
    // mixing state, not the password, and goes back to the system on free.
    for block in b.iter_mut() {
        block.fill(0);
    }
    for block in scratch.x.iter_mut().chain(scratch.y.iter_mut()) {
        *block = [0; 8];
    }
    std::hint::black_box((&b, &scratch.x, &scratch.y));
    Ok(())
}

/// yescrypt (or scrypt) of `passwd` and `salt`: 32 bytes into `out`.
pub fn derive(
    passwd: &[u8],
    salt: &[u8],
    params: &Params,
    out: &mut [u8; 32],
) -> Result<(), BadParams> {
    check(params)?;
    let Params {
        flavor, n, r, p, ..
    } = *params;
    let per_p = n / u64::from(p);
    if flavor == Flavor::Rw && per_p >= 0x100 && per_p * u64::from(r) >= 0x20000 {
        let pre = Params {
            n: n >> 6,
            t: 0,
            ..*params
        };
        let mut dk = [0u8; 32];
        body(passwd, salt, &pre, true, &mut dk)?;
        let result = body(&dk, salt, params, false, out);
        wipe(&mut dk);
        result
    } else {
        body(passwd, salt, params, false, out)
    }
}
