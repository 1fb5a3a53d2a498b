// The SDK against a real `wrangler dev`: what each user sees through the client's state and events.
import { describe, expect, it } from "vitest";
import type { Presence, PresenceClient } from "../../client/src/index.js";
import { until, user } from "../shared/util";
import { sdkServer } from "./harness";

const dev = sdkServer({ PRESENCE_TTL_MS: "6000", HEARTBEAT_INTERVAL_MS: "2000", POSITION_COALESCE_MS: "50" });
const { open } = dev;

const seen = (client: PresenceClient, userId: string) => client.friend(userId);

describe("SDK against wrangler dev", () => {
  it("shows a friend come online, move, change status, and go offline; requests are answered by id", async () => {
    const [alice, bob] = [user("alice"), user("bob")];
    await dev.server.befriend(alice, bob);
    const a = open(alice);
    await a.ready();
    const onlineEvents: Presence[] = [];
    a.on("online", (p) => onlineEvents.push(p));

    const b = open(bob);
    await b.ready();
    await until("alice sees bob online", () => seen(a, bob)?.status === "online");
    expect(onlineEvents.map((p) => p.userId)).toEqual([bob]);

    await b.heartbeat({ position: { x: 10, y: 0, z: -4 }, realm: "forest" });
    await until("alice sees bob in the forest", () => seen(a, bob)?.realm === "forest");
    expect(seen(a, bob)?.position).toEqual({ x: 10, y: 0, z: -4 });

    const self = await b.setStatus("busy", "in a meeting");
    expect(self).toMatchObject({ userId: bob, status: "busy", statusText: "in a meeting" });
    await until("alice sees bob busy", () => seen(a, bob)?.status === "busy");
    expect(seen(a, bob)?.statusText).toBe("in a meeting");

    // Several requests in flight at once each get their own reply.
    const [online, presence, mine] = await Promise.all([a.getOnlineFriends(), a.getPresence(bob), a.getPresence(alice)]);
    expect(online.map((p) => p.userId)).toEqual([bob]);
    expect(presence).toMatchObject({ userId: bob, status: "busy" });
    expect(mine.userId).toBe(alice);
    await expect(a.getPresence(user("stranger"))).rejects.toMatchObject({ code: "not_found" });

    const offline = new Promise<Presence>((resolve) => a.once("offline", resolve));
    b.close();
    expect(await offline).toMatchObject({ userId: bob, status: "offline" });
    expect(seen(a, bob)?.status).toBe("offline");
    expect(b.state).toBe("closed");
  });

  it("lists offline friends with last seen, and reports friends added and removed live", async () => {
    const [alice, carol, dave] = [user("alice"), user("carol"), user("dave")];
    await dev.server.befriend(alice, carol);
    const c = open(carol);
    await c.ready();
    c.close();
    const a = open(alice);
    await a.ready();
    const friends = await a.listFriends();
    expect(friends).toEqual([expect.objectContaining({ userId: carol, status: "offline", lastActiveAt: expect.any(Number) })]);

    const added = new Promise<Presence>((resolve) => a.once("friendAdded", resolve));
    const d = open(dave);
    await d.ready();
    await dev.server.befriend(alice, dave);
    expect(await added).toMatchObject({ userId: dave, status: "online" });
    expect(seen(a, dave)?.status).toBe("online");

    const removed = new Promise<string>((resolve) => a.once("friendRemoved", resolve));
    await dev.server.unfriend(alice, dave);
    expect(await removed).toBe(dave);
    expect(seen(a, dave)).toBeUndefined();
  });

  it("stops when the same device connects elsewhere (4001), unless told to take over", async () => {
    const alice = user("alice");
    const first = open(alice, { device: "shared" });
    await first.ready();
    const errors: string[] = [];
    first.on("error", (e) => errors.push(e.code));
    const second = open(alice, { device: "shared", onReplaced: "reconnect" });
    await second.ready();
    await until("first client closed", () => first.state === "closed");
    expect(errors).toContain("replaced");
    expect(second.state).toBe("open");
  });

  it("reconnects after the server dies and resumes without losing what changed meanwhile", async () => {
    const [alice, bob, carol] = [user("alice"), user("bob"), user("carol")];
    await dev.server.befriend(alice, bob);
    await dev.server.befriend(alice, carol);
    const b = open(bob);
    const c = open(carol);
    await Promise.all([b.ready(), c.ready()]);
    await Promise.all([b.heartbeat({ position: { x: 1, y: 1, z: 1 }, realm: "lobby" }), c.heartbeat({ position: { x: 5, y: 5, z: 5 }, realm: "lobby" })]);

    // Alice's reconnects wait at getToken (called on every connect) until the test lets them through.
    let tokenCalls = 0;
    let letAliceBackIn!: () => void;
    const gate = new Promise<void>((resolve) => (letAliceBackIn = resolve));
    const a = open(alice, {
      getToken: async () => {
        if (++tokenCalls > 1) await gate;
        return dev.server.token(alice);
      },
    });
    const states: string[] = [];
    a.on("connection", (e) => states.push(e.state));
    const updates: Presence[] = [];
    a.on("update", ({ presence }) => updates.push(presence));
    await a.ready();
    // Position-only changes are coalesced by the server (POSITION_COALESCE_MS): wait for the settled view.
    await until("alice sees bob and carol", () => seen(a, bob)?.position?.y === 1 && seen(a, carol)?.position?.x === 5);
    expect(seen(a, bob)).toMatchObject({ status: "online", position: { x: 1, y: 1, z: 1 } });

    await dev.server.kill();
    await until("alice is reconnecting", () => a.state === "reconnecting" && tokenCalls > 1);
    await dev.server.start();

    // While alice is away: bob moves and goes busy, carol leaves.
    await until("bob reconnected", () => b.state === "open");
    await until("carol reconnected", () => c.state === "open");
    await b.heartbeat({ position: { x: 7, y: 8, z: 9 }, realm: "forest", status: "busy" });
    c.close();
    const aliceToken = await dev.server.token(alice);
    await until("the server has carol offline", async () => {
      const res = await fetch(`${dev.server.url}/v1/presence/${carol}`, { headers: { Authorization: `Bearer ${aliceToken}` } });
      return ((await res.json()) as { presence: Presence }).presence.status === "offline";
    });
    // Alice has not seen any of it yet.
    expect(seen(a, bob)).toMatchObject({ realm: "lobby", status: "online" });
    expect(seen(a, carol)?.status).toBe("online");

    letAliceBackIn();
    await until("alice is open again", () => a.state === "open");
    expect(seen(a, bob)).toMatchObject({ status: "busy", realm: "forest", position: { x: 7, y: 8, z: 9 } });
    expect(seen(a, carol)?.status).toBe("offline");
    expect(states).toEqual(expect.arrayContaining(["open", "reconnecting"]));
    expect(states.at(-1)).toBe("open");
    // Every update alice applied moved forward in seq, per friend.
    for (const id of [bob, carol]) {
      const seqs = updates.filter((p) => p.userId === id && p.status !== "offline").map((p) => p.seq);
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    }
  });
});

describe("SDK friendship operations against wrangler dev", () => {
  it("request → the other side's friendRequest event → accept → both see each other; block ends it", async () => {
    const [erin, finn] = [user("erin"), user("finn")];
    const e = open(erin);
    const f = open(finn);
    await Promise.all([e.ready(), f.ready()]);
    const requested = new Promise((resolve) => f.once("friendRequest", resolve));
    expect(await e.sendFriendRequest(finn, "join my party")).toEqual({ userId: finn, state: "outgoing", pending: false });
    expect(await requested).toEqual({ userId: erin, direction: "incoming", message: "join my party" });
    expect((await f.getFriendList()).incoming).toEqual([expect.objectContaining({ userId: erin, message: "join my party" })]);

    const added = new Promise<Presence>((resolve) => e.once("friendAdded", resolve));
    expect(await f.acceptFriendRequest(erin)).toMatchObject({ state: "friends" });
    expect(await added).toMatchObject({ userId: finn, status: "online" });
    await until("finn sees erin", () => seen(f, erin)?.status === "online");

    const removed = new Promise<string>((resolve) => e.once("friendRemoved", resolve));
    expect(await f.block(erin)).toMatchObject({ state: "blocked" });
    expect(await removed).toBe(finn);
    // Shadow refusal: the request looks sent (as after a removal) and never completes.
    expect(await e.sendFriendRequest(finn)).toMatchObject({ state: "outgoing" });
    expect((await f.getFriendList()).incoming).toEqual([]);
    expect((await f.getFriendList()).blocked).toEqual([erin]);
  });

  it("hiding from a friend and sharing no location are reflected in what the friend's client sees", async () => {
    const [gia, hal] = [user("gia"), user("hal")];
    await dev.server.befriend(gia, hal);
    const g = open(gia);
    const h = open(hal);
    await Promise.all([g.ready(), h.ready()]);
    await until("hal sees gia in the lobby", () => seen(h, gia)?.realm === "lobby");
    expect((await g.setShareLocation("none")).shareLocation).toBe("none");
    await until("hal no longer sees gia's realm", () => seen(h, gia)?.realm === null);
    expect(seen(h, gia)?.status).toBe("online");
    expect((await g.hidePresenceFrom(hal)).hiddenFrom).toEqual([hal]);
    await until("hal sees gia offline", () => seen(h, gia)?.status === "offline");
  });
});
