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

/** A presence without "last seen": neither the user's `lastActiveAt` nor any device's (issue #16, hide last seen). */
export function withoutLastSeen(presence: Presence): Presence {
  if (presence.lastActiveAt === null && presence.devices.every((d) => d.lastActiveAt === null)) return presence;
  return { ...presence, lastActiveAt: null, devices: presence.devices.map((d) => ({ ...d, lastActiveAt: null })) };
}
