/**
 * Faults end to end (issue #6): `wrangler dev` restarted mid-run with persisted
 * state while a dozen users with several clients are online, and clients that
 * die abruptly (TCP reset, or silence without any close).
 */
import { afterAll, describe, expect, it } from "vitest";
import { Peer, startDevServer, token, type DevServer } from "./harness";

const TTL_MS = 4_000;
const USERS = Array.from({ length: 12 }, (_, i) => `hr-${i}`);
/** A ring plus chords: every user has 3–4 friends. */
const PAIRS = [...USERS.map((u, i) => [u, USERS[(i + 1) % USERS.length]!]), ...USERS.slice(0, 6).map((u, i) => [u, USERS[i + 6]!]), ["hr-0", "hr-3"], ["hr-4", "hr-9"]];
let server: DevServer | undefined;

afterAll(async () => {
  await server?.stop();
});

async function friendsOf(url: string, userId: string): Promise<string[]> {
  const res = await fetch(`${url}/v1/friends`, { headers: { Authorization: `Bearer ${await token(userId)}` } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { friends: string[] }).friends.slice().sort();
}

async function allFriendships(url: string): Promise<Map<string, string[]>> {
  return new Map(await Promise.all(USERS.map(async (u) => [u, await friendsOf(url, u)] as [string, string[]])));
}

function edgeCount(lists: Map<string, string[]>): number {
  let halfEdges = 0;
  for (const [u, friends] of lists) for (const f of friends) if (lists.get(f)?.includes(u)) halfEdges++;
  return halfEdges / 2;
}

const friendsOfUser = (u: string) => PAIRS.filter(([a, b]) => a === u || b === u).map(([a, b]) => (a === u ? b : a)!);

/** Connects every device of every online user; each subscribes and heartbeats in `realm`. */
async function bringOnline(url: string, online: string[], realm: string): Promise<Map<string, Peer[]>> {
  const peers = new Map<string, Peer[]>();
  for (const u of online) {
    const devices = Number(u.split("-")[1]) % 3 === 0 ? [`${u}-pc`, `${u}-phone`] : [`${u}-pc`];
    const list: Peer[] = [];
    for (const device of devices) {
      const peer = await Peer.connect(url, u, device);
      await peer.request({ type: "SubscribeFriendshipPresenceUpdates" });
      expect((await peer.heartbeat({ realm })).type).toBe("heartbeat_ack");
      list.push(peer);
    }
    peers.set(u, list);
  }
  return peers;
}

/** Every client of every online user learns that each online friend is in `realm` (snapshot, push or lookup). */
async function expectConverged(url: string, peers: Map<string, Peer[]>, realm: string) {
  for (const [u, list] of peers) {
    for (const friend of friendsOfUser(u).filter((f) => peers.has(f))) {
      const res = await fetch(`${url}/v1/presence/${friend}`, { headers: { Authorization: `Bearer ${await token(u)}` } });
      expect(res.status).toBe(200);
      expect(((await res.json()) as any).presence).toMatchObject({ status: "online", realm });
      for (const peer of list) {
        const fromSnapshot = await peer.request({ type: "GetOnlineFriends" });
        expect(
          fromSnapshot.friends.find((p: any) => p.userId === friend),
          `${u} sees ${friend}`,
        ).toMatchObject({ status: "online", realm });
      }
    }
  }
}

describe("restart of wrangler dev mid-run, with persisted state", () => {
  it("every friendship survives; a dozen users' clients reconnect and presence converges; users who do not come back expire", { timeout: 90_000 }, async () => {
    server = await startDevServer({ vars: { PRESENCE_TTL_MS: String(TTL_MS) } });
    const imported = await server.admin("POST", "/friendships:import", { pairs: PAIRS });
    expect(imported.status).toBe(200);
    const before = await allFriendships(server.url);
    expect(edgeCount(before)).toBe(PAIRS.length);

    const online = USERS.slice(0, 10);
    const peers = await bringOnline(server.url, online, "before");
    await expectConverged(server.url, peers, "before");

    // Mid-run: the process goes away under live sockets; clients notice only when their socket dies.
    await server.kill("SIGTERM");
    for (const list of peers.values()) for (const p of list) p.terminate();
    await server.start();

    // Nothing lost: the same friends on every side, edge for edge.
    const after = await allFriendships(server.url);
    expect(after).toEqual(before);
    expect(edgeCount(after)).toBe(PAIRS.length);

    // Eight of the ten come back with the same device ids; two never do.
    const back = online.slice(0, 8);
    const gone = online.slice(8);
    const peers2 = await bringOnline(server.url, back, "after");
    await expectConverged(server.url, peers2, "after");

    // The two that never came back are shown offline to their friends once their TTL passes (no ghost).
    const watcherOfGone = back.find((u) => friendsOfUser(u).some((f) => gone.includes(f)))!;
    const goneFriend = friendsOfUser(watcherOfGone).find((f) => gone.includes(f))!;
    const deadline = Date.now() + TTL_MS + 10_000;
    for (;;) {
      const res = await fetch(`${server.url}/v1/presence/${goneFriend}`, { headers: { Authorization: `Bearer ${await token(watcherOfGone)}` } });
      const presence = ((await res.json()) as any).presence;
      if (presence.status === "offline") break;
      expect(Date.now(), `${goneFriend} still ${presence.status} for ${watcherOfGone}`).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 250));
    }
    const list = await peers2.get(watcherOfGone)![0]!.request({ type: "GetOnlineFriends" });
    expect(list.friends.map((p: any) => p.userId)).not.toContain(goneFriend);

    for (const l of peers2.values()) for (const p of l) p.close();
  });
});

describe("abrupt client death", () => {
  it("a client killed without a close frame (TCP reset) and one that goes silent are both offline within the TTL", { timeout: 60_000 }, async () => {
    server ??= await startDevServer({ vars: { PRESENCE_TTL_MS: String(TTL_MS) } });
    await server.admin("POST", "/friendships:import", {
      pairs: [
        ["hd-watch", "hd-killed"],
        ["hd-watch", "hd-silent"],
        ["hd-watch", "hd-two"],
      ],
    });
    const watch = await Peer.connect(server.url, "hd-watch");
    await watch.request({ type: "SubscribeFriendshipPresenceUpdates" });
    const killed = await Peer.connect(server.url, "hd-killed");
    const silent = await Peer.connect(server.url, "hd-silent");
    const twoPc = await Peer.connect(server.url, "hd-two", "pc");
    const twoPhone = await Peer.connect(server.url, "hd-two", "phone");
    for (const p of [killed, silent, twoPc, twoPhone]) await p.heartbeat({ realm: "alive" });
    for (const u of ["hd-killed", "hd-silent"]) await watch.presenceOf(u, (p) => p.status === "online");
    await watch.presenceOf("hd-two", (p) => p.devices.length === 2);

    killed.terminate();
    silent.freeze();
    twoPhone.freeze(); // one of two devices dies; the other keeps pinging
    await watch.presenceOf("hd-killed", (p) => p.status === "offline", TTL_MS + 8_000);
    await watch.presenceOf("hd-silent", (p) => p.status === "offline", TTL_MS + 8_000);
    const two = await watch.presenceOf("hd-two", (p) => p.devices.length === 1, TTL_MS + 8_000);
    expect(two).toMatchObject({ status: "online", devices: [{ deviceId: "pc" }] });
    expect(twoPc.closed).toBeNull();
    watch.close();
    twoPc.close();
  });
});
