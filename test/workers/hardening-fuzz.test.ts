/**
 * Hostile input against the live worker inside workerd (issue #6): fuzzed
 * frames over real sockets (HTTP: hardening-http-fuzz.test.ts).
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
import { FRAME_ERROR_CODES, fuzzRuns, labelledFrame, REPLIES } from "../fuzz/arbitraries";
import { api, befriend, Client, user } from "./helpers";

const vars = env as unknown as Record<string, unknown>;
const SESSIONS = fuzzRuns(20, vars, "FUZZ_SESSIONS");
const SEED = Number(vars.FUZZ_SEED) || Date.now() % 2 ** 31;
const FRAMES_PER_SESSION = 14; // + 1 subscribe: under the socket burst (20)
const MAX_ERRORS = 5; // MAX_ERRORS_PER_WINDOW in vitest.workers.config.ts
const REPLY_TYPES = new Set(["error", ...Object.values(REPLIES).map((r) => r.type)]);

const http = api;

const friendsOf = async (userId: string) =>
  ((await http(userId, "/v1/friends")).body.friends as unknown[]).map((f) => (typeof f === "string" ? f : (f as { userId: string }).userId)).sort();

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
        const expected = typeof item.frame === "string" ? parseClientFrame(onTheWire(item.frame), 4_096) : ({ ok: false, code: "binary_not_supported" } as const);
        const reply = await client
          .next((f) => typeof f === "object" && REPLY_TYPES.has(f.type), 5_000)
          .catch((e) => {
            throw new Error(`${where}: ${e.message}`);
          });
        if (!expected.ok) {
          expect(reply, where).toMatchObject({ type: "error", code: expected.code });
          if ("id" in expected && expected.id !== undefined) expect(reply.id, where).toEqual(expected.id);
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
          if (message.type === "SetPrivacy" && message.shareLocation) shareLocation = message.shareLocation;
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

/**
 * What the object receives for a text frame sent by workerd's WebSocket: since
 * workerd 2026-11 a lone surrogate is sent as its three generalized-UTF-8 bytes
 * (ED xx xx), which the receiving UTF-8 decoder turns into three U+FFFD (earlier
 * runtimes replaced it with one U+FFFD before sending).
 */
function onTheWire(frame: string): string {
  return frame.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd\ufffd\ufffd");
}
