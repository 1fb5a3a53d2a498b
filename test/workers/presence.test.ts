import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import type { UserStore } from "../../durable/store";
import { ageDevices, befriend, Client, holdCalls, restorePatches, setMeta, stubOf, token, user, worker } from "./helpers";

async function pair() {
  const a = user("a");
  const b = user("b");
  expect((await befriend(a, b)).status).toBe(200);
  const watcher = await Client.connect(b);
  const snapshot = await watcher.request({ type: "SubscribeFriendshipPresenceUpdates" });
  expect(snapshot).toMatchObject({ type: "subscribed", friends: [] });
  return { a, b, watcher };
}

describe("presence between two friends", () => {
  it("first heartbeat brings the user online for the friend, with realm, position and devices", async () => {
    const { a, watcher } = await pair();
    const ca = await Client.connect(a, { device: "laptop", kind: "desktop" });
    const ack = await ca.heartbeat({ realm: "castle", position: { x: 1, y: 2, z: 3 }, statusText: "raiding" });
    expect(ack).toMatchObject({ type: "heartbeat_ack", presence: { status: "online", realm: "castle" }, nextHeartbeatMs: 30_000 });
    const seen = await watcher.presenceOf(a);
    expect(seen).toMatchObject({
      userId: a,
      status: "online",
      realm: "castle",
      position: { x: 1, y: 2, z: 3 },
      statusText: "raiding",
      devices: [{ deviceId: "laptop", kind: "desktop", status: "online" }],
    });
    expect(seen.seq).toBeGreaterThan(0);
  });

  it("a connected socket without a heartbeat is not shown as online", async () => {
    const { a, watcher } = await pair();
    await Client.connect(a);
    await watcher.expectNone((f) => f.type === "presence");
    const online = await watcher.request({ type: "GetOnlineFriends" });
    expect(online.friends).toEqual([]);
  });

  it("status changes are pushed at once, with a growing seq", async () => {
    const { a, watcher } = await pair();
    const ca = await Client.connect(a);
    await ca.heartbeat();
    const first = await watcher.presenceOf(a);
    await ca.heartbeat({ status: "away" });
    const second = await watcher.presenceOf(a, (p) => p.status === "away");
    await ca.heartbeat({ status: "busy", statusText: "in a meeting" });
    const third = await watcher.presenceOf(a, (p) => p.status === "busy");
    expect(third.statusText).toBe("in a meeting");
    expect(first.seq).toBeLessThan(second.seq);
    expect(second.seq).toBeLessThan(third.seq);
  });

  it("a heartbeat that changes nothing visible is not pushed", async () => {
    const { a, watcher } = await pair();
    const ca = await Client.connect(a);
    await ca.heartbeat();
    await watcher.presenceOf(a);
    await ca.heartbeat();
    await ca.heartbeat();
    await watcher.expectNone((f) => f.type === "presence");
  });

  it("position-only changes are coalesced: the latest position is published when the alarm fires", async () => {
    const { a, watcher } = await pair();
    const ca = await Client.connect(a);
    await ca.heartbeat({ position: { x: 0, y: 0, z: 0 } });
    await watcher.presenceOf(a);
    await ca.heartbeat({ position: { x: 1, y: 0, z: 0 } });
    await ca.heartbeat({ position: { x: 2, y: 0, z: 0 } });
    await ca.heartbeat({ position: { x: 3, y: 0, z: 0 } });
    // Within the coalescing interval (3 s here) nothing is pushed yet, and the alarm is armed for its end...
    await watcher.expectNone((f) => f.type === "presence", 100);
    // (published_at lives in the object's memory: a position-only publish writes no row.)
    const [alarm, publishedAt] = await runInDurableObject(stubOf(a), async (instance, state) => [
      await state.storage.getAlarm(),
      Number((instance as unknown as { store: UserStore }).store.get("published_at")),
    ]);
    expect(alarm).toBe(publishedAt! + 3_000);
    // ...when the interval has passed (moved back here instead of waiting), the alarm publishes the latest position once.
    await setMeta(a, "published_at", (value) => Number(value) - 3_000);
    await runDurableObjectAlarm(stubOf(a));
    const moved = await watcher.presenceOf(a);
    expect(moved.position).toEqual({ x: 3, y: 0, z: 0 });
    await watcher.expectNone((f) => f.type === "presence");
  });

  it("a status change is never delayed by coalescing and carries the latest position", async () => {
    const { a, watcher } = await pair();
    const ca = await Client.connect(a);
    await ca.heartbeat({ position: { x: 0, y: 0, z: 0 } });
    await watcher.presenceOf(a);
    await ca.heartbeat({ position: { x: 5, y: 0, z: 0 } });
    const sentAt = Date.now();
    await ca.heartbeat({ position: { x: 6, y: 0, z: 0 }, status: "away" });
    // Bounded well below the coalescing window (POSITION_COALESCE_MS = 3000 in test/workers/bindings.ts):
    // a status change held back by coalescing would arrive only when the window ends.
    const seen = await watcher.presenceOf(a, (p) => p.status === "away", 1_000);
    expect(Date.now() - sentAt).toBeLessThan(1_000);
    expect(seen).toMatchObject({ status: "away", position: { x: 6, y: 0, z: 0 } });
  });

  it("clean close of the last device → friend sees offline at once", async () => {
    const { a, watcher } = await pair();
    const ca = await Client.connect(a);
    await ca.heartbeat();
    const online = await watcher.presenceOf(a);
    await ca.close();
    const offline = await watcher.presenceOf(a, (p) => p.status === "offline", 1_000);
    expect(offline).toMatchObject({ realm: null, position: null, devices: [] });
    expect(offline.seq).toBeGreaterThan(online.seq);
    expect(offline.lastActiveAt).toBe(online.lastActiveAt);
  });

  it("GetOnlineFriends lists online friends only; over HTTP too", async () => {
    const { a, b, watcher } = await pair();
    const c = user("c");
    await befriend(b, c);
    const ca = await Client.connect(a);
    await ca.heartbeat({ realm: "r" });
    await watcher.presenceOf(a);
    const reply = await watcher.request({ type: "GetOnlineFriends" });
    expect(reply.friends.map((f: { userId: string }) => f.userId)).toEqual([a]);
    const res = await worker().fetch("http://presence/v1/friends/online", { headers: { Authorization: `Bearer ${await token(b)}` } });
    const body = (await res.json()) as { friends: { userId: string; realm: string }[] };
    expect(body.friends).toEqual([expect.objectContaining({ userId: a, realm: "r" })]);
  });

  it("the friend's snapshot on subscribe includes those already online", async () => {
    const a = user("a");
    const b = user("b");
    await befriend(a, b);
    const ca = await Client.connect(a);
    await ca.heartbeat({ realm: "early" });
    const cb = await Client.connect(b);
    const snapshot = await cb.request({ type: "SubscribeFriendshipPresenceUpdates" });
    expect(snapshot.friends).toEqual([expect.objectContaining({ userId: a, status: "online", realm: "early" })]);
  });

  it("symmetric: both friends see each other", async () => {
    const a = user("a");
    const b = user("b");
    await befriend(a, b);
    const ca = await Client.connect(a);
    const cb = await Client.connect(b);
    await ca.request({ type: "SubscribeFriendshipPresenceUpdates" });
    await cb.request({ type: "SubscribeFriendshipPresenceUpdates" });
    await ca.heartbeat();
    await cb.heartbeat();
    expect((await cb.presenceOf(a)).status).toBe("online");
    expect((await ca.presenceOf(b)).status).toBe("online");
  });
});

describe("seq ordering at the receiving object", () => {
  it("a duplicate or older push is dropped; a newer one is passed on", async () => {
    const { a, b, watcher } = await pair();
    const ca = await Client.connect(a);
    await ca.heartbeat({ realm: "r1" });
    const seen = await watcher.presenceOf(a);
    // Redelivered (as after a lost ack) and stale copies reach b's object: its client sees nothing.
    expect(await stubOf(b).receivePresence(a, seen)).toEqual({ ok: true, value: false });
    expect(await stubOf(b).receivePresence(a, { ...seen, seq: seen.seq - 1, realm: "stale" })).toEqual({ ok: true, value: false });
    await watcher.expectNone((f) => f.type === "presence");
    expect((await watcher.request({ type: "GetOnlineFriends" })).friends[0].realm).toBe("r1");
    // A newer one is shown.
    await stubOf(b).receivePresence(a, { ...seen, seq: seen.seq + 5, realm: "r2" });
    expect((await watcher.presenceOf(a)).realm).toBe("r2");
  });
});

describe("multiple devices", () => {
  it("most available device wins; the per-device list is shown; closing one device keeps the rest", async () => {
    const { a, watcher } = await pair();
    const phone = await Client.connect(a, { device: "phone", kind: "mobile" });
    const desk = await Client.connect(a, { device: "desk", kind: "desktop" });
    await phone.heartbeat({ status: "away" });
    await watcher.presenceOf(a, (p) => p.status === "away");
    await desk.heartbeat({ status: "online" });
    const both = await watcher.presenceOf(a, (p) => p.devices.length === 2);
    expect(both.status).toBe("online");
    expect(both.devices).toEqual([
      expect.objectContaining({ deviceId: "desk", kind: "desktop", status: "online" }),
      expect.objectContaining({ deviceId: "phone", kind: "mobile", status: "away" }),
    ]);
    await desk.close();
    const phoneOnly = await watcher.presenceOf(a, (p) => p.devices.length === 1);
    expect(phoneOnly.status).toBe("away");
  });

  it("invisible on any device looks exactly like offline to friends; the user still sees themself", async () => {
    const { a, watcher } = await pair();
    const phone = await Client.connect(a, { device: "phone" });
    await phone.heartbeat({ realm: "secret-base", statusText: "hiding" });
    await watcher.presenceOf(a, (p) => p.status === "online");
    const ack = await phone.heartbeat({ status: "invisible", realm: "secret-base" });
    expect(ack.presence).toMatchObject({ status: "offline", invisible: true });
    const seen = await watcher.presenceOf(a, (p) => p.status === "offline");
    expect(seen).toMatchObject({ realm: null, position: null, statusText: null, devices: [] });
    const lookup = await worker().fetch(`http://presence/v1/presence/${a}`, { headers: { Authorization: `Bearer ${await token(user("x"))}` } });
    expect(lookup.status).toBe(404);
  });

  it("the same device reconnecting replaces its old socket (4001) without flapping offline", async () => {
    const { a, watcher } = await pair();
    const first = await Client.connect(a, { device: "tab" });
    await first.heartbeat();
    await watcher.presenceOf(a);
    const second = await Client.connect(a, { device: "tab" });
    await first.next(() => false, 2_000).catch(() => undefined);
    expect(first.closed?.code).toBe(4001);
    await watcher.expectNone((f) => f.type === "presence" && f.presence.status === "offline");
    await second.heartbeat({ status: "away" });
    await watcher.presenceOf(a, (p) => p.status === "away");
  });

  it("more devices than MAX_DEVICES_PER_USER → 429 too_many_devices", async () => {
    const a = user("a");
    for (const device of ["d1", "d2", "d3"]) await Client.connect(a, { device });
    const res = await worker().fetch(`http://presence/v1/connect?device=d4`, {
      headers: { Upgrade: "websocket", Authorization: `Bearer ${await token(a)}` },
    });
    expect(res.status).toBe(429);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("too_many_devices");
  });
});

describe("privacy: nothing reaches non-friends", () => {
  it("a non-friend who is online and subscribed gets no update; lookups answer 404 / not_found", async () => {
    const { a, watcher } = await pair();
    const stranger = user("s");
    const cs = await Client.connect(stranger);
    await cs.request({ type: "SubscribeFriendshipPresenceUpdates" });
    const ca = await Client.connect(a);
    await ca.heartbeat({ realm: "home" });
    await watcher.presenceOf(a);
    await cs.expectNone((f) => f.type === "presence");
    const reply = await cs.request({ type: "GetPresence", userId: a });
    expect(reply).toMatchObject({ type: "error", code: "not_found" });
    const res = await worker().fetch(`http://presence/v1/presence/${a}`, { headers: { Authorization: `Bearer ${await token(stranger)}` } });
    expect(res.status).toBe(404);
    const missing = await worker().fetch(`http://presence/v1/presence/nobody-at-all`, { headers: { Authorization: `Bearer ${await token(stranger)}` } });
    expect(await missing.json()).toEqual(await res.json());
  });

  it("a friend may look up presence by id; you may look up yourself", async () => {
    const { a, b, watcher } = await pair();
    const ca = await Client.connect(a);
    await ca.heartbeat({ realm: "keep" });
    await watcher.presenceOf(a);
    const res = await worker().fetch(`http://presence/v1/presence/${a}`, { headers: { Authorization: `Bearer ${await token(b)}` } });
    expect(((await res.json()) as { presence: { realm: string } }).presence.realm).toBe("keep");
    const self = await ca.request({ type: "GetPresence", userId: a });
    expect(self).toMatchObject({ type: "presence_result", presence: { userId: a, status: "online" } });
  });

  it("a forged push from a non-friend's object is refused", async () => {
    const { b } = await pair();
    const accepted = await stubOf(b).receivePresence(user("mallory"), {
      userId: "mallory",
      status: "online",
      realm: "x",
      position: null,
      statusText: null,
      devices: [],
      lastActiveAt: 1,
      seq: 99,
    });
    expect(accepted).toMatchObject({ ok: false, code: "not_friends" });
  });
});

describe("watch leases", () => {
  it("a watcher with no live client refuses pushes and its lease is dropped", async () => {
    const a = user("a");
    const b = user("b");
    await befriend(a, b);
    const cb = await Client.connect(b);
    await cb.heartbeat();
    // b now holds a lease on a.
    expect(await runInDurableObject(stubOf(a), (_, state) => state.storage.sql.exec(`SELECT watcher_id FROM watchers`).toArray())).toEqual([{ watcher_id: b }]);
    // b's object loses its client without telling a (simulate: b's rows vanish as after a crash + TTL).
    await ageDevices(b, () => 0);
    await setMeta(b, "live", () => null);
    const ca = await Client.connect(a);
    await ca.heartbeat();
    expect(await runInDurableObject(stubOf(a), (_, state) => state.storage.sql.exec(`SELECT watcher_id FROM watchers`).toArray())).toEqual([]);
  });

  it("an offline friend's object is not called when someone's position changes", async () => {
    const a = user("a");
    const b = user("b");
    await befriend(a, b);
    const ca = await Client.connect(a);
    await ca.heartbeat();
    // b never connected: a's object holds no lease for b, so nothing is sent to b.
    expect(await runInDurableObject(stubOf(a), (_, state) => state.storage.sql.exec(`SELECT COUNT(*) AS n FROM watchers`).one().n)).toBe(0);
  });

  it("an HTTP heartbeat device counts as online until its TTL", async () => {
    const { a, watcher } = await pair();
    const res = await worker().fetch(`http://presence/v1/heartbeat?device=cron&kind=web`, {
      method: "POST",
      headers: { Authorization: `Bearer ${await token(a)}`, "Content-Type": "application/json" },
      body: JSON.stringify({ position: { x: 1, y: 1, z: 1 }, realm: "http-land", status: "online" }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { presence: { status: string } }).presence.status).toBe("online");
    expect((await watcher.presenceOf(a)).realm).toBe("http-land");
  });
});

describe("back-pressure", () => {
  afterEach(restorePatches);

  it("while a fan-out is still out, moves wait and the next publish carries only the latest position", async () => {
    const a = user("a");
    const [fast, slow] = [user("fast"), user("slow")];
    await befriend(a, fast);
    await befriend(a, slow);
    const watchers: Client[] = [];
    for (const f of [fast, slow]) {
      const c = await Client.connect(f);
      await c.request({ type: "SubscribeFriendshipPresenceUpdates" });
      watchers.push(c);
    }
    const ca = await Client.connect(a);
    await ca.heartbeat({ position: { x: 0, y: 0, z: 0 } });
    await watchers[0]!.presenceOf(a);
    // The slow friend's object takes its time to answer pushes (within RPC_TIMEOUT_MS).
    const { release } = holdCalls(slow, "receivePresence");
    // A status change goes out (never delayed) and stays in flight on the slow friend...
    ca.send({ type: "PositionHeartbeat", id: "busy", position: { x: 0, y: 0, z: 0 }, realm: "lobby", status: "busy" });
    await watchers[0]!.presenceOf(a, (p) => p.status === "busy");
    // ...so these moves (past the coalescing interval) are held back instead of fanned out one by one.
    await setMeta(a, "published_at", (value) => Number(value) - 3_000);
    for (const x of [1, 2, 3]) expect((await ca.heartbeat({ position: { x, y: 0, z: 0 }, status: "busy" })).type).toBe("heartbeat_ack");
    await watchers[0]!.expectNone((f) => f.type === "presence", 200);
    release();
    await ca.next((f) => f.id === "busy");
    // The next interval publishes the latest position, once.
    await setMeta(a, "published_at", (value) => Number(value) - 3_000);
    await runDurableObjectAlarm(stubOf(a));
    expect((await watchers[0]!.presenceOf(a)).position).toEqual({ x: 3, y: 0, z: 0 });
    await watchers[0]!.expectNone((f) => f.type === "presence", 200);
  });
});
