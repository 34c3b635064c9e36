//! Helpers the native test files share: random ids, message routing, and
//! running DKG, signing and refresh over every party in-process.
#![allow(dead_code)]

use dkls23_wasm::dkg::Dkg;
use dkls23_wasm::refresh::Refresh;
use dkls23_wasm::share::KeyShare;
use dkls23_wasm::sign::{Sign, Signature};
use dkls23_wasm::Phases;
use k256::ecdsa::{RecoveryId, Signature as KSig, VerifyingKey};
use std::rc::Rc;

pub fn rand32() -> [u8; 32] {
    let mut b = [0u8; 32];
    getrandom_fill(&mut b);
    b
}

pub fn getrandom_fill(b: &mut [u8]) {
    use std::io::Read;
    std::fs::File::open("/dev/urandom").unwrap().read_exact(b).unwrap();
}

/// Messages from `outs` that `me` should receive.
pub fn inbox(outs: &[(u8, Vec<Vec<u8>>)], me: u8) -> Vec<u8> {
    dkls23_wasm::wire::route(outs, me).unwrap()
}

/// Runs DKG or refresh over every party (party k has index k + 1).
pub fn all_parties<P: Phases<Output = KeyShare>>(mut s: Vec<P>) -> Vec<Rc<KeyShare>> {
    let mut outs = Vec::new();
    for phase in 1..=3u8 {
        let o: Vec<_> = s
            .iter_mut()
            .enumerate()
            .map(|(i, d)| (i as u8 + 1, d.step(phase, &inbox(&outs, i as u8 + 1)).unwrap()))
            .collect();
        outs = o;
    }
    s.iter_mut()
        .enumerate()
        .map(|(i, d)| Rc::new(d.phase4(&inbox(&outs, i as u8 + 1)).unwrap()))
        .collect()
}

pub fn dkg(t: u8, n: u8) -> Vec<Rc<KeyShare>> {
    let sid = rand32();
    all_parties((1..=n).map(|i| Dkg::new(t, n, i, &sid).unwrap()).collect())
}

pub fn sign(
    shares: &[Rc<KeyShare>],
    parties: &[u8],
    digest: &[u8; 32],
    path: Option<&str>,
) -> Result<Vec<Signature>, dkls23_wasm::Error> {
    let sid = rand32();
    // A refusal to start (say, a quorum of the wrong size) is an error too.
    let mut s: Vec<Sign> = parties
        .iter()
        .map(|&p| Sign::new(shares[(p - 1) as usize].clone(), path, &sid, parties, digest))
        .collect::<Result<_, _>>()?;
    let mut outs = Vec::new();
    for phase in 1..=3u8 {
        let mut next = Vec::new();
        for (k, x) in s.iter_mut().enumerate() {
            next.push((parties[k], x.step(phase, &inbox(&outs, parties[k]))?));
        }
        outs = next;
    }
    let mut sigs = Vec::new();
    for (k, x) in s.iter_mut().enumerate() {
        sigs.push(x.phase4(&inbox(&outs, parties[k]))?);
    }
    Ok(sigs)
}

pub fn refresh(shares: &[Rc<KeyShare>]) -> Vec<Rc<KeyShare>> {
    let sid = rand32();
    all_parties(shares.iter().map(|x| Refresh::new(x.clone(), &sid).unwrap()).collect())
}

pub fn verify(pk33: &[u8], digest: &[u8; 32], sig: &Signature) {
    let vk = VerifyingKey::from_sec1_bytes(pk33).unwrap();
    let mut rs = [0u8; 64];
    rs[..32].copy_from_slice(&sig.r);
    rs[32..].copy_from_slice(&sig.s);
    let ks = KSig::from_slice(&rs).unwrap();
    assert!(ks.normalize_s() == ks, "signature must be low-S");
    let rec = VerifyingKey::recover_from_prehash(
        digest,
        &ks,
        RecoveryId::from_byte(sig.recovery_id).unwrap(),
    )
    .unwrap();
    assert_eq!(rec, vk);
}
