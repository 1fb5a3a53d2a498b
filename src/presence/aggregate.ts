/**
 * Multi-device aggregation: from the rows of one user's devices to the single
 * presence their friends see. Most available device wins; all idle → away;
 * none → offline; any live invisible device → offline (privacy wins).
 */
import { effectiveDevice } from "./expiry";
import type { DeviceState, Presence, PublicDevice } from "./types";

const AVAILABILITY: Record<PublicDevice["status"], number> = { online: 3, busy: 2, away: 1 };

/** A device is live until `ttlMs` after its last sign of life. */
export function isLive(device: DeviceState, now: number, ttlMs: number): boolean {
  return device.lastSeenAt + ttlMs > now;
}

export interface Aggregate {
  /** What friends see (seq is filled in by the caller). */
  view: Omit<Presence, "seq">;
  /** True when the user has any live device (a connected client), visible or not. */
  hasLiveDevice: boolean;
  /** True when the user chose invisible on a live device: friends see offline. */
  invisible: boolean;
}

export function aggregate(userId: string, devices: DeviceState[], now: number, ttlMs: number, lastSeenAt: number | null): Aggregate {
  // A status or text past its "clear after" deadline counts as cleared.
  const live = devices.filter((d) => isLive(d, now, ttlMs)).map((d) => effectiveDevice(d, now));
  const invisible = live.some((d) => d.status === "invisible");
  const visible = invisible
    ? []
    : live.filter(
        (d): d is DeviceState & { status: PublicDevice["status"]; lastHeartbeatAt: number } => d.status !== null && d.status !== "invisible" && d.lastHeartbeatAt !== null,
      );
  if (visible.length === 0) {
    return {
      view: { userId, status: "offline", realm: null, position: null, statusText: null, devices: [], lastActiveAt: lastSeenAt },
      hasLiveDevice: live.length > 0,
      invisible,
    };
  }
  const status = visible.reduce<PublicDevice["status"]>((best, d) => (AVAILABILITY[d.status] > AVAILABILITY[best] ? d.status : best), "away");
  // Where the user is and what they say: the device that heartbeated last.
  // Decentraland clients report no location: theirs never hides a JSON device's.
  const located = visible.filter((d) => d.kind !== "dcl");
  const latest = (located.length > 0 ? located : visible).reduce((a, b) => (b.lastHeartbeatAt > a.lastHeartbeatAt ? b : a));
  const devicesView: PublicDevice[] = visible
    .map((d) => ({ deviceId: d.deviceId, kind: d.kind, status: d.status, lastActiveAt: d.lastHeartbeatAt }))
    .sort((a, b) => a.deviceId.localeCompare(b.deviceId));
  return {
    view: {
      userId,
      status,
      realm: latest.realm,
      position: latest.position,
      statusText: latest.statusText,
      devices: devicesView,
      lastActiveAt: latest.lastHeartbeatAt,
    },
    hasLiveDevice: true,
    invisible: false,
  };
}

/** What kind of change separates two views, for fan-out and coalescing. */
export type Change = "none" | "position" | "significant";

/**
 * Compares what friends would see. Heartbeat times alone are not a change
 * (a heartbeat every 30 s must not fan out); position alone is "position"
 * (may be coalesced); anything else — status, realm, text, devices — is
 * "significant" (never delayed).
 */
export function classifyChange(previous: Omit<Presence, "seq"> | null, next: Omit<Presence, "seq">): Change {
  if (previous === null) return "significant";
  const shape = (p: Omit<Presence, "seq">) => JSON.stringify([p.status, p.realm, p.statusText, p.devices.map((d) => [d.deviceId, d.kind, d.status])]);
  if (shape(previous) !== shape(next)) return "significant";
  const samePosition =
    (previous.position === null && next.position === null) ||
    (previous.position !== null &&
      next.position !== null &&
      previous.position.x === next.position.x &&
      previous.position.y === next.position.y &&
      previous.position.z === next.position.z);
  return samePosition ? "none" : "position";
}
