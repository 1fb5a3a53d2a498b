/**
 * Issue #11: rows read are billed too ($0.001/M). A publish used to read every
 * watcher's lease and join its friend row again (≈ 3 rows per watcher per
 * heartbeat), every wake read the whole SQLite catalogue (≈ 14 rows) to learn
 * whether the tables exist, and every delivery read the sender's friend row.
 * Now an object reads what it needs once per wake and keeps it in memory.
 */
import { evictDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { meterTotals } from "../../durable/meter";
import { befriend, Client, coalescingOver, stubOf, user } from "./helpers";

const event = (t: ReturnType<typeof meterTotals>, kind: string) => t.byEvent[kind] ?? { events: 0, rowsRead: 0, rowsWritten: 0, alarmsSet: 0, wallMs: 0 };

describe("rows read (issue #11)", () => {
  it("position heartbeats of an object in memory read no row however many friends watch; deliveries to watchers in memory read none either", async () => {
    const a = user("a");
    const friends = Array.from({ length: 12 }, (_, i) => user(`f${i}`));
    for (const f of friends) await befriend(a, f);
    const watchers: Client[] = [];
    for (const [i, f] of friends.entries()) {
      const c = await Client.connect(f);
      await c.request({ type: "SubscribeFriendshipPresenceUpdates", positions: i < 3 ? "all" : "realm" });
      await c.heartbeat({ realm: "elsewhere" }); // the realm-only ones are told no move of a
      watchers.push(c);
    }
    const ca = await Client.connect(a);
    await ca.heartbeat({ realm: "r0", position: { x: 0, y: 0, z: 0 } });
    for (const c of watchers) await c.presenceOf(a, (p) => p.status === "online");
    // One more round so every object involved has read what it keeps.
    await ca.heartbeat({ realm: "r0", position: { x: 1, y: 0, z: 0 }, status: "busy" });
    for (const c of watchers) await c.presenceOf(a, (p) => p.status === "busy");

    const before = meterTotals();
    for (let x = 2; x < 5; x++) {
      await coalescingOver(a); // so the heartbeat itself publishes (not an alarm after POSITION_COALESCE_MS)
      await ca.heartbeat({ realm: "r0", position: { x, y: 0, z: 0 } });
      for (const c of watchers.slice(0, 3)) await c.presenceOf(a, (p) => p.position?.x === x);
    }
    const after = meterTotals();
    const beats = event(after, "ws:heartbeat").events - event(before, "ws:heartbeat").events;
    const deliveries = event(after, "rpc:receivePresence").events - event(before, "rpc:receivePresence").events;
    expect(beats).toBe(3);
    expect(event(after, "alarm").events - event(before, "alarm").events).toBe(0); // the heartbeats published, not an alarm
    expect(deliveries).toBeGreaterThanOrEqual(9); // the three "all" watchers each time, and realm-only ones a cannot place
    expect(event(after, "ws:heartbeat").rowsRead - event(before, "ws:heartbeat").rowsRead).toBe(0);
    expect(event(after, "rpc:receivePresence").rowsRead - event(before, "rpc:receivePresence").rowsRead).toBe(0);
    for (const c of [ca, ...watchers]) await c.close();
  });

  it("a woken object reads one row to know its schema, not the whole catalogue", async () => {
    const a = user("a");
    const b = user("b");
    await befriend(a, b);
    await evictDurableObject(stubOf(b));
    const before = meterTotals();
    const cb = await Client.connect(b);
    await cb.heartbeat({ realm: "r" });
    const after = meterTotals();
    const constructed = after.instances - before.instances;
    expect(constructed).toBeGreaterThanOrEqual(1);
    expect(event(after, "construct").rowsRead - event(before, "construct").rowsRead).toBeLessThanOrEqual(constructed);
    await cb.close();
  });
});
