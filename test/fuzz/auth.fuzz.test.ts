/**
 * Token verification under hostile input (plain Node, src/auth.ts directly):
 * random strings, mutated tokens, random claims and headers, and a JWKS served
 * from a local HTTP server that can misbehave. The same refusals are checked
 * end to end in test/e2e/hardening-jwks.e2e.test.ts.
 */
import { createServer, type Server } from "node:http";
import fc from "fast-check";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyToken } from "../../src/auth";
import type { Env } from "../../src/env";
import { ApiError } from "../../src/errors";
import { fuzzRuns } from "./arbitraries";

const RUNS = fuzzRuns(200);
const SECRET = "fuzz-secret-0123456789abcdefghijklmnop";
const REFUSALS = ["invalid_token", "invalid_signature", "token_expired", "token_not_yet_valid", "invalid_claims"];
const hs = new TextEncoder().encode(SECRET);
const nowS = () => Math.floor(Date.now() / 1000);

async function outcome(token: string, env: Partial<Env>): Promise<{ sub: string } | { status: number; code: string }> {
  try {
    return { sub: await verifyToken(token, env as Env) };
  } catch (error) {
    expect(error).toBeInstanceOf(ApiError);
    const e = error as ApiError;
    return { status: e.status, code: e.code };
  }
}

function b64url(value: unknown): string {
  return Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
}

describe("HS256 tokens under fuzzing", () => {
  const env = { JWT_SECRET: SECRET };

  it(`arbitrary strings are refused with a documented 401 (${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ unit: "binary", maxLength: 300 }),
          fc.array(fc.string({ maxLength: 40 }), { minLength: 1, maxLength: 5 }).map((parts) => parts.join(".")),
          fc.tuple(fc.jsonValue(), fc.jsonValue(), fc.string()).map(([h, p, s]) => `${b64url(h)}.${b64url(p)}.${s}`),
        ),
        async (token) => {
          const result = await outcome(token, env);
          expect(result).toMatchObject({ status: 401 });
          expect(REFUSALS).toContain((result as { code: string }).code);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it(`a mutated valid token is refused, or still names the same user (${RUNS} runs)`, async () => {
    const good = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("alice").setExpirationTime("1h").sign(hs);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(), fc.constantFrom(..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ "), fc.boolean()), { minLength: 1, maxLength: 3 }),
        async (edits) => {
          let token = good;
          for (const [at, char, insert] of edits) {
            const i = at % token.length;
            token = insert ? token.slice(0, i) + char + token.slice(i) : token.slice(0, i) + char + token.slice(i + 1);
          }
          const result = await outcome(token, env);
          if ("sub" in result) expect(result.sub).toBe("alice");
          else expect(REFUSALS).toContain(result.code);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it(`random claims: accepted exactly when exp/nbf/iss/aud/sub allow it, else the precise code (${RUNS} runs)`, async () => {
    const issuer = "https://issuer.example";
    const audience = "edge-presence";
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          // Lifetimes up to centuries (MAX_TOKEN_LIFETIME_S is 86 400 by default); iat past, a little ahead (skew: 60 s) or far ahead.
          exp: fc.option(fc.oneof(fc.integer({ min: 10, max: 86_400 }), fc.integer({ min: -86_400, max: -10 }), fc.integer({ min: 86_400, max: 300 * 365 * 86_400 })), {
            nil: undefined,
          }),
          iat: fc.option(fc.oneof(fc.integer({ min: -86_400, max: 0 }), fc.integer({ min: 1, max: 50 }), fc.integer({ min: 70, max: 86_400 })), { nil: undefined }),
          nbf: fc.option(fc.oneof(fc.integer({ min: 10, max: 86_400 }), fc.integer({ min: -86_400, max: 0 })), { nil: undefined }),
          iss: fc.option(fc.constantFrom(issuer, "https://evil.example", ""), { nil: undefined }),
          aud: fc.option(fc.constantFrom(audience, "other", [audience, "other"], ["other"]), { nil: undefined }),
          sub: fc.option(fc.oneof(fc.constantFrom("alice", "bob.b@x:y-z_1", "../admin", "", "a b", "x".repeat(129), ".", ".."), fc.string({ maxLength: 10 })), { nil: undefined }),
        }),
        fc.boolean(),
        async (claims, checkIssuer) => {
          const payload: Record<string, unknown> = {};
          // Stay clear of the lifetime boundary (a second may pass between signing and verifying).
          const lifetime = claims.exp === undefined ? 0 : claims.exp - (claims.iat ?? 0);
          fc.pre(Math.abs(lifetime - 86_400) > 5);
          if (claims.exp !== undefined) payload.exp = nowS() + claims.exp;
          if (claims.iat !== undefined) payload.iat = nowS() + claims.iat;
          if (claims.nbf !== undefined) payload.nbf = nowS() + claims.nbf;
          if (claims.iss !== undefined) payload.iss = claims.iss;
          if (claims.aud !== undefined) payload.aud = claims.aud;
          if (claims.sub !== undefined) payload.sub = claims.sub;
          const token = await new SignJWT(payload).setProtectedHeader({ alg: "HS256" }).sign(hs);
          const env = checkIssuer ? { JWT_SECRET: SECRET, JWT_ISSUER: issuer, JWT_AUDIENCE: audience } : { JWT_SECRET: SECRET };
          const result = await outcome(token, env);

          // "." and ".." are reserved user ids (issue #12: URL normalisation would turn them into other paths).
          const subValid = typeof claims.sub === "string" && /^[A-Za-z0-9_.@:-]{1,128}$/.test(claims.sub) && claims.sub !== "." && claims.sub !== "..";
          const audOk = claims.aud !== undefined && (Array.isArray(claims.aud) ? claims.aud.includes(audience) : claims.aud === audience);
          const issAud = !checkIssuer || (claims.iss === issuer && audOk);
          const lifetimeOk = lifetime <= 86_400 && (claims.iat === undefined || claims.iat <= 60);
          const shouldAccept = claims.exp !== undefined && claims.exp > 0 && (claims.nbf === undefined || claims.nbf <= 0) && issAud && subValid && lifetimeOk;
          if (shouldAccept) expect(result).toEqual({ sub: claims.sub });
          else {
            expect(result).toMatchObject({ status: 401 });
            const code = (result as { code: string }).code;
            expect(REFUSALS).toContain(code);
            if (claims.exp !== undefined && claims.exp < 0 && issAud && claims.sub !== undefined && (claims.nbf === undefined || claims.nbf <= 0))
              expect(code).toBe("token_expired");
            if (claims.exp !== undefined && claims.exp > 0 && (claims.nbf === undefined || claims.nbf <= 0) && issAud && claims.sub !== undefined && !lifetimeOk)
              expect(code).toBe(claims.iat !== undefined && claims.iat > 60 ? "token_not_yet_valid" : "invalid_claims");
            if (claims.exp === undefined) expect(["invalid_claims", "token_not_yet_valid"]).toContain(code);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it(`any alg other than HS256, RS256, ES256 is refused even with a valid HS256 signature (${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.constantFrom("none", "None", "NONE", "hs256", "HS384", "HS512", "PS256", "EdDSA", "RS512", "ES384", "", "HS256 "), fc.string({ maxLength: 8 })),
        async (alg) => {
          fc.pre(!["HS256", "RS256", "ES256"].includes(alg));
          const header = b64url({ alg, typ: "JWT" });
          const body = b64url({ sub: "alice", exp: nowS() + 3600 });
          const { createHmac } = await import("node:crypto");
          const signature = createHmac("sha256", SECRET).update(`${header}.${body}`).digest("base64url");
          for (const token of [`${header}.${body}.${signature}`, `${header}.${body}.`]) {
            expect(await outcome(token, { JWT_SECRET: SECRET })).toMatchObject({ status: 401, code: "invalid_token" });
          }
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe("RS256/ES256 through a JWKS that can misbehave", () => {
  let server: Server;
  let url: string;
  let mode: "ok" | "500" | "html" | "not-a-jwks" = "ok";
  let rsa: { privateKey: CryptoKey; publicKey: CryptoKey };
  let ec: { privateKey: CryptoKey; publicKey: CryptoKey };
  let otherRsa: { privateKey: CryptoKey; publicKey: CryptoKey };

  beforeAll(async () => {
    rsa = await generateKeyPair("RS256");
    ec = await generateKeyPair("ES256");
    otherRsa = await generateKeyPair("RS256");
    const keys = [
      { ...(await exportJWK(rsa.publicKey)), kid: "rsa-1", alg: "RS256", use: "sig" },
      { ...(await exportJWK(ec.publicKey)), kid: "ec-1", alg: "ES256", use: "sig" },
    ];
    server = createServer((_req, res) => {
      if (mode === "500") res.writeHead(500).end("boom");
      else if (mode === "html") res.writeHead(200, { "content-type": "text/html" }).end("<html>maintenance</html>");
      else if (mode === "not-a-jwks") res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ hello: "world" }));
      else res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const signed = (alg: "RS256" | "ES256", kid: string, key: CryptoKey, sub = "alice") =>
    new SignJWT({}).setProtectedHeader({ alg, kid }).setSubject(sub).setIssuer("iss").setAudience("aud").setExpirationTime("1h").sign(key);

  it("a key set that cannot be read is 503 auth_unavailable (retry), never 401; it recovers at once", async () => {
    // Each mode on a fresh URL path: jose caches key sets per URL.
    for (const [i, bad] of (["500", "html", "not-a-jwks"] as const).entries()) {
      const env = { JWKS_URL: `${url}/jwks-${i}.json`, JWT_ISSUER: "iss", JWT_AUDIENCE: "aud" };
      mode = bad;
      expect(await outcome(await signed("RS256", "rsa-1", rsa.privateKey), env)).toEqual({ status: 503, code: "auth_unavailable" });
      mode = "ok";
      expect(await outcome(await signed("RS256", "rsa-1", rsa.privateKey), env)).toEqual({ sub: "alice" });
    }
    expect(await outcome(await signed("RS256", "rsa-1", rsa.privateKey), { JWKS_URL: "http://127.0.0.1:1/jwks.json" })).toEqual({ status: 503, code: "auth_unavailable" });
  });

  it("RS256 and ES256 verify; a wrong key, an unknown kid or a kid/alg mismatch do not", async () => {
    const env = { JWKS_URL: `${url}/jwks.json`, JWT_ISSUER: "iss", JWT_AUDIENCE: "aud", JWT_SECRET: SECRET };
    mode = "ok";
    expect(await outcome(await signed("RS256", "rsa-1", rsa.privateKey), env)).toEqual({ sub: "alice" });
    expect(await outcome(await signed("ES256", "ec-1", ec.privateKey), env)).toEqual({ sub: "alice" });
    expect(await outcome(await signed("RS256", "rsa-1", otherRsa.privateKey), env)).toMatchObject({ status: 401, code: "invalid_signature" });
    expect(await outcome(await signed("RS256", "ec-1", rsa.privateKey), env)).toMatchObject({ status: 401 });
    expect(await outcome(await signed("ES256", "rsa-1", ec.privateKey), env)).toMatchObject({ status: 401 });
  });

  it("HS/RS confusion: an HS256 token keyed with the RSA public key (PEM or JWK JSON) is refused", async () => {
    const pem = await exportSPKI(rsa.publicKey);
    const jwkJson = JSON.stringify(await exportJWK(rsa.publicKey));
    for (const env of [{ JWKS_URL: `${url}/jwks.json`, JWT_SECRET: SECRET }, { JWKS_URL: `${url}/jwks.json` }]) {
      for (const secret of [pem, pem.trim(), jwkJson]) {
        const token = await new SignJWT({}).setProtectedHeader({ alg: "HS256", kid: "rsa-1" }).setSubject("alice").setExpirationTime("1h").sign(new TextEncoder().encode(secret));
        const result = await outcome(token, env);
        expect(result).toMatchObject({ status: 401 });
        expect(["invalid_signature", "invalid_token"]).toContain((result as { code: string }).code);
      }
    }
  });
});
