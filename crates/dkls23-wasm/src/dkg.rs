//! Distributed key generation, t-of-n, as four phases:
//!
//! | phase | sends                                                   |
//! |-------|---------------------------------------------------------|
//! | 1     | p2p: polynomial fragment (secret)                       |
//! | 2     | broadcast: DLog proof commitment + chain-code commitment; p2p: zero-share commitment |
//! | 3     | broadcast: chain-code opening; p2p: zero-share seed + OT base setup (secret) |
//! | 4     | nothing: yields the key share and public package        |

use crate::error::{Code, Error, Result};
use crate::session::{fragments, FailClosed, check_route, Ctx, CLOSED};
use crate::share::KeyShare;
use crate::wire::{self, check_shape, decode_body, Ceremony, BROADCAST, MAX_PARTIES, SESSION_ID_LEN};
use dkls23_secp256k1::protocols::dkg::{
    BroadcastDerivationPhase2to4, BroadcastDerivationPhase3to4, ProofCommitment, TransmitInitMulPhase3to4,
    TransmitInitZeroSharePhase2to4, TransmitInitZeroSharePhase3to4,
};
use dkls23_secp256k1::protocols::{Parameters, PartyIndex};
use dkls23_secp256k1::DkgSession;
use k256::{Scalar, Secp256k1};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use zeroize::Zeroize;

#[derive(Serialize, Deserialize)]
pub(crate) struct Fragment {
    pub value: Scalar,
}

#[derive(Serialize, Deserialize)]
struct Phase2Broadcast {
    proof: ProofCommitment<Secp256k1>,
    chain: BroadcastDerivationPhase2to4,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct Phase3P2p {
    pub zero: TransmitInitZeroSharePhase3to4,
    pub mul: TransmitInitMulPhase3to4<Secp256k1>,
}

pub struct Dkg {
    ctx: Ctx,
    n: u8,
    others: Vec<u8>,
    session: Option<DkgSession<Secp256k1>>,
    own_fragment: Option<Scalar>,
    proofs: Vec<ProofCommitment<Secp256k1>>,
    zero2: Vec<TransmitInitZeroSharePhase2to4>,
    chain2: BTreeMap<PartyIndex, BroadcastDerivationPhase2to4>,
    chain3: BTreeMap<PartyIndex, BroadcastDerivationPhase3to4>,
    shape_b2: Option<Vec<u32>>,
    shape_p2: Option<Vec<u32>>,
    shape_b3: Option<Vec<u32>>,
    shape_p3: Option<Vec<u32>>,
}

pub fn check_params(t: u8, n: u8, me: u8) -> Result<Parameters> {
    if n > MAX_PARTIES || t < 2 || t > n {
        return Err(Error::new(Code::InvalidParameters, format!("need 2 <= t <= n <= {MAX_PARTIES}, got t={t} n={n}")));
    }
    if me == 0 || me > n {
        return Err(Error::new(Code::InvalidParameters, format!("party index {me} outside 1..={n}")));
    }
    Parameters::new(t, n).map_err(|e| Error::new(Code::InvalidParameters, e.to_string()))
}

impl Dkg {
    pub fn new(t: u8, n: u8, me: u8, session: &[u8]) -> Result<Dkg> {
        let params = check_params(t, n, me)?;
        let sid = wire::session_id(session)?;
        let pi = PartyIndex::new(me).map_err(|e| Error::new(Code::InvalidParameters, e.to_string()))?;
        Ok(Dkg {
            ctx: Ctx { ceremony: Ceremony::Dkg, session: sid, me, done: 0 },
            n,
            others: (1..=n).filter(|&j| j != me).collect(),
            session: Some(DkgSession::new(params, pi, sid.to_vec())),
            own_fragment: None,
            proofs: Vec::new(),
            zero2: Vec::new(),
            chain2: BTreeMap::new(),
            chain3: BTreeMap::new(),
            shape_b2: None,
            shape_p2: None,
            shape_b3: None,
            shape_p3: None,
        })
    }

    pub fn session_id(&self) -> &[u8; SESSION_ID_LEN] {
        &self.ctx.session
    }


    /// Drops and zeroizes all keep-state; the session answers only "closed".
    pub fn close(&mut self) {
        self.ctx.done = CLOSED;
        self.session = None; // DkgSession zeroizes on drop.
        if let Some(f) = self.own_fragment.as_mut() {
            f.zeroize();
        }
        self.own_fragment = None;
        for c in self.chain3.values_mut() {
            c.aux_chain_code.zeroize();
            c.cc_salt.zeroize();
        }
        self.proofs.clear();
        self.zero2.clear();
        self.chain2.clear();
        self.chain3.clear();
    }

    fn sess(&mut self) -> Result<&mut DkgSession<Secp256k1>> {
        self.session.as_mut().ok_or_else(|| Error::new(Code::SessionClosed, "dkg session is closed"))
    }

    pub fn phase1(&mut self) -> Result<Vec<Vec<u8>>> {
        self.run(1, 4, |s| {
            let mut fragments = s.sess()?.phase1();
            let mut out = Vec::with_capacity(s.others.len());
            for &j in &s.others {
                out.push(s.ctx.msg(1, j, &Fragment { value: fragments[(j - 1) as usize] })?);
            }
            s.own_fragment = Some(fragments[(s.ctx.me - 1) as usize]);
            fragments.zeroize();
            Ok(out)
        })
    }

    pub fn phase2(&mut self, input: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.run(2, 4, |s| {
            let me = s.ctx.me;
            let got = wire::collect(input, &s.ctx.expect(1, &s.others, false, true))?;
            let mut frags = fragments(&got, me, s.n, s.own_fragment.take())?;
            let result = s.sess()?.phase2(&frags);
            frags.zeroize();
            let (proof, zero, chain) = result.map_err(|a| Error::from_abort(&a))?;
            let bc = Phase2Broadcast { proof, chain };
            s.shape_b2 = crate::shape::shape_of(&bc);
            let mut out = vec![s.ctx.msg(2, BROADCAST, &bc)?];
            for m in &zero {
                s.shape_p2 = crate::shape::shape_of(m);
                out.push(s.ctx.msg(2, m.parties.receiver.as_u8(), m)?);
            }
            s.proofs.push(bc.proof);
            s.chain2.insert(bc.chain.sender_index, bc.chain);
            Ok(out)
        })
    }

    pub fn phase3(&mut self, input: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.run(3, 4, |s| {
            let me = s.ctx.me;
            let got = wire::collect(input, &s.ctx.expect(2, &s.others, true, true))?;
            for (&j, d) in &got {
                let bc: Phase2Broadcast = decode_body(d.broadcast.unwrap_or_default(), j)?;
                check_shape(&bc, &s.shape_b2, j)?;
                if bc.proof.index.as_u8() != j || bc.chain.sender_index.as_u8() != j {
                    return Err(Error::blame(Code::UnexpectedMessage, j, format!("broadcast from party {j} names another sender")));
                }
                let zero: TransmitInitZeroSharePhase2to4 = decode_body(d.p2p.unwrap_or_default(), j)?;
                check_shape(&zero, &s.shape_p2, j)?;
                check_route(j, me, zero.parties.sender.as_u8(), zero.parties.receiver.as_u8())?;
                s.proofs.push(bc.proof);
                s.chain2.insert(bc.chain.sender_index, bc.chain);
                s.zero2.push(zero);
            }
            s.proofs.sort_by_key(|p| p.index);
            let (zero3, mul3, chain3) = s.sess()?.phase3().map_err(|a| Error::from_abort(&a))?;
            s.shape_b3 = crate::shape::shape_of(&chain3);
            let mut out = vec![s.ctx.msg(3, BROADCAST, &chain3)?];
            let mut by_receiver: BTreeMap<u8, (Option<TransmitInitZeroSharePhase3to4>, Option<TransmitInitMulPhase3to4<Secp256k1>>)> =
                BTreeMap::new();
            for z in zero3 {
                let j = z.parties.receiver.as_u8();
                by_receiver.entry(j).or_default().0 = Some(z);
            }
            for m in mul3 {
                let j = m.parties.receiver.as_u8();
                by_receiver.entry(j).or_default().1 = Some(m);
            }
            for (j, pair) in by_receiver {
                let (Some(zero), Some(mul)) = pair else {
                    return Err(Error::new(Code::ProtocolAbort, format!("library produced no phase-3 message for party {j}")));
                };
                let mut body = Phase3P2p { zero, mul };
                s.shape_p3 = crate::shape::shape_of(&body);
                out.push(s.ctx.msg(3, j, &body)?);
                body.zero.seed.zeroize();
            }
            s.chain3.insert(chain3.sender_index, chain3);
            Ok(out)
        })
    }

    pub fn phase4(&mut self, input: &[u8]) -> Result<KeyShare> {
        self.run(4, 4, |s| {
            let me = s.ctx.me;
            let got = wire::collect(input, &s.ctx.expect(3, &s.others, true, true))?;
            let mut zero3 = Vec::with_capacity(got.len());
            let mut mul3 = Vec::with_capacity(got.len());
            for (&j, d) in &got {
                let chain: BroadcastDerivationPhase3to4 = decode_body(d.broadcast.unwrap_or_default(), j)?;
                check_shape(&chain, &s.shape_b3, j)?;
                if chain.sender_index.as_u8() != j {
                    return Err(Error::blame(Code::UnexpectedMessage, j, format!("broadcast from party {j} names another sender")));
                }
                let p: Phase3P2p = decode_body(d.p2p.unwrap_or_default(), j)?;
                check_shape(&p, &s.shape_p3, j)?;
                check_route(j, me, p.zero.parties.sender.as_u8(), p.zero.parties.receiver.as_u8())?;
                check_route(j, me, p.mul.parties.sender.as_u8(), p.mul.parties.receiver.as_u8())?;
                s.chain3.insert(chain.sender_index, chain);
                zero3.push(p.zero);
                mul3.push(p.mul);
            }
            let session = s.session.take().ok_or_else(|| Error::new(Code::SessionClosed, "dkg session is closed"))?;
            let result = session.phase4(&s.proofs, &s.zero2, &zero3, &mul3, &s.chain2, &s.chain3, |_| String::new());
            for z in zero3.iter_mut() {
                z.seed.zeroize();
            }
            let (party, package) = result.map_err(|a| Error::from_abort(&a))?;
            let share = KeyShare { party, package, generation: 0 };
            share.validate()?;
            Ok(share)
        })
    }
}

impl Drop for Dkg {
    fn drop(&mut self) {
        self.close();
    }
}

impl FailClosed for Dkg {
    fn ctx(&mut self) -> &mut Ctx {
        &mut self.ctx
    }
    fn close(&mut self) {
        Dkg::close(self);
    }
}
