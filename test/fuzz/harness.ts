/**
 * Shared fuzzing harness (fast-check): run modes and seeds, byte arbitraries that start from
 * real encodings, and the one property every decoder must hold.
 *
 * The property, for each case: the decoder returns a value or throws one of its own documented
 * error classes (never TypeError, RangeError, a wasm trap or anything else), within a per-case
 * time bound. Targets add their own checks on what was accepted (re-encoding gives the input
 * back, returned views stay inside the input) and dedicated cases for announced lengths beyond
 * the bounds, which must be refused before anything of that size is allocated.
 *
 * Modes: `npm test` runs each target's `sample` case count as ordinary vitest tests; `npm run
 * fuzz` (test/fuzz/run.ts) runs its `full` count. FUZZ_SEED fixes the seed (the sample defaults
 * to a fixed one so CI is reproducible); FUZZ_RUNS overrides every target's count.
 *
 * fast-check is the kept property-testing library (already a dev dependency): seeded, shrinking,
 * with reproducible failure paths, so no fuzzing engine of our own.
 */
import fc from "fast-check";

/** The seed the sample uses when FUZZ_SEED is not set. */
export const DEFAULT_SAMPLE_SEED = 20_240_907;

/** FUZZ_SEED as a 32-bit integer, or undefined when unset. */
export function seedFromEnv(): number | undefined {
  const raw = process.env.FUZZ_SEED;
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new Error(`FUZZ_SEED must be an integer, got ${raw}`);
  return n | 0;
}

/** FUZZ_RUNS, when set, replaces every target's case count. */
export function runsFromEnv(): number | undefined {
  const raw = process.env.FUZZ_RUNS;
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`FUZZ_RUNS must be >= 1, got ${raw}`);
  return n;
}

type ErrorClass = abstract new (...args: never[]) => Error;

/** What a decoder did with one input. */
export type Outcome<T> = { accepted: true; value: T } | { accepted: false; error: Error };

/** A decoder threw something other than its documented errors, or took too long. */
export class FuzzViolation extends Error {
  override name = "FuzzViolation";
}

/**
 * Runs `decode`; an error of one of `refusals` is a refusal, anything else is a violation
 * (rethrown as FuzzViolation, so fast-check reports and shrinks the input).
 */
export function outcome<T>(decode: () => T, refusals: readonly ErrorClass[]): Outcome<T> {
  try {
    return { accepted: true, value: decode() };
  } catch (e) {
    if (refusals.some((c) => e instanceof c)) return { accepted: false, error: e as Error };
    throw violation(e, refusals);
  }
}

/** `outcome` for a decoder that returns a promise. */
export async function outcomeAsync<T>(
  decode: () => Promise<T>,
  refusals: readonly ErrorClass[],
): Promise<Outcome<T>> {
  try {
    return { accepted: true, value: await decode() };
  } catch (e) {
    if (refusals.some((c) => e instanceof c)) return { accepted: false, error: e as Error };
    throw violation(e, refusals);
  }
}

function violation(e: unknown, refusals: readonly ErrorClass[]): FuzzViolation {
  const what = e instanceof Error ? `${e.name}: ${e.message}` : `non-error ${String(e)}`;
  const allowed = refusals.map((c) => c.name).join(", ");
  const v = new FuzzViolation(`threw ${what} (documented: ${allowed})`);
  if (e instanceof Error && e.stack) v.stack = `${v.message}\n${e.stack}`;
  return v;
}

/** Fails the case with a FuzzViolation unless `cond` holds. */
export function must(cond: unknown, message: string): asserts cond {
  if (!cond) throw new FuzzViolation(message);
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a).equals(Buffer.from(b));
}

/** True when `view` is a view into `input`'s memory (no copy, no reach past its end). */
export function isViewInto(view: Uint8Array, input: Uint8Array): boolean {
  return (
    view.buffer === input.buffer &&
    view.byteOffset >= input.byteOffset &&
    view.byteOffset + view.byteLength <= input.byteOffset + input.byteLength
  );
}

// ---------------------------------------------------------------- targets

/** Per-target tallies, printed by `npm run fuzz`. */
export interface FuzzStats {
  cases: number;
  accepted: number;
  refused: number;
  /** Refusals by error name (and code or reason where the error has one). */
  reasons: Map<string, number>;
  slowestMs: number;
}

export function newStats(): FuzzStats {
  return { cases: 0, accepted: 0, refused: 0, reasons: new Map(), slowestMs: 0 };
}

/** "BodyError", "FrameError/frame_too_large", "AttestationError/malformed". */
export function reasonOf(e: Error): string {
  const x = e as { code?: unknown; reason?: unknown; type?: unknown };
  const detail = [x.code, x.reason, x.type].find((d) => typeof d === "string");
  return detail === undefined ? e.name : `${e.name}/${detail}`;
}

/**
 * One decoder under fuzzing. `check` runs one case and returns what the decoder did; it throws
 * (FuzzViolation or an assertion) when a property fails.
 */
export interface FuzzTarget<T = unknown> {
  name: string;
  arbitrary: fc.Arbitrary<T>;
  check: (input: T) => Outcome<unknown> | Promise<Outcome<unknown>>;
  /** Cases in `npm test` and in `npm run fuzz`. */
  runs: { sample: number; full: number };
  /** Wall-clock bound for one case; generous, since two cores are shared (it catches hangs and giant allocations). */
  timeBoundMs: number;
  /** Run once before the first case (loading fixtures, building sessions). */
  setup?: () => void | Promise<void>;
  /** The target refuses every input by design (e.g. bodies above a bound); otherwise some must pass. */
  refusesEverything?: true;
}

/** A target of any input type, for lists of targets. */
// biome-ignore lint/suspicious/noExplicitAny: a list holds targets of different input types
export type AnyTarget = FuzzTarget<any>;

export function target<T>(t: FuzzTarget<T>): AnyTarget {
  return t;
}

/** What a run found: the tallies, and fast-check's report (seed, path, counterexample) or null. */
export interface FuzzRun {
  stats: FuzzStats;
  failure: string | null;
}

/** Runs `t` for `runs` cases from `seed`; throws fast-check's report (seed and path) on failure. */
export async function runTarget(t: AnyTarget, runs: number, seed: number): Promise<FuzzStats> {
  const r = await checkTarget(t, runs, seed);
  if (r.failure !== null) throw new Error(r.failure);
  return r.stats;
}

/** Runs `t` for `runs` cases from `seed` and reports a failing case instead of throwing it. */
export async function checkTarget(t: AnyTarget, runs: number, seed: number): Promise<FuzzRun> {
  await t.setup?.();
  const stats = newStats();
  const record = (o: Outcome<unknown>, ms: number) => {
    stats.cases++;
    stats.slowestMs = Math.max(stats.slowestMs, ms);
    if (o.accepted) stats.accepted++;
    else {
      stats.refused++;
      const r = reasonOf(o.error);
      stats.reasons.set(r, (stats.reasons.get(r) ?? 0) + 1);
    }
    must(ms <= t.timeBoundMs, `one case took ${ms.toFixed(1)} ms, bound ${t.timeBoundMs} ms`);
  };
  const property = fc.asyncProperty(t.arbitrary, async (input) => {
    const started = performance.now();
    const o = await t.check(input);
    record(o, performance.now() - started);
  });
  const details = await fc.check(property, { seed, numRuns: runs });
  return { stats, failure: details.failed ? (fc.defaultReportMessage(details) ?? "failed") : null };
}

// ---------------------------------------------------------------- arbitraries

/** Values that sit on the edges of length and count fields. */
const EDGE_U32 = [
  0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x1_0000, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff,
];
const EDGE_BYTES = [0x00, 0x01, 0x02, 0x7f, 0x80, 0x81, 0xfe, 0xff];
/** Byte sequences that text decoders treat specially: BOM, surrogate, overlong and out-of-range UTF-8, NUL, quotes. */
const TOKENS = [
  [0xef, 0xbb, 0xbf],
  [0xed, 0xa0, 0x80],
  [0xc0, 0x80],
  [0xf4, 0x90, 0x80, 0x80],
  [0x00],
  [0x22],
  [0x5c],
  [0xff, 0xff, 0xff, 0xff],
].map((t) => Uint8Array.from(t));

type Mutation =
  | { op: "flip"; at: number; bit: number }
  | { op: "set"; at: number; value: number }
  | { op: "truncate"; at: number }
  | { op: "insert"; at: number; bytes: Uint8Array }
  | { op: "delete"; at: number; len: number }
  | { op: "duplicate"; at: number; len: number }
  | { op: "u16"; at: number; value: number }
  | { op: "u32"; at: number; value: number }
  | { op: "splice"; at: number; other: number; from: number }
  | { op: "token"; at: number; token: Uint8Array; overwrite: boolean };

const position = fc.nat({ max: 1 << 20 });

function mutationArb(extraU32: readonly number[]): fc.Arbitrary<Mutation> {
  const u32s = [...EDGE_U32, ...extraU32];
  return fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({
        op: fc.constant("flip" as const),
        at: position,
        bit: fc.nat({ max: 7 }),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        op: fc.constant("set" as const),
        at: position,
        value: fc.oneof(fc.constantFrom(...EDGE_BYTES), fc.nat({ max: 255 })),
      }),
    },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("truncate" as const), at: position }) },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant("insert" as const),
        at: position,
        bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant("delete" as const),
        at: position,
        len: fc.integer({ min: 1, max: 64 }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant("duplicate" as const),
        at: position,
        len: fc.integer({ min: 1, max: 64 }),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        op: fc.constant("u16" as const),
        at: position,
        value: fc.constantFrom(0, 1, 0x40, 0x41, 0xff, 0x100, 0xffff),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        op: fc.constant("u32" as const),
        at: position,
        value: fc.constantFrom(...u32s),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant("splice" as const),
        at: position,
        other: fc.nat(),
        from: position,
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        op: fc.constant("token" as const),
        at: position,
        token: fc.constantFrom(...TOKENS),
        overwrite: fc.boolean(),
      }),
    },
  );
}

function apply(input: Uint8Array, m: Mutation, seeds: readonly Uint8Array[]): Uint8Array {
  const n = input.length;
  const at = n === 0 ? 0 : m.at % (n + 1);
  switch (m.op) {
    case "flip": {
      if (n === 0) return input;
      const out = input.slice();
      out[m.at % n]! ^= 1 << m.bit;
      return out;
    }
    case "set": {
      if (n === 0) return input;
      const out = input.slice();
      out[m.at % n] = m.value;
      return out;
    }
    case "truncate":
      return input.slice(0, at);
    case "insert":
      return concat([input.subarray(0, at), m.bytes, input.subarray(at)]);
    case "delete":
      return concat([input.subarray(0, at), input.subarray(Math.min(n, at + m.len))]);
    case "duplicate":
      return concat([input.subarray(0, Math.min(n, at + m.len)), input.subarray(at)]);
    case "u16":
    case "u32": {
      const width = m.op === "u16" ? 2 : 4;
      if (n < width) return input;
      const out = input.slice();
      const view = new DataView(out.buffer);
      const i = m.at % (n - width + 1);
      if (width === 2) view.setUint16(i, m.value & 0xffff);
      else view.setUint32(i, m.value >>> 0);
      return out;
    }
    case "token": {
      if (!m.overwrite) return concat([input.subarray(0, at), m.token, input.subarray(at)]);
      if (n < m.token.length) return input;
      const out = input.slice();
      out.set(m.token, m.at % (n - m.token.length + 1));
      return out;
    }
    case "splice": {
      const other = seeds[m.other % seeds.length]!;
      const from = other.length === 0 ? 0 : m.from % other.length;
      return concat([input.subarray(0, at), other.subarray(from)]);
    }
  }
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export interface BytesOptions {
  /** Longest purely random input. */
  maxRandom?: number;
  /** Extra u32 values for length-field overwrites (the decoder's bounds, and one past them). */
  lengths?: readonly number[];
  /** Most mutations stacked on one seed. */
  maxMutations?: number;
}

/**
 * Inputs for a byte decoder: the valid `seeds` as they are, seeds under 1..maxMutations stacked
 * mutations (bit flips, edge bytes, truncation, insertion, deletion, duplication, length fields
 * overwritten with edge and bound values, splices of two seeds), and purely random bytes.
 */
export function bytesFrom(
  seeds: readonly Uint8Array[],
  opts: BytesOptions = {},
): fc.Arbitrary<Uint8Array> {
  const random = fc.uint8Array({ maxLength: opts.maxRandom ?? 512 });
  if (seeds.length === 0) return random;
  const mutated = fc
    .tuple(
      fc.nat({ max: seeds.length - 1 }),
      fc.array(mutationArb(opts.lengths ?? []), {
        minLength: 1,
        maxLength: opts.maxMutations ?? 6,
      }),
    )
    .map(([i, ms]) => ms.reduce((b, m) => apply(b, m, seeds), seeds[i]!));
  return fc.oneof(
    { weight: 1, arbitrary: fc.constantFrom(...seeds) },
    { weight: 14, arbitrary: mutated },
    { weight: 3, arbitrary: random },
  );
}

/** Text that is hard on parsers: edge code points, lone surrogates, long runs. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom(
    "",
    "__proto__",
    "constructor",
    "toString",
    "\u0000",
    "\ud800",
    "\udfff",
    "\ufeff",
    "\ufeffSHA384",
    "m/0/7",
    "m/2147483648",
    "m/00000000001",
    "0x",
    "w".repeat(129),
    "n".repeat(65),
    "$b64",
    "a/b",
    "+",
    "#",
  ),
);

/** JSON values that probe type and range checks: edge numbers, byte tags, wrong shapes. */
export const hostileJson: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constantFrom(
      null,
      true,
      false,
      0,
      -0,
      1,
      -1,
      1.5,
      2,
      16,
      17,
      255,
      256,
      2 ** 31,
      2 ** 32 - 1,
      2 ** 32,
      2 ** 53,
      -(2 ** 53),
      1e308,
      Number.MAX_SAFE_INTEGER,
    ),
    hostileString,
    fc.double(),
    fc.record({ $b64: fc.oneof(fc.base64String({ maxLength: 64 }), hostileString) }),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(hostileString, tie("value"), { maxKeys: 4 }),
  ),
})).value;
