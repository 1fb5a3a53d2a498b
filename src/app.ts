/**
 * The worker: authenticates, validates, and routes each request to the
 * caller's own UserPresence object. It knows no presence rules.
 */
import { Hono, type Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { HTTPException } from "hono/http-exception";
import { z } from "zod";
import { dclUpgrade } from "./dcl/worker";
import { offeredProtocols, requireAdmin, requireUser, type AuthVariables } from "./auth";
import { mintToken } from "./dev-token.mjs";
import type { Env } from "./env";
import { ApiError, errorBody, refusalError } from "./errors";
import { objectCounters, realmCounters } from "../durable/counters";
import { createMatrixApp } from "./matrix/routes";
import { objectBackend } from "./matrix/object-backend";
import { inChunks } from "./presence/chunks";
import { realmAdmin, realmCount, realmLive } from "./realm-routes";
import { readConfig } from "./presence/config";
import { PROTOCOL_VERSION, TOKEN_PROTOCOL_PREFIX } from "./protocol";
import type { LocalOp } from "./presence/friendship";
import {
  describeIssues,
  deviceIdSchema,
  deviceKindSchema,
  friendPrivacyBody,
  friendsParamSchema,
  heartbeatBody,
  onlinePageQuery,
  privacyBody,
  requestMessageSchema,
  userIdSchema,
} from "./presence/schema";
import { meterTotals, resetMeter } from "../durable/meter";

type App = { Bindings: Env; Variables: AuthVariables };

const MAX_IMPORT_PAIRS = 1_000;
/** Admin imports reach users' objects this many at a time. */
const ADMIN_CHUNK = 20;
const pairSchema = z.union([z.object({ a: userIdSchema, b: userIdSchema }), z.tuple([userIdSchema, userIdSchema]).transform(([a, b]) => ({ a, b }))]);

function parse<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw new ApiError(400, "invalid_request", describeIssues(result.error));
  return result.data;
}

async function jsonBody(request: Request): Promise<unknown> {
  try {
    return await request.json();
  } catch {
    throw new ApiError(400, "bad_json", "the body is not valid JSON");
  }
}

function device(query: URLSearchParams) {
  const kind = parse(deviceKindSchema, query.get("kind") ?? "web");
  return { deviceId: query.get("device") === null ? null : parse(deviceIdSchema, query.get("device")), kind };
}

export const app = new Hono<App>();

app.onError((error, c) => {
  if (error instanceof ApiError) return c.json(errorBody(error.code, error.message), error.status, error.headers);
  if (error instanceof HTTPException) return c.json(errorBody("http_error", error.message || "request failed"), error.status);
  console.error("unhandled", error);
  return c.json(errorBody("internal", "the request failed; it is safe to retry"), 500);
});
app.notFound((c) => c.json(errorBody("not_found", "no such route"), 404));

app.get("/health", (c) => c.json({ ok: true, service: "edge-presence" }));

// Dev mode only (DEV_MODE=1 in .dev.vars, never in production): mint a short-lived token for the demo page.
app.post("/dev/token", async (c) => {
  if (c.env.DEV_MODE !== "1" || !c.env.JWT_SECRET) throw new ApiError(404, "not_found", "no such route");
  const { userId } = parse(z.object({ userId: userIdSchema }), await jsonBody(c.req.raw));
  const token = await mintToken(userId, {
    secret: c.env.JWT_SECRET,
    expiresIn: "1h",
    issuer: c.env.JWT_ISSUER || "edge-presence-dev",
    audience: c.env.JWT_AUDIENCE || "edge-presence-dev",
  });
  return c.json({ token, userId, expiresIn: 3600 });
});

// Matrix's client-server API (presence only; docs/MATRIX.md): its own CORS, body limit and error shape.
app.route("/_matrix/client", createMatrixApp({ backend: objectBackend }));

// Dev mode only: what this isolate's objects did (the benchmarks read the Matrix counters; wrangler dev runs objects in the worker's isolate).
app.get("/dev/counters", (c) => {
  if (c.env.DEV_MODE !== "1") throw new ApiError(404, "not_found", "no such route");
  return c.json({ ...objectCounters, realm: realmCounters });
});

// The WebSocket route comes before cors(): a 101 response's headers are immutable.
app.get("/v1/connect", requireUser, async (c) => {
  if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
    throw new ApiError(426, "upgrade_required", "connect with a WebSocket upgrade");
  }
  const { deviceId, kind } = device(new URL(c.req.url).searchParams);
  // A subset of friends from the start (issue #16): checked here, before any object is touched.
  if (c.req.query("friends") !== undefined) parse(friendsParamSchema, c.req.query("friends"));
  // Browsers fail the handshake unless one offered protocol is echoed; a token entry is never echoed (#12).
  const offered = offeredProtocols(c.req.raw).filter((p) => !p.startsWith(TOKEN_PROTOCOL_PREFIX));
  const protocol = offered.includes(PROTOCOL_VERSION) ? PROTOCOL_VERSION : offered[0];
  const headers = new Headers(c.req.raw.headers);
  headers.set("x-presence-device", deviceId ?? crypto.randomUUID());
  headers.set("x-presence-kind", kind);
  if (protocol) headers.set("x-presence-protocol", protocol);
  return c.env.USER.getByName(c.var.userId).fetch(new Request(c.req.raw, { headers }));
});

// Realm population (issue #16): subscribers hold a socket to the realm's counter; before cors() like /v1/connect.
app.get("/v1/realms/:realm/live", ...realmLive);

// Decentraland clients (docs/DECENTRALAND.md): the signed auth chain comes in the socket's first frame.
app.get("/dcl", (c) => dclUpgrade(c.req.raw, c.env));

app.use("/v1/*", cors({ origin: "*", allowHeaders: ["Authorization", "Content-Type"], allowMethods: ["GET", "POST", "PUT", "DELETE"] }));
app.use("/v1/*", async (c, next) =>
  bodyLimit({
    maxSize: c.req.path.startsWith("/v1/admin/") ? 1_000_000 : readConfig(c.env).maxFrameBytes,
    onError: () => {
      throw new ApiError(413, "body_too_large", "the body is larger than allowed");
    },
  })(c, next),
);

app.post("/v1/heartbeat", requireUser, async (c) => {
  const raw = await jsonBody(c.req.raw);
  const query = new URL(c.req.url).searchParams;
  const { deviceId, kind } = device(query);
  const body = parse(heartbeatBody, raw);
  const result = await c.env.USER.getByName(c.var.userId).httpHeartbeat(deviceId ?? "http", kind, body);
  if (!result.ok) throw refusalError(result, 429);
  return c.json(result.value);
});

app.get("/v1/friends/online", requireUser, async (c) => {
  const query = parse(onlinePageQuery, c.req.query());
  const result = await c.env.USER.getByName(c.var.userId).onlineFriends(query);
  if (!result.ok) throw refusalError(result, 429);
  return c.json(result.value);
});

app.get("/v1/friends", requireUser, async (c) => {
  const result = await c.env.USER.getByName(c.var.userId).friends();
  if (!result.ok) throw refusalError(result, 429);
  return c.json(result.value);
});

app.get("/v1/realms/:realm", ...realmCount);

// ─── friendship lifecycle (docs/FRIENDSHIPS.md) ─────────────────────────────

const FRIENDSHIP_STATUS: Record<string, ContentfulStatusCode> = {
  user_not_found: 404,
  not_friends: 404,
  not_blocked: 404,
  no_pending_request: 404,
  cannot_befriend_self: 400,
  already_friends: 409,
  blocked: 409,
  friend_limit: 409,
  request_limit: 409,
  block_limit: 409,
};

async function friendship(c: Context<App>, other: string, op: LocalOp, text?: string | null) {
  const target = parse(userIdSchema, other);
  const result = await c.env.USER.getByName(c.var.userId).friendship(target, op, text);
  if (!result.ok) throw refusalError(result, FRIENDSHIP_STATUS[result.code] ?? 409);
  const { userId, state, pending } = result.value;
  return c.json({ userId, state, pending }, pending ? 202 : 200);
}

app.post("/v1/friends/requests", requireUser, async (c) => {
  const body = parse(z.object({ userId: userIdSchema, message: requestMessageSchema }), await jsonBody(c.req.raw));
  return friendship(c, body.userId, "request", body.message ?? null);
});
app.delete("/v1/friends/requests/:userId", requireUser, (c) => friendship(c, c.req.param("userId"), "cancel"));
app.post("/v1/friends/requests/:userId/accept", requireUser, (c) => friendship(c, c.req.param("userId"), "accept"));
app.post("/v1/friends/requests/:userId/reject", requireUser, (c) => friendship(c, c.req.param("userId"), "reject"));
app.delete("/v1/friends/:userId", requireUser, (c) => friendship(c, c.req.param("userId"), "remove"));
app.put("/v1/blocks/:userId", requireUser, (c) => friendship(c, c.req.param("userId"), "block"));
app.delete("/v1/blocks/:userId", requireUser, (c) => friendship(c, c.req.param("userId"), "unblock"));

app.put("/v1/privacy", requireUser, async (c) => {
  const list = await c.env.USER.getByName(c.var.userId).setPrivacy(parse(privacyBody, await jsonBody(c.req.raw)));
  if (!list.ok) throw refusalError(list, 404);
  return c.json(list.value);
});
app.put("/v1/friends/:userId/privacy", requireUser, async (c) => {
  const userId = parse(userIdSchema, c.req.param("userId"));
  const list = await c.env.USER.getByName(c.var.userId).setPrivacy({ friend: { userId, ...parse(friendPrivacyBody, await jsonBody(c.req.raw)) } });
  if (!list.ok) throw refusalError(list, 404);
  return c.json(list.value);
});

app.get("/v1/presence/:userId", requireUser, async (c) => {
  const target = userIdSchema.safeParse(c.req.param("userId"));
  // Anyone who is not you or your friend is indistinguishable from nobody.
  if (!target.success) throw new ApiError(404, "not_found", "no such user among your friends");
  const found = await c.env.USER.getByName(c.var.userId).lookup(target.data);
  if (!found.ok) throw refusalError(found, 404);
  return c.json({ presence: found.value });
});

// ─── admin: friendships (the lifecycle API for users comes later) ───────────

async function setFriendships(env: Env, pairs: { a: string; b: string }[], state: "friends" | "removed") {
  const byUser = new Map<string, string[]>();
  for (const { a, b } of pairs) {
    if (a === b) throw new ApiError(400, "invalid_request", "a user cannot befriend themself");
    byUser.set(a, [...(byUser.get(a) ?? []), b]);
  }
  const pending: string[][] = [];
  const refusals: { userId: string; code: string; message: string }[] = [];
  await inChunks(
    [...byUser.keys()],
    ADMIN_CHUNK,
    (a) => env.USER.getByName(a).setFriendships(byUser.get(a)!, state),
    (a, settled) => {
      // An object that failed (not refused): the whole request fails, and is safe to retry.
      if (settled.status === "rejected") throw settled.reason;
      if (!settled.value.ok) refusals.push({ userId: a, code: settled.value.code, message: settled.value.message });
      else for (const b of settled.value.value.pending) pending.push([a, b]);
    },
  );
  return { pending, refusals };
}

const admin = new Hono<{ Bindings: Env }>();
admin.use("*", requireAdmin);

admin.put("/friendships", async (c) => {
  const pair = parse(pairSchema, await jsonBody(c.req.raw));
  const { pending, refusals } = await setFriendships(c.env, [pair], "friends");
  if (refusals.length > 0) throw new ApiError(409, refusals[0]!.code, refusals[0]!.message);
  return c.json({ ...pair, state: "friends", pending }, pending.length ? 202 : 200);
});

admin.delete("/friendships", async (c) => {
  const pair = parse(pairSchema, await jsonBody(c.req.raw));
  const { pending } = await setFriendships(c.env, [pair], "removed");
  return c.json({ ...pair, state: "removed", pending }, pending.length ? 202 : 200);
});

// Hono reads ":import" as a path parameter, so the literal route is matched by hand.
admin.post("/:action{friendships:import}", async (c) => {
  const { pairs } = parse(z.object({ pairs: z.array(pairSchema).min(1).max(MAX_IMPORT_PAIRS) }), await jsonBody(c.req.raw));
  const { pending, refusals } = await setFriendships(c.env, pairs, "friends");
  return c.json({ imported: pairs.length - refusals.length, pending, refusals }, refusals.length || pending.length ? 207 : 200);
});

app.route("/v1/admin/realms", realmAdmin);
// Cost accounting for the bench (durable/meter.ts): what this isolate's objects did, summed; POST resets.
admin.get("/stats", (c) => c.json(meterTotals()));
admin.post("/stats/reset", (c) => {
  resetMeter();
  return c.json({ reset: true });
});

app.route("/v1/admin", admin);
