//! The fork's word-level OT-extension arithmetic and incremental hashing
//! must compute exactly what upstream's bit-level code and one-shot hashes
//! compute (upstream's versions are kept in the fork as references).

use dkls23_core_fork::utilities::hashes::{
    tagged_hash, tagged_hash_as_scalar, tagged_hash_as_scalar_from, TaggedHasher,
};
use dkls23_core_fork::utilities::oracle_tags::{TAG_OTE_PRG, TAG_OTE_RANDOMIZE};
use dkls23_core_fork::utilities::ot::extension::{
    cut_and_transpose, cut_and_transpose_bitwise, field_mul, field_mul_bitwise, gf_from_bytes,
    gf_mul, gf_to_bytes, FieldElement, PRGOutput, Prg, RandomizeOracle, BATCH_SIZE, KAPPA,
};
use dkls23_core_fork::utilities::sha256x4::Midstate;
use k256::Secp256k1;
use sha2::{Digest, Sha256};

/// splitmix64: reproducible test inputs without an RNG dependency.
struct Inputs(u64);
impl Inputs {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        core::array::from_fn(|_| self.next() as u8)
    }
}

#[test]
fn word_level_field_mul_matches_bit_level() {
    let mut inputs = Inputs(1);
    let mut cases: Vec<(FieldElement, FieldElement)> =
        (0..2000).map(|_| (inputs.bytes(), inputs.bytes())).collect();
    // Edges: zero, one, all ones, single high bits (most reduction work).
    let mut one = [0u8; 26];
    one[0] = 1;
    let mut top = [0u8; 26];
    top[25] = 0x80;
    for (a, b) in [
        ([0u8; 26], [0xFFu8; 26]),
        (one, [0xFFu8; 26]),
        ([0xFFu8; 26], [0xFFu8; 26]),
        (top, top),
        (top, [0xFFu8; 26]),
    ] {
        cases.push((a, b));
        cases.push((b, a));
    }
    for (a, b) in &cases {
        let expected = field_mul_bitwise(a, b).unwrap();
        assert_eq!(field_mul(a, b).unwrap(), expected, "a={a:02x?} b={b:02x?}");
        assert_eq!(gf_to_bytes(&gf_mul(&gf_from_bytes(a), &gf_from_bytes(b))), expected);
    }
    // Field laws the check relies on: one is neutral, the product commutes.
    for (a, b) in cases.iter().take(100) {
        assert_eq!(field_mul(a, &one).unwrap(), *a);
        assert_eq!(field_mul(a, b).unwrap(), field_mul(b, a).unwrap());
    }
    assert!(field_mul(&[0u8; 25], &[0u8; 26]).is_err());
}

#[test]
fn word_level_transpose_matches_bit_level() {
    let mut inputs = Inputs(2);
    for round in 0..20 {
        let matrix: Vec<PRGOutput> = (0..KAPPA)
            .map(|i| match round {
                0 => [0xFF; 78],
                1 => [if i % 2 == 0 { 0x01 } else { 0x80 }; 78],
                _ => inputs.bytes(),
            })
            .collect();
        assert_eq!(
            cut_and_transpose(&matrix).unwrap(),
            cut_and_transpose_bitwise(&matrix).unwrap()
        );
    }
    assert!(cut_and_transpose(&vec![[0u8; 78]; KAPPA as usize - 1]).is_err());
}

#[test]
fn incremental_tagged_hash_matches_one_shot() {
    let mut inputs = Inputs(3);
    for len in [0usize, 1, 31, 32, 55, 56, 63, 64, 65, 127, 128, 200, 1000, 20_000] {
        let a: Vec<u8> = (0..len).map(|_| inputs.next() as u8).collect();
        let b: Vec<u8> = (0..(len / 3 + 5)).map(|_| inputs.next() as u8).collect();
        let expected = tagged_hash(b"some/tag", &[&a, &b, &a]);
        let prefix = TaggedHasher::new(b"some/tag").component(&a);
        assert_eq!(prefix.finish_with(&[&b, &a]), expected);
        assert_eq!(prefix.clone().component(&b).finish_with(&[&a]), expected);
        let split = a.len() / 2;
        let mut split_length = prefix.clone();
        split_length.absorb_length(b.len());
        split_length.absorb_raw(&b[..1]);
        split_length.absorb_raw(&b[1..]);
        assert_eq!(split_length.component(&a).finish(), expected);
        assert_eq!(
            TaggedHasher::new(b"some/tag")
                .component_parts([&a[..split], &a[split..]])
                .component_parts([&b[..2], &b[2..]])
                .component(&a)
                .finish(),
            expected
        );
        assert_eq!(
            tagged_hash_as_scalar_from::<Secp256k1>(&prefix, &[&b, &a]),
            tagged_hash_as_scalar::<Secp256k1>(b"some/tag", &[&a, &b, &a])
        );
    }
}

#[test]
fn four_way_sha256_matches_sha2() {
    let mut inputs = Inputs(4);
    for prefix_len in [0usize, 1, 10, 63, 64, 65, 74, 128, 130] {
        let prefix: Vec<u8> = (0..prefix_len).map(|_| inputs.next() as u8).collect();
        let midstate = Midstate::new(&prefix);
        for tail_len in [0usize, 1, 46, 51, 55, 56, 60, 64, 100] {
            if (prefix_len % 64 + tail_len + 9).div_ceil(64) > 3 {
                continue;
            }
            let tails: Vec<Vec<u8>> =
                (0..4).map(|_| (0..tail_len).map(|_| inputs.next() as u8).collect()).collect();
            let digests = midstate.finish_x4(core::array::from_fn(|k| tails[k].as_slice()));
            for (tail, digest) in tails.iter().zip(digests) {
                let expected: [u8; 32] = Sha256::digest([&prefix[..], tail].concat()).into();
                assert_eq!(digest, expected, "prefix {prefix_len} tail {tail_len}");
            }
        }
    }
}

#[test]
fn four_way_ote_oracles_match_one_at_a_time() {
    let mut inputs = Inputs(5);
    let sid: [u8; 32] = inputs.bytes();
    let salt: [u8; 32] = inputs.bytes();
    let seeds: Vec<[u8; 32]> = (0..KAPPA).map(|_| inputs.bytes()).collect();
    let prg = Prg::new(&sid);
    let expanded = prg.expand_all(&seeds, true);
    assert_eq!(expanded, prg.expand_all(&seeds, false));
    // Row 7 as upstream builds it: three chunks of the tagged hash, cut.
    let mut row7 = Vec::new();
    for count in 0u16..3 {
        row7.extend_from_slice(&tagged_hash(
            TAG_OTE_PRG,
            &[&sid, &7u16.to_be_bytes(), &count.to_be_bytes(), &seeds[7]],
        ));
    }
    assert_eq!(expanded[7][..], row7[..78]);

    let rows: Vec<[u8; 32]> = (0..BATCH_SIZE).map(|_| inputs.bytes()).collect();
    let oracle = RandomizeOracle::new(&sid, &salt);
    for iteration in [0u8, 3] {
        let four = oracle.hash_rows::<Secp256k1>(iteration, &rows, true);
        assert_eq!(four, oracle.hash_rows::<Secp256k1>(iteration, &rows, false));
        // Odd counts leave a remainder for the one-at-a-time path.
        assert_eq!(oracle.hash_rows::<Secp256k1>(iteration, &rows[..7], true), four[..7]);
        for j in [0usize, 1, 200, 415] {
            assert_eq!(
                four[j],
                tagged_hash_as_scalar::<Secp256k1>(
                    TAG_OTE_RANDOMIZE,
                    &[&sid, &salt, &(j as u16).to_be_bytes(), &[iteration], &rows[j]],
                )
            );
        }
    }
}

/// Scalars for the curve tests: small, large, edges (0, 1, -1, 2^128) and
/// pseudo-random ones.
fn test_scalars(inputs: &mut Inputs, n: usize) -> Vec<k256::Scalar> {
    use k256::elliptic_curve::ff::PrimeField;
    use k256::elliptic_curve::ops::Reduce;
    let mut v = vec![
        k256::Scalar::ZERO,
        k256::Scalar::ONE,
        -k256::Scalar::ONE,
        k256::Scalar::from_u128(u128::MAX) + k256::Scalar::ONE,
        k256::Scalar::from_u128(0x8888_8888_8888_8888_8888_8888_8888_8888),
    ];
    while v.len() < n {
        let b: [u8; 32] = inputs.bytes();
        v.push(<k256::Scalar as Reduce<k256::FieldBytes>>::reduce(&b.into()));
    }
    v
}

#[test]
fn fixed_base_table_matches_generic_multiplication() {
    use dkls23_core_fork::utilities::arith::FixedBaseTable;
    use k256::{AffinePoint, ProjectivePoint};
    let mut inputs = Inputs(7);
    let p: AffinePoint = (ProjectivePoint::GENERATOR * k256::Scalar::from(12345u64)).into();
    let table = FixedBaseTable::<Secp256k1>::new(&p);
    for k in test_scalars(&mut inputs, 300) {
        assert_eq!(table.mul(&k), ProjectivePoint::from(p) * k);
    }
}

#[test]
fn pippenger_msm_matches_sum_of_products() {
    use dkls23_core_fork::utilities::arith::msm_vartime;
    use k256::{AffinePoint, ProjectivePoint};
    let mut inputs = Inputs(9);
    for n in [0usize, 1, 2, 5, 40, 700] {
        let scalars = test_scalars(&mut inputs, n.max(5))[..n].to_vec();
        let points: Vec<AffinePoint> = test_scalars(&mut inputs, n.max(5))[..n]
            .iter()
            .map(|k| (ProjectivePoint::GENERATOR * k).into())
            .collect();
        let expected = points
            .iter()
            .zip(&scalars)
            .fold(ProjectivePoint::IDENTITY, |acc, (p, k)| acc + ProjectivePoint::from(*p) * k);
        assert_eq!(msm_vartime::<Secp256k1>(&points, &scalars), expected, "n = {n}");
    }
}
