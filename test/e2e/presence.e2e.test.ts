import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Peer, refusedUpgrade, sleep, startDevServer, token, type DevServer } from "./harness";

const TTL_MS = 4_000;
let server: DevServer;

beforeAll(async () => {
  server = await startDevServer({ vars: { PRESENCE_TTL_MS: String(TTL_MS), HEARTBEAT_INTERVAL_MS: "1000" } });
});
afterAll(async () => {
  await server?.stop();
});

describe("edge-presence end to end (wrangler dev, real sockets)", () => {
  it("bad tokens never get a socket", async () => {
    const url = `${server.url.replace("http", "ws")}/v1/connect`;
    expect(await refusedUpgrade(url)).toMatchObject({ status: 401, body: { error: { code: "missing_token" } } });
    const forged = await token("alice", { secret: "not-the-secret-not-the-secret-xx" });
    expect(await refusedUpgrade(url, { Authorization: `Bearer ${forged}` })).toMatchObject({ status: 401, body: { error: { code: "invalid_signature" } } });
    const expired = await token("alice", { expiresIn: Math.floor(Date.now() / 1000) - 10 });
    expect(await refusedUpgrade(url, { Authorization: `Bearer ${expired}` })).toMatchObject({ status: 401, body: { error: { code: "token_expired" } } });
  });

  it("friends see each other come online, move, change status and leave; a non-friend sees nothing", async () => {
    expect((await server.admin("PUT", "/friendships", { a: "alice", b: "bob" })).status).toBe(200);
    const bob = await Peer.connect(server.url, "bob", "bob-phone", "mobile");
    const carol = await Peer.connect(server.url, "carol");
    expect((await bob.request({ type: "SubscribeFriendshipPresenceUpdates" })).friends).toEqual([]);
    await carol.request({ type: "SubscribeFriendshipPresenceUpdates" });

    const alice = await Peer.connect(server.url, "alice", "alice-pc", "desktop");
    const ack = await alice.heartbeat({ realm: "forest", position: { x: 10, y: 0, z: -3 } });
    expect(ack.presence.status).toBe("online");

    const online = await bob.presenceOf("alice");
    expect(online).toMatchObject({ status: "online", realm: "forest", position: { x: 10, y: 0, z: -3 }, devices: [{ deviceId: "alice-pc", kind: "desktop" }] });

    await alice.heartbeat({ realm: "forest", status: "away", statusText: "afk" });
    const away = await bob.presenceOf("alice", (p) => p.status === "away");
    expect(away.statusText).toBe("afk");
    expect(away.seq).toBeGreaterThan(online.seq);

    // Bad frame → error frame, socket stays usable.
    alice.send("{not json");
    expect(await alice.next((f) => f.type === "error")).toMatchObject({ code: "bad_json" });
    expect((await alice.request({ type: "GetOnlineFriends" })).type).toBe("online_friends");

    // Clean close of the last device → offline at once.
    alice.close();
    const offline = await bob.presenceOf("alice", (p) => p.status === "offline", 3_000);
    expect(offline.seq).toBeGreaterThan(away.seq);

    // Carol (not a friend) got nothing, and cannot look alice up.
    expect(carol.frames.filter((f) => f.type === "presence")).toEqual([]);
    const lookup = await fetch(`${server.url}/v1/presence/alice`, { headers: { Authorization: `Bearer ${await token("carol")}` } });
    expect(lookup.status).toBe(404);
    bob.close();
    carol.close();
  });

  it("a client that vanishes without a close frame goes offline after the TTL (alarm)", async () => {
    expect((await server.admin("PUT", "/friendships", { a: "dave", b: "erin" })).status).toBe(200);
    const erin = await Peer.connect(server.url, "erin");
    await erin.request({ type: "SubscribeFriendshipPresenceUpdates" });
    const dave = await Peer.connect(server.url, "dave");
    await dave.heartbeat();
    await erin.presenceOf("dave", (p) => p.status === "online");
    dave.freeze();
    // Still online well inside the TTL: no flapping.
    await sleep(TTL_MS / 2);
    expect(erin.frames.filter((f) => f.type === "presence")).toEqual([]);
    const offline = await erin.presenceOf("dave", (p) => p.status === "offline", TTL_MS + 5_000);
    expect(offline.devices).toEqual([]);
    erin.close();
    dave.terminate();
  });

  it("keep-alive pings alone keep a quiet client online past the TTL", async () => {
    expect((await server.admin("PUT", "/friendships", { a: "fay", b: "gus" })).status).toBe(200);
    const gus = await Peer.connect(server.url, "gus");
    await gus.request({ type: "SubscribeFriendshipPresenceUpdates" });
    const fay = await Peer.connect(server.url, "fay");
    await fay.heartbeat();
    await gus.presenceOf("fay");
    fay.stopKeepAlive();
    fay.wantPongs = true;
    for (let waited = 0; waited < TTL_MS * 1.5; waited += 1_000) {
      fay.send("ping");
      expect(await fay.next((f) => f === "pong")).toBe("pong");
      await sleep(1_000);
    }
    expect(gus.frames.filter((f) => f.type === "presence" && f.presence.status === "offline")).toEqual([]);
    fay.terminate();
    // Abrupt death (TCP reset, no close frame) → offline within the TTL.
    await gus.presenceOf("fay", (p) => p.status === "offline", TTL_MS + 5_000);
    gus.close();
  });

  it("multi-device: closing one device keeps the user online on the other", async () => {
    expect((await server.admin("PUT", "/friendships", { a: "hal", b: "ivy" })).status).toBe(200);
    const ivy = await Peer.connect(server.url, "ivy");
    await ivy.request({ type: "SubscribeFriendshipPresenceUpdates" });
    const phone = await Peer.connect(server.url, "hal", "phone", "mobile");
    const desk = await Peer.connect(server.url, "hal", "desk", "desktop");
    await phone.heartbeat({ status: "away" });
    await desk.heartbeat({ status: "online" });
    await ivy.presenceOf("hal", (p) => p.devices.length === 2 && p.status === "online");
    desk.close();
    const after = await ivy.presenceOf("hal", (p) => p.devices.length === 1);
    expect(after).toMatchObject({ status: "away", devices: [{ deviceId: "phone", kind: "mobile" }] });
    phone.close();
    await ivy.presenceOf("hal", (p) => p.status === "offline");
    ivy.close();
  });
});
