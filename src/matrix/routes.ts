/**
 * The presence part of Matrix's client-server API, as a Hono sub-app. Mount
 * it at `/_matrix/client`:
 *
 *   app.route("/_matrix/client", createMatrixApp({ backend: (env) => … }));
 *
 * It authenticates with the project's own JWTs (`requireUser`: Bearer header
 * or `?access_token=`), speaks Matrix's error shape, and reaches presence only
 * through a `MatrixBackend` (src/matrix/backend.ts) — no Durable Object
 * imports here. Everything a stock client (matrix-js-sdk) calls before it
 * settles into its /sync loop is answered, with empty data where this server
 * has none (push rules, capabilities, rooms). docs/MATRIX.md is the prose.
 */
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { requireUser, type AuthVariables } from "../auth";
import type { Env } from "../env";
import { readConfig } from "../presence/config";
import { MATRIX_DEVICE_ID, type MatrixBackend, type MatrixSyncResult, type RateLimited } from "./backend";
import { MatrixError, rateLimited, toMatrixError } from "./errors";
import { filterFromId, filterId, MAX_FILTER_BYTES, parseFilter, resolveSyncFilter } from "./filter";
import { isValidServerName, parseMatrixId, toMatrixId } from "./ids";
import { isMatrixPresenceState, statusMsgProblem, toMatrixContent, type MatrixPresenceState } from "./mapping";

/** Vars the Matrix API reads besides the project's (wrangler.toml [vars]). */
export interface MatrixVars {
  /** The `domain` of every Matrix id this server hands out: `@alice:<SERVER_NAME>`. Default `localhost`. */
  SERVER_NAME?: string;
  /** Longest /sync long poll in ms (default 30000; never more than half the presence TTL). */
  MATRIX_MAX_SYNC_TIMEOUT_MS?: string;
}

type MatrixEnv = Env & MatrixVars;
type MatrixApp = { Bindings: MatrixEnv; Variables: AuthVariables };

export interface MatrixAppOptions {
  /** The presence service for one request's environment. */
  backend: (env: MatrixEnv) => MatrixBackend;
}

/** Spec versions whose presence API this server implements (unchanged since r0). */
export const SUPPORTED_VERSIONS = ["r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11", "v1.12", "v1.13"];
export const DEFAULT_MAX_SYNC_TIMEOUT_MS = 30_000;

export function serverNameOf(env: MatrixVars): string {
  const name = env.SERVER_NAME || "localhost";
  if (!isValidServerName(name)) throw new Error(`SERVER_NAME ${JSON.stringify(name)} is not a Matrix server name`);
  return name;
}

/** The longest a /sync may be held: the client's wish, capped, and well inside the TTL so a polling client never expires mid-poll. */
export function syncTimeoutCap(env: MatrixEnv): number {
  const configured = Number(env.MATRIX_MAX_SYNC_TIMEOUT_MS);
  const cap = Number.isFinite(configured) && configured > 0 ? configured : DEFAULT_MAX_SYNC_TIMEOUT_MS;
  return Math.min(cap, Math.floor(readConfig(env as unknown as Record<string, unknown>).ttlMs / 2));
}

function refuse(result: RateLimited): never {
  throw rateLimited(result.retryAfterMs);
}

async function jsonObject(c: Context<MatrixApp>): Promise<Record<string, unknown>> {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    throw new MatrixError("M_NOT_JSON", "the body is not valid JSON");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new MatrixError("M_BAD_JSON", "the body must be a JSON object");
  return body as Record<string, unknown>;
}

/** The caller's own Matrix id; a user whose id would exceed 255 bytes has none and cannot use this API. */
function selfMatrixId(c: Context<MatrixApp>): string {
  const id = toMatrixId(c.var.userId, serverNameOf(c.env));
  if (id === null) throw new MatrixError("M_FORBIDDEN", "this account's user id has no Matrix form (over 255 bytes)");
  return id;
}

/** A `{userId}` path parameter that must name the caller (filters, own presence). */
function requireSelf(c: Context<MatrixApp>, what: string): void {
  const parsed = parseMatrixId(c.req.param("userId") ?? "", serverNameOf(c.env));
  if (!parsed.ok && parsed.reason === "malformed") throw new MatrixError("M_INVALID_PARAM", "not a Matrix user id");
  if (!parsed.ok || parsed.userId !== c.var.userId) throw new MatrixError("M_FORBIDDEN", `you can only ${what} for yourself`);
}

function syncParams(query: URLSearchParams) {
  const rawTimeout = query.get("timeout");
  const timeout = rawTimeout === null || rawTimeout === "" ? 0 : Number(rawTimeout);
  if (!Number.isInteger(timeout) || timeout < 0) throw new MatrixError("M_INVALID_PARAM", "timeout must be a non-negative integer (ms)");
  const setPresence = query.get("set_presence") ?? "online";
  if (!isMatrixPresenceState(setPresence)) throw new MatrixError("M_INVALID_PARAM", "set_presence must be online, unavailable or offline");
  const fullState = query.get("full_state");
  if (fullState !== null && fullState !== "true" && fullState !== "false") throw new MatrixError("M_INVALID_PARAM", "full_state must be true or false");
  const filter = resolveSyncFilter(query.get("filter"));
  if (!filter.ok) throw new MatrixError("M_INVALID_PARAM", filter.message);
  const since = query.get("since");
  return { timeout, setPresence: setPresence as MatrixPresenceState, fullState: fullState === "true", filter: filter.presence, since: since || null };
}

export function createMatrixApp(options: MatrixAppOptions): Hono<MatrixApp> {
  const matrix = new Hono<MatrixApp>();

  matrix.onError((error, c) => {
    const matrixError = toMatrixError(error);
    if (matrixError.status >= 500 && !(error instanceof MatrixError)) console.error("matrix: unhandled", error);
    return c.json(matrixError.body(), matrixError.status, matrixError.headers());
  });

  // Web clients call from other origins; the spec asks for permissive CORS on the whole API.
  matrix.use(
    "*",
    cors({
      origin: "*",
      allowMethods: ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"],
      allowHeaders: ["X-Requested-With", "Content-Type", "Authorization"],
    }),
  );
  matrix.use("*", async (c, next) =>
    bodyLimit({
      maxSize: Math.max(MAX_FILTER_BYTES, readConfig(c.env as unknown as Record<string, unknown>).maxFrameBytes),
      onError: () => {
        throw new MatrixError("M_TOO_LARGE", "the body is larger than allowed");
      },
    })(c, next),
  );

  matrix.get("/versions", (c) => c.json({ versions: SUPPORTED_VERSIONS, unstable_features: {} }));

  for (const v of ["v3", "r0"]) {
    matrix.get(`/${v}/account/whoami`, requireUser, (c) => c.json({ user_id: selfMatrixId(c), device_id: MATRIX_DEVICE_ID, is_guest: false }));

    matrix.get(`/${v}/capabilities`, requireUser, (c) =>
      c.json({
        capabilities: {
          "m.change_password": { enabled: false },
          "m.set_displayname": { enabled: false },
          "m.set_avatar_url": { enabled: false },
          "m.3pid_changes": { enabled: false },
        },
      }),
    );

    // No rooms, so no notifications: an empty rule set (clients fill in the spec's defaults).
    const pushRules = (c: Context<MatrixApp>) => c.json({ global: { override: [], content: [], room: [], sender: [], underride: [] } });
    matrix.get(`/${v}/pushrules/`, requireUser, pushRules);
    matrix.get(`/${v}/pushrules`, requireUser, pushRules);

    matrix.post(`/${v}/user/:userId/filter`, requireUser, async (c) => {
      requireSelf(c, "upload filters");
      const parsed = parseFilter(await jsonObject(c));
      if (!parsed.ok) throw new MatrixError("M_BAD_JSON", parsed.message);
      const id = filterId(parsed.definition);
      if (id.length > MAX_FILTER_BYTES * 2) throw new MatrixError("M_TOO_LARGE", "the filter is too large");
      return c.json({ filter_id: id });
    });

    matrix.get(`/${v}/user/:userId/filter/:filterId`, requireUser, (c) => {
      requireSelf(c, "read filters");
      const definition = filterFromId(c.req.param("filterId"));
      if (definition === null) throw new MatrixError("M_NOT_FOUND", "no such filter");
      return c.json(definition);
    });

    matrix.get(`/${v}/presence/:userId/status`, requireUser, async (c) => {
      selfMatrixId(c);
      const parsed = parseMatrixId(c.req.param("userId"), serverNameOf(c.env));
      if (!parsed.ok && parsed.reason === "malformed") throw new MatrixError("M_INVALID_PARAM", "not a Matrix user id");
      // Not you, not your friend, another server's user, or nobody at all: one and the same answer.
      const presence = parsed.ok ? await options.backend(c.env).presence(c.var.userId, parsed.userId) : null;
      if (presence === null) throw new MatrixError("M_NOT_FOUND", "no presence for this user (they may not exist, or not share it with you)");
      return c.json(toMatrixContent(presence, Date.now()));
    });

    matrix.put(`/${v}/presence/:userId/status`, requireUser, async (c) => {
      selfMatrixId(c);
      requireSelf(c, "set presence");
      const body = await jsonObject(c);
      if (!isMatrixPresenceState(body.presence)) throw new MatrixError("M_BAD_JSON", "presence must be online, unavailable or offline");
      const problem = statusMsgProblem(body.status_msg);
      if (problem) throw new MatrixError("M_BAD_JSON", problem);
      const statusMsg = typeof body.status_msg === "string" && body.status_msg !== "" ? body.status_msg : null;
      const result = await options.backend(c.env).setPresence(c.var.userId, body.presence, statusMsg);
      if (!result.ok) refuse(result);
      return c.json({});
    });

    matrix.get(`/${v}/sync`, requireUser, async (c) => {
      selfMatrixId(c);
      const params = syncParams(new URL(c.req.url).searchParams);
      const backend = options.backend(c.env);
      const signal = c.req.raw.signal;
      const self = c.var.userId;
      const request = { since: params.since, setPresence: params.setPresence, fullState: params.fullState, filter: params.filter };
      let result: MatrixSyncResult | RateLimited = await backend.sync(self, { ...request, signOfLife: true });
      if (!result.ok) refuse(result);
      // Like Synapse: an initial or full-state sync answers at once; an incremental one waits for news.
      const deadline = Date.now() + (params.since === null || params.fullState ? 0 : Math.min(params.timeout, syncTimeoutCap(c.env)));
      while (result.events.length === 0 && Date.now() < deadline && !signal?.aborted) {
        await backend.waitForChange(self, result.mark, deadline - Date.now(), signal);
        // Timed out: the empty answer stands (its token misses nothing; a change just now comes with the next poll). Saves an evaluation per idle poll.
        if (signal?.aborted || Date.now() >= deadline) break;
        const again: MatrixSyncResult | RateLimited = await backend.sync(self, { ...request, signOfLife: false });
        if (!again.ok) refuse(again);
        result = again;
      }
      return c.json({
        next_batch: result.nextBatch,
        presence: { events: result.events },
        account_data: { events: [] },
        to_device: { events: [] },
        rooms: { join: {}, invite: {}, leave: {}, knock: {} },
      });
    });
  }

  // Everything else under /_matrix/client: the spec's answer for an endpoint a server does not implement.
  matrix.all("*", () => {
    throw new MatrixError("M_UNRECOGNIZED", "unrecognized request");
  });

  return matrix;
}
