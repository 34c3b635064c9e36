//! Key lifecycle beyond DKG and refresh: re-keying an existing secret key
//! into a sharing, and repairing a lost party's share followed by the
//! complete refresh that makes it usable (and the lost copy useless).

use dkls23_wasm::refresh::Refresh;
use dkls23_wasm::rekey::rekey;
use dkls23_wasm::repair::{repair_assemble, repair_term, HollowShare};
use dkls23_wasm::share::{eth_address, KeyShare, PublicPackage};
use dkls23_wasm::Code;
use k256::elliptic_curve::sec1::ToSec1Point;
use std::rc::Rc;

mod common;
use common::*;

fn secret_key() -> ([u8; 32], [u8; 33]) {
    loop {
        let bytes = rand32();
        if let Ok(sk) = k256::SecretKey::from_slice(&bytes) {
            let pk = sk.public_key().to_sec1_point(true);
            return (bytes, pk.as_bytes().try_into().unwrap());
        }
    }
}

fn signs(shares: &[Rc<KeyShare>], parties: &[u8], pk: &[u8; 33]) {
    let digest = rand32();
    let sigs = sign(shares, parties, &digest, None).unwrap();
    verify(pk, &digest, &sigs[0]);
}

fn never_signs(shares: &[Rc<KeyShare>], parties: &[u8]) {
    if let Ok(sigs) = sign(shares, parties, &rand32(), None) {
        panic!("mixed quorum {parties:?} produced {sigs:?}");
    }
}

#[test]
fn rekeyed_shares_sign_under_the_original_key() {
    let (sk, pk) = secret_key();
    let chain = rand32();
    let shares: Vec<Rc<KeyShare>> =
        rekey(3, 5, &sk, Some(&chain), &rand32()).unwrap().into_iter().map(Rc::new).collect();
    assert_eq!(shares.len(), 5);
    for (k, s) in shares.iter().enumerate() {
        assert_eq!(s.index() as usize, k + 1);
        assert_eq!(s.public_key(), pk);
        assert_eq!(s.generation, 0);
        assert_eq!(s.public_package().chain_code, chain);
        // Each dealt share survives its own serialisation (what an enclave seals).
        KeyShare::from_bytes(&s.to_bytes().unwrap()).unwrap();
    }
    let vk = k256::PublicKey::from_sec1_bytes(&pk).unwrap();
    assert_eq!(eth_address(&shares[0].party.pk), eth_address(vk.as_affine()));
    signs(&shares, &[1, 2, 3], &pk);
    signs(&shares, &[2, 4, 5], &pk);
    // Derivation uses the imported chain code: the child key matches BIP-32
    // public derivation from the package.
    let child = shares[0].derive("m/0/1").unwrap();
    let (child_pk, _) = shares[0].public_package().derive("m/0/1").unwrap();
    assert_eq!(child.public_key(), child_pk);

    // The dealer knew every share; a complete refresh moves away from them.
    let fresh = refresh(&shares);
    assert!(fresh.iter().all(|s| s.public_key() == pk && s.generation == 1));
    signs(&fresh, &[1, 3, 5], &pk);
    let mixed = vec![shares[0].clone(), fresh[1].clone(), fresh[2].clone()];
    never_signs(&mixed, &[1, 2, 3]);
}

#[test]
fn rekey_without_chain_code_draws_one() {
    let (sk, pk) = secret_key();
    let a = rekey(2, 3, &sk, None, &rand32()).unwrap();
    let b = rekey(2, 3, &sk, None, &rand32()).unwrap();
    assert_eq!(a[0].public_key(), pk);
    assert_ne!(a[0].public_package().chain_code, b[0].public_package().chain_code);
    // Two dealings of one key are different sharings that do not mix.
    let mixed =
        vec![Rc::new(a.into_iter().next().unwrap()), Rc::new(b.into_iter().nth(1).unwrap())];
    never_signs(&mixed, &[1, 2]);
}

/// Terms from `helpers` for `target`, as (sender, bytes).
fn terms(shares: &[Rc<KeyShare>], helpers: &[u8], target: u8, id: &[u8; 32]) -> Vec<(u8, Vec<u8>)> {
    helpers
        .iter()
        .map(|&h| (h, repair_term(&shares[h as usize - 1], helpers, target, id).unwrap().to_vec()))
        .collect()
}

fn assemble(
    package: &PublicPackage,
    target: u8,
    id: &[u8; 32],
    terms: &[(u8, Vec<u8>)],
) -> dkls23_wasm::Result<HollowShare> {
    let pairs: Vec<(u8, &[u8])> = terms.iter().map(|(s, b)| (*s, &b[..])).collect();
    repair_assemble(package, target, id, &pairs)
}

/// The complete refresh of a wallet in which party `hollow.index()` holds a
/// repaired share and the others (`shares`, by index) hold their current ones.
fn refresh_with_hollow(shares: &[Rc<KeyShare>], hollow: HollowShare) -> Vec<Rc<KeyShare>> {
    let sid = rand32();
    let target = hollow.index();
    let mut hollow = Some(hollow);
    let sessions = shares
        .iter()
        .map(|s| {
            if s.index() == target {
                let input = Rc::new(hollow.take().unwrap().into_refresh_input());
                Refresh::new(input, &sid).unwrap()
            } else {
                Refresh::new(s.clone(), &sid).unwrap()
            }
        })
        .collect();
    all_parties(sessions)
}

#[test]
fn repaired_share_signs_after_a_complete_refresh() {
    let shares = dkg(3, 5);
    let pk = shares[0].public_key();
    let package = shares[0].public_package();
    let id = rand32();
    // Party 2 is lost for good; 1, 3 and 4 help.
    let t = terms(&shares, &[1, 3, 4], 2, &id);
    let hollow = assemble(&package, 2, &id, &t).unwrap();
    assert_eq!((hollow.index(), hollow.public_key(), hollow.generation()), (2, pk, 0));

    let fresh = refresh_with_hollow(&shares, hollow);
    assert!(fresh.iter().all(|s| s.public_key() == pk && s.generation == 1));
    signs(&fresh, &[1, 2, 3], &pk);
    signs(&fresh, &[2, 4, 5], &pk);
    // The repaired share is an ordinary share now: it seals and loads.
    let back = Rc::new(KeyShare::from_bytes(&fresh[1].to_bytes().unwrap()).unwrap());
    signs(&[fresh[0].clone(), back, fresh[2].clone()], &[1, 2, 3], &pk);

    // The lost party's old share (say, restored from a backup) combines with
    // no refreshed share, nor do the helpers' own pre-refresh shares.
    never_signs(&[fresh[0].clone(), shares[1].clone(), fresh[2].clone()], &[1, 2, 3]);
    never_signs(&[shares[0].clone(), fresh[1].clone(), fresh[2].clone()], &[1, 2, 3]);
    // Old shares cannot help a repair against the refreshed package.
    let id2 = rand32();
    let stale = terms(&shares, &[1, 3, 4], 2, &id2);
    assert_eq!(
        assemble(&fresh[0].public_package(), 2, &id2, &stale).err().map(|e| e.code),
        Some(Code::ProtocolAbort)
    );
    // Refreshed holders can repair again.
    let again = terms(&fresh, &[3, 4, 5], 1, &id2);
    assert_eq!(assemble(&fresh[0].public_package(), 1, &id2, &again).unwrap().public_key(), pk);
}

#[test]
fn repair_refuses_what_does_not_add_up() {
    let shares = dkg(3, 5);
    let package = shares[0].public_package();
    let id = rand32();
    let code = |r: dkls23_wasm::Result<HollowShare>| r.err().map(|e| e.code);
    // Fewer than t helpers cannot even produce terms.
    let err = repair_term(&shares[0], &[1, 3], 2, &id).err().map(|e| e.code);
    assert_eq!(err, Some(Code::InvalidParameters));
    // A helper not in its own helper set, or the target helping itself.
    assert!(repair_term(&shares[4], &[1, 3, 4], 2, &id).is_err());
    assert!(repair_term(&shares[1], &[1, 2, 3], 2, &id).is_err());
    let good = terms(&shares, &[1, 3, 4], 2, &id);
    assert!(assemble(&package, 2, &id, &good).is_ok());
    // Too few terms.
    assert_eq!(code(assemble(&package, 2, &id, &good[..2])), Some(Code::InvalidParameters));
    // A term from another repair (id) is refused before any arithmetic.
    let other = terms(&shares, &[1, 3, 4], 2, &rand32());
    let mixed = vec![good[0].clone(), good[1].clone(), other[2].clone()];
    assert_eq!(code(assemble(&package, 2, &id, &mixed)), Some(Code::UnexpectedMessage));
    // A term relayed under another sender's name.
    let relabelled = vec![good[0].clone(), good[1].clone(), (5, good[2].1.clone())];
    assert_eq!(code(assemble(&package, 2, &id, &relabelled)), Some(Code::UnexpectedMessage));
    // A corrupted term does not add up.
    let mut corrupt = good.clone();
    let last = corrupt[2].1.len() - 40;
    corrupt[2].1[last] ^= 1;
    assert!(assemble(&package, 2, &id, &corrupt).is_err());
    // The wrong target, and a package of another wallet.
    assert!(assemble(&package, 3, &id, &good).is_err());
    let other_wallet = dkg(3, 5)[0].public_package();
    assert_eq!(code(assemble(&other_wallet, 2, &id, &good)), Some(Code::ProtocolAbort));
    // Truncated, oversized, trailing bytes.
    for bytes in
        [good[0].1[..good[0].1.len() - 1].to_vec(), vec![0u8; 600], [&good[0].1[..], &[0]].concat()]
    {
        let bad = vec![(1, bytes), good[1].clone(), good[2].clone()];
        assert_eq!(code(assemble(&package, 2, &id, &bad)), Some(Code::MalformedMessage));
    }
}
