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

use crate::bodies::Dealing;
use crate::error::{Code, Error, Result};
use crate::lib_core::protocols::dkg::{
    KeepInitMulPhase3to4, KeepInitZeroSharePhase2to3, KeepInitZeroSharePhase3to4, ProofCommitment,
};
use crate::lib_core::protocols::PartyIndex;
use crate::session::{fail_closed, FailClosed, Phases};
use crate::share::{KeyShare, Package};
use crate::wire::Ceremony;
use k256::{ProjectivePoint, Scalar, Secp256k1};
use std::collections::BTreeMap;
use std::rc::Rc;
use zeroize::Zeroize;

pub struct Refresh {
    d: Dealing,
    share: Rc<KeyShare>,
    correction: Option<Scalar>,
    zero_keep2: BTreeMap<PartyIndex, KeepInitZeroSharePhase2to3>,
    zero_keep3: BTreeMap<PartyIndex, KeepInitZeroSharePhase3to4>,
    mul_keep3: BTreeMap<PartyIndex, KeepInitMulPhase3to4<Secp256k1>>,
}

impl Refresh {
    pub fn new(share: Rc<KeyShare>, session: &[u8]) -> Result<Refresh> {
        let d = Dealing::new(Ceremony::Refresh, session, share.index(), share.share_count())?;
        Ok(Refresh {
            d,
            share,
            correction: None,
            zero_keep2: BTreeMap::new(),
            zero_keep3: BTreeMap::new(),
            mul_keep3: BTreeMap::new(),
        })
    }
}

impl Phases for Refresh {
    type Output = KeyShare;

    fn close(&mut self) {
        self.d.close();
        if let Some(c) = self.correction.as_mut() {
            c.zeroize();
        }
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
    }

    fn phase1(&mut self) -> Result<Vec<Vec<u8>>> {
        self.run(1, |s| s.d.deal(s.share.party.refresh_complete_phase1()))
    }

    fn phase2(&mut self, input: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.run(2, |s| {
            let mut frags = s.d.fragments(input)?;
            let (correction, proof, zero_keep, zero) =
                s.share.party.refresh_complete_phase2(&s.d.ctx.session, &frags);
            frags.zeroize();
            s.correction = Some(correction);
            s.zero_keep2 = zero_keep;
            s.d.send_phase2(&proof, proof.clone(), &zero)
        })
    }

    fn phase3(&mut self, input: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.run(3, |s| {
            s.d.receive_phase2(input, |p: ProofCommitment<Secp256k1>, j| {
                (p.index.as_u8() == j).then_some(p)
            })?;
            let (zero_keep3, zero3, mul_keep3, mul3) =
                s.share.party.refresh_complete_phase3(&s.d.ctx.session, &s.zero_keep2);
            s.zero_keep3 = zero_keep3;
            s.mul_keep3 = mul_keep3;
            let mut out = Vec::with_capacity(mul3.len());
            s.d.send_phase3(zero3, mul3, &mut out)?;
            Ok(out)
        })
    }

    fn phase4(&mut self, input: &[u8]) -> Result<KeyShare> {
        self.run(4, |s| {
            let p3 = s.d.receive_phase3(input, None)?;
            let correction =
                s.correction.ok_or_else(|| Error::new(Code::SessionClosed, "no phase-2 state"))?;
            let result = s.share.party.refresh_complete_phase4(
                &s.d.ctx.session,
                &correction,
                &s.d.proofs,
                &s.zero_keep3,
                &s.d.zero2,
                &p3.zero3,
                &s.mul_keep3,
                &p3.mul3,
            );
            let party = result.map_err(|a| Error::from_abort(&a))?;
            // Each verifying share moves by its party's correction point, which
            // the library has just verified through the DLog proofs.
            let old = &s.share.package;
            let mut shares = BTreeMap::new();
            for p in &s.d.proofs {
                let prev = old.verifying_share(p.index).ok_or_else(|| {
                    Error::new(Code::InvalidShare, format!("package lacks party {}", p.index))
                })?;
                shares.insert(p.index, (ProjectivePoint::from(*prev) + p.proof.point).to_affine());
            }
            let package =
                Package::new(*old.verifying_key(), shares, s.share.party.parameters.clone());
            let share = KeyShare { party, package, generation: s.share.generation + 1 };
            share.validate()?;
            Ok(share)
        })
    }
}

fail_closed!(Refresh, d.ctx);
