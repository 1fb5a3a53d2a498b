/**
 * One evaluation of /sync for presence: from what the user may see now and
 * the client's `since` token, the `m.presence` events to send and the next
 * token. Pure: the user's Durable Object (or a test's memory backend) calls it
 * with its own rows.
 *
 * Rules (per user shown, the user themself included):
 *   - an entry is sent when its `seq` moved past what the token saw AND what a
 *     Matrix client can see changed since then (`contentSeq`: the seq at which
 *     the Matrix view last changed; a move or a realm change bumps `seq` but
 *     not the Matrix view, and is not sent);
 *   - a `seq` *below* the token's means the other side's state was reset (or
 *     the token was edited): the entry is sent again rather than hidden;
 *   - `unknown` entries are never sent and keep the token's old value, so the
 *     real state is sent once it is known;
 *   - no usable token (none, a bad one, another epoch): a snapshot — the user
 *     themself and every friend who is not offline (as Synapse's initial sync);
 *   - `full_state`: everyone, offline friends included;
 *   - filtered-out events count as seen; events cut by `limit` do not (they
 *     come in the next response).
 * The next token records every friend's current seq, so nothing already
 * sent is sent again, and nothing newer can hide behind it.
 */
import type { Presence } from "../presence/types";
import { passesPresenceFilter, type PresenceFilter } from "./filter";
import { toMatrixId } from "./ids";
import { toMatrixContent, type MatrixPresenceContent } from "./mapping";
import { decodeSince, encodeSince, type SinceToken } from "./since";

export interface MatrixPresenceEvent {
  type: "m.presence";
  sender: string;
  content: MatrixPresenceContent & { user_id: string };
}

/** A presence as the reader may see it, with the seq at which its Matrix view last changed. */
export interface PresenceEntry {
  presence: Presence;
  /** ≤ presence.seq; defaults to presence.seq (every seq counts as a change). */
  contentSeq?: number;
}

export interface FriendEntry extends PresenceEntry {
  /** The friend's slot in the user's slot table (positive, never reused). */
  slot: number;
}

export interface SyncInput {
  self: PresenceEntry;
  friends: FriendEntry[];
  /** The raw `since` query parameter. */
  since: string | null;
  fullState: boolean;
  /** The user's slot-table epoch (see since.ts). */
  epoch: number;
  now: number;
  serverName: string;
  filter?: PresenceFilter;
}

export interface SyncOutput {
  events: MatrixPresenceEvent[];
  nextBatch: string;
  /** True when no usable token was given and a snapshot was sent. */
  initial: boolean;
}

/** The m.presence event for one presence, or null when the user has no Matrix id (over 255 bytes). */
export function presenceEvent(presence: Presence, now: number, serverName: string): MatrixPresenceEvent | null {
  const sender = toMatrixId(presence.userId, serverName);
  if (sender === null) return null;
  return { type: "m.presence", sender, content: { ...toMatrixContent(presence, now), user_id: sender } };
}

export function computeSync(input: SyncInput): SyncOutput {
  const decoded = decodeSince(input.since);
  const token: SinceToken | null = decoded !== null && decoded.epoch === input.epoch ? decoded : null;
  const initial = token === null;
  const next: SinceToken = { epoch: input.epoch, self: token?.self ?? 0, seen: new Map() };
  const events: MatrixPresenceEvent[] = [];
  const filter = input.filter ?? {};
  const limit = filter.limit ?? Infinity;

  /** Decides one entry; returns the seq the next token records for it (undefined: no entry). */
  const consider = (entry: PresenceEntry, seen: number | undefined, isSelf: boolean): number | undefined => {
    const { presence } = entry;
    if (presence.status === "unknown") return seen;
    const contentSeq = Math.min(entry.contentSeq ?? presence.seq, presence.seq);
    let send: boolean;
    if (input.fullState) send = true;
    else if (initial) send = isSelf || presence.status !== "offline";
    else {
      const last = seen ?? 0;
      send = (presence.seq > last && contentSeq > last) || presence.seq < last;
    }
    if (!send) return presence.seq;
    const event = presenceEvent(presence, input.now, input.serverName);
    if (event === null || !passesPresenceFilter(filter, event.type, event.sender)) return presence.seq;
    if (events.length >= limit) return seen;
    events.push(event);
    return presence.seq;
  };

  next.self = consider(input.self, token?.self, true) ?? 0;
  for (const friend of [...input.friends].sort((a, b) => a.slot - b.slot)) {
    const recorded = consider(friend, token?.seen.get(friend.slot), false);
    if (recorded !== undefined) next.seen.set(friend.slot, recorded);
  }
  return { events, nextBatch: encodeSince(next), initial };
}
