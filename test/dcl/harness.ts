/**
 * Test harness for the Decentraland endpoint, in plain Node:
 *   - identities made with @dcl/crypto and signed headers made with
 *     decentraland-crypto-fetch, as the real social service's integration tests do;
 *   - a `World` of users whose friendships follow the project's own rules
 *     (src/presence/friendship.ts) and whose presence is pushed to friends'
 *     sockets, standing in for the UserPresence objects (DclBackend);
 *   - `connect()`: the REAL @dcl/rpc client (createRpcClient + loadService)
 *     over an in-memory transport to the pure server: the handshake (the
 *     worker's part), then DclEndpoint (the object's part), whose state is
 *     stored as a JSON string after every step and parsed again before the
 *     next, with a new endpoint instance per event (what hibernation does).
 */
import mitt from "mitt";
import { createRpcClient, type Transport, type TransportEvents } from "@dcl/rpc";
import { loadService, type RpcClientModule } from "@dcl/rpc/dist/codegen";
import { SocialServiceDefinition } from "@dcl/protocol/out-js/decentraland/social_service/v2/social_service_v2.gen";
import { Authenticator, type AuthIdentity } from "@dcl/crypto";
import { createUnsafeIdentity } from "@dcl/crypto/dist/crypto";
import { signedHeaderFactory } from "decentraland-crypto-fetch";
import { verifyAuthHeaders } from "../../src/dcl/auth";
import type { DclBackend, DclEvent, DclFriendshipOp, DclProfile, FriendshipOutcome } from "../../src/dcl/backend";
import type { StreamUpdate } from "../../src/dcl/mapping";
import { DclEndpoint, type DclSocketIO, type DclSocketState } from "../../src/dcl/endpoint";
import { handshakeFrame, handshakeVerified, expire, startHandshake, type HandshakeState, type HandshakeStep } from "../../src/dcl/handshake";
import { applyRemote, deriveState, NO_EDGE, onReply, planLocal, transitionEvents, type Edge, type FriendshipEvent } from "../../src/presence/friendship";
import type { DeviceStatus, Presence, PublicStatus } from "../../src/presence/types";

// ─── identities ─────────────────────────────────────────────────────────────

export interface Identity {
  /** Lowercase address of the real account (the user id). */
  address: string;
  authChain: AuthIdentity;
}

/** A wallet and an ephemeral key it authorised for `ephemeralMinutes` (negative: already expired). */
export async function createIdentity(ephemeralMinutes = 10): Promise<Identity> {
  const ephemeral = createUnsafeIdentity();
  const account = createUnsafeIdentity();
  const authChain = await Authenticator.initializeAuthChain(account.address, ephemeral, ephemeralMinutes, async (message) => Authenticator.createSignature(account, message));
  return { address: account.address.toLowerCase(), authChain };
}

/** The first frame a client sends: signed-fetch headers for GET / (decentraland-crypto-fetch, as the real tests). */
export function authHeaders(identity: Identity, metadata: Record<string, unknown> = {}): Record<string, string> {
  const sign = signedHeaderFactory();
  return Object.fromEntries(sign(identity.authChain, "get", "/", metadata).entries());
}

/** The same headers with a chosen timestamp and payload spelling (crypto-fetch always signs "now"). */
export function authHeadersAt(identity: Identity, timestamp: number, metadata = "{}", payload = `get:/:${timestamp}:${metadata}`): Record<string, string> {
  const chain = Authenticator.signPayload(identity.authChain, payload);
  const headers: Record<string, string> = {};
  for (const [i, link] of chain.entries()) headers[`x-identity-auth-chain-${i}`] = JSON.stringify(link);
  headers["x-identity-timestamp"] = String(timestamp);
  headers["x-identity-metadata"] = metadata;
  return headers;
}

// ─── the world: users, friendships, presence ────────────────────────────────

type Listener = (events: DclEvent[]) => Promise<void> | void;

interface EdgeRow {
  edge: Edge;
  message: string | null;
  since: number;
}

const RANK: Record<Exclude<DeviceStatus, "invisible">, number> = { online: 3, busy: 2, away: 1 };

/** One user as their object would behave, reduced to what the endpoint sees. */
export class SimUser {
  readonly edges = new Map<string, EdgeRow>();
  readonly devices = new Map<string, DeviceStatus>();
  readonly listeners = new Set<Listener>();
  seq = 0;
  private shown: PublicStatus = "offline";
  /** Calls the endpoint made on this user's backend, by name. */
  readonly calls: string[] = [];
  /** Set to delay onlineFriends() (to race live updates against the snapshot). */
  snapshotGate: Promise<void> | null = null;

  constructor(
    readonly world: World,
    readonly id: string,
  ) {}

  edge(other: string): Edge {
    return this.edges.get(other)?.edge ?? NO_EDGE;
  }

  state(other: string) {
    return deriveState(this.edge(other));
  }

  friendIds(): string[] {
    return [...this.edges.keys()].filter((o) => this.state(o) === "friends").sort();
  }

  status(): PublicStatus {
    const statuses = [...this.devices.values()];
    if (statuses.length === 0 || statuses.includes("invisible")) return "offline";
    return statuses.reduce<Exclude<DeviceStatus, "invisible">>((best, s) => (s !== "invisible" && RANK[s] > RANK[best] ? s : best), "away");
  }

  presence(): Presence {
    const status = this.status();
    return { userId: this.id, status, realm: null, position: null, statusText: null, devices: [], lastActiveAt: this.world.clock, seq: this.seq };
  }

  /** A device says its status (a heartbeat), or goes away (null). Friends with a live client are told. */
  setDevice(deviceId: string, status: DeviceStatus | null): void {
    if (status === null) this.devices.delete(deviceId);
    else this.devices.set(deviceId, status);
    const now = this.status();
    if (now === this.shown) return;
    this.shown = now;
    this.seq++;
    const presence = this.presence();
    for (const friend of this.friendIds()) this.world.user(friend).deliver([{ type: "presence", presence }]);
  }

  deliver(events: DclEvent[]): void {
    for (const listener of this.listeners) void listener(events);
  }

  backend(): DclBackend {
    const record = <T>(name: string, value: T) => (this.calls.push(name), value);
    return {
      friendList: async () =>
        record("friendList", {
          friends: this.friendIds(),
          incoming: this.rows("incoming"),
          outgoing: this.rows("outgoing"),
          blocked: [...this.edges.keys()].filter((o) => this.state(o) === "blocked"),
          hiddenFrom: [],
          shareLocation: "all" as const,
          lastSeen: "all" as const,
          lastSeenShownTo: [],
        }),
      mutualFriends: async (other) =>
        record(
          "mutualFriends",
          this.friendIds().filter((f) => this.world.user(other).friendIds().includes(f)),
        ),
      onlineFriends: async () => {
        this.calls.push("onlineFriends");
        const read = () =>
          this.friendIds()
            .map((f) => this.world.user(f).presence())
            .filter((p) => p.status !== "offline");
        if (!this.snapshotGate) return read();
        // The snapshot is read late (after whatever happens while the gate is shut).
        await this.snapshotGate;
        return read();
      },
      friendship: async (other, op, message) => record("friendship", this.world.friendship(this.id, other, op, message)),
    };
  }

  private rows(state: "incoming" | "outgoing") {
    return [...this.edges.entries()].filter(([other]) => this.state(other) === state).map(([userId, row]) => ({ userId, message: row.message, since: row.since }));
  }
}

const CHANGE: Record<string, Extract<DclEvent, { type: "friendship" }>["change"]> = {
  "friend_request:incoming": "friend_request_incoming",
  "friend_request:outgoing": "friend_request_outgoing",
  "friend_request_cancelled:incoming": "friend_request_cancelled_incoming",
  "friend_request_cancelled:outgoing": "friend_request_cancelled_outgoing",
  "friend_request_rejected:incoming": "friend_request_rejected_incoming",
  "friend_request_rejected:outgoing": "friend_request_rejected_outgoing",
  friend_request_failed: "friend_request_failed",
  friend_added: "friend_added",
  friend_removed: "friend_removed",
  blocked: "blocked",
  unblocked: "unblocked",
};

export class World {
  clock = Date.now();
  readonly users = new Map<string, SimUser>();

  user(id: string): SimUser {
    let user = this.users.get(id);
    if (!user) {
      user = new SimUser(this, id);
      this.users.set(id, user);
    }
    return user;
  }

  /** Admin shortcut: make two users friends (no events). */
  befriend(a: string, b: string): void {
    this.user(a).edges.set(b, { edge: { mine: "want", myVersion: 1, theirs: "want", theirVersion: 1 }, message: null, since: this.clock });
    this.user(b).edges.set(a, { edge: { mine: "want", myVersion: 1, theirs: "want", theirVersion: 1 }, message: null, since: this.clock });
  }

  /** One friendship operation, with both sides' events, as UserPresence.friendship does it (delivery succeeds at once). */
  friendship(self: string, other: string, op: DclFriendshipOp, message: string | null): FriendshipOutcome {
    if (self === other) return { ok: false, code: "cannot_befriend_self", message: "that is you" };
    const me = this.user(self);
    const them = this.user(other);
    const before = me.state(other);
    const theirBefore = them.state(self);
    const plan = planLocal(me.edge(other), op);
    if (!plan.ok) return plan;
    const setEdge = (user: SimUser, peer: string, edge: Edge, note: string | null) => {
      const row = user.edges.get(peer);
      const changed = !row || deriveState(row.edge) !== deriveState(edge);
      user.edges.set(peer, { edge, message: note ?? (changed ? null : (row?.message ?? null)), since: changed ? this.clock : row!.since });
    };
    setEdge(me, other, plan.edge, op === "request" ? message : null);
    const afterLocal = me.state(other);
    if (plan.send) {
      const { edge, reply } = applyRemote(them.edge(self), plan.send, { registered: true, pendingLimitReached: false, friendLimitReached: false });
      setEdge(them, self, edge, plan.send.intent === "want" ? message : null);
      setEdge(me, other, onReply(me.edge(other), plan.send, reply), null);
    }
    const final = me.state(other);
    this.emit(me, other, transitionEvents(before, afterLocal, "local"), "local");
    this.emit(me, other, transitionEvents(afterLocal, final, "reply"), "reply");
    this.emit(them, self, transitionEvents(theirBefore, them.state(self), "remote"), "remote");
    if (op === "request" && final === "none") return { ok: false, code: "user_not_found", message: "no such user" };
    return { ok: true, userId: other, state: final, pending: false };
  }

  private emit(user: SimUser, other: string, events: FriendshipEvent[], cause: "local" | "remote" | "reply"): void {
    if (events.length === 0) return;
    const row = user.edges.get(other);
    user.deliver(
      events.map((event) => {
        const key = "direction" in event ? `${event.type}:${event.direction}` : event.type;
        return {
          type: "friendship",
          userId: other,
          change: CHANGE[key]!,
          cause,
          message: row?.message ?? null,
          since: row?.since,
          ...(event.type === "friend_added" ? { presence: this.user(other).presence() } : {}),
        };
      }),
    );
  }
}

// ─── a client connected to the pure server ──────────────────────────────────

export const ATTACHMENT_LIMIT = 16 * 1024;
const SocialService = SocialServiceDefinition;
export type SocialClient = RpcClientModule<typeof SocialService, {}>;

let sockets = 0;

/** The server end of one socket: the handshake (worker), then the endpoint (object) with its attachment. */
export class ServerSocket {
  /** The attachment, exactly as stored: a JSON string. */
  attachment: string | null = null;
  largestAttachment = 0;
  handshake: HandshakeState;
  closed: { code: number; reason: string } | null = null;
  readonly deviceId = `dcl-${++sockets}`;
  address: string | null = null;
  /** What the object keeps in memory for this socket (gone on hibernation). */
  private memory = { snapshots: new Map<number, StreamUpdate[] | "reading">(), profileCache: new Map<string, DclProfile>() };
  private readonly listener: Listener = (events) => this.endpoint().onEvents(events);

  constructor(
    readonly world: World,
    private readonly toClient: (frame: string | Uint8Array) => void,
    private readonly onClosed: (code: number, reason: string) => void,
    timeoutMs?: number,
  ) {
    this.handshake = startHandshake(world.clock, timeoutMs);
  }

  readonly io: DclSocketIO = {
    load: () => (this.attachment === null || this.closed ? null : (JSON.parse(this.attachment) as DclSocketState)),
    save: (state) => {
      this.attachment = JSON.stringify(state);
      this.largestAttachment = Math.max(this.largestAttachment, new TextEncoder().encode(this.attachment).length);
      if (this.largestAttachment > ATTACHMENT_LIMIT) throw new Error(`attachment of ${this.largestAttachment} bytes`);
    },
    send: (frame) => this.toClient(new Uint8Array(frame)),
    close: (code, reason) => this.close(code, reason),
  };

  /** A fresh endpoint per event: nothing survives in memory between events, as after hibernation. */
  endpoint(): DclEndpoint {
    return new DclEndpoint(this.io, this.world.user(this.address!).backend(), { now: () => this.world.clock, ...this.memory });
  }

  /** The object is evicted: only the attachment (a JSON string) survives. */
  hibernate(): void {
    this.memory = { snapshots: new Map(), profileCache: new Map() };
  }

  fromClient(frame: string | Uint8Array): void {
    if (this.closed) return;
    if (this.handshake.phase === "ready") {
      if (typeof frame === "string") this.toClient(JSON.stringify({ error: "expected binary @dcl/rpc frames" }));
      else void this.endpoint().onFrame(frame);
      return;
    }
    this.onHandshake(handshakeFrame(this.handshake, frame, this.world.clock));
  }

  /** The worker's timer. */
  tick(): void {
    if (!this.closed) this.onHandshake(expire(this.handshake, this.world.clock));
  }

  private onHandshake(step: HandshakeStep): void {
    this.handshake = step.state;
    for (const text of step.send) this.toClient(text);
    if (step.close) {
      this.close(step.close.code, step.close.reason);
      return;
    }
    if (step.verify) {
      void verifyAuthHeaders(step.verify, { now: this.world.clock }).then((result) => this.onHandshake(handshakeVerified(this.handshake, result)));
      return;
    }
    if (step.state.phase === "ready" && this.address === null) {
      // The user's object accepts the socket: a live device of this user, and the RPC state.
      this.address = step.state.address;
      DclEndpoint.open(this.io, this.address);
      const user = this.world.user(this.address);
      user.listeners.add(this.listener);
      user.setDevice(this.deviceId, "online");
      for (const frame of step.forward) void this.endpoint().onFrame(frame);
    }
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = { code, reason };
    if (this.address) {
      const user = this.world.user(this.address);
      user.listeners.delete(this.listener);
      user.setDevice(this.deviceId, null);
    }
    this.onClosed(code, reason);
  }
}

export interface Connection {
  server: ServerSocket;
  transport: Transport;
  /** Text frames the client received (error notices). */
  texts: string[];
  closed: Promise<{ code: number; reason: string }>;
  /** The client closes the socket. */
  close(): void;
}

/** Opens a socket (not yet authenticated). Frames travel asynchronously and in order, both ways. */
export function openSocket(world: World, options: { timeoutMs?: number } = {}): Connection & { sendText(text: string): void } {
  const events = mitt<TransportEvents>();
  const texts: string[] = [];
  let resolveClosed!: (value: { code: number; reason: string }) => void;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => (resolveClosed = resolve));
  let open = true;
  const later = (fn: () => void) => void Promise.resolve().then(fn);
  const server = new ServerSocket(
    world,
    (frame) =>
      later(() => {
        if (!open) return;
        if (typeof frame === "string") texts.push(frame);
        else events.emit("message", frame);
      }),
    (code, reason) =>
      later(() => {
        open = false;
        resolveClosed({ code, reason });
        events.emit("close", {});
      }),
    options.timeoutMs,
  );
  const transport: Transport = {
    ...events,
    get isConnected() {
      return open;
    },
    sendMessage(message: Uint8Array) {
      const copy = new Uint8Array(message);
      later(() => server.fromClient(copy));
    },
    close() {
      if (open) server.close(1000, "client closed");
    },
  };
  return {
    server,
    transport,
    texts,
    closed,
    close: () => transport.close(),
    sendText: (text: string) => later(() => server.fromClient(text)),
  };
}

export interface Client extends Connection {
  service: SocialClient;
  address: string;
}

/**
 * A real @dcl/rpc client session, as the real service's tests open one: the
 * auth headers first, then createRpcClient → createPort → loadService,
 * pipelined without waiting for the server.
 */
export async function connect(world: World, identity: Identity, options: { binaryAuth?: boolean } = {}): Promise<Client> {
  const socket = openSocket(world);
  const auth = JSON.stringify(authHeaders(identity));
  if (options.binaryAuth) socket.transport.sendMessage(new TextEncoder().encode(auth));
  else socket.sendText(auth);
  const client = await createRpcClient(socket.transport);
  const port = await client.createPort("edge-presence-test");
  return { ...socket, service: loadService(port, SocialService), address: identity.address };
}

// ─── waiting ────────────────────────────────────────────────────────────────

export async function until(check: () => boolean, what: string, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Lets every queued frame and call run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setTimeout(resolve, 0));
}

/** Consumes a server stream in the background, as a client's for-await loop would. */
export function collect<T>(stream: AsyncIterable<T>): { items: T[]; error: unknown; done: boolean; stop(): Promise<void> } {
  const iterator = stream[Symbol.asyncIterator]();
  const state = { items: [] as T[], error: undefined as unknown, done: false, stop: async () => void (await iterator.return?.()) };
  void (async () => {
    try {
      for (;;) {
        const next = await iterator.next();
        if (next.done) break;
        state.items.push(next.value);
      }
    } catch (error) {
      state.error = error;
    }
    state.done = true;
  })();
  return state;
}
