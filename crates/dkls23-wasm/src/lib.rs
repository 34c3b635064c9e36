//! DKLs23 threshold ECDSA over secp256k1, phase by phase, for the signing
//! enclave. The pure-Rust API here is what the wasm bindings (and the native
//! benchmark) drive; secret state stays inside the session objects and the
//! key share, and leaves only as opaque bytes meant for sealing.

pub mod dkg;
pub mod error;
pub mod refresh;
pub mod session;
pub mod shape;
pub mod share;
pub mod sign;
pub mod wire;

#[cfg(target_arch = "wasm32")]
mod bindings;

pub use error::{Code, Error, Result};
