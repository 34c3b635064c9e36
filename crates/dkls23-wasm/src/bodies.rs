//! What DKG and complete refresh share: both deal polynomial fragments in
//! phase 1, broadcast a DLog proof commitment with zero-share commitments in
//! phase 2, and exchange zero-share seeds with the OT base setup in phase 3.
//! [`Dealing`] holds that common state and performs those steps.

use crate::error::{Code, Error, Result};
use crate::lib_core::protocols::dkg::{
    ProofCommitment, TransmitInitMulPhase3to4, TransmitInitZeroSharePhase2to4,
    TransmitInitZeroSharePhase3to4,
};
use crate::session::{check_route, Ctx, CLOSED};
use crate::wire::{self, check_shape, decode_body, Ceremony, BROADCAST};
use k256::{Scalar, Secp256k1};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::BTreeMap;
use zeroize::Zeroize;

#[derive(Serialize, Deserialize)]
pub struct Fragment {
    pub value: Scalar,
}

#[derive(Serialize, Deserialize)]
pub struct Phase3P2p {
    pub zero: TransmitInitZeroSharePhase3to4,
    pub mul: TransmitInitMulPhase3to4<Secp256k1>,
}

/// The state DKG and refresh both keep between phases.
pub struct Dealing {
    pub ctx: Ctx,
    pub n: u8,
    pub others: Vec<u8>,
    own_fragment: Option<Scalar>,
    /// Every party's phase-2 DLog proof commitment, in party order after phase 3.
    pub proofs: Vec<ProofCommitment<Secp256k1>>,
    /// The zero-share commitments received in phase 3.
    pub zero2: Vec<TransmitInitZeroSharePhase2to4>,
    shape_b2: Option<Vec<u32>>,
    shape_p2: Option<Vec<u32>>,
    shape_p3: Option<Vec<u32>>,
}

impl Dealing {
    pub fn new(ceremony: Ceremony, session: &[u8], me: u8, n: u8) -> Result<Dealing> {
        let session = wire::session_id(session)?;
        Ok(Dealing {
            ctx: Ctx { ceremony, session, me, done: 0 },
            n,
            others: (1..=n).filter(|&j| j != me).collect(),
            own_fragment: None,
            proofs: Vec::new(),
            zero2: Vec::new(),
            shape_b2: None,
            shape_p2: None,
            shape_p3: None,
        })
    }

    /// Wipes the common keep-state.
    pub fn close(&mut self) {
        self.ctx.done = CLOSED;
        if let Some(f) = self.own_fragment.as_mut() {
            f.zeroize();
        }
        self.own_fragment = None;
        self.proofs.clear();
        self.zero2.clear();
    }

    /// Phase 1: sends fragment j to party j and keeps our own (all n are wiped here).
    pub fn deal(&mut self, mut fragments: Vec<Scalar>) -> Result<Vec<Vec<u8>>> {
        let ctx = &self.ctx;
        let out = self
            .others
            .iter()
            .map(|&j| ctx.msg(1, j, &Fragment { value: fragments[(j - 1) as usize] }))
            .collect::<Result<Vec<_>>>();
        self.own_fragment = Some(fragments[(ctx.me - 1) as usize]);
        fragments.zeroize();
        out
    }

    /// Phase 2: the n polynomial fragments (ours plus one from each other
    /// party, in party order) that the library consumes. The caller wipes them.
    pub fn fragments(&mut self, input: &[u8]) -> Result<Vec<Scalar>> {
        let got = wire::collect(input, &self.ctx.expect(1, &self.others, false, true))?;
        let mut own = self.own_fragment.take();
        let mut frags = Vec::with_capacity(self.n as usize);
        for j in 1..=self.n {
            if j == self.ctx.me {
                let f = own
                    .take()
                    .ok_or_else(|| Error::new(Code::SessionClosed, "missing own fragment"))?;
                frags.push(f);
            } else {
                let body = got.get(&j).and_then(|d| d.p2p).unwrap_or_default();
                match decode_body::<Fragment>(body, j) {
                    Ok(f) => frags.push(f.value),
                    Err(e) => {
                        frags.zeroize();
                        return Err(e);
                    }
                }
            }
        }
        Ok(frags)
    }

    /// Phase 2: our broadcast (which carries `proof`) and zero-share
    /// commitments; `proof` is kept for phase 4.
    pub fn send_phase2<B: Serialize>(
        &mut self,
        broadcast: &B,
        proof: ProofCommitment<Secp256k1>,
        zero: &[TransmitInitZeroSharePhase2to4],
    ) -> Result<Vec<Vec<u8>>> {
        self.shape_b2 = crate::shape::shape_of(broadcast);
        let mut out = vec![self.ctx.msg(2, BROADCAST, broadcast)?];
        out.extend(self.ctx.msgs(2, zero, |m| m.parties.receiver.as_u8(), &mut self.shape_p2)?);
        self.proofs.push(proof);
        Ok(out)
    }

    /// Phase 3: decodes and checks every party's phase-2 broadcast and its
    /// zero-share commitment to us. `proof_of` takes the DLog proof commitment
    /// out of party j's broadcast (keeping what else it carries), or returns
    /// `None` when the broadcast names another sender.
    pub fn receive_phase2<B: DeserializeOwned + Serialize>(
        &mut self,
        input: &[u8],
        mut proof_of: impl FnMut(B, u8) -> Option<ProofCommitment<Secp256k1>>,
    ) -> Result<()> {
        let me = self.ctx.me;
        let got = wire::collect(input, &self.ctx.expect(2, &self.others, true, true))?;
        for (&j, d) in &got {
            let bc: B = decode_body(d.broadcast.unwrap_or_default(), j)?;
            check_shape(&bc, &self.shape_b2, j)?;
            let proof = proof_of(bc, j).ok_or_else(|| other_sender(j))?;
            let zero: TransmitInitZeroSharePhase2to4 = decode_body(d.p2p.unwrap_or_default(), j)?;
            check_shape(&zero, &self.shape_p2, j)?;
            check_route(j, me, zero.parties.sender.as_u8(), zero.parties.receiver.as_u8())?;
            self.proofs.push(proof);
            self.zero2.push(zero);
        }
        self.proofs.sort_by_key(|p| p.index);
        Ok(())
    }

    /// Phase 3: pairs the library's zero-share and OT messages by receiver
    /// into one point-to-point message each (the seeds are wiped once encoded).
    pub fn send_phase3(
        &mut self,
        zero3: Vec<TransmitInitZeroSharePhase3to4>,
        mul3: Vec<TransmitInitMulPhase3to4<Secp256k1>>,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<()> {
        let mut zero_by: BTreeMap<u8, _> =
            zero3.into_iter().map(|z| (z.parties.receiver.as_u8(), z)).collect();
        for mul in mul3 {
            let j = mul.parties.receiver.as_u8();
            let zero = zero_by.remove(&j).ok_or_else(|| no_phase3(j))?;
            let mut body = Phase3P2p { zero, mul };
            self.shape_p3 = crate::shape::shape_of(&body);
            let m = self.ctx.msg(3, j, &body);
            body.zero.seed.zeroize();
            out.push(m?);
        }
        if let Some(&j) = zero_by.keys().next() {
            for z in zero_by.values_mut() {
                z.seed.zeroize();
            }
            return Err(no_phase3(j));
        }
        Ok(())
    }

    /// Phase 4: decodes and checks every party's phase-3 point-to-point
    /// message; `broadcast` (DKG only) handles party j's phase-3 broadcast.
    pub fn receive_phase3(
        &self,
        input: &[u8],
        mut broadcast: Option<&mut dyn FnMut(&[u8], u8) -> Result<()>>,
    ) -> Result<Phase3In> {
        let me = self.ctx.me;
        let want = self.ctx.expect(3, &self.others, broadcast.is_some(), true);
        let got = wire::collect(input, &want)?;
        let mut zero3 = Vec::with_capacity(got.len());
        let mut mul3 = Vec::with_capacity(got.len());
        for (&j, d) in &got {
            if let Some(f) = broadcast.as_mut() {
                f(d.broadcast.unwrap_or_default(), j)?;
            }
            let p: Phase3P2p = decode_body(d.p2p.unwrap_or_default(), j)?;
            check_shape(&p, &self.shape_p3, j)?;
            check_route(j, me, p.zero.parties.sender.as_u8(), p.zero.parties.receiver.as_u8())?;
            check_route(j, me, p.mul.parties.sender.as_u8(), p.mul.parties.receiver.as_u8())?;
            zero3.push(p.zero);
            mul3.push(p.mul);
        }
        Ok(Phase3In { zero3, mul3 })
    }
}

pub fn other_sender(j: u8) -> Error {
    Error::blame(
        Code::UnexpectedMessage,
        j,
        format!("broadcast from party {j} names another sender"),
    )
}

fn no_phase3(j: u8) -> Error {
    Error::new(Code::ProtocolAbort, format!("library produced no phase-3 message for party {j}"))
}

/// The phase-3 messages received, split as the library consumes them. The
/// zero-share seeds are wiped on drop.
pub struct Phase3In {
    pub zero3: Vec<TransmitInitZeroSharePhase3to4>,
    pub mul3: Vec<TransmitInitMulPhase3to4<Secp256k1>>,
}

impl Drop for Phase3In {
    fn drop(&mut self) {
        for z in self.zero3.iter_mut() {
            z.seed.zeroize();
        }
    }
}
