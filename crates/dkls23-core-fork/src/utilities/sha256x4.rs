//! Fork: SHA-256 of four independent messages at once ("multi-buffer"),
//! each 32-bit word of the four states in one lane.
//!
//! For the OT extension's thousands of equally long hashes (the PRG's
//! chunks and the randomisation oracle's rows, ~19,000 compressions per
//! signing party). Two implementations give the same digests:
//!
//! - on wasm32 with `simd128`, [`simd`]: `core::arch::wasm32` intrinsics,
//!   the message schedule computed first and the rounds as a plain loop,
//!   the shape JavaScriptCore's optimising tier runs fastest. In a
//!   microbenchmark under Bun 1.4.5 it takes ~155-165 ns per block against
//!   ~190-215 ns for sha2's wasm backend (scalar rounds, `simd128` message
//!   schedule), so [`USE_X4`] is on there. An earlier version written as
//!   `[u32; 4]` array arithmetic (the portable one below, left to LLVM's
//!   vectoriser) doubled a signing party's CPU time under Bun, and the same
//!   intrinsics fully unrolled ran at ~250 ns per block (OMG compiles the
//!   big straight-line function worse than the loop).
//! - elsewhere, the portable `[u32; 4]` version: not used by the callers
//!   ([`USE_X4`] is false; sha2's SHA-NI path is faster natively), kept so
//!   that `crates/dkls23-wasm/tests/fork_arith.rs` checks the callers' x4
//!   paths against sha2 natively. The wasm version was checked against
//!   sha2 under Bun (256 digests: `crates/dkls23-core-fork/wasm-check/run.sh`).
//!
//! Constant-time: no branch or index depends on the message bytes, only on
//! their (public) lengths.

/// Whether the OT extension hashes with [`Midstate::finish_x4`] or with
/// sha2 one message at a time: only on wasm32 with `simd128`, where the
/// intrinsics version ([`simd`]) runs; elsewhere sha2 (SHA-NI natively) is
/// faster.
pub const USE_X4: bool = cfg!(all(target_arch = "wasm32", target_feature = "simd128"));

type X4 = [u32; 4];

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

#[inline(always)]
fn add(a: X4, b: X4) -> X4 {
    [
        a[0].wrapping_add(b[0]),
        a[1].wrapping_add(b[1]),
        a[2].wrapping_add(b[2]),
        a[3].wrapping_add(b[3]),
    ]
}

#[inline(always)]
fn xor(a: X4, b: X4) -> X4 {
    [a[0] ^ b[0], a[1] ^ b[1], a[2] ^ b[2], a[3] ^ b[3]]
}

#[inline(always)]
fn and(a: X4, b: X4) -> X4 {
    [a[0] & b[0], a[1] & b[1], a[2] & b[2], a[3] & b[3]]
}

#[inline(always)]
fn andnot(a: X4, b: X4) -> X4 {
    [!a[0] & b[0], !a[1] & b[1], !a[2] & b[2], !a[3] & b[3]]
}

#[inline(always)]
fn rotr<const N: u32>(a: X4) -> X4 {
    [
        (a[0] >> N) | (a[0] << (32 - N)),
        (a[1] >> N) | (a[1] << (32 - N)),
        (a[2] >> N) | (a[2] << (32 - N)),
        (a[3] >> N) | (a[3] << (32 - N)),
    ]
}

#[inline(always)]
fn shr<const N: u32>(a: X4) -> X4 {
    [a[0] >> N, a[1] >> N, a[2] >> N, a[3] >> N]
}

#[inline(always)]
fn splat(x: u32) -> X4 {
    [x; 4]
}

/// One SHA-256 compression of four states with four blocks, given as their
/// big-endian words, word t of block k in `w[t][k]`.
#[inline(always)]
fn compress_x4(state: &mut [X4; 8], mut w: [X4; 16]) {
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
    for t in 0..64 {
        if t >= 16 {
            let w15 = w[(t + 1) & 15];
            let w2 = w[(t + 14) & 15];
            let s0 = xor(xor(rotr::<7>(w15), rotr::<18>(w15)), shr::<3>(w15));
            let s1 = xor(xor(rotr::<17>(w2), rotr::<19>(w2)), shr::<10>(w2));
            w[t & 15] = add(add(w[t & 15], s0), add(w[(t + 9) & 15], s1));
        }
        let s1 = xor(xor(rotr::<6>(e), rotr::<11>(e)), rotr::<25>(e));
        let ch = xor(and(e, f), andnot(e, g));
        let t1 = add(add(add(h, s1), add(ch, splat(K[t]))), w[t & 15]);
        let s0 = xor(xor(rotr::<2>(a), rotr::<13>(a)), rotr::<22>(a));
        let maj = xor(xor(and(a, b), and(a, c)), and(b, c));
        let t2 = add(s0, maj);
        h = g;
        g = f;
        f = e;
        e = add(d, t1);
        d = c;
        c = b;
        b = a;
        a = add(t1, t2);
    }
    for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *s = add(*s, v);
    }
}

/// The SHA-256 state after a fixed prefix, from which many messages that
/// start with that prefix are finished four at a time.
#[derive(Clone)]
pub struct Midstate {
    state: [u32; 8],
    /// Whole blocks compressed into `state`.
    blocks: u64,
    /// The prefix's bytes after its last whole block (fewer than 64).
    pending: Vec<u8>,
}

impl Midstate {
    /// Absorbs `prefix` (public: its whole blocks are compressed once).
    #[must_use]
    pub fn new(prefix: &[u8]) -> Self {
        let whole = prefix.len() / 64;
        let mut state = [splat(0); 8];
        for (s, iv) in state.iter_mut().zip(IV) {
            *s = splat(iv);
        }
        for block in prefix[..whole * 64].chunks_exact(64) {
            compress_x4(&mut state, load([block; 4], 0));
        }
        Self {
            state: core::array::from_fn(|i| state[i][0]),
            blocks: whole as u64,
            pending: prefix[whole * 64..].to_vec(),
        }
    }

    /// SHA-256 of `prefix || tails[k]` for the four `k`, whose tails must
    /// have the same length.
    ///
    /// # Panics
    ///
    /// Panics if the tails differ in length.
    #[must_use]
    pub fn finish_x4(&self, tails: [&[u8]; 4]) -> [[u8; 32]; 4] {
        let tail_len = tails[0].len();
        assert!(tails.iter().all(|t| t.len() == tail_len), "unequal tails");
        let len = self.pending.len() + tail_len;
        let total_bits = (self.blocks * 64 + len as u64) * 8;
        let padded = (len + 9).div_ceil(64) * 64;
        // The four padded remainders; they can hold secrets, so are wiped.
        let mut buffers = zeroize::Zeroizing::new([[0u8; 192]; 4]);
        assert!(padded <= 192, "tail too long for finish_x4");
        for (buffer, tail) in buffers.iter_mut().zip(tails) {
            buffer[..self.pending.len()].copy_from_slice(&self.pending);
            buffer[self.pending.len()..len].copy_from_slice(tail);
            buffer[len] = 0x80;
            buffer[padded - 8..padded].copy_from_slice(&total_bits.to_be_bytes());
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        {
            simd::finish(&self.state, &*buffers, padded)
        }
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        {
            self.finish_portable(&*buffers, padded)
        }
    }

    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    fn finish_portable(&self, buffers: &[[u8; 192]; 4], padded: usize) -> [[u8; 32]; 4] {
        let mut state: [X4; 8] = core::array::from_fn(|i| splat(self.state[i]));
        for offset in (0..padded).step_by(64) {
            let lanes: [&[u8]; 4] = core::array::from_fn(|k| &buffers[k][..]);
            compress_x4(&mut state, load(lanes, offset));
        }
        core::array::from_fn(|k| {
            let mut digest = [0u8; 32];
            for (i, word) in state.iter().enumerate() {
                digest[4 * i..4 * i + 4].copy_from_slice(&word[k].to_be_bytes());
            }
            digest
        })
    }
}

/// The 16 big-endian words of the block at `offset` of each of four lanes.
#[inline(always)]
fn load(lanes: [&[u8]; 4], offset: usize) -> [X4; 16] {
    core::array::from_fn(|t| {
        core::array::from_fn(|k| {
            let at = offset + 4 * t;
            u32::from_be_bytes([lanes[k][at], lanes[k][at + 1], lanes[k][at + 2], lanes[k][at + 3]])
        })
    })
}

/// The four-way compression with `core::arch::wasm32` intrinsics, in the
/// shape that JavaScriptCore's optimising tier (OMG) ran fastest in a
/// microbenchmark under Bun 1.4.5 (ns per block, one core, 2026-12-01):
/// the whole 64-word message schedule computed first into an array, then
/// the 64 rounds as a loop, neither unrolled: ~155-165 ns per block
/// against ~190-215 for sha2's own wasm backend (scalar rounds with a
/// `simd128` message schedule) and ~250 for this code fully unrolled (the
/// big straight-line function compiles worse in OMG than the loop), the
/// portable `[u32; 4]` version above being slower still. `v128.bitselect`
/// gives Ch and Maj in one and two instructions.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
    use super::K;
    use core::arch::wasm32::*;

    #[inline(always)]
    fn rotr<const R: u32, const L: u32>(x: v128) -> v128 {
        v128_or(u32x4_shr(x, R), i32x4_shl(x, L))
    }
    #[inline(always)]
    fn add(a: v128, b: v128) -> v128 {
        i32x4_add(a, b)
    }
    #[inline(always)]
    fn big_s1(e: v128) -> v128 {
        v128_xor(v128_xor(rotr::<6, 26>(e), rotr::<11, 21>(e)), rotr::<25, 7>(e))
    }
    #[inline(always)]
    fn big_s0(a: v128) -> v128 {
        v128_xor(v128_xor(rotr::<2, 30>(a), rotr::<13, 19>(a)), rotr::<22, 10>(a))
    }
    #[inline(always)]
    fn small_s0(x: v128) -> v128 {
        v128_xor(v128_xor(rotr::<7, 25>(x), rotr::<18, 14>(x)), u32x4_shr(x, 3))
    }
    #[inline(always)]
    fn small_s1(x: v128) -> v128 {
        v128_xor(v128_xor(rotr::<17, 15>(x), rotr::<19, 13>(x)), u32x4_shr(x, 10))
    }

    /// Words 4j..4j+4 of the block at `offset` of each lane, transposed so
    /// that lane k of word t is message k's word t (big-endian).
    #[inline(always)]
    fn load4(buffers: &[[u8; 192]; 4], offset: usize, j: usize) -> [v128; 4] {
        let r: [v128; 4] = core::array::from_fn(|k| {
            let bytes: &[u8; 16] = buffers[k][offset + 16 * j..offset + 16 * j + 16]
                .try_into()
                .expect("16 bytes");
            let v = u8x16(
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14],
                bytes[15],
            );
            i8x16_shuffle::<3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12>(v, v)
        });
        let t0 = i32x4_shuffle::<0, 4, 1, 5>(r[0], r[1]);
        let t1 = i32x4_shuffle::<2, 6, 3, 7>(r[0], r[1]);
        let t2 = i32x4_shuffle::<0, 4, 1, 5>(r[2], r[3]);
        let t3 = i32x4_shuffle::<2, 6, 3, 7>(r[2], r[3]);
        [
            i64x2_shuffle::<0, 2>(t0, t2),
            i64x2_shuffle::<1, 3>(t0, t2),
            i64x2_shuffle::<0, 2>(t1, t3),
            i64x2_shuffle::<1, 3>(t1, t3),
        ]
    }

    #[inline(never)]
    fn compress(state: &mut [v128; 8], buffers: &[[u8; 192]; 4], offset: usize) {
        let mut w = [u64x2(0, 0); 64];
        for j in 0..4 {
            w[4 * j..4 * j + 4].copy_from_slice(&load4(buffers, offset, j));
        }
        for i in 16..64 {
            w[i] = add(
                add(w[i - 16], small_s0(w[i - 15])),
                add(w[i - 7], small_s1(w[i - 2])),
            );
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
        for i in 0..64 {
            // Ch(e, f, g) = bitselect(f, g, e); Maj(a, b, c) = bitselect(c, a, a ^ b).
            let t1 = add(
                add(h, big_s1(e)),
                add(v128_bitselect(f, g, e), add(u32x4_splat(K[i]), w[i])),
            );
            let t2 = add(big_s0(a), v128_bitselect(c, a, v128_xor(a, b)));
            h = g;
            g = f;
            f = e;
            e = add(d, t1);
            d = c;
            c = b;
            b = a;
            a = add(t1, t2);
        }
        for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
            *s = add(*s, v);
        }
    }

    pub(super) fn finish(
        midstate: &[u32; 8],
        buffers: &[[u8; 192]; 4],
        padded: usize,
    ) -> [[u8; 32]; 4] {
        let mut state: [v128; 8] = core::array::from_fn(|i| u32x4_splat(midstate[i]));
        for offset in (0..padded).step_by(64) {
            compress(&mut state, buffers, offset);
        }
        let words: [[u32; 4]; 8] = core::array::from_fn(|i| {
            [
                u32x4_extract_lane::<0>(state[i]),
                u32x4_extract_lane::<1>(state[i]),
                u32x4_extract_lane::<2>(state[i]),
                u32x4_extract_lane::<3>(state[i]),
            ]
        });
        core::array::from_fn(|k| {
            let mut digest = [0u8; 32];
            for (i, word) in words.iter().enumerate() {
                digest[4 * i..4 * i + 4].copy_from_slice(&word[k].to_be_bytes());
            }
            digest
        })
    }
}
