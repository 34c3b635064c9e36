import { expect } from "vitest";

/** What `f` throws, checked to be an instance of `cls`; fails the test if `f` returns. */
export function thrown<E extends Error>(cls: new (...args: never[]) => E, f: () => unknown): E {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(cls);
    return e as E;
  }
  throw new Error(`expected ${cls.name}, but nothing was thrown`);
}

/** What `p` rejects with, checked to be an instance of `cls`; fails the test if it resolves. */
export async function rejected<E extends Error>(
  cls: new (...args: never[]) => E,
  p: Promise<unknown>,
): Promise<E> {
  let failure: unknown;
  try {
    await p;
  } catch (e) {
    failure = e;
  }
  if (failure === undefined) throw new Error(`expected ${cls.name}, but the promise resolved`);
  expect(failure).toBeInstanceOf(cls);
  return failure as E;
}

/** The code and message of what `f` throws (an instance of `cls` with a `code`), to compare whole. */
export function thrownCode<E extends Error & { code: string }>(
  cls: new (...args: never[]) => E,
  f: () => unknown,
): { code: string; message: string } {
  const e = thrown(cls, f);
  return { code: e.code, message: e.message };
}
