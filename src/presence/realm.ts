/**
 * Realm population (issue #16, the large-group case): how many users are
 * online in a realm, counted without any per-member fan-out. Pure rules, no
 * Cloudflare imports:
 *   - who counts: a user is a member of the realm friends would see, only
 *     while visible (not offline, not invisible) and sharing location;
 *   - where a member is counted: one of `shards` RealmShard objects per realm,
 *     chosen by a hash of the user id (a hot realm's joins spread over them);
 *   - leases: a member's shard forgets it at `expiresAt` unless renewed; the
 *     user's object renews at half-life, never per heartbeat;
 *   - batching: a shard reports its count, and a counter pushes the total, at
 *     most once per `batchMs`, and only when it changed.
 */
import type { Presence } from "./types";

export type { RealmCount } from "../protocol";

/** FNV-1a (32 bit) of a string's UTF-16 code units: stable, cheap, well spread for ids. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The shard a user is counted in, in every realm (so a realm move is a leave and a join on the same index). */
export function shardOf(userId: string, shards: number): number {
  return hash32(userId) % Math.max(1, Math.floor(shards));
}

/** Name of a realm's shard object (`REALM_SHARD.getByName`). The shard index comes last: realms may contain any printable character. */
export function shardName(realm: string, shard: number): string {
  return `${realm}#${shard}`;
}

/** Inverse of shardName. */
export function parseShardName(name: string): { realm: string; shard: number } | null {
  const at = name.lastIndexOf("#");
  if (at <= 0) return null;
  const shard = Number(name.slice(at + 1));
  if (!Number.isInteger(shard) || shard < 0) return null;
  return { realm: name.slice(0, at), shard };
}

/**
 * The realm a user is counted in, from what friends would see (the outward
 * view): none while offline or invisible (friends see offline), none while
 * the user shares location with nobody (the outward realm is null).
 */
export function memberRealm(view: Pick<Presence, "status" | "realm">): string | null {
  if (view.status === "offline" || view.status === "unknown") return null;
  return view.realm ?? null;
}

/** When a lease taken at `now` is renewed: at half-life. */
export function renewAt(now: number, leaseMs: number): number {
  return now + Math.floor(leaseMs / 2);
}

/**
 * Batching: when something that changed at `now` may be sent, given the last
 * send at `lastSentAt` (null: never). Now if the interval has passed, else at
 * the end of it.
 */
export function batchSendAt(lastSentAt: number | null, now: number, batchMs: number): number {
  if (lastSentAt === null || now - lastSentAt >= batchMs) return now;
  return lastSentAt + batchMs;
}
