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
 * surface, `refresh` (the one place presence moves) and what the alarm
 * waits for (`wakeUps`; durable/alarm.ts sets it). Each concern lives in its own part (sockets, json-sockets, dcl,
 * matrix, presence, watchers, watching, friendships, outbox, realms, budget);
 * what a user can do, whichever way they ask, is in operations.ts; the
 * presence rules live in src/presence/ (no Cloudflare imports).
 */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../src/env";
import { classifyChange } from "../src/presence/aggregate";
import { readConfig, type PresenceConfig } from "../src/presence/config";
import type { EdgeMessage, EdgeReply, FriendList, LocalOp } from "../src/presence/friendship";
import { CloseCode, PING_FRAME, PONG_FRAME } from "../src/protocol";
import { ok, refuse, type Result } from "../src/presence/result";
import type { HeartbeatBody } from "../src/presence/schema";
import { nextDeadline } from "../src/presence/timers";
import type { DeviceKind, PositionInterest, Presence } from "../src/presence/types";
import type { MatrixSyncRequest, MatrixSyncResult, RateLimited } from "../src/matrix/backend";
import type { MatrixPresenceState } from "../src/matrix/mapping";
import { serverNameOf } from "../src/matrix/routes";
import { DCL_OBJECT_PATH } from "../src/dcl/worker";
import { Alarm } from "./alarm";
import { DclSockets } from "./dcl";
import { CallBudget, type OnlineFriends } from "./budget";
import { Friendships, type FriendshipChange, type FriendshipRefusalCode } from "./friendships";
import { ServerEvents } from "./events";
import { createHost, type Host } from "./host";
import { MATRIX_WAIT_HEADER, MatrixPart } from "./matrix";
import { JsonSockets } from "./json-sockets";
import { NOT_FOUND, userOperations, type Operations, type PrivacyChange } from "./operations";
import { Outbox } from "./outbox";
import { RealmMembership } from "./realms";
import { OwnPresence } from "./presence";
import { Sockets } from "./sockets";
import { meteredKv, meterEntryPoints, ObjectMeter, USER_PRESENCE_ENTRY_POINTS } from "./meter";
import { UserStore } from "./store";
import { Watchers } from "./watchers";
import { Watching } from "./watching";

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
  private readonly json: JsonSockets;
  private readonly ops: Operations;
  /** The one physical alarm, set to the earliest of `wakeUps()` (durable/alarm.ts). */
  private readonly scheduler: Alarm;
  /** What the bill counts (durable/meter.ts); the entry points are wrapped at the end of this file. */
  readonly meter = new ObjectMeter();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.scheduler = new Alarm(ctx.storage, this.meter, () => this.wakeUps());
    this.store = new UserStore(ctx.storage, this.meter);
    this.config = readConfig(env);
    this.host = createHost(ctx.id, this.store, this.config, env.USER);
    this.sockets = new Sockets(ctx, this.config);
    this.outbox = new Outbox(this.host, (at) => this.scheduler.armBy(at));
    this.watchers = new Watchers(this.host, this.outbox);
    this.watching = new Watching(this.host, this.sockets, this.outbox);
    this.presence = new OwnPresence(this.host, this.watchers, this.sockets);
    this.watchers.signingOff = () => !this.presence.outwardView(Date.now()).hasLiveDevice;
    // A socket's device state rides in its attachment (a heartbeat writes no row): read back after a wake.
    this.store.savedDevices = () => this.sockets.savedDevices();
    this.friendships = new Friendships(this.host, this.sockets, this.outbox, this.watching);
    // Server-side events (docs/EVENTS.md): off without an EVENTS queue binding.
    this.presence.events = this.friendships.events = ServerEvents.create(env, this.host, this.outbox, (at) => this.scheduler.armBy(at));
    this.matrix = new MatrixPart(
      ctx,
      this.host,
      () => serverNameOf(env),
      this.sockets,
      this.presence,
      this.watching,
      (now) => this.refresh(now),
    );
    const { host, presence, friendships, watching } = this;
    this.ops = userOperations({ host, presence, friendships, watching, refresh: (now) => this.refresh(now), scheduleAlarm: (now) => this.scheduler.schedule(now) });
    this.dcl = new DclSockets(ctx, this.host, this.sockets, this.presence, this.ops);
    this.budget = new CallBudget(this.host, this.sockets);
    this.json = new JsonSockets(ctx, this.host, this.sockets, this.presence, this.watching, this.budget, this.ops);
    this.realms = new RealmMembership(meteredKv(ctx.storage.kv, this.meter), this.config, env.REALM_SHARD, () => this.host.userId);
    // Keep-alive pings are answered by the runtime without waking this object;
    // their timestamps are read back as a sign of life when the alarm runs.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
  }

  // ─── identity: whose object this is comes from the runtime (`ctx.id.name`, host.ts), never from a caller ──

  /** Called from worker-facing entry points: the user has used the service, so requests to them are accepted. */
  private register(): void {
    if (!this.store.get("registered")) this.store.set("registered", true);
  }

  // ─── WebSocket lifecycle (Hibernation API) ─────────────────────────────────

  override async fetch(request: Request): Promise<Response> {
    const parkMark = request.headers.get(MATRIX_WAIT_HEADER);
    if (parkMark !== null) return this.matrix.park(parkMark);
    this.register();
    if (new URL(request.url).pathname === DCL_OBJECT_PATH) return this.dcl.accept(request, Date.now());
    return this.json.accept(request);
  }

  override async webSocketMessage(ws: WebSocket, frame: string | ArrayBuffer): Promise<void> {
    if (this.matrix.owns(ws)) return;
    const now = Date.now();
    if (this.dcl.owns(ws)) return this.dcl.message(ws, frame, now);
    return this.json.message(ws, frame, now);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string, wasClean?: boolean): Promise<void> {
    if (this.matrix.owns(ws)) return this.matrix.released(ws);
    // Reciprocate, or the client sees 1006. 1005/1006 are not sendable codes.
    this.sockets.close(ws, code === 1005 || code === 1006 ? CloseCode.normal : code, reason);
    await this.dropSocket(ws, code === 1006 || wasClean === false);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    if (this.matrix.owns(ws)) return;
    await this.dropSocket(ws, true);
  }

  /** A socket ended: its device goes away (after the reconnect grace if it dropped without a close frame) unless another socket carries it. */
  private async dropSocket(ws: WebSocket, unclean: boolean): Promise<void> {
    const now = Date.now();
    if (!this.sockets.firstEnd(ws)) return;
    if (!this.sockets.deviceStillConnected(ws)) this.presence.socketGone(this.sockets.attachment(ws).deviceId, unclean, now);
    await this.refresh(now);
  }

  // ─── the state machine and the alarm ───────────────────────────────────────

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
    if (!hasLiveDevice && wasLive) await this.watching.stop(this.watchers.releasedBy);
    this.watchers.releasedBy.clear();
    if (hasLiveDevice) await this.watching.renewIfDue(now);
    await this.outbox.deliver(now);
    await this.scheduler.schedule(now);
  }

  /**
   * Every part's next wake-up (one physical alarm serves them all). Lease
   * renewals (watch leases, the realm membership) are due at half-life and may
   * come up to a quarter of their lease late: when a deadline that cannot wait
   * (a device's TTL, a publish, a retry) comes within that slack after one,
   * that fire serves it too (the renewal is overdue by then), so a live user's
   * renewals cost no alarm of their own (issue #11).
   */
  private wakeUps(): Array<number | null> {
    const { ttlMs, watchLeaseMs, realmLeaseMs } = this.config;
    const renewal = this.realms.renewalWakeUp();
    const realm = this.realms.nextWakeUp();
    const firm = [...this.presence.nextWakeUps(), this.outbox.nextWakeUp(), this.dcl.nextWakeUp(), realm === renewal ? null : realm];
    const first = nextDeadline(firm);
    const servedBy = (at: number | null, slackMs: number) => (at !== null && first !== null && first <= at + Math.min(ttlMs, slackMs) ? null : at);
    return [...firm, servedBy(this.watching.nextWakeUp(), watchLeaseMs / 4), servedBy(renewal, realmLeaseMs / 4)];
  }

  override async alarm(): Promise<void> {
    this.scheduler.fired();
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

  /**
   * A friend's object pushes its presence; refused: the sender drops this
   * user's lease. `release`: the sender has no live device left, so the lease
   * it held on this user goes too (its final offline doubles as `unwatch`).
   */
  async receivePresence(from: string, presence: Presence, release = false): Promise<Result<boolean, "not_friends" | "not_watching">> {
    if (release) this.watchers.release(from);
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
    return this.dcl.friendsAmong(requester, candidates);
  }

  // ─── RPC: called by the worker ─────────────────────────────────────────────

  /** `GET /v1/presence/:userId` and `GetPresence`: self, or a friend's presence from their object; anyone else is not found. */
  async lookup(target: string): Promise<Result<Presence, "not_found" | "rate_limited">> {
    this.register();
    return this.budget.admitHttp(Date.now(), target !== this.host.userId) ?? this.ops.lookup(target);
  }

  /** `POST /v1/heartbeat`: like `heartbeat_ack`, the presence and, while a "clear after" is ahead, `expiresAt`. */
  async httpHeartbeat(deviceId: string, kind: DeviceKind, body: HeartbeatBody): Promise<Result<{ presence: Presence; expiresAt?: number }, "rate_limited" | "too_many_devices">> {
    this.register();
    const now = Date.now();
    const limited = this.budget.admitHttp(now, false);
    if (limited) return limited;
    const refusal = this.presence.deviceLimit(deviceId, now);
    if (refusal) return refusal;
    const presence = await this.ops.heartbeat(deviceId, kind, "http", body, now);
    const expiresAt = this.presence.expiryOf(deviceId, now);
    return ok({ presence, ...(expiresAt ? { expiresAt } : {}) });
  }

  /** `GET /v1/friends/online`: from the cache for a live user, else asked of the friends within the call budget (CallBudget.onlineFriends). */
  async onlineFriends(query: { limit?: number; cursor?: string } = {}): Promise<Result<OnlineFriends, "rate_limited">> {
    this.register();
    return this.budget.onlineFriends(Date.now(), this.watching, query);
  }

  /** One friendship operation by this user about `other` (request, accept, block…): see Operations.friendship. */
  async friendship(other: string, op: LocalOp, text?: string | null): Promise<Result<FriendshipChange, FriendshipRefusalCode | "rate_limited">> {
    this.register();
    return this.budget.admitHttp(Date.now(), true) ?? this.ops.friendship(other, op, text);
  }

  /** Admin: make each pair friends (or not) through the same path as users' own operations. */
  async setFriendships(others: string[], state: "friends" | "removed"): Promise<Result<{ pending: string[] }, "friend_limit">> {
    this.register();
    const now = Date.now();
    const result = await this.friendships.setAll(others, state, now);
    if (result.ok) await this.scheduler.schedule(now);
    return result;
  }

  async friends(): Promise<Result<FriendList, "rate_limited">> {
    this.register();
    return this.budget.admitHttp(Date.now(), false) ?? ok(this.ops.friendList());
  }

  /** Privacy: share realm/position with all friends or none; hide presence from single friends. */
  async setPrivacy(change: PrivacyChange): Promise<Result<FriendList, "not_found" | "rate_limited">> {
    this.register();
    return this.budget.admitHttp(Date.now(), true) ?? this.ops.privacy(change);
  }

  // ─── RPC: the Matrix API (called by the worker; src/matrix/object-backend.ts) ──

  /** GET /presence/{target}/status: self or a friend; null for anyone else; the user's request budget applies (issue #12). */
  async matrixPresence(target: string): Promise<Presence | null | RateLimited> {
    return this.matrix.presenceAnswer(await this.lookup(target));
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

// Every entry point is a metered event (the table is in durable/meter.ts).
meterEntryPoints(UserPresence.prototype, USER_PRESENCE_ENTRY_POINTS, (instance: UserPresence) => instance.meter);
