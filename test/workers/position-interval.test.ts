/**
 * POSITION_INTERVAL_MS (issue #11, off by default): a deployer's lever for
 * the bill. With it, a user's position-only moves are pushed at most once per
 * interval; a move held back goes with the user's first event after the
 * interval (the client's next frame, the TTL alarm) and never sets an alarm or
 * writes a row of its own. Status, realm and text changes are never held. The
 * interval counts from the last push across a wake (the time rides in the
 * sockets' attachments, like the published presence).
 */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { meterTotals } from "../../durable/meter";
import type { UserStore } from "../../durable/store";
import type { PresenceConfig } from "../../src/presence/config";
import { stubOf, watchedPair } from "./helpers";

const INTERVAL = 60_000;

type Inside = { config: PresenceConfig; store: UserStore; presence: { published(): unknown } };

/** Turns the lever on in the user's live object (the workers' bindings keep the default, 0). */
async function withInterval(userId: string, ms = INTERVAL) {
  await runInDurableObject(stubOf(userId), (instance) => {
    (instance as unknown as Inside).config.positionIntervalMs = ms;
  });
}

async function lastPushedAt(userId: string): Promise<number | null> {
  return runInDurableObject(stubOf(userId), (instance) => {
    const inside = instance as unknown as Inside;
    inside.presence.published(); // reads back what a wake left in the attachments
    return inside.store.get("published_at");
  });
}

/** Moves the last push `ms` into the past, in memory, as if the interval had run. */
async function intervalOver(userId: string) {
  await runInDurableObject(stubOf(userId), (instance) => {
    const { store } = instance as unknown as Inside;
    store.remember("published_at", (store.get("published_at") ?? Date.now()) - INTERVAL - 1);
  });
}

async function setup() {
  const pair = await watchedPair({ heartbeat: { realm: "r", position: { x: 0, y: 0, z: 0 } } });
  await withInterval(pair.a);
  return pair;
}

describe("POSITION_INTERVAL_MS (issue #11)", () => {
  it("a move within the interval is held without an alarm or a row; the first frame after it carries the latest position", async () => {
    const { a, ca, watcher } = await setup();
    watcher.frames.length = 0;
    const before = meterTotals();
    await ca.heartbeat({ realm: "r", position: { x: 1, y: 0, z: 0 } });
    await ca.heartbeat({ realm: "r", position: { x: 2, y: 0, z: 0 } });
    await watcher.expectNone((f) => f.type === "presence", 400);
    // The heartbeat events' own counts (a realm shard's lease alarm for the join may land meanwhile: not this user's).
    const beats = (t: typeof before) => t.byEvent["ws:heartbeat"] ?? { events: 0, alarmsSet: 0, rowsWritten: 0 };
    const after = meterTotals();
    expect(beats(after).events - beats(before).events).toBe(2);
    expect(beats(after).alarmsSet - beats(before).alarmsSet).toBe(0);
    expect(beats(after).rowsWritten - beats(before).rowsWritten).toBe(0);
    await intervalOver(a);
    await ca.heartbeat({ realm: "r", position: { x: 2, y: 0, z: 0 } }); // the next heartbeat, same place
    expect((await watcher.presenceOf(a, (p) => p.position?.x === 2)).position).toEqual({ x: 2, y: 0, z: 0 });
    expect(watcher.frames.filter((f) => f.type === "presence" && f.presence.position?.x === 1)).toEqual([]);
  });

  it("status and realm changes are never held", async () => {
    const { a, ca, watcher } = await setup();
    await ca.heartbeat({ realm: "r", position: { x: 1, y: 0, z: 0 }, status: "busy" });
    expect((await watcher.presenceOf(a, (p) => p.status === "busy", 1_000)).position).toEqual({ x: 1, y: 0, z: 0 });
    await ca.heartbeat({ realm: "r2", position: { x: 2, y: 0, z: 0 }, status: "busy" });
    expect((await watcher.presenceOf(a, (p) => p.realm === "r2", 1_000)).position).toEqual({ x: 2, y: 0, z: 0 });
  });

  it("the interval counts from the last push across a wake (the time rides in the attachments)", async () => {
    const { a, ca, watcher } = await setup();
    const pushedAt = await lastPushedAt(a);
    expect(pushedAt).not.toBeNull();
    await evictDurableObject(stubOf(a), { webSockets: "hibernate" });
    expect(await lastPushedAt(a)).toBe(pushedAt);
    await withInterval(a);
    watcher.frames.length = 0;
    await ca.heartbeat({ realm: "r", position: { x: 5, y: 0, z: 0 } });
    await watcher.expectNone((f) => f.type === "presence", 400);
  });

  it("off (the default, 0): every move is pushed", async () => {
    const { a, ca, watcher } = await setup();
    await withInterval(a, 0);
    await intervalOver(a); // past POSITION_COALESCE_MS (3 s in these tests) too
    await ca.heartbeat({ realm: "r", position: { x: 1, y: 0, z: 0 } });
    await watcher.presenceOf(a, (p) => p.position?.x === 1, 1_000);
  });
});
