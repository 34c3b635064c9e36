//! Share repair: at least t holders rebuild the share of a lost party index
//! for a new holder, which none of them learns (the library's `repair.rs`).
//!
//! Each helper computes one masked term for the target and sends it to the
//! target's enclave only, over the end-to-end peer channel. The target
//! assembles the terms into a [`HollowShare`]: the right secret share under
//! the right group key, but with no zero-share seeds or OT state, so it
//! cannot sign and is never serialised. Its only use is as this party's
//! input to a complete refresh across all n holders, run at once; the
//! refreshed share is an ordinary [`KeyShare`], and whatever the lost holder
//! kept no longer combines with any refreshed share.
//!
//! A term travels as
//!
//! | offset | size | field                                             |
//! |--------|------|---------------------------------------------------|
//! | 0      | 4    | magic "DKR" + version 1                           |
//! | 4      | 32   | repair id (the ceremony's session id)             |
//! | 36     | ..   | postcard `RepairTerm` (helper, target, masked term, session id, chain code, group key) |
//!
//! at most [`MAX_TERM_LEN`] bytes. The helper index inside a term is
//! self-reported: the caller passes the authenticated sender of each term and
//! assembly refuses a term whose helper differs.

use crate::error::{Code, Error, Result};
use crate::lib_core::protocols::repair::{repair_assemble as assemble, RepairError, RepairTerm};
use crate::lib_core::protocols::PartyIndex;
use crate::share::{g_times, KeyShare, PublicPackage};
use crate::wire::{session_id, MAX_PARTIES, SESSION_ID_LEN};
use k256::Secp256k1;
use zeroize::Zeroizing;

const TERM_MAGIC: &[u8; 4] = b"DKR\x01";
/// An honest term is about 170 bytes (scalar, 32-byte session id, chain
/// code, compressed key, indices, postcard framing).
pub const MAX_TERM_LEN: usize = 512;

type Term = RepairTerm<Secp256k1>;

/// A repaired share that must go through a complete refresh before use.
pub struct HollowShare(KeyShare);

impl HollowShare {
    pub fn index(&self) -> u8 {
        self.0.index()
    }
    pub fn public_key(&self) -> [u8; 33] {
        self.0.public_key()
    }
    pub fn generation(&self) -> u32 {
        self.0.generation
    }
    /// The party state a complete refresh starts from; nothing else accepts it.
    pub fn into_refresh_input(self) -> KeyShare {
        self.0
    }
}

fn index(i: u8, what: &str) -> Result<PartyIndex> {
    if i == 0 || i > MAX_PARTIES {
        return Err(Error::new(Code::InvalidParameters, format!("{what} index {i} out of range")));
    }
    PartyIndex::new(i).map_err(|e| Error::new(Code::InvalidParameters, e.to_string()))
}

/// One uniform error for terms that do not assemble: the library cannot say
/// which helper was wrong, and a target retries with another helper set.
fn from_repair(e: RepairError) -> Error {
    let code = match e {
        RepairError::ShareMismatch | RepairError::InconsistentTerms => Code::ProtocolAbort,
        RepairError::DerivedShare | RepairError::MissingSeed { .. } => Code::InvalidShare,
        _ => Code::InvalidParameters,
    };
    Error::new(code, format!("repair: {e}"))
}

/// This holder's term for rebuilding `target`'s share with `helpers` (sorted,
/// at least t, this holder among them, not the target). Secret: send it to
/// the target's enclave only.
pub fn repair_term(
    share: &KeyShare,
    helpers: &[u8],
    target: u8,
    repair_id: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let id = session_id(repair_id)?;
    let helpers = helpers.iter().map(|&h| index(h, "helper")).collect::<Result<Vec<_>>>()?;
    let term =
        share.party.repair_term(&helpers, index(target, "target")?, &id).map_err(from_repair)?;
    let mut buf = Zeroizing::new(Vec::with_capacity(MAX_TERM_LEN));
    buf.extend_from_slice(TERM_MAGIC);
    buf.extend_from_slice(&id);
    let out = postcard::to_extend(&term, std::mem::take(&mut *buf)).map_err(|e| {
        Error::new(Code::MalformedMessage, format!("cannot encode repair term: {e}"))
    })?;
    Ok(Zeroizing::new(out))
}

fn decode_term(bytes: &[u8], from: u8, repair_id: &[u8; SESSION_ID_LEN]) -> Result<Term> {
    let blame = |m: &str| {
        Error::blame(Code::MalformedMessage, from, format!("repair term from party {from}: {m}"))
    };
    if bytes.len() > MAX_TERM_LEN || bytes.len() < 4 + SESSION_ID_LEN || &bytes[..4] != TERM_MAGIC {
        return Err(blame("bad size or magic"));
    }
    if &bytes[4..4 + SESSION_ID_LEN] != repair_id {
        return Err(Error::blame(
            Code::UnexpectedMessage,
            from,
            format!("repair term from party {from} belongs to another repair"),
        ));
    }
    let (term, rest) = postcard::take_from_bytes::<Term>(&bytes[4 + SESSION_ID_LEN..])
        .map_err(|_| blame("does not decode"))?;
    if !rest.is_empty() {
        return Err(blame("trailing bytes"));
    }
    if term.helper.as_u8() != from {
        return Err(Error::blame(
            Code::UnexpectedMessage,
            from,
            format!("repair term from party {from} claims another helper"),
        ));
    }
    Ok(term)
}

/// Assembles the terms `(authenticated sender, term bytes)` for party
/// `target` of the wallet whose current public package is `package` (from a
/// source the caller trusts, such as enclave-signed statements).
pub fn repair_assemble(
    package: &PublicPackage,
    target: u8,
    repair_id: &[u8],
    terms: &[(u8, &[u8])],
) -> Result<HollowShare> {
    let id = session_id(repair_id)?;
    let target = index(target, "target")?;
    if terms.len() > usize::from(MAX_PARTIES) {
        return Err(Error::new(Code::InvalidParameters, "too many repair terms"));
    }
    let decoded = terms
        .iter()
        .map(|&(from, bytes)| decode_term(bytes, from, &id))
        .collect::<Result<Vec<_>>>()?;
    let party =
        assemble(&package.package, target, &decoded, |_| String::new()).map_err(from_repair)?;
    if party.derivation_data.chain_code != package.chain_code {
        return Err(Error::new(Code::ProtocolAbort, "repair: terms carry another chain code"));
    }
    let share =
        KeyShare { party, package: package.package.clone(), generation: package.generation };
    check_hollow(&share)?;
    Ok(HollowShare(share))
}

/// What [`KeyShare::validate`] checks, minus the multiplication state a
/// hollow share does not have yet (and must not have).
fn check_hollow(s: &KeyShare) -> Result<()> {
    let p = &s.party;
    let bad = |m: &str| Error::new(Code::InvalidShare, format!("repaired share: {m}"));
    if !p.mul_senders.is_empty() || !p.mul_receivers.is_empty() {
        return Err(bad("unexpected multiplication state"));
    }
    if *s.package.verifying_key() != p.pk || p.derivation_data.pk != p.pk {
        return Err(bad("public key does not match the package"));
    }
    if !s.package.verify_share(p.party_index, &g_times(&p.poly_point)) {
        return Err(bad("share does not match its verifying share"));
    }
    Ok(())
}
