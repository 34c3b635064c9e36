//! Fork addition: the group operations the proofs and the base OT need,
//! each named for whether it may see secrets.
//!
//! * Constant-time (`g_mul`, `lincomb2`, `normalize`): for anything that
//!   involves a secret scalar or a point whose choice depends on a secret bit
//!   (witnesses, nonces, simulated-proof values, OT choices). They use the
//!   curve's constant-time precomputed generator table and Shamir's trick,
//!   which are faster than separate generic multiplications but no less
//!   constant-time.
//! * Variable-time (`*_vartime`): only where every input is public, i.e. in
//!   the verification of proofs received from other parties (all their
//!   values are on the wire) and comparisons of public points.

use elliptic_curve::ops::{LinearCombination, MulByGeneratorVartime};
use group::{Curve as GroupCurve, Group};

use crate::curve::DklsCurve;

type Proj<C> = <C as elliptic_curve::CurveArithmetic>::ProjectivePoint;
type Aff<C> = <C as elliptic_curve::CurveArithmetic>::AffinePoint;
type Sc<C> = <C as elliptic_curve::CurveArithmetic>::Scalar;

/// `k * G` through the precomputed generator table. Constant-time.
pub(crate) fn g_mul<C: DklsCurve>(k: &Sc<C>) -> Proj<C> {
    <Proj<C> as Group>::mul_by_generator(k)
}

/// `a * P + b * Q` with shared doublings. Constant-time.
pub(crate) fn lincomb2<C: DklsCurve>(p: &Aff<C>, a: &Sc<C>, q: &Aff<C>, b: &Sc<C>) -> Proj<C> {
    <Proj<C> as LinearCombination<[(Proj<C>, Sc<C>); 2]>>::lincomb(&[
        (Proj::<C>::from(*p), *a),
        (Proj::<C>::from(*q), *b),
    ])
}

/// `a * G + b * P`. Variable-time: public inputs only.
pub(crate) fn g_mul_add_vartime<C: DklsCurve>(a: &Sc<C>, b: &Sc<C>, p: &Aff<C>) -> Proj<C> {
    <Proj<C> as MulByGeneratorVartime>::mul_by_generator_and_mul_add_vartime(
        a,
        b,
        &Proj::<C>::from(*p),
    )
}

/// `a * P + b * Q`. Variable-time: public inputs only.
pub(crate) fn lincomb2_vartime<C: DklsCurve>(
    p: &Aff<C>,
    a: &Sc<C>,
    q: &Aff<C>,
    b: &Sc<C>,
) -> Proj<C> {
    <Proj<C> as LinearCombination<[(Proj<C>, Sc<C>); 2]>>::lincomb_vartime(&[
        (Proj::<C>::from(*p), *a),
        (Proj::<C>::from(*q), *b),
    ])
}

/// Whether a projective result equals an affine point, without the field
/// inversion of converting it (one mixed addition instead).
pub(crate) fn eq_affine<C: DklsCurve>(p: &Proj<C>, a: &Aff<C>) -> bool {
    bool::from((*p - Proj::<C>::from(*a)).is_identity())
}

/// Converts `N` points to affine form with one shared field inversion.
/// Constant-time (for secret-dependent points too).
pub(crate) fn normalize<C: DklsCurve, const N: usize>(points: [Proj<C>; N]) -> [Aff<C>; N] {
    let mut out = [<Aff<C> as group::CurveAffine>::identity(); N];
    <Proj<C> as GroupCurve>::batch_normalize(&points, &mut out);
    out
}

/// [`normalize`] for a vector.
pub(crate) fn normalize_vec<C: DklsCurve>(points: &[Proj<C>]) -> Vec<Aff<C>> {
    let mut out = vec![<Aff<C> as group::CurveAffine>::identity(); points.len()];
    <Proj<C> as GroupCurve>::batch_normalize(points, &mut out);
    out
}

/// Whether `sum(k_i * P_i)` is the identity: one multi-scalar
/// multiplication. Variable-time: public inputs only (batch verification).
pub(crate) fn sums_to_identity_vartime<C: DklsCurve>(terms: &[(Proj<C>, Sc<C>)]) -> bool {
    bool::from(<Proj<C> as LinearCombination<[(Proj<C>, Sc<C>)]>>::lincomb_vartime(terms).is_identity())
}
