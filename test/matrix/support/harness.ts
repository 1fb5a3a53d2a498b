/**
 * A Matrix server for the tests to talk to, behind one small interface so the
 * same tests can run against either target:
 *
 *   - `memory`: the real Hono sub-app (src/matrix/routes.ts) served by Node
 *     over the in-memory backend (support/memory-backend.ts);
 *   - `wrangler` (support/wrangler-harness.ts): `wrangler dev` with the
 *     UserPresence object as the backend; `befriend` is the admin API,
 *     `heartbeat` a WebSocket device's PositionHeartbeat.
 *
 * Tests use fresh user names (`fresh()`), so they never depend on each other.
 */
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { SignJWT } from "jose";
import { createMatrixApp } from "../../../src/matrix/routes";
import { toMatrixId } from "../../../src/matrix/ids";
import type { DeviceStatus } from "../../../src/presence/types";
import { MemoryPresence, newMemoryState, type MemoryOptions } from "./memory-backend";

export const SECRET = "matrix-test-secret-0123456789abcdef";

export interface MatrixHarness {
  readonly baseUrl: string;
  readonly serverName: string;
  /** How long a silent device stays live. */
  readonly ttlMs: number;
  token(userId: string, expiresIn?: string | number): Promise<string>;
  matrixId(userId: string): string;
  befriend(a: string, b: string): Promise<void>;
  /** One of the user's own project devices (not Matrix) states its status. */
  heartbeat(userId: string, deviceId: string, status: DeviceStatus, statusText?: string | null): Promise<void>;
  /** Restart the server; persisted state (and so every since token) survives. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

let counter = 0;
/** A user name no other test uses. */
export function fresh(base: string): string {
  counter += 1;
  return `${base}${counter}x${Math.random().toString(36).slice(2, 7)}`;
}

export async function signToken(userId: string, expiresIn: string | number = "1h", secret = SECRET): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject(userId).setIssuedAt().setExpirationTime(expiresIn).sign(new TextEncoder().encode(secret));
}

export interface MemoryHarness extends MatrixHarness {
  readonly backend: MemoryPresence;
}

/** The Matrix sub-app over the memory backend, on a free loopback port. */
export async function startMemoryHarness(
  options: { ttlMs?: number; serverName?: string; maxSyncTimeoutMs?: number; memory?: Partial<MemoryOptions> } = {},
): Promise<MemoryHarness> {
  const ttlMs = options.ttlMs ?? 120_000;
  const serverName = options.serverName ?? "matrix.test";
  const state = newMemoryState();
  const makeBackend = () => new MemoryPresence(state, { ttlMs, serverName, ...options.memory });
  let backend = makeBackend();
  const env = {
    JWT_SECRET: SECRET,
    SERVER_NAME: serverName,
    PRESENCE_TTL_MS: String(ttlMs),
    ...(options.maxSyncTimeoutMs ? { MATRIX_MAX_SYNC_TIMEOUT_MS: String(options.maxSyncTimeoutMs) } : {}),
  };
  const app = new Hono();
  app.route("/_matrix/client", createMatrixApp({ backend: () => backend }));
  app.notFound((c) => c.json({ error: { code: "not_found", message: "no such route" } }, 404));

  const server = await new Promise<Server>((resolve) => {
    const s = serve({ fetch: (request: Request) => app.fetch(request, env), port: 0, hostname: "127.0.0.1" }, () => resolve(s as Server)) as Server;
  });
  const port = (server.address() as AddressInfo).port;

  return {
    baseUrl: `http://127.0.0.1:${port}`,
    serverName,
    ttlMs,
    get backend() {
      return backend;
    },
    token: (userId, expiresIn) => signToken(userId, expiresIn),
    matrixId: (userId) => toMatrixId(userId, serverName)!,
    befriend: async (a, b) => backend.befriend(a, b),
    heartbeat: async (userId, deviceId, status, statusText = null) => {
      backend.heartbeat(userId, deviceId, status, statusText);
    },
    restart: async () => {
      backend.close();
      backend = makeBackend();
    },
    close: async () => {
      backend.close();
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Raw client-server API calls, for the ported suites (they test the wire, not a client library). */
export class RawMatrixClient {
  constructor(
    readonly harness: MatrixHarness,
    readonly userId: string,
    private readonly accessToken: string,
  ) {}

  static async login(harness: MatrixHarness, userId: string): Promise<RawMatrixClient> {
    return new RawMatrixClient(harness, userId, await harness.token(userId));
  }

  get matrixId(): string {
    return this.harness.matrixId(this.userId);
  }

  async do(method: string, path: string, body?: unknown, query: Record<string, string | undefined> = {}): Promise<{ status: number; body: any; headers: Headers }> {
    const url = new URL(`${this.harness.baseUrl}/_matrix/client${path}`);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
    const res = await fetch(url, {
      method,
      headers: { Authorization: `Bearer ${this.accessToken}`, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
  }

  async getPresence(matrixId = this.matrixId) {
    return this.do("GET", `/v3/presence/${encodeURIComponent(matrixId)}/status`);
  }

  async setPresence(presence: string, statusMsg?: string | null) {
    const body: Record<string, unknown> = { presence };
    if (statusMsg !== undefined) body.status_msg = statusMsg;
    const res = await this.do("PUT", `/v3/presence/${encodeURIComponent(this.matrixId)}/status`, body);
    if (res.status !== 200) throw new Error(`PUT presence: ${res.status} ${JSON.stringify(res.body)}`);
    return res;
  }

  /** One /sync; throws unless 200. */
  async sync(params: { since?: string; timeout?: number; setPresence?: string; fullState?: boolean; filter?: string } = {}): Promise<any> {
    const res = await this.do("GET", "/v3/sync", undefined, {
      since: params.since,
      timeout: params.timeout === undefined ? "0" : String(params.timeout),
      set_presence: params.setPresence,
      full_state: params.fullState === undefined ? undefined : String(params.fullState),
      filter: params.filter,
    });
    if (res.status !== 200) throw new Error(`sync: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  /**
   * Complement's MustSyncUntil: incremental syncs from `since` until `check`
   * accepts one response's presence events; returns that response's next_batch.
   */
  async syncUntil(since: string | undefined, check: (events: any[]) => boolean, options: { timeoutMs?: number; setPresence?: string } = {}): Promise<string> {
    const deadline = Date.now() + (options.timeoutMs ?? 5_000);
    let token = since;
    const seen: any[] = [];
    while (Date.now() < deadline) {
      const body = await this.sync({ since: token, timeout: Math.min(1_000, Math.max(0, deadline - Date.now())), setPresence: options.setPresence });
      seen.push(...body.presence.events);
      token = body.next_batch;
      if (check(body.presence.events)) return token!;
    }
    throw new Error(`sync condition not met; saw ${JSON.stringify(seen)}`);
  }
}

/** Complement's SyncPresenceHas: an m.presence event from `sender` (with `presence`, if given) passing `extra`. */
export function presenceHas(sender: string, presence?: string, extra: (event: any) => boolean = () => true) {
  return (events: any[]) => events.some((e) => e.type === "m.presence" && e.sender === sender && (presence === undefined || e.content.presence === presence) && extra(e));
}
