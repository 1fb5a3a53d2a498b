/**
 * DclEndpoint: one authenticated Decentraland socket, as the user's Durable
 * Object drives it. It glues the pure RPC state machine (rpc.ts) to the
 * socket (its attachment holds the state) and to the object (DclBackend).
 *
 * Every step reads the state from the socket, applies one pure function and
 * writes it back before anything is awaited, so a socket that hibernates
 * between frames, or frames and pushes that interleave while a backend call is
 * out, never lose a write. An instance holds nothing that matters: create one
 * per event.
 *
 * No Cloudflare imports here.
 */
import type { Pagination } from "@dcl/protocol/out-js/decentraland/social_service/v2/social_service_v2.gen";
import { requestMessageSchema } from "../presence/schema";
import type { EdgeState } from "../presence/friendship";
import type { DclBackend, DclEvent, DclFriendshipOp, DclProfile, FriendshipOutcome } from "./backend";
import {
  EMPTY_PROFILE,
  eventUpdates,
  friendProfile,
  friendshipStatus,
  isEthAddress,
  normalizeAddress,
  normalizePagination,
  PAGE_LIMITS,
  paginate,
  requestId,
  snapshotUpdates,
  type EncodeContext,
  type StreamUpdate,
} from "./mapping";
import {
  answerFrame,
  DEFAULT_LIMITS,
  initialRpcState,
  push,
  receive,
  remoteErrorFrame,
  serverReadyFrame,
  snapshotReady,
  type Call,
  type MethodRequest,
  type MethodResponse,
  type RpcLimits,
  type RpcState,
  type Step,
  type UnaryMethod,
} from "./rpc";

/** What a DCL socket's attachment holds for this endpoint. */
export interface DclSocketState {
  /** The user (lowercase address), fixed at authentication. */
  address: string;
  rpc: RpcState;
}

/** The socket as the endpoint sees it: its stored state, and a way to send and close. */
export interface DclSocketIO {
  load(): DclSocketState | null;
  save(state: DclSocketState): void;
  send(frame: Uint8Array): void;
  close(code: number, reason: string): void;
}

export interface DclEndpointOptions {
  now?: () => number;
  limits?: RpcLimits;
  /**
   * Profiles already fetched through `backend.profiles` (kept by the object in
   * memory; lost on hibernation, then fetched again). Optional.
   */
  profileCache?: Map<string, DclProfile>;
  /**
   * This socket's connectivity snapshots by stream, kept by the object in
   * memory while they are being sent (lost on hibernation, then read again).
   * Without one, each event reads the snapshot again.
   */
  snapshots?: Map<number, StreamUpdate[] | "reading">;
}

type Unary<K extends UnaryMethod> = (request: MethodRequest<K>) => Promise<MethodResponse<K>>;

/** Edge states that a DCL user id can have (others are JWT users with non-address ids, which DCL clients cannot show). */
const dclIds = (ids: string[]) => ids.filter(isEthAddress).map(normalizeAddress);

export class DclEndpoint {
  private readonly now: () => number;
  private readonly limits: RpcLimits;
  private readonly profiles: Map<string, DclProfile>;
  private readonly snapshots: Map<number, StreamUpdate[] | "reading">;

  constructor(
    private readonly io: DclSocketIO,
    private readonly backend: DclBackend,
    options: DclEndpointOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.limits = options.limits ?? DEFAULT_LIMITS;
    this.profiles = options.profileCache ?? new Map();
    this.snapshots = options.snapshots ?? new Map();
  }

  /** The socket was accepted for `address`: store the initial state and tell the client the server is ready. */
  static open(io: DclSocketIO, address: string): void {
    io.save({ address: normalizeAddress(address), rpc: initialRpcState() });
    io.send(serverReadyFrame());
  }

  /**
   * One binary frame from the client. The step runs before the first await:
   * calling onFrame for frames in arrival order processes them in that order,
   * even while earlier frames' backend calls are still out. (A Blob must be
   * read into an ArrayBuffer by the caller, in order; the hibernation API
   * delivers ArrayBuffers.)
   */
  async onFrame(input: ArrayBuffer | ArrayBufferView): Promise<void> {
    const frame = input instanceof ArrayBuffer ? new Uint8Array(input) : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    const calls = this.apply((state, context) => receive(state.rpc, frame, context, this.limits));
    await this.prefetchQueued();
    for (const call of calls) await this.run(call);
  }

  /**
   * What the object broadcasts (friends' presence, friendship changes), for
   * this socket's open streams. Applied before the first await, so calls made
   * in the order of the events keep that order.
   */
  async onEvents(events: DclEvent[]): Promise<void> {
    const now = this.now();
    const updates = events.flatMap((event) => eventUpdates(event, now));
    if (updates.length === 0) return;
    const calls = this.apply((state, context) => push(state.rpc, updates, context, this.limits));
    await this.prefetchQueued();
    for (const call of calls) await this.run(call);
  }

  /** Load, step, save, send: synchronously, so nothing interleaves. Returns the calls to make. */
  private apply(stepOf: (state: DclSocketState, context: EncodeContext) => Step): Call[] {
    const state = this.io.load();
    if (!state) return [];
    const step = stepOf(state, this.context(state.address));
    this.io.save({ ...state, rpc: step.state });
    for (const n of this.snapshots.keys()) if (!step.state.streams.some((s) => s.n === n && s.snapshot)) this.snapshots.delete(n);
    for (const frame of step.send) this.io.send(frame);
    if (step.close) {
      this.io.close(step.close.code, step.close.reason);
      return [];
    }
    return step.calls;
  }

  private context(self: string): EncodeContext {
    return {
      self,
      profile: (address) => this.profiles.get(address),
      snapshot: (n) => {
        const snapshot = this.snapshots.get(n);
        return Array.isArray(snapshot) ? snapshot : undefined;
      },
    };
  }

  private async run(call: Call): Promise<void> {
    if (call.type === "snapshot") {
      if (this.snapshots.has(call.n)) return; // in memory already, or being read
      this.snapshots.set(call.n, "reading");
      let online: Awaited<ReturnType<DclBackend["onlineFriends"]>> = [];
      try {
        online = (await this.backend.onlineFriends()).filter((p) => isEthAddress(p.userId));
      } catch (error) {
        // Best effort, as the real service: the stream goes on with live updates only.
        console.warn("dcl: connectivity snapshot failed", String(error));
      }
      const snapshot = snapshotUpdates(online);
      await this.prefetch(snapshot.slice(0, 50).map((u) => u.a));
      this.snapshots.set(call.n, snapshot);
      const calls = this.apply((state, context) => snapshotReady(state.rpc, call.n, context));
      for (const next of calls) await this.run(next);
      return;
    }
    const state = this.io.load();
    if (!state) return;
    let frame: Uint8Array;
    try {
      const handler = this.handlers(state.address)[call.method] as Unary<UnaryMethod>;
      frame = answerFrame(call.n, call.method, await handler(call.request));
    } catch (error) {
      console.error(`dcl: ${call.method} failed`, error);
      frame = remoteErrorFrame(call.n, "the request failed; it is safe to retry");
    }
    if (this.io.load()) this.io.send(frame);
  }

  // ─── profiles ─────────────────────────────────────────────────────────────

  /** Profiles of the elements that the next acks will send (best effort: they go with empty fields otherwise). */
  private async prefetchQueued(): Promise<void> {
    if (!this.backend.profiles) return;
    const state = this.io.load();
    if (state) await this.prefetch(state.rpc.streams.flatMap((s) => s.queue.slice(0, 4).map((u) => u.a)));
  }

  private async prefetch(addresses: string[]): Promise<void> {
    if (!this.backend.profiles) return;
    const missing = [...new Set(addresses)].filter((a) => !this.profiles.has(a));
    if (missing.length === 0) return;
    try {
      const found = await this.backend.profiles(missing);
      for (const [address, profile] of found) this.profiles.set(normalizeAddress(address), profile);
    } catch (error) {
      // Never drop or delay an update for a profile: send empty fields.
      console.warn("dcl: profile lookup failed", String(error));
    }
  }

  private async profileOf(addresses: string[]): Promise<(address: string) => DclProfile> {
    await this.prefetch(addresses);
    return (address) => this.profiles.get(address) ?? EMPTY_PROFILE;
  }

  // ─── the RPCs ─────────────────────────────────────────────────────────────

  private handlers(self: string): { [K in UnaryMethod]: Unary<K> } {
    const backend = this.backend;
    const friendsPage = async (ids: string[], pagination: Pagination | undefined) => {
      const { page, paginationData } = paginate(ids, normalizePagination(pagination, PAGE_LIMITS.friends));
      const profile = await this.profileOf(page);
      return { friends: page.map((a) => friendProfile(a, profile(a))), paginationData };
    };
    const requestsPage = async (rows: { userId: string; message: string | null; since: number }[], pagination: Pagination | undefined, incoming: boolean) => {
      const dcl = rows.filter((r) => isEthAddress(r.userId)).map((r) => ({ ...r, userId: normalizeAddress(r.userId) }));
      const { page, paginationData } = paginate(dcl, normalizePagination(pagination, PAGE_LIMITS.requests));
      const profile = await this.profileOf(page.map((r) => r.userId));
      const requests = page.map((r) => ({
        id: incoming ? requestId(r.userId, self) : requestId(self, r.userId),
        friend: friendProfile(r.userId, profile(r.userId)),
        createdAt: r.since,
        message: r.message ?? "",
      }));
      return { response: { $case: "requests" as const, requests: { requests } }, paginationData };
    };
    /** The other user of a request, or why not. */
    const target = (address: string | undefined): string | null => (isEthAddress(address) ? normalizeAddress(address) : null);
    const blockedProfile = async (address: string, blockedAt?: number) => {
      const profile = (await this.profileOf([address]))(address);
      return { address, name: profile.name, hasClaimedName: profile.hasClaimedName, profilePictureUrl: profile.profilePictureUrl, blockedAt };
    };

    return {
      getFriends: async (request) => friendsPage(dclIds((await backend.friendList()).friends), request.pagination),

      getMutualFriends: async (request) => {
        const other = target(request.user?.address);
        // As the real service: an invalid request is an empty page, not an error.
        if (!other) return { friends: [], paginationData: { total: 0, page: 1 } };
        return friendsPage(dclIds(await backend.mutualFriends(other)), request.pagination);
      },

      getPendingFriendshipRequests: async (request) => requestsPage((await backend.friendList()).incoming, request.pagination, true),

      getSentFriendshipRequests: async (request) => requestsPage((await backend.friendList()).outgoing, request.pagination, false),

      upsertFriendship: async (request) => {
        const action = request.action;
        if (!action) return { response: { $case: "invalidRequest", invalidRequest: { message: "Unknown message" } } };
        const payload = (action as unknown as Record<string, { user?: { address: string } }>)[action.$case];
        const other = target(payload?.user?.address);
        if (!other) return { response: { $case: "invalidRequest", invalidRequest: { message: "Invalid user address in the request payload" } } };
        if (other === self) {
          return { response: { $case: "invalidFriendshipAction", invalidFriendshipAction: { message: "You cannot send a friendship request to yourself" } } };
        }
        let message: string | null = null;
        if (action.$case === "request" && action.request.message) {
          const parsed = requestMessageSchema.safeParse(action.request.message);
          if (!parsed.success) return { response: { $case: "invalidRequest", invalidRequest: { message: "Invalid friendship request message" } } };
          message = parsed.data ?? null;
        }
        const op: DclFriendshipOp = action.$case === "delete" ? "remove" : action.$case;
        const outcome = await backend.friendship(other, op, message);
        if (!outcome.ok) return upsertRefusal(outcome);
        const fromThem = action.$case === "accept" || action.$case === "reject";
        return {
          response: {
            $case: "accepted",
            accepted: {
              id: fromThem ? requestId(other, self) : requestId(self, other),
              createdAt: this.now(),
              friend: friendProfile(other, (await this.profileOf([other]))(other)),
              message: message ?? undefined,
            },
          },
        };
      },

      getFriendshipStatus: async (request) => {
        const other = target(request.user?.address);
        if (!other) return { response: { $case: "invalidRequest", invalidRequest: { message: "Invalid user address in the request payload" } } };
        const list = await backend.friendList();
        const incoming = list.incoming.find((r) => normalizeAddress(r.userId) === other);
        const state: EdgeState = list.friends.some((f) => normalizeAddress(f) === other)
          ? "friends"
          : incoming
            ? "incoming"
            : list.outgoing.some((r) => normalizeAddress(r.userId) === other)
              ? "outgoing"
              : list.blocked.some((b) => normalizeAddress(b) === other)
                ? "blocked"
                : "none";
        return { response: { $case: "accepted", accepted: { status: friendshipStatus(state), message: incoming?.message ?? undefined } } };
      },

      blockUser: async (request) => {
        const other = target(request.user?.address);
        if (!other) return { response: { $case: "invalidRequest", invalidRequest: { message: "Invalid user address in the request payload" } } };
        if (other === self) return { response: { $case: "invalidRequest", invalidRequest: { message: "Cannot block yourself" } } };
        const outcome = await backend.friendship(other, "block", null);
        if (!outcome.ok) return { response: { $case: "internalServerError", internalServerError: { message: outcome.message } } };
        return { response: { $case: "ok", ok: { profile: await blockedProfile(other, this.now()) } } };
      },

      unblockUser: async (request) => {
        const other = target(request.user?.address);
        if (!other) return { response: { $case: "invalidRequest", invalidRequest: { message: "Invalid user address in the request payload" } } };
        if (other === self) return { response: { $case: "invalidRequest", invalidRequest: { message: "Cannot unblock yourself" } } };
        const outcome = await backend.friendship(other, "unblock", null);
        // Unblocking someone who is not blocked leaves them not blocked: that is what was asked.
        if (!outcome.ok && outcome.code !== "not_blocked") {
          return { response: { $case: "internalServerError", internalServerError: { message: outcome.message } } };
        }
        return { response: { $case: "ok", ok: { profile: await blockedProfile(other) } } };
      },

      getBlockedUsers: async (request) => {
        const { page, paginationData } = paginate(dclIds((await backend.friendList()).blocked), normalizePagination(request.pagination, PAGE_LIMITS.blocked));
        return { profiles: await Promise.all(page.map((a) => blockedProfile(a))), paginationData };
      },

      getBlockingStatus: async () => ({
        blockedUsers: dclIds((await backend.friendList()).blocked),
        // edge-presence never tells a user who blocked them (docs/FRIENDSHIPS.md).
        blockedByUsers: [],
      }),
    };
  }
}

/** The object's refusal codes, as the real service words its errors. */
function upsertRefusal(outcome: Extract<FriendshipOutcome, { ok: false }>): MethodResponse<"upsertFriendship"> {
  switch (outcome.code) {
    case "friend_limit":
    case "request_limit":
    case "block_limit":
    case "rate_limited":
      return { response: { $case: "invalidRequest", invalidRequest: { message: outcome.message } } };
    case "already_friends":
    case "blocked":
    case "no_pending_request":
    case "not_friends":
    case "not_blocked":
    case "cannot_befriend_self":
    case "user_not_found":
      return { response: { $case: "invalidFriendshipAction", invalidFriendshipAction: { message: outcome.message } } };
    default:
      return { response: { $case: "internalServerError", internalServerError: { message: outcome.message } } };
  }
}
