//! Re-keying: split an existing secp256k1 secret key (and, optionally, the
//! BIP-32 chain code that went with it) into a t-of-n sharing, locally, with
//! the library's trusted-dealer `re_key`.
//!
//! The dealer sees every share and every pairwise OT seed it deals, so the
//! result is only as secret as the dealer's memory: whoever runs this must
//! hand each share to its holder over a confidential channel, wipe its own
//! copies, and have the holders run a complete refresh (all n) at once. The
//! refresh re-randomises the shares and rebuilds the OT state, so what the
//! dealer knew no longer combines with what the holders keep.
//!
//! Inputs are checked before the library sees them: `re_key` panics on a
//! zero key, and a 32-byte string at or above the group order is not a key.

use crate::dkg::check_params;
use crate::error::{Code, Error, Result};
use crate::lib_core::protocols::derivation::ChainCode;
use crate::lib_core::protocols::re_key::re_key;
use crate::share::KeyShare;
use crate::wire::session_id;
use k256::elliptic_curve::PrimeField;
use k256::{FieldBytes, Scalar, Secp256k1};
use zeroize::{Zeroize, Zeroizing};

/// Length of a secret key and of a chain code.
pub const SECRET_KEY_LEN: usize = 32;
pub const CHAIN_CODE_LEN: usize = 32;

fn bad(m: &str) -> Error {
    Error::new(Code::InvalidParameters, m)
}

/// Parses a big-endian secret key in `1..order`.
pub fn secret_scalar(bytes: &[u8]) -> Result<Zeroizing<Scalar>> {
    if bytes.len() != SECRET_KEY_LEN {
        return Err(bad("secret key must be 32 bytes"));
    }
    let mut repr = FieldBytes::default();
    repr.copy_from_slice(bytes);
    let parsed: Option<Scalar> = Scalar::from_repr(repr).into();
    repr.zeroize();
    let scalar =
        Zeroizing::new(parsed.ok_or_else(|| bad("secret key is not below the group order"))?);
    if bool::from(scalar.is_zero()) {
        return Err(bad("secret key is zero"));
    }
    Ok(scalar)
}

/// Splits `secret_key` into `parties` shares with threshold `threshold`,
/// in party order (share k has index k + 1), all at generation 0 under the
/// session id `session` (32 bytes). Without `chain_code` a random one is drawn.
pub fn rekey(
    threshold: u8,
    parties: u8,
    secret_key: &[u8],
    chain_code: Option<&[u8]>,
    session: &[u8],
) -> Result<Vec<KeyShare>> {
    let params = check_params(threshold, parties, 1)?;
    let session = session_id(session)?;
    let secret = secret_scalar(secret_key)?;
    let chain: Option<Zeroizing<ChainCode>> = match chain_code {
        None => None,
        Some(c) => {
            let c: ChainCode = c.try_into().map_err(|_| bad("chain code must be 32 bytes"))?;
            Some(Zeroizing::new(c))
        }
    };
    let (mut dealt, package) =
        re_key::<Secp256k1>(&params, &session, &secret, chain.as_deref().copied(), |_| {
            String::new()
        });
    let mut shares = Vec::with_capacity(dealt.len());
    // Parties zeroize on drop, so the ones not yet moved out are wiped on any
    // early return.
    for party in dealt.drain(..) {
        let share = KeyShare { party, package: package.clone(), generation: 0 };
        share.validate()?;
        shares.push(share);
    }
    Ok(shares)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: Result<Vec<KeyShare>>) -> Option<Code> {
        r.err().map(|e| e.code)
    }

    #[test]
    fn refuses_keys_that_are_not_keys() {
        let sid = [7u8; 32];
        let bad = Some(Code::InvalidParameters);
        for key in [&[0u8; 32][..], &[0xffu8; 32][..], &[1u8; 31][..]] {
            assert_eq!(code(rekey(2, 3, key, None, &sid)), bad);
        }
        let mut one = [0u8; 32];
        one[31] = 1;
        assert_eq!(code(rekey(1, 3, &one, None, &sid)), bad);
        assert_eq!(code(rekey(2, 3, &one, Some(&[0u8; 31]), &sid)), bad);
        assert_eq!(code(rekey(2, 3, &one, None, &sid[..31])), bad);
        assert_eq!(rekey(2, 3, &one, None, &sid).map(|s| s.len()).ok(), Some(3));
    }
}
