/** Polling with a deadline: how tests wait for something to happen (never a fixed sleep). */

/** Poll `check` until it returns a truthy value (resolved with it: never null or undefined) or
 * `timeoutMs` passes (then it rejects, naming `what`). Polls every 20 ms. */
export async function waitFor<T>(check: () => T | Promise<T>, what: string, timeoutMs = 20_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
