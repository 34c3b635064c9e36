//! The protocol message format shared by every ceremony, and the bounded
//! decoders for it.
//!
//! A message is a 37-byte header followed by a postcard body:
//!
//! | offset | size | field                                            |
//! |--------|------|--------------------------------------------------|
//! | 0      | 1    | wire version (1)                                 |
//! | 1      | 1    | ceremony: 1 DKG, 2 sign, 3 refresh, 6 reshare    |
//! | 2      | 1    | phase that produced it (1-based)                 |
//! | 3      | 1    | sender party index (1..=16)                      |
//! | 4      | 1    | recipient party index, 0 = broadcast to all      |
//! | 5      | 32   | session id                                       |
//! | 37     | ..   | body (postcard, type fixed by ceremony + phase)  |
//!
//! Lists of messages crossing the wasm boundary are `u16 count` then, per
//! item, `u32 length` (big-endian) and the bytes.

use crate::error::{Code, Error, Result};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::BTreeMap;

pub const WIRE_VERSION: u8 = 1;
pub const HEADER_LEN: usize = 37;
pub const SESSION_ID_LEN: usize = 32;
/// The largest honest message (DKG/refresh phase 3, OT base setup) is
/// ~140 KiB; this bound leaves room without letting a peer make us allocate much.
pub const MAX_MESSAGE_LEN: usize = 256 * 1024;
/// At most 16 parties, two messages (broadcast + point-to-point) each.
pub const MAX_LIST_ITEMS: usize = 64;
pub const BROADCAST: u8 = 0;
pub const MAX_PARTIES: u8 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Ceremony {
    Dkg = 1,
    Sign = 2,
    Refresh = 3,
    // 4 and 5 are the host-level import and repair exchanges
    // (src/shared/wire/protocol-message.ts).
    Reshare = 6,
}

impl Ceremony {
    pub fn name(self) -> &'static str {
        match self {
            Ceremony::Dkg => "dkg",
            Ceremony::Sign => "sign",
            Ceremony::Refresh => "refresh",
            Ceremony::Reshare => "reshare",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub ceremony: u8,
    pub phase: u8,
    pub from: u8,
    pub to: u8,
    pub session: [u8; SESSION_ID_LEN],
}

pub fn encode<T: Serialize>(header: &Header, body: &T) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(HEADER_LEN + 256);
    out.push(WIRE_VERSION);
    out.push(header.ceremony);
    out.push(header.phase);
    out.push(header.from);
    out.push(header.to);
    out.extend_from_slice(&header.session);
    let out = postcard::to_extend(body, out)
        .map_err(|e| Error::new(Code::MalformedMessage, format!("cannot encode message: {e}")))?;
    if out.len() > MAX_MESSAGE_LEN {
        return Err(Error::new(Code::MalformedMessage, "encoded message exceeds the size limit"));
    }
    Ok(out)
}

pub fn decode_header(bytes: &[u8]) -> Result<Header> {
    if bytes.len() < HEADER_LEN {
        return Err(Error::new(
            Code::MalformedMessage,
            format!(
                "message of {} bytes is shorter than the {HEADER_LEN}-byte header",
                bytes.len()
            ),
        ));
    }
    if bytes.len() > MAX_MESSAGE_LEN {
        return Err(Error::new(Code::MalformedMessage, "message exceeds the size limit"));
    }
    if bytes[0] != WIRE_VERSION {
        return Err(Error::new(
            Code::MalformedMessage,
            format!("unknown wire version {}", bytes[0]),
        ));
    }
    let mut session = [0u8; SESSION_ID_LEN];
    session.copy_from_slice(&bytes[5..HEADER_LEN]);
    Ok(Header { ceremony: bytes[1], phase: bytes[2], from: bytes[3], to: bytes[4], session })
}

/// Decodes a body; postcard reads every element from the input, so a length
/// prefix cannot claim more than the (already bounded) slice holds.
pub fn decode_body<T: DeserializeOwned>(bytes: &[u8], from: u8) -> Result<T> {
    let (value, rest) = postcard::take_from_bytes::<T>(bytes).map_err(|e| {
        Error::blame(
            Code::MalformedMessage,
            from,
            format!("message from party {from} does not decode: {e}"),
        )
    })?;
    if !rest.is_empty() {
        return Err(Error::blame(
            Code::MalformedMessage,
            from,
            format!("message from party {from} has {} trailing bytes", rest.len()),
        ));
    }
    Ok(value)
}

pub fn encode_list(items: &[Vec<u8>]) -> Vec<u8> {
    let total: usize = items.iter().map(|i| i.len() + 4).sum::<usize>() + 2;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(items.len() as u16).to_be_bytes());
    for item in items {
        out.extend_from_slice(&(item.len() as u32).to_be_bytes());
        out.extend_from_slice(item);
    }
    out
}

pub fn decode_list(bytes: &[u8]) -> Result<Vec<&[u8]>> {
    let bad = |m: &str| Error::new(Code::MalformedMessage, format!("message list: {m}"));
    if bytes.len() < 2 {
        return Err(bad("truncated count"));
    }
    let count = u16::from_be_bytes([bytes[0], bytes[1]]) as usize;
    if count > MAX_LIST_ITEMS {
        return Err(bad("too many messages"));
    }
    let mut items = Vec::with_capacity(count);
    let mut at = 2usize;
    for _ in 0..count {
        if bytes.len() - at < 4 {
            return Err(bad("truncated length"));
        }
        let len =
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        at += 4;
        if len > MAX_MESSAGE_LEN || bytes.len() - at < len {
            return Err(bad("item length out of bounds"));
        }
        items.push(&bytes[at..at + len]);
        at += len;
    }
    if at != bytes.len() {
        return Err(bad("trailing bytes"));
    }
    Ok(items)
}

/// The messages among `outgoing` (grouped by sender) that party `me` must
/// receive, as a list for its next phase: broadcasts and those addressed to it.
/// The Rust twin of `inboxFor` in src/shared/protocol-message.ts.
pub fn route(outgoing: &[(u8, Vec<Vec<u8>>)], me: u8) -> Result<Vec<u8>> {
    let mut items = Vec::new();
    for (from, msgs) in outgoing {
        if *from == me {
            continue;
        }
        for m in msgs {
            let h = decode_header(m)?;
            if h.to == BROADCAST || h.to == me {
                items.push(m.clone());
            }
        }
    }
    Ok(encode_list(&items))
}

/// What one sender delivered for a phase.
#[derive(Default)]
pub struct Delivered<'a> {
    pub broadcast: Option<&'a [u8]>,
    pub p2p: Option<&'a [u8]>,
}

/// What a phase expects to receive.
pub struct Expect<'s> {
    pub ceremony: Ceremony,
    /// The phase whose output we are consuming.
    pub phase: u8,
    pub session: &'s [u8; SESSION_ID_LEN],
    pub me: u8,
    pub senders: &'s [u8],
    pub broadcast: bool,
    pub p2p: bool,
}

/// Checks headers and completeness: exactly the expected kinds from exactly
/// the expected senders, each once. Returns the bodies by sender.
pub fn collect<'a>(list: &'a [u8], want: &Expect<'_>) -> Result<BTreeMap<u8, Delivered<'a>>> {
    let items = decode_list(list)?;
    let mut by_sender: BTreeMap<u8, Delivered<'a>> =
        want.senders.iter().map(|&s| (s, Delivered::default())).collect();
    for raw in items {
        let h = decode_header(raw)?;
        let from = h.from;
        let unexpected = |m: String| Err(Error::blame(Code::UnexpectedMessage, from, m));
        if h.session != *want.session {
            return unexpected(format!("message from party {from} belongs to another session"));
        }
        if h.ceremony != want.ceremony as u8 || h.phase != want.phase {
            return unexpected(format!(
                "message from party {from} is for ceremony {} phase {}, expected {} phase {}",
                h.ceremony,
                h.phase,
                want.ceremony.name(),
                want.phase
            ));
        }
        let Some(slot) = by_sender.get_mut(&from) else {
            return unexpected(format!("party {from} is not a participant expected to send here"));
        };
        let body = &raw[HEADER_LEN..];
        let target = if h.to == BROADCAST {
            if !want.broadcast {
                return unexpected(format!("unexpected broadcast from party {from}"));
            }
            &mut slot.broadcast
        } else if h.to == want.me {
            if !want.p2p {
                return unexpected(format!("unexpected point-to-point message from party {from}"));
            }
            &mut slot.p2p
        } else {
            return unexpected(format!("message from party {from} is addressed to party {}", h.to));
        };
        if target.is_some() {
            return unexpected(format!("duplicate message from party {from}"));
        }
        *target = Some(body);
    }
    for (&s, d) in &by_sender {
        if (want.broadcast && d.broadcast.is_none()) || (want.p2p && d.p2p.is_none()) {
            return Err(Error::blame(
                Code::UnexpectedMessage,
                s,
                format!("missing message from party {s}"),
            ));
        }
    }
    Ok(by_sender)
}

/// Rejects a received value whose structure differs from one we produced.
pub fn check_shape<T: Serialize>(
    received: &T,
    template: &Option<Vec<u32>>,
    from: u8,
) -> Result<()> {
    let ok = match (template, crate::shape::shape_of(received)) {
        (Some(t), Some(r)) => *t == r,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::blame(
            Code::MalformedMessage,
            from,
            format!("message from party {from} has the wrong structure"),
        ))
    }
}

pub fn session_id(bytes: &[u8]) -> Result<[u8; SESSION_ID_LEN]> {
    bytes.try_into().map_err(|_| {
        Error::new(
            Code::InvalidParameters,
            format!("session id must be {SESSION_ID_LEN} bytes, got {}", bytes.len()),
        )
    })
}
