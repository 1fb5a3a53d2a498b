/**
 * Realm population over HTTP and WebSocket (issue #16; docs/PROTOCOL.md,
 * "Realm population"). Reads go to the realm's RealmCounter, never to its
 * members: `GET /v1/realms/:realm` is remembered for REALM_BATCH_MS per
 * isolate (the count is batched at that rate anyway), so a hot realm's readers
 * reach its counter at most once per interval per isolate; subscribers hold a
 * socket to the counter itself. The admin route simulates memberships in bulk
 * for the benchmark (one call per shard).
 */
import { Hono, type Context } from "hono";
import { z } from "zod";
import { offeredProtocols, requireAdmin, requireUser, type AuthVariables } from "./auth";
import type { Env } from "./env";
import { ApiError } from "./errors";
import { readConfig } from "./presence/config";
import { shardName, shardOf, type RealmCount } from "./presence/realm";
import { heartbeatBody } from "./presence/schema";
import { PROTOCOL_VERSION, TOKEN_PROTOCOL_PREFIX } from "./protocol";

type App = { Bindings: Env; Variables: AuthVariables };

/** Most simulated members one admin request may add or remove. */
export const MAX_SIMULATED = 10_000;

const realmSchema = heartbeatBody.shape.realm;

function realmOf(c: Context): string {
  const parsed = realmSchema.safeParse(c.req.param("realm"));
  if (!parsed.success) throw new ApiError(400, "invalid_request", "realm: 1–64 printable characters");
  return parsed.data;
}

/** Counts read in this isolate, by realm: served for REALM_BATCH_MS. */
const recent = new Map<string, { count: Promise<RealmCount>; until: number }>();

/** `GET /v1/realms/:realm` → `{realm, count, at}`. */
export const realmCount = [
  requireUser,
  async (c: Context<App>) => {
    const realm = realmOf(c);
    const now = Date.now();
    const cached = recent.get(realm);
    // Concurrent readers share one call in flight.
    if (cached && cached.until > now) return c.json(strip(await cached.count));
    const count = c.env.REALM_COUNTER.getByName(realm).count();
    if (recent.size > 10_000) recent.clear();
    recent.set(realm, { count, until: now + readConfig(c.env).realmBatchMs });
    count.catch(() => recent.delete(realm));
    return c.json(strip(await count));
  },
] as const;

function strip({ type: _type, ...count }: RealmCount) {
  return count;
}

/** `GET /v1/realms/:realm/live` (WebSocket upgrade): `realm_count` frames, batched. Registered before cors(). */
export const realmLive = [
  requireUser,
  async (c: Context<App>) => {
    if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") throw new ApiError(426, "upgrade_required", "connect with a WebSocket upgrade");
    const realm = realmOf(c);
    const offered = offeredProtocols(c.req.raw).filter((p) => !p.startsWith(TOKEN_PROTOCOL_PREFIX));
    const protocol = offered.includes(PROTOCOL_VERSION) ? PROTOCOL_VERSION : offered[0];
    const headers = new Headers(c.req.raw.headers);
    if (protocol) headers.set("x-presence-protocol", protocol);
    return c.env.REALM_COUNTER.getByName(realm).fetch(new Request(c.req.raw, { headers }));
  },
] as const;

const simulation = z.object({
  action: z.enum(["join", "leave"]),
  prefix: z.string().min(1).max(32),
  from: z.number().int().min(0),
  count: z.number().int().min(1).max(MAX_SIMULATED),
  leaseMs: z.number().int().positive().optional(),
});

/**
 * Admin, for the benchmark only: `POST /v1/admin/realms/:realm/simulate`
 * `{action, prefix, from, count, leaseMs?}` makes users `<prefix><from…from+count-1>`
 * join or leave the realm's shards directly (no user objects: these users
 * have no presence), grouped by shard, one call per shard.
 */
export const realmAdmin = new Hono<{ Bindings: Env }>();
realmAdmin.use("*", requireAdmin);
realmAdmin.post("/:realm/simulate", async (c) => {
  const realm = realmOf(c);
  let raw: unknown;
  try {
    raw = await c.req.json();
  } catch {
    throw new ApiError(400, "bad_json", "the body is not valid JSON");
  }
  const body = simulation.safeParse(raw);
  if (!body.success) throw new ApiError(400, "invalid_request", body.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
  const { action, prefix, from, count } = body.data;
  const config = readConfig(c.env);
  const byShard = new Map<number, string[]>();
  for (let i = from; i < from + count; i++) {
    const userId = `${prefix}${i}`;
    const shard = shardOf(userId, config.realmShards);
    byShard.set(shard, [...(byShard.get(shard) ?? []), userId]);
  }
  const counts = await Promise.all(
    [...byShard].map(([shard, users]) => {
      const stub = c.env.REALM_SHARD.getByName(shardName(realm, shard));
      return action === "join" ? stub.join(users, body.data.leaseMs ?? config.realmLeaseMs) : stub.leave(users);
    }),
  );
  return c.json({ realm, action, users: count, calls: byShard.size, shardCounts: counts });
});
