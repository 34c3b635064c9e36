//! Signing over exactly t parties, four phases:
//!
//! | phase | sends                                      |
//! |-------|--------------------------------------------|
//! | 1     | p2p: commitment + OT extension (TransmitPhase1to2) |
//! | 2     | p2p: multiplication answer (TransmitPhase2to3)     |
//! | 3     | broadcast: u, w (Broadcast3to4)                    |
//! | 4     | nothing: r, s (low-S) and recovery id              |

use crate::error::{Code, Error, Result};
use crate::lib_core::protocols::signing::{
    Broadcast3to4, KeepPhase1to2, KeepPhase2to3, SignData, TransmitPhase1to2, TransmitPhase2to3,
    UniqueKeep1to2, UniqueKeep2to3,
};
use crate::lib_core::protocols::PartyIndex;
use crate::session::{counterparties, fail_closed, receive_p2p, Ctx, FailClosed, Phases, CLOSED};
use crate::share::KeyShare;
use crate::wire::{self, check_shape, decode_body, Ceremony, BROADCAST};
use k256::Secp256k1;
use std::collections::BTreeMap;
use std::rc::Rc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub r: [u8; 32],
    pub s: [u8; 32],
    pub recovery_id: u8,
}

type Kept1 = (UniqueKeep1to2<Secp256k1>, BTreeMap<PartyIndex, KeepPhase1to2<Secp256k1>>);
type Kept2 = (UniqueKeep2to3<Secp256k1>, BTreeMap<PartyIndex, KeepPhase2to3<Secp256k1>>);

pub struct Sign {
    ctx: Ctx,
    share: Rc<KeyShare>,
    others: Vec<u8>,
    data: SignData,
    kept1: Option<Kept1>,
    kept2: Option<Kept2>,
    x_coord: Option<String>,
    own_broadcast: Option<Broadcast3to4<Secp256k1>>,
    shape_p1: Option<Vec<u32>>,
    shape_p2: Option<Vec<u32>>,
    shape_b3: Option<Vec<u32>>,
}

fn no_state(phase: u8) -> Error {
    Error::new(Code::SessionClosed, format!("no phase-{phase} state"))
}

impl Sign {
    /// `parties`: all t signers (including this one), strictly increasing.
    /// `path`: optional non-hardened BIP-32 path; every signer must use the same.
    pub fn new(
        share: Rc<KeyShare>,
        path: Option<&str>,
        session: &[u8],
        parties: &[u8],
        digest: &[u8],
    ) -> Result<Sign> {
        let sid = wire::session_id(session)?;
        let message_hash: [u8; 32] = digest.try_into().map_err(|_| {
            Error::new(
                Code::InvalidParameters,
                format!("digest must be 32 bytes, got {}", digest.len()),
            )
        })?;
        let me = share.index();
        if parties.len() != share.threshold() as usize {
            return Err(Error::new(
                Code::InvalidParameters,
                format!(
                    "signing needs exactly t={} parties, got {}",
                    share.threshold(),
                    parties.len()
                ),
            ));
        }
        let others = counterparties(parties, me, share.share_count())?;
        let share = match path {
            Some(p) if p != "m" => Rc::new(share.derive(p)?),
            _ => share,
        };
        let data = SignData {
            sign_id: sid.to_vec(),
            counterparties: others
                .iter()
                .map(|&j| PartyIndex::new(j).expect("checked non-zero"))
                .collect(),
            message_hash,
        };
        Ok(Sign {
            ctx: Ctx { ceremony: Ceremony::Sign, session: sid, me, done: 0 },
            share,
            others,
            data,
            kept1: None,
            kept2: None,
            x_coord: None,
            own_broadcast: None,
            shape_p1: None,
            shape_p2: None,
            shape_b3: None,
        })
    }
}

impl Phases for Sign {
    type Output = Signature;

    /// The keep types zeroize on drop.
    fn close(&mut self) {
        self.ctx.done = CLOSED;
        self.kept1 = None;
        self.kept2 = None;
        self.x_coord = None;
        self.own_broadcast = None;
    }

    fn phase1(&mut self) -> Result<Vec<Vec<u8>>> {
        self.run(1, |s| {
            let (unique, kept, transmit) =
                s.share.party.sign_phase1(&s.data).map_err(|a| Error::from_abort(&a))?;
            s.kept1 = Some((unique, kept));
            s.ctx.msgs(1, &transmit, |m| m.parties.receiver.as_u8(), &mut s.shape_p1)
        })
    }

    fn phase2(&mut self, input: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.run(2, |s| {
            let got = wire::collect(input, &s.ctx.expect(1, &s.others, false, true))?;
            let received = receive_p2p(&got, s.ctx.me, &s.shape_p1, |m: &TransmitPhase1to2| {
                (m.parties.sender.as_u8(), m.parties.receiver.as_u8())
            })?;
            let (unique, kept) = s.kept1.take().ok_or_else(|| no_state(1))?;
            let (unique2, kept2, transmit) = s
                .share
                .party
                .sign_phase2(&s.data, unique, kept, &received)
                .map_err(|a| Error::from_abort(&a))?;
            s.kept2 = Some((unique2, kept2));
            s.ctx.msgs(2, &transmit, |m| m.parties.receiver.as_u8(), &mut s.shape_p2)
        })
    }

    fn phase3(&mut self, input: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.run(3, |s| {
            let got = wire::collect(input, &s.ctx.expect(2, &s.others, false, true))?;
            let received =
                receive_p2p(&got, s.ctx.me, &s.shape_p2, |m: &TransmitPhase2to3<Secp256k1>| {
                    (m.parties.sender.as_u8(), m.parties.receiver.as_u8())
                })?;
            let (unique, kept) = s.kept2.take().ok_or_else(|| no_state(2))?;
            let (x_coord, broadcast) = s
                .share
                .party
                .sign_phase3(&s.data, unique, kept, &received)
                .map_err(|a| Error::from_abort(&a))?;
            s.shape_b3 = crate::shape::shape_of(&broadcast);
            let out = vec![s.ctx.msg(3, BROADCAST, &broadcast)?];
            s.x_coord = Some(x_coord);
            s.own_broadcast = Some(broadcast);
            Ok(out)
        })
    }

    fn phase4(&mut self, input: &[u8]) -> Result<Signature> {
        self.run(4, |s| {
            let got = wire::collect(input, &s.ctx.expect(3, &s.others, true, false))?;
            let own = s.own_broadcast.take().ok_or_else(|| no_state(3))?;
            let mut all = vec![own];
            for (&j, d) in &got {
                let m: Broadcast3to4<Secp256k1> = decode_body(d.broadcast.unwrap_or_default(), j)?;
                check_shape(&m, &s.shape_b3, j)?;
                all.push(m);
            }
            let x_coord = s.x_coord.take().ok_or_else(|| no_state(3))?;
            let (s_hex, recovery_id) = s
                .share
                .party
                .sign_phase4(&s.data, &x_coord, &all, true)
                .map_err(|a| Error::from_abort(&a))?;
            let mut r = [0u8; 32];
            let mut sig_s = [0u8; 32];
            hex::decode_to_slice(&x_coord, &mut r)
                .and_then(|_| hex::decode_to_slice(&s_hex, &mut sig_s))
                .map_err(|e| {
                    Error::new(Code::ProtocolAbort, format!("library returned bad hex: {e}"))
                })?;
            Ok(Signature { r, s: sig_s, recovery_id })
        })
    }
}

fail_closed!(Sign, ctx);
