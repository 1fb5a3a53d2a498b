/**
 * Auth end to end (issue #6): `wrangler dev` configured with a JWKS served by a
 * local Node HTTP server (RS256 + ES256 keys) and a required issuer/audience.
 * Real `ws` clients and real fetches; the worker fetches the key set itself.
 */
import { createServer, type Server } from "node:http";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, UnsecuredJWT, type CryptoKey } from "jose";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { refusedUpgrade, SECRET, startDevServer, type DevServer } from "./harness";

const ISSUER = "https://auth.example.test";
const AUDIENCE = "edge-presence-e2e";
let server: DevServer;
let jwksServer: Server;
let jwksMode: "ok" | "500" = "500";
let jwksHits = 0;
let rsa: { privateKey: CryptoKey; publicKey: CryptoKey };
let ec: { privateKey: CryptoKey; publicKey: CryptoKey };
let stranger: { privateKey: CryptoKey; publicKey: CryptoKey };

beforeAll(async () => {
  rsa = await generateKeyPair("RS256");
  ec = await generateKeyPair("ES256");
  stranger = await generateKeyPair("RS256");
  const keys = [
    { ...(await exportJWK(rsa.publicKey)), kid: "rsa-1", alg: "RS256", use: "sig" },
    { ...(await exportJWK(ec.publicKey)), kid: "ec-1", alg: "ES256", use: "sig" },
  ];
  jwksServer = createServer((req, res) => {
    jwksHits++;
    if (req.url !== "/jwks.json") res.writeHead(404).end();
    else if (jwksMode === "500") res.writeHead(500).end("identity provider down");
    else res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys }));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, "127.0.0.1", resolve));
  const jwksPort = (jwksServer.address() as { port: number }).port;
  server = await startDevServer({
    vars: { JWKS_URL: `http://127.0.0.1:${jwksPort}/jwks.json`, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE },
  });
});

afterAll(async () => {
  await server?.stop();
  await new Promise<void>((resolve) => (jwksServer ? jwksServer.close(() => resolve()) : resolve()));
});

interface Claims {
  sub?: string;
  iss?: string;
  aud?: string;
  exp?: number | string;
  nbf?: number;
}

function claims(sub: string, over: Claims = {}): Claims {
  return { sub, iss: ISSUER, aud: AUDIENCE, exp: "10m", ...over };
}

async function sign(alg: "RS256" | "ES256" | "HS256", kid: string | undefined, key: CryptoKey | Uint8Array, c: Claims) {
  let jwt = new SignJWT({}).setProtectedHeader(kid ? { alg, kid } : { alg });
  if (c.sub !== undefined) jwt = jwt.setSubject(c.sub);
  if (c.iss !== undefined) jwt = jwt.setIssuer(c.iss);
  if (c.aud !== undefined) jwt = jwt.setAudience(c.aud);
  if (c.exp !== undefined) jwt = jwt.setExpirationTime(c.exp);
  if (c.nbf !== undefined) jwt = jwt.setNotBefore(c.nbf);
  return jwt.sign(key);
}

const rs = (sub: string, over: Claims = {}) => sign("RS256", "rsa-1", rsa.privateKey, claims(sub, over));
const es = (sub: string, over: Claims = {}) => sign("ES256", "ec-1", ec.privateKey, claims(sub, over));

async function get(path: string, jwt: string) {
  const res = await fetch(`${server.url}${path}`, { headers: { Authorization: `Bearer ${jwt}` } });
  return { status: res.status, body: (await res.json()) as any };
}

async function open(jwt: string, device = "d1"): Promise<{ ws: WebSocket; welcome: any }> {
  const ws = new WebSocket(`${server.url.replace("http", "ws")}/v1/connect?device=${device}`, { headers: { Authorization: `Bearer ${jwt}` } });
  const welcome = await new Promise<any>((resolve, reject) => {
    ws.once("message", (d) => resolve(JSON.parse(d.toString())));
    ws.once("error", reject);
    ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
  return { ws, welcome };
}

async function refused(jwt: string) {
  return refusedUpgrade(`${server.url.replace("http", "ws")}/v1/connect?device=x`, { Authorization: `Bearer ${jwt}` });
}

describe("JWKS-backed auth against wrangler dev", () => {
  it("while the key set cannot be fetched, a valid token gets 503 auth_unavailable (retry), then works once it is back", async () => {
    jwksMode = "500";
    const token = await rs("outage-user");
    expect(await refused(token)).toEqual({ status: 503, body: { error: { code: "auth_unavailable", message: expect.any(String) } } });
    expect(jwksHits).toBeGreaterThan(0);
    jwksMode = "ok";
    const { ws, welcome } = await open(token);
    expect(welcome).toMatchObject({ type: "welcome", userId: "outage-user" });
    ws.close();
  });

  it("RS256 and ES256 tokens from the JWKS are accepted over sockets and HTTP", async () => {
    jwksMode = "ok";
    const { ws, welcome } = await open(await rs("rita"));
    expect(welcome.userId).toBe("rita");
    ws.close();
    expect((await get("/v1/friends", await es("eli"))).status).toBe(200);
  });

  it.each<[string, () => Promise<string>, string]>([
    ["wrong issuer", () => rs("x", { iss: "https://evil.example" }), "invalid_claims"],
    ["no issuer", () => rs("x", { iss: undefined }), "invalid_claims"],
    ["wrong audience", () => es("x", { aud: "someone-else" }), "invalid_claims"],
    ["no audience", () => es("x", { aud: undefined }), "invalid_claims"],
    ["expired", () => rs("x", { exp: Math.floor(Date.now() / 1000) - 120 }), "token_expired"],
    ["not yet valid", () => rs("x", { nbf: Math.floor(Date.now() / 1000) + 3600 }), "token_not_yet_valid"],
    ["no exp", () => rs("x", { exp: undefined }), "invalid_claims"],
    ["no sub", () => rs(undefined as never, { sub: undefined }), "invalid_claims"],
    ["sub that is not a user id", () => rs("../admin"), "invalid_token"],
    ["signed by a key not in the set (known kid)", () => sign("RS256", "rsa-1", stranger.privateKey, claims("x")), "invalid_signature"],
    ["unknown kid", () => sign("RS256", "rsa-999", stranger.privateKey, claims("x")), "invalid_signature"],
    ["ES256 header on the RSA kid", () => sign("ES256", "rsa-1", ec.privateKey, claims("x")), "invalid_signature"],
    ["alg none", async () => new UnsecuredJWT({}).setSubject("x").setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime("10m").encode(), "invalid_token"],
    [
      "HS256 keyed with the RSA public key PEM (HS/RS confusion)",
      async () => sign("HS256", "rsa-1", new TextEncoder().encode(await exportSPKI(rsa.publicKey)), claims("x")),
      "invalid_signature",
    ],
    ["HS256 with the real secret but without the configured iss/aud", () => sign("HS256", undefined, new TextEncoder().encode(SECRET), { sub: "x", exp: "10m" }), "invalid_claims"],
  ])("%s → 401 %s, no socket", async (_, make, code) => {
    jwksMode = "ok";
    const result = await refused(await make());
    expect(result.status).toBe(401);
    expect(result.body.error.code).toBe(code);
  });

  it("HS256 with the real secret and the configured iss/aud is still accepted next to the JWKS", async () => {
    const token = await sign("HS256", undefined, new TextEncoder().encode(SECRET), claims("hazel"));
    expect((await get("/v1/friends", token)).status).toBe(200);
  });

  it("a valid token for A cannot read B's presence unless they are friends; ids in the path cannot escape", async () => {
    jwksMode = "ok";
    const bob = await open(await es("bob-jwks"), "bob-pc");
    bob.ws.send(JSON.stringify({ type: "PositionHeartbeat", position: { x: 1, y: 2, z: 3 }, realm: "bob-home", status: "online" }));
    await new Promise((resolve) => bob.ws.once("message", resolve));
    const alice = await rs("alice-jwks");
    for (const path of ["bob-jwks", "..%2Fbob-jwks", "%2e%2e%2fbob-jwks", "alice-jwks%2F..%2Fbob-jwks", "BOB-JWKS", "bob-jwks%00"]) {
      const res = await get(`/v1/presence/${path}`, alice);
      expect(res.status, path).toBe(404);
      expect(JSON.stringify(res.body), path).not.toContain("bob-home");
    }
    expect((await server.admin("PUT", "/friendships", { a: "alice-jwks", b: "bob-jwks" })).status).toBe(200);
    const seen = await get("/v1/presence/bob-jwks", alice);
    expect(seen.status).toBe(200);
    expect(seen.body.presence).toMatchObject({ userId: "bob-jwks", status: "online", realm: "bob-home" });
    bob.ws.close();
  });

  it("admin routes refuse user tokens from the JWKS and wrong admin tokens", async () => {
    const body = JSON.stringify({ a: "p1", b: "p2" });
    for (const auth of [
      `Bearer ${await rs("admin")}`,
      "Bearer wrong",
      `Bearer ${"e2e-admin-token"} x`,
      "e2e-admin-token",
      `Basic ${Buffer.from("admin:e2e-admin-token").toString("base64")}`,
      "",
    ]) {
      const res = await fetch(`${server.url}/v1/admin/friendships`, { method: "PUT", headers: auth ? { Authorization: auth } : {}, body });
      expect(res.status, auth).toBe(401);
      expect(((await res.json()) as any).error.code).toBe("invalid_admin_token");
    }
  });
});
