//! wasm-bindgen surface. Thin: every method forwards to the pure-Rust core,
//! turns errors into JS `Error`s carrying `code`, `party` and `ban`, and
//! zeroizes the Rust-side copies of secret-bearing buffers once JS has them.

use crate::dkg::Dkg;
use crate::error::Error;
use crate::refresh::Refresh;
use crate::repair::HollowShare;
use crate::reshare::Reshare;
use crate::session::Phases;
use crate::share::{eth_address, KeyShare, PublicPackage};
use crate::sign::Sign;
use crate::wire;
use js_sys::{Reflect, Uint8Array};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use zeroize::Zeroize;

fn js_err(e: Error) -> JsValue {
    let err = js_sys::Error::new(&e.to_string());
    let _ = Reflect::set(&err, &"code".into(), &e.code.as_str().into());
    let _ =
        Reflect::set(&err, &"party".into(), &e.party.map(JsValue::from).unwrap_or(JsValue::NULL));
    let _ = Reflect::set(&err, &"ban".into(), &e.ban.into());
    err.into()
}

/// Copies into a JS array and wipes the wasm-side copy.
fn hand_over(mut bytes: Vec<u8>) -> Uint8Array {
    let out = Uint8Array::from(&bytes[..]);
    bytes.zeroize();
    out
}

fn list(r: crate::Result<Vec<Vec<u8>>>) -> Result<Uint8Array, JsValue> {
    let mut msgs = r.map_err(js_err)?;
    let encoded = wire::encode_list(&msgs);
    for m in msgs.iter_mut() {
        m.zeroize();
    }
    Ok(hand_over(encoded))
}

#[wasm_bindgen(js_name = KeyShare)]
pub struct WasmKeyShare {
    inner: Rc<KeyShare>,
}

#[wasm_bindgen(js_class = KeyShare)]
impl WasmKeyShare {
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(bytes: Vec<u8>) -> Result<WasmKeyShare, JsValue> {
        key_share(consume(bytes, KeyShare::from_bytes))
    }

    /// Opaque bytes, to be sealed inside the enclave and nowhere else.
    #[wasm_bindgen(js_name = toBytes)]
    pub fn to_bytes(&self) -> Result<Uint8Array, JsValue> {
        let z = self.inner.to_bytes().map_err(js_err)?;
        Ok(Uint8Array::from(&z[..]))
    }

    #[wasm_bindgen(getter)]
    pub fn index(&self) -> u8 {
        self.inner.index()
    }
    #[wasm_bindgen(getter)]
    pub fn threshold(&self) -> u8 {
        self.inner.threshold()
    }
    #[wasm_bindgen(getter, js_name = shareCount)]
    pub fn share_count(&self) -> u8 {
        self.inner.share_count()
    }
    #[wasm_bindgen(getter)]
    pub fn generation(&self) -> u32 {
        self.inner.generation
    }
    #[wasm_bindgen(js_name = publicKey)]
    pub fn public_key(&self) -> Vec<u8> {
        self.inner.public_key().to_vec()
    }
    #[wasm_bindgen(js_name = publicPackage)]
    pub fn public_package(&self) -> Result<Vec<u8>, JsValue> {
        self.inner.public_package().to_bytes().map_err(js_err)
    }
    pub fn derive(&self, path: &str) -> Result<WasmKeyShare, JsValue> {
        key_share(self.inner.derive(path))
    }
}

/// Phases 1-3 and `close` of a ceremony class: each forwards to the core
/// session, encodes the outgoing messages as one list and wipes the input
/// (which may carry secret fragments or seeds) once the core has read it.
macro_rules! ceremony_class {
    ($wasm:ident, $js:ident, $core:ty) => {
        #[wasm_bindgen(js_name = $js)]
        pub struct $wasm {
            inner: $core,
        }

        #[wasm_bindgen(js_class = $js)]
        impl $wasm {
            pub fn phase1(&mut self) -> Result<Uint8Array, JsValue> {
                list(self.inner.phase1())
            }
            pub fn phase2(&mut self, input: Vec<u8>) -> Result<Uint8Array, JsValue> {
                list(consume(input, |i| self.inner.phase2(i)))
            }
            pub fn phase3(&mut self, input: Vec<u8>) -> Result<Uint8Array, JsValue> {
                list(consume(input, |i| self.inner.phase3(i)))
            }
            pub fn close(&mut self) {
                self.inner.close();
            }
        }
    };
}

/// Runs `f` on `input`, then wipes the input.
fn consume<T>(mut input: Vec<u8>, f: impl FnOnce(&[u8]) -> T) -> T {
    let r = f(&input);
    input.zeroize();
    r
}

fn key_share(r: crate::Result<KeyShare>) -> Result<WasmKeyShare, JsValue> {
    Ok(WasmKeyShare { inner: Rc::new(r.map_err(js_err)?) })
}

ceremony_class!(WasmDkg, DkgSession, Dkg);
ceremony_class!(WasmSign, SignSession, Sign);
ceremony_class!(WasmRefresh, RefreshSession, Refresh);
ceremony_class!(WasmReshare, ReshareSession, Reshare);

#[wasm_bindgen(js_class = DkgSession)]
impl WasmDkg {
    #[wasm_bindgen(constructor)]
    pub fn new(threshold: u8, parties: u8, index: u8, session: &[u8]) -> Result<WasmDkg, JsValue> {
        Ok(WasmDkg { inner: Dkg::new(threshold, parties, index, session).map_err(js_err)? })
    }
    pub fn phase4(&mut self, input: Vec<u8>) -> Result<WasmKeyShare, JsValue> {
        key_share(consume(input, |i| self.inner.phase4(i)))
    }
}

#[wasm_bindgen(js_class = SignSession)]
impl WasmSign {
    #[wasm_bindgen(constructor)]
    pub fn new(
        share: &WasmKeyShare,
        path: Option<String>,
        session: &[u8],
        parties: &[u8],
        digest: &[u8],
    ) -> Result<WasmSign, JsValue> {
        let inner = Sign::new(share.inner.clone(), path.as_deref(), session, parties, digest);
        Ok(WasmSign { inner: inner.map_err(js_err)? })
    }
    /// r (32) || s (32, low-S) || recovery id (1).
    pub fn phase4(&mut self, input: Vec<u8>) -> Result<Vec<u8>, JsValue> {
        let sig = self.inner.phase4(&input).map_err(js_err)?;
        let mut out = Vec::with_capacity(65);
        out.extend_from_slice(&sig.r);
        out.extend_from_slice(&sig.s);
        out.push(sig.recovery_id);
        Ok(out)
    }
}

#[wasm_bindgen(js_class = RefreshSession)]
impl WasmRefresh {
    #[wasm_bindgen(constructor)]
    pub fn new(share: &WasmKeyShare, session: &[u8]) -> Result<WasmRefresh, JsValue> {
        Ok(WasmRefresh { inner: Refresh::new(share.inner.clone(), session).map_err(js_err)? })
    }
    pub fn phase4(&mut self, input: Vec<u8>) -> Result<WasmKeyShare, JsValue> {
        key_share(consume(input, |i| self.inner.phase4(i)))
    }
    /// The complete refresh that turns a repaired (hollow) share into a
    /// signing one; consumes the hollow share.
    #[wasm_bindgen(js_name = fromHollow)]
    pub fn from_hollow(hollow: WasmHollowShare, session: &[u8]) -> Result<WasmRefresh, JsValue> {
        let share = Rc::new(hollow.inner.into_refresh_input());
        Ok(WasmRefresh { inner: Refresh::new(share, session).map_err(js_err)? })
    }
}

/// Resharing to a new committee (src/reshare.rs): `package` is the wallet's
/// old public package as the caller trusts it, `dealers` the quorum's old
/// indices (increasing) and `seats` their indices in the new committee.
#[wasm_bindgen(js_class = ReshareSession)]
impl WasmReshare {
    /// A dealer: an old holder in the quorum, with its old share.
    #[allow(clippy::too_many_arguments)]
    pub fn dealer(
        share: &WasmKeyShare,
        package: &[u8],
        dealers: &[u8],
        seats: &[u8],
        threshold: u8,
        parties: u8,
        index: u8,
        session: &[u8],
    ) -> Result<WasmReshare, JsValue> {
        let old = PublicPackage::from_bytes(package).map_err(js_err)?;
        let inner = Reshare::new(
            Some(share.inner.clone()),
            &old,
            dealers,
            seats,
            threshold,
            parties,
            index,
            session,
        );
        Ok(WasmReshare { inner: inner.map_err(js_err)? })
    }
    /// A new party that does not deal (it holds no old share).
    pub fn receiver(
        package: &[u8],
        dealers: &[u8],
        seats: &[u8],
        threshold: u8,
        parties: u8,
        index: u8,
        session: &[u8],
    ) -> Result<WasmReshare, JsValue> {
        let old = PublicPackage::from_bytes(package).map_err(js_err)?;
        let inner = Reshare::new(None, &old, dealers, seats, threshold, parties, index, session);
        Ok(WasmReshare { inner: inner.map_err(js_err)? })
    }
    pub fn phase4(&mut self, input: Vec<u8>) -> Result<WasmKeyShare, JsValue> {
        key_share(consume(input, |i| self.inner.phase4(i)))
    }
}

/// Splits a secret key (32 bytes, wiped here) and optional chain code into
/// `parties` shares: a list of opaque share bytes in party order.
#[wasm_bindgen]
pub fn rekey(
    threshold: u8,
    parties: u8,
    secret_key: Vec<u8>,
    chain_code: Option<Vec<u8>>,
    session: &[u8],
) -> Result<Uint8Array, JsValue> {
    let mut chain_code = chain_code;
    let r = consume(secret_key, |k| {
        crate::rekey::rekey(threshold, parties, k, chain_code.as_deref(), session)
    });
    if let Some(c) = chain_code.as_mut() {
        c.zeroize();
    }
    let shares = r.map_err(js_err)?;
    let mut bytes = Vec::with_capacity(shares.len());
    for s in &shares {
        match s.to_bytes() {
            Ok(z) => bytes.push(z.to_vec()),
            Err(e) => {
                bytes.iter_mut().for_each(|b: &mut Vec<u8>| b.zeroize());
                return Err(js_err(e));
            }
        }
    }
    list(Ok(bytes))
}

/// This holder's secret repair term for `target` (send it to the target's
/// enclave only).
#[wasm_bindgen(js_name = repairTerm)]
pub fn repair_term(
    share: &WasmKeyShare,
    helpers: &[u8],
    target: u8,
    repair_id: &[u8],
) -> Result<Uint8Array, JsValue> {
    let z = crate::repair::repair_term(&share.inner, helpers, target, repair_id).map_err(js_err)?;
    Ok(Uint8Array::from(&z[..]))
}

/// A repaired share awaiting its complete refresh; it cannot sign or be serialised.
#[wasm_bindgen(js_name = HollowShare)]
pub struct WasmHollowShare {
    inner: HollowShare,
}

#[wasm_bindgen(js_class = HollowShare)]
impl WasmHollowShare {
    #[wasm_bindgen(getter)]
    pub fn index(&self) -> u8 {
        self.inner.index()
    }
    #[wasm_bindgen(getter)]
    pub fn generation(&self) -> u32 {
        self.inner.generation()
    }
    #[wasm_bindgen(js_name = publicKey)]
    pub fn public_key(&self) -> Vec<u8> {
        self.inner.public_key().to_vec()
    }
}

/// Assembles the terms (a message list, wiped here; `senders[k]` is the
/// authenticated sender of item k) into `target`'s hollow share.
#[wasm_bindgen(js_name = repairAssemble)]
pub fn repair_assemble(
    package: &[u8],
    target: u8,
    repair_id: &[u8],
    senders: &[u8],
    terms: Vec<u8>,
) -> Result<WasmHollowShare, JsValue> {
    let package = PublicPackage::from_bytes(package).map_err(js_err)?;
    let r = consume(terms, |t| {
        let items = wire::decode_list(t)?;
        if items.len() != senders.len() {
            return Err(Error::new(crate::Code::InvalidParameters, "one sender per repair term"));
        }
        let pairs: Vec<(u8, &[u8])> = senders.iter().copied().zip(items).collect();
        crate::repair::repair_assemble(&package, target, repair_id, &pairs)
    });
    Ok(WasmHollowShare { inner: r.map_err(js_err)? })
}

/// Public facts of a package: compressed key (33) || chain code (32) ||
/// threshold (1) || parties (1) || generation (4, big-endian).
#[wasm_bindgen(js_name = packageInfo)]
pub fn package_info(package: &[u8]) -> Result<Vec<u8>, JsValue> {
    let p = PublicPackage::from_bytes(package).map_err(js_err)?;
    let mut out = p.public_key().to_vec();
    out.extend_from_slice(&p.chain_code);
    out.push(p.package.threshold());
    out.push(p.package.share_count());
    out.extend_from_slice(&p.generation.to_be_bytes());
    Ok(out)
}

/// Child public key (33) || child chain code (32) along a non-hardened path.
#[wasm_bindgen(js_name = derivePublic)]
pub fn derive_public(package: &[u8], path: &str) -> Result<Vec<u8>, JsValue> {
    let p = PublicPackage::from_bytes(package).map_err(js_err)?;
    let (pk, cc) = p.derive(path).map_err(js_err)?;
    let mut out = pk.to_vec();
    out.extend_from_slice(&cc);
    Ok(out)
}

#[wasm_bindgen(js_name = ethAddress)]
pub fn eth_address_of(public_key: &[u8]) -> Result<String, JsValue> {
    let pk = k256::PublicKey::from_sec1_bytes(public_key).map_err(|_| {
        js_err(Error::new(crate::Code::InvalidParameters, "not a valid secp256k1 public key"))
    })?;
    Ok(eth_address(pk.as_affine()))
}

#[wasm_bindgen(js_name = wireVersion)]
pub fn wire_version() -> u8 {
    wire::WIRE_VERSION
}
