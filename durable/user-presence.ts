/**
 * UserPresence: one Durable Object per user, the single authority over that
 * user's presence. It owns
 *   - the user's devices (hibernating WebSockets + HTTP heartbeats) and their TTL,
 *   - the user's side of every friendship edge,
 *   - the leases of the friends who watch this user (fan-out targets),
 *   - a cache of the presence of the friends this user watches while it has a
 *     live client, and
 *   - an outbox of calls to other users' objects that must be retried.
 * One alarm serves every timer: each part reports its next wake-up (device
 * TTLs and the coalesced publish, lease renewal, outbox retries) and the
 * alarm is set to the earliest.
 *
 * This class is the table of contents: the runtime's entry points, the RPC
 * surface, and `refresh`, the one place presence moves. Each concern lives in
 * its own part (sockets, presence, watchers, watching, friendships, outbox);
 * the presence rules live in src/presence/ (no Cloudflare imports).
 */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../src/env";
import { classifyChange } from "../src/presence/aggregate";
import { announcedHeartbeatMs, readConfig, type PresenceConfig } from "../src/presence/config";
import type { EdgeMessage, EdgeReply, FriendList, LocalOp } from "../src/presence/friendship";
import { errorFrame } from "../src/presence/protocol";
import { CloseCode, PING_FRAME, PONG_FRAME, PROTOCOL_VERSION } from "../src/protocol";
import { ok, refuse, type Refusal, type Result } from "../src/presence/result";
import { deviceKindSchema, FRIENDSHIP_OPS, friendsParamSchema, positionInterestSchema, parseClientFrame, type ClientMessage, type HeartbeatBody } from "../src/presence/schema";
import { pageOnline, pageRequest } from "../src/presence/subset";
import { alarmTime, nextDeadline } from "../src/presence/timers";
import type { DeviceKind, PositionInterest, Presence, Transport } from "../src/presence/types";
import type { MatrixSyncRequest, MatrixSyncResult, RateLimited } from "../src/matrix/backend";
import type { MatrixPresenceState } from "../src/matrix/mapping";
import { serverNameOf } from "../src/matrix/routes";
import { DCL_OBJECT_PATH } from "../src/dcl/worker";
import { DclSockets } from "./dcl";
import { CallBudget } from "./budget";
import { Friendships, type FriendshipChange, type FriendshipRefusalCode } from "./friendships";
import { createHost, type Host } from "./host";
import { MATRIX_WAIT_HEADER, MatrixPart } from "./matrix";
import { Outbox } from "./outbox";
import { RealmMembership } from "./realms";
import { OwnPresence } from "./presence";
import { Sockets } from "./sockets";
import { objectCounters } from "./counters";
import { meterEntryPoints, ObjectMeter } from "./meter";
import { UserStore } from "./store";
import { Watchers } from "./watchers";
import { Watching } from "./watching";

const NOT_FOUND = "no such user among your friends";
/** How old a friends-online answer may be when it is served because the call budget is spent. */
const SNAPSHOT_MAX_AGE_MS = 30_000;
/** Frames whose handling calls other users' objects: refused while the call budget is spent. */
const CALLING_FRAMES = new Set<ClientMessage["type"]>(["GetPresence", ...(Object.keys(FRIENDSHIP_OPS) as Array<keyof typeof FRIENDSHIP_OPS>), "SetPrivacy", "HidePresence"]);

type PrivacyChange = { shareLocation?: "all" | "none"; hide?: { userId: string; hidden: boolean } };

export class UserPresence extends DurableObject<Env> {
  private readonly store: UserStore;
  private readonly config: PresenceConfig;
  private readonly host: Host;
  private readonly sockets: Sockets;
  private readonly outbox: Outbox;
  private readonly watchers: Watchers;
  private readonly watching: Watching;
  private readonly presence: OwnPresence;
  private readonly friendships: Friendships;
  private readonly matrix: MatrixPart;
  private readonly dcl: DclSockets;
  private readonly budget: CallBudget;
  private readonly realms: RealmMembership;
  /** Last friends-online answer computed for an HTTP-only reader: served while the call budget is spent. */
  private onlineSnapshot: { at: number; friends: Presence[] } | null = null;
  /** What the bill counts (durable/meter.ts); the entry points are wrapped at the end of this file. */
  readonly meter = new ObjectMeter();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    objectCounters.instancesCreated++;
    this.store = new UserStore(ctx.storage, this.meter);
    this.config = readConfig(env);
    this.host = createHost(ctx.id, this.store, this.config, env.USER);
    this.sockets = new Sockets(ctx, this.config);
    this.outbox = new Outbox(this.host, (at) => this.armBy(at));
    this.watchers = new Watchers(this.host, this.outbox);
    this.watching = new Watching(this.host, this.sockets, this.outbox);
    this.presence = new OwnPresence(this.host, this.watchers, this.sockets);
    // A socket's device state rides in its attachment (a heartbeat writes no row): read back after a wake.
    this.store.savedDevices = () => this.sockets.savedDevices();
    this.friendships = new Friendships(this.host, this.sockets, this.outbox, this.watching);
    this.matrix = new MatrixPart(
      ctx,
      this.host,
      () => serverNameOf(env),
      this.sockets,
      this.presence,
      this.watching,
      (now) => this.refresh(now),
    );
    this.dcl = new DclSockets(ctx, this.host, this.sockets, this.presence, {
      friendList: async () => this.friendList(),
      onlineFriends: () => this.watching.onlineFriends(),
      mutualFriends: (other) => this.host.call(other, (stub) => stub.friendsAmong(this.host.userId, this.store.friendIds())),
      friendship: (other, op, text) => this.friendshipOp(other, op, text),
      refresh: (now) => this.refresh(now),
    });
    this.budget = new CallBudget(this.host);
    this.realms = new RealmMembership(ctx.storage, this.config, env.REALM_SHARD, () => this.host.userId);
    // Keep-alive pings are answered by the runtime without waking this object;
    // their timestamps are read back as a sign of life when the alarm runs.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
  }

  // ─── identity ──────────────────────────────────────────────────────────────

  // Whose object this is comes from the runtime (`ctx.id.name`, see host.ts), in
  // every entry point, alarms included: no caller passes it.

  /** Called from worker-facing entry points: the user has used the service, so requests to them are accepted. */
  private register(): void {
    if (!this.store.get("registered")) this.store.set("registered", true);
  }

  // ─── WebSocket lifecycle (Hibernation API) ─────────────────────────────────

  override async fetch(request: Request): Promise<Response> {
    const parkMark = request.headers.get(MATRIX_WAIT_HEADER);
    if (parkMark !== null) return this.matrix.park(parkMark);
    const userId = this.host.userId;
    this.register();
    if (new URL(request.url).pathname === DCL_OBJECT_PATH) return this.dcl.accept(request, Date.now());
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
    const limited = this.admitHttp(now, !this.watching.live);
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
    this.store.connectDevice(deviceId, kind.data, now);
    this.sockets.saveDevice(server, this.store.device(deviceId));
    this.sockets.send(server, {
      type: "welcome",
      userId,
      deviceId,
      protocol: PROTOCOL_VERSION,
      heartbeatIntervalMs: announcedHeartbeatMs(this.config),
      ttlMs: this.config.ttlMs,
      maxFrameBytes: this.config.maxFrameBytes,
      ping: PING_FRAME,
    });
    // Accept first (issue #11): the 101 goes back now; watching the friends (the fan-in) runs after it,
    // and a Subscribe/GetOnlineFriends that arrives meanwhile waits for it (Watching.onlineFriends).
    this.ctx.waitUntil(this.refresh(now).catch((error) => console.error("connect refresh failed", error)));
    const headers = new Headers();
    if (protocol) headers.set("Sec-WebSocket-Protocol", protocol);
    return new Response(null, { status: 101, webSocket: client, headers });
  }

  override async webSocketMessage(ws: WebSocket, frame: string | ArrayBuffer): Promise<void> {
    if (this.matrix.owns(ws)) return;
    const now = Date.now();
    if (this.dcl.owns(ws)) return this.dcl.message(ws, frame, now);
    const { deviceId } = this.sockets.attachment(ws);
    this.store.touchDevice(deviceId, now);
    try {
      await this.message(ws, frame, now);
    } finally {
      // The device's latest state (sign of life, heartbeat) stays with its socket: no row written.
      this.sockets.saveDevice(ws, this.store.device(deviceId));
    }
  }

  private async message(ws: WebSocket, frame: string | ArrayBuffer, now: number): Promise<void> {
    // Parsed first (bounded by the frame limit) so that even a rate_limited error names its request.
    const parsed = parseClientFrame(frame, this.config.maxFrameBytes);
    if (!this.sockets.admit(ws, now)) {
      const id = parsed.ok ? parsed.message.id : parsed.id;
      return this.sockets.reject(ws, now, errorFrame("rate_limited", `at most ${this.config.ratePerSecond} messages per second per socket`, id));
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
        const presence = await this.heartbeat(deviceId, kind, "ws", message, now);
        return reply({ type: "heartbeat_ack", id: message.id, presence, nextHeartbeatMs: announcedHeartbeatMs(this.config) });
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
        const found = await this.lookupFor(message.userId);
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
        const result = await this.friendshipOp(message.userId, FRIENDSHIP_OPS[message.type], text);
        return reply(result.ok ? { type: "friendship", id: message.id, ...result.value } : errorFrame(result.code, result.message, message.id));
      }
      case "ListFriends":
        return reply({ type: "friends_list", id: message.id, ...this.friendList() });
      case "SetPrivacy":
      case "HidePresence": {
        const change = message.type === "SetPrivacy" ? { shareLocation: message.shareLocation } : { hide: { userId: message.userId, hidden: message.hidden } };
        const list = await this.privacyOp(change);
        return reply(list.ok ? { type: "friends_list", id: message.id, ...list.value } : errorFrame(list.code, list.message, message.id));
      }
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    if (this.matrix.owns(ws)) return this.matrix.released(ws);
    // Reciprocate, or the client sees 1006. 1005/1006 are not sendable codes.
    this.sockets.close(ws, code === 1005 || code === 1006 ? CloseCode.normal : code, reason);
    await this.dropSocket(ws);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    if (this.matrix.owns(ws)) return;
    await this.dropSocket(ws);
  }

  /** A socket ended: its device goes away at once unless another socket carries it. */
  private async dropSocket(ws: WebSocket): Promise<void> {
    if (!this.sockets.deviceStillConnected(ws)) this.store.removeDevice(this.sockets.attachment(ws).deviceId, "ws");
    await this.refresh(Date.now());
  }

  // ─── the state machine and the alarm ───────────────────────────────────────

  private async heartbeat(deviceId: string, kind: DeviceKind, transport: Transport, body: HeartbeatBody, now: number): Promise<Presence> {
    this.presence.recordHeartbeat(deviceId, kind, transport, body, now);
    await this.refresh(now);
    return this.presence.selfView(now);
  }

  /**
   * The one place presence moves: refresh liveness from ping timestamps,
   * expire silent devices, start/stop watching friends, publish changes,
   * deliver due outbox rows, and set the alarm. Idempotent; safe to run from
   * any entry point and from a retried alarm.
   */
  private async refresh(now: number): Promise<void> {
    for (const { deviceId, at } of this.sockets.pings()) this.store.touchDevice(deviceId, at);
    this.dcl.probe(now);
    for (const deviceId of this.presence.expireSilentDevices(now)) {
      this.sockets.closeDevice(deviceId, CloseCode.presenceExpired, "no sign of life within the TTL");
    }
    const wasLive = this.watching.live;
    if (!wasLive && this.presence.outwardView(now).hasLiveDevice) await this.watching.start(now);
    // Computed after the fan-in: a connect's refresh runs after its 101, so other events may have moved presence meanwhile.
    const { view, hasLiveDevice } = this.presence.outwardView(now);
    this.presence.rememberLastActive(view);
    await this.presence.publishChanges(view, now);
    await this.realms.update(view, now);
    this.matrix.afterRefresh(view, now);
    if (!hasLiveDevice && wasLive) await this.watching.stop();
    if (hasLiveDevice) await this.watching.renewIfDue(now);
    await this.outbox.deliver(now);
    await this.scheduleAlarm(now);
  }

  /**
   * One physical alarm: the earliest wake-up any part asks for. Set only when
   * that is earlier than the alarm already set (or none is): a setAlarm is a
   * row written, and a heartbeat moves the TTL later every time. An alarm that
   * fires early finds nothing due and is set again to the real deadline, about
   * once per TTL while the user is online.
   */
  private async scheduleAlarm(now: number): Promise<void> {
    const deadline = nextDeadline(this.wakeUps());
    if (this.alarmAt === undefined) this.alarmAt = await this.ctx.storage.getAlarm();
    if (deadline === null) {
      if (this.alarmAt === null) return;
      this.alarmAt = null;
      this.meter.alarmDeleted();
      await this.ctx.storage.deleteAlarm();
      return;
    }
    const at = alarmTime(deadline, now);
    if (this.alarmAt !== null && this.alarmAt <= at && this.alarmAt > now) return;
    this.alarmAt = at;
    this.meter.alarmSet();
    await this.ctx.storage.setAlarm(at);
  }

  /** Every part's next wake-up (one physical alarm serves them all). */
  private wakeUps(): Array<number | null> {
    return [...this.presence.nextWakeUps(), this.watching.nextWakeUp(), this.outbox.nextWakeUp(), this.dcl.nextWakeUp(), this.realms.nextWakeUp()];
  }

  /**
   * The alarm fires no later than `at`. Synchronous on purpose: called right
   * after an outbox row is written, with no await in between, so the row and
   * the alarm are committed together (a crash cannot keep one without the other).
   */
  private armBy(at: number): void {
    const now = Date.now();
    if (this.alarmAt != null && this.alarmAt > now && this.alarmAt <= at) return;
    this.alarmAt = alarmTime(nextDeadline([at, ...this.wakeUps()]) ?? at, now);
    this.meter.alarmSet();
    this.ctx.storage.setAlarm(this.alarmAt).catch((error) => console.error("setAlarm failed", error));
  }

  /** The alarm as this instance set it or read it (undefined: not read yet since the wake). */
  private alarmAt: number | null | undefined;

  override async alarm(): Promise<void> {
    // The alarm that fired is gone; refresh sets the next one.
    this.alarmAt = null;
    await this.refresh(Date.now());
  }

  /** What friends were told, re-published first if it is stale (TTLs re-checked: a late alarm never shows a ghost). */
  private async publishedNow(): Promise<Presence> {
    const now = Date.now();
    const { view } = this.presence.outwardView(now);
    if (classifyChange(this.presence.published(), view) === "significant") await this.refresh(now);
    return this.presence.published();
  }

  // ─── RPC: called by friends' objects ───────────────────────────────────────

  /** A friend with a live client takes (or renews) a lease on this user, and gets this user's presence. */
  async watch(watcher: string, leaseMs: number, positions?: PositionInterest, realm?: string | null): Promise<Result<Presence, "not_friends">> {
    const granted = this.watchers.grant(watcher, leaseMs, Date.now(), positions, realm ?? null);
    if (!granted.ok) return granted;
    // A friend this live user does not know the presence of yet: the friendship is new, watch back.
    if (this.watching.live && !this.watching.knows(watcher)) void this.watching.watchNewFriend(watcher, Date.now()).catch(() => undefined);
    return ok(this.watchers.viewFor(watcher, await this.publishedNow()));
  }

  async unwatch(watcher: string): Promise<void> {
    this.watchers.release(watcher);
  }

  /** A friend's object pushes its presence; refused: the sender drops this user's lease. */
  async receivePresence(from: string, presence: Presence): Promise<Result<boolean, "not_friends" | "not_watching">> {
    return this.watching.receive(from, presence);
  }

  /** This user's presence as `requester` may see it: themself, or a friend (never leaks to anyone else). */
  async presenceFor(requester: string): Promise<Result<Presence, "not_friends">> {
    if (requester === this.host.userId) return ok(this.presence.selfView(Date.now()));
    if (!this.store.isFriend(requester)) return refuse("not_friends", NOT_FOUND);
    return ok(this.watchers.viewFor(requester, await this.publishedNow()));
  }

  /** A change of intent from `from`'s object. Idempotent (duplicates are ignored by version). */
  async receiveEdge(from: string, message: EdgeMessage, text: string | null = null): Promise<EdgeReply> {
    return this.friendships.receive(from, message, text);
  }

  /** GetMutualFriends of a Decentraland client: which of `candidates` are this user's friends (none for a user this one blocked). */
  async friendsAmong(requester: string, candidates: string[]): Promise<string[]> {
    if (this.store.get("registered") !== true || this.store.edge(requester).mine === "blocked") return [];
    return candidates.slice(0, this.config.maxFriends).filter((c) => this.store.isFriend(c));
  }

  // ─── RPC: called by the worker ─────────────────────────────────────────────

  /** `GET /v1/presence/:userId` and `GetPresence`: self, or a friend's presence from their object; anyone else is not found. */
  async lookup(target: string): Promise<Result<Presence, "not_found" | "rate_limited">> {
    this.register();
    return this.admitHttp(Date.now(), target !== this.host.userId) ?? this.lookupFor(target);
  }

  private async lookupFor(target: string): Promise<Result<Presence, "not_found">> {
    if (target === this.host.userId) return ok(this.presence.selfView(Date.now()));
    if (!this.store.isFriend(target)) return refuse("not_found", NOT_FOUND);
    const seen = await this.host.stub(target).presenceFor(this.host.userId);
    return seen.ok ? ok(seen.value) : refuse("not_found", NOT_FOUND);
  }

  async httpHeartbeat(deviceId: string, kind: DeviceKind, body: HeartbeatBody): Promise<Result<Presence, "rate_limited" | "too_many_devices">> {
    this.register();
    const now = Date.now();
    const limited = this.admitHttp(now, false);
    if (limited) return limited;
    const refusal = this.presence.deviceLimit(deviceId, now);
    if (refusal) return refusal;
    return ok(await this.heartbeat(deviceId, kind, "http", body, now));
  }

  /**
   * `GET /v1/friends/online`. A live user's answer comes from the cache (no
   * calls); an HTTP-only reader's asks every friend's object, within the call
   * budget: when it is spent, the last answer (at most SNAPSHOT_MAX_AGE_MS old,
   * ex-friends filtered out) is served instead, else 429.
   */
  async onlineFriends(query: { limit?: number; cursor?: string } = {}): Promise<Result<{ friends: Presence[]; nextCursor?: string | null }, "rate_limited">> {
    this.register();
    const now = Date.now();
    if (!this.sockets.admitUser(now)) return this.tooManyRequests();
    const page = pageRequest(query);
    if (!this.watching.snapshotAsks()) return ok(page ? await this.watching.onlineFriendsPage(page) : { friends: await this.watching.onlineFriends() });
    const limited = this.budget.refusal(now);
    if (limited) {
      const snapshot = this.onlineSnapshot;
      if (!snapshot || now - snapshot.at > SNAPSHOT_MAX_AGE_MS) return limited;
      const friends = snapshot.friends.filter((p) => this.store.isFriend(p.userId));
      if (!page) return ok({ friends });
      // Paged through the last snapshot: no call.
      const listed = new Map(friends.map((p) => [p.userId, p]));
      return ok(
        await pageOnline(
          this.store.friendIds(),
          page,
          (id) => listed.get(id) ?? null,
          async () => new Map(),
        ),
      );
    }
    if (page) return ok(await this.watching.onlineFriendsPage(page));
    const friends = await this.watching.onlineFriends();
    this.onlineSnapshot = { at: now, friends };
    return ok({ friends });
  }

  /** One request's worth of the user's request bucket, then, for operations that call other objects, the call budget. */
  private admitHttp(now: number, callsOthers: boolean): Refusal<"rate_limited"> | null {
    if (!this.sockets.admitUser(now)) return this.tooManyRequests();
    return callsOthers ? this.budget.refusal(now) : null;
  }

  private tooManyRequests(): Refusal<"rate_limited"> {
    const perSecond = this.config.ratePerSecond * 2;
    return { ...refuse("rate_limited", `at most ${perSecond} requests per second per user`), retryAfterMs: Math.ceil(1000 / perSecond) };
  }

  /**
   * One friendship operation by this user about `other` (request, accept, block…).
   * This side changes at once; the other side is told through the ordered
   * outbox (delivered now, retried by the alarm until acknowledged) and its
   * reply is folded back in.
   */
  async friendship(other: string, op: LocalOp, text?: string | null): Promise<Result<FriendshipChange, FriendshipRefusalCode | "rate_limited">> {
    this.register();
    return this.admitHttp(Date.now(), true) ?? this.friendshipOp(other, op, text);
  }

  private async friendshipOp(other: string, op: LocalOp, text?: string | null): Promise<Result<FriendshipChange, FriendshipRefusalCode>> {
    const planned = this.friendships.plan(other, op);
    if (!planned.ok) return planned;
    const now = Date.now();
    await this.friendships.apply(planned.value, text ?? null, now);
    await this.scheduleAlarm(now);
    return this.friendships.outcome(other, op, planned.value.send);
  }

  /** Admin: make each pair friends (or not) through the same path as users' own operations. */
  async setFriendships(others: string[], state: "friends" | "removed"): Promise<Result<{ pending: string[] }, "friend_limit">> {
    this.register();
    const now = Date.now();
    const result = await this.friendships.setAll(others, state, now);
    if (result.ok) await this.scheduleAlarm(now);
    return result;
  }

  async friends(): Promise<Result<FriendList, "rate_limited">> {
    this.register();
    return this.admitHttp(Date.now(), false) ?? ok(this.friendList());
  }

  private friendList(): FriendList {
    return { ...this.friendships.list(), shareLocation: this.presence.shareLocation };
  }

  /** Privacy: share realm/position with all friends or none; hide presence from single friends. */
  async setPrivacy(change: PrivacyChange): Promise<Result<FriendList, "not_found" | "rate_limited">> {
    this.register();
    return this.admitHttp(Date.now(), true) ?? this.privacyOp(change);
  }

  private async privacyOp(change: PrivacyChange): Promise<Result<FriendList, "not_found">> {
    const now = Date.now();
    if (change.hide) {
      if (!this.store.isFriend(change.hide.userId)) return refuse("not_found", NOT_FOUND);
      await this.presence.hideFrom(change.hide.userId, change.hide.hidden, now);
    }
    if (change.shareLocation) {
      this.presence.shareLocation = change.shareLocation;
      await this.refresh(now);
    }
    await this.scheduleAlarm(now);
    return ok(this.friendList());
  }

  // ─── RPC: the Matrix API (called by the worker; src/matrix/object-backend.ts) ──

  /** GET /presence/{target}/status: self or a friend; null for anyone else; the user's request budget applies (issue #12). */
  async matrixPresence(target: string): Promise<Presence | null | RateLimited> {
    this.register();
    const found = await this.lookup(target);
    if (found.ok) return found.value;
    return found.code === "rate_limited" ? { ok: false, code: "rate_limited", retryAfterMs: found.retryAfterMs ?? 1_000 } : null;
  }

  /** PUT /presence/{self}/status: the matrix device's status and text. */
  async matrixSetPresence(state: MatrixPresenceState, statusMsg: string | null): Promise<{ ok: true } | RateLimited> {
    this.register();
    return this.matrix.setPresence(state, statusMsg, Date.now());
  }

  /** One evaluation of /sync (a sign of life of the matrix device when `request.signOfLife`). */
  async matrixSync(request: MatrixSyncRequest): Promise<MatrixSyncResult | RateLimited> {
    this.register();
    return this.matrix.sync(request, Date.now());
  }
}

// Every entry point is a metered event: a billed request (RPC, fetch, alarm) or an incoming WebSocket message.
const rpc = (kind: string) => ({ kind: `rpc:${kind}`, billed: "request" as const });
meterEntryPoints(
  UserPresence.prototype,
  {
    fetch: { kind: "fetch", billed: "request" },
    webSocketMessage: {
      kind: (_ws: WebSocket, frame: unknown) => (typeof frame === "string" && frame.includes('"PositionHeartbeat"') ? "ws:heartbeat" : "ws:other"),
      billed: "ws",
    },
    webSocketClose: { kind: "ws:close", billed: "none" },
    webSocketError: { kind: "ws:error", billed: "none" },
    alarm: { kind: "alarm", billed: "request" },
    watch: rpc("watch"),
    unwatch: rpc("unwatch"),
    receivePresence: rpc("receivePresence"),
    presenceFor: rpc("presenceFor"),
    receiveEdge: rpc("receiveEdge"),
    lookup: rpc("lookup"),
    httpHeartbeat: rpc("httpHeartbeat"),
    onlineFriends: rpc("onlineFriends"),
    friendship: rpc("friendship"),
    setFriendships: rpc("setFriendships"),
    friends: rpc("friends"),
    setPrivacy: rpc("setPrivacy"),
    friendsAmong: rpc("friendsAmong"),
    matrixPresence: rpc("matrixPresence"),
    matrixSetPresence: rpc("matrixSetPresence"),
    matrixSync: rpc("matrixSync"),
  },
  (instance: UserPresence) => instance.meter,
);
