/**
 * Hibernation, proven (issue #9): the user's object is evicted while its
 * sockets stay open (`evictDurableObject(stub, { webSockets: "hibernate" })`,
 * what production does to an idle object), and then everything the design
 * promises is checked: keep-alive pings are answered without waking it, the
 * next frame wakes it with its state intact, a friend's push wakes it and is
 * delivered, the TTL alarm still expires a silent device, budgets behave as
 * documented, and no update is lost or duplicated across the eviction.
 *
 * "Woken" is observed through `objectCounters.instancesCreated`, which counts
 * constructions of objects in this isolate (the tests and the objects share it).
 */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { objectCounters } from "../../durable/counters";
import { ageDevices, api, befriend, Client, patchObject, restorePatches, stubOf, user } from "./helpers";

const TTL = 120_000;

async function onlinePair() {
  const a = user("a");
  const b = user("b");
  await befriend(a, b);
  const watcher = await Client.connect(b, { device: "b-pc" });
  await watcher.request({ type: "SubscribeFriendshipPresenceUpdates" });
  const ca = await Client.connect(a, { device: "a-phone", kind: "mobile" });
  await ca.request({ type: "SubscribeFriendshipPresenceUpdates" });
  await ca.heartbeat({ realm: "before" });
  const first = await watcher.presenceOf(a, (p) => p.status === "online" && p.realm === "before");
  return { a, b, ca, watcher, first };
}

/** Evicts `userId`'s object, sockets kept open (hibernated), and checks it really went. */
async function hibernate(userId: string) {
  await evictDurableObject(stubOf(userId), { webSockets: "hibernate" });
}

async function expectNoWake<T>(during: () => Promise<T>): Promise<T> {
  const before = objectCounters.instancesCreated;
  const result = await during();
  expect(objectCounters.instancesCreated, "an object was woken").toBe(before);
  return result;
}

describe("an evicted object keeps its sockets", () => {
  it("sockets stay open and keep-alive pings get pong without waking the object", async () => {
    const { a, ca, watcher } = await onlinePair();
    await hibernate(a);
    await expectNoWake(async () => {
      for (let i = 0; i < 3; i++) {
        ca.send("ping");
        expect(await ca.next((f) => f === "pong")).toBe("pong");
      }
    });
    expect(ca.closed).toBeNull();
    expect(watcher.closed).toBeNull();
  });

  it("after pings, the object is still not running: evicting it again is refused", async () => {
    const { a, ca } = await onlinePair();
    await hibernate(a);
    ca.send("ping");
    await ca.next((f) => f === "pong");
    await expect(hibernate(a)).rejects.toThrow(/not (currently )?running/i);
  });

  it("the next frame wakes it with devices, attachments, seq and leases intact: the watcher gets exactly the next seq", async () => {
    const { a, b, ca, watcher, first } = await onlinePair();
    await hibernate(a);
    const before = objectCounters.instancesCreated;
    const ack = await ca.heartbeat({ realm: "after", status: "away" });
    expect(objectCounters.instancesCreated).toBe(before + 1);
    expect(ack.type).toBe("heartbeat_ack");
    // The device row and its attachment survived: same device, same kind, same socket.
    expect(ack.presence.devices).toEqual([expect.objectContaining({ deviceId: "a-phone", kind: "mobile" })]);
    // The watcher's lease survived: the change is pushed, with the very next seq.
    const next = await watcher.presenceOf(a, (p) => p.realm === "after");
    expect(next.status).toBe("away");
    expect(next.seq).toBe(first.seq + 1);
    // The subscription flag lives in the attachment: the woken object still pushes to this socket.
    await watcher.heartbeat({ status: "busy" });
    expect((await ca.presenceOf(b, (p) => p.status === "busy")).status).toBe("busy");
  });

  it("a friend's push that arrives while the user's object sleeps wakes it and reaches the user's sockets", async () => {
    const { a, b, ca, watcher } = await onlinePair();
    await hibernate(b);
    const before = objectCounters.instancesCreated;
    await ca.heartbeat({ realm: "while-b-sleeps" });
    const pushed = await watcher.presenceOf(a, (p) => p.realm === "while-b-sleeps");
    expect(pushed.status).toBe("online");
    expect(objectCounters.instancesCreated).toBeGreaterThan(before);
    // And b's object, woken by the push, still answers its own client as before.
    expect((await watcher.request({ type: "GetOnlineFriends" })).friends.map((p: { userId: string }) => p.userId)).toEqual([a]);
    expect(watcher.closed).toBeNull();
  });

  it("the TTL alarm of an evicted object still expires a device that went silent", async () => {
    const { a, ca, watcher } = await onlinePair();
    await ageDevices(a, TTL + 1);
    await hibernate(a);
    expect(await runDurableObjectAlarm(stubOf(a))).toBe(true);
    const offline = await watcher.presenceOf(a, (p) => p.status === "offline");
    expect(offline.devices).toEqual([]);
    await ca.next(() => false, 1_000).catch(() => undefined);
    expect(ca.closed?.code).toBe(4000);
  });

  it("a keep-alive ping answered while asleep counts as a sign of life when the alarm runs", async () => {
    const { a, ca, watcher } = await onlinePair();
    await hibernate(a);
    await expectNoWake(async () => {
      ca.send("ping");
      await ca.next((f) => f === "pong");
    });
    // The heartbeat is old, but the runtime recorded the ping while the object slept.
    await ageDevices(a, TTL + 1);
    await runDurableObjectAlarm(stubOf(a));
    await watcher.expectNone((f) => f.type === "presence" && f.presence.status === "offline");
    expect(ca.closed).toBeNull();
  });

  it("an outbox row whose delivery failed before the eviction is retried by the alarm afterwards", async () => {
    const a = user("a");
    const b = user("b");
    const ca = await Client.connect(a);
    await ca.request({ type: "SubscribeFriendshipPresenceUpdates" });
    const cb = await Client.connect(b);
    await cb.request({ type: "SubscribeFriendshipPresenceUpdates" });
    expect((await ca.request({ type: "SendFriendRequest", userId: b, message: "hi" })).type).toBe("friendship");
    await cb.next((f) => f.type === "friend_request" && f.userId === a);
    // b accepts, but a's object refuses the first delivery: the acceptance waits in b's outbox.
    failNextEdge(a);
    expect((await cb.request({ type: "AcceptFriendRequest", userId: a })).state).toBe("friends");
    expect((await api(a, "/v1/friends")).body.friends).toEqual([]);
    await hibernate(a);
    await hibernate(b);
    // b's woken object finds the row and the alarm delivers it; a's sleeping socket hears of it.
    await runInDurableObject(stubOf(b), (_, state) => state.storage.sql.exec(`UPDATE outbox SET next_attempt_at = 0`));
    expect(await runDurableObjectAlarm(stubOf(b))).toBe(true);
    await ca.next((f) => f.type === "friend_added" && f.userId === b);
    expect((await api(a, "/v1/friends")).body.friends).toEqual([b]);
    expect(await runInDurableObject(stubOf(b), (_, state) => state.storage.sql.exec(`SELECT COUNT(*) AS n FROM outbox`).one().n)).toBe(0);
  });

  it("no update is lost or duplicated across evictions: seqs seen by the watcher are contiguous", async () => {
    const { a, ca, watcher, first } = await onlinePair();
    const realms = ["r1", "r2", "r3", "r4", "r5", "r6"];
    const seqs: number[] = [];
    for (const [i, realm] of realms.entries()) {
      if (i % 2 === 0) await hibernate(a);
      await ca.heartbeat({ realm, status: i % 3 === 0 ? "away" : "online" });
      seqs.push((await watcher.presenceOf(a, (p) => p.realm === realm)).seq);
    }
    expect(seqs).toEqual(realms.map((_, i) => first.seq + i + 1));
    await watcher.expectNone((f) => f.type === "presence" && f.presence.userId === a, 300);
  });
});

describe("friends' presence lives in memory (issue #11): a woken watcher rebuilds it and misses nothing", () => {
  it("after an eviction, the next snapshot re-watches every friend and shows each one's latest presence", async () => {
    const w = user("w");
    const friends = [user("f1"), user("f2"), user("f3")];
    for (const f of friends) await befriend(w, f);
    const cw = await Client.connect(w, { device: "w-pc" });
    await cw.request({ type: "SubscribeFriendshipPresenceUpdates" });
    const clients = [];
    for (const [i, f] of friends.entries()) {
      const c = await Client.connect(f);
      await c.heartbeat({ realm: `start-${i}` });
      await cw.presenceOf(f, (p) => p.realm === `start-${i}`);
      clients.push(c);
    }
    // w sleeps; f1 moves on (its push wakes w and is forwarded); w sleeps again; f2 changes status.
    await hibernate(w);
    await clients[0]!.heartbeat({ realm: "moved" });
    const moved = await cw.presenceOf(friends[0]!, (p) => p.realm === "moved");
    await hibernate(w);
    await clients[1]!.heartbeat({ realm: "start-1", status: "busy" });
    const busy = await cw.presenceOf(friends[1]!, (p) => p.status === "busy");
    await hibernate(w);
    // A fresh instance: the snapshot is rebuilt from the friends' objects, not from disk.
    const snapshot = (await cw.request({ type: "GetOnlineFriends" })).friends as Array<{ userId: string; realm: string; status: string; seq: number }>;
    const byId = new Map(snapshot.map((p) => [p.userId, p]));
    expect([...byId.keys()].sort()).toEqual([...friends].sort());
    expect(byId.get(friends[0]!)).toMatchObject({ realm: "moved", seq: moved.seq });
    expect(byId.get(friends[1]!)).toMatchObject({ status: "busy", seq: busy.seq });
    expect(byId.get(friends[2]!)).toMatchObject({ realm: "start-2", status: "online" });
    // And the leases are still in place: the next change still reaches w.
    await clients[2]!.heartbeat({ realm: "after-rebuild" });
    await cw.presenceOf(friends[2]!, (p) => p.realm === "after-rebuild");
    // Nothing of the friends' presence is on disk.
    const tables = await runInDurableObject(stubOf(w), (_, state) =>
      state.storage.sql
        .exec(`SELECT name FROM sqlite_master WHERE type = 'table'`)
        .toArray()
        .map((r) => String(r.name)),
    );
    expect(tables).not.toContain("friend_presence");
  });

  it("a friend gone offline while the watcher slept is not in the rebuilt snapshot", async () => {
    const { a, b, ca, watcher } = await onlinePair();
    await hibernate(b);
    ca.close();
    await watcher.presenceOf(a, (p) => p.status === "offline");
    await hibernate(b);
    expect((await watcher.request({ type: "GetOnlineFriends" })).friends).toEqual([]);
  });
});

describe("abuse budgets across a wake (documented: in memory, start afresh after hibernation)", () => {
  it("invalid frames: the error budget counts again from zero after a wake, and still closes the socket when exceeded", async () => {
    const MAX_ERRORS = 5; // MAX_ERRORS_PER_WINDOW in test/workers/bindings.ts
    const a = user("a");
    const ca = await Client.connect(a);
    for (let i = 0; i < MAX_ERRORS; i++) {
      ca.send("{not json");
      expect((await ca.next((f) => f.type === "error")).code).toBe("bad_json");
    }
    expect(ca.closed).toBeNull();
    await hibernate(a);
    // Fresh budget: MAX_ERRORS more are answered, the next one closes with 1008.
    for (let i = 0; i < MAX_ERRORS; i++) {
      ca.send("{not json");
      expect((await ca.next((f) => f.type === "error")).code).toBe("bad_json");
    }
    expect(ca.closed).toBeNull();
    ca.send("{not json");
    await ca.next((f) => f.type === "error");
    await ca.next(() => false, 1_000).catch(() => undefined);
    expect(ca.closed?.code).toBe(1008);
  });

  it("rate limits still hold right after a wake: a flood is refused, each refusal names its request, then the socket is closed", async () => {
    const a = user("a");
    const ca = await Client.connect(a);
    await hibernate(a);
    const ids = Array.from({ length: 40 }, (_, i) => `f${i}`);
    for (const id of ids) ca.send({ type: "GetOnlineFriends", id });
    await ca.next(() => false, 1_000).catch(() => undefined);
    const answered = ca.frames.filter((f) => f.type === "online_friends");
    const limited = ca.frames.filter((f) => f.type === "error" && f.code === "rate_limited");
    // Burst 20 per socket; refused frames count as errors (budget 5), so the sixth closes the socket.
    expect(answered.length).toBeGreaterThanOrEqual(20);
    expect(answered.length).toBeLessThan(30);
    expect(limited.length).toBe(6);
    expect(limited.every((f) => ids.includes(f.id))).toBe(true);
    expect(ca.closed?.code).toBe(1008);
  });
});

afterEach(restorePatches);

/** The next edge delivery to `userId`'s object throws (the prototype is patched, so a woken instance is covered too). */
function failNextEdge(userId: string) {
  let left = 1;
  patchObject(userId, "receiveEdge", async (original) => {
    if (left-- > 0) throw new Error("injected failure");
    return original();
  });
}
