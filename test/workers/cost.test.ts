/**
 * Issue #11: what the bill counts, asserted. Rows written (setAlarm included)
 * are counted by durable/meter.ts, which this test shares an isolate with:
 * a heartbeat that changes nothing and a delivered update write nothing, a
 * status change writes at most two rows; what is no longer written every
 * time (a device's last sign of life, position-only publishes and their seq)
 * still keeps the TTL and seq honest across a restart. The realm membership
 * record (sync KV, billed as SQLite rows) is counted too: a realm join, move,
 * leave or renewal writes it once; a heartbeat that changes nothing never
 * touches it.
 */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { meterTotals } from "../../durable/meter";
import type { UserStore } from "../../durable/store";
import { until } from "../shared/util";
import { ageDevices, api, befriend, Client, coalescingOver, setMeta, stubOf, user, watchedPair } from "./helpers";

const TTL = 120_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** The realm part's one round of shard calls per second per user (REALM_BATCH_MS): a change sooner is held back (an alarm). */
const pastRealmBatch = () => sleep(1_100);

/** Rows written (SQL + KV + setAlarm) by everything `during` causes, and by the receivers of pushes; the KV rows (realm membership) apart. */
async function written(during: () => Promise<unknown>) {
  const before = meterTotals();
  await during();
  const after = meterTotals();
  const receive = (t: typeof before) => t.byEvent["rpc:receivePresence"] ?? { rowsWritten: 0, alarmsSet: 0, events: 0 };
  return {
    rows: after.rowsWritten - before.rowsWritten + after.alarmsSet - before.alarmsSet,
    kv: { read: after.kvRowsRead - before.kvRowsRead, written: after.kvRowsWritten - before.kvRowsWritten },
    deliveries: receive(after).events - receive(before).events,
    onDelivery: receive(after).rowsWritten - receive(before).rowsWritten + receive(after).alarmsSet - receive(before).alarmsSet,
  };
}

type Membership = { realm: string; shard: number; renewAt: number };

function membershipOf(userId: string): Promise<Membership | null> {
  return runInDurableObject(stubOf(userId), (_, state) => state.storage.kv.get<Membership>("realm-membership") ?? null);
}

/**
 * The user's membership record says `realm` (null: none). A shard call started
 * by another refresh (the connect's, after its fan-in) may still be in flight
 * when a heartbeat is answered (that heartbeat's refresh leaves it to the call
 * in flight): its row is written when the shard answers, so a window opened
 * before then would count it (watchedPair waits for it too).
 */
async function membershipSettled(userId: string, realm: string | null): Promise<void> {
  await until(`${userId}'s realm membership is ${realm}`, async () => ((await membershipOf(userId))?.realm ?? null) === realm);
}

/** The seq of the published presence on disk (0: none written; a socket's attachment carries it). */
async function writtenSeq(userId: string): Promise<number> {
  return runInDurableObject(stubOf(userId), (_, state) => {
    const row = state.storage.sql.exec(`SELECT value FROM meta WHERE key = 'published'`).toArray()[0];
    return row ? (JSON.parse(String(row.value)) as { seq: number }).seq : 0;
  });
}

describe("rows written (issue #11)", () => {
  it("a heartbeat that changes nothing writes no row, sets no alarm and does not touch the realm membership", async () => {
    const { ca } = await watchedPair();
    const cost = await written(async () => {
      for (let i = 0; i < 5; i++) await ca.heartbeat({ realm: "lobby" });
    });
    expect(cost.rows).toBe(0);
    expect(cost.kv).toEqual({ read: 0, written: 0 });
  });

  it("a socket device's status change writes no row (its attachment carries it); its delivery writes none", async () => {
    const { a, ca, watcher } = await watchedPair();
    const cost = await written(async () => {
      await ca.heartbeat({ realm: "lobby", status: "busy" });
      await watcher.presenceOf(a, (p) => p.status === "busy");
      await ca.heartbeat({ realm: "lobby", status: "away", statusText: "brb" });
      await watcher.presenceOf(a, (p) => p.status === "away");
      await ca.heartbeat({ realm: "lobby", status: "online", statusText: "back" });
      await watcher.presenceOf(a, (p) => p.statusText === "back");
    });
    expect(cost.deliveries).toBe(3);
    expect(cost.onDelivery).toBe(0);
    expect(cost.rows).toBe(0);
  });

  it("what must survive a restart is still written: a device appearing, going invisible, a 'clear after' deadline; an HTTP device's status change (≤ 2 rows; a realm leave or join 1 more)", async () => {
    const { a, ca, watcher } = await watchedPair();
    await pastRealmBatch();
    // Invisible: the published presence (and the device), and the realm membership left (its record deleted: 1 row).
    const invisible = await written(async () => {
      await ca.heartbeat({ realm: "lobby", status: "invisible" });
      await watcher.presenceOf(a, (p) => p.status === "offline");
    });
    expect(invisible.kv.written).toBe(1);
    expect(invisible.rows - invisible.kv.written).toBeGreaterThanOrEqual(1);
    expect(invisible.rows - invisible.kv.written).toBeLessThanOrEqual(2);
    await pastRealmBatch();
    // Visible again with a deadline: the device row and published (the device reappears), a sooner alarm; the realm joined again (1 row).
    const deadline = await written(() => ca.heartbeat({ realm: "lobby", status: "busy", expiresInMs: 60_000 }));
    expect(deadline.kv.written).toBe(1);
    expect(deadline.rows - deadline.kv.written).toBeGreaterThanOrEqual(1);
    expect(deadline.rows - deadline.kv.written).toBeLessThanOrEqual(3);
    // HTTP: no socket carries the device or the published presence.
    const beat = (status: string) => api(a, "/v1/heartbeat?device=h", { method: "POST", body: JSON.stringify({ status, realm: "r", position: { x: 1, y: 2, z: 3 } }) });
    await ca.close(1000);
    await watcher.presenceOf(a, (p) => p.status === "offline");
    expect((await beat("online")).status).toBe(200);
    await watcher.presenceOf(a, (p) => p.status === "online");
    await membershipSettled(a, "r"); // held back past the per-user interval after the leave, then joined by the alarm
    const http = await written(async () => {
      expect((await beat("busy")).status).toBe(200);
      await watcher.presenceOf(a, (p) => p.status === "busy");
    });
    expect(http.kv).toEqual({ read: 0, written: 0 });
    expect(http.rows).toBeGreaterThanOrEqual(1);
    expect(http.rows).toBeLessThanOrEqual(2);
  });

  it("a position-only update is delivered without a row written on either side (after the first seq reservation)", async () => {
    const { a, ca, watcher } = await watchedPair();
    const move = async (x: number) => {
      await coalescingOver(a);
      await ca.heartbeat({ realm: "lobby", position: { x, y: 0, z: 0 } });
      await watcher.presenceOf(a, (p) => p.position?.x === x);
    };
    await move(1); // reserves seqs ahead (one row, once per SEQ_RESERVATION publishes)
    const cost = await written(async () => {
      for (let x = 2; x <= 4; x++) await move(x);
    });
    expect(cost.deliveries).toBe(3);
    expect(cost.onDelivery).toBe(0);
    expect(cost.rows).toBe(0);
  });
});

describe("the first position-only move and a session's meta keys (issue #11, third round)", () => {
  it("the seq reservation is taken with the first written publish: the first move after it writes nothing", async () => {
    const { a, ca, watcher } = await watchedPair();
    const cost = await written(async () => {
      await coalescingOver(a);
      await ca.heartbeat({ realm: "lobby", position: { x: 1, y: 0, z: 0 } });
      await watcher.presenceOf(a, (p) => p.position?.x === 1);
    });
    expect(cost.rows).toBe(0);
  });

  it("a cleared meta key keeps its row: clearing and setting it again write one row each (a delete and an insert: two each)", async () => {
    const { a } = await watchedPair();
    expect((await written(() => setMeta(a, "watch_renew_at", () => null))).rows).toBe(1);
    expect(await runInDurableObject(stubOf(a), (instance) => (instance as unknown as { store: UserStore }).store.get("watch_renew_at"))).toBeNull();
    // A fresh instance reads the blank row as no value.
    await evictDurableObject(stubOf(a), { webSockets: "hibernate" });
    expect(await runInDurableObject(stubOf(a), (instance) => (instance as unknown as { store: UserStore }).store.get("watch_renew_at"))).toBeNull();
    expect((await written(() => setMeta(a, "watch_renew_at", () => Date.now() + 60_000))).rows).toBe(1);
  });
});

describe("the realm membership record (sync KV on SQLite: billed as rows read and written)", () => {
  it("a realm join, a move and a leave write the record once each; a heartbeat that keeps the realm, none", async () => {
    const a = user("a");
    const ca = await Client.connect(a);
    await ca.request({ type: "GetOnlineFriends" }); // the connect's fan-in is over
    const join = await written(async () => {
      await ca.heartbeat({ realm: "one" });
      await membershipSettled(a, "one");
    });
    expect(join.kv).toEqual({ read: 0, written: 1 });
    expect((await written(() => ca.heartbeat({ realm: "one" }))).kv).toEqual({ read: 0, written: 0 });
    await pastRealmBatch();
    // A move is two shard calls (leave the old, join the new) and one row here: the record rewritten.
    const move = await written(async () => {
      await ca.heartbeat({ realm: "two" });
      await membershipSettled(a, "two");
    });
    expect(move.kv).toEqual({ read: 0, written: 1 });
    await pastRealmBatch();
    // Leaving every realm deletes the record: a delete reads and writes its row.
    const leave = await written(async () => {
      await ca.heartbeat({ realm: "two", status: "invisible" });
      await membershipSettled(a, null);
    });
    expect(leave.kv).toEqual({ read: 1, written: 1 });
  });

  it("after a wake the record is read once (one row read), never written by a heartbeat that keeps the realm", async () => {
    const { a, ca } = await watchedPair();
    await evictDurableObject(stubOf(a), { webSockets: "hibernate" });
    const first = await written(() => ca.heartbeat({ realm: "lobby" }));
    expect(first.kv).toEqual({ read: 1, written: 0 });
    expect(first.rows).toBe(0);
    const next = await written(() => ca.heartbeat({ realm: "lobby" }));
    expect(next.kv).toEqual({ read: 0, written: 0 });
  });
});

describe("the checkpoints keep the TTL and seq honest across a restart", () => {
  it("an HTTP device (no socket to carry it) checkpoints its sign of life at half the TTL and survives a restart", async () => {
    const a = user("a");
    const beat = () => api(a, "/v1/heartbeat?device=h", { method: "POST", body: JSON.stringify({ status: "online", realm: "r", position: { x: 1, y: 2, z: 3 } }) });
    expect((await beat()).status).toBe(200);
    expect((await written(beat)).rows).toBe(0);
    // Half a TTL of silence later (moved back here), the next heartbeat writes the checkpoint.
    await ageDevices(a, TTL / 2 + 1_000);
    expect((await written(beat)).rows).toBe(1);
    const onDisk = await runInDurableObject(stubOf(a), (_, state) => Number(state.storage.sql.exec(`SELECT last_seen_at FROM devices`).one().last_seen_at));
    expect(onDisk).toBeGreaterThan(Date.now() - 5_000);
    // A restart: a fresh instance from disk still has the device, online, its TTL intact.
    await evictDurableObject(stubOf(a));
    expect(await stubOf(a).lookup(a)).toMatchObject({ ok: true, value: { status: "online", realm: "r" } });
    const alarm = await runInDurableObject(stubOf(a), (_, state) => state.storage.getAlarm());
    expect(alarm).toBeGreaterThan(Date.now() + TTL / 2);
    // And it still expires when it goes silent.
    await ageDevices(a, TTL + 1);
    await runDurableObjectAlarm(stubOf(a));
    expect(await stubOf(a).lookup(a)).toMatchObject({ ok: true, value: { status: "offline" } });
  });

  it("a device whose socket is closed by a restart expires by the alarm (no ghost), and seq keeps growing past unwritten position publishes", async () => {
    const { a, ca, watcher } = await watchedPair();
    let last = 0;
    for (let x = 1; x <= 3; x++) {
      await coalescingOver(a);
      await ca.heartbeat({ realm: "lobby", position: { x, y: 0, z: 0 } });
      last = (await watcher.presenceOf(a, (p) => p.position?.x === x)).seq;
    }
    // The restart closes the sockets; the last position publishes were never written.
    await evictDurableObject(stubOf(a), { webSockets: "close" });
    expect(await writtenSeq(a)).toBeLessThan(last);
    // The device without its socket: the alarm finds it silent once the TTL has passed (moved back here).
    await ageDevices(a, TTL + 1);
    await runDurableObjectAlarm(stubOf(a));
    const offline = await watcher.presenceOf(a, (p) => p.status === "offline");
    expect(offline.seq).toBeGreaterThan(last);
    // A new connection publishes with a seq above everything seen before.
    const again = await Client.connect(a, { device: "a-pc" });
    await again.heartbeat({ realm: "back" });
    expect((await watcher.presenceOf(a, (p) => p.realm === "back")).seq).toBeGreaterThan(offline.seq);
    const store = await runInDurableObject(stubOf(a), (instance) => (instance as unknown as { store: UserStore }).store.get("seq_ceiling"));
    expect(store).toBeGreaterThan(last);
  });
});

describe("unwritten status changes across a restart (the sockets closed without a word)", () => {
  it("the first refresh after the restart tells friends again, with a seq above everything seen, even when it matches the row on disk", async () => {
    const { a, ca, watcher, online: first } = await watchedPair();
    await ca.heartbeat({ realm: "lobby", status: "busy" });
    const busy = await watcher.presenceOf(a, (p) => p.status === "busy");
    expect(busy.seq).toBe(first.seq + 1);
    await evictDurableObject(stubOf(a), { webSockets: "close" });
    // On disk: the device and the presence as the device appeared (online), not busy.
    expect(await writtenSeq(a)).toBe(first.seq);
    // The device comes back and says online, the row's status: friends, told busy, are told online.
    const again = await Client.connect(a, { device: "a-pc" });
    await again.heartbeat({ realm: "lobby", status: "online" });
    const online = await watcher.presenceOf(a, (p) => p.status === "online");
    expect(online.seq).toBeGreaterThan(busy.seq);
    // And after that, status changes are rowless again.
    const cost = await written(async () => {
      await again.heartbeat({ realm: "lobby", status: "busy" });
      expect((await watcher.presenceOf(a, (p) => p.status === "busy")).seq).toBe(online.seq + 1);
    });
    expect(cost.rows).toBe(0);
  });

  it("a device that never comes back: no ghost (the TTL alarm on disk expires it and friends are told offline), seq never goes back", async () => {
    const { a, b, ca, watcher } = await watchedPair();
    await ca.heartbeat({ realm: "lobby", status: "busy", statusText: "x" });
    const busy = await watcher.presenceOf(a, (p) => p.status === "busy");
    await evictDurableObject(stubOf(a), { webSockets: "close" });
    // A friend asking right away gets what the rows say (never a seq above what the next publish takes).
    const asked = await stubOf(b).lookup(a);
    expect(asked.ok).toBe(true);
    await ageDevices(a, TTL + 1);
    expect(await runDurableObjectAlarm(stubOf(a))).toBe(true);
    const offline = await watcher.presenceOf(a, (p) => p.status === "offline");
    expect(offline.seq).toBeGreaterThan(busy.seq);
    expect(await stubOf(a).lookup(a)).toMatchObject({ ok: true, value: { status: "offline", devices: [] } });
  });

  it("invisible is written: a restart never shows an invisible user", async () => {
    const { a, b, ca, watcher } = await watchedPair();
    await ca.heartbeat({ realm: "lobby", status: "invisible" });
    await watcher.presenceOf(a, (p) => p.status === "offline");
    await evictDurableObject(stubOf(a), { webSockets: "close" });
    expect(await stubOf(b).lookup(a)).toMatchObject({ ok: true, value: { status: "offline" } });
    await watcher.expectNone((f) => f.type === "presence" && f.presence.userId === a && f.presence.status !== "offline", 200);
  });
});

describe("position-only moves go only to watchers who asked for them (issue #11)", () => {
  it("positions: realm gets moves of friends in its own realm, none gets no moves, all (default) gets every move; status goes to everyone", async () => {
    const a = user("a");
    const [same, other, none, all] = [user("same"), user("other"), user("none"), user("all")];
    for (const f of [same, other, none, all]) await befriend(a, f);
    const watchers = new Map<string, Client>();
    for (const [f, positions, realm] of [
      [same, "realm", "lobby"],
      [other, "realm", "elsewhere"],
      [none, "none", "lobby"],
      [all, undefined, "elsewhere"],
    ] as const) {
      const c = await Client.connect(f);
      await c.request({ type: "SubscribeFriendshipPresenceUpdates", ...(positions ? { positions } : {}) });
      await c.heartbeat({ realm });
      watchers.set(f, c);
    }
    const ca = await Client.connect(a);
    await ca.request({ type: "SubscribeFriendshipPresenceUpdates" });
    await ca.heartbeat({ realm: "lobby" });
    for (const c of watchers.values()) await c.presenceOf(a, (p) => p.status === "online");
    // The sender sleeps in between (as every 30 s in production): the watchers' realms are in their leases, not in its memory.
    await evictDurableObject(stubOf(a), { webSockets: "hibernate" });
    const cost = await written(async () => {
      await coalescingOver(a);
      await ca.heartbeat({ realm: "lobby", position: { x: 7, y: 0, z: 0 } });
      await watchers.get(same)!.presenceOf(a, (p) => p.position?.x === 7);
      await watchers.get(all)!.presenceOf(a, (p) => p.position?.x === 7);
    });
    expect(cost.deliveries).toBe(2);
    await watchers.get(other)!.expectNone((f) => f.type === "presence" && f.presence.userId === a, 200);
    await watchers.get(none)!.expectNone((f) => f.type === "presence" && f.presence.userId === a, 50);
    // A status change reaches every watcher, with the current position.
    await ca.heartbeat({ realm: "lobby", position: { x: 7, y: 0, z: 0 }, status: "busy" });
    for (const c of watchers.values()) expect((await c.presenceOf(a, (p) => p.status === "busy")).position).toEqual({ x: 7, y: 0, z: 0 });
  });
});

describe("renewals ride on the TTL's alarm (issue #11)", () => {
  it("a realm membership and watch leases due for renewal before the device's TTL get no alarm of their own: the TTL's fire renews them", async () => {
    const a = user("a");
    const b = user("b");
    await befriend(a, b);
    const ca = await Client.connect(a);
    await ca.request({ type: "GetOnlineFriends" });
    await ca.heartbeat({ realm: "lobby" });
    await membershipSettled(a, "lobby");
    const alarmAt = () => runInDurableObject(stubOf(a), (_, state) => state.storage.getAlarm());
    const ttlAlarm = (await alarmAt())!;
    expect(ttlAlarm).toBeGreaterThan(Date.now() + TTL / 2);
    const membership = (await membershipOf(a))!;
    // Both renewals fall due within the slack before the TTL's deadline.
    const soon = Date.now() + 10_000;
    // The object keeps its membership in memory (the row's only writer): moved in both, as setMeta does for meta.
    const setMembership = (m: Membership) =>
      runInDurableObject(stubOf(a), (instance, state) => {
        state.storage.kv.put("realm-membership", m);
        (instance as unknown as { realms: { kept?: Membership } }).realms.kept = m;
      });
    await setMembership({ ...membership, renewAt: soon });
    await setMeta(a, "watch_renew_at", () => soon);
    await pastRealmBatch();
    const beat = await written(() => ca.heartbeat({ realm: "lobby" }));
    expect(beat.rows).toBe(0);
    expect(await alarmAt()).toBe(ttlAlarm);
    // The TTL's fire comes after them (moved here: the renewals are overdue by then) and renews both.
    await setMembership({ ...membership, renewAt: Date.now() - 1 });
    await setMeta(a, "watch_renew_at", () => Date.now() - 1);
    // The realm renewal rewrites the membership record: one row (besides the shard's, which the meter does not see).
    const fire = await written(async () => expect(await runDurableObjectAlarm(stubOf(a))).toBe(true));
    expect(fire.kv).toEqual({ read: 0, written: 1 });
    const renewed = (await membershipOf(a))!;
    expect(renewed.renewAt).toBeGreaterThan(Date.now() + 200_000);
    const watchRenewAt = await runInDurableObject(stubOf(a), (instance) => (instance as unknown as { store: UserStore }).store.get("watch_renew_at"));
    expect(watchRenewAt).toBeGreaterThan(Date.now() + 60 * 60_000);
    expect(await alarmAt()).toBeGreaterThan(Date.now() + TTL / 2);
    expect(await stubOf(a).lookup(a)).toMatchObject({ ok: true, value: { status: "online", realm: "lobby" } });
    // And the TTL is kept: silent for a TTL, the device is gone at the next fire.
    await ageDevices(a, TTL + 1);
    expect(await runDurableObjectAlarm(stubOf(a))).toBe(true);
    expect(await stubOf(a).lookup(a)).toMatchObject({ ok: true, value: { status: "offline" } });
  });
});
