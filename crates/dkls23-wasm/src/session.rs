//! What every ceremony state machine shares: its identity, message framing,
//! and the fail-closed rule (after any error the session only says "closed").

use crate::error::{Code, Error, Result};
use crate::wire::{self, Ceremony, Header, SESSION_ID_LEN};
use serde::Serialize;

pub struct Ctx {
    pub ceremony: Ceremony,
    pub session: [u8; SESSION_ID_LEN],
    pub me: u8,
    /// Phases completed so far; `u8::MAX` once failed or finished.
    pub done: u8,
}

pub const CLOSED: u8 = u8::MAX;

impl Ctx {
    pub fn msg<T: Serialize>(&self, phase: u8, to: u8, body: &T) -> Result<Vec<u8>> {
        let header = Header { ceremony: self.ceremony as u8, phase, from: self.me, to, session: self.session };
        wire::encode(&header, body)
    }

    pub fn expect<'s>(&'s self, phase: u8, senders: &'s [u8], broadcast: bool, p2p: bool) -> wire::Expect<'s> {
        wire::Expect { ceremony: self.ceremony, phase, session: &self.session, me: self.me, senders, broadcast, p2p }
    }

    /// Enforces phase order; called at the start of phase `phase`.
    pub fn begin(&self, phase: u8) -> Result<()> {
        if self.done == CLOSED {
            return Err(Error::new(Code::SessionClosed, format!("{} session is closed (failed or finished)", self.ceremony.name())));
        }
        if self.done + 1 != phase {
            return Err(Error::new(
                Code::SessionClosed,
                format!("{} phase {phase} called after phase {}", self.ceremony.name(), self.done),
            ));
        }
        Ok(())
    }
}

/// Checks the library-level sender/receiver fields against the header.
pub fn check_route(from: u8, me: u8, sender: u8, receiver: u8) -> Result<()> {
    if sender != from || receiver != me {
        return Err(Error::blame(
            Code::UnexpectedMessage,
            from,
            format!("message from party {from} claims route {sender}->{receiver}"),
        ));
    }
    Ok(())
}

/// Validates a signer or participant set: sorted, unique, within 1..=n, and
/// containing `me`. Returns the counterparties.
pub fn counterparties(parties: &[u8], me: u8, n: u8) -> Result<Vec<u8>> {
    let bad = |m: String| Err(Error::new(Code::InvalidParameters, m));
    if parties.windows(2).any(|w| w[0] >= w[1]) {
        return bad("party list must be strictly increasing".into());
    }
    if parties.iter().any(|&p| p == 0 || p > n) {
        return bad(format!("party list has an index outside 1..={n}"));
    }
    if !parties.contains(&me) {
        return bad(format!("party list does not include this party ({me})"));
    }
    Ok(parties.iter().copied().filter(|&p| p != me).collect())
}

/// The fail-closed rule shared by every ceremony: phases run in order, and any
/// error closes the session (zeroizing its keep-state) before it is returned.
pub trait FailClosed {
    fn ctx(&mut self) -> &mut Ctx;
    fn close(&mut self);

    fn run<T>(&mut self, phase: u8, last: u8, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T>
    where
        Self: Sized,
    {
        self.ctx().begin(phase)?;
        match f(self) {
            Ok(v) => {
                self.ctx().done = if phase == last { CLOSED } else { phase };
                Ok(v)
            }
            Err(e) => {
                self.close();
                Err(e)
            }
        }
    }
}

/// Assembles the n polynomial fragments (ours plus one from each other party,
/// in party order) that DKG and refresh phase 2 consume.
pub fn fragments(
    got: &std::collections::BTreeMap<u8, crate::wire::Delivered<'_>>,
    me: u8,
    n: u8,
    own: Option<k256::Scalar>,
) -> Result<Vec<k256::Scalar>> {
    let mut own = own;
    let mut frags = Vec::with_capacity(n as usize);
    for j in 1..=n {
        if j == me {
            frags.push(own.take().ok_or_else(|| Error::new(Code::SessionClosed, "missing own fragment"))?);
        } else {
            let body = got.get(&j).and_then(|d| d.p2p).unwrap_or_default();
            frags.push(crate::wire::decode_body::<crate::dkg::Fragment>(body, j)?.value);
        }
    }
    Ok(frags)
}
