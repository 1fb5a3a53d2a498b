/**
 * Server-side events (issue #16, docs/EVENTS.md), inside workerd: the real
 * worker with an EVENTS queue producer, and the example consumer worker
 * (examples/events-consumer) reading the same queue into D1. Events are read
 * back from the consumer, so what is asserted is what an operator's backend
 * receives: the documented schema, the privacy rules, and at-least-once
 * delivery with stable ids when a send fails.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { ServerEvents } from "../../durable/events";
import { meterTotals } from "../../durable/meter";
import type { FriendshipEvent, PresenceEvent, ServerEvent } from "../../src/presence/events";
import { until } from "../shared/util";
import { api, befriend, Client, stubOf, user, watchedPair } from "../workers/helpers";

type Received = ServerEvent & { deliveries: number };

const consumer = (env as unknown as { EVENTS_CONSUMER: Fetcher }).EVENTS_CONSUMER;

/** What the consumer holds for `userId`, oldest first. */
async function received(userId: string): Promise<Received[]> {
  const res = await consumer.fetch(`http://consumer/events?userId=${encodeURIComponent(userId)}&limit=1000`);
  return ((await res.json()) as { events: Received[] }).events;
}

/** Waits until the consumer holds events of `userId` that `done` accepts. */
async function arrived(userId: string, done: (events: Received[]) => boolean, what = `events of ${userId}`): Promise<Received[]> {
  const events = await until(what, async () => {
    const events = await received(userId);
    return done(events) ? events : null;
  });
  return events!;
}

const presences = (events: Received[]) => events.filter((e): e is PresenceEvent & { deliveries: number } => e.kind === "presence");
const friendships = (events: Received[]) => events.filter((e): e is FriendshipEvent & { deliveries: number } => e.kind === "friendship");

async function outboxEvents(userId: string): Promise<number> {
  return runInDurableObject(stubOf(userId), (_, state) => Number(state.storage.sql.exec(`SELECT COUNT(*) AS n FROM outbox WHERE kind = 'event'`).one().n));
}

/** Makes every outbox row due (as if the backoff had elapsed) and runs the alarm. */
async function retryNow(userId: string) {
  await runInDurableObject(stubOf(userId), (_, state) => state.storage.sql.exec(`UPDATE outbox SET next_attempt_at = 0`));
  expect(await runDurableObjectAlarm(stubOf(userId))).toBe(true);
}

type Send = (batch: ServerEvent[]) => Promise<void>;
const proto = ServerEvents.prototype as unknown as { send: Send };
const originalSend = proto.send;
/** Fault injection on the queue send of every object (this file's tests use distinct users). */
function failSends(fail: (batch: ServerEvent[], send: () => Promise<void>) => Promise<void>) {
  proto.send = function (this: ServerEvents, batch: ServerEvent[]) {
    return fail(batch, () => originalSend.call(this, batch));
  };
}
afterEach(() => {
  proto.send = originalSend;
});

describe("presence events", () => {
  it("a user's status changes arrive as documented: old → new status, seq, time, what friends see, no position", async () => {
    const a = user("a");
    const start = Date.now();
    const ca = await Client.connect(a, { device: "pc" });
    await ca.heartbeat({ realm: "lobby", position: { x: 1, y: 2, z: 3 }, statusText: "hi" });
    await ca.heartbeat({ realm: "lobby", position: { x: 4, y: 5, z: 6 }, statusText: "hi" }); // position only: no event
    await ca.heartbeat({ realm: "lobby", status: "busy", statusText: "hi" });
    await ca.close();
    const events = presences(await arrived(a, (e) => presences(e).some((p) => p.status.to === "offline")));
    expect(events.map((e) => [e.status.from, e.status.to])).toEqual([
      ["offline", "online"],
      ["online", "busy"],
      ["busy", "offline"],
    ]);
    const [online, busy, offline] = events;
    expect(online).toEqual({
      v: 1,
      id: `${a}/presence/${online!.seq}`,
      kind: "presence",
      userId: a,
      seq: online!.seq,
      at: online!.at,
      status: { from: "offline", to: "online" },
      statusText: "hi",
      realm: "lobby",
      devices: [{ deviceId: "pc", kind: "desktop", status: "online" }],
      lastActiveAt: online!.lastActiveAt,
      deliveries: 1,
    });
    expect(online).not.toHaveProperty("position");
    expect(online!.at).toBeGreaterThanOrEqual(start);
    expect(busy!.seq).toBeGreaterThan(online!.seq);
    expect(offline!.seq).toBeGreaterThan(busy!.seq);
    expect(offline).toMatchObject({ realm: null, statusText: null, devices: [] });
    // The seq of each event is the one friends and the user saw.
    expect((await api(a, `/v1/presence/${a}`)).body.presence.seq).toBe(offline!.seq);
    // The example consumer keeps the latest status per user.
    expect(await (await consumer.fetch(`http://consumer/status/${a}`)).json()).toMatchObject({ userId: a, status: "offline", seq: offline!.seq });
  });

  it("privacy: invisible is offline, shareLocation none drops the realm, hiding from one friend emits nothing", async () => {
    const a = user("a");
    const b = user("b");
    await befriend(a, b);
    const ca = await Client.connect(a, { device: "pc" });
    await ca.heartbeat({ realm: "secret-base" });
    await ca.request({ type: "SetPrivacy", shareLocation: "none" });
    await ca.request({ type: "HidePresence", userId: b, hidden: true });
    await ca.heartbeat({ realm: "secret-base", status: "invisible" });
    const events = presences(await arrived(a, (e) => presences(e).length >= 3));
    expect(events.map((e) => [e.status.to, e.realm])).toEqual([
      ["online", "secret-base"],
      ["online", null],
      ["offline", null],
    ]);
    expect(JSON.stringify(events)).not.toContain('secret-base","position');
    expect(events.at(-1)!.devices).toEqual([]);
    // Nothing else comes for a (the HidePresence toggle, the invisible heartbeat's own wake).
    await ca.heartbeat({ realm: "secret-base", status: "invisible" });
    await new Promise((r) => setTimeout(r, 300));
    expect(presences(await received(a))).toHaveLength(3);
  });
});

describe("friendship events", () => {
  it("each side emits its own: the other user, from → to, cause, the client transitions", async () => {
    const a = user("a");
    const b = user("b");
    const ca = await Client.connect(a);
    const cb = await Client.connect(b);
    expect((await ca.request({ type: "SendFriendRequest", userId: b, message: "hey" })).type).toBe("friendship");
    expect((await cb.request({ type: "AcceptFriendRequest", userId: a })).type).toBe("friendship");
    expect((await ca.request({ type: "RemoveFriend", userId: b })).type).toBe("friendship");
    const ofA = friendships(await arrived(a, (e) => friendships(e).length >= 3));
    const ofB = friendships(await arrived(b, (e) => friendships(e).length >= 3));
    expect(ofA.map((e) => [e.otherUserId, e.state.from, e.state.to, e.cause])).toEqual([
      [b, "none", "outgoing", "local"],
      [b, "outgoing", "friends", "remote"],
      [b, "friends", "none", "local"],
    ]);
    expect(ofB.map((e) => [e.otherUserId, e.state.from, e.state.to, e.cause])).toEqual([
      [a, "none", "incoming", "remote"],
      [a, "incoming", "friends", "local"],
      [a, "friends", "none", "remote"],
    ]);
    expect(ofA.map((e) => e.transitions)).toEqual([[{ type: "friend_request", direction: "outgoing" }], [{ type: "friend_added" }], [{ type: "friend_removed" }]]);
    for (const events of [ofA, ofB]) {
      expect(events.map((e) => e.seq)).toEqual([...events.map((e) => e.seq)].sort((x, y) => x - y));
      expect(new Set(events.map((e) => e.seq)).size).toBe(3);
      for (const e of events) expect(e).toMatchObject({ v: 1, kind: "friendship", deliveries: 1 });
      for (const e of events) expect(e.id).toMatch(new RegExp(`^${e.userId}/friendship/${e.otherUserId}/\\d+\\.\\d+/\\d+$`));
    }
  });
});

describe("at least once", () => {
  it("a failed send is kept in the outbox and arrives after the alarm's retry, once, with the same id", async () => {
    const a = user("a");
    const failed: ServerEvent[] = [];
    failSends(async (batch) => {
      failed.push(...batch);
      throw new Error("queue unavailable");
    });
    const ca = await Client.connect(a);
    await ca.heartbeat({ realm: "lobby" });
    await ca.heartbeat({ realm: "lobby", status: "away" });
    expect(failed.map((e) => e.kind === "presence" && e.status.to)).toEqual(["online", "away"]);
    expect(await outboxEvents(a)).toBe(2);
    // Still failing: the alarm tries again, the rows stay.
    await retryNow(a);
    expect(await outboxEvents(a)).toBe(2);
    proto.send = originalSend;
    await retryNow(a);
    expect(await outboxEvents(a)).toBe(0);
    const events = presences(await arrived(a, (e) => presences(e).length >= 2));
    expect(events.map((e) => e.id)).toEqual(failed.slice(0, 2).map((e) => e.id));
    expect(events.map((e) => e.deliveries)).toEqual([1, 1]);
    expect(events.map((e) => e.status.to)).toEqual(["online", "away"]);
  });

  it("a send that timed out but did arrive is sent again: the consumer dedupes it by id", async () => {
    const a = user("a");
    let first = true;
    failSends(async (_batch, send) => {
      await send();
      if (!first) return;
      first = false;
      throw new Error("timed out after the queue took it");
    });
    const ca = await Client.connect(a);
    await ca.heartbeat({ realm: "lobby" });
    expect(await outboxEvents(a)).toBe(1);
    await retryNow(a);
    expect(await outboxEvents(a)).toBe(0);
    const [online] = presences(await arrived(a, (e) => presences(e)[0]?.deliveries === 2, "the second delivery"));
    expect(online).toMatchObject({ status: { from: "offline", to: "online" }, deliveries: 2 });
    expect(presences(await received(a))).toHaveLength(1);
  });

  it("a failed friendship event is retried by the same alarm as the edge messages", async () => {
    const a = user("a");
    const b = user("b");
    await Client.connect(b);
    const ca = await Client.connect(a);
    failSends(async () => {
      throw new Error("queue unavailable");
    });
    await ca.request({ type: "SendFriendRequest", userId: b });
    expect(await outboxEvents(a)).toBe(1);
    expect(await outboxEvents(b)).toBe(1);
    proto.send = originalSend;
    await retryNow(a);
    await retryNow(b);
    expect(friendships(await arrived(a, (e) => friendships(e).length === 1))[0]).toMatchObject({ otherUserId: b, state: { to: "outgoing" } });
    expect(friendships(await arrived(b, (e) => friendships(e).length === 1))[0]).toMatchObject({ otherUserId: a, state: { to: "incoming" } });
  });
});

describe("cost", () => {
  it("a status change with events on writes the same rows as without (no row per event) and sends one message", async () => {
    const { a, ca, watcher } = await watchedPair();
    const sent = () => runInDurableObject(stubOf(a), (instance) => (instance as unknown as { presence: { events: ServerEvents } }).presence.events.sent);
    const sentBefore = await sent();
    const before = meterTotals();
    await ca.heartbeat({ realm: "lobby", status: "busy" });
    await watcher.presenceOf(a, (p) => p.status === "busy");
    const after = meterTotals();
    // No row (as without events: a socket device's status rides in its attachment), no alarm, one billed request (the push to b).
    expect({ rows: after.rowsWritten - before.rowsWritten, alarms: after.alarmsSet - before.alarmsSet, requests: after.requests - before.requests }).toEqual({
      rows: 0,
      alarms: 0,
      requests: 1,
    });
    expect((await sent()) - sentBefore).toBe(1);
    // A heartbeat that changes nothing sends nothing.
    await ca.heartbeat({ realm: "lobby", status: "busy" });
    expect((await sent()) - sentBefore).toBe(1);
  });
});
