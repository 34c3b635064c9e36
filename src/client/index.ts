/**
 * Client SDK of the TSS signing layer over MQTT 5 (docs/mqtt-api.md).
 *
 *   const tss = await TssClient.connect({ url: "mqtt://127.0.0.1:1883" });
 *   const w = await tss.createWallet({ threshold: 2, parties: 3, onProgress: console.log });
 *   const s = await tss.sign({ walletId: w.walletId, digest: "ab".repeat(32) });
 *   await tss.close();
 */
export { TssClient, DEFAULT_TIMEOUT_MS } from "./client.ts";
export {
  TssError,
  NODE_ERROR_CODES,
  type NodeErrorCode,
  type SdkErrorCode,
  type TssErrorCode,
} from "./errors.ts";
export type { Blame } from "../shared/wire/errors.ts";
export {
  newRequestId,
  checkKeyType,
  checkPath,
  checkRequestId,
  checkWalletId,
  normalizeDigest,
  ID_PATTERN,
} from "./inputs.ts";
export { ethAddress } from "../shared/public-key.ts";
export { KEY_TYPES, DEFAULT_KEY_TYPE, isKeyType } from "../shared/wire/key-type.ts";
export type * from "./types.ts";
export {
  verifiedSigningKey,
  verifyWallet,
  WALLET_UNVERIFIED,
  type ClaimedWallet,
  type VerifiedWallet,
  type WalletTrust,
  type WalletVoucher,
} from "./wallet-verification.ts";
export {
  KeySigner,
  approve,
  approverKeyOf,
  keyIdOf,
  validity,
  p256SignatureFromDer,
  parseKeyFile,
  readKeyFile,
  writeKeyFile,
  type ApprovalSigner,
  type ApprovableRequest,
  type Approval,
  type ApprovalAlgorithm,
  type ApproverKey,
} from "./signers.ts";
export {
  ALGORITHMS,
  isApprovalAlgorithm,
  encodePolicy,
  policyHash,
  ApprovalError,
  type ApprovalPolicy,
  type ApprovalRefusal,
} from "../shared/wire/approval.ts";
