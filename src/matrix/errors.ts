/**
 * Matrix's error shape: `{"errcode": "M_…", "error": "…"}` with the status
 * codes of the client-server spec. The project's own API errors (from the
 * shared auth middleware) are translated here, so a Matrix client never sees
 * the `{"error": {"code", "message"}}` shape of docs/PROTOCOL.md.
 */
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ApiError } from "../errors";

export type MatrixErrcode =
  | "M_MISSING_TOKEN"
  | "M_UNKNOWN_TOKEN"
  | "M_FORBIDDEN"
  | "M_NOT_FOUND"
  | "M_LIMIT_EXCEEDED"
  | "M_BAD_JSON"
  | "M_NOT_JSON"
  | "M_INVALID_PARAM"
  | "M_TOO_LARGE"
  | "M_UNRECOGNIZED"
  | "M_UNKNOWN";

/** The status each code is sent with (M_UNKNOWN varies: 500 or 503). */
export const MATRIX_STATUS: Record<MatrixErrcode, ContentfulStatusCode> = {
  M_MISSING_TOKEN: 401,
  M_UNKNOWN_TOKEN: 401,
  M_FORBIDDEN: 403,
  M_NOT_FOUND: 404,
  M_LIMIT_EXCEEDED: 429,
  M_BAD_JSON: 400,
  M_NOT_JSON: 400,
  M_INVALID_PARAM: 400,
  M_TOO_LARGE: 413,
  M_UNRECOGNIZED: 404,
  M_UNKNOWN: 500,
};

export interface MatrixErrorBody {
  errcode: MatrixErrcode;
  error: string;
  /** M_LIMIT_EXCEEDED only (deprecated in spec v1.10 in favour of Retry-After, which is sent too). */
  retry_after_ms?: number;
  /** M_UNKNOWN_TOKEN only: true when the token merely expired (the client may sign in again and keep its state). */
  soft_logout?: boolean;
}

export class MatrixError extends HTTPException {
  constructor(
    readonly errcode: MatrixErrcode,
    message: string,
    readonly extra: { retryAfterMs?: number; softLogout?: boolean; status?: ContentfulStatusCode } = {},
  ) {
    super(extra.status ?? MATRIX_STATUS[errcode], { message });
  }

  body(): MatrixErrorBody {
    const body: MatrixErrorBody = { errcode: this.errcode, error: this.message };
    if (this.extra.retryAfterMs !== undefined) body.retry_after_ms = Math.max(0, Math.ceil(this.extra.retryAfterMs));
    if (this.extra.softLogout !== undefined) body.soft_logout = this.extra.softLogout;
    return body;
  }

  headers(): Record<string, string> {
    return this.extra.retryAfterMs === undefined ? {} : { "Retry-After": String(Math.max(1, Math.ceil(this.extra.retryAfterMs / 1000))) };
  }
}

export function rateLimited(retryAfterMs: number, message = "too many requests"): MatrixError {
  return new MatrixError("M_LIMIT_EXCEEDED", message, { retryAfterMs });
}

/**
 * Any error thrown under /_matrix → a MatrixError. Project auth codes map to
 * Matrix's token codes; anything unexpected is M_UNKNOWN 500 (safe to retry).
 */
export function toMatrixError(error: unknown): MatrixError {
  if (error instanceof MatrixError) return error;
  if (error instanceof ApiError) {
    switch (error.code) {
      case "missing_token":
        return new MatrixError("M_MISSING_TOKEN", "missing access token");
      case "token_expired":
        return new MatrixError("M_UNKNOWN_TOKEN", "the access token has expired", { softLogout: true });
      case "invalid_token":
      case "invalid_signature":
      case "token_not_yet_valid":
      case "invalid_claims":
        return new MatrixError("M_UNKNOWN_TOKEN", "unrecognised access token", { softLogout: false });
      case "auth_unavailable":
        return new MatrixError("M_UNKNOWN", "the key set could not be fetched; retry", { status: 503 });
      case "rate_limited":
        return rateLimited(1_000, error.message);
      case "body_too_large":
        return new MatrixError("M_TOO_LARGE", "the body is larger than allowed");
      case "bad_json":
        return new MatrixError("M_NOT_JSON", "the body is not valid JSON");
      default:
        return new MatrixError(error.status === 404 ? "M_NOT_FOUND" : "M_UNKNOWN", error.message, { status: error.status });
    }
  }
  if (error instanceof HTTPException) {
    return new MatrixError(error.status === 413 ? "M_TOO_LARGE" : "M_UNKNOWN", error.message || "request failed", { status: error.status });
  }
  return new MatrixError("M_UNKNOWN", "the request failed; it is safe to retry");
}
