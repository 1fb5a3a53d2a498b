import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ADMIN, befriend, Client, stubOf, token, user, worker } from "./helpers";

function admin(method: string, path: string, body: unknown) {
  return worker().fetch(`http://presence/v1/admin${path}`, {
    method,
    headers: { Authorization: `Bearer ${ADMIN}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

async function friendsOf(userId: string): Promise<string[]> {
  const res = await worker().fetch("http://presence/v1/friends", { headers: { Authorization: `Bearer ${await token(userId)}` } });
  return ((await res.json()) as { friends: string[] }).friends.sort();
}

describe("friendships (admin API)", () => {
  it("are mutual and idempotent", async () => {
    const a = user("a");
    const b = user("b");
    expect((await befriend(a, b)).status).toBe(200);
    expect((await befriend(b, a)).status).toBe(200);
    expect(await friendsOf(a)).toEqual([b]);
    expect(await friendsOf(b)).toEqual([a]);
  });

  it("bulk import stores both sides of every pair", async () => {
    const [a, b, c, d] = [user("a"), user("b"), user("c"), user("d")];
    const res = await admin("POST", "/friendships:import", { pairs: [[a, b], { a, b: c }, [d, a]] });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ imported: 3, pending: [], refusals: [] });
    expect(await friendsOf(a)).toEqual([b, c, d].sort());
    expect(await friendsOf(b)).toEqual([a]);
    expect(await friendsOf(d)).toEqual([a]);
  });

  it("adding while both are online: both see friend_added with the other's presence at once", async () => {
    const a = user("a");
    const b = user("b");
    const ca = await Client.connect(a);
    const cb = await Client.connect(b);
    await ca.request({ type: "SubscribeFriendshipPresenceUpdates" });
    await cb.request({ type: "SubscribeFriendshipPresenceUpdates" });
    await ca.heartbeat({ realm: "ra" });
    await cb.heartbeat({ realm: "rb" });
    await befriend(a, b);
    expect(await ca.next((f) => f.type === "friend_added")).toMatchObject({ userId: b, presence: { status: "online", realm: "rb" } });
    expect(await cb.next((f) => f.type === "friend_added")).toMatchObject({ userId: a, presence: { status: "online", realm: "ra" } });
    // And later changes flow both ways.
    await ca.heartbeat({ realm: "ra2" });
    expect((await cb.presenceOf(a, (p) => p.realm === "ra2")).status).toBe("online");
  });

  it("removing while both are online: both see friend_removed, and nothing more leaks", async () => {
    const a = user("a");
    const b = user("b");
    await befriend(a, b);
    const ca = await Client.connect(a);
    const cb = await Client.connect(b);
    await cb.request({ type: "SubscribeFriendshipPresenceUpdates" });
    await ca.request({ type: "SubscribeFriendshipPresenceUpdates" });
    await ca.heartbeat();
    await cb.heartbeat();
    await cb.presenceOf(a);
    expect((await admin("DELETE", "/friendships", { a, b })).status).toBe(200);
    expect(await ca.next((f) => f.type === "friend_removed")).toEqual({ type: "friend_removed", userId: b });
    expect(await cb.next((f) => f.type === "friend_removed")).toEqual({ type: "friend_removed", userId: a });
    await ca.heartbeat({ status: "busy", realm: "private" });
    await cb.expectNone((f) => f.type === "presence");
    expect((await cb.request({ type: "GetOnlineFriends" })).friends).toEqual([]);
    expect(await friendsOf(a)).toEqual([]);
    const res = await worker().fetch(`http://presence/v1/presence/${a}`, { headers: { Authorization: `Bearer ${await token(b)}` } });
    expect(res.status).toBe(404);
  });

  it("a duplicated edge delivery (lost acknowledgement) changes nothing", async () => {
    const a = user("a");
    const b = user("b");
    await befriend(a, b);
    await admin("DELETE", "/friendships", { a, b });
    const version = await runInDurableObject(stubOf(a), (_, state) => Number(state.storage.sql.exec(`SELECT my_version FROM friends`).one().my_version));
    // The removal is delivered again, as after a lost ack, and so is the older befriend: nothing changes.
    expect(await stubOf(b).receiveEdge(a, { intent: "none", version, refuse: null, force: true })).toBe("ok");
    expect(await stubOf(b).receiveEdge(a, { intent: "want", version: version - 1, refuse: null, force: true })).toBe("ok");
    expect(await friendsOf(b)).toEqual([]);
    expect(await friendsOf(a)).toEqual([]);
  });

  it("an unacknowledged edge stays in the outbox and the alarm delivers it", async () => {
    const a = user("a");
    const b = user("b");
    await befriend(a, b);
    // Simulate a lost delivery: b never heard of the removal, a still has it queued.
    await runInDurableObject(stubOf(a), (_, state) => {
      state.storage.sql.exec(`UPDATE friends SET state = 'none', mine = 'none', theirs = 'none', my_version = my_version + 1`);
      const version = Number(state.storage.sql.exec(`SELECT my_version FROM friends`).one().my_version);
      state.storage.sql.exec(
        `INSERT INTO outbox (target, kind, payload, attempts, next_attempt_at) VALUES (?, 'edge', ?, 1, 0)`,
        b,
        JSON.stringify({ intent: "none", version, refuse: null, force: true, text: null, announce: false }),
      );
    });
    expect(await friendsOf(b)).toEqual([a]);
    // The object knows its outbox was empty (it is the only writer): a wake reads the injected row.
    await evictDurableObject(stubOf(a));
    // Far in the future, so only runDurableObjectAlarm runs it.
    await runInDurableObject(stubOf(a), (_, state) => state.storage.setAlarm(Date.now() + 60_000));
    expect(await runDurableObjectAlarm(stubOf(a))).toBe(true);
    expect(await friendsOf(b)).toEqual([]);
    expect(await runInDurableObject(stubOf(a), (_, state) => state.storage.sql.exec(`SELECT COUNT(*) AS n FROM outbox`).one().n)).toBe(0);
  });

  it("MAX_FRIENDS is enforced with a clear error", async () => {
    const a = user("a");
    // MAX_FRIENDS is 20 in this test configuration.
    const many = Array.from({ length: 20 }, (_, i) => [a, `${a}-f${i}`]);
    const res = await admin("POST", "/friendships:import", { pairs: many });
    expect(res.status).toBe(200);
    const over = await befriend(a, `${a}-one-too-many`);
    expect(over.status).toBe(409);
    expect(((await over.json()) as { error: { code: string } }).error.code).toBe("friend_limit");
  });
});
