// The Hono worker on this runtime's own Request, Response, URL, TextEncoder and
// WebCrypto: routing, JWT sign/verify (jose), validation (zod) and the JSON error
// shape. The Durable Object binding is the Cloudflare part and is faked here; that
// the real one works under each host runtime is test/runtimes/smoke's job.
import { describe, expect, it } from "vitest";
import { app } from "../../src/app";
import type { Env } from "../../src/env";

const SECRET = "runtime-suite-secret-0123456789abcdef";

interface Call {
  userId: string;
  method: string;
  headers?: Record<string, string>;
}

function fakeEnv(vars: Partial<Env> = {}) {
  const calls: Call[] = [];
  const USER = {
    getByName(userId: string) {
      return {
        async fetch(request: Request) {
          calls.push({ userId, method: "fetch", headers: Object.fromEntries(request.headers) });
          return new Response("forwarded to the user's object", { status: 200 });
        },
        async onlineFriends(...args: unknown[]) {
          calls.push({ userId, method: `onlineFriends(${args.map((a) => JSON.stringify(a)).join(",")})` });
          return { ok: true, value: { friends: [] } };
        },
      };
    },
  };
  const env = { USER, JWT_SECRET: SECRET, DEV_MODE: "1", ...vars } as unknown as Env;
  return { env, calls };
}

async function devToken(env: Env, userId: string): Promise<string> {
  const res = await app.request("/dev/token", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ userId }) }, env);
  expect(res.status).toBe(200);
  return ((await res.json()) as { token: string }).token;
}

describe("the Hono worker on this runtime", () => {
  it("answers /health, and unknown routes with the one JSON error shape", async () => {
    const { env } = fakeEnv();
    const health = await app.request("/health", {}, env);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true, service: "edge-presence" });
    const missing = await app.request("/nowhere", {}, env);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: "not_found" } });
  });

  it("signs a dev token, verifies it, and hands the WebSocket upgrade to that user's object", async () => {
    const { env, calls } = fakeEnv();
    const token = await devToken(env, "alice");
    const res = await app.request("/v1/connect?device=laptop&kind=desktop", { headers: { Authorization: `Bearer ${token}`, Upgrade: "websocket" } }, env);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("forwarded to the user's object");
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ userId: "alice", method: "fetch" });
    // Whose object it is, is the name it is reached by (ctx.id.name there): no header says it.
    expect(calls[0]!.headers).toMatchObject({ "x-presence-device": "laptop", "x-presence-kind": "desktop" });
    expect(calls[0]!.headers).not.toHaveProperty("x-presence-user");
  });

  it("calls the object's RPC method for the verified user only", async () => {
    const { env, calls } = fakeEnv();
    const token = await devToken(env, "bob");
    const res = await app.request("/v1/friends/online", { headers: { Authorization: `Bearer ${token}` } }, env);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ friends: [] });
    expect(calls).toEqual([{ userId: "bob", method: "onlineFriends({})" }]);
  });

  it("refuses a token signed with another secret, a missing token, and invalid input before touching any object", async () => {
    const { env, calls } = fakeEnv();
    const forged = await devToken(fakeEnv({ JWT_SECRET: "another-secret-0123456789abcdefghij" }).env, "mallory");
    const bad = await app.request("/v1/connect", { headers: { Authorization: `Bearer ${forged}`, Upgrade: "websocket" } }, env);
    expect(bad.status).toBe(401);
    expect(await bad.json()).toMatchObject({ error: { code: expect.any(String) } });
    expect((await app.request("/v1/friends/online", {}, env)).status).toBe(401);
    const invalid = await app.request("/dev/token", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ userId: "" }) }, env);
    expect(invalid.status).toBe(400);
    expect(await invalid.json()).toMatchObject({ error: { code: "invalid_request" } });
    expect(calls).toEqual([]);
  });

  it("has no dev sign-in unless DEV_MODE=1", async () => {
    const { env } = fakeEnv({ DEV_MODE: undefined });
    const res = await app.request("/dev/token", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ userId: "alice" }) }, env);
    expect(res.status).toBe(404);
  });
});
