//! Complete refresh over all n parties: a fresh zero-constant polynomial
//! re-randomises every share and the OT state is rebuilt, so pre-refresh
//! shares no longer combine with post-refresh ones. Same four-phase shape as
//! DKG:
//!
//! | phase | sends                                                   |
//! |-------|---------------------------------------------------------|
//! | 1     | p2p: correction-polynomial fragment (secret)            |
//! | 2     | broadcast: DLog proof commitment; p2p: zero-share commitment |
//! | 3     | p2p: zero-share seed + OT base setup (secret)           |
//! | 4     | nothing: yields the new share (generation + 1)          |

use crate::dkg::{Fragment, Phase3P2p};
use crate::error::{Code, Error, Result};
use crate::session::{fragments, FailClosed, check_route, Ctx, CLOSED};
use crate::share::{KeyShare, Package};
use crate::wire::{self, check_shape, decode_body, Ceremony, BROADCAST};
use dkls23_secp256k1::protocols::dkg::{
    KeepInitMulPhase3to4, KeepInitZeroSharePhase2to3, KeepInitZeroSharePhase3to4, ProofCommitment,
    TransmitInitZeroSharePhase2to4,
};
use dkls23_secp256k1::protocols::PartyIndex;
use k256::{ProjectivePoint, Scalar, Secp256k1};
use std::collections::BTreeMap;
use std::rc::Rc;
use zeroize::Zeroize;

pub struct Refresh {
    ctx: Ctx,
    share: Rc<KeyShare>,
    n: u8,
    others: Vec<u8>,
    own_fragment: Option<Scalar>,
    correction: Option<Scalar>,
    proofs: Vec<ProofCommitment<Secp256k1>>,
    zero_keep2: BTreeMap<PartyIndex, KeepInitZeroSharePhase2to3>,
    zero2: Vec<TransmitInitZeroSharePhase2to4>,
    zero_keep3: BTreeMap<PartyIndex, KeepInitZeroSharePhase3to4>,
    mul_keep3: BTreeMap<PartyIndex, KeepInitMulPhase3to4<Secp256k1>>,
    shape_b2: Option<Vec<u32>>,
    shape_p2: Option<Vec<u32>>,
    shape_p3: Option<Vec<u32>>,
}

impl Refresh {
    pub fn new(share: Rc<KeyShare>, session: &[u8]) -> Result<Refresh> {
        let sid = wire::session_id(session)?;
        let (me, n) = (share.index(), share.share_count());
        Ok(Refresh {
            ctx: Ctx { ceremony: Ceremony::Refresh, session: sid, me, done: 0 },
            share,
            n,
            others: (1..=n).filter(|&j| j != me).collect(),
            own_fragment: None,
            correction: None,
            proofs: Vec::new(),
            zero_keep2: BTreeMap::new(),
            zero2: Vec::new(),
            zero_keep3: BTreeMap::new(),
            mul_keep3: BTreeMap::new(),
            shape_b2: None,
            shape_p2: None,
            shape_p3: None,
        })
    }


    pub fn close(&mut self) {
        self.ctx.done = CLOSED;
        if let Some(f) = self.own_fragment.as_mut() {
            f.zeroize();
        }
        if let Some(c) = self.correction.as_mut() {
            c.zeroize();
        }
        self.own_fragment = None;
        self.correction = None;
        for k in self.zero_keep2.values_mut() {
            k.seed.zeroize();
            k.salt.zeroize();
        }
        for k in self.zero_keep3.values_mut() {
            k.seed.zeroize();
        }
        for k in self.mul_keep3.values_mut() {
            k.ot_sender.s.zeroize();
            k.ot_receiver.seed.zeroize();
            k.nonce.zeroize();
            k.vec_r.zeroize();
            k.correlation.zeroize();
        }
        self.zero_keep2.clear();
        self.zero_keep3.clear();
        self.mul_keep3.clear();
        self.proofs.clear();
        self.zero2.clear();
    }

    pub fn phase1(&mut self) -> Result<Vec<Vec<u8>>> {
        self.run(1, 4, |s| {
            let mut fragments = s.share.party.refresh_complete_phase1();
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
            let (correction, proof, zero_keep, zero) = s.share.party.refresh_complete_phase2(&s.ctx.session, &frags);
            frags.zeroize();
            s.correction = Some(correction);
            s.zero_keep2 = zero_keep;
            s.shape_b2 = crate::shape::shape_of(&proof);
            let mut out = vec![s.ctx.msg(2, BROADCAST, &proof)?];
            for m in &zero {
                s.shape_p2 = crate::shape::shape_of(m);
                out.push(s.ctx.msg(2, m.parties.receiver.as_u8(), m)?);
            }
            s.proofs.push(proof);
            Ok(out)
        })
    }

    pub fn phase3(&mut self, input: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.run(3, 4, |s| {
            let me = s.ctx.me;
            let got = wire::collect(input, &s.ctx.expect(2, &s.others, true, true))?;
            for (&j, d) in &got {
                let proof: ProofCommitment<Secp256k1> = decode_body(d.broadcast.unwrap_or_default(), j)?;
                check_shape(&proof, &s.shape_b2, j)?;
                if proof.index.as_u8() != j {
                    return Err(Error::blame(Code::UnexpectedMessage, j, format!("broadcast from party {j} names another sender")));
                }
                let zero: TransmitInitZeroSharePhase2to4 = decode_body(d.p2p.unwrap_or_default(), j)?;
                check_shape(&zero, &s.shape_p2, j)?;
                check_route(j, me, zero.parties.sender.as_u8(), zero.parties.receiver.as_u8())?;
                s.proofs.push(proof);
                s.zero2.push(zero);
            }
            s.proofs.sort_by_key(|p| p.index);
            let (zero_keep3, zero3, mul_keep3, mul3) = s.share.party.refresh_complete_phase3(&s.ctx.session, &s.zero_keep2);
            s.zero_keep3 = zero_keep3;
            s.mul_keep3 = mul_keep3;
            let mut zero_by: BTreeMap<u8, _> = zero3.into_iter().map(|z| (z.parties.receiver.as_u8(), z)).collect();
            let mut out = Vec::with_capacity(mul3.len());
            for mul in mul3 {
                let j = mul.parties.receiver.as_u8();
                let zero = zero_by
                    .remove(&j)
                    .ok_or_else(|| Error::new(Code::ProtocolAbort, format!("library produced no phase-3 message for party {j}")))?;
                let mut body = Phase3P2p { zero, mul };
                s.shape_p3 = crate::shape::shape_of(&body);
                out.push(s.ctx.msg(3, j, &body)?);
                body.zero.seed.zeroize();
            }
            Ok(out)
        })
    }

    pub fn phase4(&mut self, input: &[u8]) -> Result<KeyShare> {
        self.run(4, 4, |s| {
            let me = s.ctx.me;
            let got = wire::collect(input, &s.ctx.expect(3, &s.others, false, true))?;
            let mut zero3 = Vec::with_capacity(got.len());
            let mut mul3 = Vec::with_capacity(got.len());
            for (&j, d) in &got {
                let p: Phase3P2p = decode_body(d.p2p.unwrap_or_default(), j)?;
                check_shape(&p, &s.shape_p3, j)?;
                check_route(j, me, p.zero.parties.sender.as_u8(), p.zero.parties.receiver.as_u8())?;
                check_route(j, me, p.mul.parties.sender.as_u8(), p.mul.parties.receiver.as_u8())?;
                zero3.push(p.zero);
                mul3.push(p.mul);
            }
            let correction = s.correction.ok_or_else(|| Error::new(Code::SessionClosed, "no phase-2 state"))?;
            let result = s.share.party.refresh_complete_phase4(
                &s.ctx.session,
                &correction,
                &s.proofs,
                &s.zero_keep3,
                &s.zero2,
                &zero3,
                &s.mul_keep3,
                &mul3,
            );
            for z in zero3.iter_mut() {
                z.seed.zeroize();
            }
            let party = result.map_err(|a| Error::from_abort(&a))?;
            // Each verifying share moves by its party's correction point, which
            // the library has just verified through the DLog proofs.
            let old = &s.share.package;
            let mut shares = BTreeMap::new();
            for p in &s.proofs {
                let prev = old
                    .verifying_share(p.index)
                    .ok_or_else(|| Error::new(Code::InvalidShare, format!("package lacks party {}", p.index)))?;
                shares.insert(p.index, (ProjectivePoint::from(*prev) + p.proof.point).to_affine());
            }
            let package = Package::new(*old.verifying_key(), shares, s.share.party.parameters.clone());
            let share = KeyShare { party, package, generation: s.share.generation + 1 };
            share.validate()?;
            Ok(share)
        })
    }
}

impl Drop for Refresh {
    fn drop(&mut self) {
        self.close();
    }
}

impl FailClosed for Refresh {
    fn ctx(&mut self) -> &mut Ctx {
        &mut self.ctx
    }
    fn close(&mut self) {
        Refresh::close(self);
    }
}
