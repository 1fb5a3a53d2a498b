/**
 * The wire protocol of edge-presence: every type and constant a client and the
 * server exchange. The one source for the worker, the Durable Objects and the
 * client SDK (which compiles this file into its build); docs/PROTOCOL.md is
 * the prose version. No imports, no runtime dependencies: keep it that way.
 * src/presence/schema.ts validates what clients send against these types.
 */

export const PROTOCOL_VERSION = "presence.v1";
/** `Sec-WebSocket-Protocol` entry carrying the token, for browsers: `bearer.<jwt>`. */
export const TOKEN_PROTOCOL_PREFIX = "bearer.";
/** Text frame answered by the runtime without waking the user's object; the answer is PONG_FRAME. */
export const PING_FRAME = "ping";
export const PONG_FRAME = "pong";

export const CloseCode = {
  normal: 1000,
  /** Too many invalid or rate-limited frames. */
  policyViolation: 1008,
  /** The device was silent for longer than the TTL; reconnect. */
  presenceExpired: 4000,
  /** Another socket connected with the same device id. */
  replaced: 4001,
} as const;

// ─── presence ────────────────────────────────────────────────────────────────

export const DEVICE_STATUSES = ["online", "away", "busy", "invisible"] as const;
/** What a device says about itself in a heartbeat. */
export type DeviceStatus = (typeof DEVICE_STATUSES)[number];
/**
 * What a friend sees. `offline` covers both "no live device" and "invisible";
 * `unknown` means the server could not reach that friend's object (the Matrix
 * "don't know" state) and will retry.
 */
export type PublicStatus = "online" | "away" | "busy" | "offline" | "unknown";
/** The kinds a client may say it is. */
export const DEVICE_KINDS = ["desktop", "mobile", "web"] as const;
/**
 * The kinds a friend may see: a client's own, `matrix` (one device for all of a
 * user's Matrix clients, docs/MATRIX.md) or `dcl` (one per Decentraland
 * connection, docs/DECENTRALAND.md). Only the server gives the last two.
 */
export type DeviceKind = (typeof DEVICE_KINDS)[number] | "matrix" | "dcl";

export interface Position {
  x: number;
  y: number;
  z: number;
}

export interface PublicDevice {
  deviceId: string;
  kind: DeviceKind;
  status: Exclude<PublicStatus, "offline" | "unknown">;
  /** `null` when the user hides "last seen" from the reader (each device's activity would tell it). */
  lastActiveAt: number | null;
}

/** The one shape every presence update has on the wire. */
export interface Presence {
  userId: string;
  status: PublicStatus;
  realm: string | null;
  position: Position | null;
  statusText: string | null;
  devices: PublicDevice[];
  /** Last heartbeat of a visible device; for offline users, "last seen" (ms since epoch). */
  lastActiveAt: number | null;
  /** Per-user sequence number; only grows. Clients drop anything older than what they hold. */
  seq: number;
  /** Only in a user's view of themself: they chose invisible, friends see offline. */
  invisible?: true;
}

/** Statuses a friend is shown as "there" with. */
export function isShownOnline(status: PublicStatus): boolean {
  return status === "online" || status === "away" || status === "busy";
}

// ─── friendships ─────────────────────────────────────────────────────────────

/** What you see about another user (docs/FRIENDSHIPS.md). `blocked` is known only to the blocker. */
export type FriendshipState = "none" | "outgoing" | "incoming" | "friends" | "blocked";

/** A user's own view of their friendships (ListFriends, GET /v1/friends). */
export interface FriendList {
  friends: string[];
  incoming: { userId: string; message: string | null; since: number }[];
  outgoing: { userId: string; message: string | null; since: number }[];
  blocked: string[];
  hiddenFrom: string[];
  shareLocation: "all" | "none";
  /** Who sees your `lastActiveAt` ("last seen"): every friend, only `lastSeenShownTo`, or nobody. */
  lastSeen: LastSeenPrivacy;
  /** The friends chosen to see it when `lastSeen` is `chosen`. */
  lastSeenShownTo: string[];
}

/** Who sees a user's `lastActiveAt`: every friend (default), the friends they chose, or nobody (then it is `null`). */
export type LastSeenPrivacy = "all" | "chosen" | "none";
export const LAST_SEEN_PRIVACY = ["all", "chosen", "none"] as const;

// ─── client → server ─────────────────────────────────────────────────────────

/** Echoed back verbatim in the reply: a string of at most 64 characters, or a non-negative integer. */
export type RequestId = string | number;

export interface HeartbeatBody {
  position: Position;
  realm: string;
  status: DeviceStatus;
  statusText?: string | null;
  /**
   * "Clear after": when (ms since epoch, the server's clock) this device's
   * `busy` or `invisible` reverts to `online` and its status text is cleared,
   * on the server's own (friends see it like any change). `null` clears the
   * deadline. Omitted (and no `expiresInMs`): a deadline set before stays
   * while status and text stay as they were set with it.
   */
  expiresAt?: number | null;
  /** The same as a duration from now (at most MAX_STATUS_EXPIRY_MS); only one of the two. */
  expiresInMs?: number;
}

/** The longest "clear after" (`expiresInMs`): a year. */
export const MAX_STATUS_EXPIRY_MS = 366 * 24 * 3_600_000;

/**
 * Which friends' position-only moves a subscribing client wants pushed:
 * every friend's (`all`, the default), only those of friends in the user's own
 * realm (`realm`), or none (`none`). Status, realm, text and device changes are
 * pushed to everyone whatever this says; a friend's position is then current
 * again. When the user's clients disagree, the widest wins.
 */
export type PositionInterest = "all" | "realm" | "none";

/**
 * Whose presence a subscribing socket is pushed (issue #16, large friend
 * lists): every friend's (`"all"`, the default), or only the named friends'
 * (at most 100 ids; ids that are not friends are ignored until they are).
 * The user's object watches the union over its sockets, so friends outside
 * every subset cost nothing. docs/PROTOCOL.md, "Following a subset of friends".
 */
export type FriendSubset = "all" | string[];

export type ClientMessage =
  | ({ type: "PositionHeartbeat"; id?: RequestId } & HeartbeatBody)
  | { type: "GetOnlineFriends"; id?: RequestId; limit?: number; cursor?: string }
  | { type: "SubscribeFriendshipPresenceUpdates"; id?: RequestId; positions?: PositionInterest; friends?: FriendSubset }
  | { type: "UnsubscribeFriendshipPresenceUpdates"; id?: RequestId }
  | { type: "GetPresence"; id?: RequestId; userId: string }
  | { type: "SendFriendRequest"; id?: RequestId; userId: string; message?: string | null }
  | { type: "CancelFriendRequest"; id?: RequestId; userId: string }
  | { type: "AcceptFriendRequest"; id?: RequestId; userId: string }
  | { type: "RejectFriendRequest"; id?: RequestId; userId: string }
  | { type: "RemoveFriend"; id?: RequestId; userId: string }
  | { type: "BlockUser"; id?: RequestId; userId: string }
  | { type: "UnblockUser"; id?: RequestId; userId: string }
  | { type: "ListFriends"; id?: RequestId }
  | { type: "SetPrivacy"; id?: RequestId; shareLocation?: "all" | "none"; lastSeen?: LastSeenPrivacy }
  | { type: "HidePresence"; id?: RequestId; userId: string; hidden?: boolean; lastSeen?: boolean };

// ─── server → client ─────────────────────────────────────────────────────────

/** Stable error codes of `{type: "error"}` frames; documented in docs/PROTOCOL.md. */
export type ErrorCode =
  | "bad_json"
  | "binary_not_supported"
  | "frame_too_large"
  | "unknown_type"
  | "invalid_message"
  | "rate_limited"
  | "not_found"
  | "internal"
  | "user_not_found"
  | "already_friends"
  | "blocked"
  | "no_pending_request"
  | "not_friends"
  | "not_blocked"
  | "cannot_befriend_self"
  | "friend_limit"
  | "request_limit"
  | "block_limit";

export type ServerMessage =
  | {
      type: "welcome";
      userId: string;
      deviceId: string;
      protocol: typeof PROTOCOL_VERSION;
      heartbeatIntervalMs: number;
      ttlMs: number;
      maxFrameBytes: number;
      ping: typeof PING_FRAME;
    }
  /** `expiresAt`: when this device's status/text clears on its own (a pending "clear after"); absent: never. */
  | { type: "heartbeat_ack"; id?: RequestId; presence: Presence; nextHeartbeatMs: number; expiresAt?: number }
  /** `nextCursor` only when the request paged (`limit`/`cursor`): null after the last page. */
  | { type: "online_friends"; id?: RequestId; friends: Presence[]; nextCursor?: string | null }
  | { type: "subscribed"; id?: RequestId; friends: Presence[] }
  | { type: "unsubscribed"; id?: RequestId }
  | { type: "presence_result"; id?: RequestId; presence: Presence }
  | { type: "presence"; presence: Presence }
  | { type: "friend_added"; userId: string; presence: Presence }
  | { type: "friend_removed"; userId: string }
  | { type: "friend_request"; userId: string; direction: "incoming" | "outgoing"; message: string | null }
  | { type: "friend_request_cancelled"; userId: string; direction: "incoming" | "outgoing" }
  | { type: "friend_request_rejected"; userId: string; direction: "incoming" | "outgoing" }
  | { type: "friend_request_failed"; userId: string }
  | { type: "blocked"; userId: string }
  | { type: "unblocked"; userId: string }
  | { type: "friendship"; id?: RequestId; userId: string; state: FriendshipState; pending: boolean }
  | ({ type: "friends_list"; id?: RequestId } & FriendList)
  | { type: "error"; id?: RequestId; code: ErrorCode; message: string };

// ─── realm population (issue #16) ────────────────────────────────────────────

/** `GET /v1/realms/:realm` answers this without `type`; `GET /v1/realms/:realm/live` pushes it. */
export interface RealmCount {
  type: "realm_count";
  realm: string;
  /** Users online, visible and sharing location in the realm (batched: at most REALM_BATCH_MS old). */
  count: number;
  /** When the realm's counter computed it (ms since epoch). */
  at: number;
}
