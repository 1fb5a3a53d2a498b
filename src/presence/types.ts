/**
 * The presence vocabulary shared by the worker, the Durable Objects, the tests
 * and (by copy in docs/PROTOCOL.md) the clients. No Cloudflare imports here.
 */

/** What a device says about itself in a heartbeat. */
export type DeviceStatus = "online" | "away" | "busy" | "invisible";
/**
 * What a friend sees. `offline` covers both "no live device" and "invisible";
 * `unknown` means this object could not reach the friend's object (the Matrix
 * "don't know" state) and will retry.
 */
export type PublicStatus = "online" | "away" | "busy" | "offline" | "unknown";
export type DeviceKind = "desktop" | "mobile" | "web";
export type Transport = "ws" | "http";

export interface Position {
  x: number;
  y: number;
  z: number;
}

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
  /** Last heartbeat of a visible device; for offline users, "last seen". */
  lastActiveAt: number | null;
  /** Per-user sequence number; only grows. Clients drop anything older. */
  seq: number;
  /** Only in a user's view of themself: they chose invisible, friends see offline. */
  invisible?: true;
}
