//! Native end-to-end checks of the phase API (the TypeScript suite repeats
//! the acceptance tests against the real wasm build).

use dkls23_wasm::dkg::Dkg;
use dkls23_wasm::refresh::Refresh;
use dkls23_wasm::share::KeyShare;
use dkls23_wasm::sign::{Sign, Signature};
use dkls23_wasm::wire::{decode_header, encode_list, BROADCAST};
use dkls23_wasm::{Code, Phases};
use k256::ecdsa::{RecoveryId, Signature as KSig, VerifyingKey};
use std::rc::Rc;

mod common;
use common::*;

#[test]
fn dkg_sign_refresh_3_of_5() {
    let shares = dkg(3, 5);
    let pk = shares[0].public_key();
    assert!(shares.iter().all(|s| s.public_key() == pk));
    let digest = rand32();
    let sigs = sign(&shares, &[1, 3, 5], &digest, None).unwrap();
    assert!(sigs.windows(2).all(|w| w[0] == w[1]));
    verify(&pk, &digest, &sigs[0]);

    let fresh = refresh(&shares);
    assert!(fresh.iter().all(|s| s.public_key() == pk && s.generation == 1));
    let sigs = sign(&fresh, &[2, 3, 4], &digest, None).unwrap();
    verify(&pk, &digest, &sigs[0]);
    // Shares themselves changed.
    assert_ne!(fresh[0].party.poly_point, shares[0].party.poly_point);
    // Mixing one old share with new ones never yields a valid signature.
    let mixed = vec![
        shares[0].clone(),
        fresh[1].clone(),
        fresh[2].clone(),
        fresh[3].clone(),
        fresh[4].clone(),
    ];
    match sign(&mixed, &[1, 2, 3], &digest, None) {
        Err(_) => {}
        Ok(sigs) => panic!("mixed quorum produced {sigs:?}"),
    }
    // Serialization round trip keeps everything.
    let bytes = fresh[2].to_bytes().unwrap();
    let back = Rc::new(KeyShare::from_bytes(&bytes).unwrap());
    let again = vec![fresh[0].clone(), fresh[1].clone(), back];
    let sigs = sign(&again, &[1, 2, 3], &digest, None).unwrap();
    verify(&pk, &digest, &sigs[0]);
}

#[test]
fn derived_child_signs() {
    let shares = dkg(2, 3);
    let digest = rand32();
    let child = shares[0].derive("m/0/5").unwrap();
    let (pub_child, _) = shares[0].public_package().derive("m/0/5").unwrap();
    assert_eq!(child.public_key(), pub_child);
    let sigs = sign(&shares, &[1, 3], &digest, Some("m/0/5")).unwrap();
    verify(&pub_child, &digest, &sigs[0]);
}

#[test]
fn phases_out_of_order_and_bad_params() {
    assert_eq!(Dkg::new(1, 3, 1, &[0; 32]).err().unwrap().code, Code::InvalidParameters);
    assert_eq!(Dkg::new(3, 17, 1, &[0; 32]).err().unwrap().code, Code::InvalidParameters);
    assert_eq!(Dkg::new(2, 3, 4, &[0; 32]).err().unwrap().code, Code::InvalidParameters);
    assert_eq!(Dkg::new(2, 3, 1, &[0; 31]).err().unwrap().code, Code::InvalidParameters);
    let mut d = Dkg::new(2, 3, 1, &[0; 32]).unwrap();
    assert_eq!(d.phase2(&encode_list(&[])).err().unwrap().code, Code::SessionClosed);
}

/// Any of the three ceremonies, driven uniformly by phase number.
enum Any {
    D(Dkg),
    S(Sign),
    R(Refresh),
}

impl Any {
    fn step(&mut self, phase: u8, input: &[u8]) -> Result<Vec<Vec<u8>>, dkls23_wasm::Error> {
        match self {
            Any::D(d) => d.step(phase, input),
            Any::S(d) => d.step(phase, input),
            Any::R(d) => d.step(phase, input),
        }
    }
}

fn items_for(outs: &[(u8, Vec<Vec<u8>>)], me: u8) -> Vec<Vec<u8>> {
    let mut items = Vec::new();
    for (from, msgs) in outs {
        if *from != me {
            for m in msgs {
                let h = decode_header(m).unwrap();
                if h.to == BROADCAST || h.to == me {
                    items.push(m.clone());
                }
            }
        }
    }
    items
}

/// Runs a ceremony where `mutate` may change party 1's inbox before `target`
/// phase, then keeps driving every party. Returns party 1's first error, or
/// Ok if it completed all four phases. Honest parties that abort (because
/// party 1's later output is now wrong) simply stop sending. Panics propagate.
fn run_tampered(
    make: &dyn Fn() -> Vec<(u8, Any)>,
    target: u8,
    mutate: &mut dyn FnMut(&mut Vec<Vec<u8>>),
) -> Result<(), dkls23_wasm::Error> {
    let mut s = make();
    let mut outs: Vec<(u8, Vec<Vec<u8>>)> = Vec::new();
    for phase in 1..=4u8 {
        let mut next = Vec::new();
        for (me, x) in s.iter_mut() {
            let mut items = items_for(&outs, *me);
            if *me == 1 && phase == target {
                mutate(&mut items);
            }
            match x.step(phase, &encode_list(&items)) {
                Ok(o) => next.push((*me, o)),
                Err(e) if *me == 1 => {
                    // Fail closed: after an error every later call is refused.
                    assert_eq!(
                        x.step(phase + 1, &encode_list(&[])).err().unwrap().code,
                        Code::SessionClosed
                    );
                    return Err(e);
                }
                Err(_) => {}
            }
        }
        outs = next;
    }
    Ok(())
}

fn makers<'a>(
    shares: &'a [Rc<KeyShare>],
    small: &'a [Rc<KeyShare>],
) -> Vec<(&'static str, Box<dyn Fn() -> Vec<(u8, Any)> + 'a>)> {
    let digest = rand32();
    vec![
        (
            "dkg",
            Box::new(|| {
                let sid = rand32();
                (1..=3).map(|i| (i, Any::D(Dkg::new(2, 3, i, &sid).unwrap()))).collect()
            }),
        ),
        (
            "sign",
            Box::new(move || {
                let sid = rand32();
                let parties = [1u8, 2, 4];
                parties
                    .iter()
                    .map(|&p| {
                        (
                            p,
                            Any::S(
                                Sign::new(
                                    shares[(p - 1) as usize].clone(),
                                    None,
                                    &sid,
                                    &parties,
                                    &digest,
                                )
                                .unwrap(),
                            ),
                        )
                    })
                    .collect()
            }),
        ),
        (
            "refresh",
            Box::new(|| {
                let sid = rand32();
                small
                    .iter()
                    .map(|x| (x.index(), Any::R(Refresh::new(x.clone(), &sid).unwrap())))
                    .collect()
            }),
        ),
    ]
}

fn catch(f: impl FnOnce() -> Result<(), dkls23_wasm::Error>) -> Result<(), dkls23_wasm::Error> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .expect("core panicked on hostile input")
}

#[test]
fn tampered_messages_abort_without_panicking() {
    // Sign over 3-of-5; DKG and refresh (dominated by proof generation) over 2-of-3.
    let shares = dkg(3, 5);
    let small = dkg(2, 3);
    for (name, make) in makers(&shares, &small) {
        for target in 2..=4u8 {
            // Honest run through the harness succeeds.
            catch(|| run_tampered(&*make, target, &mut |_| {})).unwrap();
            for trial in 0..6usize {
                let r = catch(|| {
                    run_tampered(&*make, target, &mut |items| {
                        let k = trial % items.len();
                        let m = &mut items[k];
                        // Past the header: the body is what the library checks.
                        let pos = 37 + (trial * 7919 + 13) % (m.len() - 37);
                        m[pos] ^= 1 << (trial % 8);
                    })
                });
                assert!(
                    r.is_err(),
                    "{name}: tampered byte before phase {target} accepted (trial {trial})"
                );
            }
            // Header tampering: wrong session, phase, sender, recipient.
            for field in 1..=5usize {
                let r = catch(|| {
                    run_tampered(&*make, target, &mut |items| {
                        items[0][field.min(4) + if field == 5 { 10 } else { 0 }] ^= 0x40;
                    })
                });
                assert!(r.is_err(), "{name}: tampered header field {field} accepted");
            }
            // A missing message, a duplicated one, and a replay from another session.
            assert!(catch(|| run_tampered(&*make, target, &mut |items| {
                items.pop();
            }))
            .is_err());
            assert!(catch(|| run_tampered(&*make, target, &mut |items| {
                let c = items[0].clone();
                items.push(c);
            }))
            .is_err());
            // Truncations at every length class.
            for cut in [1usize, 37, 64] {
                let r = catch(|| {
                    run_tampered(&*make, target, &mut |items| {
                        let l = items[0].len();
                        items[0].truncate(cut.min(l - 1));
                    })
                });
                assert!(r.is_err(), "{name}: truncated to {cut} accepted");
            }
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let shares = dkg(2, 3);
    let mut buf = vec![0u8; 4096];
    for round in 0..300usize {
        getrandom_fill(&mut buf);
        let len = (buf[0] as usize * 16 + buf[1] as usize) % buf.len();
        let junk = &buf[..len];
        catch(|| KeyShare::from_bytes(junk).map(|_| ())).unwrap_err();
        catch(|| dkls23_wasm::share::PublicPackage::from_bytes(junk).map(|_| ())).unwrap_err();
        // Valid list framing around random message bodies, and raw junk.
        let mut framed = junk.to_vec();
        if framed.len() > 37 {
            framed[0] = 1;
            framed[1] = 1;
            framed[2] = 1;
            framed[3] = 2;
            framed[4] = 1;
        }
        for input in [junk.to_vec(), encode_list(&[framed.clone()])] {
            let mut d = Dkg::new(2, 3, 1, &[0; 32]).unwrap();
            d.phase1().unwrap();
            catch(|| d.phase2(&input).map(|_| ())).unwrap_err();
            let mut s = Sign::new(shares[0].clone(), None, &[0; 32], &[1, 2], &[7; 32]).unwrap();
            s.phase1().unwrap();
            catch(|| s.phase2(&input).map(|_| ())).unwrap_err();
            let mut r = Refresh::new(shares[0].clone(), &[0; 32]).unwrap();
            r.phase1().unwrap();
            catch(|| r.phase2(&input).map(|_| ())).unwrap_err();
        }
        // Truncated real share bytes.
        let real = shares[round % 3].to_bytes().unwrap();
        let cut = (round * 7717) % real.len();
        catch(|| KeyShare::from_bytes(&real[..cut]).map(|_| ())).unwrap_err();
    }
}
