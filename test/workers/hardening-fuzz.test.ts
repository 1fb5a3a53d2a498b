/**
 * Hostile input against the live worker inside workerd (issue #6): fuzzed
 * frames over real sockets, fuzzed HTTP bodies, paths and query strings.
 * Generators: test/fuzz/arbitraries.ts. Budget: the FUZZ_SESSIONS binding
 * (set by vitest.fuzz.config.ts for `npm run test:fuzz`), small by default so CI stays fast.
 *
 * Each socket session is a fresh user with one friend watching; frames are sent
 * one at a time (under the 20-frame burst), and after every session the user's
 * presence, the friend and the friendship are checked.
 */
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseClientFrame, type ClientMessage } from "../../src/presence/schema";
import { FRAME_ERROR_CODES, fuzzRuns, httpBody, labelledFrame, REPLIES } from "../fuzz/arbitraries";
import { befriend, Client, token, user, worker } from "./helpers";

const vars = env as unknown as Record<string, unknown>;
const SESSIONS = fuzzRuns(20, vars, "FUZZ_SESSIONS");
const SEED = Number(vars.FUZZ_SEED) || Date.now() % 2 ** 31;
const FRAMES_PER_SESSION = 14; // + 1 subscribe: under the socket burst (20)
const MAX_ERRORS = 5; // MAX_ERRORS_PER_WINDOW in vitest.workers.config.ts
const REPLY_TYPES = new Set(["error", ...Object.values(REPLIES).map((r) => r.type)]);

async function http(userId: string, path: string, init: RequestInit = {}) {
  const res = await worker().fetch(`http://presence${path}`, {
    ...init,
    headers: { Authorization: `Bearer ${await token(userId)}`, "Content-Type": "application/json", ...(init.headers ?? {}) },
  });
  const text = await res.text();
  let body: any;
  expect(() => (body = JSON.parse(text)), `${path}: not JSON: ${text.slice(0, 200)}`).not.toThrow();
  return { status: res.status, body };
}

const friendsOf = async (userId: string) => ((await http(userId, "/v1/friends")).body.friends as unknown[]).map((f) => (typeof f === "string" ? f : (f as { userId: string }).userId)).sort();

type Heartbeat = Extract<ClientMessage, { type: "PositionHeartbeat" }>;

describe(`fuzzed frames over live sockets (${SESSIONS} sessions × ${FRAMES_PER_SESSION} frames, seed ${SEED})`, () => {
  it("every frame gets one documented reply; only abuse closes (1008); presence, friend and friendship stay consistent", { timeout: 30_000 + SESSIONS * 3_000 }, async () => {
    const stranger = user("fz-stranger");
    const outsider = user("fz-outsider"); // online, visible, never a friend: must never leak
    expect((await http(stranger, "/v1/friends")).status).toBe(200);
    const outsiderClient = await Client.connect(outsider);
    await outsiderClient.heartbeat({ realm: "secret-realm" });

    let watcher: { id: string; client: Client; friends: number } | null = null;
    const stats = { frames: 0, ok: 0, errors: {} as Record<string, number>, closed1008: 0 };

    for (let session = 0; session < SESSIONS; session++) {
      // MAX_FRIENDS is 20 in the workers config: a new watching friend every 10 sessions.
      if (!watcher || watcher.friends === 10) {
        if (watcher) {
          expect(await friendsOf(watcher.id)).toHaveLength(10);
          await watcher.client.close();
        }
        const id = user("fz-friend");
        const client = await Client.connect(id);
        await client.request({ type: "SubscribeFriendshipPresenceUpdates" });
        watcher = { id, client, friends: 0 };
      }
      const friend = watcher;
      const u = user("fz");
      expect((await befriend(u, friend.id)).status).toBe(200);
      friend.friends++;
      const client = await Client.connect(u);
      await client.request({ type: "SubscribeFriendshipPresenceUpdates" });

      const frames = fc.sample(
        labelledFrame({
          lookups: fc.constantFrom(u, friend.id, outsider, stranger, "nobody-at-all"),
          // Never the watching friend: the friendship under test must not be touched by the fuzzer.
          others: fc.constantFrom(stranger, outsider, u, "nobody-at-all"),
          // Two sessions in three are mostly well-formed (state moves); every third is mostly hostile (abuse rule).
          validWeight: session % 3 === 2 ? 4 : 40,
        }),
        { numRuns: FRAMES_PER_SESSION, seed: SEED + session },
      );

      let abuse = 0;
      let lastHeartbeat: Heartbeat | null = null;
      let shareLocation: "all" | "none" = "all";
      let shownToFriend = false;
      for (const [i, item] of frames.entries()) {
        const where = `seed ${SEED + session}, frame ${i} (${item.label}): ${JSON.stringify(typeof item.frame === "string" ? item.frame.slice(0, 160) : "<binary>")}`;
        stats.frames++;
        if (typeof item.frame === "string") client.send(item.frame);
        else client.ws.send(item.frame);
        if (item.frame === "ping") {
          expect(await client.next((f) => f === "pong"), where).toBe("pong");
          continue;
        }
        // On the wire a text frame is UTF-8: lone surrogates arrive as U+FFFD.
        const expected = typeof item.frame === "string" ? parseClientFrame(item.frame.toWellFormed(), 4_096) : ({ ok: false, code: "binary_not_supported" } as const);
        const reply = await client.next((f) => typeof f === "object" && REPLY_TYPES.has(f.type), 5_000).catch((e) => {
          throw new Error(`${where}: ${e.message}`);
        });
        if (!expected.ok) {
          expect(reply, where).toMatchObject({ type: "error", code: expected.code });
          if (expected.id !== undefined) expect(reply.id, where).toEqual(expected.id);
          abuse++;
        } else {
          const message = expected.message;
          const allowed = REPLIES[message.type as keyof typeof REPLIES];
          expect(allowed, where).toBeDefined();
          if (reply.type === "error") expect(allowed.errors, `${where}: ${JSON.stringify(reply)}`).toContain(reply.code);
          else expect(reply.type, where).toBe(allowed.type);
          if (message.id !== undefined) expect(reply.id, where).toEqual(message.id);
          if (message.type === "PositionHeartbeat") {
            lastHeartbeat = message;
            const self = reply.presence;
            if (message.status === "invisible") expect(self, where).toMatchObject({ status: "offline", invisible: true, realm: null, position: null });
            else {
              expect(self, where).toMatchObject({ userId: u, status: message.status, realm: message.realm, position: message.position, statusText: message.statusText ?? null });
              shownToFriend = true;
            }
          }
          if (message.type === "SetPrivacy") shareLocation = message.shareLocation;
          if (message.type === "GetPresence" && message.userId === outsider) expect(reply, where).toMatchObject({ type: "error", code: "not_found" });
          if (message.type === "GetPresence" && (message.userId === u || message.userId === friend.id)) expect(reply.type, where).toBe("presence_result");
        }
        if (reply.type === "error") stats.errors[reply.code] = (stats.errors[reply.code] ?? 0) + 1;
        else stats.ok++;
        expect(FRAME_ERROR_CODES).toContain(reply.type === "error" ? reply.code : "bad_json");
        expect(reply.code, `${where}: an exception escaped`).not.toBe("internal");

        if (abuse > MAX_ERRORS) {
          // The documented abuse rule, and the only way the server may end the session.
          await client.next(() => false, 2_000).catch(() => undefined);
          expect(client.closed?.code, where).toBe(1008);
          stats.closed1008++;
          break;
        }
        expect(client.closed, `${where}: closed without abuse`).toBeNull();
      }

      // The user's own presence is still readable and matches the last accepted heartbeat.
      const hb = lastHeartbeat as Heartbeat | null;
      if (!client.closed) {
        const self = await http(u, `/v1/presence/${u}`);
        expect(self.status).toBe(200);
        if (!hb) expect(self.body.presence.status).toBe("offline");
        else if (hb.status === "invisible") expect(self.body.presence).toMatchObject({ status: "offline", invisible: true });
        else expect(self.body.presence).toMatchObject({ status: hb.status, realm: hb.realm, statusText: hb.statusText ?? null });

        // What the friend gets on request: status, realm (unless location is not shared), never more.
        const seen = await http(friend.id, `/v1/presence/${u}`);
        expect(seen.status).toBe(200);
        if (!hb || hb.status === "invisible") expect(seen.body.presence).toMatchObject({ status: "offline", realm: null, position: null, statusText: null, devices: [] });
        else expect(seen.body.presence).toMatchObject({ status: hb.status, realm: shareLocation === "none" ? null : hb.realm, statusText: hb.statusText ?? null });
        expect(seen.body.presence).not.toHaveProperty("invisible");
        await client.close();
      }
      // Closed either way: the friend sees the user go offline if it ever saw them.
      if (shownToFriend) await friend.client.presenceOf(u, (p) => p.status === "offline");
      const pushes = friend.client.frames.filter((f) => f.type === "presence" && f.presence.userId === u).map((f) => f.presence);
      for (let k = 1; k < pushes.length; k++) expect(pushes[k].seq).toBeGreaterThan(pushes[k - 1].seq);
      for (const p of pushes) if (p.status === "offline") expect(p).toMatchObject({ realm: null, position: null, statusText: null, devices: [] });
      friend.client.frames.splice(0);

      // The friendship is untouched, on both sides.
      expect(await friendsOf(u)).toEqual([friend.id]);
      expect(friend.client.closed).toBeNull();
    }

    // Friends were never sent an error, and the outsider never leaked to anyone.
    expect(watcher!.client.frames.filter((f) => f.type === "error")).toEqual([]);
    expect(await friendsOf(watcher!.id)).toHaveLength(watcher!.friends);
    expect(await friendsOf(outsider)).toEqual([]);
    expect(stats.frames).toBeGreaterThanOrEqual(SESSIONS * 5);
    console.log(`live fuzz: ${JSON.stringify(stats)}`);
  });
});

describe(`fuzzed HTTP input (${SESSIONS * 10} bodies, paths and queries, seed ${SEED})`, () => {
  it("POST /v1/heartbeat: every body gets 200 or a documented 4xx JSON error, never 500", async () => {
    const bodies = fc.sample(httpBody(), { numRuns: SESSIONS * 10, seed: SEED });
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
    const crafted = [secret, encodeURIComponent(secret), `..%2F${secret}`, `..%2f${friend}%2f..%2f${secret}`, `%2e%2e/${secret}`, `${friend}/../${secret}`, `${secret}%00`, `${secret}%20`, `${secret.toUpperCase()}`, `${friend}?x=${secret}`, `${friend}%3F${secret}`, `%252e%252e%252f${secret}`, "%", "%zz", "%C0%AE%C0%AE", "..", ".", "%2e%2e", ""];
    const paths = [...crafted, ...fc.sample(fc.oneof(fc.webSegment(), fc.string({ unit: "binary", maxLength: 40 }).map(encodeURIComponent), fc.tuple(fc.constantFrom(me, friend, secret), fc.webSegment()).map(([t, tail]) => t + tail)), { numRuns: SESSIONS * 3, seed: SEED })];
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
    const devices = [...["../x", "..%2Fx", "a/b", "%00", "a%0Ab", "x".repeat(65), "", "ok.device:1-_"].map((d) => [d, "web"]), ...fc.sample(fc.tuple(fc.string({ unit: "binary", maxLength: 70 }), fc.constantFrom("web", "desktop", "mobile", "toaster", "", "WEB")), { numRuns: SESSIONS * 2, seed: SEED })];
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
    const bodies = fc.sample(fc.oneof(fc.record({ a: id, b: id }), fc.tuple(id, id), fc.jsonValue({ maxDepth: 2 }), fc.string({ maxLength: 30 })), { numRuns: SESSIONS * 2, seed: SEED });
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
