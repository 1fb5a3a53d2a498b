/**
 * Large friend lists (issue #16): a client may follow a subset of its friends
 * (the ones on screen) instead of all of them, and page through the snapshot.
 * A socket's subset travels in its attachment; the user's object watches the
 * union over its sockets (all friends as soon as one socket, or any other kind
 * of client, wants all), so a friend outside every subset neither pushes to
 * this user's object nor is pushed to its sockets. Pure: no Cloudflare imports.
 */
import type { Presence } from "./types";

/** At most this many friend ids in one socket's subset (an attachment holds 16 KB; ids are up to 128 characters). */
export const MAX_SUBSET_FRIENDS = 100;
/** A page of the online-friends snapshot holds at most this many friends (and asks at most this many friends' objects). */
export const MAX_PAGE_LIMIT = 200;
/** The page size when a cursor is given without `limit`. */
export const DEFAULT_PAGE_LIMIT = 50;

/** A socket's subset: the friend ids it shows, or every friend (absent). */
export type SocketSubset = readonly string[] | undefined;

/**
 * The friends a user's object watches: null (every friend) when any client
 * wants every friend or when there is no socket at all; otherwise the union
 * of the sockets' subsets (possibly empty).
 */
export function unionOfSubsets(subsets: SocketSubset[]): Set<string> | null {
  if (subsets.length === 0 || subsets.some((s) => s === undefined)) return null;
  const union = new Set<string>();
  for (const subset of subsets) for (const id of subset!) union.add(id);
  return union;
}

/** Whether a socket with `subset` is shown `userId`'s presence. */
export function inSubset(subset: SocketSubset, userId: string): boolean {
  return subset === undefined || subset.includes(userId);
}

/** The same set of friends watched (null = all)? */
export function sameSubset(a: readonly string[] | null, b: readonly string[] | null): boolean {
  if (a === null || b === null) return a === b;
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((id) => set.has(id));
}

// ─── paging ──────────────────────────────────────────────────────────────────

/** A page of online friends; `nextCursor` null when the scan reached the last friend. */
export interface OnlinePage {
  friends: Presence[];
  nextCursor: string | null;
}

export interface PageRequest {
  /** Friends after this id (from a cursor); null: from the first. */
  after: string | null;
  limit: number;
}

const ID = /^[A-Za-z0-9_.@:-]{1,128}$/;

/** The opaque cursor after `lastId` (hex of its bytes: stable order is by friend id; no base64, which src/presence may not assume). */
export function encodeCursor(lastId: string): string {
  let hex = "";
  for (const byte of new TextEncoder().encode(lastId)) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

/** The friend id a cursor points after, or null when it is not a cursor this server gave. */
export function decodeCursor(cursor: string): string | null {
  // Ids are ASCII (ID below): one byte per character, two hex digits per byte.
  if (!/^(?:[0-9a-f]{2}){1,128}$/.test(cursor)) return null;
  let id = "";
  for (let i = 0; i < cursor.length; i += 2) id += String.fromCharCode(Number.parseInt(cursor.slice(i, i + 2), 16));
  return ID.test(id) ? id : null;
}

/** The page a request asks for (`limit` and/or `cursor`, already validated), or null when it does not page. */
export function pageRequest(query: { limit?: number; cursor?: string }): PageRequest | null {
  if (query.limit === undefined && query.cursor === undefined) return null;
  return { after: query.cursor === undefined ? null : decodeCursor(query.cursor), limit: query.limit ?? DEFAULT_PAGE_LIMIT };
}

/** Whether a snapshot lists this presence: not offline (`unknown` included: could not be reached). */
export function listedOnline(presence: Presence): boolean {
  return presence.status !== "offline";
}

/**
 * One page of the online friends, in friend-id order after `request.after`.
 * `held(id)`: the presence already held for a friend (a watched one: no call),
 * null when it is known not to be listed, undefined when it must be asked.
 * `ask(ids)` asks those friends' objects (one call each); at most `limit`
 * friends are asked per page, so a page may hold fewer than `limit` friends
 * even when more follow (a client pages on while `nextCursor` is not null).
 * Every online friend is listed exactly once across the pages of one scan
 * (friends added or removed meanwhile may or may not be).
 */
export async function pageOnline(
  friendIds: readonly string[],
  request: PageRequest,
  held: (id: string) => Presence | null | undefined,
  ask: (ids: string[]) => Promise<Map<string, Presence>>,
): Promise<OnlinePage> {
  const ids = friendIds.filter((id) => request.after === null || id > request.after).sort();
  const friends: Presence[] = [];
  let asked = 0;
  let next = 0;
  let last: string | null = request.after;
  while (next < ids.length && friends.length < request.limit && asked < request.limit) {
    // A window of friends that can add at most the room left, asking at most the calls left.
    const room = request.limit - friends.length;
    const window: Array<{ id: string; presence: Presence | null | undefined }> = [];
    const toAsk: string[] = [];
    let candidates = 0;
    while (next < ids.length && candidates < room && asked + toAsk.length < request.limit) {
      const id = ids[next++]!;
      const presence = held(id);
      window.push({ id, presence });
      if (presence === undefined) toAsk.push(id);
      if (presence === undefined || (presence !== null && listedOnline(presence))) candidates++;
    }
    const answers = toAsk.length > 0 ? await ask(toAsk) : new Map<string, Presence>();
    asked += toAsk.length;
    for (const { id, presence } of window) {
      const seen = presence === undefined ? answers.get(id) : presence;
      if (seen && listedOnline(seen)) friends.push(seen);
      last = id;
    }
  }
  return { friends, nextCursor: next < ids.length && last !== null ? encodeCursor(last) : null };
}
