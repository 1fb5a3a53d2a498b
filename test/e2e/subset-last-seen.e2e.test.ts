/**
 * Issue #16 against `wrangler dev` with real sockets: a socket that follows a
 * subset of its friends gets pushes only for them, and the other friends'
 * changes cost no call to its object (the meter, GET /v1/admin/stats); the
 * subset changes and widens back to every friend; and "last seen" hidden from
 * friends (nobody / friends I choose) over sockets and HTTP, kept across a
 * restart of the server.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { user } from "../shared/util";
import { Peer, sleep, startDevServer, token, type DevServer } from "./harness";

let server: DevServer;
const peers: Peer[] = [];

beforeAll(async () => {
  server = await startDevServer({ vars: { PRESENCE_TTL_MS: "20000", HEARTBEAT_INTERVAL_MS: "5000", POSITION_COALESCE_MS: "50" } });
});
afterAll(async () => {
  for (const peer of peers) peer.terminate();
  await server?.stop();
});

async function connect(userId: string, query: Record<string, string> = {}): Promise<Peer> {
  const peer = await Peer.connect(server.url, userId, "d1", "desktop", query);
  peers.push(peer);
  return peer;
}

/** Calls into user objects so far, by entry point (durable/meter.ts). */
async function calls(): Promise<Record<string, number>> {
  const res = await server.admin("GET", "/stats", undefined);
  expect(res.status).toBe(200);
  const { byEvent } = (await res.json()) as { byEvent: Record<string, { events: number }> };
  return Object.fromEntries(Object.entries(byEvent).map(([kind, { events }]) => [kind, events]));
}
const delta = (before: Record<string, number>, after: Record<string, number>, kind: string) => (after[kind] ?? 0) - (before[kind] ?? 0);

async function get(userId: string, path: string) {
  const res = await fetch(`${server.url}${path}`, { headers: { Authorization: `Bearer ${await token(userId)}` } });
  return { status: res.status, body: (await res.json()) as any };
}

const about = (userId: string) => (f: any) => f.type === "presence" && f.presence.userId === userId;

describe("subset subscriptions (wrangler dev)", () => {
  it("pushes come only for the friends followed; the others' changes call nothing; the subset changes and widens", async () => {
    const reader = user("reader");
    const friends = Array.from({ length: 6 }, (_, i) => user(`f${i}`));
    for (const f of friends) await server.befriend(reader, f);
    const friendPeers = await Promise.all(friends.map((f) => connect(f)));
    await Promise.all(friendPeers.map((p) => p.heartbeat({ realm: "lobby" })));

    const [f0, f1, f2] = friends as [string, string, string];
    const shown = [f0, f1];
    // The subset on the connect URL: the object watches only these two from the start.
    const r = await connect(reader, { friends: shown.join(",") });
    const subscribed = await r.request({ type: "SubscribeFriendshipPresenceUpdates", friends: shown });
    expect(subscribed.type).toBe("subscribed");
    expect(subscribed.friends.map((p: any) => p.userId).sort()).toEqual([...shown].sort());
    await sleep(1_000); // let the connect's fan-in settle before counting

    const before = await calls();
    await Promise.all(friendPeers.map((p, i) => p.heartbeat({ realm: "lobby", status: "busy", statusText: `busy ${i}` })));
    await r.presenceOf(f0, (p) => p.status === "busy");
    await r.presenceOf(f1, (p) => p.status === "busy");
    await sleep(1_500);
    const after = await calls();
    // Four friends outside the subset changed: not one frame and not one call reached the reader.
    for (const f of friends.slice(2)) expect(r.frames.filter(about(f)), f).toEqual([]);
    expect(delta(before, after, "rpc:receivePresence")).toBe(2);
    expect(delta(before, after, "rpc:watch")).toBe(0);

    // A new subset: f2 comes with its current presence in the reply, f0 goes quiet.
    const changed = await r.request({ type: "SubscribeFriendshipPresenceUpdates", friends: [f1, f2] });
    expect(changed.friends.map((p: any) => [p.userId, p.status]).sort()).toEqual([
      [f1, "busy"],
      [f2, "busy"],
    ]);
    await friendPeers[2]!.heartbeat({ realm: "lobby", status: "away" });
    await friendPeers[0]!.heartbeat({ realm: "lobby", status: "away" });
    await r.presenceOf(f2, (p) => p.status === "away");
    await sleep(1_000);
    expect(r.frames.filter(about(f0))).toEqual([]);

    // Back to every friend: the snapshot lists all six, and every one is pushed again.
    const all = await r.request({ type: "SubscribeFriendshipPresenceUpdates", friends: "all" });
    expect(all.friends.map((p: any) => p.userId).sort()).toEqual([...friends].sort());
    await friendPeers[5]!.heartbeat({ realm: "lobby", status: "online", statusText: null });
    expect((await r.presenceOf(friends[5]!, (p) => p.status === "online")).statusText).toBeNull();
    r.close();
  });
});

describe("hide last seen (wrangler dev)", () => {
  it("nobody and friends-I-choose hold over sockets and HTTP, online and offline, and survive a restart", async () => {
    const [carol, dave, erin] = [user("carol"), user("dave"), user("erin")];
    await server.befriend(carol, dave);
    await server.befriend(carol, erin);
    const d = await connect(dave);
    const e = await connect(erin);
    await d.request({ type: "SubscribeFriendshipPresenceUpdates" });
    await e.request({ type: "SubscribeFriendshipPresenceUpdates" });

    const c = await connect(carol);
    const chosen = await c.request({ type: "SetPrivacy", lastSeen: "chosen" });
    expect(chosen).toMatchObject({ type: "friends_list", lastSeen: "chosen", lastSeenShownTo: [] });
    expect((await c.request({ type: "HidePresence", userId: dave, lastSeen: true })).lastSeenShownTo).toEqual([dave]);
    const ack = await c.heartbeat({ realm: "lobby" });
    expect(ack.presence.lastActiveAt).toBeGreaterThan(0); // carol always sees her own
    expect((await d.presenceOf(carol, (p) => p.status === "online")).lastActiveAt).toBeGreaterThan(0);
    expect((await e.presenceOf(carol, (p) => p.status === "online")).lastActiveAt).toBeNull();

    c.close();
    const seen = (await d.presenceOf(carol, (p) => p.status === "offline")).lastActiveAt;
    expect(seen).toBeGreaterThan(0);
    expect((await e.presenceOf(carol, (p) => p.status === "offline")).lastActiveAt).toBeNull();
    expect((await get(erin, `/v1/presence/${carol}`)).body.presence).toMatchObject({ status: "offline", lastActiveAt: null });
    expect((await get(dave, `/v1/presence/${carol}`)).body.presence).toMatchObject({ status: "offline", lastActiveAt: seen });

    // Nobody, set over HTTP; then the server restarts: the setting is on disk with everything else.
    const res = await fetch(`${server.url}/v1/privacy`, {
      method: "PUT",
      headers: { Authorization: `Bearer ${await token(carol)}`, "Content-Type": "application/json" },
      body: JSON.stringify({ lastSeen: "none" }),
    });
    expect(res.status).toBe(200);
    d.close();
    e.close();
    await server.kill("SIGTERM");
    await server.start();
    expect((await get(dave, `/v1/presence/${carol}`)).body.presence).toMatchObject({ status: "offline", lastActiveAt: null });
    expect((await get(carol, "/v1/friends")).body).toMatchObject({ lastSeen: "none" });
    expect((await get(carol, `/v1/presence/${carol}`)).body.presence.lastActiveAt).toBe(seen);

    // Back online after the restart: still nobody, in the snapshot and in pushes.
    const d2 = await connect(dave);
    await d2.request({ type: "SubscribeFriendshipPresenceUpdates" });
    const c2 = await connect(carol);
    await c2.heartbeat({ realm: "lobby" });
    expect((await d2.presenceOf(carol, (p) => p.status === "online")).lastActiveAt).toBeNull();
    const snapshot = await d2.request({ type: "GetOnlineFriends" });
    expect(snapshot.friends.find((p: any) => p.userId === carol)).toMatchObject({ status: "online", lastActiveAt: null });
    c2.close();
    d2.close();
  });
});
