/**
 * Server-side events (docs/EVENTS.md): what the operator's backend is told,
 * through a Cloudflare Queue, when a user's presence or one of their
 * friendships changes. Pure: the schema, what each event carries under which
 * privacy setting, and its id. durable/events.ts sends them.
 *
 * Privacy, decided here once:
 *   - a presence event is what friends were told (the published presence, before
 *     per-friend hiding): an invisible user is `offline` in events as well, and
 *     `shareLocation: none` leaves realm and position out. The operator learns
 *     nothing a friend could not, so a backend that forwards events (webhooks,
 *     analytics, a bot) cannot leak what a user chose to hide;
 *   - positions are left out even for users who share them, unless the
 *     operator opts in (`EVENTS_POSITIONS=1`): a trail of coordinates is more
 *     than "where is my friend now", and most backends do not need it;
 *   - hiding from one friend (HidePresence) is a per-friend view, not a change
 *     of presence: it emits nothing.
 */
import { classifyChange } from "./aggregate";
import { deriveState, type Edge, type EdgeState, type FriendshipEvent as ClientFriendshipEvent, transitionEvents } from "./friendship";
import type { Position, Presence, PublicDevice, PublicStatus } from "./types";

/** Bumped when a field changes meaning or goes away (new fields may appear within a version). */
export const EVENT_VERSION = 1;

/** A change of what friends see of `userId` (status, realm, status text or devices; never a position-only move). */
export interface PresenceEvent {
  v: typeof EVENT_VERSION;
  /** Unique per event; a redelivered event has the same id (dedupe on it). */
  id: string;
  kind: "presence";
  userId: string;
  /** The user's presence seq: grows with every change (with gaps: position-only moves and per-friend toggles emit nothing). */
  seq: number;
  /** When the user's object published the change (ms since the epoch). */
  at: number;
  status: { from: PublicStatus; to: PublicStatus };
  statusText: string | null;
  /** null: offline, or the user shares their location with nobody. */
  realm: string | null;
  /** Present only when the operator opted in (`EVENTS_POSITIONS=1`); null as for realm. */
  position?: Position | null;
  devices: Array<Pick<PublicDevice, "deviceId" | "kind" | "status">>;
  lastActiveAt: number | null;
}

/** A change of what `userId` sees about `otherUserId` (each side of an edge emits its own). */
export interface FriendshipEvent {
  v: typeof EVENT_VERSION;
  id: string;
  kind: "friendship";
  userId: string;
  otherUserId: string;
  /** Grows with every change of either side's intent on this edge: orders the events of one pair. */
  seq: number;
  at: number;
  state: { from: EdgeState; to: EdgeState };
  /** Who moved it: `local` this user, `remote` the other user's message, `reply` the other object's answer to ours. */
  cause: "local" | "remote" | "reply";
  /** The same events this user's clients get for it (docs/PROTOCOL.md, "Friendship events"). */
  transitions: ClientFriendshipEvent[];
}

export type ServerEvent = PresenceEvent | FriendshipEvent;

/** What the operator chose to receive. */
export interface EventPolicy {
  /** Include positions of users who share their location with friends. */
  positions: boolean;
}

export function readEventPolicy(vars: { EVENTS_POSITIONS?: string }): EventPolicy {
  return { positions: vars.EVENTS_POSITIONS === "1" || vars.EVENTS_POSITIONS === "true" };
}

/**
 * The event of one published change, or null when there is none to tell:
 * `previous` → `next` are what friends were told before and now; a publish
 * that changes none of status, realm, text or devices (a position-only move,
 * a per-friend toggle) is not an event.
 */
export function presenceEvent(previous: Presence, next: Presence, at: number, policy: EventPolicy): PresenceEvent | null {
  if (classifyChange(previous, next) !== "significant") return null;
  return {
    v: EVENT_VERSION,
    id: `${next.userId}/presence/${next.seq}`,
    kind: "presence",
    userId: next.userId,
    seq: next.seq,
    at,
    status: { from: previous.status, to: next.status },
    statusText: next.statusText,
    realm: next.realm,
    ...(policy.positions ? { position: next.position } : {}),
    devices: next.devices.map(({ deviceId, kind, status }) => ({ deviceId, kind, status })),
    lastActiveAt: next.lastActiveAt,
  };
}

/** The event of one edge change as `userId` sees it (`from`: what they saw before; `next`: the edge now), or null when nothing moved. */
export function friendshipEvent(userId: string, otherUserId: string, from: EdgeState, next: Edge, cause: FriendshipEvent["cause"], at: number): FriendshipEvent | null {
  const to = deriveState(next);
  if (from === to) return null;
  const version = `${next.myVersion}.${next.theirVersion}`;
  return {
    v: EVENT_VERSION,
    // The versions name the change; the time keeps ids apart after an untouched edge is forgotten and starts again at 1.
    id: `${userId}/friendship/${otherUserId}/${version}/${at}`,
    kind: "friendship",
    userId,
    otherUserId,
    seq: next.myVersion + next.theirVersion,
    at,
    state: { from, to },
    cause,
    transitions: transitionEvents(from, to, cause),
  };
}

/** Queues take at most 100 messages per sendBatch. */
export const SEND_BATCH_MAX = 100;
