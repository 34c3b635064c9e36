//! Distributed key generation, t-of-n, as four phases:
//!
//! | phase | sends                                                   |
//! |-------|---------------------------------------------------------|
//! | 1     | p2p: polynomial fragment (secret)                       |
//! | 2     | broadcast: DLog proof commitment + chain-code commitment; p2p: zero-share commitment |
//! | 3     | broadcast: chain-code opening; p2p: zero-share seed + OT base setup (secret) |
//! | 4     | nothing: yields the key share and public package        |

use crate::bodies::{other_sender, Dealing};
use crate::error::{Code, Error, Result};
use crate::lib_core::protocols::dkg::{
    BroadcastDerivationPhase2to4, BroadcastDerivationPhase3to4, ProofCommitment,
};
use crate::lib_core::protocols::{Parameters, PartyIndex};
use crate::lib_core::DkgSession;
use crate::session::{fail_closed, FailClosed, Phases};
use crate::share::KeyShare;
use crate::wire::{check_shape, decode_body, Ceremony, BROADCAST, MAX_PARTIES, SESSION_ID_LEN};
use k256::{Scalar, Secp256k1};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use zeroize::Zeroize;

#[derive(Serialize, Deserialize)]
struct Phase2Broadcast {
    proof: ProofCommitment<Secp256k1>,
    chain: BroadcastDerivationPhase2to4,
}

pub struct Dkg {
    d: Dealing,
    session: Option<DkgSession<Secp256k1>>,
    chain2: BTreeMap<PartyIndex, BroadcastDerivationPhase2to4>,
    chain3: BTreeMap<PartyIndex, BroadcastDerivationPhase3to4>,
    shape_b3: Option<Vec<u32>>,
}

pub fn check_params(t: u8, n: u8, me: u8) -> Result<Parameters> {
    if n > MAX_PARTIES || t < 2 || t > n {
        return Err(Error::new(
            Code::InvalidParameters,
            format!("need 2 <= t <= n <= {MAX_PARTIES}, got t={t} n={n}"),
        ));
    }
    if me == 0 || me > n {
        return Err(Error::new(
            Code::InvalidParameters,
            format!("party index {me} outside 1..={n}"),
        ));
    }
    Parameters::new(t, n).map_err(|e| Error::new(Code::InvalidParameters, e.to_string()))
}

impl Dkg {
    pub fn new(t: u8, n: u8, me: u8, session: &[u8]) -> Result<Dkg> {
        let params = check_params(t, n, me)?;
        let d = Dealing::new(Ceremony::Dkg, session, me, n)?;
        let library_session = d.ctx.session.to_vec();
        Dkg::with(d, params, library_session)
    }

    /// Phases 2-4 of a DKG whose messages carry `ceremony` and whose library
    /// session id is `library_session` (resharing runs them on fragments of
    /// its own; see reshare.rs).
    pub(crate) fn for_ceremony(
        ceremony: Ceremony,
        params: Parameters,
        me: u8,
        session: &[u8],
        library_session: Vec<u8>,
    ) -> Result<Dkg> {
        let d = Dealing::new(ceremony, session, me, params.share_count)?;
        Dkg::with(d, params, library_session)
    }

    fn with(d: Dealing, params: Parameters, library_session: Vec<u8>) -> Result<Dkg> {
        let pi = PartyIndex::new(d.ctx.me)
            .map_err(|e| Error::new(Code::InvalidParameters, e.to_string()))?;
        Ok(Dkg {
            session: Some(DkgSession::new(params, pi, library_session)),
            d,
            chain2: BTreeMap::new(),
            chain3: BTreeMap::new(),
            shape_b3: None,
        })
    }

    pub fn session_id(&self) -> &[u8; SESSION_ID_LEN] {
        &self.d.ctx.session
    }

    /// The session's framing and phase counter (resharing's own phase 1
    /// runs on it).
    pub(crate) fn ctx_mut(&mut self) -> &mut crate::session::Ctx {
        &mut self.d.ctx
    }

    /// Phase 2 on polynomial fragments the caller has already gathered and
    /// checked (resharing); wipes them.
    pub(crate) fn phase2_from(&mut self, frags: Vec<Scalar>) -> Result<Vec<Vec<u8>>> {
        self.run(2, |s| s.phase2_on(frags))
    }

    fn phase2_on(&mut self, mut frags: Vec<Scalar>) -> Result<Vec<Vec<u8>>> {
        let result = self.sess().map(|sess| sess.phase2(&frags));
        frags.zeroize();
        let (proof, zero, chain) = result?.map_err(|a| Error::from_abort(&a))?;
        let bc = Phase2Broadcast { proof, chain };
        let out = self.d.send_phase2(&bc, bc.proof.clone(), &zero)?;
        self.chain2.insert(bc.chain.sender_index, bc.chain);
        Ok(out)
    }

    fn sess(&mut self) -> Result<&mut DkgSession<Secp256k1>> {
        self.session
            .as_mut()
            .ok_or_else(|| Error::new(Code::SessionClosed, "dkg session is closed"))
    }
}

impl Phases for Dkg {
    type Output = KeyShare;

    fn close(&mut self) {
        self.d.close();
        self.session = None; // DkgSession zeroizes on drop.
        for c in self.chain3.values_mut() {
            c.aux_chain_code.zeroize();
            c.cc_salt.zeroize();
        }
        self.chain2.clear();
        self.chain3.clear();
    }

    fn phase1(&mut self) -> Result<Vec<Vec<u8>>> {
        self.run(1, |s| {
            let fragments = s.sess()?.phase1();
            s.d.deal(fragments)
        })
    }

    fn phase2(&mut self, input: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.run(2, |s| {
            let frags = s.d.fragments(input)?;
            s.phase2_on(frags)
        })
    }

    fn phase3(&mut self, input: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.run(3, |s| {
            let chain2 = &mut s.chain2;
            s.d.receive_phase2(input, |bc: Phase2Broadcast, j| {
                let ok = bc.proof.index.as_u8() == j && bc.chain.sender_index.as_u8() == j;
                chain2.insert(bc.chain.sender_index, bc.chain);
                ok.then_some(bc.proof)
            })?;
            let (zero3, mul3, chain3) = s.sess()?.phase3().map_err(|a| Error::from_abort(&a))?;
            s.shape_b3 = crate::shape::shape_of(&chain3);
            let mut out = vec![s.d.ctx.msg(3, BROADCAST, &chain3)?];
            s.d.send_phase3(zero3, mul3, &mut out)?;
            s.chain3.insert(chain3.sender_index, chain3);
            Ok(out)
        })
    }

    fn phase4(&mut self, input: &[u8]) -> Result<KeyShare> {
        self.run(4, |s| {
            let (shape_b3, chain3) = (&s.shape_b3, &mut s.chain3);
            let mut chain = |bytes: &[u8], j: u8| -> Result<()> {
                let chain: BroadcastDerivationPhase3to4 = decode_body(bytes, j)?;
                check_shape(&chain, shape_b3, j)?;
                if chain.sender_index.as_u8() != j {
                    return Err(other_sender(j));
                }
                chain3.insert(chain.sender_index, chain);
                Ok(())
            };
            let p3 = s.d.receive_phase3(input, Some(&mut chain))?;
            let session = s
                .session
                .take()
                .ok_or_else(|| Error::new(Code::SessionClosed, "dkg session is closed"))?;
            let result = session.phase4(
                &s.d.proofs,
                &s.d.zero2,
                &p3.zero3,
                &p3.mul3,
                &s.chain2,
                &s.chain3,
                |_| String::new(),
            );
            let (party, package) = result.map_err(|a| Error::from_abort(&a))?;
            let share = KeyShare { party, package, generation: 0 };
            share.validate()?;
            Ok(share)
        })
    }
}

fail_closed!(Dkg, d.ctx);
