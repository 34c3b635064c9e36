//! `check()`: the number of digests where the fork's `Midstate::finish_x4`
//! (its wasm `simd128` path when built for wasm32 with simd128) differs from
//! sha2, over 64 prefix/tail length pairs (whole and partial blocks, tails
//! that pad into one, two and three blocks), four lanes each; 0 is a pass.

#[path = "../../src/utilities/sha256x4.rs"]
#[allow(dead_code)]
mod sha256x4;

use sha2::{Digest, Sha256};

#[no_mangle]
pub extern "C" fn check() -> u32 {
    let mut mismatches = 0u32;
    let mut cases = 0u32;
    // xorshift32: different bytes in every lane, deterministic.
    let mut x = 12345u32;
    let mut byte = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as u8
    };
    for prefix_len in [0usize, 1, 55, 64, 74, 120, 128, 130] {
        for tail_len in [0usize, 1, 51, 55, 60, 63, 64, 100] {
            let prefix: Vec<u8> = (0..prefix_len).map(|_| byte()).collect();
            let tails: Vec<Vec<u8>> =
                (0..4).map(|_| (0..tail_len).map(|_| byte()).collect()).collect();
            let got = sha256x4::Midstate::new(&prefix)
                .finish_x4([&tails[0], &tails[1], &tails[2], &tails[3]]);
            for (tail, digest) in tails.iter().zip(got) {
                let mut h = Sha256::new();
                h.update(&prefix);
                h.update(tail);
                let want: [u8; 32] = h.finalize().into();
                cases += 1;
                mismatches += u32::from(want != digest);
            }
        }
    }
    if cases != 256 {
        return u32::MAX;
    }
    mismatches
}
