// A quiet SDK client against a real `wrangler dev` (issue #11): a periodic heartbeat that would repeat the
// last acknowledged one is left out, the keep-alive ping (answered by the runtime without waking the
// object) keeps the device online, and any change still goes out at once.
import { describe, expect, it } from "vitest";
import type { PresenceClient } from "../../client/src/index.js";
import { sleep, until, user } from "../shared/util";
import { sdkServer } from "./harness";

// TTL 2 s: the server announces heartbeats every 500 ms; the SDK pings every 500 ms (TTL / 4).
const TTL_MS = 2_000;
const dev = sdkServer({ PRESENCE_TTL_MS: String(TTL_MS), HEARTBEAT_INTERVAL_MS: "500", POSITION_COALESCE_MS: "0" });
const { open } = dev;

/** Heartbeat frames received by every user object so far (the meter: GET /v1/admin/stats). */
async function heartbeatsReceived(): Promise<number> {
  const res = await dev.server.admin("GET", "/stats", undefined);
  expect(res.status).toBe(200);
  const { byEvent } = (await res.json()) as { byEvent: Record<string, { events: number }> };
  return byEvent["ws:heartbeat"]?.events ?? 0;
}

/** Two friends online, both first heartbeats acknowledged (the periodic ones are what is counted). */
async function friendsOnline(): Promise<[PresenceClient, PresenceClient, string]> {
  const { a, b, bob } = await dev.friendsOnline();
  await until("both heartbeats acknowledged", () => a.self !== null && b.self !== null);
  return [a, b, bob];
}

describe("SDK: heartbeats that would change nothing are left out", () => {
  it("a quiet client sends pings only and stays online for three TTLs; a move goes out at once", async () => {
    const [a, b, bob] = await friendsOnline();
    const offline: string[] = [];
    a.on("offline", (p) => offline.push(p.userId));
    const before = await heartbeatsReceived();

    await sleep(3 * TTL_MS);
    // Twelve heartbeat intervals passed for each client: not one heartbeat frame reached the server.
    expect((await heartbeatsReceived()) - before).toBe(0);
    // And bob never went offline: the pings alone kept his device alive past the TTL, three times over.
    expect(offline).toEqual([]);
    expect(await a.getPresence(bob)).toMatchObject({ status: "online" });

    // A change is not held back: it is sent now, and the next periodic heartbeat is left out again.
    const moved = await heartbeatsReceived();
    await b.heartbeat({ position: { x: 7, y: 0, z: 7 }, realm: "lobby" });
    await until("alice sees bob move", () => a.friend(bob)?.position?.x === 7);
    await sleep(1_500);
    expect((await heartbeatsReceived()) - moved).toBe(1);
    a.close();
    b.close();
  });

  it("a status that clears itself is acknowledged once, then pings carry it to its deadline", async () => {
    const [a, b, bob] = await friendsOnline();
    const before = await heartbeatsReceived();
    await b.setStatus("busy", "call", { clearAfterMs: 1_500 });
    await until("alice sees bob busy", () => a.friend(bob)?.status === "busy");
    // The server reverts at the deadline; the client follows with one heartbeat saying so.
    await until("alice sees bob online again", () => a.friend(bob)?.status === "online", 5_000);
    await sleep(1_500);
    expect(a.friend(bob)).toMatchObject({ status: "online", statusText: null });
    const sent = (await heartbeatsReceived()) - before;
    // setStatus, and the client's heartbeat after the deadline (at most one more if the deadline's
    // answer crossed it): nothing periodic in between.
    expect(sent).toBeGreaterThanOrEqual(1);
    expect(sent).toBeLessThanOrEqual(3);
    a.close();
    b.close();
  });

  it("heartbeatWhenUnchanged: true sends every periodic heartbeat, as before", async () => {
    const carol = user("carol");
    const c = open(carol, { heartbeatWhenUnchanged: true });
    await c.ready();
    await until("carol's heartbeat acknowledged", () => c.self !== null);
    const before = await heartbeatsReceived();
    await sleep(2_000);
    // Four intervals of 500 ms: about four heartbeats (timers drift; at least two).
    expect((await heartbeatsReceived()) - before).toBeGreaterThanOrEqual(2);
    c.close();
  });
});
