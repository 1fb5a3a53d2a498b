/**
 * From edge-presence's vocabulary to the Decentraland social service's
 * (decentraland.social_service.v2): connectivity statuses, friendship states,
 * profiles, pagination, and the compact, JSON-serializable form in which
 * stream updates wait in a socket's attachment until the client acks.
 *
 * No Cloudflare imports here.
 */
import "./protobuf";
import {
  BlockUpdate,
  ConnectivityStatus,
  FriendConnectivityUpdate,
  FriendshipStatus,
  FriendshipUpdate,
  type FriendProfile,
  type Pagination,
} from "@dcl/protocol/out-js/decentraland/social_service/v2/social_service_v2.gen";
import type { EdgeState } from "../presence/friendship";
import type { Presence, PublicStatus } from "../presence/types";
import type { DclEvent, DclProfile } from "./backend";

export { ConnectivityStatus, FriendshipStatus };

// ─── addresses ──────────────────────────────────────────────────────────────

const ETH_ADDRESS = /^0x[0-9a-fA-F]{40}$/;

/** A Decentraland user id: an Ethereum address. */
export function isEthAddress(value: unknown): value is string {
  return typeof value === "string" && ETH_ADDRESS.test(value);
}

/** The user id edge-presence uses for an address: lowercase, as the real service normalizes it. */
export function normalizeAddress(address: string): string {
  return address.toLowerCase();
}

// ─── presence → connectivity ────────────────────────────────────────────────

/**
 * What a DCL client is told about a friend's public status: online and busy
 * are ONLINE, away is AWAY, offline (which covers invisible) is OFFLINE.
 * `unknown` ("this object cannot reach the friend's object") has no DCL
 * counterpart and is never guessed as ONLINE: it is absent from snapshots and
 * sent as OFFLINE in live updates (see `liveConnectivity`).
 */
export function toConnectivity(status: PublicStatus): ConnectivityStatus | null {
  switch (status) {
    case "online":
    case "busy":
      return ConnectivityStatus.ONLINE;
    case "away":
      return ConnectivityStatus.AWAY;
    case "offline":
      return ConnectivityStatus.OFFLINE;
    case "unknown":
      return null;
  }
}

/** A live change: `unknown` reads as OFFLINE (the client must not keep showing someone we cannot vouch for). */
export function liveConnectivity(status: PublicStatus): ConnectivityStatus {
  return toConnectivity(status) ?? ConnectivityStatus.OFFLINE;
}

// ─── stream updates as they wait in the attachment ──────────────────────────

/**
 * One stream element waiting for the client's ack, in a compact serializable
 * form (addresses lowercase; profiles are looked up when the element is sent,
 * so they never bloat the attachment).
 */
export type StreamUpdate =
  /** FriendConnectivityUpdate; `q` is the friend's presence seq, when known. */
  | { k: "c"; a: string; s: ConnectivityStatus; q?: number }
  /** FriendshipUpdate.request: `t` created at (ms), `m` the note. */
  | { k: "f"; u: "request"; a: string; t: number; m?: string }
  /** The other FriendshipUpdate cases, each naming the other user. */
  | { k: "f"; u: "accept" | "reject" | "delete" | "cancel" | "block"; a: string }
  /** BlockUpdate. */
  | { k: "b"; a: string; b: boolean };

export type StreamKind = "connectivity" | "friendship" | "block";

export const STREAM_OF: Record<StreamUpdate["k"], StreamKind> = { c: "connectivity", f: "friendship", b: "block" };

/** The connectivity element for a friend's presence; null when it says nothing (unknown, in a snapshot). */
export function connectivityUpdate(presence: Presence, live: boolean): StreamUpdate | null {
  const status = live ? liveConnectivity(presence.status) : toConnectivity(presence.status);
  if (status === null) return null;
  return { k: "c", a: normalizeAddress(presence.userId), s: status, q: presence.seq };
}

/** The opening snapshot: friends currently ONLINE or AWAY (an absent friend is offline), in address order. */
export function snapshotUpdates(online: Presence[]): StreamUpdate[] {
  const updates: StreamUpdate[] = [];
  for (const presence of online) {
    const update = connectivityUpdate(presence, false);
    if (update && update.k === "c" && update.s !== ConnectivityStatus.OFFLINE) updates.push(update);
  }
  return updates.sort((x, y) => (x.a < y.a ? -1 : x.a > y.a ? 1 : 0));
}

/**
 * What one object event means for a DCL client's streams. The user's own
 * actions are not echoed (as in the real service: a FriendshipUpdate goes to
 * the other user only); what others did, and a request that was refused, are.
 */
export function eventUpdates(event: DclEvent, now: number): StreamUpdate[] {
  switch (event.type) {
    case "presence": {
      const update = connectivityUpdate(event.presence, true);
      return update ? [update] : [];
    }
    case "block":
      return [{ k: "b", a: normalizeAddress(event.address), b: event.isBlocked }];
    case "friendship": {
      const a = normalizeAddress(event.userId);
      const updates: StreamUpdate[] = [];
      if (event.cause !== "local") {
        switch (event.change) {
          case "friend_request_incoming": {
            const request: StreamUpdate = { k: "f", u: "request", a, t: event.since ?? now };
            if (event.message) request.m = event.message;
            updates.push(request);
            break;
          }
          case "friend_added":
            updates.push({ k: "f", u: "accept", a });
            break;
          case "friend_request_rejected_outgoing":
          case "friend_request_failed":
            updates.push({ k: "f", u: "reject", a });
            break;
          case "friend_request_cancelled_incoming":
            updates.push({ k: "f", u: "cancel", a });
            break;
          case "friend_removed":
            updates.push({ k: "f", u: "delete", a });
            break;
          default:
            break;
        }
      }
      // Connectivity follows the friendship, whoever caused it: a new friend who
      // is online is announced (as the real service does on accept); an ex-friend
      // is left OFFLINE, so a removal or block hides their presence at once.
      if (event.change === "friend_added" && event.presence) {
        const update = connectivityUpdate(event.presence, false);
        if (update && update.k === "c" && update.s !== ConnectivityStatus.OFFLINE) updates.push(update);
      }
      if (event.change === "friend_removed") {
        updates.push({ k: "c", a, s: ConnectivityStatus.OFFLINE });
      }
      return updates;
    }
  }
}

// ─── profiles, ids ──────────────────────────────────────────────────────────

export const EMPTY_PROFILE: DclProfile = { name: "", hasClaimedName: false, profilePictureUrl: "" };

export function friendProfile(address: string, profile: DclProfile | undefined): FriendProfile {
  const p = profile ?? EMPTY_PROFILE;
  return { address, name: p.name, hasClaimedName: p.hasClaimedName, profilePictureUrl: p.profilePictureUrl };
}

/**
 * A stable id for the request from `from` to `to` (the real service uses its
 * row's UUID). At most one request per direction is pending at a time, so the
 * pair identifies it; both sides compute the same id. UUID-shaped (FNV-1a).
 */
export function requestId(from: string, to: string): string {
  const input = `${normalizeAddress(from)}>${normalizeAddress(to)}`;
  const words: number[] = [];
  for (let round = 0; round < 4; round++) {
    let hash = 0x811c9dc5 ^ round;
    for (let i = 0; i < input.length; i++) {
      hash ^= input.charCodeAt(i);
      hash = Math.imul(hash, 0x01000193);
    }
    words.push(hash >>> 0);
  }
  const hex = words.map((w) => w.toString(16).padStart(8, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

// ─── encoding stream elements ───────────────────────────────────────────────

export interface EncodeContext {
  /** The socket's user (lowercase address). */
  self: string;
  /** Profile lookup at send time; undefined → empty fields. */
  profile(address: string): DclProfile | undefined;
  /**
   * The opening snapshot of connectivity stream `n` (from `snapshotUpdates`,
   * sorted by address), if it is in memory; undefined → it must be read
   * (again, after hibernation). It is never stored in the attachment.
   */
  snapshot?(n: number): StreamUpdate[] | undefined;
}

/** The proto bytes of one stream element. */
export function encodeUpdate(update: StreamUpdate, context: EncodeContext): Uint8Array {
  switch (update.k) {
    case "c":
      return FriendConnectivityUpdate.encode({ friend: friendProfile(update.a, context.profile(update.a)), status: update.s }).finish();
    case "b":
      return BlockUpdate.encode({ address: update.a, isBlocked: update.b }).finish();
    case "f": {
      const user = { address: update.a };
      switch (update.u) {
        case "request":
          return FriendshipUpdate.encode({
            update: {
              $case: "request",
              request: { friend: friendProfile(update.a, context.profile(update.a)), createdAt: update.t, message: update.m, id: requestId(update.a, context.self) },
            },
          }).finish();
        case "accept":
          return FriendshipUpdate.encode({ update: { $case: "accept", accept: { user } } }).finish();
        case "reject":
          return FriendshipUpdate.encode({ update: { $case: "reject", reject: { user } } }).finish();
        case "delete":
          return FriendshipUpdate.encode({ update: { $case: "delete", delete: { user } } }).finish();
        case "cancel":
          return FriendshipUpdate.encode({ update: { $case: "cancel", cancel: { user } } }).finish();
        case "block":
          return FriendshipUpdate.encode({ update: { $case: "block", block: { user } } }).finish();
      }
    }
  }
}

// ─── friendship state, pagination ───────────────────────────────────────────

/**
 * GetFriendshipStatus. edge-presence keeps the current state of an edge, not
 * the last action, so CANCELED / REJECTED / DELETED all read as NONE; and a
 * block is never revealed to the blocked user, so BLOCKED_BY is never sent.
 */
export function friendshipStatus(state: EdgeState): FriendshipStatus {
  switch (state) {
    case "friends":
      return FriendshipStatus.ACCEPTED;
    case "outgoing":
      return FriendshipStatus.REQUEST_SENT;
    case "incoming":
      return FriendshipStatus.REQUEST_RECEIVED;
    case "blocked":
      return FriendshipStatus.BLOCKED;
    case "none":
      return FriendshipStatus.NONE;
  }
}

/** Page sizes of the real service: each at or above the largest page a shipping client asks for. */
export const PAGE_LIMITS = {
  friends: { defaultLimit: 1000, maxLimit: 1000 },
  requests: { defaultLimit: 100, maxLimit: 200 },
  blocked: { defaultLimit: 200, maxLimit: 200 },
} as const;
const MAX_OFFSET = 100_000;

/** Missing, zero, negative, fractional or huge values become safe ones (never an unbounded page). */
export function normalizePagination(pagination: Pagination | undefined, bounds: { defaultLimit: number; maxLimit: number }): Pagination {
  const limit = Number.isFinite(pagination?.limit) ? Math.floor(pagination!.limit) : 0;
  const offset = Number.isFinite(pagination?.offset) ? Math.floor(pagination!.offset) : 0;
  return {
    limit: limit >= 1 ? Math.min(limit, bounds.maxLimit) : bounds.defaultLimit,
    offset: offset >= 0 ? Math.min(offset, MAX_OFFSET) : 0,
  };
}

/** One page of `items` and the `PaginatedResponse` that describes it (page numbers start at 1). */
export function paginate<T>(items: T[], pagination: Pagination): { page: T[]; paginationData: { total: number; page: number } } {
  return {
    page: items.slice(pagination.offset, pagination.offset + pagination.limit),
    paginationData: { total: items.length, page: Math.ceil(pagination.offset / pagination.limit) + 1 },
  };
}
