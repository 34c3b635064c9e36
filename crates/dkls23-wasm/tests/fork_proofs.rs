//! The fork's batched verification of encryption proofs (base OT) must
//! accept exactly what one-by-one verification accepts.

use dkls23_core_fork::utilities::hashes::tagged_hash_as_point;
use dkls23_core_fork::utilities::proofs::EncProof;
use k256::elliptic_curve::ff::PrimeField;
use k256::{Scalar, Secp256k1};

fn proofs(n: u16) -> (Vec<EncProof<Secp256k1>>, Vec<Vec<u8>>) {
    let mut proofs = Vec::new();
    let mut sids = Vec::new();
    for i in 0..n {
        let sid = [&i.to_be_bytes()[..], b"fork-proofs"].concat();
        let h = tagged_hash_as_point::<Secp256k1>(b"test-h", &[&sid]);
        let r = Scalar::from_u128(0x1234_5678_9abc_def0 * (u128::from(i) + 3));
        proofs.push(EncProof::prove(&sid, &h, &r, i % 3 == 0));
        sids.push(sid);
    }
    (proofs, sids)
}

#[test]
fn batch_verification_matches_single_verification() {
    let (mut p, sids) = proofs(12);
    assert!(p.iter().zip(&sids).all(|(x, s)| x.verify(s)));
    assert!(EncProof::verify_batch(&p, &sids));
    // Each kind of tampering, at different positions, fails both ways.
    let one = Scalar::ONE;
    let tamper: [&dyn Fn(&mut EncProof<Secp256k1>); 5] = [
        &|x| x.proof0.challenge_response += one,
        &|x| x.proof1.challenge_response += one,
        &|x| x.challenge0 += one,
        &|x| std::mem::swap(&mut x.commitments0.rc_g, &mut x.commitments1.rc_g),
        &|x| std::mem::swap(&mut x.commitments0.rc_h, &mut x.commitments0.rc_g),
    ];
    for (k, t) in tamper.iter().enumerate() {
        let at = (k * 5) % p.len();
        let saved = p[at].clone();
        t(&mut p[at]);
        assert!(!p[at].verify(&sids[at]), "tampering {k} passes single verification");
        assert!(!EncProof::verify_batch(&p, &sids), "tampering {k} passes batch verification");
        p[at] = saved;
    }
    assert!(EncProof::verify_batch(&p, &sids));
    // A proof checked under another session id fails.
    let mut wrong = sids.clone();
    wrong.swap(0, 1);
    assert!(!EncProof::verify_batch(&p, &wrong));
    assert!(!EncProof::verify_batch(&p, &sids[1..]));
}

/// The fork decodes an encryption proof through `EncProofWire` (each
/// distinct point decompressed once); upstream's derived decoder
/// decompresses all 12. Both must read the same proofs from the same bytes
/// and reject the same bytes.
#[test]
fn proof_decoder_matches_upstream_decoder() {
    use dkls23_secp256k1::utilities::proofs::EncProof as UpstreamEncProof;
    type Up = UpstreamEncProof<Secp256k1>;
    let (p, sids) = proofs(6);
    for (proof, sid) in p.iter().zip(&sids) {
        let bytes = postcard::to_allocvec(proof).unwrap();
        let ours: EncProof<Secp256k1> = postcard::from_bytes(&bytes).unwrap();
        let theirs: Up = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(postcard::to_allocvec(&ours).unwrap(), bytes);
        assert_eq!(postcard::to_allocvec(&theirs).unwrap(), bytes);
        assert!(ours.verify(sid));
        // Every single-byte change either side rejects, the other rejects
        // too, and what both accept is the same proof. (Flips in points:
        // a repeated point whose copies differ must not be merged.)
        for at in 0..bytes.len() {
            for flip in [0x01u8, 0x80] {
                let mut t = bytes.clone();
                t[at] ^= flip;
                let a = postcard::from_bytes::<EncProof<Secp256k1>>(&t);
                let b = postcard::from_bytes::<Up>(&t);
                assert_eq!(a.is_ok(), b.is_ok(), "byte {at} ^ {flip:#x}");
                if let (Ok(a), Ok(b)) = (a, b) {
                    assert_eq!(
                        postcard::to_allocvec(&a).unwrap(),
                        postcard::to_allocvec(&b).unwrap(),
                        "byte {at} ^ {flip:#x}"
                    );
                }
            }
        }
    }
}
