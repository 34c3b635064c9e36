//! Differential tests: the fork (`dkls23-core-fork`, what `dkls23_wasm` is
//! built on) against upstream `dkls23-secp256k1` =0.6.2.
//!
//! This test crate compiles the ceremony modules of `dkls23-wasm` a second
//! time against upstream (the `#[path]` modules below, whose `crate::lib_core`
//! is upstream's crate), so both sides speak the same wire format through
//! the same code and differ only in the DKLs23 implementation underneath.
//! Mixed ceremonies must complete and sign validly, and key shares must load
//! on either side.

// The modules are compiled here for their ceremonies; the rest of them is unused.
#![allow(dead_code)]

/// Upstream in place of the fork, under the name the modules use.
mod lib_core {
    pub use dkls23_secp256k1::*;
}
#[path = "../src/bodies.rs"]
mod bodies;
#[path = "../src/dkg.rs"]
mod dkg;
#[path = "../src/error.rs"]
mod error;
#[path = "../src/refresh.rs"]
mod refresh;
#[path = "../src/session.rs"]
mod session;
#[path = "../src/shape.rs"]
mod shape;
#[path = "../src/share.rs"]
mod share;
#[path = "../src/sign.rs"]
mod sign;
#[path = "../src/wire.rs"]
mod wire;

use k256::ecdsa::{RecoveryId, Signature as KSig, VerifyingKey};
use std::rc::Rc;

type Msgs = Vec<Vec<u8>>;

/// One party of a mixed ceremony, on either implementation.
enum Party<U, F> {
    Upstream(U),
    Fork(F),
}

/// Outputs of the two sides that tests compare: a key share as its bytes
/// (the same format on both sides), or a signature.
trait Output {
    fn out(self) -> Vec<u8>;
}
impl Output for share::KeyShare {
    fn out(self) -> Vec<u8> {
        self.to_bytes().unwrap().to_vec()
    }
}
impl Output for dkls23_wasm::share::KeyShare {
    fn out(self) -> Vec<u8> {
        self.to_bytes().unwrap().to_vec()
    }
}
impl Output for sign::Signature {
    fn out(self) -> Vec<u8> {
        [&self.r[..], &self.s[..], &[self.recovery_id]].concat()
    }
}
impl Output for dkls23_wasm::sign::Signature {
    fn out(self) -> Vec<u8> {
        [&self.r[..], &self.s[..], &[self.recovery_id]].concat()
    }
}

impl<U, F> Party<U, F>
where
    U: session::Phases,
    U::Output: Output,
    F: dkls23_wasm::Phases,
    F::Output: Output,
{
    fn step(&mut self, phase: u8, input: &[u8]) -> Msgs {
        match self {
            Party::Upstream(p) => p.step(phase, input).expect("upstream party aborted"),
            Party::Fork(p) => p.step(phase, input).expect("fork party aborted"),
        }
    }
    fn finish(&mut self, input: &[u8]) -> Vec<u8> {
        match self {
            Party::Upstream(p) => p.phase4(input).expect("upstream party aborted").out(),
            Party::Fork(p) => p.phase4(input).expect("fork party aborted").out(),
        }
    }
}

/// Runs a ceremony; `parties[k]` has index `ids[k]`.
fn run<U, F>(ids: &[u8], mut parties: Vec<Party<U, F>>) -> Vec<Vec<u8>>
where
    U: session::Phases,
    U::Output: Output,
    F: dkls23_wasm::Phases,
    F::Output: Output,
{
    let mut outs: Vec<(u8, Msgs)> = Vec::new();
    for phase in 1..=3u8 {
        let mut next = Vec::new();
        for (k, p) in parties.iter_mut().enumerate() {
            next.push((ids[k], p.step(phase, &wire::route(&outs, ids[k]).unwrap())));
        }
        outs = next;
    }
    parties
        .iter_mut()
        .enumerate()
        .map(|(k, p)| p.finish(&wire::route(&outs, ids[k]).unwrap()))
        .collect()
}

fn sid(tag: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(tag.as_bytes()).into()
}

/// Which implementation party `i` runs, by the bits of `mask`.
fn upstream(mask: u32, i: u8) -> bool {
    mask >> (i - 1) & 1 == 1
}

fn mixed_dkg(t: u8, n: u8, mask: u32) -> Vec<Vec<u8>> {
    let s = sid(&format!("dkg {t} {n} {mask}"));
    let ids: Vec<u8> = (1..=n).collect();
    let parties = ids
        .iter()
        .map(|&i| {
            if upstream(mask, i) {
                Party::Upstream(dkg::Dkg::new(t, n, i, &s).unwrap())
            } else {
                Party::Fork(dkls23_wasm::dkg::Dkg::new(t, n, i, &s).unwrap())
            }
        })
        .collect();
    run(&ids, parties)
}

/// Party i on the side `mask` chooses, from its key share's bytes (the same
/// format on both sides).
fn on_share<U, F>(
    shares: &[Vec<u8>],
    i: u8,
    mask: u32,
    up: impl FnOnce(Rc<share::KeyShare>) -> U,
    fork: impl FnOnce(Rc<dkls23_wasm::share::KeyShare>) -> F,
) -> Party<U, F> {
    let bytes = &shares[(i - 1) as usize];
    if upstream(mask, i) {
        Party::Upstream(up(Rc::new(share::KeyShare::from_bytes(bytes).unwrap())))
    } else {
        Party::Fork(fork(Rc::new(dkls23_wasm::share::KeyShare::from_bytes(bytes).unwrap())))
    }
}

fn mixed_sign(shares: &[Vec<u8>], signers: &[u8], digest: &[u8; 32], mask: u32) -> Vec<u8> {
    let s = sid(&format!("sign {signers:?} {mask}"));
    let parties = signers
        .iter()
        .map(|&i| {
            on_share(
                shares,
                i,
                mask,
                |x| sign::Sign::new(x, None, &s, signers, digest).unwrap(),
                |x| dkls23_wasm::sign::Sign::new(x, None, &s, signers, digest).unwrap(),
            )
        })
        .collect();
    let sigs = run(signers, parties);
    assert!(sigs.windows(2).all(|w| w[0] == w[1]), "signers disagree on the signature");
    sigs[0].clone()
}

fn mixed_refresh(shares: &[Vec<u8>], mask: u32) -> Vec<Vec<u8>> {
    let s = sid(&format!("refresh {mask}"));
    let ids: Vec<u8> = (1..=shares.len() as u8).collect();
    let up = |x| refresh::Refresh::new(x, &s).unwrap();
    let fork = |x| dkls23_wasm::refresh::Refresh::new(x, &s).unwrap();
    let parties = ids.iter().map(|&i| on_share(shares, i, mask, up, fork)).collect();
    run(&ids, parties)
}

fn public_key(share: &[u8]) -> [u8; 33] {
    share::KeyShare::from_bytes(share).unwrap().public_key()
}

fn verify(pk: &[u8; 33], digest: &[u8; 32], sig: &[u8]) {
    let vk = VerifyingKey::from_sec1_bytes(pk).unwrap();
    let ks = KSig::from_slice(&sig[..64]).unwrap();
    assert!(ks.normalize_s() == ks, "signature must be low-S");
    let rec =
        VerifyingKey::recover_from_prehash(digest, &ks, RecoveryId::from_byte(sig[64]).unwrap())
            .unwrap();
    assert_eq!(rec, vk, "signature does not verify under the group key");
}

#[test]
fn mixed_upstream_and_fork_ceremonies_complete_and_sign() {
    // Parties 1 and 3 run upstream in DKG; 2, 4 and 5 the fork.
    let shares = mixed_dkg(3, 5, 0b00101);
    let pk = public_key(&shares[0]);
    assert!(shares.iter().all(|s| public_key(s) == pk), "parties disagree on the key");
    // Fork shares load upstream and upstream shares load in the fork.
    for s in &shares {
        dkls23_wasm::share::KeyShare::from_bytes(s).unwrap();
        share::KeyShare::from_bytes(s).unwrap();
    }
    let digest = sid("message");
    // Every signer mix over one quorum, and other quorums.
    for mask in [0b00000, 0b11111, 0b00001, 0b00110, 0b10100] {
        verify(&pk, &digest, &mixed_sign(&shares, &[1, 2, 3], &digest, mask));
    }
    verify(&pk, &digest, &mixed_sign(&shares, &[2, 4, 5], &digest, 0b10010));
    verify(&pk, &digest, &mixed_sign(&shares, &[1, 3, 5], &digest, 0b00100));
    // Refresh with a different mix, then sign across the new shares.
    let fresh = mixed_refresh(&shares, 0b11010);
    assert!(fresh.iter().all(|s| public_key(s) == pk));
    verify(&pk, &digest, &mixed_sign(&fresh, &[3, 4, 5], &digest, 0b01000));
    // The other way round: a DKG led by upstream parties.
    let small = mixed_dkg(2, 3, 0b011);
    let pk = public_key(&small[0]);
    verify(&pk, &digest, &mixed_sign(&small, &[1, 3], &digest, 0b001));
}
