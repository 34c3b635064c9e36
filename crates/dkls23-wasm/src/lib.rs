//! DKLs23 threshold ECDSA over secp256k1, phase by phase, for the signing
//! enclave. The pure-Rust API here is what the wasm bindings (and the native
//! benchmark) drive; secret state stays inside the session objects and the
//! key share, and leaves only as opaque bytes meant for sealing.

pub mod bodies;
pub mod dkg;
pub mod error;
pub mod refresh;
pub mod rekey;
pub mod repair;
/// Resharing is the fork's own protocol (upstream 0.6.2 has none): absent from
/// the `upstream` baseline build.
#[cfg(not(feature = "upstream"))]
pub mod reshare;
pub mod session;
pub mod shape;
pub mod share;
pub mod sign;
pub mod wire;

#[cfg(target_arch = "wasm32")]
mod bindings;

/// The DKLs23 implementation every ceremony drives: the repository's fork of
/// dkls23-core, instantiated for secp256k1 as dkls23-secp256k1 does upstream.
#[cfg(not(feature = "upstream"))]
pub mod lib_core {
    pub use dkls23_core_fork::*;

    pub type Party = protocols::Party<k256::Secp256k1>;
    pub type PublicKeyPackage = protocols::PublicKeyPackage<k256::Secp256k1>;
}

/// Upstream instead, for the benchmark's baseline (`--features upstream`).
#[cfg(feature = "upstream")]
pub use dkls23_secp256k1 as lib_core;

pub use error::{Code, Error, Result};
pub use session::Phases;
