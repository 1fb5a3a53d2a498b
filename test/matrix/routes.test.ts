/**
 * The Matrix sub-app over HTTP (Hono's app.request, no socket): the endpoints a
 * stock client needs, the error shapes and status codes, and no leaks.
 */
import { Hono } from "hono";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createMatrixApp } from "../../src/matrix/routes";
import { filterId } from "../../src/matrix/filter";
import { MemoryPresence, newMemoryState } from "./support/memory-backend";
import { fresh, SECRET, signToken, startMemoryHarness } from "./support/harness";

const SERVER = "example.org";
let backend: MemoryPresence;
let app: Hono;
const env = { JWT_SECRET: SECRET, SERVER_NAME: SERVER, PRESENCE_TTL_MS: "120000" };

beforeEach(() => {
  backend = new MemoryPresence(newMemoryState(), { ttlMs: 120_000, serverName: SERVER });
  app = new Hono();
  app.route("/_matrix/client", createMatrixApp({ backend: () => backend }));
});
afterEach(() => backend.close());

async function call(method: string, path: string, options: { user?: string; token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...options.headers };
  const token = options.token ?? (options.user ? await signToken(options.user) : undefined);
  if (token) headers.Authorization = `Bearer ${token}`;
  let body: string | undefined = options.rawBody;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers["Content-Type"] = "application/json";
  }
  const res = await app.request(`/_matrix/client${path}`, { method, headers, body }, env);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

const mx = (user: string) => `@${user}:${SERVER}`;
const presencePath = (matrixId: string) => `/v3/presence/${encodeURIComponent(matrixId)}/status`;

describe("what a stock client calls before it syncs", () => {
  it("GET /versions needs no token", async () => {
    const res = await call("GET", "/versions");
    expect(res.status).toBe(200);
    expect(res.body.versions).toContain("v1.1");
    expect(res.body.unstable_features).toEqual({});
  });

  it("whoami, capabilities, empty push rules", async () => {
    const alice = fresh("alice");
    expect((await call("GET", "/v3/account/whoami", { user: alice })).body).toEqual({ user_id: mx(alice), device_id: "matrix", is_guest: false });
    expect((await call("GET", "/v3/capabilities", { user: alice })).body.capabilities["m.change_password"]).toEqual({ enabled: false });
    const rules = await call("GET", "/v3/pushrules/", { user: alice });
    expect(rules.body).toEqual({ global: { override: [], content: [], room: [], sender: [], underride: [] } });
  });

  it("filters: the id is the filter; GET returns it; only your own", async () => {
    const alice = fresh("alice");
    const filter = { presence: { types: ["m.presence"] }, room: { timeline: { limit: 1 } } };
    const created = await call("POST", `/v3/user/${encodeURIComponent(mx(alice))}/filter`, { user: alice, body: filter });
    expect(created.status).toBe(200);
    expect(created.body.filter_id).toBe(filterId(filter));
    expect(created.body.filter_id.startsWith("{")).toBe(false);
    expect((await call("GET", `/v3/user/${encodeURIComponent(mx(alice))}/filter/${created.body.filter_id}`, { user: alice })).body).toEqual(filter);
    expect((await call("GET", `/v3/user/${encodeURIComponent(mx(alice))}/filter/nope`, { user: alice })).body.errcode).toBe("M_NOT_FOUND");
    const other = await call("POST", `/v3/user/${encodeURIComponent(mx("bob"))}/filter`, { user: alice, body: filter });
    expect(other).toMatchObject({ status: 403, body: { errcode: "M_FORBIDDEN" } });
    expect((await call("POST", `/v3/user/${encodeURIComponent(mx(alice))}/filter`, { user: alice, body: { presence: { limit: -1 } } })).body.errcode).toBe("M_BAD_JSON");
  });

  it("unknown endpoints answer M_UNRECOGNIZED 404; CORS preflight works", async () => {
    expect(await call("GET", "/v3/rooms/!x:example.org/messages", { user: fresh("a") })).toMatchObject({ status: 404, body: { errcode: "M_UNRECOGNIZED" } });
    const pre = await app.request("/_matrix/client/v3/sync", { method: "OPTIONS", headers: { Origin: "https://app.example", "Access-Control-Request-Method": "GET" } }, env);
    expect(pre.status).toBe(204);
    expect(pre.headers.get("Access-Control-Allow-Origin")).toBe("*");
    expect(pre.headers.get("Access-Control-Allow-Headers")).toMatch(/Authorization/);
  });

  it("r0 paths work like v3 (older clients)", async () => {
    const alice = fresh("alice");
    expect((await call("GET", `/r0/presence/${encodeURIComponent(mx(alice))}/status`, { user: alice })).status).toBe(200);
  });
});

describe("authentication errors in Matrix's shape", () => {
  it("no token → M_MISSING_TOKEN 401", async () => {
    expect(await call("GET", "/v3/sync")).toMatchObject({ status: 401, body: { errcode: "M_MISSING_TOKEN" } });
  });

  it("a forged or malformed token → M_UNKNOWN_TOKEN 401, soft_logout false", async () => {
    const forged = await signToken("alice", "1h", "another-secret-0123456789abcdef");
    expect(await call("GET", "/v3/sync", { token: forged })).toMatchObject({ status: 401, body: { errcode: "M_UNKNOWN_TOKEN", soft_logout: false } });
    expect(await call("GET", "/v3/sync", { token: "not-a-jwt" })).toMatchObject({ status: 401, body: { errcode: "M_UNKNOWN_TOKEN" } });
  });

  it("an expired token → M_UNKNOWN_TOKEN with soft_logout true (sign in again, keep state)", async () => {
    const expired = await signToken("alice", Math.floor(Date.now() / 1000) - 60);
    expect(await call("GET", "/v3/sync", { token: expired })).toMatchObject({ status: 401, body: { errcode: "M_UNKNOWN_TOKEN", soft_logout: true } });
  });

  it("?access_token= works too (older clients)", async () => {
    const alice = fresh("alice");
    const res = await app.request(`/_matrix/client/v3/account/whoami?access_token=${await signToken(alice)}`, {}, env);
    expect(await res.json()).toMatchObject({ user_id: mx(alice) });
  });
});

describe("presence status", () => {
  it("PUT then GET your own; empty status_msg clears", async () => {
    const alice = fresh("alice");
    expect(await call("PUT", presencePath(mx(alice)), { user: alice, body: { presence: "online", status_msg: "hello" } })).toMatchObject({ status: 200, body: {} });
    expect((await call("GET", presencePath(mx(alice)), { user: alice })).body).toMatchObject({ presence: "online", status_msg: "hello", currently_active: true });
    await call("PUT", presencePath(mx(alice)), { user: alice, body: { presence: "unavailable", status_msg: "" } });
    expect((await call("GET", presencePath(mx(alice)), { user: alice })).body).toMatchObject({ presence: "unavailable", status_msg: null });
  });

  it("a friend's presence is readable; anyone else is the same 404 as nobody at all", async () => {
    const [alice, bob, eve] = [fresh("alice"), fresh("bob"), fresh("eve")];
    backend.befriend(alice, bob);
    backend.heartbeat(bob, "pc", "online", "here");
    backend.heartbeat(eve, "pc", "online", "secret");
    expect((await call("GET", presencePath(mx(bob)), { user: alice })).body).toMatchObject({ presence: "online", status_msg: "here" });
    const stranger = await call("GET", presencePath(mx(eve)), { user: alice });
    const nobody = await call("GET", presencePath(mx(fresh("ghost"))), { user: alice });
    const foreign = await call("GET", presencePath("@eve:elsewhere.org"), { user: alice });
    const nonCanonical = await call("GET", presencePath(`@=61${bob.slice(1)}:${SERVER}`), { user: alice });
    for (const res of [stranger, nobody, foreign, nonCanonical]) {
      expect(res.status).toBe(404);
      expect(res.body).toEqual(nobody.body);
    }
    expect(nobody.body.errcode).toBe("M_NOT_FOUND");
  });

  it("a malformed user id is M_INVALID_PARAM", async () => {
    expect(await call("GET", presencePath("alice"), { user: fresh("a") })).toMatchObject({ status: 400, body: { errcode: "M_INVALID_PARAM" } });
  });

  it("PUT someone else's → M_FORBIDDEN; bad bodies → M_NOT_JSON / M_BAD_JSON; too large → M_TOO_LARGE", async () => {
    const alice = fresh("alice");
    expect(await call("PUT", presencePath(mx("bob")), { user: alice, body: { presence: "online" } })).toMatchObject({ status: 403, body: { errcode: "M_FORBIDDEN" } });
    expect(await call("PUT", presencePath(mx(alice)), { user: alice, rawBody: "{oops", headers: { "Content-Type": "application/json" } })).toMatchObject({
      status: 400,
      body: { errcode: "M_NOT_JSON" },
    });
    expect(await call("PUT", presencePath(mx(alice)), { user: alice, body: { presence: "busy" } })).toMatchObject({ status: 400, body: { errcode: "M_BAD_JSON" } });
    expect(await call("PUT", presencePath(mx(alice)), { user: alice, body: ["online"] })).toMatchObject({ status: 400, body: { errcode: "M_BAD_JSON" } });
    expect(await call("PUT", presencePath(mx(alice)), { user: alice, body: { presence: "online", status_msg: "x".repeat(141) } })).toMatchObject({
      status: 400,
      body: { errcode: "M_BAD_JSON" },
    });
    expect(await call("PUT", presencePath(mx(alice)), { user: alice, body: { presence: "online", status_msg: "x".repeat(10_000) } })).toMatchObject({
      status: 413,
      body: { errcode: "M_TOO_LARGE" },
    });
  });

  it("rate limited → M_LIMIT_EXCEEDED 429 with retry_after_ms and Retry-After", async () => {
    backend.close();
    backend = new MemoryPresence(newMemoryState(), { ttlMs: 120_000, serverName: SERVER, rateBurst: 2, ratePerSecond: 0.5 });
    const alice = fresh("alice");
    await call("PUT", presencePath(mx(alice)), { user: alice, body: { presence: "online" } });
    await call("PUT", presencePath(mx(alice)), { user: alice, body: { presence: "online" } });
    const limited = await call("PUT", presencePath(mx(alice)), { user: alice, body: { presence: "online" } });
    expect(limited.status).toBe(429);
    expect(limited.body.errcode).toBe("M_LIMIT_EXCEEDED");
    expect(limited.body.retry_after_ms).toBeGreaterThan(0);
    expect(Number.isInteger(limited.body.retry_after_ms)).toBe(true);
    expect(Number(limited.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
    expect((await call("GET", "/v3/sync", { user: alice })).status).toBe(429);
  });
});

describe("/sync", () => {
  it("bad parameters → M_INVALID_PARAM", async () => {
    const alice = fresh("alice");
    for (const query of ["timeout=-1", "timeout=abc", "set_presence=busy", "full_state=yes", "filter=%7Bnot-json"]) {
      expect(await call("GET", `/v3/sync?${query}`, { user: alice }), query).toMatchObject({ status: 400, body: { errcode: "M_INVALID_PARAM" } });
    }
  });

  it("has the shape clients expect", async () => {
    const alice = fresh("alice");
    const res = await call("GET", "/v3/sync", { user: alice });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ next_batch: expect.stringMatching(/^p1_/), presence: { events: expect.any(Array) }, account_data: { events: [] }, rooms: { join: {} } });
  });

  it("an unknown filter id does not break the sync loop; an inline filter applies", async () => {
    const alice = fresh("alice");
    expect((await call("GET", "/v3/sync?filter=42", { user: alice })).status).toBe(200);
    const none = await call("GET", `/v3/sync?filter=${encodeURIComponent(JSON.stringify({ presence: { not_types: ["*"] } }))}`, { user: alice });
    expect(none.body.presence.events).toEqual([]);
  });

  it("a long poll returns as soon as a friend's presence changes", async () => {
    const [alice, bob] = [fresh("alice"), fresh("bob")];
    backend.befriend(alice, bob);
    const first = await call("GET", "/v3/sync", { user: alice });
    const started = Date.now();
    const poll = call("GET", `/v3/sync?since=${first.body.next_batch}&timeout=10000`, { user: alice });
    await new Promise((r) => setTimeout(r, 100));
    expect(backend.parked(alice)).toBe(1);
    backend.heartbeat(bob, "pc", "online", "hi");
    const res = await poll;
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(res.body.presence.events).toEqual([expect.objectContaining({ sender: mx(bob), content: expect.objectContaining({ presence: "online", status_msg: "hi" }) })]);
    expect(backend.parked(alice)).toBe(0);
  });

  it("a long poll that sees nothing ends at its timeout with a usable token", async () => {
    const alice = fresh("alice");
    const first = await call("GET", "/v3/sync", { user: alice });
    const started = Date.now();
    const res = await call("GET", `/v3/sync?since=${first.body.next_batch}&timeout=300`, { user: alice });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(res.body.presence.events).toEqual([]);
    expect((await call("GET", `/v3/sync?since=${res.body.next_batch}`, { user: alice })).body.presence.events).toEqual([]);
  });

  it("a friend's move (no Matrix-visible change) does not wake a long poll", async () => {
    const [alice, bob] = [fresh("alice"), fresh("bob")];
    backend.befriend(alice, bob);
    backend.heartbeat(bob, "pc", "online", "hi");
    const first = await call("GET", "/v3/sync", { user: alice });
    const poll = call("GET", `/v3/sync?since=${first.body.next_batch}&timeout=400`, { user: alice });
    await new Promise((r) => setTimeout(r, 50));
    const seqBefore = (await backend.presence(bob, bob))!.seq;
    backend.heartbeat(bob, "pc", "online", "hi", { realm: "forest", position: { x: 5, y: 0, z: 1 } }); // seq moves, Matrix still sees "online, hi"
    expect((await backend.presence(bob, bob))!.seq).toBeGreaterThan(seqBefore);
    const res = await poll;
    expect(res.body.presence.events).toEqual([]);
  });
});

describe("a long poll over a real socket", () => {
  it("a client that goes away mid-poll frees its parked wait at once", async () => {
    const harness = await startMemoryHarness();
    try {
      const alice = fresh("alice");
      const token = await harness.token(alice);
      const first = (await (await fetch(`${harness.baseUrl}/_matrix/client/v3/sync`, { headers: { Authorization: `Bearer ${token}` } })).json()) as { next_batch: string };
      const controller = new AbortController();
      const poll = fetch(`${harness.baseUrl}/_matrix/client/v3/sync?timeout=20000&since=${first.next_batch}`, {
        headers: { Authorization: `Bearer ${token}` },
        signal: controller.signal,
      });
      const deadline = Date.now() + 2_000;
      while (harness.backend.parked(alice) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(harness.backend.parked(alice)).toBe(1);
      controller.abort();
      await expect(poll).rejects.toThrow();
      const freed = Date.now() + 2_000;
      while (harness.backend.parked(alice) > 0 && Date.now() < freed) await new Promise((r) => setTimeout(r, 10));
      expect(harness.backend.parked(alice)).toBe(0);
    } finally {
      await harness.close();
    }
  });
});
