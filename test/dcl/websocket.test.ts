// The same pure server behind a real WebSocket (a `ws` server on loopback), driven by
// @dcl/rpc's own WebSocketTransport, as a Decentraland client connects: the auth headers
// as the first frame, then createRpcClient / createPort / loadService.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import type { AddressInfo } from "node:net";
import { createRpcClient } from "@dcl/rpc";
import { WebSocketTransport } from "@dcl/rpc/dist/transports/WebSocket";
import { loadService } from "@dcl/rpc/dist/codegen";
import { ConnectivityStatus, SocialServiceDefinition } from "@dcl/protocol/out-js/decentraland/social_service/v2/social_service_v2.gen";
import { authHeaders, collect, createIdentity, ServerSocket, until, World, type Identity } from "./harness";

const world = new World();
const accepted: ServerSocket[] = [];
let server: WebSocketServer;
let url: string;

beforeAll(async () => {
  server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  server.on("connection", (ws) => {
    const socket = new ServerSocket(
      world,
      (frame) => ws.send(frame),
      (code, reason) => ws.close(code, reason),
    );
    accepted.push(socket);
    ws.on("message", (data: Buffer, isBinary: boolean) => socket.fromClient(isBinary ? new Uint8Array(data) : data.toString("utf8")));
    ws.on("close", () => socket.close(1000, "client closed"));
  });
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/dcl`;
});

afterAll(async () => {
  for (const client of server.clients) client.terminate();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function dial(identity: Identity) {
  const socket = new WebSocket(url);
  const closed = new Promise<number>((resolve) => socket.once("close", (code) => resolve(code)));
  const transport = WebSocketTransport(socket as never);
  await new Promise<void>((resolve) => socket.once("open", () => resolve()));
  socket.send(JSON.stringify(authHeaders(identity)));
  const client = await createRpcClient(transport);
  const port = await client.createPort("social_service");
  return { socket, closed, service: loadService(port, SocialServiceDefinition) };
}

describe("over a real WebSocket with @dcl/rpc's WebSocketTransport", () => {
  it("two users befriend each other and see each other ONLINE, then OFFLINE when one leaves", async () => {
    const [alice, bob] = await Promise.all([createIdentity(), createIdentity()]);
    const a = await dial(alice);
    const b = await dial(bob);
    const aUpdates = collect(a.service.subscribeToFriendshipUpdates({}));
    const bUpdates = collect(b.service.subscribeToFriendshipUpdates({}));
    const aSees = collect(a.service.subscribeToFriendConnectivityUpdates({}));
    const streams = (address: string) =>
      accepted.filter((s) => s.address === address && s.attachment).flatMap((s) => JSON.parse(s.attachment!).rpc.streams.map((x: { kind: string }) => x.kind));
    await until(() => streams(alice.address).length === 2 && streams(bob.address).length === 1, "the subscriptions to be registered");
    await a.service.upsertFriendship({ action: { $case: "request", request: { user: { address: bob.address }, message: "hello" } } });
    await until(() => bUpdates.items.length === 1, "bob's request");
    expect(bUpdates.items[0]!.update).toMatchObject({ $case: "request", request: { friend: { address: alice.address }, message: "hello" } });
    await b.service.upsertFriendship({ action: { $case: "accept", accept: { user: { address: alice.address } } } });
    await until(() => aUpdates.items.length === 1, "alice's accept");
    await until(() => aSees.items.some((u) => u.friend?.address === bob.address && u.status === ConnectivityStatus.ONLINE), "bob ONLINE");
    b.socket.close();
    expect(await b.closed).toBe(1005);
    await until(() => aSees.items.at(-1)?.status === ConnectivityStatus.OFFLINE, "bob OFFLINE");
    a.socket.close();
  });

  it("a bad chain is closed with 3003, as the real service does", async () => {
    const expired = await createIdentity(-1);
    const socket = new WebSocket(url);
    await new Promise<void>((resolve) => socket.once("open", () => resolve()));
    const closed = new Promise<number>((resolve) => socket.once("close", (code) => resolve(code)));
    socket.send(JSON.stringify(authHeaders(expired)));
    expect(await closed).toBe(3003);
  });
});
