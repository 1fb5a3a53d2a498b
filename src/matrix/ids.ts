/**
 * Matrix user ids ↔ this project's user ids.
 *
 * A project user id (letters of both cases, digits, `_ . @ : -`) becomes the
 * localpart of `@<localpart>:<SERVER_NAME>` through the mapping the Matrix
 * spec suggests (appendices, "Mapping from other character sets"): `A` → `_a`,
 * `_` → `__`, and any byte outside the localpart alphabet (here `@`, `:`)
 * → `=xx` in lower-case hex. The mapping is a bijection: parsing decodes and
 * re-encodes, and refuses any spelling that is not the canonical one, so no
 * two Matrix ids ever name the same user.
 */
import { userIdSchema } from "../presence/schema";

/** The spec's limit on a whole user id, in bytes (sigil and server name included). */
export const MAX_MATRIX_ID_BYTES = 255;

/** `hostname [":" port]`: DNS name, dotted quad, or bracketed IPv6 literal (spec appendices, "Server Name"). */
const SERVER_NAME = /^(?:\[[0-9A-Fa-f:.]{2,45}\]|\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|[A-Za-z0-9.-]{1,255})(?::\d{1,5})?$/;

export function isValidServerName(name: string): boolean {
  if (!SERVER_NAME.test(name)) return false;
  const port = /:(\d{1,5})$/.exec(name.startsWith("[") ? name.slice(name.indexOf("]") + 1) : name);
  return port === null || Number(port[1]) <= 65_535;
}

/** Characters that stand for themselves in a localpart made by this mapping. */
const PLAIN = /^[a-z0-9.-]$/;

/** Encodes a project user id as a localpart; it is ASCII, so one byte per character. */
export function encodeLocalpart(userId: string): string {
  let out = "";
  for (const ch of userId) {
    if (ch >= "A" && ch <= "Z") out += `_${ch.toLowerCase()}`;
    else if (ch === "_") out += "__";
    else if (PLAIN.test(ch)) out += ch;
    else {
      for (const byte of new TextEncoder().encode(ch)) out += `=${byte.toString(16).padStart(2, "0")}`;
    }
  }
  return out;
}

/** Decodes a localpart made by `encodeLocalpart`; null for anything that is not its canonical output for a valid user id. */
export function decodeLocalpart(localpart: string): string | null {
  const bytes: number[] = [];
  for (let i = 0; i < localpart.length; i++) {
    const ch = localpart[i]!;
    if (ch === "_") {
      const next = localpart[i + 1];
      if (next === "_") bytes.push(0x5f);
      else if (next !== undefined && next >= "a" && next <= "z") bytes.push(next.toUpperCase().charCodeAt(0));
      else return null;
      i++;
    } else if (ch === "=") {
      const hex = localpart.slice(i + 1, i + 3);
      if (!/^[0-9a-f]{2}$/.test(hex)) return null;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (PLAIN.test(ch)) bytes.push(ch.charCodeAt(0));
    else return null;
  }
  let userId: string;
  try {
    userId = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(new Uint8Array(bytes));
  } catch {
    return null;
  }
  if (!userIdSchema.safeParse(userId).success) return null;
  // Canonical spelling only: `=61` for `a` or `=5f` for `_` would otherwise name the same user twice.
  return encodeLocalpart(userId) === localpart ? userId : null;
}

/** `@<localpart>:<serverName>`, or null when the result would exceed the spec's 255 bytes. */
export function toMatrixId(userId: string, serverName: string): string | null {
  const id = `@${encodeLocalpart(userId)}:${serverName}`;
  return new TextEncoder().encode(id).byteLength <= MAX_MATRIX_ID_BYTES ? id : null;
}

export type ParsedMatrixId =
  | { ok: true; userId: string }
  /** `malformed`: not a Matrix user id at all. `foreign`: a well-formed id this server does not own (another server, or a localpart no project user maps to). */
  | { ok: false; reason: "malformed" | "foreign" };

/**
 * Parses a Matrix user id into this server's user id. The localpart ends at
 * the first `:` (server names may contain colons; localparts may not).
 */
export function parseMatrixId(matrixId: string, serverName: string): ParsedMatrixId {
  if (!matrixId.startsWith("@") || new TextEncoder().encode(matrixId).byteLength > MAX_MATRIX_ID_BYTES) return { ok: false, reason: "malformed" };
  const colon = matrixId.indexOf(":");
  if (colon < 2) return { ok: false, reason: "malformed" };
  const localpart = matrixId.slice(1, colon);
  const server = matrixId.slice(colon + 1);
  if (!isValidServerName(server)) return { ok: false, reason: "malformed" };
  if (server !== serverName) return { ok: false, reason: "foreign" };
  const userId = decodeLocalpart(localpart);
  return userId === null ? { ok: false, reason: "foreign" } : { ok: true, userId };
}
