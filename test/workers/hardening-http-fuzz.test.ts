/**
 * Hostile HTTP input against the worker inside workerd (issue #6): fuzzed
 * heartbeat bodies, /v1/presence/<path> segments, ?device=&kind= on
 * /v1/connect, and admin friendship bodies. Generators: test/fuzz/arbitraries.ts.
 *
 * The workers pool slows down superlinearly with the number of fetches made in
 * one file (300 GET /health: 3.4 s, the next 300: 11 s, the next 300: 29 s, then
 * a RangeError inside the pool), so this file is capped at 250 cases per family;
 * see docs/RELIABILITY.md.
 */
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fuzzRuns, httpBody } from "../fuzz/arbitraries";
import { api, befriend, Client, token, user, worker } from "./helpers";

const vars = env as unknown as Record<string, unknown>;
const SEED = Number(vars.FUZZ_SEED) || Date.now() % 2 ** 31;
const HTTP_CASES = Math.min(fuzzRuns(20, vars, "FUZZ_SESSIONS") * 10, 250);

const http = api;

describe(`fuzzed HTTP input (${HTTP_CASES} bodies, paths and queries, seed ${SEED})`, () => {
  it("POST /v1/heartbeat: every body gets 200 or a documented 4xx JSON error, never 500", async () => {
    const bodies = fc.sample(httpBody(), { numRuns: HTTP_CASES, seed: SEED });
    let caller = user("fz-http");
    for (const [i, { label, body, expect: expected }] of bodies.entries()) {
      if (i % 15 === 14) caller = user("fz-http"); // under the per-user bucket (burst 40)
      const where = `seed ${SEED}, body ${i} (${label}): ${JSON.stringify(body.slice(0, 160))}`;
      const res = await http(caller, "/v1/heartbeat?device=fz&kind=web", { method: "POST", body });
      const outcome = res.status === 200 ? "ok" : res.body.error?.code;
      if (expected === "any") expect(["ok", "bad_json", "invalid_request", "body_too_large"], where).toContain(outcome);
      else expect(outcome, `${where}: ${JSON.stringify(res.body)}`).toBe(expected);
      if (res.status === 200) expect(res.body.presence.userId, where).toBe(caller);
      else expect([400, 413], where).toContain(res.status);
    }
  });

  it("GET /v1/presence/<anything>: only yourself or a friend, never the online non-friend, never 500", async () => {
    const me = user("fz-me");
    const friend = user("fz-fr");
    const secret = user("fz-secret");
    await befriend(me, friend);
    const s = await Client.connect(secret);
    await s.heartbeat({ realm: "hidden-base" });
    const crafted = [
      secret,
      encodeURIComponent(secret),
      `..%2F${secret}`,
      `..%2f${friend}%2f..%2f${secret}`,
      `%2e%2e/${secret}`,
      `${friend}/../${secret}`,
      `${secret}%00`,
      `${secret}%20`,
      `${secret.toUpperCase()}`,
      `${friend}?x=${secret}`,
      `${friend}%3F${secret}`,
      `%252e%252e%252f${secret}`,
      "%",
      "%zz",
      "%C0%AE%C0%AE",
      "..",
      ".",
      "%2e%2e",
      "",
    ];
    const paths = [
      ...crafted,
      ...fc.sample(
        fc.oneof(
          fc.webSegment(),
          fc.string({ unit: "binary", maxLength: 40 }).map(encodeURIComponent),
          fc.tuple(fc.constantFrom(me, friend, secret), fc.webSegment()).map(([t, tail]) => t + tail),
        ),
        { numRuns: Math.ceil(HTTP_CASES * 0.3), seed: SEED },
      ),
    ];
    for (const segment of paths) {
      const res = await http(me, `/v1/presence/${segment}`);
      const where = `/v1/presence/${segment}: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`;
      expect([200, 404], where).toContain(res.status);
      if (res.status === 200) expect([me, friend], where).toContain(res.body.presence.userId);
      else expect(res.body.error.code, where).toBe("not_found");
      expect(JSON.stringify(res.body), where).not.toContain("hidden-base");
    }
  });

  it("?device= and ?kind= on /v1/connect: a socket exactly for valid values, else 400 invalid_request", async () => {
    const devices: [string, string][] = [
      ...["../x", "..%2Fx", "a/b", "%00", "a%0Ab", "x".repeat(65), "", "ok.device:1-_"].map((d): [string, string] => [d, "web"]),
      ...fc.sample(fc.tuple(fc.string({ unit: "binary", maxLength: 70 }), fc.constantFrom("web", "desktop", "mobile", "toaster", "", "WEB")), {
        numRuns: Math.ceil(HTTP_CASES * 0.2),
        seed: SEED,
      }),
    ];
    for (const [device, kind] of devices) {
      const owner = user("fz-dev");
      const query = `device=${device.includes("%") ? device : encodeURIComponent(device)}&kind=${encodeURIComponent(kind!)}`;
      const res = await worker().fetch(`http://presence/v1/connect?${query}`, { headers: { Upgrade: "websocket", Authorization: `Bearer ${await token(owner)}` } });
      const decoded = new URLSearchParams(query).get("device")!;
      const valid = /^[A-Za-z0-9_.:-]{1,64}$/.test(decoded) && ["web", "desktop", "mobile"].includes(kind!);
      const where = `?${query}: ${res.status}`;
      if (valid) {
        expect(res.status, where).toBe(101);
        res.webSocket!.accept();
        const welcome = await new Promise<any>((resolve) => res.webSocket!.addEventListener("message", (e) => resolve(JSON.parse(e.data as string)), { once: true }));
        expect(welcome, where).toMatchObject({ type: "welcome", userId: owner, deviceId: decoded });
        res.webSocket!.close(1000);
      } else {
        expect(res.status, where).toBe(400);
        expect(((await res.json()) as any).error.code, where).toBe("invalid_request");
      }
    }
  });

  it("admin friendship bodies: 200 for two distinct valid ids, else a 4xx JSON error, never 500", async () => {
    const id = fc.oneof(fc.constantFrom(user("fz-adm"), user("fz-adm")), fc.string({ maxLength: 12 }), fc.constantFrom("../x", "", "a b", "x".repeat(129)), fc.integer());
    const bodies = fc.sample(fc.oneof(fc.record({ a: id, b: id }), fc.tuple(id, id), fc.jsonValue({ maxDepth: 2 }), fc.string({ maxLength: 30 })), {
      numRuns: Math.ceil(HTTP_CASES * 0.2),
      seed: SEED,
    });
    for (const body of bodies) {
      const raw = typeof body === "string" ? body : JSON.stringify(body);
      const res = await worker().fetch("http://presence/v1/admin/friendships", { method: "PUT", headers: { Authorization: "Bearer workers-test-admin" }, body: raw });
      const json = (await res.json()) as any;
      const where = `${raw.slice(0, 120)} → ${res.status} ${JSON.stringify(json).slice(0, 160)}`;
      const pair = Array.isArray(body) ? { a: body[0], b: body[1] } : (body as any);
      const validId = (v: unknown) => typeof v === "string" && /^[A-Za-z0-9_.@:-]{1,128}$/.test(v);
      const valid = pair !== null && typeof pair === "object" && validId(pair.a) && validId(pair.b) && pair.a !== pair.b && (Array.isArray(body) ? body.length === 2 : true);
      if (valid) expect([200, 202], where).toContain(res.status);
      else expect([400, 409], where).toContain(res.status);
      expect(typeof (res.ok ? json.state : json.error.code), where).toBe("string");
    }
  });
});
