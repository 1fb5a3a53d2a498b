import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** Every HTTP error leaves as `{ "error": { "code", "message" } }`; codes are listed in docs/PROTOCOL.md. */
export class ApiError extends HTTPException {
  constructor(
    status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    /** Extra response headers (Retry-After on 429). */
    readonly headers: Record<string, string> = {},
  ) {
    super(status, { message });
  }
}

/** A refusal from a user's object as an HTTP error: `rate_limited` is 429 with Retry-After (whole seconds, at least 1). */
export function refusalError(refusal: { code: string; message: string; retryAfterMs?: number }, status: ContentfulStatusCode): ApiError {
  if (refusal.code !== "rate_limited") return new ApiError(status, refusal.code, refusal.message);
  const seconds = Math.max(1, Math.ceil((refusal.retryAfterMs ?? 1000) / 1000));
  return new ApiError(429, refusal.code, refusal.message, { "Retry-After": String(seconds) });
}

export function errorBody(code: string, message: string) {
  return { error: { code, message } };
}
