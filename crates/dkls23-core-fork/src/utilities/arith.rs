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

/// The little-endian bytes of a scalar's canonical representation (`ff`
/// leaves the byte order of `to_repr` to the curve: big-endian for k256 and
/// p256; detected from the representation of one).
fn scalar_le_bytes<C: DklsCurve>(k: &Sc<C>) -> Vec<u8> {
    use ff::{Field, PrimeField};
    let mut bytes = AsRef::<[u8]>::as_ref(&k.to_repr()).to_vec();
    let one = <Sc<C> as Field>::ONE.to_repr();
    if AsRef::<[u8]>::as_ref(&one).first() != Some(&1) {
        bytes.reverse();
    }
    bytes
}

/// Signed digits of radix 2^c, least significant first, each in
/// [-2^(c-1), 2^(c-1)], for a little-endian number of `bytes`.
/// Variable-time (public scalars only).
fn signed_digits_vartime(bytes: &[u8], c: usize, count: usize) -> Vec<i32> {
    let bit = |i: usize| -> u32 {
        bytes
            .get(i / 8)
            .map_or(0, |b| u32::from((b >> (i % 8)) & 1))
    };
    let half = 1i32 << (c - 1);
    let mut carry = 0i32;
    (0..count)
        .map(|w| {
            let mut window = 0u32;
            for j in 0..c {
                window |= bit(w * c + j) << j;
            }
            let mut d = window as i32 + carry;
            carry = 0;
            if d > half {
                d -= 1 << c;
                carry = 1;
            }
            d
        })
        .collect()
}

/// `sum(k_i * P_i)` by Pippenger's bucket method with signed digits (about
/// n·256/c + 2^c·256/c additions, against ~n·100 for the w-NAF
/// multi-exponentiation the curve crates offer without GLV tables).
/// Variable-time: public inputs only (batch verification).
pub fn msm_vartime<C: DklsCurve>(points: &[Aff<C>], scalars: &[Sc<C>]) -> Proj<C> {
    assert_eq!(points.len(), scalars.len(), "one scalar per point");
    let n = points.len();
    let bits = 8 * AsRef::<[u8]>::as_ref(&<Sc<C> as ff::PrimeField>::Repr::default()).len();
    // Window size minimising (windows) x (n + buckets), windows including the
    // final carry.
    let cost = |c: usize| (bits / c + 1) * (n + (1usize << (c - 1)) * 2);
    let c = (2..=16).min_by_key(|&c| cost(c)).unwrap_or(4);
    let windows = bits / c + 1;
    let digits: Vec<Vec<i32>> = scalars
        .iter()
        .map(|k| signed_digits_vartime(&scalar_le_bytes::<C>(k), c, windows))
        .collect();
    let mut buckets = vec![<Proj<C> as Group>::identity(); 1usize << (c - 1)];
    let mut acc = <Proj<C> as Group>::identity();
    for w in (0..windows).rev() {
        for _ in 0..c {
            acc = acc.double();
        }
        for b in buckets.iter_mut() {
            *b = <Proj<C> as Group>::identity();
        }
        for (p, d) in points.iter().zip(&digits) {
            let d = d[w];
            if d > 0 {
                buckets[(d - 1) as usize] += p;
            } else if d < 0 {
                buckets[(-d - 1) as usize] -= p;
            }
        }
        // sum_b (b+1) * bucket_b by running sums.
        let mut running = <Proj<C> as Group>::identity();
        let mut total = <Proj<C> as Group>::identity();
        for b in buckets.iter().rev() {
            running += b;
            total += running;
        }
        acc += total;
    }
    acc
}

/// Multiples of one public point `P` for repeated constant-time products
/// `k * P` with secret scalars `k` (the comb k256 uses for its generator):
/// `rows[j][m - 1] = m * 16^j * P` for m = 1..8. A product is then one
/// table selection and one addition per signed radix-16 digit of `k`, with
/// no doublings; worth it from a few dozen products on (building the table
/// costs about as much as four generic multiplications).
pub struct FixedBaseTable<C: DklsCurve> {
    rows: Vec<[Proj<C>; 8]>,
}

impl<C: DklsCurve> FixedBaseTable<C> {
    /// The table for `p`. Variable-time in `p` only, which must be public.
    pub fn new(p: &Aff<C>) -> Self {
        let digits =
            2 * AsRef::<[u8]>::as_ref(&<Sc<C> as ff::PrimeField>::Repr::default()).len() + 1;
        let mut base = Proj::<C>::from(*p);
        let mut rows = Vec::with_capacity(digits);
        for _ in 0..digits {
            let mut row = [base; 8];
            for m in 1..8 {
                row[m] = row[m - 1] + base;
            }
            base = row[7].double();
            rows.push(row);
        }
        FixedBaseTable { rows }
    }

    /// `k * P`. Constant-time in `k`: the recoding into signed digits in
    /// [-8, 8] is branch-free arithmetic, every selection reads all eight
    /// entries of its row (`subtle`), and every digit costs one addition
    /// (complete formulas, the identity included).
    pub fn mul(&self, k: &Sc<C>) -> Proj<C> {
        use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
        let mut bytes = scalar_le_bytes::<C>(k);
        let mut digits = vec![0i8; self.rows.len()];
        for (i, b) in bytes.iter().enumerate() {
            digits[2 * i] = (b & 15) as i8;
            digits[2 * i + 1] = (b >> 4) as i8;
        }
        for i in 0..digits.len() - 1 {
            let carry = (digits[i] + 8) >> 4;
            digits[i] -= carry << 4;
            digits[i + 1] += carry;
        }
        let mut acc = <Proj<C> as Group>::identity();
        for (row, &d) in self.rows.iter().zip(&digits) {
            let negative = (d >> 7) as u8 & 1;
            let abs = ((d ^ (d >> 7)) - (d >> 7)) as u8;
            let mut t = <Proj<C> as Group>::identity();
            for (m, entry) in row.iter().enumerate() {
                t.conditional_assign(entry, abs.ct_eq(&(m as u8 + 1)));
            }
            let neg_t = -t;
            t.conditional_assign(&neg_t, Choice::from(negative));
            acc += t;
        }
        // The digits and bytes are the secret scalar's.
        zeroize::Zeroize::zeroize(&mut digits);
        zeroize::Zeroize::zeroize(&mut bytes);
        acc
    }
}
