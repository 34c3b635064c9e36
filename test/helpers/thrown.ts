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
