/**
 * Server → client messages and close codes. docs/PROTOCOL.md is the prose
 * version of this file; keep them in step.
 */
import type { ErrorCode, RequestId } from "./schema";
import type { FriendList } from "./friendship";
import type { Presence } from "./types";

export const PROTOCOL_VERSION = "presence.v1";
/** Text frame answered by the runtime without waking the Durable Object. */
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
  | { type: "friendship"; id?: RequestId; userId: string; state: "none" | "outgoing" | "incoming" | "friends" | "blocked"; pending: boolean }
  | ({ type: "friends_list"; id?: RequestId } & FriendList)
  | { type: "error"; id?: RequestId; code: ErrorCode; message: string };

export function errorFrame(code: ErrorCode, message: string, id?: RequestId): ServerMessage {
  return id === undefined ? { type: "error", code, message } : { type: "error", id, code, message };
}

/** A presence for someone this object knows nothing about yet: offline, seq 0. */
export function offlinePresence(userId: string, lastActiveAt: number | null = null, seq = 0): Presence {
  return { userId, status: "offline", realm: null, position: null, statusText: null, devices: [], lastActiveAt, seq };
}
