/** Checks of the scalar fields the host sends; a failure is the host's fault (bad_request). */
import { ID_RULE, isId } from "../shared/wire/patterns.ts";
import { EnclaveError } from "./errors.ts";

export function needInt(v: unknown, name: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max)
    throw new EnclaveError("bad_request", `${name} must be an integer in ${min}..${max}`);
  return v;
}

export function needWalletId(v: unknown): string {
  if (!isId(v)) throw new EnclaveError("bad_request", `walletId must be ${ID_RULE}`);
  return v;
}
