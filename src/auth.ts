/**
 * Authentication: JWTs verified with jose before any Durable Object is
 * touched. HS256 with JWT_SECRET, RS256/ES256 from JWKS_URL (keys cached per
 * isolate by jose). `sub` is the user id; `exp` is required, `nbf` enforced,
 * `iss`/`aud` checked when configured. The algorithm list is fixed per key
 * type, so `alg: none` and HS/RS confusion are rejected by construction.
 * A token may live at most MAX_TOKEN_LIFETIME_S (`exp − (iat ?? now)`), and
 * its `iat` may be at most TOKEN_CLOCK_SKEW_S ahead of this clock.
 */
import { createMiddleware } from "hono/factory";
import { createRemoteJWKSet, decodeProtectedHeader, errors, type JWTPayload, jwtVerify, type JWTVerifyGetKey } from "jose";
import type { Env } from "./env";
import { ApiError } from "./errors";
import { readConfig } from "./presence/config";
import { userIdSchema } from "./presence/schema";
import { TOKEN_PROTOCOL_PREFIX } from "./protocol";

/**
 * The key set could not be obtained (unreachable, non-200, not JSON, not a
 * JWKS, timeout): the server's problem, not the token's, so 503 and retry.
 * jose reports several of these as a plain JOSEError, which would otherwise
 * read as a bad token (401).
 */
class KeySetUnavailable extends Error {}

/** How far ahead of this clock a token's `iat` may be (the issuer's clock may run a little fast). */
export const TOKEN_CLOCK_SKEW_S = 60;

/**
 * Lifetime checks jose does not make: `iat` (when present) not in the future
 * beyond the skew, and `exp − (iat ?? now)` at most MAX_TOKEN_LIFETIME_S. A
 * signed token that lives for centuries is a stolen credential that never
 * expires (issue #12).
 */
function checkLifetime(payload: JWTPayload, env: Env): void {
  const now = Math.floor(Date.now() / 1000);
  const { iat, exp } = payload;
  if (typeof iat === "number" && iat > now + TOKEN_CLOCK_SKEW_S) {
    throw new ApiError(401, "token_not_yet_valid", "claim iat failed: issued in the future");
  }
  const max = readConfig(env).maxTokenLifetimeS;
  if (typeof exp === "number" && exp - (typeof iat === "number" ? iat : now) > max) {
    throw new ApiError(401, "invalid_claims", `claim exp failed: the token lives longer than ${max} s (MAX_TOKEN_LIFETIME_S)`);
  }
}

const jwksByUrl = new Map<string, JWTVerifyGetKey>();
function jwks(url: string): JWTVerifyGetKey {
  let getKey = jwksByUrl.get(url);
  if (!getKey) {
    const set = createRemoteJWKSet(new URL(url), { cacheMaxAge: 10 * 60_000, cooldownDuration: 30_000 });
    getKey = async (header, token) => {
      try {
        return await set(header, token);
      } catch (error) {
        // Only "no key for this token" is the token's fault; anything else is the key set's.
        if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) throw error;
        throw new KeySetUnavailable("the key set could not be fetched", { cause: error });
      }
    };
    jwksByUrl.set(url, getKey);
  }
  return getKey;
}

export interface TokenSource {
  token: string;
  /** Set when the token came as a Sec-WebSocket-Protocol entry: the 101 must echo a protocol. */
  viaProtocol: boolean;
}

/** Bearer header, then a `bearer.<jwt>` Sec-WebSocket-Protocol entry, then `?access_token=`. */
export function extractToken(request: Request): TokenSource | null {
  const header = request.headers.get("Authorization");
  if (header) {
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    return match ? { token: match[1]!, viaProtocol: false } : null;
  }
  const entry = offeredProtocols(request).find((p) => p.startsWith(TOKEN_PROTOCOL_PREFIX));
  if (entry) return { token: entry.slice(TOKEN_PROTOCOL_PREFIX.length), viaProtocol: true };
  const query = new URL(request.url).searchParams.get("access_token");
  return query ? { token: query, viaProtocol: false } : null;
}

export function offeredProtocols(request: Request): string[] {
  return (request.headers.get("Sec-WebSocket-Protocol") ?? "")
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean);
}

/** Verifies a token and returns its user id, or throws a 401 ApiError with a precise code. */
export async function verifyToken(token: string, env: Env): Promise<string> {
  let alg: string | undefined;
  try {
    alg = decodeProtectedHeader(token).alg;
  } catch {
    throw new ApiError(401, "invalid_token", "the token is not a JWT");
  }
  const options = {
    issuer: env.JWT_ISSUER || undefined,
    audience: env.JWT_AUDIENCE || undefined,
    requiredClaims: ["exp", "sub"],
  };
  try {
    let payload: JWTPayload;
    if (alg === "HS256") {
      if (!env.JWT_SECRET) throw new ApiError(401, "invalid_token", "HS256 tokens are not accepted here");
      ({ payload } = await jwtVerify(token, new TextEncoder().encode(env.JWT_SECRET), { ...options, algorithms: ["HS256"] }));
    } else if (alg === "RS256" || alg === "ES256") {
      if (!env.JWKS_URL) throw new ApiError(401, "invalid_token", `${alg} tokens are not accepted here`);
      ({ payload } = await jwtVerify(token, jwks(env.JWKS_URL), { ...options, algorithms: ["RS256", "ES256"] }));
    } else {
      throw new ApiError(401, "invalid_token", `algorithm ${String(alg)} is not accepted`);
    }
    checkLifetime(payload, env);
    const sub = userIdSchema.safeParse(payload.sub);
    if (!sub.success) throw new ApiError(401, "invalid_token", "the token's sub is not a valid user id");
    return sub.data;
  } catch (error) {
    if (error instanceof ApiError) throw error;
    if (error instanceof KeySetUnavailable) throw new ApiError(503, "auth_unavailable", "the key set could not be fetched; retry");
    if (error instanceof errors.JWTExpired) throw new ApiError(401, "token_expired", "the token has expired");
    if (error instanceof errors.JWTClaimValidationFailed) {
      const code = error.claim === "nbf" ? "token_not_yet_valid" : "invalid_claims";
      throw new ApiError(401, code, `claim ${error.claim} failed: ${error.reason}`);
    }
    if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWSSignatureVerificationFailed) {
      throw new ApiError(401, "invalid_signature", "the token's signature does not verify");
    }
    if (error instanceof errors.JOSEError) throw new ApiError(401, "invalid_token", "the token could not be verified");
    throw new ApiError(503, "auth_unavailable", "the key set could not be fetched; retry");
  }
}

export type AuthVariables = { userId: string; tokenViaProtocol: boolean };

export const requireUser = createMiddleware<{ Bindings: Env; Variables: AuthVariables }>(async (c, next) => {
  const source = extractToken(c.req.raw);
  if (!source) throw new ApiError(401, "missing_token", "send Authorization: Bearer <jwt>, a bearer.<jwt> subprotocol, or ?access_token=");
  c.set("userId", await verifyToken(source.token, c.env));
  c.set("tokenViaProtocol", source.viaProtocol);
  await next();
});

/** Constant-time comparison for the admin token. */
function sameSecret(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

export const requireAdmin = createMiddleware<{ Bindings: Env }>(async (c, next) => {
  if (!c.env.ADMIN_TOKEN) throw new ApiError(503, "admin_disabled", "set the ADMIN_TOKEN secret to enable the admin API");
  const match = /^Bearer\s+(\S+)$/i.exec(c.req.header("Authorization") ?? "");
  if (!match || !sameSecret(match[1]!, c.env.ADMIN_TOKEN)) throw new ApiError(401, "invalid_admin_token", "admin token missing or wrong");
  await next();
});
