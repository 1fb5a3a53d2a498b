/** Small helpers every suite shares (plain TypeScript: they run in Node and in workerd). */

let counter = 0;
/** A fresh user name per test: storage outlives a test (workerd: per file; wrangler dev: per server). */
export function user(prefix = "u"): string {
  return `${prefix}-${Date.now().toString(36)}-${counter++}`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits until `check` returns a truthy value (re-evaluated on every poll), or fails with `what`. */
export async function until<T>(what: string, check: () => T | Promise<T>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await sleep(50);
  }
}
