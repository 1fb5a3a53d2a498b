import { afterAll, describe, expect, it } from "vitest";
import { Peer, startDevServer, token, type DevServer } from "./harness";

const TTL_MS = 4_000;
let server: DevServer | undefined;

afterAll(async () => {
  await server?.stop();
});

/** The server the first test started (the second one continues on its storage). */
function running(): DevServer {
  if (!server) throw new Error("the first test did not start the server");
  return server;
}

async function friendsOf(url: string, userId: string): Promise<string[]> {
  const res = await fetch(`${url}/v1/friends`, { headers: { Authorization: `Bearer ${await token(userId)}` } });
  return ((await res.json()) as { friends: string[] }).friends.sort();
}

describe("state survives a restart of wrangler dev (persisted on disk)", () => {
  it("friendships are all still there; clients reconnect and presence converges", async () => {
    server = await startDevServer({ vars: { PRESENCE_TTL_MS: String(TTL_MS) } });
    const pairs = Array.from({ length: 30 }, (_, i) => [`r-user-${i % 6}`, `r-user-${6 + (i % 5)}-${i}`]);
    const imported = await server.admin("POST", "/friendships:import", { pairs });
    expect(imported.status).toBe(200);
    expect((await server.admin("PUT", "/friendships", { a: "kim", b: "lee" })).status).toBe(200);
    const before = await Promise.all(["kim", "lee", ...Array.from({ length: 6 }, (_, i) => `r-user-${i}`)].map((u) => friendsOf(server!.url, u)));

    const lee = await Peer.connect(server.url, "lee");
    await lee.request({ type: "SubscribeFriendshipPresenceUpdates" });
    const kim = await Peer.connect(server.url, "kim", "kim-laptop");
    await kim.heartbeat({ realm: "before-restart" });
    await lee.presenceOf("kim");

    await server.kill("SIGTERM");
    kim.terminate();
    lee.terminate();
    await server.start();

    // Nothing lost: every friendship is still there on both sides.
    const after = await Promise.all(["kim", "lee", ...Array.from({ length: 6 }, (_, i) => `r-user-${i}`)].map((u) => friendsOf(server!.url, u)));
    expect(after).toEqual(before);

    // Clients reconnect with the same device ids and presence converges.
    const lee2 = await Peer.connect(server.url, "lee");
    // Stopping workerd may or may not deliver the sockets' close first, so kim is
    // either in the snapshot (device row live until its TTL) or not; both converge.
    const snapshot = await lee2.request({ type: "SubscribeFriendshipPresenceUpdates" });
    expect(snapshot.friends.every((f: { userId: string }) => f.userId === "kim")).toBe(true);
    const kim2 = await Peer.connect(server.url, "kim", "kim-laptop");
    await kim2.heartbeat({ realm: "after-restart" });
    expect((await lee2.presenceOf("kim", (p) => p.realm === "after-restart")).status).toBe("online");
    kim2.close();
    await lee2.presenceOf("kim", (p) => p.status === "offline");
    lee2.close();
  });

  it("a device that never comes back after the restart expires by the persisted alarm (no ghost)", async () => {
    const server = running();
    await server.admin("PUT", "/friendships", { a: "max", b: "ned" });
    const max = await Peer.connect(server.url, "max", "max-tab");
    await max.heartbeat();
    await server.kill("SIGTERM");
    max.terminate();
    await server.start();
    const ned = await Peer.connect(server.url, "ned");
    const snapshot = await ned.request({ type: "SubscribeFriendshipPresenceUpdates" });
    if (snapshot.friends.length > 0) await ned.presenceOf("max", (p) => p.status === "offline", TTL_MS + 5_000);
    const online = await ned.request({ type: "GetOnlineFriends" });
    expect(online.friends).toEqual([]);
    ned.close();
  });
});
