/**
 * Large friend lists (issue #16): a socket may follow a subset of its friends
 * (`?friends=` on connect, `friends` in SubscribeFriendshipPresenceUpdates);
 * the user's object watches the union over its sockets, so a friend outside
 * every subset causes neither a push to a socket nor a call to this object;
 * and the online-friends snapshot pages (`limit`, `cursor`) with every online
 * friend listed exactly once across the pages.
 */
import { evictDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { until } from "../shared/util";
import { api, befriend, Client, countCalls, leaseOf, restorePatches, stubOf, user } from "./helpers";

afterEach(restorePatches);

/** `a` and `n` friends, each online (connected, one heartbeat) in realm "lobby". */
async function onlineFriends(n: number): Promise<{ a: string; friends: string[]; sockets: Client[] }> {
  const a = user("a");
  const friends = Array.from({ length: n }, (_, i) => user(`f${i}`));
  for (const f of friends) expect((await befriend(a, f)).status).toBe(200);
  const sockets: Client[] = [];
  for (const f of friends) {
    const c = await Client.connect(f);
    await c.heartbeat();
    sockets.push(c);
  }
  return { a, friends, sockets };
}

const presenceAbout = (userId: string) => (f: any) => f.type === "presence" && f.presence.userId === userId;

describe("a subset subscription", () => {
  it("causes no watch, no push and no call for the friends outside it", async () => {
    const { a, friends, sockets } = await onlineFriends(5);
    const [f0, f1, ...others] = friends as [string, string, ...string[]];
    const watched = countCalls("watch", others);
    const ca = await Client.connect(a, { friends: [f0, f1] });
    const subscribed = await ca.request({ type: "SubscribeFriendshipPresenceUpdates", friends: [f0, f1] });
    expect(subscribed.friends.map((p: any) => p.userId).sort()).toEqual([f0, f1].sort());
    expect(watched.n).toBe(0);

    const pushes = countCalls("receivePresence", [a]);
    for (const c of sockets.slice(2)) await c.heartbeat({ status: "busy", statusText: "not shown" });
    await ca.expectNone((f) => f.type === "presence", 300);
    expect(pushes.n).toBe(0);

    await sockets[0]!.heartbeat({ status: "busy" });
    expect((await ca.presenceOf(f0, (p) => p.status === "busy")).userId).toBe(f0);
    expect(pushes.n).toBe(1);
    for (const c of [ca, ...sockets]) await c.close();
  });

  it("that changes starts delivering a newly named friend at once (in the reply), and a dropped one costs at most one refused call", async () => {
    const { a, friends, sockets } = await onlineFriends(3);
    const [f0, , f2] = friends as [string, string, string];
    await sockets[2]!.heartbeat({ status: "busy", statusText: "deep work" });
    const ca = await Client.connect(a, { friends: [f0] });
    expect((await ca.request({ type: "SubscribeFriendshipPresenceUpdates", friends: [f0] })).friends.map((p: any) => p.userId)).toEqual([f0]);

    const replied = await ca.request({ type: "SubscribeFriendshipPresenceUpdates", friends: [f2] });
    expect(replied.friends).toEqual([expect.objectContaining({ userId: f2, status: "busy", statusText: "deep work" })]);
    await sockets[2]!.heartbeat({ status: "online" });
    expect((await ca.presenceOf(f2, (p) => p.status === "online")).userId).toBe(f2);

    // f0 left the subset: its next change is refused (it drops the lease), the one after costs nothing.
    const pushes = countCalls("receivePresence", [a]);
    await sockets[0]!.heartbeat({ status: "away" });
    await sockets[0]!.heartbeat({ status: "busy" });
    await ca.expectNone(presenceAbout(f0), 300);
    expect(pushes.n).toBe(1);
    for (const c of [ca, ...sockets]) await c.close();
  });

  it("from several sockets: the object watches the union, each socket is pushed its own subset, one socket with all widens it", async () => {
    const { a, friends, sockets } = await onlineFriends(3);
    const [f0, f1, f2] = friends as [string, string, string];
    const s0 = await Client.connect(a, { device: "d0", friends: [f0] });
    const s1 = await Client.connect(a, { device: "d1", friends: [f1] });
    await s0.request({ type: "SubscribeFriendshipPresenceUpdates" });
    await s1.request({ type: "SubscribeFriendshipPresenceUpdates" });
    const watched = countCalls("watch", [f2]);
    const pushes = countCalls("receivePresence", [a]);

    await sockets[0]!.heartbeat({ realm: "r0" });
    await sockets[1]!.heartbeat({ realm: "r1" });
    expect((await s0.presenceOf(f0, (p) => p.realm === "r0")).userId).toBe(f0);
    expect((await s1.presenceOf(f1, (p) => p.realm === "r1")).userId).toBe(f1);
    await sockets[2]!.heartbeat({ realm: "r2" });
    await s0.expectNone((f) => f.type === "presence" && f.presence.userId !== f0, 200);
    await s1.expectNone((f) => f.type === "presence" && f.presence.userId !== f1, 0);
    expect(pushes.n).toBe(2);
    expect(watched.n).toBe(0);

    // A third socket without a subset: every friend is watched again, and it alone is pushed f2.
    const all = await Client.connect(a, { device: "d2" });
    const snapshot = await all.request({ type: "SubscribeFriendshipPresenceUpdates" });
    expect(snapshot.friends.map((p: any) => p.userId).sort()).toEqual([f0, f1, f2].sort());
    expect(watched.n).toBe(1);
    await sockets[2]!.heartbeat({ realm: "r3" });
    expect((await all.presenceOf(f2, (p) => p.realm === "r3")).userId).toBe(f2);
    await s0.expectNone(presenceAbout(f2), 200);
    await s1.expectNone(presenceAbout(f2), 0);

    // It leaves: the union shrinks back; f2's next change is refused, and nothing after it reaches a.
    await all.close();
    await s0.request({ type: "GetOnlineFriends", limit: 1 }); // the close was handled
    const after = countCalls("receivePresence", [a]);
    await sockets[2]!.heartbeat({ realm: "r4" });
    await sockets[2]!.heartbeat({ realm: "r5" });
    expect(after.n).toBeLessThanOrEqual(1);
    await s0.expectNone(presenceAbout(f2), 200);
    for (const c of [s0, s1, ...sockets]) await c.close();
  });

  it("never shows a non-friend it names, and starts showing them once they are friends", async () => {
    const a = user("a");
    const stranger = user("stranger");
    const cs = await Client.connect(stranger);
    await cs.heartbeat({ statusText: "secret" });
    const ca = await Client.connect(a, { friends: [stranger] });
    const subscribed = await ca.request({ type: "SubscribeFriendshipPresenceUpdates", friends: [stranger] });
    expect(subscribed.friends).toEqual([]);
    await cs.heartbeat({ status: "busy" });
    await ca.expectNone((f) => f.type === "presence", 200);
    expect(JSON.stringify(ca.frames)).not.toContain("secret");

    await befriend(a, stranger);
    await ca.next((f) => f.type === "friend_added" && f.userId === stranger);
    await cs.heartbeat({ status: "away" });
    expect((await ca.presenceOf(stranger, (p) => p.status === "away")).userId).toBe(stranger);
    await ca.close();
    await cs.close();
  });

  it("survives hibernation: after a wake the subset is still followed, and the last close releases only its leases", async () => {
    const { a, friends, sockets } = await onlineFriends(3);
    const [f0, ...others] = friends as [string, ...string[]];
    const ca = await Client.connect(a, { friends: [f0] });
    await ca.request({ type: "SubscribeFriendshipPresenceUpdates" });
    await evictDurableObject(stubOf(a), { webSockets: "hibernate" });
    const pushes = countCalls("receivePresence", [a]);
    await sockets[1]!.heartbeat({ status: "busy" });
    await sockets[0]!.heartbeat({ status: "busy" });
    expect((await ca.presenceOf(f0, (p) => p.status === "busy")).userId).toBe(f0);
    expect(pushes.n).toBe(1);

    await evictDurableObject(stubOf(a), { webSockets: "hibernate" });
    expect(await leaseOf(f0, a)).not.toBeNull();
    const unwatched = countCalls("unwatch", friends);
    await ca.close();
    // f0 watches a too: a's final offline push releases a's lease there (no `unwatch` needed), and the
    // others, outside the subset, never held one of a's.
    await until("a's lease on f0 released", async () => (await leaseOf(f0, a)) === null);
    for (const f of others) expect(await leaseOf(f, a)).toBeNull();
    expect(unwatched.n).toBe(0);
    for (const c of sockets) await c.close();
  });

  it("refuses a malformed subset: more than 100 ids, or ids that are not user ids", async () => {
    const a = user("a");
    const ca = await Client.connect(a);
    const tooMany = Array.from({ length: 101 }, (_, i) => `u${i}`);
    expect(await ca.request({ type: "SubscribeFriendshipPresenceUpdates", friends: tooMany })).toMatchObject({ type: "error", code: "invalid_message" });
    expect(await ca.request({ type: "SubscribeFriendshipPresenceUpdates", friends: ["no spaces"] })).toMatchObject({ type: "error", code: "invalid_message" });
    expect(await ca.request({ type: "SubscribeFriendshipPresenceUpdates", friends: "some" })).toMatchObject({ type: "error", code: "invalid_message" });
    expect(await ca.request({ type: "SubscribeFriendshipPresenceUpdates", friends: "all" })).toMatchObject({ type: "subscribed" });
    await ca.close();
    const res = await api(a, "/v1/friends/online?limit=0");
    expect(res).toMatchObject({ status: 400, body: { error: { code: "invalid_request" } } });
  });
});

describe("the largest subset", () => {
  it("fits a socket's attachment next to the device and the published presence (100 ids of 128 characters)", async () => {
    const a = user("a");
    const ids = Array.from({ length: 100 }, (_, i) => `${i}`.padStart(128, "x"));
    const ca = await Client.connect(a, { friends: ids });
    const ack = await ca.heartbeat({ statusText: "ü".repeat(140) });
    expect(ack).toMatchObject({ type: "heartbeat_ack" });
    expect(await ca.request({ type: "SubscribeFriendshipPresenceUpdates" })).toMatchObject({ type: "subscribed", friends: [] });
    await ca.close();
  });
});

describe("the paged snapshot", () => {
  /** Every page from the first, via `fetchPage`, until nextCursor is null. */
  async function allPages(fetchPage: (cursor: string | null) => Promise<{ friends: any[]; nextCursor: string | null }>) {
    const pages: string[][] = [];
    let cursor: string | null = null;
    do {
      const page = await fetchPage(cursor);
      pages.push(page.friends.map((p) => p.userId));
      cursor = page.nextCursor;
    } while (cursor !== null && pages.length < 50);
    return pages;
  }

  async function friendsHalfOnline() {
    const a = user("a");
    const friends = Array.from({ length: 12 }, (_, i) => user(`p${i}`));
    for (const f of friends) expect((await befriend(a, f)).status).toBe(200);
    const online = friends.filter((_, i) => i % 3 !== 1);
    const sockets: Client[] = [];
    for (const f of online) {
      const c = await Client.connect(f);
      await c.heartbeat({ status: sockets.length % 2 ? "away" : "online" });
      sockets.push(c);
    }
    return { a, friends, online: [...online].sort(), sockets };
  }

  it("lists every online friend exactly once, in friend-id order: socket (all, subset) and HTTP-only reader", async () => {
    const { a, friends, online, sockets } = await friendsHalfOnline();

    // HTTP-only reader: each page asks at most `limit` friends' objects.
    const asked = countCalls("presenceFor", friends);
    const perPage: number[] = [];
    const http = await allPages(async (cursor) => {
      const before = asked.n;
      const res = await api(a, `/v1/friends/online?limit=3${cursor ? `&cursor=${cursor}` : ""}`);
      expect(res.status).toBe(200);
      perPage.push(asked.n - before);
      return res.body;
    });
    expect(http.flat()).toEqual(online);
    expect(http.every((p) => p.length <= 3)).toBe(true);
    expect(Math.max(...perPage)).toBeLessThanOrEqual(3);
    expect(asked.n).toBe(friends.length);
    // Without paging: the same list, no nextCursor.
    expect((await api(a, "/v1/friends/online")).body).toEqual({ friends: expect.any(Array) });

    // A live socket that follows every friend: from the cache, no call.
    const ca = await Client.connect(a, { device: "all" });
    await ca.request({ type: "SubscribeFriendshipPresenceUpdates" });
    const cached = countCalls("presenceFor", friends);
    const pages = await allPages((cursor) => ca.request({ type: "GetOnlineFriends", limit: 4, ...(cursor ? { cursor } : {}) }));
    expect(pages.flat()).toEqual(online);
    expect(pages.slice(0, -1).every((p) => p.length === 4)).toBe(true);
    expect(cached.n).toBe(0);
    await ca.close();

    // A live socket that follows a subset: the friends outside it are asked, at most `limit` per page.
    const cs = await Client.connect(a, { device: "subset", friends: online.slice(0, 2) });
    await cs.request({ type: "SubscribeFriendshipPresenceUpdates" });
    const outside = countCalls("presenceFor", friends);
    const subsetPages = await allPages((cursor) => cs.request({ type: "GetOnlineFriends", limit: 5, ...(cursor ? { cursor } : {}) }));
    expect(subsetPages.flat()).toEqual(online);
    expect(outside.n).toBe(friends.length - 2);

    expect(await cs.request({ type: "GetOnlineFriends", cursor: "not a cursor" })).toMatchObject({ type: "error", code: "invalid_message" });
    expect(await cs.request({ type: "GetOnlineFriends", limit: 201 })).toMatchObject({ type: "error", code: "invalid_message" });
    for (const c of [cs, ...sockets]) await c.close();
  });
});
