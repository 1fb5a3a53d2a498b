/**
 * The one shape of an answer between objects (and from an object to the
 * worker): a value, or a refusal with a stable code the caller can turn into
 * an HTTP status or an error frame. RPC results, not exceptions, so the code
 * survives the trip; an exception means "failed, retry", never "no".
 */
export type Refusal<Code extends string = string> = {
  ok: false;
  code: Code;
  message: string;
  /** `rate_limited` only: when a retry can succeed (HTTP answers it as Retry-After). */
  retryAfterMs?: number;
};
export type Result<T, Code extends string = string> = { ok: true; value: T } | Refusal<Code>;

export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

export function refuse<Code extends string>(code: Code, message: string): Refusal<Code> {
  return { ok: false, code, message };
}
