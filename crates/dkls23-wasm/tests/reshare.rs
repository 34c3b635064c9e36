//! Resharing to a new committee (src/reshare.rs over the fork's
//! protocols/reshare.rs; docs/RESHARING.md): the key, address and chain code
//! survive, every new quorum signs, old and new shares never combine, and a
//! dealer that cheats is named.

use dkls23_wasm::bodies::Fragment;
use dkls23_wasm::lib_core::protocols::reshare::ReshareCommitment;
use dkls23_wasm::reshare::Reshare;
use dkls23_wasm::share::{eth_address, KeyShare, PublicPackage};
use dkls23_wasm::wire::{decode_header, BROADCAST, HEADER_LEN};
use dkls23_wasm::{Code, Phases};
use k256::{ProjectivePoint, Scalar, Secp256k1};
use std::rc::Rc;

mod common;
use common::*;

type Commitment = ReshareCommitment<Secp256k1>;

/// Sessions of the new committee 1..=n: seat `seats[k]` deals with the old
/// share of index `dealers[k]` (`old` holds every old share, by index).
fn sessions(
    old: &[Rc<KeyShare>],
    package: &PublicPackage,
    dealers: &[u8],
    seats: &[u8],
    t: u8,
    n: u8,
    sid: &[u8; 32],
) -> Vec<Reshare> {
    (1..=n)
        .map(|me| {
            let share = seats
                .iter()
                .position(|&s| s == me)
                .map(|k| old[usize::from(dealers[k]) - 1].clone());
            Reshare::new(share, package, dealers, seats, t, n, me, sid).unwrap()
        })
        .collect()
}

fn reshare(old: &[Rc<KeyShare>], dealers: &[u8], seats: &[u8], t: u8, n: u8) -> Vec<Rc<KeyShare>> {
    let package = old[0].public_package();
    all_parties(sessions(old, &package, dealers, seats, t, n, &rand32()))
}

fn subsets(n: u8, k: u8) -> Vec<Vec<u8>> {
    (0u32..1 << n)
        .filter(|m| m.count_ones() == u32::from(k))
        .map(|m| (1..=n).filter(|&i| m & (1 << (i - 1)) != 0).collect())
        .collect()
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

fn same_wallet(new: &[Rc<KeyShare>], old: &PublicPackage, t: u8, n: u8) {
    assert_eq!(new.len(), usize::from(n));
    for (k, s) in new.iter().enumerate() {
        assert_eq!(usize::from(s.index()), k + 1);
        assert_eq!((s.threshold(), s.share_count()), (t, n));
        assert_eq!(s.public_key(), old.public_key());
        assert_eq!(s.public_package().chain_code, old.chain_code);
        assert_eq!(s.generation, old.generation + 1);
        // Every holder agrees on the new package.
        assert_eq!(
            s.public_package().to_bytes().unwrap(),
            new[0].public_package().to_bytes().unwrap()
        );
        // A reshared share is an ordinary one: it seals and loads.
        KeyShare::from_bytes(&s.to_bytes().unwrap()).unwrap();
    }
    assert_eq!(eth_address(&new[0].party.pk), eth_address(old.package.verifying_key()));
}

#[test]
fn three_of_five_to_three_of_six_to_four_of_six_keeps_the_key() {
    let v0 = dkg(3, 5);
    let p0 = v0[0].public_package();
    let pk = p0.public_key();

    // A sixth holder joins; holders 1, 2 and 4 deal, keeping their indices.
    let v1 = reshare(&v0, &[1, 2, 4], &[1, 2, 4], 3, 6);
    same_wallet(&v1, &p0, 3, 6);
    for q in subsets(6, 3) {
        signs(&v1, &q, &pk);
    }
    // BIP-32 derivation still uses the wallet's chain code.
    let child = v1[5].derive("m/0/1").unwrap();
    assert_eq!(child.public_key(), p0.derive("m/0/1").unwrap().0);

    // Then the threshold rises; 2, 3 and 6 deal (6 is a dealer now).
    let p1 = v1[0].public_package();
    let v2 = reshare(&v1, &[2, 3, 6], &[2, 3, 6], 4, 6);
    same_wallet(&v2, &p1, 4, 6);
    for q in subsets(6, 4) {
        signs(&v2, &q, &pk);
    }
    // Three holders are no longer a quorum.
    assert!(sign(&v2, &[1, 2, 3], &rand32(), None).is_err());

    // A complete refresh of the reshared committee works as for any wallet.
    let v3 = refresh(&v2);
    assert!(v3.iter().all(|s| s.public_key() == pk && s.generation == p1.generation + 2));
    signs(&v3, &[1, 3, 4, 6], &pk);
}

#[test]
fn shrinking_renumbers_the_holders() {
    let v0 = dkg(3, 5);
    let p0 = v0[0].public_package();
    // Holders 1 and 3 leave; 2, 4, 5 deal and become 1, 2, 3 of a 2-of-3.
    let v1 = reshare(&v0, &[2, 4, 5], &[1, 2, 3], 2, 3);
    same_wallet(&v1, &p0, 2, 3);
    for q in subsets(3, 2) {
        signs(&v1, &q, &p0.public_key());
    }
    // More dealers than the old threshold interpolate the same key.
    let v2 = reshare(&v1, &[1, 2, 3], &[1, 2, 3], 3, 4);
    same_wallet(&v2, &v1[0].public_package(), 3, 4);
    signs(&v2, &[2, 3, 4], &p0.public_key());
}

#[test]
fn pre_reshare_shares_do_not_combine_with_post_reshare_ones() {
    let v0 = dkg(3, 5);
    let pk = v0[0].public_key();
    let v1 = reshare(&v0, &[1, 2, 4], &[1, 2, 4], 3, 6);
    // (An old share refuses a quorum with index 6 outright; these quorums
    // start and must fail inside the protocol.)
    for (stale, q) in [(0usize, [1u8, 2, 3]), (1, [2, 3, 4]), (4, [3, 4, 5])] {
        let mut mixed: Vec<Rc<KeyShare>> = v1.clone();
        mixed[stale] = v0[stale].clone();
        never_signs(&mixed, &q);
    }
    // Nor does a share from the second reshare with one from the first.
    let v2 = reshare(&v1, &[1, 2, 3], &[1, 2, 3], 3, 6);
    never_signs(&[v1[0].clone(), v2[1].clone(), v2[2].clone()], &[1, 2, 3]);
    signs(&v2, &[1, 2, 3], &pk);
    // The old sharing itself still signs: resharing cannot revoke it, so the
    // old holders must erase their shares once the new ones are committed
    // (docs/RESHARING.md, "Commit discipline").
    signs(&v0, &[1, 2, 3], &pk);
}

/// Runs phase 1 for every party, lets `tamper` change the messages (by
/// sender seat), and returns party `victim`'s phase-2 result.
fn phase2_after(
    tamper: impl Fn(u8, &mut Vec<Vec<u8>>),
    victim: u8,
) -> dkls23_wasm::Result<Vec<Vec<u8>>> {
    let v0 = dkg(3, 5);
    let package = v0[0].public_package();
    let mut s = sessions(&v0, &package, &[1, 2, 4], &[1, 2, 4], 3, 6, &rand32());
    let mut outs = Vec::new();
    for (k, x) in s.iter_mut().enumerate() {
        let mut o = x.phase1().unwrap();
        tamper(k as u8 + 1, &mut o);
        outs.push((k as u8 + 1, o));
    }
    s[usize::from(victim) - 1].phase2(&inbox(&outs, victim))
}

fn body_of<T: serde::de::DeserializeOwned>(m: &[u8]) -> T {
    postcard::from_bytes(&m[HEADER_LEN..]).unwrap()
}

fn with_body<T: serde::Serialize>(m: &mut Vec<u8>, body: &T) {
    let header = m[..HEADER_LEN].to_vec();
    *m = [header, postcard::to_allocvec(body).unwrap()].concat();
}

fn blamed(r: dkls23_wasm::Result<Vec<Vec<u8>>>) -> (Code, Option<u8>) {
    let e = r.err().expect("phase 2 must refuse");
    (e.code, e.party)
}

/// Applies `f` to dealer `dealer`'s broadcast commitment and, for each
/// recipient, its fragment.
fn edit(
    o: &mut [Vec<u8>],
    f_commitment: &dyn Fn(&mut Commitment),
    f_fragment: &dyn Fn(u8, &mut Scalar),
) {
    for m in o.iter_mut() {
        let h = decode_header(m).unwrap();
        if h.to == BROADCAST {
            let mut c: Commitment = body_of(m);
            f_commitment(&mut c);
            with_body(m, &c);
        } else {
            let mut fr: Fragment = body_of(m);
            f_fragment(h.to, &mut fr.value);
            with_body(m, &fr);
        }
    }
}

#[test]
fn honest_phase1_passes_the_checks() {
    // The harness itself, untampered, so the refusals below mean something.
    for victim in [1, 6] {
        assert!(phase2_after(|_, _| {}, victim).is_ok());
    }
}

#[test]
fn a_tampered_fragment_is_refused_naming_its_dealer() {
    let r = phase2_after(
        |from, o| {
            if from == 2 {
                edit(o, &|_| {}, &|to, v| {
                    if to == 6 {
                        *v += Scalar::ONE;
                    }
                });
            }
        },
        6,
    );
    assert_eq!(blamed(r), (Code::ProtocolAbort, Some(2)));
}

#[test]
fn a_dealer_that_shifts_the_key_is_refused_naming_it() {
    // A consistent but dishonest dealing: f'(x) = f(x) + delta, commitment
    // and every fragment agree, but C'[0] is not λ·X of the old package.
    let delta = Scalar::from(7u64);
    let r = phase2_after(
        |from, o| {
            if from == 4 {
                edit(
                    o,
                    &|c| {
                        let shifted = ProjectivePoint::from(c.coefficients[0])
                            + ProjectivePoint::GENERATOR * delta;
                        c.coefficients[0] = shifted.to_affine();
                    },
                    &|_, v| *v += delta,
                );
            }
        },
        6,
    );
    assert_eq!(blamed(r), (Code::ProtocolAbort, Some(4)));
}

#[test]
fn a_commitment_of_the_wrong_degree_is_refused_naming_its_dealer() {
    // Degree t_new instead of t_new - 1 (one coefficient more).
    let r = phase2_after(
        |from, o| {
            if from == 1 {
                edit(o, &|c| c.coefficients.push(c.coefficients[1]), &|_, _| {});
            }
        },
        3,
    );
    assert_eq!(blamed(r), (Code::ProtocolAbort, Some(1)));
    // Another dealer's commitment relayed under seat 2.
    let r = phase2_after(
        |from, o| {
            if from == 2 {
                edit(o, &|c| c.dealer = 1.try_into().unwrap(), &|_, _| {});
            }
        },
        5,
    );
    assert_eq!(blamed(r), (Code::UnexpectedMessage, Some(2)));
}

#[test]
fn an_equivocating_dealer_cannot_split_the_committee() {
    // Dealer 2 gives party 6 a different polynomial with the right constant
    // term: 6's own checks pass, but the committee's shares no longer lie
    // on one polynomial, which phase 4 of every party detects.
    let v0 = dkg(3, 5);
    let package = v0[0].public_package();
    let mut s = sessions(&v0, &package, &[1, 2, 4], &[1, 2, 4], 3, 6, &rand32());
    let mut outs = Vec::new();
    let mut for6 = Vec::new();
    for (k, x) in s.iter_mut().enumerate() {
        let o = x.phase1().unwrap();
        if k == 1 {
            // Bump a₁ by one for party 6 only: C₁ += G and f(6) += 6.
            for6 = o.clone();
            edit(
                &mut for6,
                &|c| {
                    c.coefficients[1] = (ProjectivePoint::from(c.coefficients[1])
                        + ProjectivePoint::GENERATOR)
                        .to_affine()
                },
                &|_, v| *v += Scalar::from(6u64),
            );
        }
        outs.push((k as u8 + 1, o));
    }
    let mut outs6 = outs.clone();
    outs6[1].1 = for6;
    let route = |me: u8| inbox(if me == 6 { &outs6 } else { &outs }, me);
    let mut outs2 = Vec::new();
    for (k, x) in s.iter_mut().enumerate() {
        let me = k as u8 + 1;
        outs2.push((me, x.phase2(&route(me)).unwrap()));
    }
    let mut outs3 = Vec::new();
    for (k, x) in s.iter_mut().enumerate() {
        let me = k as u8 + 1;
        outs3.push((me, x.phase3(&inbox(&outs2, me)).unwrap()));
    }
    for (k, x) in s.iter_mut().enumerate() {
        let me = k as u8 + 1;
        let r = x.phase4(&inbox(&outs3, me));
        assert_eq!(r.err().map(|e| e.code), Some(Code::ProtocolAbort), "party {me}");
    }
}

#[test]
fn too_few_or_wrong_old_holders_are_refused() {
    let v0 = dkg(3, 5);
    let p0 = v0[0].public_package();
    let sid = rand32();
    let new = |share: Option<Rc<KeyShare>>, dealers: &[u8], seats: &[u8], me: u8| {
        Reshare::new(share, &p0, dealers, seats, 3, 6, me, &sid).err().map(|e| e.code)
    };
    let bad = Some(Code::InvalidParameters);
    // Fewer dealers than the old threshold.
    assert_eq!(new(Some(v0[0].clone()), &[1, 2], &[1, 2], 1), bad);
    assert_eq!(new(None, &[1, 2], &[1, 2], 6), bad);
    // Unsorted or repeated dealers, repeated seats, seats out of range.
    assert_eq!(new(None, &[2, 1, 4], &[2, 1, 4], 6), bad);
    assert_eq!(new(None, &[1, 2, 4], &[1, 1, 4], 6), bad);
    assert_eq!(new(None, &[1, 2, 4], &[1, 2, 7], 6), bad);
    assert_eq!(new(None, &[1, 2, 6], &[1, 2, 3], 6), bad);
    // A dealer without its share, a non-dealer with one, a share of
    // another index or another wallet.
    assert_eq!(new(None, &[1, 2, 4], &[1, 2, 4], 1), bad);
    assert_eq!(new(Some(v0[4].clone()), &[1, 2, 4], &[1, 2, 4], 5), bad);
    assert_eq!(new(Some(v0[2].clone()), &[1, 2, 4], &[1, 2, 4], 1), bad);
    let other = dkg(3, 5);
    assert_eq!(new(Some(other[0].clone()), &[1, 2, 4], &[1, 2, 4], 1), Some(Code::InvalidShare));
    // A refreshed share against the pre-refresh package (another generation).
    let fresh = refresh(&v0);
    assert_eq!(new(Some(fresh[0].clone()), &[1, 2, 4], &[1, 2, 4], 1), Some(Code::InvalidShare));
}

#[test]
fn parties_that_disagree_on_the_quorum_do_not_build_a_sharing() {
    // Party 6 believes the dealers are 1, 2, 4 sitting at 1, 2, 5: it expects
    // a dealing from seat 5, which never comes.
    let v0 = dkg(3, 5);
    let p0 = v0[0].public_package();
    let sid = rand32();
    let mut s = sessions(&v0, &p0, &[1, 2, 4], &[1, 2, 4], 3, 6, &sid);
    s[5] = Reshare::new(None, &p0, &[1, 2, 4], &[1, 2, 5], 3, 6, 6, &sid).unwrap();
    let outs: Vec<_> =
        s.iter_mut().enumerate().map(|(k, x)| (k as u8 + 1, x.phase1().unwrap())).collect();
    let e = s[5].phase2(&inbox(&outs, 6)).err().unwrap();
    assert_eq!(e.code, Code::UnexpectedMessage);
}
