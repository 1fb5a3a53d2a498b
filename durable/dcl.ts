/**
 * Decentraland sockets (docs/DECENTRALAND.md): the object's end of a `/dcl`
 * connection, proxied by the worker after it verified the auth chain
 * (src/dcl/worker.ts). Each socket is hibernating like the others and is a
 * live device of kind `dcl`; its @dcl/rpc state lives in its attachment and is
 * driven by src/dcl/endpoint.ts. This part only wires that endpoint to the
 * object: what the object broadcasts becomes stream elements, the RPCs reach
 * the same code paths as the JSON protocol, and idle clients are probed
 * before their TTL (their ack is their sign of life).
 */
import { RpcMessageHeader, RpcMessageTypes } from "@dcl/rpc/dist/protocol";
import type { DclBackend, DclEvent } from "../src/dcl/backend";
import { DclEndpoint, type DclSocketIO, type DclSocketState } from "../src/dcl/endpoint";
import type { StreamUpdate } from "../src/dcl/mapping";
import { remoteErrorFrame } from "../src/dcl/rpc";
import { transitionEvents } from "../src/presence/friendship";
import { offlinePresence } from "../src/presence/protocol";
import type { Host } from "./host";
import type { Operations } from "./operations";
import type { OwnPresence } from "./presence";
import type { SocketAttachment, Sockets, SocketTap } from "./sockets";

/** The tag of every DCL socket (besides its device id). */
export const DCL_TAG = "dcl";

interface DclAttachment extends SocketAttachment {
  dcl: DclSocketState | null;
  /** The last sign of life this socket was probed at (one probe per silence). */
  probedAt?: number;
}

/** What this part borrows from the object: the same operations the JSON protocol uses. */
export type DclHooks = Pick<Operations, "friendList" | "onlineFriends" | "friendship" | "refresh">;

/** Frames that are calls (they draw from the socket's rate bucket); acks and stream closes never do. */
function isCall(frame: ArrayBuffer): { n: number } | null {
  try {
    const id = RpcMessageHeader.decode(new Uint8Array(frame)).messageIdentifier;
    return ((id >> 27) & 0xf) === RpcMessageTypes.RpcMessageTypes_REQUEST ? { n: id & 0x07ffffff } : null;
  } catch {
    return null;
  }
}

export class DclSockets {
  /** Per socket, in memory: connectivity snapshots being sent (read again after hibernation). */
  private readonly snapshots = new WeakMap<WebSocket, Map<number, StreamUpdate[] | "reading">>();

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly host: Host,
    private readonly sockets: Sockets,
    private readonly presence: OwnPresence,
    private readonly hooks: DclHooks,
  ) {
    sockets.listen((event) => this.tapped(event));
  }

  /** GetMutualFriends of `requester`'s client, asked of this user's object: which of `candidates` are this user's friends (none for a user this one blocked). */
  friendsAmong(requester: string, candidates: string[]): string[] {
    const { store, config } = this.host;
    if (store.get("registered") !== true || store.edge(requester).mine === "blocked") return [];
    return candidates.slice(0, config.maxFriends).filter((c) => store.isFriend(c));
  }

  /** Whether `ws` is a DCL socket. */
  owns(ws: WebSocket): boolean {
    return !this.sockets.isJsonSocket(ws) && this.attachment(ws) !== null;
  }

  /** The worker hands over a verified connection: accept it, as a live device shown online at once. */
  async accept(request: Request, now: number): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return Response.json({ error: { code: "upgrade_required", message: "connect with a WebSocket upgrade" } }, { status: 426 });
    }
    const deviceId = `dcl-${crypto.randomUUID()}`;
    const refusal = this.presence.deviceLimit(deviceId, now);
    if (refusal) return Response.json({ error: { code: refusal.code, message: refusal.message } }, { status: 429 });
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server, [deviceId, DCL_TAG]);
    server.serializeAttachment({ deviceId, kind: "dcl", subscribed: false, dcl: null } satisfies DclAttachment);
    DclEndpoint.open(this.io(server), this.host.userId);
    // Decentraland clients send no heartbeat: the connection is the sign of life. Realm and position
    // stay null (the aggregate takes the location from a JSON device when there is one).
    this.host.store.heartbeatDevice({ deviceId, kind: "dcl", transport: "ws", status: "online", statusText: null, realm: null, position: null }, now);
    await this.hooks.refresh(now);
    return new Response(null, { status: 101, webSocket: client });
  }

  /** One frame from a DCL socket. */
  async message(ws: WebSocket, frame: string | ArrayBuffer, now: number): Promise<void> {
    const attachment = this.attachment(ws);
    if (!attachment) return;
    this.host.store.touchDeviceDurably(attachment.deviceId, now, now - this.host.config.ttlMs / 2);
    const bytes: ArrayBuffer = typeof frame === "string" ? (new TextEncoder().encode(frame).buffer as ArrayBuffer) : frame;
    const call = isCall(bytes);
    if (call && !this.sockets.admit(ws, now)) {
      this.sockets.sendRaw(ws, remoteErrorFrame(call.n, `rate limited: at most ${this.host.config.ratePerSecond} calls per second per socket`));
      return;
    }
    await this.endpoint(ws).onFrame(bytes);
  }

  /**
   * Before the TTL: a DCL socket silent for half of it gets one element on its
   * connectivity stream (a friend's current status: the client already knows
   * it), whose ack is its sign of life. A socket without such a stream, or a
   * user without friends, is kept while open (nothing can be asked of it).
   */
  probe(now: number): void {
    const sockets = this.ctx.getWebSockets(DCL_TAG);
    if (sockets.length === 0) return;
    const { store, config } = this.host;
    const devices = new Map(store.devices().map((d) => [d.deviceId, d]));
    for (const ws of sockets) {
      const attachment = this.attachment(ws);
      const device = attachment && devices.get(attachment.deviceId);
      if (!attachment?.dcl || !device) continue;
      const silent = now - device.lastSeenAt;
      if (silent < config.ttlMs / 2 || silent >= config.ttlMs || attachment.probedAt === device.lastSeenAt) continue;
      ws.serializeAttachment({ ...attachment, probedAt: device.lastSeenAt } satisfies DclAttachment);
      const friend = store.friendIds()[0];
      const hasStream = attachment.dcl.rpc.streams.some((s) => s.kind === "connectivity");
      if (!hasStream || friend === undefined) {
        store.touchDeviceDurably(attachment.deviceId, now, now - config.ttlMs / 2);
        continue;
      }
      const presence = store.cached(friend) ?? offlinePresence(friend);
      void this.endpoint(ws)
        .onEvents([{ type: "presence", presence }])
        .catch((error) => console.error("dcl: probe failed", error));
    }
  }

  /** When the next DCL socket is due for a probe. */
  nextWakeUp(): number | null {
    const sockets = this.ctx.getWebSockets(DCL_TAG);
    if (sockets.length === 0) return null;
    const devices = new Map(this.host.store.devices().map((d) => [d.deviceId, d]));
    let next: number | null = null;
    for (const ws of sockets) {
      const attachment = this.attachment(ws);
      const device = attachment && devices.get(attachment.deviceId);
      if (!device || attachment.probedAt === device.lastSeenAt) continue;
      const at = device.lastSeenAt + Math.floor(this.host.config.ttlMs / 2);
      if (next === null || at < next) next = at;
    }
    return next;
  }

  // ─── events ────────────────────────────────────────────────────────────────

  private tapped(event: SocketTap): void {
    const events = this.eventsOf(event);
    if (events.length === 0) return;
    for (const ws of this.ctx.getWebSockets(DCL_TAG)) {
      void this.endpoint(ws)
        .onEvents(events)
        .catch((error) => console.error("dcl: push failed", error));
    }
  }

  /** What the object's broadcasts and edge changes mean for DCL streams (src/dcl/mapping.ts decides what is sent). */
  private eventsOf(event: SocketTap): DclEvent[] {
    if (event.type === "broadcast") {
      const message = event.message;
      if (message.type === "presence") return [{ type: "presence", presence: message.presence }];
      // The friend's presence once a friendship took effect (the `accept` itself comes with the edge change).
      if (message.type === "friend_added") return [{ type: "friendship", userId: message.userId, change: "friend_added", cause: "local", presence: message.presence }];
      return [];
    }
    const { userId, cause } = event;
    return transitionEvents(event.previous, event.next, cause).map((e): DclEvent => {
      switch (e.type) {
        case "friend_request": {
          if (e.direction === "outgoing") return { type: "friendship", userId, change: "friend_request_outgoing", cause };
          const row = this.host.store.edges().find((r) => r.userId === userId);
          return { type: "friendship", userId, change: "friend_request_incoming", cause, message: row?.message ?? null, since: row?.since };
        }
        case "friend_request_cancelled":
        case "friend_request_rejected":
          return { type: "friendship", userId, change: `${e.type}_${e.direction}`, cause };
        default:
          return { type: "friendship", userId, change: e.type, cause };
      }
    });
  }

  // ─── the endpoint ──────────────────────────────────────────────────────────

  private attachment(ws: WebSocket): DclAttachment | null {
    const attachment = ws.deserializeAttachment() as DclAttachment | null;
    // The `dcl` field, not the kind, marks these sockets (only this part writes it).
    return attachment && "dcl" in attachment ? attachment : null;
  }

  private io(ws: WebSocket): DclSocketIO {
    return {
      load: () => (ws.readyState === WebSocket.OPEN ? (this.attachment(ws)?.dcl ?? null) : null),
      save: (dcl) => {
        const attachment = this.attachment(ws);
        if (attachment) ws.serializeAttachment({ ...attachment, dcl } satisfies DclAttachment);
      },
      send: (frame) => this.sockets.sendRaw(ws, frame),
      close: (code, reason) => this.sockets.close(ws, code, reason),
    };
  }

  private endpoint(ws: WebSocket): DclEndpoint {
    let snapshots = this.snapshots.get(ws);
    if (!snapshots) {
      snapshots = new Map();
      this.snapshots.set(ws, snapshots);
    }
    return new DclEndpoint(this.io(ws), this.backend, { snapshots });
  }

  private readonly backend: DclBackend = {
    friendList: async () => this.hooks.friendList(),
    onlineFriends: () => this.hooks.onlineFriends(),
    mutualFriends: (other) => this.host.call(other, (stub) => stub.friendsAmong(this.host.userId, this.host.store.friendIds())),
    friendship: async (other, op, message) => {
      const result = await this.hooks.friendship(other, op, message);
      return result.ok ? { ok: true, ...result.value } : result;
    },
  };
}
