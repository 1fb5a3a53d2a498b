/**
 * PresenceClient: one logical connection to edge-presence that survives
 * dropped sockets. It owns the socket, the keep-alive and heartbeat timers,
 * the reconnect schedule, the request/reply bookkeeping, and a FriendsState
 * that only ever moves forward in each friend's `seq`.
 */
import { RealmSubscription } from "./realm.js";
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from "./backoff.js";
import { Emitter } from "./emitter.js";
import {
  CloseCode,
  PING_FRAME,
  PONG_FRAME,
  PROTOCOL_VERSION,
  TOKEN_PROTOCOL_PREFIX,
  type ClientMessage,
  type DeviceKind,
  type DeviceStatus,
  type FriendList,
  type FriendshipState,
  type HeartbeatBody,
  type LastSeenPrivacy,
  type Position,
  type PositionInterest,
  type Presence,
  type RequestId,
  type ErrorCode,
  type ServerMessage,
  type RealmCount,
} from "../../src/protocol/index.js";
import {
  clearTimer,
  globalFetch,
  globalWebSocket,
  makeURL,
  OPEN,
  randomId,
  setTimer,
  type FetchLike,
  type FetchResponseLike,
  type TimerHandle,
  type WebSocketConstructor,
  type WebSocketLike,
} from "./runtime.js";
import { FriendsState, transition, type StateChange } from "./state.js";

export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

export type ClientErrorCode =
  | ErrorCode
  /** A request got no reply within `requestTimeoutMs`. */
  | "timeout"
  /** The socket closed while a request was in flight, or the client is closed. */
  | "disconnected"
  /** Another connection with the same device id took over (close code 4001). */
  | "replaced"
  /** `getToken` threw or returned nothing. */
  | "token"
  /** An HTTP call failed. */
  | "http"
  /** A heartbeat needs a position and a realm first. */
  | "no_position"
  /** A frame from the server could not be understood. */
  | "protocol";

export class PresenceError extends Error {
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = "PresenceError";
  }
}

export interface ConnectionEvent {
  state: ConnectionState;
  /** Consecutive failed attempts so far (0 once open). */
  attempt: number;
  /** When reconnecting: how long until the next attempt. */
  delayMs?: number;
  /** Close code and reason of the socket that ended, if any. */
  code?: number;
  reason?: string;
}

export interface PresenceUpdate {
  presence: Presence;
  previous: Presence | undefined;
}

export interface FriendRequest {
  /** Who asked (incoming) or whom you asked (outgoing). */
  userId: string;
  direction: "incoming" | "outgoing";
  message: string | null;
}

export interface FriendRequestEnded {
  userId: string;
  direction: "incoming" | "outgoing";
  reason: "cancelled" | "rejected" | "failed";
}

/** What you now see about a user after a friendship operation; `pending`: the other side has not acknowledged yet. */
export interface FriendshipResult {
  userId: string;
  state: FriendshipState;
  pending: boolean;
}

export interface PresenceEvents {
  /** A friend became visible (online, away or busy). */
  online: (presence: Presence) => void;
  /** A friend went offline. */
  offline: (presence: Presence) => void;
  /** Any applied change of a friend's presence, including online/offline ones. */
  update: (update: PresenceUpdate) => void;
  friendAdded: (presence: Presence) => void;
  friendRemoved: (userId: string) => void;
  /** A friend request appeared: someone asked you (`incoming`), or you asked (`outgoing`, on all your devices). */
  friendRequest: (request: FriendRequest) => void;
  /** A request went away without a friendship: withdrawn, rejected, or refused by the server (`failed`). */
  friendRequestEnded: (ended: FriendRequestEnded) => void;
  connection: (event: ConnectionEvent) => void;
  /** Your own presence as friends see it (from heartbeat acknowledgements). */
  self: (presence: Presence) => void;
  error: (error: PresenceError) => void;
}

export interface HeartbeatInput {
  position: Position;
  realm: string;
  status?: DeviceStatus;
  /** `null` clears the text; omitted keeps the previous one. */
  statusText?: string | null;
}

/** "Clear after": when `busy`, `invisible` and the status text end on their own (the server reverts them; friends see it). */
export interface StatusExpiry {
  /** After this long (ms). */
  clearAfterMs?: number;
  /** At this time (ms since epoch; your clock, sent as a duration). */
  clearAt?: number;
}

export interface ConnectOptions {
  /** Base URL of the service (`https://…`, `http://…`, `wss://…`, `ws://…`); `/v1/connect` is appended. */
  url: string;
  /** A fixed token. Use `getToken` when tokens expire. */
  token?: string;
  /** Called before every (re)connect and HTTP call; return a fresh token. */
  getToken?: () => string | Promise<string>;
  /** Stable id of this device (e.g. stored per browser tab). Default: random per client. */
  device?: string;
  kind?: DeviceKind;
  /**
   * Which friends' position-only moves to receive: every friend's (`all`,
   * default), only those in this user's own realm (`realm`), or none. Status,
   * realm and text changes arrive from every friend regardless. Fewer pushes
   * cost the service less (docs/PROTOCOL.md).
   */
  positions?: PositionInterest;
  /**
   * Follow only these friends (the ones on screen; at most 100): pushes come
   * only for them, and friends outside every subset of your clients cost the
   * service nothing. Change it with `setFriends`. Default: every friend.
   */
  friends?: string[];
  /** WebSocket implementation; defaults to `globalThis.WebSocket` (pass `ws` in Node 20). */
  WebSocket?: WebSocketConstructor;
  /** fetch implementation for the HTTP helpers; defaults to `globalThis.fetch`. */
  fetch?: FetchLike;
  /** First heartbeat, sent as soon as the socket is up. Without it you are connected but not shown. */
  initial?: HeartbeatInput;
  reconnect?: Partial<BackoffOptions>;
  /** Reply timeout of each request. Default 10 s. */
  requestTimeoutMs?: number;
  /** How long to wait for `welcome` + `subscribed` after starting a socket. Default 10 s. */
  connectTimeoutMs?: number;
  /** Keep-alive `ping` interval. Default: a quarter of the server's TTL, at most 30 s. */
  pingIntervalMs?: number;
  /**
   * Send the periodic heartbeat even when it would repeat the last one the
   * server acknowledged on this socket. Default false: such a heartbeat is
   * left out and the keep-alive `ping` is the sign of life, which the server's
   * runtime answers without waking its Durable Object (issue #11). (Pings at
   * most a third of the TTL apart are needed for that; slower ones keep the
   * heartbeats.)
   */
  heartbeatWhenUnchanged?: boolean;
  /** On close code 4001 (same device connected elsewhere): stop (default) or reconnect and take over. */
  onReplaced?: "close" | "reconnect";
  /** Source of randomness for the backoff jitter (tests). */
  random?: () => number;
}

interface Pending {
  expect: ServerMessage["type"];
  resolve: (message: ServerMessage) => void;
  reject: (error: PresenceError) => void;
  timer: TimerHandle;
}

type Reply<T extends ServerMessage["type"]> = Extract<ServerMessage, { type: T }>;

/** One page of online friends (`getOnlineFriendsPage`); `nextCursor` null after the last page. */
export interface OnlineFriendsPage {
  friends: Presence[];
  nextCursor: string | null;
}

function stripReply({ type: _type, id: _id, ...list }: Reply<"friends_list">): FriendList {
  return list;
}

export class PresenceClient extends Emitter<PresenceEvents> {
  private readonly options: ConnectOptions;
  private readonly WebSocketImpl: WebSocketConstructor;
  private readonly backoff: BackoffOptions;
  private readonly friendsState = new FriendsState();
  private readonly pending = new Map<RequestId, Pending>();
  private readonly waiters = new Set<{ resolve: () => void; reject: (e: PresenceError) => void; timer: TimerHandle }>();

  private socket: WebSocketLike | null = null;
  /** Bumped for every socket; handlers of an older socket do nothing. */
  private generation = 0;
  private nextRequestId = 1;
  private attempt = 0;
  private everOpened = false;
  private closedByUser = false;
  private currentState: ConnectionState = "connecting";
  private desired: { position?: Position; realm?: string; status: DeviceStatus; statusText: string | null };
  /**
   * The deadline of the desired status ("clear after"): a duration still to
   * send, then the server's time for it (repeated in every heartbeat, so a
   * reconnect keeps it and repeating it writes nothing).
   */
  private expiry: { inMs: number } | { at: number } | null = null;
  private expiryTimer: TimerHandle | null = null;
  private selfPresence: Presence | null = null;
  /** The friends this client follows (null: every friend); kept across reconnects. */
  private subset: string[] | null;
  private welcome: Reply<"welcome"> | null = null;
  /** Friends updated by pushes on this socket since the subscription was requested. */
  private touched = new Set<string>();
  private lastFrameAt = 0;
  /** Whether this socket's pings come often enough (at most a third of the TTL apart) to be its sign of life alone. */
  private pingsKeepAlive = false;
  /** The last heartbeat the server acknowledged, and on which socket: a periodic heartbeat that would repeat it is left out. */
  private acked: { generation: number; key: string } | null = null;

  private reconnectTimer: TimerHandle | null = null;
  private connectTimer: TimerHandle | null = null;
  private pingTimer: TimerHandle | null = null;
  private heartbeatTimer: TimerHandle | null = null;

  readonly deviceId: string;

  constructor(options: ConnectOptions) {
    super();
    if (!options.token && !options.getToken) throw new TypeError("connect() needs `token` or `getToken`");
    const WebSocketImpl = options.WebSocket ?? globalWebSocket();
    if (!WebSocketImpl) throw new TypeError('no global WebSocket here: pass `WebSocket` (e.g. `import WebSocket from "ws"`)');
    this.options = options;
    this.WebSocketImpl = WebSocketImpl;
    this.backoff = { ...DEFAULT_BACKOFF, ...options.reconnect };
    this.deviceId = options.device ?? `sdk-${randomId().slice(0, 12)}`;
    this.subset = options.friends ? [...options.friends] : null;
    this.desired = {
      position: options.initial?.position,
      realm: options.initial?.realm,
      status: options.initial?.status ?? "online",
      statusText: options.initial?.statusText ?? null,
    };
    void this.openSocket();
  }

  // ─── public API ────────────────────────────────────────────────────────────

  get state(): ConnectionState {
    return this.currentState;
  }

  /** Every friend the client knows of (online ones from the subscription, others once looked up), by user id. */
  get friends(): Presence[] {
    return this.friendsState.all();
  }

  friend(userId: string): Presence | undefined {
    return this.friendsState.get(userId);
  }

  /** Your own presence as friends see it, after the first acknowledged heartbeat. */
  get self(): Presence | null {
    return this.selfPresence;
  }

  /** The user id the server knows this token as (after the first `welcome`). */
  get userId(): string | null {
    return this.welcome?.userId ?? null;
  }

  /** Resolves once the client is open (subscribed to friends); rejects if it closes first or after `timeoutMs`. */
  ready(timeoutMs = this.options.connectTimeoutMs ?? 10_000): Promise<void> {
    if (this.currentState === "open") return Promise.resolve();
    if (this.currentState === "closed") return Promise.reject(new PresenceError("disconnected", "the client is closed"));
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve,
        reject,
        timer: setTimer(() => {
          this.waiters.delete(waiter);
          reject(new PresenceError("timeout", `not connected within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  /** Online friends according to the server right now (also merged into `friends`). */
  async getOnlineFriends(): Promise<Presence[]> {
    const reply = await this.request({ type: "GetOnlineFriends" }, "online_friends");
    for (const presence of reply.friends) this.applyChanges(this.friendsState.applyPresence(presence));
    return reply.friends;
  }

  /**
   * One page of the online friends, in friend-id order: at most `limit`
   * (1–200, default 50) friends; pass the previous page's `nextCursor` for the
   * next. A page may be short while more follow: go on until `nextCursor` is null.
   */
  async getOnlineFriendsPage(options: { limit?: number; cursor?: string | null } = {}): Promise<OnlineFriendsPage> {
    const reply = await this.request({ type: "GetOnlineFriends", limit: options.limit ?? 50, ...(options.cursor ? { cursor: options.cursor } : {}) }, "online_friends");
    for (const presence of reply.friends) this.applyChanges(this.friendsState.applyPresence(presence));
    return { friends: reply.friends, nextCursor: reply.nextCursor ?? null };
  }

  /** Every page of the online friends, one request at a time: `for await (const page of client.onlineFriendsPages()) …`. */
  async *onlineFriendsPages(options: { limit?: number } = {}): AsyncGenerator<Presence[]> {
    let cursor: string | null = null;
    do {
      const page: OnlineFriendsPage = await this.getOnlineFriendsPage({ limit: options.limit, cursor });
      yield page.friends;
      cursor = page.nextCursor;
    } while (cursor !== null);
  }

  /** The friends this client follows (null: every friend). */
  get following(): readonly string[] | null {
    return this.subset;
  }

  /**
   * Follow only `friends` (at most 100; the ones on screen), or every friend
   * (`"all"`). Resolves with the snapshot of the friends now followed (online
   * ones), which is also applied to `friends`; kept across reconnects.
   */
  async setFriends(friends: string[] | "all"): Promise<Presence[]> {
    const subset = friends === "all" ? null : [...new Set(friends)];
    const reply = await this.request(
      { type: "SubscribeFriendshipPresenceUpdates", ...(this.options.positions ? { positions: this.options.positions } : {}), friends: subset ?? "all" },
      "subscribed",
    );
    this.subset = subset;
    this.applyChanges(this.friendsState.applySnapshot(reply.friends, new Set(), subset ? new Set(subset) : undefined));
    return reply.friends;
  }

  /** One friend's presence (or your own); rejects with `not_found` for anyone else. */
  async getPresence(userId: string): Promise<Presence> {
    const reply = await this.request({ type: "GetPresence", userId }, "presence_result");
    if (reply.presence.userId !== this.userId) this.applyChanges(this.friendsState.applyPresence(reply.presence));
    return reply.presence;
  }

  /**
   * All friends, online or not, with last-seen times (HTTP: GET /v1/friends,
   * then GET /v1/presence/:id for friends the client does not know yet).
   */
  async listFriends(): Promise<Presence[]> {
    const body = (await this.http("GET", "/v1/friends")) as { friends: string[] | { friends: string[] } };
    // Either a list of ids, or (with friend requests) `{ friends: { friends: [...], incoming, outgoing, ... } }`.
    const friends = Array.isArray(body.friends) ? body.friends : (body.friends?.friends ?? []);
    const unknown = friends.filter((id) => !this.friendsState.get(id));
    for (let i = 0; i < unknown.length; i += 10) {
      const chunk = unknown.slice(i, i + 10);
      const results = await Promise.allSettled(chunk.map((id) => this.http("GET", `/v1/presence/${encodeURIComponent(id)}`)));
      for (const result of results) {
        if (result.status === "fulfilled") this.applyChanges(this.friendsState.applyPresence((result.value as { presence: Presence }).presence));
      }
    }
    const listed = new Set(friends);
    return this.friendsState.all().filter((p) => listed.has(p.userId));
  }

  /** Sends a heartbeat now (and remembers it for the automatic ones). A new status or text drops a "clear after". Resolves to your own presence. */
  async heartbeat(input: HeartbeatInput): Promise<Presence> {
    const statusChanged = (input.status !== undefined && input.status !== this.desired.status) || (input.statusText !== undefined && input.statusText !== this.desired.statusText);
    if (statusChanged) this.dropExpiry();
    this.desired = {
      position: { x: input.position.x, y: input.position.y, z: input.position.z },
      realm: input.realm,
      status: input.status ?? this.desired.status,
      statusText: input.statusText === undefined ? this.desired.statusText : input.statusText,
    };
    return this.sendHeartbeat();
  }

  /**
   * Changes your status (and optionally its text; `null` clears it), for good
   * or until `expiry` ("clear after 30 min": `{ clearAfterMs: 30 * 60_000 }`):
   * then the server shows `online` without a text on its own, and this client
   * follows. Needs a position and realm from `initial` or `heartbeat()`.
   */
  async setStatus(status: DeviceStatus, statusText?: string | null, expiry?: StatusExpiry): Promise<Presence> {
    this.desired = { ...this.desired, status, statusText: statusText === undefined ? this.desired.statusText : statusText };
    const inMs = expiry?.clearAfterMs ?? (expiry?.clearAt === undefined ? undefined : expiry.clearAt - Date.now());
    this.dropExpiry();
    if (inMs !== undefined) this.expiry = { inMs: Math.max(1, Math.round(inMs)) };
    return this.sendHeartbeat();
  }

  private dropExpiry(): void {
    this.expiry = null;
    clearTimer(this.expiryTimer);
    this.expiryTimer = null;
  }

  /** When your status and text clear on their own (the server's time), or null: they stay until you change them. */
  get statusExpiresAt(): number | null {
    return this.expiry && "at" in this.expiry ? this.expiry.at : null;
  }

  // ─── friendships (docs/FRIENDSHIPS.md); each rejects with a PresenceError whose code says why ───

  /** Asks `userId` to be friends (accepts, if they asked you first). `user_not_found`: no such user; to a user who blocked you it looks sent and stays pending (docs/FRIENDSHIPS.md). */
  sendFriendRequest(userId: string, message?: string): Promise<FriendshipResult> {
    return this.friendship({ type: "SendFriendRequest", userId, ...(message ? { message } : {}) });
  }
  cancelFriendRequest(userId: string): Promise<FriendshipResult> {
    return this.friendship({ type: "CancelFriendRequest", userId });
  }
  acceptFriendRequest(userId: string): Promise<FriendshipResult> {
    return this.friendship({ type: "AcceptFriendRequest", userId });
  }
  rejectFriendRequest(userId: string): Promise<FriendshipResult> {
    return this.friendship({ type: "RejectFriendRequest", userId });
  }
  removeFriend(userId: string): Promise<FriendshipResult> {
    return this.friendship({ type: "RemoveFriend", userId });
  }
  block(userId: string): Promise<FriendshipResult> {
    return this.friendship({ type: "BlockUser", userId });
  }
  unblock(userId: string): Promise<FriendshipResult> {
    return this.friendship({ type: "UnblockUser", userId });
  }

  /** Your friends, pending requests both ways, blocks and privacy settings. */
  async getFriendList(): Promise<FriendList> {
    return stripReply(await this.request({ type: "ListFriends" }, "friends_list"));
  }

  /** Show yourself as offline to one friend (frozen: they learn nothing while you are active), or stop. */
  async hidePresenceFrom(userId: string, hidden = true): Promise<FriendList> {
    return stripReply(await this.request({ type: "HidePresence", userId, hidden }, "friends_list"));
  }

  /** Share realm and position with all friends, or with none (they still see your status). */
  async setShareLocation(shareLocation: "all" | "none"): Promise<FriendList> {
    return stripReply(await this.request({ type: "SetPrivacy", shareLocation }, "friends_list"));
  }

  /** Who sees your "last seen" (`lastActiveAt`): every friend, the ones you choose (`showLastSeenTo`), or nobody. */
  async setLastSeen(lastSeen: LastSeenPrivacy): Promise<FriendList> {
    return stripReply(await this.request({ type: "SetPrivacy", lastSeen }, "friends_list"));
  }

  /** Chooses one friend to see your "last seen" when it is set to `chosen` (or takes them off). */
  async showLastSeenTo(userId: string, shown = true): Promise<FriendList> {
    return stripReply(await this.request({ type: "HidePresence", userId, lastSeen: shown }, "friends_list"));
  }

  /** How many users are online (visible, sharing location) in `realm` now; batched, at most a second old. */
  async realmCount(realm: string): Promise<RealmCount> {
    const body = (await this.http("GET", `/v1/realms/${encodeURIComponent(realm)}`)) as Omit<RealmCount, "type">;
    return { type: "realm_count", ...body };
  }

  /** A live count of `realm`: `onCount` gets the count at once, then batched totals (at most one a second). Its own socket. */
  subscribeRealm(realm: string, onCount: (count: RealmCount) => void): RealmSubscription {
    const url = makeURL(this.connectUrl());
    url.pathname = url.pathname.replace(/\/v1\/connect$/, `/v1/realms/${encodeURIComponent(realm)}/live`);
    url.search = "";
    return new RealmSubscription(
      url.toString(),
      () => this.token(),
      this.WebSocketImpl,
      onCount,
      (error) => this.emit("error", new PresenceError("protocol", `realm subscription: ${String(error)}`)),
    );
  }

  private async friendship(message: ClientMessage): Promise<FriendshipResult> {
    const { userId, state, pending } = await this.request(message, "friendship");
    return { userId, state, pending };
  }

  /** Ends the connection for good: friends see you offline at once. */
  close(): void {
    if (this.closedByUser) return;
    this.closedByUser = true;
    clearTimer(this.expiryTimer);
    const socket = this.socket;
    this.teardown(new PresenceError("disconnected", "the client was closed"));
    if (socket) {
      try {
        socket.close(CloseCode.normal, "client closed");
      } catch {
        // Already closing.
      }
    }
    this.setState("closed", {});
  }

  // ─── connection lifecycle ─────────────────────────────────────────────────

  private connectUrl(): string {
    const base = makeURL(this.options.url);
    base.protocol = base.protocol === "https:" || base.protocol === "wss:" ? "wss:" : "ws:";
    if (!base.pathname.endsWith("/v1/connect")) base.pathname = `${base.pathname.replace(/\/$/, "")}/v1/connect`;
    base.searchParams.set("device", this.deviceId);
    base.searchParams.set("kind", this.options.kind ?? "web");
    if (this.options.positions) base.searchParams.set("positions", this.options.positions);
    if (this.subset) base.searchParams.set("friends", this.subset.join(","));
    return base.toString();
  }

  private httpUrl(path: string): string {
    const base = makeURL(this.options.url);
    base.protocol = base.protocol === "wss:" || base.protocol === "https:" ? "https:" : "http:";
    base.pathname = base.pathname.replace(/\/v1\/connect$/, "").replace(/\/$/, "") + path;
    base.search = "";
    return base.toString();
  }

  private async token(): Promise<string> {
    let token: string | undefined;
    try {
      token = this.options.getToken ? await this.options.getToken() : this.options.token;
    } catch (error) {
      throw new PresenceError("token", `getToken failed: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (!token) throw new PresenceError("token", "getToken returned no token");
    return token;
  }

  private async openSocket(): Promise<void> {
    const generation = ++this.generation;
    this.setState(this.everOpened || this.attempt > 0 ? "reconnecting" : "connecting", {});
    let token: string;
    try {
      token = await this.token();
    } catch (error) {
      if (generation !== this.generation || this.closedByUser) return;
      this.emit("error", error as PresenceError);
      this.scheduleReconnect({});
      return;
    }
    if (generation !== this.generation || this.closedByUser) return;

    let socket: WebSocketLike;
    try {
      socket = new this.WebSocketImpl(this.connectUrl(), [PROTOCOL_VERSION, `${TOKEN_PROTOCOL_PREFIX}${token}`]);
    } catch (error) {
      this.emit("error", new PresenceError("protocol", `could not open a WebSocket: ${String(error)}`));
      this.scheduleReconnect({});
      return;
    }
    this.socket = socket;
    this.touched = new Set();
    this.lastFrameAt = Date.now();
    this.connectTimer = setTimer(() => {
      if (generation === this.generation) this.abandon(socket, "no welcome from the server in time");
    }, this.options.connectTimeoutMs ?? 10_000);

    socket.onmessage = (event) => {
      if (generation !== this.generation) return;
      this.lastFrameAt = Date.now();
      if (typeof event.data !== "string") return;
      this.onFrame(event.data);
    };
    socket.onclose = (event) => {
      if (generation !== this.generation) return;
      this.onSocketGone(event.code, event.reason);
    };
    socket.onerror = () => {
      // A close event follows every error; it decides what happens next.
    };
  }

  private onFrame(data: string): void {
    if (data === PONG_FRAME) return;
    let message: ServerMessage;
    try {
      message = JSON.parse(data) as ServerMessage;
    } catch {
      this.emit("error", new PresenceError("protocol", "the server sent a frame that is not JSON"));
      return;
    }
    const id = "id" in message ? message.id : undefined;
    if (id !== undefined && this.pending.has(id)) {
      const pending = this.pending.get(id)!;
      this.pending.delete(id);
      clearTimer(pending.timer);
      if (message.type === "error") pending.reject(new PresenceError(message.code, message.message));
      else if (message.type !== pending.expect) pending.reject(new PresenceError("protocol", `expected ${pending.expect}, got ${message.type}`));
      else pending.resolve(message);
      return;
    }
    switch (message.type) {
      case "welcome":
        this.onWelcome(message);
        return;
      case "presence":
        this.touched.add(message.presence.userId);
        this.applyChanges(this.friendsState.applyPresence(message.presence));
        return;
      case "friend_added":
        this.touched.add(message.userId);
        this.applyChanges(this.friendsState.addFriend(message.presence));
        return;
      case "friend_removed":
        this.touched.add(message.userId);
        this.applyChanges(this.friendsState.removeFriend(message.userId));
        return;
      case "heartbeat_ack":
        this.onSelf(message.presence);
        return;
      case "error":
        this.emit("error", new PresenceError(message.code, message.message));
        return;
      default:
        this.onOtherFrame(message as unknown as { type: string } & Record<string, unknown>);
        return;
    }
  }

  /** Friendship events, frames from newer servers (ignored), and replies nobody waits for any more. */
  private onOtherFrame(frame: { type: string } & Record<string, unknown>): void {
    if (typeof frame.userId !== "string") return;
    const direction = frame.direction === "outgoing" ? "outgoing" : "incoming";
    if (frame.type === "friend_request") {
      this.emit("friendRequest", { userId: frame.userId, direction, message: typeof frame.message === "string" ? frame.message : null });
    } else if (frame.type === "friend_request_cancelled" || frame.type === "friend_request_rejected") {
      this.emit("friendRequestEnded", { userId: frame.userId, direction, reason: frame.type === "friend_request_cancelled" ? "cancelled" : "rejected" });
    } else if (frame.type === "friend_request_failed") {
      this.emit("friendRequestEnded", { userId: frame.userId, direction: "outgoing", reason: "failed" });
    }
  }

  private onWelcome(welcome: Reply<"welcome">): void {
    this.welcome = welcome;
    const socket = this.socket;
    const generation = this.generation;
    // Subscribe first: the snapshot is taken after the subscription flag is set, so no push falls in between.
    const subset = this.subset;
    this.request(
      {
        type: "SubscribeFriendshipPresenceUpdates",
        ...(this.options.positions ? { positions: this.options.positions } : {}),
        ...(subset ? { friends: subset } : {}),
      },
      "subscribed",
      { internal: true },
    )
      .then((reply) => {
        if (generation !== this.generation) return;
        this.applyChanges(this.friendsState.applySnapshot(reply.friends, this.touched, subset ? new Set(subset) : undefined));
        clearTimer(this.connectTimer);
        this.connectTimer = null;
        this.attempt = 0;
        this.everOpened = true;
        this.setState("open", {});
        for (const waiter of [...this.waiters]) {
          clearTimer(waiter.timer);
          waiter.resolve();
        }
        this.waiters.clear();
      })
      .catch((error: PresenceError) => {
        if (generation !== this.generation || error.code === "disconnected") return;
        this.emit("error", error);
        if (socket) this.abandon(socket, "subscription failed");
      });
    if (this.desired.position && this.desired.realm) {
      this.sendHeartbeat(true).catch((error: PresenceError) => this.reportBackground(error));
    }
    this.startTimers(welcome.heartbeatIntervalMs);
  }

  private startTimers(heartbeatIntervalMs: number): void {
    const ttlMs = this.welcome?.ttlMs ?? 120_000;
    const pingEvery = this.options.pingIntervalMs ?? Math.max(250, Math.min(30_000, Math.floor(ttlMs / 4)));
    this.pingsKeepAlive = pingEvery <= ttlMs / 3;
    // Three silent ping intervals: the socket is half-open; start over.
    const deadAfter = pingEvery * 3;
    const generation = this.generation;
    const ping = () => {
      if (generation !== this.generation || !this.socket) return;
      if (Date.now() - this.lastFrameAt > deadAfter) return this.abandon(this.socket, "no frame from the server in time");
      this.rawSend(PING_FRAME);
      this.pingTimer = setTimer(ping, pingEvery);
    };
    clearTimer(this.pingTimer);
    this.pingTimer = setTimer(ping, pingEvery);
    this.scheduleHeartbeat(heartbeatIntervalMs);
  }

  private scheduleHeartbeat(ms: number): void {
    clearTimer(this.heartbeatTimer);
    const generation = this.generation;
    this.heartbeatTimer = setTimer(() => {
      if (generation !== this.generation) return;
      if (this.desired.position && this.desired.realm && !this.repeatsAcked()) {
        this.sendHeartbeat(true).catch((error: PresenceError) => this.reportBackground(error));
      }
      this.scheduleHeartbeat(this.welcome?.heartbeatIntervalMs ?? ms);
    }, ms);
  }

  /** The current socket is unusable without a close event we can wait for: drop it and reconnect. */
  private abandon(socket: WebSocketLike, reason: string): void {
    if (socket !== this.socket) return;
    try {
      socket.close(CloseCode.normal, reason);
    } catch {
      // Already closed.
    }
    this.onSocketGone(1006, reason);
  }

  private onSocketGone(code: number, reason: string): void {
    this.generation++;
    this.teardown(new PresenceError("disconnected", `connection closed (${code}${reason ? `: ${reason}` : ""})`));
    if (this.closedByUser) return;
    if (code === CloseCode.replaced && (this.options.onReplaced ?? "close") === "close") {
      this.emit("error", new PresenceError("replaced", "this device connected elsewhere; not reconnecting"));
      this.setState("closed", { code, reason });
      this.rejectWaiters(new PresenceError("replaced", "this device connected elsewhere"));
      return;
    }
    this.scheduleReconnect({ code, reason });
  }

  private scheduleReconnect(info: { code?: number; reason?: string }): void {
    if (this.closedByUser) return;
    if (this.attempt >= this.backoff.maxAttempts) {
      this.setState("closed", info);
      this.rejectWaiters(new PresenceError("disconnected", `gave up after ${this.attempt} attempts`));
      return;
    }
    const delayMs = backoffDelay(this.attempt, this.backoff, this.options.random);
    this.attempt++;
    this.setState("reconnecting", { ...info, delayMs }, true);
    clearTimer(this.reconnectTimer);
    this.reconnectTimer = setTimer(() => {
      this.reconnectTimer = null;
      void this.openSocket();
    }, delayMs);
  }

  /** Stops timers and fails every request in flight. */
  private teardown(error: PresenceError): void {
    for (const timer of [this.reconnectTimer, this.connectTimer, this.pingTimer, this.heartbeatTimer]) clearTimer(timer);
    this.reconnectTimer = this.connectTimer = this.pingTimer = this.heartbeatTimer = null;
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onmessage = null;
      socket.onclose = null;
      socket.onopen = null;
      // Keep an error handler: some implementations (ws) throw on unhandled errors.
      socket.onerror = () => {};
    }
    for (const [id, pending] of this.pending) {
      clearTimer(pending.timer);
      this.pending.delete(id);
      pending.reject(error);
    }
    if (this.closedByUser) this.rejectWaiters(error);
  }

  private rejectWaiters(error: PresenceError): void {
    for (const waiter of [...this.waiters]) {
      clearTimer(waiter.timer);
      waiter.reject(error);
    }
    this.waiters.clear();
  }

  private setState(state: ConnectionState, info: { delayMs?: number; code?: number; reason?: string }, force = false): void {
    if (state === this.currentState && !force) return;
    this.currentState = state;
    this.emit("connection", { state, attempt: this.attempt, ...info });
  }

  // ─── requests ──────────────────────────────────────────────────────────────

  private rawSend(frame: string): boolean {
    const socket = this.socket;
    if (!socket || socket.readyState !== OPEN) return false;
    try {
      socket.send(frame);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Sends a request and resolves with the reply carrying its id. User requests
   * wait for the client to be open; everything is bounded by one timeout.
   */
  private async request<T extends ServerMessage["type"]>(message: ClientMessage, expect: T, { internal = false }: { internal?: boolean } = {}): Promise<Reply<T>> {
    const timeoutMs = this.options.requestTimeoutMs ?? 10_000;
    const started = Date.now();
    if (!internal) {
      if (this.closedByUser) throw new PresenceError("disconnected", "the client is closed");
      if (this.currentState !== "open") await this.ready(timeoutMs);
    }
    const id = this.nextRequestId++;
    const remaining = Math.max(1, timeoutMs - (Date.now() - started));
    return new Promise<Reply<T>>((resolve, reject) => {
      const timer = setTimer(() => {
        this.pending.delete(id);
        reject(new PresenceError("timeout", `no reply to ${message.type} within ${timeoutMs} ms`));
      }, remaining);
      this.pending.set(id, { expect, resolve: resolve as (m: ServerMessage) => void, reject, timer });
      if (!this.rawSend(JSON.stringify({ ...message, id }))) {
        clearTimer(timer);
        this.pending.delete(id);
        reject(new PresenceError("disconnected", "the connection is not open"));
      }
    });
  }

  private async sendHeartbeat(internal = false): Promise<Presence> {
    const { position, realm, status, statusText } = this.desired;
    if (!position || !realm) throw new PresenceError("no_position", "send heartbeat({ position, realm }) (or pass `initial`) first");
    const sent = this.expiry;
    // Always explicit: the deadline as the server gave it, or none (a status set for good drops an older deadline).
    const deadline: Pick<HeartbeatBody, "expiresAt" | "expiresInMs"> = sent === null ? { expiresAt: null } : "inMs" in sent ? { expiresInMs: sent.inMs } : { expiresAt: sent.at };
    const body = { position, realm, status, ...(statusText === null ? {} : { statusText }), ...deadline };
    const generation = this.generation;
    const reply = await this.request({ type: "PositionHeartbeat", ...body }, "heartbeat_ack", { internal });
    if (sent !== null && this.expiry === sent) this.onExpiry(reply.expiresAt);
    this.onSelf(reply.presence);
    // What the server now holds for this device: the deadline as it answered it.
    if (generation === this.generation) this.acked = { generation, key: heartbeatKey(position, realm, status, statusText, reply.expiresAt ?? null) };
    return reply.presence;
  }

  /**
   * Whether the next periodic heartbeat would say nothing the server has not
   * acknowledged on this socket: then the keep-alive ping alone is the sign of
   * life (PROTOCOL.md, "Keeping the socket alive").
   */
  private repeatsAcked(): boolean {
    if (this.options.heartbeatWhenUnchanged || !this.pingsKeepAlive || this.acked?.generation !== this.generation) return false;
    const { position, realm, status, statusText } = this.desired;
    if (!position || !realm) return false;
    const expiry = this.expiry;
    // A deadline still to send as a duration is news to the server.
    if (expiry !== null && "inMs" in expiry) return false;
    return heartbeatKey(position, realm, status, statusText, expiry === null ? null : expiry.at) === this.acked.key;
  }

  /** The server's answer about the deadline: keep its time (and follow it locally then), or it has passed: revert. */
  private onExpiry(expiresAt: number | undefined): void {
    clearTimer(this.expiryTimer);
    this.expiryTimer = null;
    if (expiresAt === undefined) {
      this.expiry = null;
      const { status } = this.desired;
      this.desired = { ...this.desired, status: status === "busy" || status === "invisible" ? "online" : status, statusText: null };
      return;
    }
    this.expiry = { at: expiresAt };
    // Then say so: the server has reverted on its own; the heartbeat brings `self` (and this client) along.
    this.expiryTimer = setTimer(
      () => {
        if (this.closedByUser) return;
        // Timers are capped (about 24 days): a later deadline is waited for in steps.
        if (Date.now() < expiresAt) return this.onExpiry(expiresAt);
        this.onExpiry(undefined);
        if (this.desired.position && this.desired.realm) this.sendHeartbeat(true).catch((error: PresenceError) => this.reportBackground(error));
      },
      Math.min(Math.max(0, expiresAt - Date.now()) + 250, 2_000_000_000),
    );
  }

  private onSelf(presence: Presence): void {
    if (this.selfPresence && presence.seq < this.selfPresence.seq) return;
    this.selfPresence = presence;
    this.emit("self", presence);
  }

  private reportBackground(error: PresenceError): void {
    if (error.code !== "disconnected") this.emit("error", error);
  }

  private applyChanges(changes: StateChange[]): void {
    for (const change of changes) {
      if (change.kind === "removed") {
        this.emit("friendRemoved", change.userId);
        continue;
      }
      if (change.kind === "added") this.emit("friendAdded", change.presence);
      const moved = transition(change);
      if (moved) this.emit(moved, change.presence);
      this.emit("update", { presence: change.presence, previous: change.previous });
    }
  }

  // ─── HTTP ─────────────────────────────────────────────────────────────────

  private async http(method: string, path: string, body?: unknown): Promise<unknown> {
    const fetchImpl = this.options.fetch ?? globalFetch();
    if (!fetchImpl) throw new PresenceError("http", "no fetch here: pass `fetch`");
    const headers: Record<string, string> = { Authorization: `Bearer ${await this.token()}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response: FetchResponseLike;
    try {
      response = await fetchImpl(this.httpUrl(path), { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    } catch (error) {
      throw new PresenceError("http", `${method} ${path} failed: ${String(error)}`);
    }
    const json = (await response.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
    if (!response.ok) {
      throw new PresenceError("http", `${method} ${path}: ${response.status} ${json?.error?.code ?? ""} ${json?.error?.message ?? ""}`.trim(), response.status);
    }
    return json;
  }
}

/** Opens a presence connection; it connects, subscribes and reconnects on its own. */
export function connect(options: ConnectOptions): PresenceClient {
  return new PresenceClient(options);
}

/** What a heartbeat tells the server, as a comparable string. */
function heartbeatKey(position: Position, realm: string, status: DeviceStatus, statusText: string | null, expiresAt: number | null): string {
  return JSON.stringify([position.x, position.y, position.z, realm, status, statusText, expiresAt]);
}
