/**
 * Wire values the server builds (the types and constants are in src/protocol/).
 */
import type { ErrorCode, Presence, RequestId, ServerMessage } from "../protocol";

export function errorFrame(code: ErrorCode, message: string, id?: RequestId): ServerMessage {
  return id === undefined ? { type: "error", code, message } : { type: "error", id, code, message };
}

/** A presence for someone this object knows nothing about yet: offline, seq 0. */
export function offlinePresence(userId: string, lastActiveAt: number | null = null, seq = 0): Presence {
  return { userId, status: "offline", realm: null, position: null, statusText: null, devices: [], lastActiveAt, seq };
}
