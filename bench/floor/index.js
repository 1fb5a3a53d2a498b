/**
 * The floor (bench/hot-path.mjs): one Durable Object per user holding its
 * hibernating WebSocket, as the real worker does, and handlers that do as
 * little as possible. The first character of a frame picks what the handler
 * does with the rest:
 *   E  nothing (an empty webSocketMessage);
 *   A  sends a fixed ack of the size of a real heartbeat_ack;
 *   J  JSON.parse, then a JSON.stringify'd ack of that size;
 *   F  JSON.parse, one RPC per friend (each sends the text on its sockets), then the ack;
 *   G  as F, with the friends' stubs kept in memory instead of made per call;
 *   H  as F, with the presence passed as an object and stringified by each receiver (as edge does);
 *   I  as F, with each receiver parsing the text (to keep the presence) before sending it on;
 *   S  a short ack (the end of a run of E frames).
 * Friends come with the connect (`?friends=a,b`) and live in memory and the attachment.
 */
import { DurableObject } from "cloudflare:workers";

const PRESENCE = {
  userId: "u00000",
  status: "online",
  realm: "bench",
  position: { x: 1, y: 1, z: 2 },
  statusText: null,
  devices: [{ deviceId: "d-u00000", kind: "desktop", status: "online", lastActiveAt: 1_700_000_000_000 }],
  lastActiveAt: 1_700_000_000_000,
  seq: 12,
};
const ACK = JSON.stringify({ type: "heartbeat_ack", id: 1, presence: PRESENCE, nextHeartbeatMs: 30_000 });

export class Floor extends DurableObject {
  friends = null;

  async fetch(request) {
    const url = new URL(request.url);
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server);
    const friends = (url.searchParams.get("friends") ?? "").split(",").filter(Boolean);
    server.serializeAttachment({ friends });
    this.friends = friends;
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(ws, frame) {
    switch (frame[0]) {
      case "E":
        return;
      case "S":
        return ws.send("S");
      case "A":
        return ws.send(ACK);
      case "J": {
        const m = JSON.parse(frame.slice(1));
        return ws.send(JSON.stringify({ type: "heartbeat_ack", id: m.id, presence: { ...PRESENCE, status: m.status }, nextHeartbeatMs: 30_000 }));
      }
      case "F":
        return this.fanOut(ws, frame, (f, _presence, text) => this.stub(f).deliver(text));
      case "G":
        // As F, with each friend's stub kept for the object's life (not made anew per call).
        return this.fanOut(ws, frame, (f, _presence, text) => this.keptStub(f).deliver(text));
      case "H":
        // As F, with the presence passed as an object (structured clone) and stringified by each receiver, as edge does.
        return this.fanOut(ws, frame, (f, presence) => this.stub(f).deliverObject(presence));
      case "I":
        // As F, with each receiver parsing the text it is sent (to keep the presence) before sending it on.
        return this.fanOut(ws, frame, (f, _presence, text) => this.stub(f).deliverParsed(text));
    }
  }

  /** JSON.parse of the frame, one call per friend (given the presence and its push's text, made once), then the ack. */
  async fanOut(ws, frame, call) {
    const m = JSON.parse(frame.slice(1));
    this.friends ??= ws.deserializeAttachment().friends;
    const presence = { ...PRESENCE, status: m.status };
    const text = JSON.stringify({ type: "presence", presence });
    await Promise.all(this.friends.map((f) => call(f, presence, text)));
    return ws.send(JSON.stringify({ type: "heartbeat_ack", id: m.id, presence, nextHeartbeatMs: 30_000 }));
  }

  stub(friend) {
    return this.env.FLOOR.get(this.env.FLOOR.idFromName(friend));
  }

  keptStub(friend) {
    this.stubs ??= new Map();
    let stub = this.stubs.get(friend);
    if (!stub) {
      stub = this.env.FLOOR.getByName(friend);
      this.stubs.set(friend, stub);
    }
    return stub;
  }

  deliverObject(presence) {
    const text = JSON.stringify({ type: "presence", presence });
    for (const ws of this.ctx.getWebSockets()) ws.send(text);
  }

  deliverParsed(text) {
    this.last = JSON.parse(text).presence;
    for (const ws of this.ctx.getWebSockets()) ws.send(text);
  }

  deliver(text) {
    for (const ws of this.ctx.getWebSockets()) ws.send(text);
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/health") return new Response("ok");
    const user = url.searchParams.get("user");
    if (url.pathname !== "/connect" || !user) return new Response("not found", { status: 404 });
    return env.FLOOR.get(env.FLOOR.idFromName(user)).fetch(request);
  },
};
