//! Zero-knowledge proofs required by the protocols.
//!
//! This file implements some protocols for zero-knowledge proofs over the
//! curve secp256k1.
//!
//! The main protocol is for proofs of discrete logarithms. It is used during
//! key generation in the `DKLs23` protocol (<https://eprint.iacr.org/2023/765.pdf>).
//!
//! For the base OT in the OT extension, we use the endemic protocol of Zhou et al.
//! (see Section 3 of <https://eprint.iacr.org/2022/1525.pdf>). Thus, we also include
//! another zero knowledge proof employing the Chaum-Pedersen protocol, the
//! OR-composition and the Fiat-Shamir transform (as in their paper).
//!
//! # Discrete Logarithm Proof
//!
//! We implement Schnorr's protocol together with a randomized Fischlin transform
//! (see [`DLogProof`]).
//!
//! We base our implementation on Figures 23 and 27 of Zhou et al.
//!
//! For convenience, instead of writing the protocol directly, we wrote first an
//! implementation of the usual Schnorr's protocol, which is interactive (see [`InteractiveDLogProof`]).
//! Since it will be used for the non-interactive version, we made same particular choices
//! that would not make much sense if this interactive proof were used alone.
//!
//! # Encryption Proof
//!
//! The OT protocol of Zhou et al. uses an `ElGamal` encryption at some point
//! and it needs a zero-knowledge proof to verify its correctness.
//!
//! This implementation follows their paper: see page 17 and Appendix B.
//!
//! IMPORTANT: As specified in page 30 of `DKLs23`, we instantiate the protocols
//! above over the same elliptic curve group used in our main protocol.

use elliptic_curve::ops::Reduce;
use elliptic_curve::FieldBytes;
use ff::{Field, PrimeField};
use group::Curve as GroupCurve;
use group::{CurveAffine, Group};
use rand::{Rng, RngExt};
use std::collections::HashSet;
use std::marker::PhantomData;

use crate::curve::DklsCurve;
#[cfg(feature = "serde")]
use elliptic_curve::sec1::{FromSec1Point, Sec1Point, ToSec1Point};
use crate::utilities::hashes::{
    point_to_bytes, scalar_to_bytes, tagged_hash, tagged_hash_as_scalar, HashOutput,
};
use std::fmt;

use crate::utilities::oracle_tags::{
    TAG_DLOG_PROOF_COMMITMENT, TAG_DLOG_PROOF_FISCHLIN, TAG_ENCPROOF_FS,
};
use crate::utilities::rng;
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use crate::utilities::arith;
use crate::utilities::ct;
use sha2::{Digest, Sha256};

/// Error returned when the Fischlin proof-of-work search is exhausted
/// without finding all required hash collisions.
#[derive(Debug, Clone)]
pub struct ProofSearchExhausted;

impl fmt::Display for ProofSearchExhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Fischlin proof-of-work search exhausted without finding all required hash collisions"
        )
    }
}

impl std::error::Error for ProofSearchExhausted {}

/// Constants for the randomized Fischlin transform.
pub const R: u16 = 64;
pub const L: u16 = 4;
pub const T: u16 = 32;

// Fork: the Fischlin random oracle with its constant prefix hashed once.
//
// Upstream hashes `tagged_hash(TAG_DLOG_PROOF_FISCHLIN, [session_id, msg])`
// with `msg = G || rand_commitments || index || challenge || response` for
// every try of the proof-of-work search (~2.2 KB each, of which only the last
// 38 bytes change). The length-prefixed encoding of `tagged_hash` puts
// everything up to and including the commitments first, so that part is
// absorbed once and the SHA-256 state is cloned per try: same digest, ~30
// compression calls fewer per try.
struct FischlinOracle<C: DklsCurve> {
    prefix: Sha256,
    _curve: PhantomData<C>,
}

impl<C: DklsCurve> FischlinOracle<C> {
    fn new(session_id: &[u8], rc_as_bytes: &[u8]) -> Self {
        let generator = point_to_bytes::<C>(&<C::AffinePoint as CurveAffine>::generator());
        let scalar_len = scalar_to_bytes::<C>(&<C::Scalar as Field>::ZERO).len();
        let msg_len = generator.len() + rc_as_bytes.len() + 2 + (T / 8) as usize + scalar_len;
        let mut prefix = Sha256::new();
        let tag = TAG_DLOG_PROOF_FISCHLIN;
        prefix.update((tag.len() as u64).to_be_bytes());
        prefix.update(tag);
        prefix.update((session_id.len() as u64).to_be_bytes());
        prefix.update(session_id);
        prefix.update((msg_len as u64).to_be_bytes());
        prefix.update(&generator);
        prefix.update(rc_as_bytes);
        FischlinOracle {
            prefix,
            _curve: PhantomData,
        }
    }

    /// The oracle on `index || challenge || response`; `challenge` must be T/8 bytes.
    fn hash(&self, index: u16, challenge: &[u8], response: &C::Scalar) -> HashOutput {
        debug_assert_eq!(challenge.len(), (T / 8) as usize);
        let mut h = self.prefix.clone();
        h.update(index.to_be_bytes());
        h.update(challenge);
        h.update(scalar_to_bytes::<C>(response));
        h.finalize().into()
    }
}

// DISCRETE LOGARITHM PROOF.

/// Schnorr's protocol (interactive).
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound(
        serialize = "C::Scalar: serde::Serialize",
        deserialize = "C::Scalar: serde::Deserialize<'de>"
    ))
)]
pub struct InteractiveDLogProof<C: DklsCurve> {
    pub challenge: Vec<u8>,
    pub challenge_response: C::Scalar,
    #[cfg_attr(feature = "serde", serde(skip))]
    _curve: PhantomData<C>,
}

/// Convert a short challenge byte slice (at most T/8 bytes) to a scalar
/// by zero-extending to 32 bytes and reducing via `Reduce<FieldBytes<C>>`.
fn challenge_to_scalar<C: DklsCurve>(challenge: &[u8]) -> C::Scalar {
    let mut extended = vec![0u8; 32 - challenge.len()];
    extended.extend_from_slice(challenge);
    // FieldBytes<C> is 32 bytes for both secp256k1 and P-256.
    let field_bytes: &FieldBytes<C> = extended
        .as_slice()
        .try_into()
        .expect("extended challenge length matches field size");
    <C::Scalar as Reduce<FieldBytes<C>>>::reduce(field_bytes)
}

impl<C: DklsCurve> InteractiveDLogProof<C> {
    /// Step 1 - Samples the random commitments.
    ///
    /// The `Scalar` is kept secret while the `AffinePoint` is transmitted.
    #[must_use]
    pub fn prove_step1(mut rng: impl Rng) -> (C::Scalar, C::AffinePoint) {
        // We sample a nonzero random scalar.
        let mut scalar_rand_commitment = <C::Scalar as Field>::ZERO;
        while scalar_rand_commitment == <C::Scalar as Field>::ZERO {
            scalar_rand_commitment = <C::Scalar as Field>::random(&mut rng);
        }

        // Fork: the generator table instead of a generic multiplication
        // (constant-time: the nonce is secret).
        let point_rand_commitment = arith::g_mul::<C>(&scalar_rand_commitment).to_affine();

        (scalar_rand_commitment, point_rand_commitment)
    }

    /// Step 2 - Computes the response for a given challenge.
    ///
    /// Here, `scalar` is the witness for the proof and `scalar_rand_commitment`
    /// is the secret value from the previous step.
    #[must_use]
    pub fn prove_step2(
        scalar: &C::Scalar,
        scalar_rand_commitment: &C::Scalar,
        challenge: &[u8],
    ) -> InteractiveDLogProof<C> {
        // For convenience, we are using a challenge in bytes.
        // We convert it back to a scalar.
        // The challenge will have T bits, so we first extend it to 256 bits.
        let challenge_scalar = challenge_to_scalar::<C>(challenge);

        // We compute the response.
        let challenge_response = *scalar_rand_commitment - (challenge_scalar * scalar);

        InteractiveDLogProof {
            challenge: challenge.to_vec(), // We save the challenge for the next protocol.
            challenge_response,
            _curve: PhantomData,
        }
    }

    /// Verification of a proof.
    ///
    /// The variable `point` is the point used for the proof.
    /// We didn't include it in the struct in order to not make unnecessary
    /// repetitions in the main protocol.
    ///
    /// Attention: the challenge should enter as a parameter here, but in the
    /// next protocol, it will come from the prover, so we decided to save it
    /// inside the struct.
    #[must_use]
    pub fn verify(&self, point: &C::AffinePoint, point_rand_commitment: &C::AffinePoint) -> bool {
        // Challenges are expected to be short (in this implementation they are 1 byte),
        // and must never exceed T/8 bytes.
        if self.challenge.is_empty() || self.challenge.len() > (T / 8) as usize {
            return false;
        }

        // For convenience, we are using a challenge in bytes.
        // We convert it back to a scalar.
        // The challenge will have T bits, so we first extend it to 256 bits.
        let challenge_scalar = challenge_to_scalar::<C>(&self.challenge);

        // We compare the values that should agree.
        // Fork: variable-time (every value is the prover's public proof) and
        // compared without converting to affine.
        let point_verify =
            arith::g_mul_add_vartime::<C>(&self.challenge_response, &challenge_scalar, point);

        arith::eq_affine::<C>(&point_verify, point_rand_commitment)
    }
}

/// Schnorr's protocol (non-interactive via randomized Fischlin transform).
///
/// In order to remove interaction, we employ the "randomized Fischlin transform"
/// described in Figure 9 of <https://eprint.iacr.org/2022/393.pdf>. However, we will
/// follow the approach in Figure 27 of <https://eprint.iacr.org/2022/1525.pdf>.
/// It seems to come from Section 5.1 of the first paper.
///
/// There are some errors in this description (for example, `xi_i` and `xi_{i+r/2}`
/// are always the empty set), and thus we adapt Figure 9 of the first article. There is
/// still a problem: the paper says to choose `r` and `l` such that, in particular, `rl = 2^lambda`.
/// If `lambda = 256`, then `r` or `l` are astronomically large and the protocol becomes
/// computationally infeasible. We will use instead the condition `rl = lambda`.
/// We believe this is what the authors wanted, since this condition appears
/// in most of the rest of the first paper.
///
/// With `lambda = 256`, we chose `r = 64` and `l = 4` (higher values of `l` were too slow).
/// In this case, the constant `t` from the paper is equal to 32.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound(
        serialize = "C::AffinePoint: serde::Serialize, C::Scalar: serde::Serialize",
        deserialize = "C::AffinePoint: serde::Deserialize<'de>, C::Scalar: serde::Deserialize<'de>"
    ))
)]
pub struct DLogProof<C: DklsCurve> {
    pub point: C::AffinePoint,
    pub rand_commitments: Vec<C::AffinePoint>,
    pub proofs: Vec<InteractiveDLogProof<C>>,
}

impl<C: DklsCurve> DLogProof<C> {
    /// Computes a proof for the witness `scalar`.
    ///
    /// Returns an error if the Fischlin proof-of-work search is exhausted
    /// without finding all required hash collisions. This is astronomically
    /// unlikely with a correct RNG but must not be silently ignored.
    pub fn prove(
        scalar: &C::Scalar,
        session_id: &[u8],
    ) -> Result<DLogProof<C>, ProofSearchExhausted> {
        // We execute Step 1 r times.
        // Fork: Step 1 as InteractiveDLogProof::prove_step1 does it, with the
        // R commitments converted to affine together (one field inversion).
        let mut states: Vec<C::Scalar> = Vec::with_capacity(R as usize);
        let mut rng = rng::get_rng();
        for _ in 0..R {
            let mut state = <C::Scalar as Field>::ZERO;
            while state == <C::Scalar as Field>::ZERO {
                state = <C::Scalar as Field>::random(&mut rng);
            }
            states.push(state);
        }
        let projective: Vec<C::ProjectivePoint> = states.iter().map(arith::g_mul::<C>).collect();
        let rand_commitments: Vec<C::AffinePoint> = arith::normalize_vec::<C>(&projective);

        // We save this vector in bytes.
        let rc_as_bytes = rand_commitments
            .clone()
            .into_iter()
            .map(|x| point_to_bytes::<C>(&x))
            .collect::<Vec<Vec<u8>>>()
            .concat();

        // Fork: the hashed prefix up to the index is the same for every try.
        let oracle = FischlinOracle::<C>::new(session_id, &rc_as_bytes);

        // Now, there is a "proof of work".
        // We have to find the good challenges.
        let mut first_proofs: Vec<InteractiveDLogProof<C>> = Vec::with_capacity((R / 2) as usize);
        let mut last_proofs: Vec<InteractiveDLogProof<C>> = Vec::with_capacity((R / 2) as usize);
        for i in 0..(R / 2) {
            // We will find different challenges until one of them works.
            // Since both hashes to be computed are of 2l bits, we expect
            // them to coincide after 2^{2l} tries (assuming everything is
            // uniformly random and independent). For l = 4, this is just
            // 256 tries. For safety, we will put a large margin and repeat
            // each while at most 2^16 times (so 2^32 tries in total).

            let mut flag = false;
            let mut first_counter = 0u16;
            while first_counter < u16::MAX && !flag {
                // We sample an array of T bits = T/8 bytes.
                let first_challenge = rng::get_rng().random::<[u8; (T / 8) as usize]>();

                // If this challenge was already sampled, we should go back.
                // However, with some tests, we saw that it is time consuming
                // to save the challenges (we have to reallocate memory all the
                // time when increasing the vector of used challenges).

                // Fortunately, note that our sample space has cardinality 2^t
                // (which is 2^32 in our case), and we repeat the loop 2^16 times.
                // Even if in all iterations we sample different values, the
                // probability of getting an older challenge in an additional
                // iteration is 2^16/2^32, which is small. Thus, we don't expect
                // a lot of repetitions.

                // We execute Step 2 at index i.
                let first_proof = InteractiveDLogProof::<C>::prove_step2(
                    scalar,
                    &states[i as usize],
                    &first_challenge,
                );

                // Let's take the first hash here.
                // The random oracle has to return an array of 2l bits = l/4 bytes, so we take a slice.
                let first_full = oracle.hash(i, &first_challenge, &first_proof.challenge_response);
                let first_hash = &first_full[0..(L / 4) as usize];

                // Now comes the search for the next challenge.
                let mut second_counter = 0u16;
                let mut rng = rng::get_rng();
                while second_counter < u16::MAX {
                    // We sample another array. Same considerations as before.
                    let second_challenge = rng.random::<[u8; (T / 8) as usize]>();

                    //if used_second_challenges.contains(&second_challenge) { continue; }

                    // We execute Step 2 at index i + R/2.
                    let second_proof = InteractiveDLogProof::<C>::prove_step2(
                        scalar,
                        &states[(i + (R / 2)) as usize],
                        &second_challenge,
                    );

                    // Second hash now.
                    let second_full = oracle.hash(
                        i + (R / 2),
                        &second_challenge,
                        &second_proof.challenge_response,
                    );
                    let second_hash = &second_full[0..(L / 4) as usize];

                    // If the hashes are equal, we are successful and we can break both loops.
                    if *first_hash == *second_hash {
                        // We save the successful results.
                        first_proofs.push(first_proof);
                        last_proofs.push(second_proof);

                        // We update the flag to break the outer loop.
                        flag = true;

                        break;
                    }

                    // If we were not successful, we try again.
                    second_counter += 1;
                }

                // If we were not successful, we try again.
                first_counter += 1;
            }

            if !flag {
                return Err(ProofSearchExhausted);
            }
        }

        // We put together the vectors.
        let proofs = [first_proofs, last_proofs].concat();

        // We save the point.
        let point = arith::g_mul::<C>(scalar).to_affine();

        Ok(DLogProof {
            point,
            rand_commitments,
            proofs,
        })
    }

    /// Verification of a proof of discrete logarithm.
    ///
    /// Note that the point to be verified is in `proof`.
    #[must_use]
    pub fn verify(proof: &DLogProof<C>, session_id: &[u8]) -> bool {
        // We first verify that all vectors have the correct length.
        // If the prover is very unlucky, there is the possibility that
        // he doesn't return all the needed proofs.
        if proof.rand_commitments.len() != (R as usize) || proof.proofs.len() != (R as usize) {
            return false;
        }

        // We transform the random commitments into bytes.
        let vec_rc_as_bytes = proof
            .rand_commitments
            .clone()
            .into_iter()
            .map(|x| point_to_bytes::<C>(&x))
            .collect::<Vec<Vec<u8>>>();

        // All the proofs should be different (otherwise, it would be easier to forge a proof).
        // Here we compare the random commitments using a HashSet.
        let mut without_repetitions: HashSet<Vec<u8>> = HashSet::with_capacity(R as usize);
        if !vec_rc_as_bytes
            .clone()
            .into_iter()
            .all(move |x| without_repetitions.insert(x))
        {
            return false;
        }

        // We concatenate the vector of random commitments.
        let rc_as_bytes = vec_rc_as_bytes.concat();

        let generator = <C::AffinePoint as CurveAffine>::generator();
        let oracle = FischlinOracle::<C>::new(session_id, &rc_as_bytes);
        // Fork: the cached-prefix oracle hashes exactly what the message
        // below encodes when the challenge has the standard length.
        let hash = |i: u16, p: &InteractiveDLogProof<C>| -> HashOutput {
            if p.challenge.len() == (T / 8) as usize {
                return oracle.hash(i, &p.challenge, &p.challenge_response);
            }
            let msg = [
                &point_to_bytes::<C>(&generator),
                &rc_as_bytes[..],
                &i.to_be_bytes(),
                &p.challenge,
                &scalar_to_bytes::<C>(&p.challenge_response),
            ]
            .concat();
            tagged_hash(TAG_DLOG_PROOF_FISCHLIN, &[session_id, &msg])
        };
        for i in 0..(R / 2) {
            // We compare the hashes
            let first_full = hash(i, &proof.proofs[i as usize]);
            let first_hash = &first_full[0..(L / 4) as usize];
            let second_full = hash(i + (R / 2), &proof.proofs[(i + (R / 2)) as usize]);
            let second_hash = &second_full[0..(L / 4) as usize];

            // Constant-time comparison to prevent timing side-channels
            // from leaking information about the proof structure.
            if !bool::from(first_hash.ct_eq(second_hash)) {
                return false;
            }

            // We verify both proofs.
            let verification_1 =
                proof.proofs[i as usize].verify(&proof.point, &proof.rand_commitments[i as usize]);
            let verification_2 = proof.proofs[(i + (R / 2)) as usize].verify(
                &proof.point,
                &proof.rand_commitments[(i + (R / 2)) as usize],
            );

            if !verification_1 || !verification_2 {
                return false;
            }
        }

        // If we got here, all the previous tests passed.
        true
    }

    /// Produces an instance of `DLogProof` (for the witness `scalar`)
    /// together with a commitment (its hash).
    ///
    /// The commitment is transmitted first and the proof is sent later
    /// when needed.
    /// Computes a proof with a commitment, propagating proof generation errors.
    pub fn prove_commit(
        scalar: &C::Scalar,
        session_id: &[u8],
    ) -> Result<(DLogProof<C>, HashOutput), ProofSearchExhausted> {
        let proof = Self::prove(scalar, session_id)?;

        //Computes the commitment (it's the hash of DLogProof in bytes).
        let point_as_bytes = point_to_bytes::<C>(&proof.point);
        let rc_as_bytes = proof
            .rand_commitments
            .clone()
            .into_iter()
            .map(|x| point_to_bytes::<C>(&x))
            .collect::<Vec<Vec<u8>>>()
            .concat();
        let challenges_as_bytes = proof
            .proofs
            .clone()
            .into_iter()
            .map(|x| x.challenge)
            .collect::<Vec<Vec<u8>>>()
            .concat();
        let responses_as_bytes = proof
            .proofs
            .clone()
            .into_iter()
            .map(|x| scalar_to_bytes::<C>(&x.challenge_response))
            .collect::<Vec<Vec<u8>>>()
            .concat();

        let msg_for_commitment = [
            point_as_bytes,
            rc_as_bytes,
            challenges_as_bytes,
            responses_as_bytes,
        ]
        .concat();
        let commitment = tagged_hash(
            TAG_DLOG_PROOF_COMMITMENT,
            &[session_id, &msg_for_commitment],
        );

        Ok((proof, commitment))
    }

    /// Verifies a proof and checks it against the commitment.
    #[must_use]
    pub fn decommit_verify(
        proof: &DLogProof<C>,
        commitment: &HashOutput,
        session_id: &[u8],
    ) -> bool {
        //Computes the expected commitment
        let point_as_bytes = point_to_bytes::<C>(&proof.point);
        let rc_as_bytes = proof
            .rand_commitments
            .clone()
            .into_iter()
            .map(|x| point_to_bytes::<C>(&x))
            .collect::<Vec<Vec<u8>>>()
            .concat();
        let challenges_as_bytes = proof
            .proofs
            .clone()
            .into_iter()
            .map(|x| x.challenge)
            .collect::<Vec<Vec<u8>>>()
            .concat();
        let responses_as_bytes = proof
            .proofs
            .clone()
            .into_iter()
            .map(|x| scalar_to_bytes::<C>(&x.challenge_response))
            .collect::<Vec<Vec<u8>>>()
            .concat();

        let msg_for_commitment = [
            point_as_bytes,
            rc_as_bytes,
            challenges_as_bytes,
            responses_as_bytes,
        ]
        .concat();
        let expected_commitment = tagged_hash(
            TAG_DLOG_PROOF_COMMITMENT,
            &[session_id, &msg_for_commitment],
        );

        bool::from(commitment.ct_eq(&expected_commitment)) && Self::verify(proof, session_id)
    }
}

// ENCRYPTION PROOF

/// Represents the random commitments for the Chaum-Pedersen protocol.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound(
        serialize = "C::AffinePoint: serde::Serialize",
        deserialize = "C::AffinePoint: serde::Deserialize<'de>"
    ))
)]
pub struct RandomCommitments<C: DklsCurve> {
    pub rc_g: C::AffinePoint,
    pub rc_h: C::AffinePoint,
}

impl<C: DklsCurve> RandomCommitments<C> {
    /// `a` if `choice` is 0, `b` if it is 1, in constant time.
    fn select(a: &Self, b: &Self, choice: Choice) -> Self {
        RandomCommitments {
            rc_g: C::AffinePoint::conditional_select(&a.rc_g, &b.rc_g, choice),
            rc_h: C::AffinePoint::conditional_select(&a.rc_h, &b.rc_h, choice),
        }
    }
}

/// Chaum-Pedersen protocol (interactive version).
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound(
        serialize = "C::AffinePoint: serde::Serialize, C::Scalar: serde::Serialize",
        deserialize = "C::AffinePoint: serde::Deserialize<'de>, C::Scalar: serde::Deserialize<'de>"
    ))
)]
pub struct CPProof<C: DklsCurve> {
    pub base_g: C::AffinePoint, // Parameters for the proof.
    pub base_h: C::AffinePoint, // In the encryption proof, base_g = generator.
    pub point_u: C::AffinePoint,
    pub point_v: C::AffinePoint,

    pub challenge_response: C::Scalar,
}

impl<C: DklsCurve> CPProof<C> {
    /// `a` if `choice` is 0, `b` if it is 1, in constant time.
    fn select(a: &Self, b: &Self, choice: Choice) -> Self {
        CPProof {
            base_g: C::AffinePoint::conditional_select(&a.base_g, &b.base_g, choice),
            base_h: C::AffinePoint::conditional_select(&a.base_h, &b.base_h, choice),
            point_u: C::AffinePoint::conditional_select(&a.point_u, &b.point_u, choice),
            point_v: C::AffinePoint::conditional_select(&a.point_v, &b.point_v, choice),
            challenge_response: C::Scalar::conditional_select(
                &a.challenge_response,
                &b.challenge_response,
                choice,
            ),
        }
    }
}

impl<C: DklsCurve> CPProof<C> {
    // We need a proof that scalar * base_g = point_u and scalar * base_h = point_v.
    // As we will see later, the challenge will not be calculated only with the data
    // we now have. Thus, we have to write the interactive version here for the moment.
    // This means that the challenge is a parameter chosen by the verifier and is not
    // calculated via Fiat-Shamir.

    /// Step 1 - Samples the random commitments.
    ///
    /// The `Scalar` is kept secret while the `RandomCommitments` is transmitted.
    #[must_use]
    pub fn prove_step1(
        base_g: &C::AffinePoint,
        base_h: &C::AffinePoint,
    ) -> (C::Scalar, RandomCommitments<C>) {
        // We sample a nonzero random scalar.
        let mut scalar_rand_commitment = <C::Scalar as Field>::ZERO;
        while scalar_rand_commitment == <C::Scalar as Field>::ZERO {
            scalar_rand_commitment = <C::Scalar as Field>::random(&mut rng::get_rng());
        }

        let point_rand_commitment_g = (*base_g * scalar_rand_commitment).to_affine();
        let point_rand_commitment_h = (*base_h * scalar_rand_commitment).to_affine();

        let rand_commitments = RandomCommitments {
            rc_g: point_rand_commitment_g,
            rc_h: point_rand_commitment_h,
        };

        (scalar_rand_commitment, rand_commitments)
    }

    /// Step 2 - Compute the response for a given challenge.
    ///
    /// Here, `scalar` is the witness for the proof and `scalar_rand_commitment`
    /// is the secret value from the previous step.
    #[must_use]
    pub fn prove_step2(
        base_g: &C::AffinePoint,
        base_h: &C::AffinePoint,
        scalar: &C::Scalar,
        scalar_rand_commitment: &C::Scalar,
        challenge: &C::Scalar,
    ) -> CPProof<C> {
        // We get u and v.
        let [point_u, point_v] = arith::normalize::<C, 2>([*base_g * scalar, *base_h * scalar]);

        Self::prove_step2_with_points(
            base_g,
            base_h,
            &point_u,
            &point_v,
            scalar,
            scalar_rand_commitment,
            challenge,
        )
    }

    /// Fork: [`CPProof::prove_step2`] for a caller that already holds
    /// `point_u = scalar * base_g` and `point_v = scalar * base_h` (the
    /// encryption proof computes both before it gets here), so that they are
    /// not multiplied again.
    #[must_use]
    pub fn prove_step2_with_points(
        base_g: &C::AffinePoint,
        base_h: &C::AffinePoint,
        point_u: &C::AffinePoint,
        point_v: &C::AffinePoint,
        scalar: &C::Scalar,
        scalar_rand_commitment: &C::Scalar,
        challenge: &C::Scalar,
    ) -> CPProof<C> {
        // We compute the response.
        let challenge_response = *scalar_rand_commitment - (*challenge * scalar);

        CPProof {
            base_g: *base_g,
            base_h: *base_h,
            point_u: *point_u,
            point_v: *point_v,

            challenge_response,
        }
    }

    /// Verification of a proof.
    ///
    /// Note that the data to be verified is in the variable `proof`.
    ///
    /// The verifier must know the challenge (in this interactive version, he chooses it).
    #[must_use]
    pub fn verify(&self, rand_commitments: &RandomCommitments<C>, challenge: &C::Scalar) -> bool {
        // We compare the values that should agree.
        // Fork: variable-time, since every value here is the prover's public
        // proof (bases, points, response, challenge, commitments), with the
        // generator table when base_g is the generator, and compared without
        // converting to affine.
        let resp = &self.challenge_response;
        let point_verify_g = if self.base_g == <C::AffinePoint as CurveAffine>::generator() {
            arith::g_mul_add_vartime::<C>(resp, challenge, &self.point_u)
        } else {
            arith::lincomb2_vartime::<C>(&self.base_g, resp, &self.point_u, challenge)
        };
        let point_verify_h =
            arith::lincomb2_vartime::<C>(&self.base_h, resp, &self.point_v, challenge);

        arith::eq_affine::<C>(&point_verify_g, &rand_commitments.rc_g)
            && arith::eq_affine::<C>(&point_verify_h, &rand_commitments.rc_h)
    }

    /// Simulates a "fake" proof which passes the `verify` method.
    ///
    /// To do so, the prover samples the challenge and uses it to compute
    /// the other values. This method returns the challenge used, the commitments
    /// and the corresponding proof.
    ///
    /// This is needed during the OR-composition protocol (see [`EncProof`]).
    #[must_use]
    pub fn simulate(
        base_g: &C::AffinePoint,
        base_h: &C::AffinePoint,
        point_u: &C::AffinePoint,
        point_v: &C::AffinePoint,
    ) -> (RandomCommitments<C>, C::Scalar, CPProof<C>) {
        // We sample the challenge and the response first.
        let challenge = <C::Scalar as Field>::random(&mut rng::get_rng());

        let challenge_response = <C::Scalar as Field>::random(&mut rng::get_rng());

        // Now we compute the "random" commitments that work for this challenge.
        // Fork: one constant-time double multiplication each (in the encryption
        // proof, which proof is simulated depends on the secret OT bit) and one
        // shared inversion.
        let [point_rand_commitment_g, point_rand_commitment_h] = arith::normalize::<C, 2>([
            arith::lincomb2::<C>(base_g, &challenge_response, point_u, &challenge),
            arith::lincomb2::<C>(base_h, &challenge_response, point_v, &challenge),
        ]);

        let rand_commitments = RandomCommitments {
            rc_g: point_rand_commitment_g,
            rc_h: point_rand_commitment_h,
        };

        let proof = CPProof {
            base_g: *base_g,
            base_h: *base_h,
            point_u: *point_u,
            point_v: *point_v,

            challenge_response,
        };

        (rand_commitments, challenge, proof)
    }
}

/// Fork: the random values one [`EncProof::prove`] draws (secret), taken
/// in its order: the real proof's nonzero nonce, then the simulated proof's
/// challenge and response.
pub struct EncProofDraws<C: DklsCurve> {
    nonce: C::Scalar,
    fake_challenge: C::Scalar,
    fake_response: C::Scalar,
}

impl<C: DklsCurve> EncProofDraws<C> {
    /// Draws them as `prove` does.
    #[must_use]
    pub fn draw() -> Self {
        // We sample a nonzero random scalar (CPProof::prove_step1).
        let mut nonce = <C::Scalar as Field>::ZERO;
        while nonce == <C::Scalar as Field>::ZERO {
            nonce = <C::Scalar as Field>::random(&mut rng::get_rng());
        }
        // CPProof::simulate: the challenge, then the response.
        let fake_challenge = <C::Scalar as Field>::random(&mut rng::get_rng());
        let fake_response = <C::Scalar as Field>::random(&mut rng::get_rng());
        EncProofDraws {
            nonce,
            fake_challenge,
            fake_response,
        }
    }
}

impl<C: DklsCurve> Drop for EncProofDraws<C> {
    fn drop(&mut self) {
        // Secret: the simulated proof's values reveal which proof is real.
        self.nonce = <C::Scalar as Field>::ZERO;
        self.fake_challenge = <C::Scalar as Field>::ZERO;
        self.fake_response = <C::Scalar as Field>::ZERO;
    }
}

/// Encryption proof used during the Endemic OT protocol of Zhou et al.
///
/// See page 17 of <https://eprint.iacr.org/2022/1525.pdf>.
// Fork: decoded through `EncProofWire` (below), which decompresses each
// distinct point of the proof once; the encoding is unchanged.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(
        bound(
            serialize = "C::AffinePoint: serde::Serialize, C::Scalar: serde::Serialize",
            deserialize = "C::AffinePoint: serde::Deserialize<'de>, C::Scalar: serde::Deserialize<'de>"
        ),
        try_from = "EncProofWire<C>"
    )
)]
pub struct EncProof<C: DklsCurve> {
    /// EncProof is a proof that `proof0` or `proof1` really proves what it says.
    pub proof0: CPProof<C>,
    pub proof1: CPProof<C>,

    pub commitments0: RandomCommitments<C>,
    pub commitments1: RandomCommitments<C>,

    pub challenge0: C::Scalar,
    pub challenge1: C::Scalar,
}

/// Fork: the wire form of an [`EncProof`], field for field, with every
/// point as its SEC1 encoding (`Sec1Point`), which is how RustCrypto
/// curves serialize an affine point (k256's `AffinePoint` serializes
/// `to_sec1_point(true)` and deserializes a `Sec1Point` through
/// `from_sec1_point`; `tests/fork_proofs.rs` checks that both decoders give
/// the same proofs and reject the same bytes). Upstream decoded all 12 points
/// of a proof; here each distinct encoding is decompressed once (the two
/// CP proofs repeat the generator and h, and u appears twice), and the
/// generator's own encoding is recognised without a square root.
/// Variable-time: all of it is the received, public proof.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
#[serde(
    rename = "EncProof",
    bound(deserialize = "C::Scalar: serde::Deserialize<'de>")
)]
pub struct EncProofWire<C: DklsCurve> {
    proof0: CPProofWire<C>,
    proof1: CPProofWire<C>,
    commitments0: RandomCommitmentsWire<C>,
    commitments1: RandomCommitmentsWire<C>,
    challenge0: C::Scalar,
    challenge1: C::Scalar,
}

#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
#[serde(
    rename = "CPProof",
    bound(deserialize = "C::Scalar: serde::Deserialize<'de>")
)]
struct CPProofWire<C: DklsCurve> {
    base_g: Sec1Point<C>,
    base_h: Sec1Point<C>,
    point_u: Sec1Point<C>,
    point_v: Sec1Point<C>,
    challenge_response: C::Scalar,
}

#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
#[serde(rename = "RandomCommitments", bound(deserialize = ""))]
struct RandomCommitmentsWire<C: DklsCurve> {
    rc_g: Sec1Point<C>,
    rc_h: Sec1Point<C>,
}

#[cfg(feature = "serde")]
impl<C: DklsCurve> TryFrom<EncProofWire<C>> for EncProof<C> {
    type Error = &'static str;

    fn try_from(w: EncProofWire<C>) -> Result<Self, Self::Error> {
        let generator = <C::AffinePoint as CurveAffine>::generator();
        let generator_encoding = generator.to_sec1_point(true);
        let encodings: [&Sec1Point<C>; 12] = [
            &w.proof0.base_g,
            &w.proof0.base_h,
            &w.proof0.point_u,
            &w.proof0.point_v,
            &w.proof1.base_g,
            &w.proof1.base_h,
            &w.proof1.point_u,
            &w.proof1.point_v,
            &w.commitments0.rc_g,
            &w.commitments0.rc_h,
            &w.commitments1.rc_g,
            &w.commitments1.rc_h,
        ];
        let mut points: Vec<C::AffinePoint> = Vec::with_capacity(encodings.len());
        for (i, encoding) in encodings.iter().enumerate() {
            let bytes = encoding.as_bytes();
            let point = if bytes == generator_encoding.as_bytes() {
                generator
            } else if let Some(j) = (0..i).find(|&j| encodings[j].as_bytes() == bytes) {
                points[j]
            } else {
                Option::<C::AffinePoint>::from(C::AffinePoint::from_sec1_point(encoding))
                    .ok_or("invalid point encoding")?
            };
            points.push(point);
        }
        let cp = |k: usize, challenge_response: C::Scalar| CPProof {
            base_g: points[k],
            base_h: points[k + 1],
            point_u: points[k + 2],
            point_v: points[k + 3],
            challenge_response,
        };
        let rc = |k: usize| RandomCommitments {
            rc_g: points[k],
            rc_h: points[k + 1],
        };
        Ok(EncProof {
            proof0: cp(0, w.proof0.challenge_response),
            proof1: cp(4, w.proof1.challenge_response),
            commitments0: rc(8),
            commitments1: rc(10),
            challenge0: w.challenge0,
            challenge1: w.challenge1,
        })
    }
}

impl<C: DklsCurve> EncProof<C> {
    /// Computes a proof for the witness `scalar`.
    ///
    /// The variable `bit` indicates which one of the proofs is really
    /// proved by `scalar`. The other one is simulated.
    #[must_use]
    pub fn prove(
        session_id: &[u8],
        base_h: &C::AffinePoint,
        scalar: &C::Scalar,
        bit: bool,
    ) -> EncProof<C> {
        // Fork: the batch of one, with this proof's random draws in
        // upstream's order.
        let draws = EncProofDraws::<C>::draw();
        Self::prove_batch(&[session_id], &[*base_h], &[*scalar], &[bit], &[draws])
            .pop()
            .expect("one proof")
    }

    /// Fork: [`EncProof::prove`] for several statements at once, each with
    /// its random draws taken beforehand (`EncProofDraws::draw`, in the
    /// order `prove` draws them), so that the points of all proofs are
    /// converted to affine with two shared inversions instead of two per
    /// proof. Each proof is the one `prove` computes from the same draws.
    /// Constant-time throughout (witnesses, nonces, simulated values and
    /// bits are secret); the slices have one entry per proof.
    #[must_use]
    pub fn prove_batch(
        session_ids: &[&[u8]],
        bases_h: &[C::AffinePoint],
        scalars: &[C::Scalar],
        bits: &[bool],
        draws: &[EncProofDraws<C>],
    ) -> Vec<EncProof<C>> {
        let n = session_ids.len();
        assert!(
            bases_h.len() == n && scalars.len() == n && bits.len() == n && draws.len() == n,
            "one base, witness, bit and set of draws per proof"
        );
        // PRELIMINARIES

        // g is the generator in this case.
        let base_g = <C::AffinePoint as CurveAffine>::generator();

        // We compute u and v from Section 3 in the paper.
        // Be careful: these are not point_u and point_v from CPProof.

        // u is independent of the bit chosen.
        // v = h*bit + g*scalar.
        // The other possible value for v will be used in a simulated proof.
        // See below for a better explanation.
        //
        // Both branches are computed unconditionally to avoid timing
        // side-channels that could leak the OT choice bit.
        // Fork: g*scalar from the generator table (constant-time), and the
        // four points of every proof converted to affine with one shared
        // inversion.
        let mut stage1: Vec<C::ProjectivePoint> = Vec::with_capacity(4 * n);
        for (base_h, scalar) in bases_h.iter().zip(scalars) {
            let base_h_proj = C::ProjectivePoint::from(*base_h);
            let g_times_scalar = arith::g_mul::<C>(scalar);
            stage1.extend_from_slice(&[
                base_h_proj * scalar,
                g_times_scalar + base_h_proj,
                g_times_scalar,
                g_times_scalar - base_h_proj,
            ]);
        }
        let stage1 = arith::normalize_vec::<C>(&stage1);

        // STEP 1
        // We start our real proof and simulate the fake proof.

        // Real proof:
        // bit = 0 => We want to prove that (g,h,v,u) is a DDH tuple.
        // bit = 1 => We want to prove that (g,h,v-h,u) is a DDH tuple.

        // Fake proof: Simulate that (g,h,fake_v,u) is a DDH tuple (although it's not).
        // bit = 0 => We want to fake that (g,h,v-h,u) is a DDH tuple (i.e., fake_v = v-h).
        // bit = 1 -> We want to fake that (g,h,v,u) is a DDH tuple (i.e., fake_v = v).

        // Commitments for real proof: CPProof::prove_step1 with base_g = G
        // through the generator table (constant-time: the nonce is secret).
        // Fake proof: CPProof::simulate(&base_g, base_h, &fake_v, &u) computed
        // here (same draws: challenge, then response), with its second
        // commitment h*resp + u*chal as the single product
        // h*(resp + scalar*chal), which is the same point since u = h*scalar;
        // the four commitments of every proof share one inversion.
        // Constant-time throughout: which proof is simulated is the secret bit.
        let mut vs = Vec::with_capacity(n);
        let mut stage2: Vec<C::ProjectivePoint> = Vec::with_capacity(4 * n);
        for i in 0..n {
            let [u, v_if_true, v_if_false, fake_v_if_false] = [
                stage1[4 * i],
                stage1[4 * i + 1],
                stage1[4 * i + 2],
                stage1[4 * i + 3],
            ];
            let fake_v_if_true = v_if_true;
            let bit_choice = ct::choice(bits[i]);
            let v = C::AffinePoint::conditional_select(&v_if_false, &v_if_true, bit_choice);
            let fake_v =
                C::AffinePoint::conditional_select(&fake_v_if_false, &fake_v_if_true, bit_choice);
            let d = &draws[i];
            let base_h_proj = C::ProjectivePoint::from(bases_h[i]);
            stage2.extend_from_slice(&[
                arith::g_mul::<C>(&d.nonce),
                base_h_proj * d.nonce,
                arith::lincomb2::<C>(&base_g, &d.fake_response, &fake_v, &d.fake_challenge),
                base_h_proj * (d.fake_response + scalars[i] * d.fake_challenge),
            ]);
            vs.push((u, v, v_if_false, fake_v, bit_choice));
        }
        let stage2 = arith::normalize_vec::<C>(&stage2);

        let mut proofs = Vec::with_capacity(n);
        for (i, (u, v, v_if_false, fake_v, bit_choice)) in vs.into_iter().enumerate() {
            let base_h = &bases_h[i];
            let scalar = &scalars[i];
            let d = &draws[i];
            let (fake_challenge, real_scalar_commitment) = (d.fake_challenge, d.nonce);
            let real_commitments = RandomCommitments {
                rc_g: stage2[4 * i],
                rc_h: stage2[4 * i + 1],
            };
            let fake_commitments = RandomCommitments {
                rc_g: stage2[4 * i + 2],
                rc_h: stage2[4 * i + 3],
            };
            let fake_proof = CPProof {
                base_g,
                base_h: *base_h,
                point_u: fake_v,
                point_v: u,
                challenge_response: d.fake_response,
            };

            // STEP 2
            // Fiat-Shamir: We compute the "total" challenge based on the
            // values we want to prove and on the commitments above.

            let base_g_as_bytes = point_to_bytes::<C>(&base_g);
            let base_h_as_bytes = point_to_bytes::<C>(base_h);
            let u_as_bytes = point_to_bytes::<C>(&u);
            let v_as_bytes = point_to_bytes::<C>(&v);

            let r_rc_g_as_bytes = point_to_bytes::<C>(&real_commitments.rc_g);
            let r_rc_h_as_bytes = point_to_bytes::<C>(&real_commitments.rc_h);

            let f_rc_g_as_bytes = point_to_bytes::<C>(&fake_commitments.rc_g);
            let f_rc_h_as_bytes = point_to_bytes::<C>(&fake_commitments.rc_h);

            // The proof that comes first is always the one containing u and v.
            // If bit = 0, it is the real proof, otherwise it is the fake one.
            // For the message, we first put the commitments for the first proof
            // since the verifier does not know which proof is the real one.
            // The order is selected in constant time.
            let real_commitments_bytes = [r_rc_g_as_bytes, r_rc_h_as_bytes].concat();
            let fake_commitments_bytes = [f_rc_g_as_bytes, f_rc_h_as_bytes].concat();
            let msg_for_challenge = [
                base_g_as_bytes,
                base_h_as_bytes,
                u_as_bytes,
                v_as_bytes,
                ct::select_slice(&real_commitments_bytes, &fake_commitments_bytes, bit_choice),
                ct::select_slice(&fake_commitments_bytes, &real_commitments_bytes, bit_choice),
            ]
            .concat();

            let challenge =
                tagged_hash_as_scalar::<C>(TAG_ENCPROOF_FS, &[session_ids[i], &msg_for_challenge]);

            // STEP 3
            // We compute the real challenge for our real proof.
            // Note that it depends on the challenge above. This
            // is why we cannot simply fake both proofs. With this
            // challenge, we can finish the real proof.

            // ATTENTION: The original paper says that the challenge
            // should be the XOR of the real and fake challenges.
            // However, it is easier and essentially equivalent to
            // impose that challenge = real + fake as scalars.

            let real_challenge = challenge - fake_challenge;

            // Fork: the real proof's points are g*scalar (for bit = 0 it is v, for
            // bit = 1 it is v - h; both equal v_if_false) and h*scalar = u, which
            // are already computed; prove_step2 would multiply them again.
            let real_proof = CPProof::prove_step2_with_points(
                &base_g,
                base_h,
                &v_if_false,
                &u,
                scalar,
                &real_scalar_commitment,
                &real_challenge,
            );

            // RETURN

            // The proof containing u and v goes first.
            // It is the real proof if bit = 0 and the false one otherwise.
            proofs.push(EncProof {
                proof0: CPProof::select(&real_proof, &fake_proof, bit_choice),
                proof1: CPProof::select(&fake_proof, &real_proof, bit_choice),

                commitments0: RandomCommitments::select(
                    &real_commitments,
                    &fake_commitments,
                    bit_choice,
                ),
                commitments1: RandomCommitments::select(
                    &fake_commitments,
                    &real_commitments,
                    bit_choice,
                ),

                challenge0: C::Scalar::conditional_select(
                    &real_challenge,
                    &fake_challenge,
                    bit_choice,
                ),
                challenge1: C::Scalar::conditional_select(
                    &fake_challenge,
                    &real_challenge,
                    bit_choice,
                ),
            });
        }
        proofs
    }

    /// Verification of an encryption proof.
    ///
    /// Note that the data to be verified is in `proof`.
    #[must_use]
    pub fn verify(&self, session_id: &[u8]) -> bool {
        // Fork: split into the statement and challenge checks and the two
        // Chaum-Pedersen equations, so that `verify_batch` can share the first.
        self.verify_statement(session_id)
            && self.proof0.verify(&self.commitments0, &self.challenge0)
            && self.proof1.verify(&self.commitments1, &self.challenge1)
    }

    /// Fork: verifies several encryption proofs (each with its session id)
    /// with one random linear combination of all their Chaum-Pedersen
    /// equations instead of four double multiplications per proof.
    ///
    /// Each proof's statement and Fiat-Shamir challenge are checked exactly
    /// as in [`EncProof::verify`]. Its four equations
    /// `resp*B + c*P - RC = 0` are weighted with independent random 128-bit
    /// scalars and summed; in a prime-order group a batch containing a false
    /// equation sums to the identity with probability at most 2^-128. The
    /// result is `true` exactly when every proof would pass `verify` (up to
    /// that probability). Variable-time: every input is the prover's public
    /// proof; the weights are fresh local randomness.
    #[must_use]
    pub fn verify_batch(proofs: &[EncProof<C>], session_ids: &[Vec<u8>]) -> bool {
        if proofs.len() != session_ids.len() {
            return false;
        }
        let mut rng = rng::get_rng();
        let mut g_scalar = <C::Scalar as Field>::ZERO;
        let mut points: Vec<C::AffinePoint> = Vec::with_capacity(7 * proofs.len() + 1);
        let mut scalars: Vec<C::Scalar> = Vec::with_capacity(7 * proofs.len() + 1);
        for (proof, sid) in proofs.iter().zip(session_ids) {
            if !proof.verify_statement(sid) {
                return false;
            }
            let w: [C::Scalar; 4] = core::array::from_fn(|_| {
                <C::Scalar as PrimeField>::from_u128(rng.random::<u128>())
            });
            let (p0, p1) = (&proof.proof0, &proof.proof1);
            let (c0, c1) = (proof.challenge0, proof.challenge1);
            let (r0, r1) = (p0.challenge_response, p1.challenge_response);
            // proof0: r0*G + c0*U0 = RC0g (w0), r0*h + c0*V = RC0h (w1);
            // proof1: r1*G + c1*U1 = RC1g (w2), r1*h + c1*V = RC1h (w3).
            // base_g = G, the shared base_h and point_v were checked above,
            // and so was U1 = U0 - h: c1*U1 enters as c1*U0 - c1*h (the same
            // group element), so each proof adds 7 terms instead of 8.
            g_scalar += w[0] * r0 + w[2] * r1;
            points.extend_from_slice(&[
                p0.point_u,
                p0.base_h,
                p0.point_v,
                proof.commitments0.rc_g,
                proof.commitments0.rc_h,
                proof.commitments1.rc_g,
                proof.commitments1.rc_h,
            ]);
            scalars.extend_from_slice(&[
                w[0] * c0 + w[2] * c1,
                w[1] * r0 + w[3] * r1 - w[2] * c1,
                w[1] * c0 + w[3] * c1,
                -w[0],
                -w[1],
                -w[2],
                -w[3],
            ]);
        }
        points.push(<C::AffinePoint as CurveAffine>::generator());
        scalars.push(g_scalar);
        // Pippenger's bucket method (`arith::msm_vartime`), public values only.
        bool::from(arith::msm_vartime::<C>(&points, &scalars).is_identity())
    }

    /// The statement and challenge part of [`EncProof::verify`] (upstream's
    /// code, unchanged apart from the comparison in affine form).
    fn verify_statement(&self, session_id: &[u8]) -> bool {
        // We check if the proofs are compatible.
        let generator = <C::AffinePoint as CurveAffine>::generator();
        if (self.proof0.base_g != generator)
        || (self.proof0.base_g != self.proof1.base_g)
        || (self.proof0.base_h != self.proof1.base_h)
        || (self.proof0.point_v != self.proof1.point_v) // This is u from Section 3 in the paper.
        // Fork: compared without converting to affine (public values).
        || !arith::eq_affine::<C>(&(C::ProjectivePoint::from(self.proof1.point_u) + C::ProjectivePoint::from(self.proof1.base_h)), &self.proof0.point_u)
        // proof0 contains v and proof1 contains v-h.
        {
            return false;
        }

        // Reconstructing the challenge.

        let base_g_as_bytes = point_to_bytes::<C>(&self.proof0.base_g);
        let base_h_as_bytes = point_to_bytes::<C>(&self.proof0.base_h);

        // u and v are respectively point_v and point_u from the proof0.
        let u_as_bytes = point_to_bytes::<C>(&self.proof0.point_v);
        let v_as_bytes = point_to_bytes::<C>(&self.proof0.point_u);

        let rc0_g_as_bytes = point_to_bytes::<C>(&self.commitments0.rc_g);
        let rc0_h_as_bytes = point_to_bytes::<C>(&self.commitments0.rc_h);

        let rc1_g_as_bytes = point_to_bytes::<C>(&self.commitments1.rc_g);
        let rc1_h_as_bytes = point_to_bytes::<C>(&self.commitments1.rc_h);

        let msg_for_challenge = [
            base_g_as_bytes,
            base_h_as_bytes,
            u_as_bytes,
            v_as_bytes,
            rc0_g_as_bytes,
            rc0_h_as_bytes,
            rc1_g_as_bytes,
            rc1_h_as_bytes,
        ]
        .concat();
        let expected_challenge =
            tagged_hash_as_scalar::<C>(TAG_ENCPROOF_FS, &[session_id, &msg_for_challenge]);

        // The challenge should be the sum of the challenges used in the proofs.
        // (The fork checks both proofs' equations in `verify` or `verify_batch`.)
        expected_challenge == self.challenge0 + self.challenge1
    }

    /// Extracts `u` and `v` from an instance of `EncProof`.
    ///
    /// Be careful: the notation for `u` and `v` here is the
    /// same as the one used in the paper by Zhou et al. at page 17.
    /// Unfortunately, `u` and `v` appear in the other order in
    /// their description of the Chaum-Pedersen protocol.
    /// Hence, `u` and `v` here are not the same as `point_u`
    /// and `point_v` in [`CPProof`].
    #[must_use]
    pub fn get_u_and_v(&self) -> (C::AffinePoint, C::AffinePoint) {
        (self.proof0.point_v, self.proof0.point_u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::Secp256k1;

    type TestCurve = Secp256k1;
    type Scalar = <TestCurve as elliptic_curve::CurveArithmetic>::Scalar;
    type AffinePoint = <TestCurve as elliptic_curve::CurveArithmetic>::AffinePoint;
    type ProjectivePoint = <TestCurve as elliptic_curve::CurveArithmetic>::ProjectivePoint;

    // DLogProof

    /// Tests if proving and verifying work for [`DLogProof`].
    #[test]
    fn test_dlog_proof() {
        let scalar = <Scalar as Field>::random(&mut rng::get_rng());
        let session_id = rng::get_rng().random::<[u8; 32]>();
        let proof = DLogProof::<TestCurve>::prove(&scalar, &session_id).unwrap();
        assert!(DLogProof::<TestCurve>::verify(&proof, &session_id));
    }

    /// Generates a [`DLogProof`] and changes it on purpose
    /// to see if the verify function detects.
    #[test]
    fn test_dlog_proof_fail_proof() {
        let scalar = <Scalar as Field>::random(&mut rng::get_rng());
        let session_id = rng::get_rng().random::<[u8; 32]>();
        let mut proof = DLogProof::<TestCurve>::prove(&scalar, &session_id).unwrap();
        proof.proofs[0].challenge_response *= Scalar::from(2u32); //Changing the proof
        assert!(!(DLogProof::<TestCurve>::verify(&proof, &session_id)));
    }

    /// Ensures duplicated random commitments are rejected.
    #[test]
    fn test_dlog_proof_rejects_duplicate_rand_commitments() {
        let scalar = <Scalar as Field>::random(&mut rng::get_rng());
        let session_id = rng::get_rng().random::<[u8; 32]>();
        let mut proof = DLogProof::<TestCurve>::prove(&scalar, &session_id).unwrap();
        proof.rand_commitments[1] = proof.rand_commitments[0];
        assert!(!DLogProof::<TestCurve>::verify(&proof, &session_id));
    }

    /// Ensures wrong proof/commitment vector lengths are rejected.
    #[test]
    fn test_dlog_proof_rejects_wrong_vector_lengths() {
        let scalar = <Scalar as Field>::random(&mut rng::get_rng());
        let session_id = rng::get_rng().random::<[u8; 32]>();

        let mut proof_short_commitments =
            DLogProof::<TestCurve>::prove(&scalar, &session_id).unwrap();
        proof_short_commitments.rand_commitments.pop();
        assert!(!DLogProof::<TestCurve>::verify(
            &proof_short_commitments,
            &session_id
        ));

        let mut proof_short_proofs = DLogProof::<TestCurve>::prove(&scalar, &session_id).unwrap();
        proof_short_proofs.proofs.pop();
        assert!(!DLogProof::<TestCurve>::verify(
            &proof_short_proofs,
            &session_id
        ));
    }

    /// Ensures session-id mismatches invalidate the proof.
    #[test]
    fn test_dlog_proof_rejects_mismatched_session_id() {
        let scalar = <Scalar as Field>::random(&mut rng::get_rng());
        let prove_sid = rng::get_rng().random::<[u8; 32]>();
        let mut verify_sid = prove_sid;
        verify_sid[0] ^= 1;
        let proof = DLogProof::<TestCurve>::prove(&scalar, &prove_sid).unwrap();
        assert!(!DLogProof::<TestCurve>::verify(&proof, &verify_sid));
    }

    /// Tests if proving and verifying work for [`DLogProof`]
    /// in the case with commitment.
    #[test]
    fn test_dlog_proof_commit() {
        let scalar = <Scalar as Field>::random(&mut rng::get_rng());
        let session_id = rng::get_rng().random::<[u8; 32]>();
        let (proof, commitment) =
            DLogProof::<TestCurve>::prove_commit(&scalar, &session_id).unwrap();
        assert!(DLogProof::<TestCurve>::decommit_verify(
            &proof,
            &commitment,
            &session_id
        ));
    }

    /// Generates a [`DLogProof`] with commitment and changes
    /// the proof on purpose to see if the verify function detects.
    #[test]
    fn test_dlog_proof_commit_fail_proof() {
        let scalar = <Scalar as Field>::random(&mut rng::get_rng());
        let session_id = rng::get_rng().random::<[u8; 32]>();
        let (mut proof, commitment) =
            DLogProof::<TestCurve>::prove_commit(&scalar, &session_id).unwrap();
        proof.proofs[0].challenge_response *= Scalar::from(2u32); //Changing the proof
        assert!(!(DLogProof::<TestCurve>::decommit_verify(&proof, &commitment, &session_id)));
    }

    /// Generates a [`DLogProof`] with commitment and changes
    /// the commitment on purpose to see if the verify function detects.
    #[test]
    fn test_dlog_proof_commit_fail_commitment() {
        let scalar = <Scalar as Field>::random(&mut rng::get_rng());
        let session_id = rng::get_rng().random::<[u8; 32]>();
        let (proof, mut commitment) =
            DLogProof::<TestCurve>::prove_commit(&scalar, &session_id).unwrap();
        if commitment[0] == 0 {
            commitment[0] = 1;
        } else {
            commitment[0] -= 1;
        } //Changing the commitment
        assert!(!(DLogProof::<TestCurve>::decommit_verify(&proof, &commitment, &session_id)));
    }

    // CPProof

    /// Tests if proving and verifying work for [`CPProof`].
    #[test]
    fn test_cp_proof() {
        let log_base_g = <Scalar as Field>::random(&mut rng::get_rng());
        let log_base_h = <Scalar as Field>::random(&mut rng::get_rng());
        let scalar = <Scalar as Field>::random(&mut rng::get_rng());

        let generator = <AffinePoint as CurveAffine>::generator();
        let base_g = (generator * log_base_g).to_affine();
        let base_h = (generator * log_base_h).to_affine();

        // Prover - Step 1.
        let (scalar_rand_commitment, rand_commitments) =
            CPProof::<TestCurve>::prove_step1(&base_g, &base_h);

        // Verifier - Gather the commitments and choose the challenge.
        let challenge = <Scalar as Field>::random(&mut rng::get_rng());

        // Prover - Step 2.
        let proof = CPProof::<TestCurve>::prove_step2(
            &base_g,
            &base_h,
            &scalar,
            &scalar_rand_commitment,
            &challenge,
        );

        // Verifier verifies the proof.
        let verification = proof.verify(&rand_commitments, &challenge);

        assert!(verification);
    }

    /// Tests if simulating a fake proof and verifying work for [`CPProof`].
    #[test]
    fn test_cp_proof_simulate() {
        let log_base_g = <Scalar as Field>::random(&mut rng::get_rng());
        let log_base_h = <Scalar as Field>::random(&mut rng::get_rng());
        let log_point_u = <Scalar as Field>::random(&mut rng::get_rng());
        let log_point_v = <Scalar as Field>::random(&mut rng::get_rng());

        let generator = <AffinePoint as CurveAffine>::generator();
        let base_g = (generator * log_base_g).to_affine();
        let base_h = (generator * log_base_h).to_affine();
        let point_u = (generator * log_point_u).to_affine();
        let point_v = (generator * log_point_v).to_affine();

        // Simulation.
        let (rand_commitments, challenge, proof) =
            CPProof::<TestCurve>::simulate(&base_g, &base_h, &point_u, &point_v);

        let verification = proof.verify(&rand_commitments, &challenge);

        assert!(verification);
    }

    /// Ensures simulated proofs fail when verified against a different statement.
    #[test]
    fn test_cp_proof_simulate_wrong_statement_fails() {
        let log_base_g = <Scalar as Field>::random(&mut rng::get_rng());
        let log_base_h = <Scalar as Field>::random(&mut rng::get_rng());
        let log_point_u = <Scalar as Field>::random(&mut rng::get_rng());
        let log_point_v = <Scalar as Field>::random(&mut rng::get_rng());

        let generator = <AffinePoint as CurveAffine>::generator();
        let base_g = (generator * log_base_g).to_affine();
        let base_h = (generator * log_base_h).to_affine();
        let point_u = (generator * log_point_u).to_affine();
        let point_v = (generator * log_point_v).to_affine();

        // We intentionally use a random statement and then tamper it further.
        let (rand_commitments, challenge, mut proof) =
            CPProof::<TestCurve>::simulate(&base_g, &base_h, &point_u, &point_v);
        proof.point_u =
            (ProjectivePoint::from(proof.point_u) + ProjectivePoint::GENERATOR).to_affine();

        assert!(!proof.verify(&rand_commitments, &challenge));
    }

    // EncProof

    /// Tests if proving and verifying work for [`EncProof`].
    #[test]
    fn test_enc_proof() {
        // We sample the initial values.
        let session_id = rng::get_rng().random::<[u8; 32]>();

        let log_base_h = <Scalar as Field>::random(&mut rng::get_rng());
        let generator = <AffinePoint as CurveAffine>::generator();
        let base_h = (generator * log_base_h).to_affine();

        let scalar = <Scalar as Field>::random(&mut rng::get_rng());

        let bit: bool = rng::get_rng().random();

        // Proving.
        let proof = EncProof::<TestCurve>::prove(&session_id, &base_h, &scalar, bit);

        // Verifying.
        let verification = proof.verify(&session_id);

        assert!(verification);
    }

    /// Ensures incompatible sub-proofs are rejected.
    #[test]
    fn test_enc_proof_rejects_incompatible_subproofs() {
        let session_id = rng::get_rng().random::<[u8; 32]>();
        let log_base_h = <Scalar as Field>::random(&mut rng::get_rng());
        let generator = <AffinePoint as CurveAffine>::generator();
        let base_h = (generator * log_base_h).to_affine();
        let scalar = <Scalar as Field>::random(&mut rng::get_rng());
        let bit: bool = rng::get_rng().random();

        let mut proof = EncProof::<TestCurve>::prove(&session_id, &base_h, &scalar, bit);
        proof.proof0.base_g = (generator * Scalar::from(2u32)).to_affine();

        assert!(!proof.verify(&session_id));
    }

    /// Ensures challenge-sum mismatch is rejected.
    #[test]
    fn test_enc_proof_rejects_challenge_sum_mismatch() {
        let session_id = rng::get_rng().random::<[u8; 32]>();
        let log_base_h = <Scalar as Field>::random(&mut rng::get_rng());
        let generator = <AffinePoint as CurveAffine>::generator();
        let base_h = (generator * log_base_h).to_affine();
        let scalar = <Scalar as Field>::random(&mut rng::get_rng());
        let bit: bool = rng::get_rng().random();

        let mut proof = EncProof::<TestCurve>::prove(&session_id, &base_h, &scalar, bit);
        proof.challenge0 += Scalar::ONE;

        assert!(!proof.verify(&session_id));
    }

    /// Tests that oversized interactive challenges are rejected during verification.
    #[test]
    fn test_interactive_dlog_proof_rejects_oversized_challenge() {
        let generator = <AffinePoint as CurveAffine>::generator();
        let proof: InteractiveDLogProof<TestCurve> = InteractiveDLogProof {
            challenge: vec![0u8; (T / 8 + 1) as usize],
            challenge_response: <Scalar as Field>::ZERO,
            _curve: PhantomData,
        };
        assert!(!proof.verify(&generator, &generator));
    }

    /// Tests that empty challenges are rejected during verification.
    #[test]
    fn test_interactive_dlog_proof_rejects_empty_challenge() {
        let generator = <AffinePoint as CurveAffine>::generator();
        let proof: InteractiveDLogProof<TestCurve> = InteractiveDLogProof {
            challenge: vec![],
            challenge_response: <Scalar as Field>::ZERO,
            _curve: PhantomData,
        };
        assert!(!proof.verify(&generator, &generator));
    }
}
