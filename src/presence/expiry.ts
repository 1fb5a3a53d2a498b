/**
 * "Clear after" (issue #16): a device's `busy` or `invisible`, and its status
 * text, may carry a deadline. The device row keeps what the client chose and
 * when it ends; what friends see is computed from both, so the deadline
 * passing is a change like any other (the alarm wakes the object for it) and
 * costs no write of its own. No Cloudflare imports.
 */
import type { HeartbeatBody } from "../protocol";
import type { DeviceState, DeviceStatus } from "./types";

/** Whether a status and text have anything that can clear: busy, invisible, or a text. */
export function canExpire(status: DeviceStatus | null, statusText: string | null): boolean {
  return status === "busy" || status === "invisible" || statusText !== null;
}

/**
 * The deadline a heartbeat sets for its device: `expiresInMs` from now,
 * `expiresAt` as given (`null` clears), or, when it names neither, the
 * device's deadline as long as status and text are still the ones it was set
 * with (a client that repeats its heartbeat does not have to repeat the
 * deadline, and one that repeats an expired `busy` stays cleared). Nothing
 * that can clear: no deadline.
 */
export function heartbeatExpiry(previous: Pick<DeviceState, "status" | "statusText" | "expiresAt"> | null, body: HeartbeatBody, now: number): number | null {
  const statusText = body.statusText ?? null;
  if (!canExpire(body.status, statusText)) return null;
  if (body.expiresInMs !== undefined) return now + body.expiresInMs;
  if (body.expiresAt !== undefined) return body.expiresAt;
  const kept = previous?.expiresAt ?? null;
  return kept !== null && previous?.status === body.status && previous.statusText === statusText ? kept : null;
}

/** The device as friends see it at `now`: past its deadline, busy and invisible are online and the text is gone. */
export function effectiveDevice<D extends Pick<DeviceState, "status" | "statusText" | "expiresAt">>(device: D, now: number): D {
  const at = device.expiresAt ?? null;
  if (at === null || now < at) return device;
  const status = device.status === "busy" || device.status === "invisible" ? "online" : device.status;
  return status === device.status && device.statusText === null ? device : { ...device, status, statusText: null };
}

/** The deadline still ahead of `now` (null: none, or already passed). */
export function pendingExpiry(device: Pick<DeviceState, "expiresAt">, now: number): number | null {
  const at = device.expiresAt ?? null;
  return at !== null && at > now ? at : null;
}
