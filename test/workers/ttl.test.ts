import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { UserPresence } from "../../durable/user-presence";
import type { UserStore } from "../../durable/store";
import { ageDevices, befriend, Client, setMeta, stubOf, user } from "./helpers";

const TTL = 120_000;

async function onlinePair() {
  const a = user("a");
  const b = user("b");
  await befriend(a, b);
  const watcher = await Client.connect(b);
  await watcher.request({ type: "SubscribeFriendshipPresenceUpdates" });
  const ca = await Client.connect(a, { device: "dev" });
  await ca.heartbeat();
  await watcher.presenceOf(a, (p) => p.status === "online");
  return { a, b, ca, watcher };
}

/** Moves a device's last sign of life into the past, as if `ms` had passed in silence. */
async function age(userId: string, ms: number) {
  await ageDevices(userId, ms);
}

describe("the alarm is the TTL", () => {
  it("after a heartbeat the alarm is set to the device's TTL, and a later heartbeat does not move it (a setAlarm is a row written)", async () => {
    const { a, ca } = await onlinePair();
    const seen = async () =>
      runInDurableObject(stubOf(a), async (instance, state) => [await state.storage.getAlarm(), (instance as unknown as { store: UserStore }).store.devices()[0]!.lastSeenAt]);
    const [alarm, first] = await seen();
    // Set when the device appeared (its connect), never later than its last sign of life + TTL.
    expect(alarm).toBeLessThanOrEqual(first! + TTL);
    expect(alarm).toBeGreaterThan(first! + TTL - 5_000);
    await ca.heartbeat();
    const [again, later] = await seen();
    expect(later).toBeGreaterThanOrEqual(first!);
    expect(again).toBe(alarm);
  });

  it("silent drop (no close frame): the alarm expires the device, the friend sees offline, the socket gets 4000", async () => {
    const { a, ca, watcher } = await onlinePair();
    await age(a, TTL + 1);
    expect(await runDurableObjectAlarm(stubOf(a))).toBe(true);
    const offline = await watcher.presenceOf(a, (p) => p.status === "offline");
    expect(offline.devices).toEqual([]);
    await ca.next(() => false, 1_000).catch(() => undefined);
    expect(ca.closed?.code).toBe(4000);
    // The realm leave waits out the realm part's one-round-per-second limit (the join was just
    // now); once that alarm has run, nothing is left to time: an idle offline user costs nothing.
    if (await runInDurableObject(stubOf(a), (_, state) => state.storage.getAlarm())) {
      await new Promise((resolve) => setTimeout(resolve, 1_100)); // REALM_BATCH_MS
      await runDurableObjectAlarm(stubOf(a));
    }
    expect(await runInDurableObject(stubOf(a), (_, state) => state.storage.getAlarm())).toBeNull();
  });

  it("a second before the TTL the user is still online; the alarm re-arms instead", async () => {
    const { a, watcher } = await onlinePair();
    await age(a, TTL - 1_000);
    expect(await runDurableObjectAlarm(stubOf(a))).toBe(true);
    await watcher.expectNone((f) => f.type === "presence");
    const alarm = await runInDurableObject(stubOf(a), (_, state) => state.storage.getAlarm());
    expect(alarm).toBeGreaterThan(Date.now());
  });

  it("keep-alive pings are answered without a heartbeat and count as a sign of life", async () => {
    const { a, ca, watcher } = await onlinePair();
    ca.send("ping");
    expect(await ca.next((f) => f === "pong")).toBe("pong");
    // The heartbeat is old, but the runtime recorded the ping just now.
    await age(a, TTL + 1);
    await runDurableObjectAlarm(stubOf(a));
    await watcher.expectNone((f) => f.type === "presence" && f.presence.status === "offline");
    expect(ca.closed).toBeNull();
  });

  it("the alarm handler is idempotent: running it again changes nothing and sends nothing", async () => {
    const { a, watcher } = await onlinePair();
    await age(a, TTL + 1);
    await runDurableObjectAlarm(stubOf(a));
    const offline = await watcher.presenceOf(a, (p) => p.status === "offline");
    await runInDurableObject(stubOf(a), async (instance: UserPresence) => {
      await instance.alarm();
      await instance.alarm();
    });
    await watcher.expectNone((f) => f.type === "presence");
    const seq = await runInDurableObject(stubOf(a), (_, state) => JSON.parse(String(state.storage.sql.exec(`SELECT value FROM meta WHERE key = 'published'`).one().value)).seq);
    expect(seq).toBe(offline.seq);
  });

  it("a late alarm never shows a ghost: a friend's lookup re-checks the TTL", async () => {
    const { a, b } = await onlinePair();
    await age(a, TTL + 1);
    // The alarm has not fired yet, but asking for a's presence must not say online.
    expect(await stubOf(b).lookup(a)).toMatchObject({ ok: true, value: { status: "offline" } });
  });

  it("state survives the object being rebuilt from storage (seq, friends, devices)", async () => {
    const { a, b, ca } = await onlinePair();
    const before = await stubOf(b).lookup(a);
    // A fresh instance over the same storage reads everything back.
    const after = await runInDurableObject(stubOf(a), async (_, state) => {
      const { UserPresence } = await import("../../durable/user-presence");
      const rebuilt = new UserPresence(state, (await import("cloudflare:workers")).env as never);
      const list = await rebuilt.friends();
      return { friends: list.ok ? list.value.friends : null, presence: await rebuilt.presenceFor(b) };
    });
    expect(after.friends).toEqual([b]);
    expect(after.presence).toEqual(before);
    ca.send("ping");
  });
});

describe("watch renewal", () => {
  it("renewing leases at half-life also repairs a lost push (anti-entropy)", async () => {
    const a = user("a");
    const b = user("b");
    await befriend(a, b);
    const watcher = await Client.connect(b);
    await watcher.request({ type: "SubscribeFriendshipPresenceUpdates" });
    const ca = await Client.connect(a);
    await ca.heartbeat({ realm: "one" });
    await watcher.presenceOf(a, (p) => p.realm === "one");
    // A push that never arrived: a changed realm while b held no lease (as after a lost delivery).
    await runInDurableObject(stubOf(a), (instance) => (instance as unknown as { store: UserStore }).store.removeWatcher(b));
    await ca.heartbeat({ realm: "two" });
    await watcher.expectNone((f) => f.type === "presence");
    // b's renewal is due: its alarm renews the lease and finds the newer presence.
    await setMeta(b, "watch_renew_at", () => 0);
    await runDurableObjectAlarm(stubOf(b));
    expect((await watcher.presenceOf(a)).realm).toBe("two");
    // And a holds b's lease again: the next change is pushed.
    await ca.heartbeat({ realm: "three" });
    expect((await watcher.presenceOf(a)).realm).toBe("three");
  });
});
