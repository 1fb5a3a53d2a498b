import { describe, expect, it } from "vitest";
import { befriend, Client, token, user, worker } from "./helpers";

describe("hostile frames get an error frame and the socket stays open", () => {
  it.each([
    ["not JSON", "{oops", "bad_json"],
    ["unknown type", JSON.stringify({ type: "Teleport", id: 1 }), "unknown_type"],
    ["wrong field types", JSON.stringify({ type: "PositionHeartbeat", id: 2, position: "here", realm: 5, status: "online" }), "invalid_message"],
    ["huge number", `{"type":"PositionHeartbeat","id":3,"position":{"x":1e400,"y":0,"z":0},"realm":"r","status":"online"}`, "invalid_message"],
    ["over-long realm", JSON.stringify({ type: "PositionHeartbeat", id: 4, position: { x: 0, y: 0, z: 0 }, realm: "r".repeat(65), status: "online" }), "invalid_message"],
    ["frame over the limit", JSON.stringify({ type: "GetOnlineFriends", id: 5, pad: "x".repeat(5_000) }), "frame_too_large"],
  ])("%s → %s", async (_, frame, code) => {
    const a = user();
    const client = await Client.connect(a);
    client.send(frame);
    const error = await client.next((f) => f.type === "error");
    expect(error.code).toBe(code);
    expect(typeof error.message).toBe("string");
    // Still open and still working.
    const reply = await client.request({ type: "GetOnlineFriends" });
    expect(reply.type).toBe("online_friends");
  });

  it("errors echo the request id when it is readable", async () => {
    const client = await Client.connect(user());
    client.send({ type: "PositionHeartbeat", id: "req-9", status: "sleeping" });
    expect(await client.next((f) => f.type === "error")).toMatchObject({ id: "req-9", code: "invalid_message" });
  });

  it("binary frames → binary_not_supported", async () => {
    const client = await Client.connect(user());
    client.ws.send(new Uint8Array([1, 2, 3]));
    expect(await client.next((f) => f.type === "error")).toMatchObject({ code: "binary_not_supported" });
  });

  it("a client that keeps sending garbage is closed with 1008; its friend sees it go offline", async () => {
    const a = user("a");
    const b = user("b");
    await befriend(a, b);
    const watcher = await Client.connect(b);
    await watcher.request({ type: "SubscribeFriendshipPresenceUpdates" });
    const abuser = await Client.connect(a);
    await abuser.heartbeat();
    await watcher.presenceOf(a);
    for (let i = 0; i < 10; i++) abuser.send("garbage");
    await abuser.next(() => false, 2_000).catch(() => undefined);
    expect(abuser.closed?.code).toBe(1008);
    await watcher.presenceOf(a, (p) => p.status === "offline");
  });

  it("a flood beyond the rate limit gets rate_limited errors, and no state is lost", async () => {
    const client = await Client.connect(user());
    await client.heartbeat({ realm: "before" });
    for (let i = 0; i < 30; i++) client.send({ type: "GetOnlineFriends", id: i });
    const limited = await client.next((f) => f.type === "error" && f.code === "rate_limited");
    // The refusal names the request it refused (one of the flood's), and that request got no other answer.
    expect(Number.isInteger(limited.id) && limited.id >= 0 && limited.id < 30).toBe(true);
    expect(client.frames.filter((f) => f.type === "online_friends" && f.id === limited.id)).toEqual([]);
  });
});

describe("per-user limit", () => {
  it("many sockets of one user cannot multiply the rate: the user's bucket runs out first", async () => {
    const a = user();
    const sockets = await Promise.all(["t1", "t2", "t3"].map((device) => Client.connect(a, { device })));
    // 3 × 19 = 57 frames: under each socket's burst (20), well over the user's (40) even with some refill.
    for (const socket of sockets) for (let i = 0; i < 19; i++) socket.send({ type: "GetOnlineFriends", id: i });
    const limited = await Promise.any(sockets.map((s) => s.next((f) => f.type === "error" && f.code === "rate_limited", 3_000)));
    expect(limited.message).toMatch(/per second/);
  });

  it("another user is not affected by someone else's flood", async () => {
    const flooder = await Client.connect(user("flood"));
    for (let i = 0; i < 40; i++) flooder.send({ type: "GetOnlineFriends", id: i });
    await flooder.next((f) => f.type === "error" && f.code === "rate_limited");
    const bystander = await Client.connect(user("calm"));
    expect((await bystander.request({ type: "GetOnlineFriends" })).type).toBe("online_friends");
  });
});

describe("hostile HTTP bodies", () => {
  async function post(body: string, path = "/v1/heartbeat") {
    return worker().fetch(`http://presence${path}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${await token(user())}`, "Content-Type": "application/json" },
      body,
    });
  }

  it("bad JSON → 400 bad_json; wrong shape → 400 invalid_request; too large → 413", async () => {
    let res = await post("{nope");
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("bad_json");
    res = await post(JSON.stringify({ position: { x: "a" }, realm: "r", status: "online" }));
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("invalid_request");
    res = await post(JSON.stringify({ pad: "x".repeat(10_000) }));
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("body_too_large");
  });

  it("admin import validates every pair and refuses self-friendship", async () => {
    const admin = (body: unknown) =>
      worker().fetch("http://presence/v1/admin/friendships:import", {
        method: "POST",
        headers: { Authorization: "Bearer workers-test-admin" },
        body: JSON.stringify(body),
      });
    expect((await admin({ pairs: [] })).status).toBe(400);
    expect((await admin({ pairs: [["a", "bad id!"]] })).status).toBe(400);
    expect((await admin({ pairs: [["same", "same"]] })).status).toBe(400);
  });
});
