/**
 * Sync filters, as far as presence goes. Clients upload a filter once
 * (POST /user/{userId}/filter) and pass its id to every /sync, or pass the
 * JSON inline. This server stores nothing: a filter's id *is* the filter,
 * compact JSON in base64url behind a version prefix, so ids survive restarts
 * and cost no rows. Of a filter only `presence` matters here (the only events
 * this server has): `types`/`not_types` (with `*` wildcards),
 * `senders`/`not_senders` and `limit`.
 */

export const FILTER_ID_PREFIX = "f1_";
/** Largest filter accepted, as compact JSON. */
export const MAX_FILTER_BYTES = 4_096;

export interface PresenceFilter {
  limit?: number;
  types?: string[];
  not_types?: string[];
  senders?: string[];
  not_senders?: string[];
}

type Problem = { ok: false; message: string };

function stringList(value: unknown, name: string): string[] | undefined | Problem {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) return { ok: false, message: `${name} must be a list of strings` };
  return value as string[];
}

/** Validates a whole filter definition and extracts its presence part. */
export function parseFilter(definition: unknown): { ok: true; definition: Record<string, unknown>; presence: PresenceFilter } | Problem {
  if (typeof definition !== "object" || definition === null || Array.isArray(definition)) return { ok: false, message: "a filter is a JSON object" };
  const record = definition as Record<string, unknown>;
  const raw = record.presence;
  if (raw === undefined) return { ok: true, definition: record, presence: {} };
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return { ok: false, message: "presence must be an object" };
  const p = raw as Record<string, unknown>;
  const presence: PresenceFilter = {};
  if (p.limit !== undefined) {
    if (typeof p.limit !== "number" || !Number.isInteger(p.limit) || p.limit < 1) return { ok: false, message: "presence.limit must be a positive integer" };
    presence.limit = p.limit;
  }
  for (const key of ["types", "not_types", "senders", "not_senders"] as const) {
    const list = stringList(p[key], `presence.${key}`);
    if (list && !Array.isArray(list)) return list;
    if (list) presence[key] = list;
  }
  return { ok: true, definition: record, presence };
}

function toBase64Url(text: string): string {
  const binary = String.fromCharCode(...new TextEncoder().encode(text));
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): string | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null;
  try {
    const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4));
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
  } catch {
    return null;
  }
}

/** The id of a filter: the filter itself. Never starts with `{` (the spec reserves that for inline filters). */
export function filterId(definition: Record<string, unknown>): string {
  return FILTER_ID_PREFIX + toBase64Url(JSON.stringify(definition));
}

export function filterFromId(id: string): Record<string, unknown> | null {
  if (!id.startsWith(FILTER_ID_PREFIX) || id.length > MAX_FILTER_BYTES * 2) return null;
  const json = fromBase64Url(id.slice(FILTER_ID_PREFIX.length));
  if (json === null) return null;
  try {
    const parsed = parseFilter(JSON.parse(json));
    return parsed.ok ? parsed.definition : null;
  } catch {
    return null;
  }
}

/**
 * The `filter` query parameter of /sync: inline JSON (starts with `{`) or an
 * id from POST /filter. Ids this server did not make (or a stale format) mean
 * "no filter", as an unknown filter id must not break a client's sync loop.
 */
export function resolveSyncFilter(param: string | null): { ok: true; presence: PresenceFilter } | Problem {
  if (param === null || param === "") return { ok: true, presence: {} };
  if (param.trimStart().startsWith("{")) {
    if (new TextEncoder().encode(param).byteLength > MAX_FILTER_BYTES) return { ok: false, message: "the inline filter is too large" };
    let json: unknown;
    try {
      json = JSON.parse(param);
    } catch {
      return { ok: false, message: "the inline filter is not valid JSON" };
    }
    const parsed = parseFilter(json);
    return parsed.ok ? { ok: true, presence: parsed.presence } : parsed;
  }
  const definition = filterFromId(param);
  if (definition === null) return { ok: true, presence: {} };
  const parsed = parseFilter(definition);
  return parsed.ok ? { ok: true, presence: parsed.presence } : { ok: true, presence: {} };
}

function matches(patterns: string[], value: string): boolean {
  return patterns.some((pattern) => {
    if (!pattern.includes("*")) return pattern === value;
    const regex = new RegExp(
      "^" +
        pattern
          .split("*")
          .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
          .join(".*") +
        "$",
    );
    return regex.test(value);
  });
}

/** Whether an event of `type` from `sender` passes the presence filter (not counting `limit`). */
export function passesPresenceFilter(filter: PresenceFilter, type: string, sender: string): boolean {
  if (filter.not_types && matches(filter.not_types, type)) return false;
  if (filter.types && !matches(filter.types, type)) return false;
  if (filter.not_senders?.includes(sender)) return false;
  if (filter.senders && !filter.senders.includes(sender)) return false;
  return true;
}
