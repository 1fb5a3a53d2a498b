/**
 * The presence vocabulary of the server. What goes on the wire is defined in
 * src/protocol/ (shared with the SDK) and re-exported here; what stays inside
 * a user's object is defined here. No Cloudflare imports.
 */
import type { DeviceKind, DeviceStatus, Position } from "../protocol";

export type { DeviceKind, DeviceStatus, LastSeenPrivacy, Position, PositionInterest, Presence, PublicDevice, PublicStatus } from "../protocol";

/** `matrix`: the Matrix API's device (its /sync polls are its sign of life). */
export type Transport = "ws" | "http" | "matrix";

/** One device row as the user's own object stores it. */
export interface DeviceState {
  deviceId: string;
  kind: DeviceKind;
  transport: Transport;
  /** `null` until the device's first heartbeat: connected but not yet shown. */
  status: DeviceStatus | null;
  statusText: string | null;
  realm: string | null;
  position: Position | null;
  /** Time of the last heartbeat (ms since epoch), `null` before the first one. */
  lastHeartbeatAt: number | null;
  /** Last sign of life of any kind: connect, heartbeat, ping, any frame. */
  lastSeenAt: number;
  /** "Clear after": when busy/invisible and the text end on their own (src/presence/expiry.ts); absent or null: never. */
  expiresAt?: number | null;
}
