/**
 * The wire vocabulary, copied from the server (src/presence/types.ts,
 * protocol.ts, schema.ts) so the SDK has no dependency on the worker.
 * test/client/protocol-types.test.ts fails to type-check if the copies drift.
 */

/** What a device says about itself in a heartbeat. */
export type DeviceStatus = "online" | "away" | "busy" | "invisible";
/** What a friend sees. `unknown`: the server could not reach that friend and will retry. */
export type PublicStatus = "online" | "away" | "busy" | "offline" | "unknown";
export type DeviceKind = "desktop" | "mobile" | "web";

export interface Position {
  x: number;
  y: number;
  z: number;
}

export interface PublicDevice {
  deviceId: string;
  kind: DeviceKind;
  status: Exclude<PublicStatus, "offline" | "unknown">;
  lastActiveAt: number;
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
  /** Per-user sequence number; only grows. Anything older than what we hold is dropped. */
  seq: number;
  /** Only in a user's view of themself: they chose invisible, friends see offline. */
  invisible?: true;
}

export type RequestId = string | number;

/** Error codes the server sends in `{type: "error"}` frames. */
export type ServerErrorCode =
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
  | "request_limit";

/** What you see about another user (docs/FRIENDSHIPS.md). */
export type FriendshipState = "none" | "outgoing" | "incoming" | "friends" | "blocked";

/** Your friendships as the server keeps them. */
export interface FriendList {
  friends: string[];
  incoming: { userId: string; message: string | null; since: number }[];
  outgoing: { userId: string; message: string | null; since: number }[];
  blocked: string[];
  hiddenFrom: string[];
  shareLocation: "all" | "none";
}

export const PROTOCOL_VERSION = "presence.v1";
export const TOKEN_PROTOCOL_PREFIX = "bearer.";
export const PING_FRAME = "ping";
export const PONG_FRAME = "pong";

export const CloseCode = {
  normal: 1000,
  policyViolation: 1008,
  /** The device was silent for longer than the TTL; reconnect. */
  presenceExpired: 4000,
  /** Another socket connected with the same device id. */
  replaced: 4001,
} as const;

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
  | { type: "heartbeat_ack"; id?: RequestId; presence: Presence; nextHeartbeatMs: number }
  | { type: "online_friends"; id?: RequestId; friends: Presence[] }
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
  | { type: "error"; id?: RequestId; code: ServerErrorCode; message: string };

export interface HeartbeatBody {
  position: Position;
  realm: string;
  status: DeviceStatus;
  statusText?: string | null;
}

export type ClientMessage =
  | ({ type: "PositionHeartbeat"; id?: RequestId } & HeartbeatBody)
  | { type: "GetOnlineFriends"; id?: RequestId }
  | { type: "SubscribeFriendshipPresenceUpdates"; id?: RequestId }
  | { type: "UnsubscribeFriendshipPresenceUpdates"; id?: RequestId }
  | { type: "GetPresence"; id?: RequestId; userId: string }
  | { type: "SendFriendRequest"; id?: RequestId; userId: string; message?: string | null }
  | {
      type: "CancelFriendRequest" | "AcceptFriendRequest" | "RejectFriendRequest" | "RemoveFriend" | "BlockUser" | "UnblockUser";
      id?: RequestId;
      userId: string;
    }
  | { type: "ListFriends"; id?: RequestId }
  | { type: "SetPrivacy"; id?: RequestId; shareLocation: "all" | "none" }
  | { type: "HidePresence"; id?: RequestId; userId: string; hidden: boolean };

/** Statuses a friend is shown as "there" with. */
export function isShownOnline(status: PublicStatus): boolean {
  return status === "online" || status === "away" || status === "busy";
}
