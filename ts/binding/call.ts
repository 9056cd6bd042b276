/**
 * Calls into the addon with its errors translated: a thrown error becomes a
 * `NativeCallError` (the data plane's `{ code, message, issues }`) or an
 * internal error. Shared by `engine.ts` and `handoff.ts`.
 */
import { nativeCallError } from '../errors.js';

/** Run a synchronous addon call. */
export function call<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    throw nativeCallError(err);
  }
}

/** Await an asynchronous addon call. */
export async function callAsync<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    throw nativeCallError(err);
  }
}
