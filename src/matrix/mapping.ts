/**
 * The project's presence ↔ Matrix's `m.presence`.
 *
 *   online            ↔ online       (currently_active: true)
 *   away              ↔ unavailable
 *   busy              → unavailable  (the status text is kept; Matrix has no stable busy)
 *   offline, invisible ↔ offline     (invisible already reaches friends as offline)
 *   unknown           → never shown as online: /sync skips it (the client keeps
 *                       what it had), a direct read answers offline
 *
 * Nothing here depends on the clock except `last_active_ago`, so a busy (or
 * away) user never idles into something else by time alone. Like Synapse, a
 * change of `last_active_ago` alone is not a change (`sameMatrixView`).
 */
import { heartbeatBody } from "../presence/schema";
import type { DeviceStatus, Presence } from "../presence/types";

export const MATRIX_PRESENCE_STATES = ["online", "unavailable", "offline"] as const;
export type MatrixPresenceState = (typeof MATRIX_PRESENCE_STATES)[number];

/** The content of an `m.presence` event, and the body of GET /presence/{userId}/status (without `user_id`). */
export interface MatrixPresenceContent {
  presence: MatrixPresenceState;
  /** Milliseconds since the last sign of activity; absent when none is known. */
  last_active_ago?: number;
  currently_active: boolean;
  /** Always present; null when there is none (or it was cleared). */
  status_msg: string | null;
}

export function isMatrixPresenceState(value: unknown): value is MatrixPresenceState {
  return typeof value === "string" && (MATRIX_PRESENCE_STATES as readonly string[]).includes(value);
}

export function matrixState(status: Presence["status"]): MatrixPresenceState {
  switch (status) {
    case "online":
      return "online";
    case "away":
    case "busy":
      return "unavailable";
    default:
      return "offline";
  }
}

/**
 * What a Matrix client is shown for a presence, at time `now`. For an offline
 * user `statusText` is whatever the presence carries: the message kept from
 * before they went offline (Synapse keeps it on timeout), or null.
 */
export function toMatrixContent(presence: Presence, now: number): MatrixPresenceContent {
  const state = matrixState(presence.status);
  const content: MatrixPresenceContent = {
    presence: state,
    currently_active: state === "online",
    status_msg: presence.status === "unknown" ? null : presence.statusText,
  };
  if (presence.lastActiveAt !== null && presence.status !== "unknown") content.last_active_ago = Math.max(0, now - presence.lastActiveAt);
  return content;
}

/** What a Matrix client can tell apart (everything but the clock): two presences that agree here are not a change. */
export function matrixView(presence: Presence): string {
  const state = matrixState(presence.status);
  return JSON.stringify([state, state === "online", presence.status === "unknown" ? null : presence.statusText]);
}

export function sameMatrixView(a: Presence, b: Presence): boolean {
  return matrixView(a) === matrixView(b);
}

/**
 * The status the user's `matrix` device takes for a Matrix presence state:
 * online → online, unavailable → away, offline → null (live, not shown: the
 * device still syncs and receives, friends see nothing of it).
 */
export function deviceStatusFor(state: MatrixPresenceState): Exclude<DeviceStatus, "busy" | "invisible"> | null {
  return state === "online" ? "online" : state === "unavailable" ? "away" : null;
}

/** Same rules as a heartbeat's status text: at most 140 printable characters. Returns an error message, or null when valid. */
export function statusMsgProblem(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== "string") return "status_msg must be a string";
  const result = heartbeatBody.shape.statusText.safeParse(value);
  return result.success ? null : `status_msg: ${result.error.issues[0]?.message ?? "invalid"}`;
}
