/**
 * The `/sync` `next_batch` / `since` token: what a client has seen, so that a
 * client coming back with its last token misses nothing and gets nothing twice.
 *
 * Presence in this project is per user: every user's presence carries a `seq`
 * that only grows (docs/PROTOCOL.md). So the token is a map friend → last seq
 * seen, plus the user's own seq. To stay small, friends are named by a *slot*:
 * a small integer the user's object assigns to each friend once and never
 * reuses, persisted with the friendship, so tokens survive restarts. An
 * `epoch` names the slot table; a token from another table (storage wiped, or
 * another user's object) does not decode as this one.
 *
 *   "p1_" + base64url( varint epoch, varint self, varint count,
 *                      count × (varint slot delta, varint seq),   ← slots ascending
 *                      4-byte FNV-1a checksum of all the above )
 *
 * Roughly 3 bytes a friend: 1,000 friends ≈ 4 KB of URL. Anything that does
 * not decode exactly (another version, a bad checksum, trailing bytes, a value
 * past 2^53) is treated as no token at all: the client gets a full presence
 * snapshot, never an error and never someone else's data (tokens only say
 * what was *seen*; who may be seen is decided afresh on every request).
 */

export const SINCE_PREFIX = "p1_";
/** Most entries a token may carry (far above MAX_FRIENDS; bounds decoding work). */
export const MAX_SINCE_ENTRIES = 10_000;
/** Longest token accepted (a little over MAX_SINCE_ENTRIES at worst-case widths). */
export const MAX_SINCE_LENGTH = 200_000;

export interface SinceToken {
  /** Identifies the slot table the slots refer to (32-bit unsigned). */
  epoch: number;
  /** Last seq of the user's own presence the client saw; 0 = none. */
  self: number;
  /** Slot → last seq seen of that friend. Friends without an entry count as never seen. */
  seen: Map<number, number>;
}

function pushVarint(out: number[], value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`not a non-negative safe integer: ${value}`);
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
}

/** FNV-1a over bytes, 32-bit. Detects accidental damage; it is not a MAC (tokens carry nothing secret). */
export function fnv1a(bytes: ArrayLike<number>, length = bytes.length): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < length; i++) {
    hash ^= bytes[i]!;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

function toBase64Url(bytes: number[]): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  try {
    const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

export function encodeSince(token: SinceToken): string {
  if (!Number.isInteger(token.epoch) || token.epoch < 0 || token.epoch > 0xffffffff) throw new RangeError("epoch must be a 32-bit unsigned integer");
  const slots = [...token.seen.keys()].sort((a, b) => a - b);
  if (slots.length > MAX_SINCE_ENTRIES) throw new RangeError(`at most ${MAX_SINCE_ENTRIES} entries`);
  const out: number[] = [];
  pushVarint(out, token.epoch);
  pushVarint(out, token.self);
  pushVarint(out, slots.length);
  let previous = 0;
  for (const slot of slots) {
    if (!Number.isSafeInteger(slot) || slot < 1) throw new RangeError(`slots are positive integers: ${slot}`);
    pushVarint(out, slot - previous);
    pushVarint(out, token.seen.get(slot)!);
    previous = slot;
  }
  const sum = fnv1a(out);
  out.push(sum >>> 24, (sum >>> 16) & 0xff, (sum >>> 8) & 0xff, sum & 0xff);
  return SINCE_PREFIX + toBase64Url(out);
}

/** The token, or null for anything that is not exactly a token this codec wrote. */
export function decodeSince(text: string | null | undefined): SinceToken | null {
  if (typeof text !== "string" || !text.startsWith(SINCE_PREFIX) || text.length > MAX_SINCE_LENGTH) return null;
  const bytes = fromBase64Url(text.slice(SINCE_PREFIX.length));
  if (!bytes || bytes.length < 7) return null;
  const body = bytes.length - 4;
  const sum = ((bytes[body]! << 24) | (bytes[body + 1]! << 16) | (bytes[body + 2]! << 8) | bytes[body + 3]!) >>> 0;
  if (fnv1a(bytes, body) !== sum) return null;

  let at = 0;
  const read = (): number | null => {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      if (at >= body) return null;
      const byte = bytes[at++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        // Canonical only: a zero top byte after the first means the same number has another spelling.
        if (i > 0 && byte === 0) return null;
        return Number.isSafeInteger(value) ? value : null;
      }
      scale *= 0x80;
    }
    return null;
  };

  const epoch = read();
  const self = read();
  const count = read();
  if (epoch === null || epoch > 0xffffffff || self === null || count === null || count > MAX_SINCE_ENTRIES) return null;
  const seen = new Map<number, number>();
  let slot = 0;
  for (let i = 0; i < count; i++) {
    const delta = read();
    const seq = read();
    if (delta === null || delta < 1 || seq === null) return null;
    slot += delta;
    if (!Number.isSafeInteger(slot)) return null;
    seen.set(slot, seq);
  }
  return at === body ? { epoch, self, seen } : null;
}
