/**
 * Typed API over the DKLs23 wasm core, one import for its users. Used inside
 * the enclave (and by the in-process runner for tests, demo and benchmarks).
 * Secret state never leaves the wasm instance except as `KeyShare.toBytes()`,
 * which is meant only for sealing inside the enclave.
 *
 *   core.ts         loading the wasm module; the guard around every call; its memory size
 *   errors.ts       DklsError (code, blame.party, ban)
 *   key-share.ts    KeyShare
 *   sessions.ts     Dkg, Signing, Refresh, Reshare
 *   public-data.ts  packageInfo, derivePublicKey, ethAddress
 *   lifecycle.ts    rekey, repairTerm, repairAssemble, HollowShare, refreshFromHollow
 */
export { loadDkls, wasmMemoryBytes } from "./core.ts";
export { DklsError, type ErrorCode } from "./errors.ts";
export { KeyShare } from "./key-share.ts";
export {
  Dkg,
  Refresh,
  Reshare,
  Signing,
  type DkgOptions,
  type ReshareOptions,
  type SignOptions,
} from "./sessions.ts";
export { derivePublicKey, ethAddress, packageInfo, type PackageInfo } from "./public-data.ts";
export {
  HollowShare,
  refreshFromHollow,
  rekey,
  repairAssemble,
  repairTerm,
  type RekeyOptions,
  type RepairAssembly,
  type RepairRequest,
} from "./lifecycle.ts";
