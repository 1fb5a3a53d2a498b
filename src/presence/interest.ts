/**
 * Who gets a position-only move (issue #11: fewer calls between objects).
 * A watcher's lease carries the position interest of its user's clients; a
 * status, realm, text or device change goes to every watcher regardless.
 */
import type { PositionInterest } from "./types";

const WIDTH: Record<PositionInterest, number> = { none: 0, realm: 1, all: 2 };

/**
 * The interest a user's object asks its friends for: the widest of its
 * subscribed clients' (a client that named none wants `all`); `all` when no
 * client has subscribed yet, so that the first subscription rarely changes it.
 */
export function combinedInterest(subscribed: Array<PositionInterest | undefined>): PositionInterest {
  if (subscribed.length === 0) return "all";
  return subscribed.map((p) => p ?? "all").reduce((a, b) => (WIDTH[b] > WIDTH[a] ? b : a), "none");
}

/**
 * Whether a position-only move of a user in `senderRealm` goes to a watcher
 * with `interest`, whose own realm (as the sender last heard it) is
 * `watcherRealm`. An unknown realm (not heard yet, or hidden) gets the move:
 * when in doubt, deliver.
 */
export function wantsPosition(interest: PositionInterest | null, watcherRealm: string | null | undefined, senderRealm: string | null): boolean {
  if (interest === null || interest === "all") return true;
  if (interest === "none") return false;
  return watcherRealm === null || watcherRealm === undefined || watcherRealm === senderRealm;
}
