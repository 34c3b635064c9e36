//! Resharing a wallet to a new committee (other t, other n, new holders)
//! under the same public key and chain code: the fork's
//! `protocols::reshare` (argument in docs/RESHARING.md), as four phases
//! over the new committee's indices 1..=n_new:
//!
//! | phase | sends                                                            |
//! |-------|------------------------------------------------------------------|
//! | 1     | dealers only: broadcast Feldman commitment; p2p fragment (secret) |
//! | 2     | broadcast: DLog proof + chain-code commitment; p2p: zero-share commitment (DKG phase 2) |
//! | 3     | broadcast: chain-code opening; p2p: zero-share seed + OT base setup (DKG phase 3) |
//! | 4     | nothing: yields the new share (old generation + 1)               |
//!
//! A *dealer* is an old holder in the quorum; it sits at a new index (its
//! *seat*) in the new committee, so every dealer is also a new holder (a
//! holder that leaves does not deal: at least t_old of the old holders must
//! stay). New-only parties send nothing in phase 1.
//!
//! Phase-1 bodies, after the 37-byte header of ceremony 6 (wire.rs), which
//! carries the session id and the sender's seat:
//!
//! | message   | body (postcard)                                                  |
//! |-----------|------------------------------------------------------------------|
//! | broadcast | `ReshareCommitment`: dealer's old index (u8), t_new compressed points |
//! | p2p       | `Fragment`: one scalar, f_dealer(recipient's new index)          |
//!
//! bounded by the wire's message size (an honest broadcast is 2 + 33 x t_new
//! bytes). A commitment must name the old index of the seat it comes from and
//! have exactly t_new points; a fragment that does not match its commitment,
//! or a commitment whose constant term is not λ·X of the old package, is
//! refused naming the dealer's seat.

use crate::bodies::Fragment;
use crate::dkg::{check_params, Dkg};
use crate::error::{Code, Error, Result};
use crate::lib_core::protocols::reshare::{self, ReshareCommitment, ReshareError};
use crate::lib_core::protocols::{Parameters, PartyIndex};
use crate::session::Phases;
use crate::share::{KeyShare, Package, PublicPackage};
use crate::wire::{self, decode_body, Ceremony, BROADCAST, SESSION_ID_LEN};
use k256::{Scalar, Secp256k1};
use std::collections::BTreeMap;
use std::rc::Rc;
use zeroize::{Zeroize, Zeroizing};

type Commitment = ReshareCommitment<Secp256k1>;

pub struct Reshare {
    dkg: Dkg,
    old: PublicPackage,
    /// This party's old share, if it deals.
    share: Option<Rc<KeyShare>>,
    /// The dealers' old indices, increasing.
    quorum: Vec<PartyIndex>,
    /// Seat (new index) -> the dealer's old index.
    seats: BTreeMap<u8, PartyIndex>,
    params: Parameters,
    own_fragment: Option<Scalar>,
    own_commitment: Option<Commitment>,
    expected: Option<Package>,
}

fn bad(m: impl Into<String>) -> Error {
    Error::new(Code::InvalidParameters, m)
}

fn index(i: u8) -> Result<PartyIndex> {
    PartyIndex::new(i).map_err(|e| bad(e.to_string()))
}

impl Reshare {
    /// Party `me` (1..=n_new) of the new committee. `old` is the wallet's
    /// public package as the caller trusts it; `dealers` the quorum's old
    /// indices (increasing, at least t_old) and `seats` their new indices in
    /// the same order. A dealer passes its old share, a new-only party none.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        share: Option<Rc<KeyShare>>,
        old: &PublicPackage,
        dealers: &[u8],
        seats: &[u8],
        t_new: u8,
        n_new: u8,
        me: u8,
        session: &[u8],
    ) -> Result<Reshare> {
        let params = check_params(t_new, n_new, me)?;
        let session = wire::session_id(session)?;
        let (t_old, n_old) = (old.package.threshold(), old.package.share_count());
        if dealers.len() != seats.len() {
            return Err(bad("reshare: one seat per dealer"));
        }
        if dealers.len() < usize::from(t_old) {
            return Err(bad(format!(
                "reshare: {} old holders deal, the old threshold is {t_old}",
                dealers.len()
            )));
        }
        if dealers.windows(2).any(|w| w[0] >= w[1]) || dealers.iter().any(|&i| i == 0 || i > n_old)
        {
            return Err(bad("reshare: dealers must be increasing old indices"));
        }
        let mut by_seat = BTreeMap::new();
        for (&dealer, &seat) in dealers.iter().zip(seats) {
            if seat == 0 || seat > n_new || by_seat.insert(seat, index(dealer)?).is_some() {
                return Err(bad("reshare: seats must be distinct new indices"));
            }
        }
        match (&share, by_seat.get(&me)) {
            (None, None) => {}
            (Some(s), Some(&old_index)) => {
                if s.party.party_index != old_index {
                    return Err(bad("reshare: the share is not the old index of this seat"));
                }
                // The share must be of exactly the trusted package (key,
                // verifying shares, chain code, generation).
                if s.public_package().to_bytes()? != old.to_bytes()? {
                    return Err(Error::new(
                        Code::InvalidShare,
                        "reshare: the share does not belong to the old package",
                    ));
                }
            }
            (None, Some(_)) => return Err(bad("reshare: a dealer needs its old share")),
            (Some(_), None) => return Err(bad("reshare: this seat does not deal")),
        }
        let quorum: Vec<PartyIndex> = dealers.iter().map(|&d| index(d)).collect::<Result<_>>()?;
        // The library session binds the old package, the chain code and
        // generation, the quorum, the seats and the new parameters: new
        // parties that disagree on any of them fail the DKG proofs instead of
        // agreeing.
        let reshare_id =
            [&session[..], &old.chain_code, &old.generation.to_be_bytes(), seats].concat();
        let library_session =
            reshare::session_id::<Secp256k1>(&reshare_id, &old.package, &quorum, &params);
        let dkg =
            Dkg::for_ceremony(Ceremony::Reshare, params.clone(), me, &session, library_session)?;
        Ok(Reshare {
            dkg,
            old: old.clone(),
            share,
            quorum,
            seats: by_seat,
            params,
            own_fragment: None,
            own_commitment: None,
            expected: None,
        })
    }

    pub fn session_id(&self) -> &[u8; SESSION_ID_LEN] {
        self.dkg.session_id()
    }

    /// Phase 2's checks: every dealer's commitment and our fragment from it
    /// (ours included), then the commitments against the old package. Returns
    /// the fragments for DKG phase 2 and keeps the package they predict.
    fn gather(&mut self, input: &[u8]) -> Result<Vec<Scalar>> {
        let me = self.me();
        let me_index = index(me)?;
        let senders: Vec<u8> = self.seats.keys().copied().filter(|&j| j != me).collect();
        let got = wire::collect(input, &self.dkg.ctx_mut().expect(1, &senders, true, true))?;
        let mut commitments: Vec<Commitment> = Vec::with_capacity(self.seats.len());
        let mut frags: Zeroizing<Vec<Scalar>> =
            Zeroizing::new(Vec::with_capacity(self.seats.len()));
        if let (Some(c), Some(f)) = (self.own_commitment.take(), self.own_fragment.take()) {
            reshare::verify_fragment(&c, me_index, &f).map_err(|e| self.blame(e))?;
            frags.push(f);
            commitments.push(c);
        }
        for (&j, d) in &got {
            let c: Commitment = decode_body(d.broadcast.unwrap_or_default(), j)?;
            if Some(&c.dealer) != self.seats.get(&j) {
                return Err(Error::blame(
                    Code::UnexpectedMessage,
                    j,
                    format!("reshare commitment from party {j} names another dealer"),
                ));
            }
            let f: Fragment = decode_body(d.p2p.unwrap_or_default(), j)?;
            let checked = reshare::verify_fragment(&c, me_index, &f.value);
            frags.push(f.value);
            checked.map_err(|e| self.blame(e))?;
            commitments.push(c);
        }
        let expected =
            reshare::check_commitments(&self.old.package, &self.quorum, &self.params, &commitments)
                .map_err(|e| self.blame(e))?;
        self.expected = Some(expected);
        Ok(std::mem::take(&mut *frags))
    }

    fn me(&mut self) -> u8 {
        self.dkg.ctx_mut().me
    }

    /// Runs `f` as phase 1 or the checks before DKG phase 2: in order, and
    /// closing everything on error.
    fn guarded<T>(&mut self, phase: u8, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if let Err(e) = self.dkg.ctx_mut().begin(phase) {
            self.close();
            return Err(e);
        }
        match f(self) {
            Ok(v) => Ok(v),
            Err(e) => {
                self.close();
                Err(e)
            }
        }
    }

    fn blame(&self, e: ReshareError) -> Error {
        let seat_of = |d: PartyIndex| self.seats.iter().find(|(_, &o)| o == d).map(|(&s, _)| s);
        match e {
            ReshareError::BadCommitment { dealer } | ReshareError::BadFragment { dealer } => {
                match seat_of(dealer) {
                    Some(seat) => Error::blame(
                        Code::ProtocolAbort,
                        seat,
                        format!("reshare: party {seat}: {e}"),
                    ),
                    None => Error::new(Code::ProtocolAbort, format!("reshare: {e}")),
                }
            }
            ReshareError::InvalidParameters
            | ReshareError::InvalidQuorum
            | ReshareError::NotInQuorum => bad(format!("reshare: {e}")),
            ReshareError::ShareMismatch => Error::new(Code::InvalidShare, format!("reshare: {e}")),
            _ => Error::new(Code::ProtocolAbort, format!("reshare: {e}")),
        }
    }
}

impl Phases for Reshare {
    type Output = KeyShare;

    fn close(&mut self) {
        Phases::close(&mut self.dkg);
        if let Some(f) = self.own_fragment.as_mut() {
            f.zeroize();
        }
        self.own_fragment = None;
        self.own_commitment = None;
        self.share = None;
        self.expected = None;
    }

    fn phase1(&mut self) -> Result<Vec<Vec<u8>>> {
        self.guarded(1, |s| {
            let me = s.me();
            let mut out = Vec::new();
            if let Some(share) = s.share.take() {
                let (commitment, fragments) =
                    reshare::deal(&share.party, &s.old.package, &s.quorum, &s.params)
                        .map_err(|e| s.blame(e))?;
                drop(share);
                let ctx = s.dkg.ctx_mut();
                out.push(ctx.msg(1, BROADCAST, &commitment)?);
                for j in (1..=s.params.share_count).filter(|&j| j != me) {
                    out.push(ctx.msg(1, j, &Fragment { value: fragments[usize::from(j - 1)] })?);
                }
                s.own_fragment = Some(fragments[usize::from(me - 1)]);
                s.own_commitment = Some(commitment);
            }
            s.dkg.ctx_mut().done = 1;
            Ok(out)
        })
    }

    fn phase2(&mut self, input: &[u8]) -> Result<Vec<Vec<u8>>> {
        let frags = self.guarded(2, |s| s.gather(input))?;
        // DKG phase 2 sums the checked fragments into the new share.
        let r = self.dkg.phase2_from(frags);
        if r.is_err() {
            self.close();
        }
        r
    }

    fn phase3(&mut self, input: &[u8]) -> Result<Vec<Vec<u8>>> {
        let r = self.dkg.phase3(input);
        if r.is_err() {
            self.close();
        }
        r
    }

    fn phase4(&mut self, input: &[u8]) -> Result<KeyShare> {
        let r = self.dkg.phase4(input).and_then(|dkg_share| {
            let expected = self
                .expected
                .take()
                .ok_or_else(|| Error::new(Code::SessionClosed, "reshare has no phase-2 state"))?;
            let KeyShare { party, package, .. } = dkg_share;
            let party = reshare::finish(party, &package, &expected, &self.old.chain_code)
                .map_err(|e| self.blame(e))?;
            let share = KeyShare { party, package: expected, generation: self.old.generation + 1 };
            share.validate()?;
            Ok(share)
        });
        self.close();
        r
    }
}

impl Drop for Reshare {
    fn drop(&mut self) {
        Phases::close(self);
    }
}
