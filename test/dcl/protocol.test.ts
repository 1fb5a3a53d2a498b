// The @dcl/rpc wire protocol of the pure server, driven by the REAL @dcl/rpc client
// (createRpcClient, loadService(SocialServiceDefinition)); the socket state is stored
// as JSON between every step and a new endpoint instance handles each event.
import { describe, expect, it } from "vitest";
import { createRpcClient } from "@dcl/rpc";
import { CreatePort, RemoteError, RpcMessageHeader, RpcMessageTypes, StreamMessage } from "@dcl/rpc/dist/protocol";
import { streamAckMessage } from "@dcl/rpc/dist/protocol/helpers";
import { ConnectivityStatus, FriendConnectivityUpdate, SocialServiceDefinition } from "@dcl/protocol/out-js/decentraland/social_service/v2/social_service_v2.gen";
import { AUTH_IN_PROGRESS_ERROR, handshakeFrame, handshakeVerified, NOT_AUTHENTICATED_ERROR, startHandshake } from "../../src/dcl/handshake";
import { initialRpcState, PROCEDURES, push, receive, serverReadyFrame, type RpcState } from "../../src/dcl/rpc";
import type { DclSocketState } from "../../src/dcl/endpoint";
import { authHeaders, authHeadersAt, collect, connect, createIdentity, openSocket, settle, until, World } from "./harness";

const createPortFrame = (n: number) => CreatePort.encode({ messageIdentifier: ((RpcMessageTypes.RpcMessageTypes_CREATE_PORT & 0xf) << 27) | n, portName: "x" }).finish();

const stateOf = (attachment: string | null) => (JSON.parse(attachment!) as DclSocketState).rpc;

describe("handshake", () => {
  it("a valid chain opens the RPC session; the user id is the signer's lowercase address", async () => {
    const world = new World();
    const alice = await createIdentity();
    const client = await connect(world, alice);
    expect(client.server.address).toBe(alice.address);
    const page = await client.service.getFriends({});
    expect(page).toEqual({ friends: [], paginationData: { total: 0, page: 1 } });
    client.close();
  });

  it("accepts the auth headers as a binary frame too (what @dcl/rpc transports send)", async () => {
    const world = new World();
    const alice = await createIdentity();
    const client = await connect(world, alice, { binaryAuth: true });
    expect(await client.service.getBlockingStatus({})).toEqual({ blockedUsers: [], blockedByUsers: [] });
  });

  it("closes with 3003 on a tampered chain, an expired key or a stale timestamp", async () => {
    const world = new World();
    const alice = await createIdentity();
    const tampered = authHeaders(alice);
    tampered["x-identity-timestamp"] = "1";
    const expired = authHeaders(await createIdentity(-1));
    for (const headers of [tampered, expired, "not json {", JSON.stringify({ hello: "world" })]) {
      const socket = openSocket(world);
      socket.sendText(typeof headers === "string" ? headers : JSON.stringify(headers));
      expect(await socket.closed).toEqual({ code: 3003, reason: "Unauthorized" });
    }
    const stale = openSocket(world);
    stale.sendText(JSON.stringify(authHeadersAt(alice, world.clock - 6 * 60_000)));
    expect((await stale.closed).code).toBe(3003);
  });

  it("closes with 3004 when no auth arrives in time", async () => {
    const world = new World();
    const socket = openSocket(world, { timeoutMs: 30_000 });
    world.clock += 29_999;
    socket.server.tick();
    await settle();
    expect(socket.server.closed).toBeNull();
    world.clock += 1;
    socket.server.tick();
    expect(await socket.closed).toEqual({ code: 3004, reason: "Authorization timeout" });
  });

  it("frames sent before auth get an error and reach nothing; the socket stays open for the auth", async () => {
    const world = new World();
    const alice = await createIdentity();
    const socket = openSocket(world);
    socket.transport.sendMessage(createPortFrame(1));
    await until(() => socket.texts.length === 1, "an error frame");
    expect(JSON.parse(socket.texts[0]!)).toEqual(JSON.parse(NOT_AUTHENTICATED_ERROR));
    expect(socket.server.closed).toBeNull();
    expect(socket.server.attachment).toBeNull();
    expect(world.user(alice.address).calls).toEqual([]);
    // Then a normal session on the same socket.
    socket.sendText(JSON.stringify(authHeaders(alice)));
    const client = await createRpcClient(socket.transport);
    const port = await client.createPort("late");
    expect(port.portId).toBe(1);
  });

  it("RPC frames that arrive while the chain is verified are held and forwarded in order; a second auth frame gets an error", async () => {
    const alice = await createIdentity();
    let state = startHandshake(0);
    let step = handshakeFrame(state, JSON.stringify(authHeaders(alice)), 1);
    expect(step.verify).toBeDefined();
    state = step.state;
    const frames = [createPortFrame(1), createPortFrame(2)];
    for (const frame of frames) state = handshakeFrame(state, frame, 2).state;
    step = handshakeFrame(state, JSON.stringify(authHeaders(alice)), 3);
    expect(step.send).toEqual([AUTH_IN_PROGRESS_ERROR]);
    step = handshakeVerified(step.state, { ok: true, address: alice.address, metadata: {} });
    expect(step.state).toEqual({ phase: "ready", address: alice.address });
    expect(step.forward).toEqual(frames.map((f) => new Uint8Array(f)));
  });
});

describe("RPC protocol", () => {
  it("lists every SocialService procedure; the ones not served here answer a clean RemoteError and the socket goes on", async () => {
    const world = new World();
    const client = await connect(world, await createIdentity());
    await expect(client.service.getSocialSettings({})).rejects.toThrow(/RemoteError: GetSocialSettings is not implemented here/);
    await expect(client.service.startPrivateVoiceChat({ callee: { address: `0x${"1".repeat(40)}` } })).rejects.toThrow(/not implemented here/);
    const community = collect(client.service.subscribeToCommunityMemberConnectivityUpdates({}));
    await until(() => community.done, "the unimplemented stream to end");
    expect(String(community.error)).toMatch(/SubscribeToCommunityMemberConnectivityUpdates is not implemented here/);
    // Still usable.
    expect(await client.service.getFriends({})).toMatchObject({ friends: [] });
    expect(client.server.closed).toBeNull();
    expect(PROCEDURES.map((p) => p.name)).toEqual(Object.values(SocialServiceDefinition.methods).map((m) => m.name));
  });

  it("refuses an unknown module and an unknown port like the stock server", async () => {
    const world = new World();
    const socket = openSocket(world);
    socket.sendText(JSON.stringify(authHeaders(await createIdentity())));
    const client = await createRpcClient(socket.transport);
    const port = await client.createPort("p");
    await expect(port.loadModule("NoSuchService")).rejects.toThrow(/Module NoSuchService is not available/);
    const module = await port.loadModule("SocialService");
    expect(Object.keys(module as object)).toContain("SubscribeToFriendConnectivityUpdates");
  });

  it("a frame that is not @dcl/rpc closes the socket with 1002", async () => {
    const world = new World();
    const client = await connect(world, await createIdentity());
    await client.service.getFriends({});
    client.transport.sendMessage(new Uint8Array([0xff, 0xff, 0xff]));
    expect((await client.closed).code).toBe(1002);
  });

  it("a stream the client ends is gone from the stored state; so are a destroyed port's", async () => {
    const world = new World();
    const alice = await createIdentity();
    const client = await connect(world, alice);
    const friendship = collect(client.service.subscribeToFriendshipUpdates({}));
    const blocks = collect(client.service.subscribeToBlockUpdates({}));
    await until(() => stateOf(client.server.attachment).streams.length === 2, "two streams");
    await friendship.stop();
    await until(() => stateOf(client.server.attachment).streams.length === 1, "the stream to be dropped");
    expect(stateOf(client.server.attachment).streams[0]!.kind).toBe("block");
    void blocks;
  });

  it("pages GetFriends like the real service (limit, offset, total, page)", async () => {
    const world = new World();
    const alice = await createIdentity();
    const friends = Array.from({ length: 5 }, (_, i) => `0x${String(i + 1).repeat(40)}`);
    for (const f of friends) world.befriend(alice.address, f);
    world.befriend(alice.address, "jwt-user-without-address"); // not a DCL id: not listed to DCL clients
    const client = await connect(world, alice);
    const page = await client.service.getFriends({ pagination: { limit: 2, offset: 2 } });
    expect(page.friends.map((f) => f.address)).toEqual(friends.slice(2, 4));
    expect(page.friends[0]).toEqual({ address: friends[2], name: "", hasClaimedName: false, profilePictureUrl: "", nameColor: undefined });
    expect(page.paginationData).toEqual({ total: 5, page: 2 });
    expect((await client.service.getFriends({ pagination: { limit: 0, offset: -3 } })).friends).toHaveLength(5);
  });
});

const { ONLINE, AWAY } = ConnectivityStatus;

describe("pure state machine", () => {
  const context = { self: `0x${"a".repeat(40)}`, profile: () => undefined };
  const decode = (frame: Uint8Array) => {
    const id = RpcMessageHeader.decode(frame).messageIdentifier;
    return { type: (id >> 27) & 0xf, n: id & 0x07ffffff };
  };

  it("SERVER_READY is message type 11, number 0", () => {
    expect(decode(serverReadyFrame())).toEqual({ type: RpcMessageTypes.RpcMessageTypes_SERVER_READY, n: 0 });
  });

  it("sends the snapshot from memory in address order, skips friends with a newer live update, then the live queue; one element per ack", () => {
    let state: RpcState = { ...initialRpcState(), ports: [{ id: 1, name: "p", loaded: true }] };
    state.streams.push({ n: 7, port: 1, kind: "connectivity", seq: 0, credit: false, snapshot: { after: "" }, queue: [] });
    const [a, b, c] = ["a", "b", "c"].map((x) => `0x${x.repeat(40)}`) as [string, string, string];
    // Live updates while the snapshot is read wait in the queue, one per friend, never an older seq.
    let step = push(
      state,
      [
        { k: "c", a: b, s: ONLINE, q: 5 },
        { k: "c", a: b, s: AWAY, q: 6 },
        { k: "c", a: b, s: ONLINE, q: 4 },
      ],
      context,
    );
    expect(step.send).toEqual([]);
    expect(step.state.streams[0]!.queue).toEqual([{ k: "c", a: b, s: AWAY, q: 6 }]);
    state = step.state;
    const snapshot = [
      { k: "c" as const, a, s: ONLINE, q: 1 },
      { k: "c" as const, a: b, s: ONLINE, q: 5 },
      { k: "c" as const, a: c, s: AWAY, q: 2 },
    ];
    const withSnapshot = { ...context, snapshot: (n: number) => (n === 7 ? snapshot : undefined) };
    // Not in memory (after hibernation, say): an ack asks for it to be read.
    expect(receive(state, encodeAck(7, 0), context).calls).toEqual([{ type: "snapshot", n: 7 }]);
    const sent: [string, number][] = [];
    for (let seq = 0; seq < 4; seq++) {
      step = receive(state, encodeAck(7, seq), withSnapshot);
      state = step.state;
      for (const frame of step.send) {
        expect(decode(frame)).toEqual({ type: RpcMessageTypes.RpcMessageTypes_STREAM_MESSAGE, n: 7 });
        const update = FriendConnectivityUpdate.decode(StreamMessage.decode(frame).payload);
        sent.push([update.friend!.address, update.status]);
      }
    }
    expect(sent).toEqual([
      [a, ONLINE],
      [c, AWAY],
      [b, AWAY],
    ]);
    expect(state.streams[0]).toMatchObject({ seq: 3, snapshot: null, queue: [] });
    expect(receive(state, encodeAck(7, 1), withSnapshot).send).toEqual([]); // a stale ack changes nothing
  });

  it("past the state budget, the longest queue's stream ends with a RemoteError", () => {
    const state: RpcState = { ...initialRpcState(), ports: [{ id: 1, name: "p", loaded: true }] };
    state.streams.push({ n: 3, port: 1, kind: "friendship", seq: 0, credit: false, snapshot: null, queue: [] });
    state.streams.push({ n: 5, port: 1, kind: "connectivity", seq: 0, credit: false, snapshot: null, queue: [] });
    const requests = Array.from({ length: 60 }, (_, i) => ({ k: "f" as const, u: "request" as const, a: `0x${i.toString(16).padStart(40, "0")}`, t: 1, m: "x".repeat(200) }));
    const step = push(state, requests, context);
    expect(step.state.streams.map((s) => s.n)).toEqual([5]);
    const error = RemoteError.decode(step.send.at(-1)!);
    expect(error.errorMessage).toMatch(/subscribe again/);
    expect((error.messageIdentifier >> 27) & 0xf).toBe(RpcMessageTypes.RpcMessageTypes_REMOTE_ERROR_RESPONSE);
    expect(new TextEncoder().encode(JSON.stringify(step.state)).length).toBeLessThan(12_288);
  });
});

/** What @dcl/rpc's client sends when its consumer asks for the next element. */
function encodeAck(n: number, seq: number): Uint8Array {
  return streamAckMessage(n, seq, 1);
}
