import { SignJWT, UnsecuredJWT } from "jose";
import { describe, expect, it } from "vitest";
import { ADMIN, token, user, worker } from "./helpers";

async function connect(headers: Record<string, string>, query = "") {
  return worker().fetch(`http://presence/v1/connect${query}`, { headers: { Upgrade: "websocket", ...headers } });
}

async function expectError(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.webSocket).toBeNull();
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe("string");
}

describe("authentication before any object is touched", () => {
  it("health is public", async () => {
    expect(await (await worker().fetch("http://presence/health")).json()).toEqual({ ok: true, service: "edge-presence" });
  });

  it("no token → 401 missing_token, never a socket", async () => {
    await expectError(await connect({}), 401, "missing_token");
    await expectError(await worker().fetch("http://presence/v1/friends/online"), 401, "missing_token");
  });

  it("garbage → 401 invalid_token", async () => {
    await expectError(await connect({ Authorization: "Bearer not-a-jwt" }), 401, "invalid_token");
    await expectError(await connect({ Authorization: "Basic abc" }), 401, "missing_token");
  });

  it("forged signature → 401 invalid_signature", async () => {
    await expectError(await connect({ Authorization: `Bearer ${await token(user(), { secret: "someone-elses-secret-xxxxxxxxxxxx" })}` }), 401, "invalid_signature");
  });

  it("expired → 401 token_expired; not yet valid → 401 token_not_yet_valid", async () => {
    const expired = await token(user(), { exp: Math.floor(Date.now() / 1000) - 60 });
    await expectError(await connect({ Authorization: `Bearer ${expired}` }), 401, "token_expired");
    const future = await token(user(), { nbf: Math.floor(Date.now() / 1000) + 3600 });
    await expectError(await connect({ Authorization: `Bearer ${future}` }), 401, "token_not_yet_valid");
  });

  it("a token living longer than MAX_TOKEN_LIFETIME_S (24 h) → 401 invalid_claims; an iat in the future → 401 token_not_yet_valid", async () => {
    const key = new TextEncoder().encode("workers-test-secret-0123456789abcdef");
    const now = Math.floor(Date.now() / 1000);
    const sign = (claims: { iat?: number; exp: number }) => {
      const jwt = new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject(user()).setExpirationTime(claims.exp);
      return (claims.iat === undefined ? jwt : jwt.setIssuedAt(claims.iat)).sign(key);
    };
    // exp centuries ahead, with and without iat.
    await expectError(await connect({ Authorization: `Bearer ${await sign({ iat: now, exp: now + 300 * 365 * 86_400 })}` }), 401, "invalid_claims");
    await expectError(await connect({ Authorization: `Bearer ${await sign({ exp: now + 300 * 365 * 86_400 })}` }), 401, "invalid_claims");
    // 24 h + a minute, counted from iat (even when iat is in the past).
    await expectError(await connect({ Authorization: `Bearer ${await sign({ iat: now - 3600, exp: now + 23 * 3600 + 60 })}` }), 401, "invalid_claims");
    // Issued an hour from now.
    await expectError(await connect({ Authorization: `Bearer ${await sign({ iat: now + 3600, exp: now + 7200 })}` }), 401, "token_not_yet_valid");
    // Within the limits: 24 h exactly, and an iat a few seconds ahead (clock skew).
    for (const claims of [{ iat: now, exp: now + 86_400 }, { iat: now + 10, exp: now + 3600 }, { exp: now + 3600 }]) {
      const res = await worker().fetch("http://presence/v1/friends", { headers: { Authorization: `Bearer ${await sign(claims)}` } });
      expect(res.status, JSON.stringify(claims)).toBe(200);
    }
  });

  it("alg none and a token without exp are refused", async () => {
    const none = new UnsecuredJWT({}).setSubject(user()).setExpirationTime("1h").encode();
    await expectError(await connect({ Authorization: `Bearer ${none}` }), 401, "invalid_token");
    const noExp = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject(user()).sign(new TextEncoder().encode("workers-test-secret-0123456789abcdef"));
    await expectError(await connect({ Authorization: `Bearer ${noExp}` }), 401, "invalid_claims");
  });

  it("RS256 without a configured JWKS is refused, not confused with HS256", async () => {
    const header = btoa(JSON.stringify({ alg: "RS256", typ: "JWT" })).replace(/=+$/, "");
    const payload = btoa(JSON.stringify({ sub: "x", exp: 9999999999 })).replace(/=+$/, "");
    await expectError(await connect({ Authorization: `Bearer ${header}.${payload}.c2ln` }), 401, "invalid_token");
  });

  it("a sub that is not a valid user id is refused", async () => {
    await expectError(await connect({ Authorization: `Bearer ${await token("../../admin")}` }), 401, "invalid_token");
  });

  it("accepts the token as Sec-WebSocket-Protocol and echoes the app protocol", async () => {
    const res = await connect({ "Sec-WebSocket-Protocol": `presence.v1, bearer.${await token(user())}` });
    expect(res.status).toBe(101);
    expect(res.headers.get("Sec-WebSocket-Protocol")).toBe("presence.v1");
    res.webSocket!.accept();
    res.webSocket!.close(1000);
  });

  it("accepts the token as ?access_token= (browsers)", async () => {
    const res = await connect({}, `?access_token=${await token(user())}`);
    expect(res.status).toBe(101);
    res.webSocket!.accept();
    res.webSocket!.close(1000);
  });

  it("a plain GET on /v1/connect → 426", async () => {
    const res = await worker().fetch("http://presence/v1/connect", { headers: { Authorization: `Bearer ${await token(user())}` } });
    await expectError(res, 426, "upgrade_required");
  });

  it("bad device or kind → 400", async () => {
    await expectError(await connect({ Authorization: `Bearer ${await token(user())}` }, "?device=a%20b"), 400, "invalid_request");
    await expectError(await connect({ Authorization: `Bearer ${await token(user())}` }, "?kind=toaster"), 400, "invalid_request");
  });

  it("admin routes need the admin token", async () => {
    const body = JSON.stringify({ a: user(), b: user() });
    await expectError(await worker().fetch("http://presence/v1/admin/friendships", { method: "PUT", body }), 401, "invalid_admin_token");
    await expectError(
      await worker().fetch("http://presence/v1/admin/friendships", { method: "PUT", body, headers: { Authorization: "Bearer wrong" } }),
      401,
      "invalid_admin_token",
    );
    // A user's JWT is not an admin token either.
    await expectError(
      await worker().fetch("http://presence/v1/admin/friendships", { method: "PUT", body, headers: { Authorization: `Bearer ${await token(user())}` } }),
      401,
      "invalid_admin_token",
    );
    const ok = await worker().fetch("http://presence/v1/admin/friendships", { method: "PUT", body, headers: { Authorization: `Bearer ${ADMIN}` } });
    expect(ok.status).toBe(200);
  });

  it("unknown routes → 404 JSON", async () => {
    await expectError(await worker().fetch("http://presence/nope"), 404, "not_found");
  });
});
