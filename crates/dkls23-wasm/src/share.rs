//! A party's key share (secret; lives only in the enclave) and the public
//! package every node and client may hold.

use crate::error::{Code, Error, Result};
use crate::lib_core::protocols::derivation::{parse_path, ChainCode, DerivData};
use crate::lib_core::protocols::PartyIndex;
use k256::elliptic_curve::sec1::ToSec1Point;
use k256::{AffinePoint, ProjectivePoint, Scalar};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use zeroize::Zeroizing;

pub type Party = crate::lib_core::Party;
pub type Package = crate::lib_core::PublicKeyPackage;

const SHARE_MAGIC: &[u8; 4] = b"DKS\x01";
const PACKAGE_MAGIC: &[u8; 4] = b"DKP\x01";
/// A share serializes to 289 + 52,371 x (n - 1) bytes (OT and multiplication
/// state per counterparty; measured up to 9 parties by bench/storage.ts), so
/// 16 parties take 785,854 by that formula.
pub const MAX_SHARE_LEN: usize = 1024 * 1024;
pub const MAX_PACKAGE_LEN: usize = 64 * 1024;
pub const MAX_PATH_LEN: usize = 256;
pub const MAX_PATH_DEPTH: usize = 32;

/// A key share: the library's party state, the public package it belongs to,
/// and its generation (0 after DKG, +1 per refresh).
pub struct KeyShare {
    pub party: Party,
    pub package: Package,
    pub generation: u32,
}

#[derive(Serialize)]
struct ShareOut<'a> {
    generation: u32,
    party: &'a Party,
    package: &'a Package,
}

#[derive(Deserialize)]
struct ShareIn {
    generation: u32,
    party: Party,
    package: Package,
}

/// What is public about a key: the package (group key, every party's
/// verifying share, t and n), the BIP-32 chain code and the generation.
#[derive(Clone, Serialize, Deserialize)]
pub struct PublicPackage {
    pub package: Package,
    pub chain_code: ChainCode,
    pub generation: u32,
}

pub fn compressed(p: &AffinePoint) -> [u8; 33] {
    let enc = p.to_sec1_point(true);
    let mut out = [0u8; 33];
    out.copy_from_slice(enc.as_bytes());
    out
}

pub fn g_times(s: &Scalar) -> AffinePoint {
    (ProjectivePoint::GENERATOR * s).to_affine()
}

fn invalid(m: impl Into<String>) -> Error {
    Error::new(Code::InvalidShare, m)
}

/// Bounded decode of `magic || postcard body` with nothing after the body.
fn decode_framed<T: DeserializeOwned>(
    bytes: &[u8],
    magic: &[u8; 4],
    max: usize,
    what: &str,
) -> Result<T> {
    if bytes.len() > max {
        return Err(invalid(format!("{what} exceeds the size limit")));
    }
    if bytes.len() < 4 || &bytes[..4] != magic {
        return Err(invalid(format!("not a {what} (bad magic or version)")));
    }
    let (v, rest) = postcard::take_from_bytes::<T>(&bytes[4..])
        .map_err(|e| invalid(format!("{what} does not decode: {e}")))?;
    if !rest.is_empty() {
        return Err(invalid(format!("{what} has trailing bytes")));
    }
    Ok(v)
}

impl KeyShare {
    pub fn index(&self) -> u8 {
        self.party.party_index.as_u8()
    }

    pub fn threshold(&self) -> u8 {
        self.party.parameters.threshold
    }

    pub fn share_count(&self) -> u8 {
        self.party.parameters.share_count
    }

    pub fn public_key(&self) -> [u8; 33] {
        compressed(&self.party.pk)
    }

    pub fn public_package(&self) -> PublicPackage {
        PublicPackage {
            package: self.package.clone(),
            chain_code: self.party.derivation_data.chain_code,
            generation: self.generation,
        }
    }

    /// Every consistency check we can make without the other parties. A share
    /// that passes belongs to the package it carries.
    pub fn validate(&self) -> Result<()> {
        let p = &self.party;
        let (t, n, me) = (p.parameters.threshold, p.parameters.share_count, p.party_index.as_u8());
        if n > crate::wire::MAX_PARTIES || t < 2 || t > n || me == 0 || me > n {
            return Err(invalid("share parameters out of range"));
        }
        if self.package.threshold() != t || self.package.share_count() != n {
            return Err(invalid("share and public package disagree on t or n"));
        }
        if p.pk == identity() || *self.package.verifying_key() != p.pk {
            return Err(invalid("share public key does not match the package"));
        }
        if !self.package.verify_share(p.party_index, &g_times(&p.poly_point)) {
            return Err(invalid("share does not match its verifying share in the package"));
        }
        if p.derivation_data.pk != p.pk || p.derivation_data.poly_point != p.poly_point {
            return Err(invalid("share derivation data is inconsistent"));
        }
        for j in 1..=n {
            let pj = PartyIndex::new(j).map_err(|_| invalid("bad index"))?;
            if self.package.verifying_share(pj).is_none() {
                return Err(invalid(format!("package lacks party {j}'s verifying share")));
            }
            let has = p.mul_senders.contains_key(&pj) && p.mul_receivers.contains_key(&pj);
            if (j == me) == has {
                return Err(invalid(format!(
                    "share multiplication state for party {j} is inconsistent"
                )));
            }
        }
        if p.mul_senders.len() != (n - 1) as usize || p.mul_receivers.len() != (n - 1) as usize {
            return Err(invalid("share multiplication state has extra entries"));
        }
        Ok(())
    }

    /// Opaque serialization, meant only to be sealed inside the enclave.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>> {
        let body =
            ShareOut { generation: self.generation, party: &self.party, package: &self.package };
        // Sized up front so postcard never reallocates and leaves an
        // unzeroized copy of the share behind in freed memory.
        let mut buf = Zeroizing::new(Vec::with_capacity(MAX_SHARE_LEN));
        buf.extend_from_slice(SHARE_MAGIC);
        let out = postcard::to_extend(&body, std::mem::take(&mut *buf))
            .map_err(|e| invalid(format!("cannot encode share: {e}")))?;
        Ok(Zeroizing::new(out))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<KeyShare> {
        let s: ShareIn = decode_framed(bytes, SHARE_MAGIC, MAX_SHARE_LEN, "key share")?;
        let share = KeyShare { party: s.party, package: s.package, generation: s.generation };
        share.validate()?;
        Ok(share)
    }

    /// Non-hardened BIP-32 child share along `path` (e.g. "m/0/7").
    pub fn derive(&self, path: &str) -> Result<KeyShare> {
        let steps = checked_path(path)?;
        let party = self
            .party
            .derive_from_path(path, |_| String::new())
            .map_err(|e| Error::new(Code::Derivation, e.description))?;
        let package = derive_package(
            &self.package,
            &self.party.derivation_data.chain_code,
            &self.party.pk,
            &steps,
        )?;
        Ok(KeyShare { party, package, generation: self.generation })
    }
}

fn checked_path(path: &str) -> Result<Vec<u32>> {
    if path.len() > MAX_PATH_LEN {
        return Err(Error::new(Code::InvalidParameters, "derivation path is too long"));
    }
    let steps = parse_path(path).map_err(|e| {
        Error::new(Code::InvalidParameters, format!("derivation path {path:?}: {}", e.description))
    })?;
    if steps.len() > MAX_PATH_DEPTH {
        return Err(Error::new(Code::InvalidParameters, "derivation path is too deep"));
    }
    Ok(steps)
}

fn public_deriv(pk: &AffinePoint, chain_code: &ChainCode) -> DerivData<k256::Secp256k1> {
    // Public derivation never touches the secret half; zero stands in for it.
    DerivData {
        depth: 0,
        child_number: 0,
        parent_fingerprint: [0; 4],
        poly_point: Scalar::ZERO,
        pk: *pk,
        chain_code: *chain_code,
    }
}

fn derive_package(
    pkg: &Package,
    chain_code: &ChainCode,
    pk: &AffinePoint,
    steps: &[u32],
) -> Result<Package> {
    let mut cur = public_deriv(pk, chain_code);
    let mut package = pkg.clone();
    for &n in steps {
        package = package
            .derive_child(&cur.chain_code, n)
            .map_err(|e| Error::new(Code::Derivation, e.description))?;
        cur = cur.derive_child(n).map_err(|e| Error::new(Code::Derivation, e.description))?;
    }
    Ok(package)
}

impl PublicPackage {
    pub fn public_key(&self) -> [u8; 33] {
        compressed(self.package.verifying_key())
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        postcard::to_extend(self, PACKAGE_MAGIC.to_vec())
            .map_err(|e| invalid(format!("cannot encode package: {e}")))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<PublicPackage> {
        let p: PublicPackage =
            decode_framed(bytes, PACKAGE_MAGIC, MAX_PACKAGE_LEN, "public package")?;
        let n = p.package.share_count();
        if n > crate::wire::MAX_PARTIES || *p.package.verifying_key() == identity() {
            return Err(invalid("public package out of range"));
        }
        for j in 1..=n {
            if p.package
                .verifying_share(PartyIndex::new(j).map_err(|_| invalid("bad index"))?)
                .is_none()
            {
                return Err(invalid(format!("package lacks party {j}'s verifying share")));
            }
        }
        Ok(p)
    }

    /// Child public key along a non-hardened path, with its chain code.
    pub fn derive(&self, path: &str) -> Result<([u8; 33], ChainCode)> {
        let steps = checked_path(path)?;
        let mut cur = public_deriv(self.package.verifying_key(), &self.chain_code);
        for &n in &steps {
            cur = cur.derive_child(n).map_err(|e| Error::new(Code::Derivation, e.description))?;
        }
        Ok((compressed(&cur.pk), cur.chain_code))
    }
}

/// EIP-55 checksummed Ethereum address: the last 20 bytes of Keccak-256 of
/// the uncompressed key without its 0x04 prefix, hex with the case of each
/// letter set by the Keccak-256 of the lower-case hex.
pub fn eth_address(pk: &AffinePoint) -> String {
    use sha3::{Digest, Keccak256};
    let uncompressed = pk.to_sec1_point(false);
    let hex_lower = hex::encode(&Keccak256::digest(&uncompressed.as_bytes()[1..])[12..]);
    let check = Keccak256::digest(hex_lower.as_bytes());
    let cased: String = hex_lower
        .chars()
        .enumerate()
        .map(|(i, c)| {
            let nibble = (check[i / 2] >> (4 * (1 - i % 2))) & 0x0f;
            if c.is_ascii_alphabetic() && nibble >= 8 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect();
    format!("0x{cased}")
}

fn identity() -> AffinePoint {
    AffinePoint::IDENTITY
}
