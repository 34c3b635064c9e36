//! What every ceremony state machine shares: its identity, message framing,
//! the four-phase shape, and the fail-closed rule (after any error the session
//! only says "closed").

use crate::error::{Code, Error, Result};
use crate::shape::shape_of;
use crate::wire::{self, check_shape, decode_body, Ceremony, Delivered, Header, SESSION_ID_LEN};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::BTreeMap;

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
        let header = Header {
            ceremony: self.ceremony as u8,
            phase,
            from: self.me,
            to,
            session: self.session,
        };
        wire::encode(&header, body)
    }

    /// Encodes one message per body, addressed by `to`, and records the shape
    /// of what we send so that what we receive in return can be checked
    /// against it.
    pub fn msgs<T: Serialize>(
        &self,
        phase: u8,
        bodies: &[T],
        to: impl Fn(&T) -> u8,
        shape: &mut Option<Vec<u32>>,
    ) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::with_capacity(bodies.len());
        for m in bodies {
            *shape = shape_of(m);
            out.push(self.msg(phase, to(m), m)?);
        }
        Ok(out)
    }

    pub fn expect<'s>(
        &'s self,
        phase: u8,
        senders: &'s [u8],
        broadcast: bool,
        p2p: bool,
    ) -> wire::Expect<'s> {
        wire::Expect {
            ceremony: self.ceremony,
            phase,
            session: &self.session,
            me: self.me,
            senders,
            broadcast,
            p2p,
        }
    }

    /// Enforces phase order; called at the start of phase `phase`.
    pub fn begin(&self, phase: u8) -> Result<()> {
        if self.done == CLOSED {
            return Err(Error::new(
                Code::SessionClosed,
                format!("{} session is closed (failed or finished)", self.ceremony.name()),
            ));
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

/// Decodes the point-to-point body every sender delivered, checks its shape
/// against ours and its library-level route (`route` gives sender, receiver).
pub fn receive_p2p<T: DeserializeOwned + Serialize>(
    got: &BTreeMap<u8, Delivered<'_>>,
    me: u8,
    shape: &Option<Vec<u32>>,
    route: impl Fn(&T) -> (u8, u8),
) -> Result<Vec<T>> {
    let mut received = Vec::with_capacity(got.len());
    for (&j, d) in got {
        let m: T = decode_body(d.p2p.unwrap_or_default(), j)?;
        check_shape(&m, shape, j)?;
        let (sender, receiver) = route(&m);
        check_route(j, me, sender, receiver)?;
        received.push(m);
    }
    Ok(received)
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
pub trait FailClosed: Phases {
    fn ctx(&mut self) -> &mut Ctx;

    fn run<T>(&mut self, phase: u8, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T>
    where
        Self: Sized,
    {
        self.ctx().begin(phase)?;
        match f(self) {
            Ok(v) => {
                self.ctx().done = if phase == LAST_PHASE { CLOSED } else { phase };
                Ok(v)
            }
            Err(e) => {
                Phases::close(self);
                Err(e)
            }
        }
    }
}

/// Every ceremony has four phases; the last yields its result and sends nothing.
pub const LAST_PHASE: u8 = 4;

/// The four-phase shape of DKG, signing and refresh, so that drivers (the
/// wasm bindings, the native benchmark, the tests) run any of them alike.
pub trait Phases {
    type Output;
    fn phase1(&mut self) -> Result<Vec<Vec<u8>>>;
    fn phase2(&mut self, input: &[u8]) -> Result<Vec<Vec<u8>>>;
    fn phase3(&mut self, input: &[u8]) -> Result<Vec<Vec<u8>>>;
    fn phase4(&mut self, input: &[u8]) -> Result<Self::Output>;
    /// Drops and zeroizes all keep-state; the session answers only "closed".
    fn close(&mut self);

    /// Phase `phase` by number; phase 4's result is dropped.
    fn step(&mut self, phase: u8, input: &[u8]) -> Result<Vec<Vec<u8>>> {
        match phase {
            1 => self.phase1(),
            2 => self.phase2(input),
            3 => self.phase3(input),
            _ => self.phase4(input).map(|_| vec![]),
        }
    }
}

/// Implements `FailClosed` through the type's `Ctx` (the field path given), and a `Drop` that
/// closes (zeroizes) the session, for a ceremony type.
macro_rules! fail_closed {
    ($t:ty, $($ctx:ident).+) => {
        impl Drop for $t {
            fn drop(&mut self) {
                $crate::session::Phases::close(self);
            }
        }

        impl $crate::session::FailClosed for $t {
            fn ctx(&mut self) -> &mut $crate::session::Ctx {
                &mut self.$($ctx).+
            }
        }
    };
}
pub(crate) use fail_closed;
