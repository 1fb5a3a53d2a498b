import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Peer, sleep, startDevServer, token, type DevServer } from "./harness";

let server: DevServer;

beforeAll(async () => {
  server = await startDevServer();
});
afterAll(async () => {
  await server?.stop();
});

async function http(userId: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${await token(userId)}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function onlinePeer(userId: string, realm: string) {
  const peer = await Peer.connect(server.url, userId);
  await peer.request({ type: "SubscribeFriendshipPresenceUpdates" });
  await peer.heartbeat({ realm });
  return peer;
}

describe("friendship lifecycle end to end (real sockets)", () => {
  it("request over the socket, accept over HTTP: both see each other at once", async () => {
    const uma = await onlinePeer("uma", "north");
    const vic = await onlinePeer("vic", "south");
    expect(await uma.request({ type: "SendFriendRequest", userId: "vic", message: "hello" })).toMatchObject({ type: "friendship", state: "outgoing" });
    expect(await vic.next((f) => f.type === "friend_request")).toMatchObject({ userId: "uma", direction: "incoming", message: "hello" });
    expect((await http("vic", "POST", "/v1/friends/requests/uma/accept")).body).toMatchObject({ state: "friends" });
    expect(await uma.next((f) => f.type === "friend_added")).toMatchObject({ userId: "vic", presence: { status: "online", realm: "south" } });
    expect(await vic.next((f) => f.type === "friend_added")).toMatchObject({ userId: "uma", presence: { status: "online", realm: "north" } });
    uma.close();
    vic.close();
  });

  it("a removed friend sees nothing more", async () => {
    const wes = await onlinePeer("wes", "w");
    const xan = await onlinePeer("xan", "x");
    await wes.request({ type: "SendFriendRequest", userId: "xan" });
    await xan.request({ type: "AcceptFriendRequest", userId: "wes" });
    await xan.next((f) => f.type === "friend_added");
    await wes.next((f) => f.type === "friend_added");
    expect(await wes.request({ type: "RemoveFriend", userId: "xan" })).toMatchObject({ state: "none" });
    expect(await xan.next((f) => f.type === "friend_removed")).toEqual({ type: "friend_removed", userId: "wes" });
    await wes.heartbeat({ realm: "secret", status: "busy", position: { x: 9, y: 9, z: 9 } });
    wes.close();
    await sleep(1_000);
    expect(xan.frames.filter((f) => f.type === "presence")).toEqual([]);
    expect((await xan.request({ type: "GetOnlineFriends" })).friends).toEqual([]);
    expect((await http("xan", "GET", "/v1/presence/wes")).status).toBe(404);
    xan.close();
  });

  it("a blocked user sees nothing more, and a request to the blocker looks sent and never completes", async () => {
    const yul = await onlinePeer("yul", "y");
    const zed = await onlinePeer("zed", "z");
    await yul.request({ type: "SendFriendRequest", userId: "zed" });
    await zed.request({ type: "AcceptFriendRequest", userId: "yul" });
    await yul.next((f) => f.type === "friend_added");
    expect(await zed.request({ type: "BlockUser", userId: "yul" })).toMatchObject({ state: "blocked" });
    expect(await yul.next((f) => f.type === "friend_removed")).toEqual({ type: "friend_removed", userId: "zed" });
    await zed.heartbeat({ realm: "hideout", status: "away" });
    // Shadow refusal (docs/FRIENDSHIPS.md): answered as after a removal, kept silently by the blocker.
    const toBlocker = await yul.request({ type: "SendFriendRequest", userId: "zed" });
    expect(toBlocker).toMatchObject({ type: "friendship", userId: "zed", state: "outgoing", pending: false });
    const toNobody = await yul.request({ type: "SendFriendRequest", userId: "nobody-ever" });
    expect(toNobody).toMatchObject({ type: "error", code: "user_not_found" });
    zed.close();
    await sleep(1_000);
    // Nothing from zed reaches yul: no presence, no request, no refusal, no hint of the block.
    expect(
      yul.frames.filter(
        (f) =>
          f.type === "presence" ||
          (f.type === "friend_request" && f.direction === "incoming") ||
          f.type === "blocked" ||
          (f.userId === "zed" && f.type === "friend_request_failed"),
      ),
    ).toEqual([]);
    expect((await http("zed", "GET", "/v1/friends")).body).toMatchObject({ friends: [], incoming: [], blocked: ["yul"] });
    expect((await http("yul", "GET", "/v1/friends")).body).toMatchObject({ friends: [], incoming: [], outgoing: [{ userId: "zed" }] });
    yul.close();
  });
});
