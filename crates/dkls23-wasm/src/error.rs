//! One typed error for every failure the core can report. It names a stable
//! machine-readable code, a sentence, and where known the party to blame.

use crate::lib_core::protocols::{Abort, AbortKind};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Threshold, party count, party index, digest or path out of range.
    InvalidParameters,
    /// Bytes that do not decode (bad version, truncated, oversized, trailing bytes).
    MalformedMessage,
    /// A message for another session, ceremony, phase, sender or recipient;
    /// a duplicate; or a missing one.
    UnexpectedMessage,
    /// The DKLs23 library aborted: a proof, commitment or consistency check failed.
    ProtocolAbort,
    /// A serialized key share or public package that is malformed or inconsistent.
    InvalidShare,
    /// BIP-32 derivation failed.
    Derivation,
    /// A phase was called out of order, or the session already failed or finished.
    SessionClosed,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidParameters => "invalid_parameters",
            Code::MalformedMessage => "malformed_message",
            Code::UnexpectedMessage => "unexpected_message",
            Code::ProtocolAbort => "protocol_abort",
            Code::InvalidShare => "invalid_share",
            Code::Derivation => "derivation",
            Code::SessionClosed => "session_closed",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Error {
    pub code: Code,
    pub message: String,
    /// The party whose message or behaviour caused the failure, when known.
    pub party: Option<u8>,
    /// The library demands that `party` be excluded from all future sessions
    /// (a failed OT consistency check leaks reusable state).
    pub ban: bool,
}

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error { code, message: message.into(), party: None, ban: false }
    }

    pub fn blame(code: Code, party: u8, message: impl Into<String>) -> Self {
        Error { code, message: message.into(), party: Some(party), ban: false }
    }

    pub fn from_abort(abort: &Abort) -> Self {
        use crate::lib_core::protocols::AbortReason as R;
        let party = match &abort.reason {
            R::DuplicateCounterparty { index } | R::InvalidPartyIndex { index } => {
                Some(index.as_u8())
            }
            R::MissingMulState { counterparty }
            | R::SessionBindingMismatch { counterparty }
            | R::ProofVerificationFailed { counterparty }
            | R::CommitmentMismatch { counterparty }
            | R::TrivialInstancePoint { counterparty }
            | R::OtConsistencyCheckFailed { counterparty }
            | R::MultiplicationVerificationFailed { counterparty, .. }
            | R::GammaUInconsistency { counterparty }
            | R::ZeroShareDecommitFailed { counterparty } => Some(counterparty.as_u8()),
            R::UnexpectedSender { sender } | R::DuplicateSender { sender } => Some(sender.as_u8()),
            R::MissingMessageFromParty { party }
            | R::MissingCommittedPoint { party }
            | R::ChainCodeCommitmentFailed { party } => Some(party.as_u8()),
            R::MisroutedMessage { .. } => None,
            _ => None,
        };
        let (party, ban) = match abort.kind {
            AbortKind::BanCounterparty(p) => (Some(p.as_u8()), true),
            AbortKind::Recoverable => (party, false),
        };
        Error {
            code: Code::ProtocolAbort,
            message: format!("party {} aborted: {}", abort.index, abort.description()),
            party,
            ban,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)?;
        if let Some(p) = self.party {
            write!(f, " (party {p})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
