/**
 * JSON sockets (docs/PROTOCOL.md): the object's end of a `/v1/connect`
 * WebSocket. The handshake (admission, the device appears, `welcome`, then
 * the fan-in after the 101) and every client frame: parsed and bounded,
 * rate-limited, and answered with the same operations as the HTTP API, which
 * durable/operations.ts holds. The Decentraland counterpart is
 * durable/dcl.ts; the socket plumbing both use is durable/sockets.ts.
 */
import { announcedHeartbeatMs } from "../src/presence/config";
import { errorFrame } from "../src/presence/protocol";
import { deviceKindSchema, FRIENDSHIP_OPS, friendsParamSchema, positionInterestSchema, parseClientFrame, type ClientMessage } from "../src/presence/schema";
import { pageRequest } from "../src/presence/subset";
import { PING_FRAME, PROTOCOL_VERSION } from "../src/protocol";
import type { CallBudget } from "./budget";
import type { Host } from "./host";
import type { Operations } from "./operations";
import type { OwnPresence } from "./presence";
import type { Sockets } from "./sockets";
import type { Watching } from "./watching";

/** Frames whose handling calls other users' objects: refused while the call budget is spent. */
const CALLING_FRAMES = new Set<ClientMessage["type"]>(["GetPresence", ...(Object.keys(FRIENDSHIP_OPS) as Array<keyof typeof FRIENDSHIP_OPS>), "SetPrivacy", "HidePresence"]);

export class JsonSockets {
  constructor(
    private readonly ctx: DurableObjectState,
    private readonly host: Host,
    private readonly sockets: Sockets,
    private readonly presence: OwnPresence,
    private readonly watching: Watching,
    private readonly budget: CallBudget,
    private readonly ops: Operations,
  ) {}

  /** A `/v1/connect` upgrade from the worker (which authenticated the user). */
  accept(request: Request): Response {
    const { config, store } = this.host;
    const deviceId = request.headers.get("x-presence-device") ?? crypto.randomUUID();
    const protocol = request.headers.get("x-presence-protocol");
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return Response.json({ error: { code: "upgrade_required", message: "connect with a WebSocket upgrade" } }, { status: 426 });
    }
    // The worker validated the kind; checked again rather than trusted, since the header is only a string.
    const kind = deviceKindSchema.safeParse(request.headers.get("x-presence-kind") ?? "web");
    if (!kind.success) return Response.json({ error: { code: "invalid_request", message: "kind is desktop, mobile or web" } }, { status: 400 });
    const now = Date.now();
    // A connect of a user not yet live watches every friend (and its close releases them): it needs the call budget.
    const limited = this.budget.admitHttp(now, !this.watching.live);
    if (limited) {
      const headers = { "Retry-After": String(Math.max(1, Math.ceil((limited.retryAfterMs ?? 1000) / 1000))) };
      return Response.json({ error: { code: limited.code, message: limited.message } }, { status: 429, headers });
    }
    const refusal = this.presence.deviceLimit(deviceId, now);
    if (refusal) return Response.json({ error: { code: refusal.code, message: refusal.message } }, { status: 429 });

    const positions = positionInterestSchema.safeParse(new URL(request.url).searchParams.get("positions") ?? undefined);
    const friends = friendsParamSchema.optional().safeParse(new URL(request.url).searchParams.get("friends") ?? undefined);
    const { client, server } = this.sockets.accept(deviceId, kind.data, positions.success ? positions.data : undefined, friends.success ? friends.data : undefined);
    // A reconnecting device keeps its last heartbeat (no flapping); a new one is "connected, not shown".
    store.connectDevice(deviceId, kind.data, now);
    this.sockets.saveDevice(server, store.device(deviceId));
    this.sockets.send(server, {
      type: "welcome",
      userId: this.host.userId,
      deviceId,
      protocol: PROTOCOL_VERSION,
      heartbeatIntervalMs: announcedHeartbeatMs(config),
      ttlMs: config.ttlMs,
      maxFrameBytes: config.maxFrameBytes,
      ping: PING_FRAME,
    });
    // Accept first (issue #11): the 101 goes back now; watching the friends (the fan-in) runs after it,
    // and a Subscribe/GetOnlineFriends that arrives meanwhile waits for it (Watching.onlineFriends).
    this.ctx.waitUntil(this.ops.refresh(now).catch((error) => console.error("connect refresh failed", error)));
    const headers = new Headers();
    if (protocol) headers.set("Sec-WebSocket-Protocol", protocol);
    return new Response(null, { status: 101, webSocket: client, headers });
  }

  /** One frame from a client: a sign of life of its device, then the request it carries. */
  async message(ws: WebSocket, frame: string | ArrayBuffer, now: number): Promise<void> {
    const { deviceId } = this.sockets.attachment(ws);
    this.host.store.touchDevice(deviceId, now);
    try {
      await this.request(ws, frame, now);
    } finally {
      // The device's latest state (sign of life, heartbeat) stays with its socket: no row written.
      this.sockets.saveDevice(ws, this.host.store.device(deviceId));
    }
  }

  private async request(ws: WebSocket, frame: string | ArrayBuffer, now: number): Promise<void> {
    const { maxFrameBytes, ratePerSecond } = this.host.config;
    // Parsed first (bounded by the frame limit) so that even a rate_limited error names its request.
    const parsed = parseClientFrame(frame, maxFrameBytes);
    if (!this.sockets.admit(ws, now)) {
      const id = parsed.ok ? parsed.message.id : parsed.id;
      return this.sockets.reject(ws, now, errorFrame("rate_limited", `at most ${ratePerSecond} messages per second per socket`, id));
    }
    if (!parsed.ok) return this.sockets.reject(ws, now, errorFrame(parsed.code, parsed.message, parsed.id));
    try {
      await this.handle(ws, parsed.message, now);
    } catch (error) {
      console.error("message failed", error);
      this.sockets.send(ws, errorFrame("internal", "the request failed; it is safe to retry", parsed.message.id));
    }
  }

  /** One valid client message: the same operations as the HTTP API, answered on the socket. */
  private async handle(ws: WebSocket, message: ClientMessage, now: number): Promise<void> {
    const reply = this.sockets.send.bind(this.sockets, ws);
    // A snapshot asks the friends the cache does not hold (outside the subsets, or every friend when not live).
    if (CALLING_FRAMES.has(message.type) || (message.type === "GetOnlineFriends" && this.watching.snapshotAsks())) {
      const limited = this.budget.refusal(now);
      if (limited) return this.sockets.reject(ws, now, errorFrame(limited.code, limited.message, message.id));
    }
    switch (message.type) {
      case "PositionHeartbeat": {
        const { deviceId, kind } = this.sockets.attachment(ws);
        const presence = await this.ops.heartbeat(deviceId, kind, "ws", message, now);
        return reply({ type: "heartbeat_ack", id: message.id, presence, nextHeartbeatMs: announcedHeartbeatMs(this.host.config) });
      }
      case "GetOnlineFriends": {
        const page = pageRequest(message);
        if (!page) return reply({ type: "online_friends", id: message.id, friends: await this.watching.onlineFriends() });
        return reply({ type: "online_friends", id: message.id, ...(await this.watching.onlineFriendsPage(page)) });
      }
      case "SubscribeFriendshipPresenceUpdates": {
        this.sockets.setSubscribed(ws, true, message.positions, message.friends);
        await this.watching.interestChanged(now);
        // A socket following a subset gets the snapshot of its subset (from the cache: no call).
        const subset = this.sockets.attachment(ws).friends;
        return reply({ type: "subscribed", id: message.id, friends: subset ? await this.watching.onlineAmong(subset) : await this.watching.onlineFriends() });
      }
      case "UnsubscribeFriendshipPresenceUpdates":
        this.sockets.setSubscribed(ws, false);
        await this.watching.interestChanged(now);
        return reply({ type: "unsubscribed", id: message.id });
      case "GetPresence": {
        const found = await this.ops.lookup(message.userId);
        return reply(found.ok ? { type: "presence_result", id: message.id, presence: found.value } : errorFrame(found.code, found.message, message.id));
      }
      case "SendFriendRequest":
      case "CancelFriendRequest":
      case "AcceptFriendRequest":
      case "RejectFriendRequest":
      case "RemoveFriend":
      case "BlockUser":
      case "UnblockUser": {
        const text = message.type === "SendFriendRequest" ? (message.message ?? null) : null;
        const result = await this.ops.friendship(message.userId, FRIENDSHIP_OPS[message.type], text);
        return reply(result.ok ? { type: "friendship", id: message.id, ...result.value } : errorFrame(result.code, result.message, message.id));
      }
      case "ListFriends":
        return reply({ type: "friends_list", id: message.id, ...this.ops.friendList() });
      case "SetPrivacy":
      case "HidePresence": {
        const change = message.type === "SetPrivacy" ? { shareLocation: message.shareLocation } : { hide: { userId: message.userId, hidden: message.hidden } };
        const list = await this.ops.privacy(change);
        return reply(list.ok ? { type: "friends_list", id: message.id, ...list.value } : errorFrame(list.code, list.message, message.id));
      }
    }
  }
}
