//! Resharing: move a key to a new committee (other t, other n, other
//! holders) under the same group key and chain code.
//!
//! Added by the fork (not in upstream 0.6.2); the argument is in the
//! repository's `docs/RESHARING.md`.
//!
//! # Protocol
//!
//! A quorum `Q` of at least `t_old` holders of the old sharing (`x_i`, with
//! public verifying shares `X_i = x_i·G` in the old package) *deals*:
//!
//! 1. each dealer `i ∈ Q` computes `w_i = λ_i(Q)·x_i` (Lagrange at 0 over
//!    `Q`, so `Σ w_i = x`, the group secret), draws a polynomial `f_i` of
//!    degree `t_new − 1` with `f_i(0) = w_i`, and sends
//!    - to every new party `j` its fragment `f_i(j)` (secret, point to point),
//!    - to all new parties the Feldman commitment `C_i = (a_i0·G, …)` of
//!      `f_i`'s coefficients ([`ReshareCommitment`]);
//! 2. every new party `j` checks each fragment against its commitment
//!    ([`verify_fragment`]) and each commitment against the *old* package
//!    ([`check_commitments`]: `C_i[0] = λ_i(Q)·X_i`, and `Σ C_i[0]` is the
//!    group key), so that no dealer can move the key or hand out fragments of
//!    another polynomial without being named;
//! 3. the new committee runs DKG phases 2–4 with the verified fragments in
//!    place of DKG's phase-1 fragments: DKG phase 2 sums them into the new
//!    share `s_j = Σ_i f_i(j)` and proves it, phase 3 and 4 build fresh
//!    zero-share seeds and OT state among the new parties only, and phase 4
//!    checks that all proven points lie on one polynomial of degree
//!    `t_new − 1`;
//! 4. [`finish`] checks that the resulting package is exactly the one the
//!    commitments predict (group key unchanged, every verifying share
//!    `S_j = Σ_i C_i(j)`) and gives the party the old chain code.
//!
//! The DKG session id of step 3 is [`session_id`], which binds the reshare
//! id, the old package, the quorum and the new parameters, so new parties that
//! disagree on any of them fail DKG's proofs instead of building a sharing.
//!
//! # Preconditions
//!
//! - `old` must be the package the caller trusts for the wallet (e.g. from
//!   enclave-signed statements); every check is against it.
//! - Commitments must reach every new party identically. Phase 4 of the
//!   DKG catches a dealer that sent different commitments to different
//!   parties (the proven shares then do not lie on one polynomial with the
//!   old key, or differ from the predicted package), but cannot name it.
//! - After the new committee has committed its shares, the old holders must
//!   erase theirs: resharing cannot revoke old shares that someone keeps.

use std::fmt;

use elliptic_curve::Field;
use group::{Curve, Group};
use zeroize::Zeroizing;

use crate::curve::DklsCurve;
use crate::protocols::derivation::ChainCode;
use crate::protocols::{Parameters, Party, PartyIndex, PublicKeyPackage};
use crate::utilities::hashes::{point_to_bytes, tagged_hash};
use crate::utilities::oracle_tags::TAG_RESHARE_SESSION;
use crate::utilities::rng;

/// Why a reshare step was refused. `dealer` is the dealer's *old* index.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReshareError {
    /// The old or new threshold parameters are invalid.
    InvalidParameters,
    /// The quorum is not sorted and unique, has fewer than `t_old` members,
    /// or has an index outside the old committee.
    InvalidQuorum,
    /// The caller is not in the quorum.
    NotInQuorum,
    /// The caller's share is a BIP-32 child, or does not belong to the old
    /// package (other key, or not its verifying share).
    ShareMismatch,
    /// The commitments are not exactly one per quorum member.
    WrongCommitmentSet,
    /// A commitment has the wrong number of coefficients, or its constant
    /// term is not `λ_dealer(Q)·X_dealer` of the old package.
    BadCommitment { dealer: PartyIndex },
    /// A fragment does not match its dealer's commitment.
    BadFragment { dealer: PartyIndex },
    /// The constant terms do not add up to the group key (an inconsistent
    /// old package).
    KeyMismatch,
    /// The new committee's keys or verifying shares are not the ones the
    /// commitments predict.
    PackageMismatch,
}

impl fmt::Display for ReshareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidParameters => write!(f, "invalid threshold parameters"),
            Self::InvalidQuorum => write!(f, "invalid quorum of old holders"),
            Self::NotInQuorum => write!(f, "this party is not in the quorum"),
            Self::ShareMismatch => write!(f, "the share does not belong to the old package"),
            Self::WrongCommitmentSet => write!(f, "not exactly one commitment per dealer"),
            Self::BadCommitment { dealer } => {
                write!(
                    f,
                    "dealer {dealer}'s commitment does not match the old package"
                )
            }
            Self::BadFragment { dealer } => {
                write!(
                    f,
                    "dealer {dealer}'s fragment does not match its commitment"
                )
            }
            Self::KeyMismatch => write!(f, "the commitments do not add up to the group key"),
            Self::PackageMismatch => {
                write!(f, "the new shares are not the ones the commitments predict")
            }
        }
    }
}

impl std::error::Error for ReshareError {}

/// A dealer's Feldman commitment to its polynomial: `coefficients[k] =
/// a_k·G`, `t_new` of them. Public; broadcast to every new party.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound(
        serialize = "C::AffinePoint: serde::Serialize",
        deserialize = "C::AffinePoint: serde::Deserialize<'de>"
    ))
)]
pub struct ReshareCommitment<C: DklsCurve> {
    /// The dealer's index in the old committee.
    pub dealer: PartyIndex,
    pub coefficients: Vec<C::AffinePoint>,
}

fn index_scalar<C: DklsCurve>(index: PartyIndex) -> C::Scalar {
    C::Scalar::from(u64::from(index.as_u8()))
}

fn checked(parameters: &Parameters) -> Result<Parameters, ReshareError> {
    // `Parameters` has public fields, so re-validate.
    Parameters::new(parameters.threshold, parameters.share_count)
        .map_err(|_| ReshareError::InvalidParameters)
}

fn validate_quorum(old: &Parameters, quorum: &[PartyIndex]) -> Result<(), ReshareError> {
    let sorted_unique = quorum.windows(2).all(|pair| pair[0] < pair[1]);
    if !sorted_unique
        || quorum.len() < usize::from(old.threshold)
        || quorum
            .iter()
            .any(|&i| i.as_u8() == 0 || i.as_u8() > old.share_count)
    {
        return Err(ReshareError::InvalidQuorum);
    }
    Ok(())
}

/// `λ_me(Q)` at 0: `Π_{k≠me} x_k / (x_k − x_me)`.
#[must_use]
pub fn lagrange_at_zero<C: DklsCurve>(quorum: &[PartyIndex], me: PartyIndex) -> C::Scalar {
    let x_me = index_scalar::<C>(me);
    let mut numerator = <C::Scalar as Field>::ONE;
    let mut denominator = <C::Scalar as Field>::ONE;
    for &other in quorum.iter().filter(|&&other| other != me) {
        let x_other = index_scalar::<C>(other);
        numerator *= x_other;
        denominator *= x_other - x_me;
    }
    // Quorum members are distinct, so the denominator is non-zero.
    numerator * denominator.invert().unwrap()
}

/// The DKG session id of the new committee's phases 2–4: binds the reshare
/// id, the old group key and every old verifying share, the old and new
/// parameters, and the quorum.
#[must_use]
pub fn session_id<C: DklsCurve>(
    reshare_id: &[u8],
    old: &PublicKeyPackage<C>,
    quorum: &[PartyIndex],
    new: &Parameters,
) -> Vec<u8> {
    let mut shares = Vec::new();
    for j in 1..=old.share_count() {
        let index = PartyIndex::new(j).expect("j >= 1");
        shares.push(j);
        if let Some(point) = old.verifying_share(index) {
            shares.extend_from_slice(&point_to_bytes::<C>(point));
        }
    }
    let quorum_bytes: Vec<u8> = quorum.iter().map(PartyIndex::as_u8).collect();
    tagged_hash(
        TAG_RESHARE_SESSION,
        &[
            reshare_id,
            &point_to_bytes::<C>(old.verifying_key()),
            &[old.threshold(), old.share_count()],
            &shares,
            &quorum_bytes,
            &[new.threshold, new.share_count],
        ],
    )
    .to_vec()
}

fn evaluate<C: DklsCurve>(coefficients: &[C::Scalar], x: C::Scalar) -> C::Scalar {
    // Horner; constant-time field arithmetic, fixed length.
    let mut value = <C::Scalar as Field>::ZERO;
    for coefficient in coefficients.iter().rev() {
        value = value * x + coefficient;
    }
    value
}

/// `Σ_k C[k]·x^k`, the commitment evaluated at `x` (public values only).
fn evaluate_commitment<C: DklsCurve>(
    coefficients: &[C::AffinePoint],
    x: C::Scalar,
) -> C::ProjectivePoint {
    let mut value = C::ProjectivePoint::identity();
    for coefficient in coefficients.iter().rev() {
        value = value * x + C::ProjectivePoint::from(*coefficient);
    }
    value
}

/// This old holder's dealing: its commitment (for every new party) and the
/// fragments `f(1), …, f(n_new)` in new-party order (fragment `j − 1` goes to
/// new party `j` only; wiped on drop).
///
/// # Errors
///
/// [`ReshareError::InvalidParameters`], [`ReshareError::InvalidQuorum`],
/// [`ReshareError::NotInQuorum`], or [`ReshareError::ShareMismatch`] if the
/// party's share is not its verifying share in `old` or is a BIP-32 child.
pub fn deal<C: DklsCurve>(
    party: &Party<C>,
    old: &PublicKeyPackage<C>,
    quorum: &[PartyIndex],
    new: &Parameters,
) -> Result<(ReshareCommitment<C>, Zeroizing<Vec<C::Scalar>>), ReshareError> {
    let old_parameters = checked(&Parameters {
        threshold: old.threshold(),
        share_count: old.share_count(),
    })?;
    let new = checked(new)?;
    validate_quorum(&old_parameters, quorum)?;
    if !quorum.contains(&party.party_index) {
        return Err(ReshareError::NotInQuorum);
    }
    let own_point = (C::ProjectivePoint::generator() * party.poly_point).to_affine();
    if party.derivation_data.depth != 0
        || party.pk != *old.verifying_key()
        || !old.verify_share(party.party_index, &own_point)
    {
        return Err(ReshareError::ShareMismatch);
    }

    let lambda = lagrange_at_zero::<C>(quorum, party.party_index);
    let mut rng = rng::get_rng();
    let mut coefficients = Zeroizing::new(Vec::with_capacity(usize::from(new.threshold)));
    coefficients.push(party.poly_point * lambda);
    for _ in 1..new.threshold {
        coefficients.push(<C::Scalar as Field>::random(&mut rng));
    }
    let commitment = ReshareCommitment {
        dealer: party.party_index,
        coefficients: coefficients
            .iter()
            .map(|a| (C::ProjectivePoint::generator() * a).to_affine())
            .collect(),
    };
    let mut fragments = Zeroizing::new(Vec::with_capacity(usize::from(new.share_count)));
    for j in 1..=new.share_count {
        fragments.push(evaluate::<C>(&coefficients, C::Scalar::from(u64::from(j))));
    }
    Ok((commitment, fragments))
}

/// Checks dealer `commitment.dealer`'s fragment for new party `receiver`:
/// `fragment·G = Σ_k C[k]·receiver^k`.
///
/// # Errors
///
/// [`ReshareError::BadFragment`] naming the dealer.
pub fn verify_fragment<C: DklsCurve>(
    commitment: &ReshareCommitment<C>,
    receiver: PartyIndex,
    fragment: &C::Scalar,
) -> Result<(), ReshareError> {
    let expected = evaluate_commitment::<C>(&commitment.coefficients, index_scalar::<C>(receiver));
    let got = C::ProjectivePoint::generator() * fragment;
    if bool::from(group::Group::is_identity(&(expected - got))) {
        Ok(())
    } else {
        Err(ReshareError::BadFragment {
            dealer: commitment.dealer,
        })
    }
}

/// Checks the whole set of commitments against the old package and returns
/// the new committee's package: the same group key, `new`'s parameters, and
/// verifying shares `S_j = Σ_i C_i(j)`.
///
/// `commitments` must hold exactly one commitment from each member of
/// `quorum` (any order), each with `new.threshold` coefficients and constant
/// term `λ_i(Q)·X_i`; their constant terms must add up to the group key.
///
/// # Errors
///
/// [`ReshareError::InvalidParameters`], [`ReshareError::InvalidQuorum`],
/// [`ReshareError::WrongCommitmentSet`], [`ReshareError::BadCommitment`]
/// naming the first dealer whose commitment is wrong, or
/// [`ReshareError::KeyMismatch`].
pub fn check_commitments<C: DklsCurve>(
    old: &PublicKeyPackage<C>,
    quorum: &[PartyIndex],
    new: &Parameters,
    commitments: &[ReshareCommitment<C>],
) -> Result<PublicKeyPackage<C>, ReshareError> {
    let old_parameters = checked(&Parameters {
        threshold: old.threshold(),
        share_count: old.share_count(),
    })?;
    let new = checked(new)?;
    validate_quorum(&old_parameters, quorum)?;
    let mut sorted: Vec<&ReshareCommitment<C>> = commitments.iter().collect();
    sorted.sort_by_key(|c| c.dealer);
    if sorted.len() != quorum.len() || sorted.iter().zip(quorum).any(|(c, &i)| c.dealer != i) {
        return Err(ReshareError::WrongCommitmentSet);
    }
    let mut key = C::ProjectivePoint::identity();
    for commitment in &sorted {
        let dealer = commitment.dealer;
        let bad = ReshareError::BadCommitment { dealer };
        if commitment.coefficients.len() != usize::from(new.threshold) {
            return Err(bad);
        }
        let share = old.verifying_share(dealer).ok_or(bad.clone())?;
        let expected = C::ProjectivePoint::from(*share) * lagrange_at_zero::<C>(quorum, dealer);
        let constant = C::ProjectivePoint::from(commitment.coefficients[0]);
        if !bool::from(group::Group::is_identity(&(expected - constant))) {
            return Err(bad);
        }
        key += constant;
    }
    if key.to_affine() != *old.verifying_key() {
        return Err(ReshareError::KeyMismatch);
    }
    let mut shares = std::collections::BTreeMap::new();
    for j in 1..=new.share_count {
        let index = PartyIndex::new(j).expect("j >= 1");
        let x = index_scalar::<C>(index);
        let mut point = C::ProjectivePoint::identity();
        for commitment in &sorted {
            point += evaluate_commitment::<C>(&commitment.coefficients, x);
        }
        shares.insert(index, point.to_affine());
    }
    Ok(PublicKeyPackage::new(*old.verifying_key(), shares, new))
}

/// Completes a reshare after the DKG phases: `party` and `package` are what
/// DKG phase 4 returned, `expected` what [`check_commitments`] returned.
/// Refuses a result that is not the predicted sharing, and gives the party
/// the wallet's chain code in place of the DKG's fresh one.
///
/// # Errors
///
/// [`ReshareError::PackageMismatch`].
pub fn finish<C: DklsCurve>(
    mut party: Party<C>,
    package: &PublicKeyPackage<C>,
    expected: &PublicKeyPackage<C>,
    chain_code: &ChainCode,
) -> Result<Party<C>, ReshareError> {
    let same_shares = (1..=expected.share_count()).all(|j| {
        let index = PartyIndex::new(j).expect("j >= 1");
        package.verifying_share(index).is_some()
            && package.verifying_share(index) == expected.verifying_share(index)
    });
    // `party` zeroizes on drop, so an early return wipes it.
    if package.verifying_key() != expected.verifying_key()
        || party.pk != *expected.verifying_key()
        || package.threshold() != expected.threshold()
        || package.share_count() != expected.share_count()
        || party.parameters.threshold != expected.threshold()
        || party.parameters.share_count != expected.share_count()
        || !same_shares
    {
        return Err(ReshareError::PackageMismatch);
    }
    party.derivation_data.chain_code = *chain_code;
    Ok(party)
}
