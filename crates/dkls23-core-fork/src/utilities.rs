//! Extra functionalities needed in `protocols`.

// Fork: public (hidden) so that crates/dkls23-wasm/tests can compare its
// routines with the generic ones.
#[doc(hidden)]
pub mod arith;
pub mod commits;
pub(crate) mod ct;
pub mod hashes;
pub mod multiplication;
pub mod oracle_tags;
pub mod ot;
// Fork: per-counterparty work, on threads with the `parallel` feature.
pub mod par;
pub mod proofs;
pub mod rng;
pub mod sha256x4;
pub mod zero_shares;
pub const ID_LEN: usize = 32;
