/**
 * TTL arithmetic and the single-alarm scheduler: every timer of a user's
 * object contributes its next deadline; the alarm is set to the earliest.
 */
import type { DeviceState } from "./types";

/** When a device stops being live if nothing more is heard from it. */
export function deviceDeadline(device: Pick<DeviceState, "lastSeenAt">, ttlMs: number): number {
  return device.lastSeenAt + ttlMs;
}

/** Earliest of the given deadlines, ignoring null/undefined; null when there is none. */
export function nextDeadline(deadlines: Array<number | null | undefined>): number | null {
  let earliest: number | null = null;
  for (const d of deadlines) {
    if (d === null || d === undefined || !Number.isFinite(d)) continue;
    if (earliest === null || d < earliest) earliest = d;
  }
  return earliest;
}

/**
 * Alarms must be set in the future: inside alarm() a time <= now would be
 * lost or spin (workerd#6866). Clamp to at least now + 1 ms.
 */
export function alarmTime(deadline: number, now: number): number {
  return Math.max(deadline, now + 1);
}

/** Retry delay for outbox deliveries: exponential, capped, with jitter in [0.5, 1). */
export function backoffMs(attempt: number, baseMs = 1_000, capMs = 300_000, random = Math.random): number {
  const exp = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 20));
  return Math.round(exp * (0.5 + random() / 2));
}

/**
 * Position coalescing: a position-only change is published now if the last
 * publish is at least `intervalMs` old, otherwise at lastPublishedAt + interval.
 */
export function positionPublishAt(lastPublishedAt: number | null, now: number, intervalMs: number): number {
  if (lastPublishedAt === null) return now;
  return Math.max(now, lastPublishedAt + intervalMs);
}

/** Token bucket, plain data so it can live in a socket attachment or in memory. */
export interface Bucket {
  tokens: number;
  updatedAt: number;
}

export function takeToken(bucket: Bucket | undefined, now: number, burst: number, perSecond: number): { allowed: boolean; bucket: Bucket } {
  const current = bucket ?? { tokens: burst, updatedAt: now };
  const refilled = Math.min(burst, current.tokens + ((now - current.updatedAt) / 1000) * perSecond);
  if (refilled < 1) return { allowed: false, bucket: { tokens: refilled, updatedAt: now } };
  return { allowed: true, bucket: { tokens: refilled - 1, updatedAt: now } };
}

/**
 * Bounds a call to another object: a friend's object that hangs must not hold
 * up this user's own replies. The call itself goes on; its result is ignored.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
