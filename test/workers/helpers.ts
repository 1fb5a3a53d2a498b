import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { expect } from "vitest";
import type { Meta, MetaKey } from "../../durable/schema";
import type { OwnPresence } from "../../durable/presence";
import type { UserStore } from "../../durable/store";
import { UserPresence } from "../../durable/user-presence";
import type { Presence } from "../../src/presence/types";
import { befriend as adminBefriend } from "../../scripts/lib/admin.mjs";
import { mintToken } from "../../src/dev-token.mjs";
import { FrameClient } from "../shared/frame-client";
import { WORKER_TEST_BINDINGS } from "./bindings";

import { memberRealm } from "../../src/presence/realm";
import { until, user } from "../shared/util";

export { user };

export const SECRET = WORKER_TEST_BINDINGS.JWT_SECRET;
export const ADMIN = WORKER_TEST_BINDINGS.ADMIN_TOKEN;

export function token(sub: string, opts: { exp?: string | number; secret?: string; nbf?: string | number } = {}): Promise<string> {
  return mintToken(sub, { secret: opts.secret ?? SECRET, expiresIn: opts.exp, notBefore: opts.nbf });
}

export function worker(): Fetcher {
  return (exports as unknown as { default: Fetcher }).default;
}

/** An authenticated HTTP call to the worker. Every answer of this API is JSON; anything else fails the test. */
export async function api(userId: string, path: string, init: RequestInit = {}): Promise<{ status: number; body: any }> {
  const res = await worker().fetch(`http://presence${path}`, {
    ...init,
    headers: { Authorization: `Bearer ${await token(userId)}`, "Content-Type": "application/json", ...(init.headers ?? {}) },
  });
  const text = await res.text();
  let body: any;
  expect(() => (body = JSON.parse(text)), `${path}: not JSON: ${text.slice(0, 200)}`).not.toThrow();
  return { status: res.status, body };
}

export function befriend(a: string, b: string): Promise<Response> {
  return adminBefriend({ url: "http://presence", adminToken: ADMIN, fetch: (url, init) => worker().fetch(url, init) }, a, b);
}

/** When `watcher`'s lease on `owner` ends, as `owner`'s watchers table has it; null: no lease. */
export function leaseOf(owner: string, watcher: string): Promise<number | null> {
  return runInDurableObject(stubOf(owner), (_, state) => {
    const rows = state.storage.sql.exec(`SELECT lease_expires_at FROM watchers WHERE watcher_id = ?`, watcher).toArray();
    return rows.length ? Number(rows[0]!.lease_expires_at) : null;
  });
}

/** Whose object an instance is (the name it was addressed by): fault injection filters on it. */
export function ownerOf(instance: unknown): string | undefined {
  return (instance as { ctx: DurableObjectState }).ctx.id.name;
}

const patches: Array<() => void> = [];

/**
 * Fault injection: replaces `method` of UserPresence for calls that reach the
 * objects `owner` names (a user id, or a test on the object's user id). RPC
 * dispatches through the class prototype, so the prototype is patched: a live
 * instance and one created after an eviction are both covered. `impl` gets the
 * original call, its arguments, and the original to call with other ones.
 * Undone by `restorePatches()` (each file: `afterEach(restorePatches)`).
 */
export function patchObject(
  owner: string | ((userId: string) => boolean),
  method: string,
  impl: (original: () => unknown, args: unknown[], withArgs: (args: unknown[]) => unknown) => unknown,
): void {
  const proto = UserPresence.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
  const original = proto[method]!;
  const applies = typeof owner === "string" ? (userId: string) => userId === owner : owner;
  proto[method] = function (this: unknown, ...args: unknown[]) {
    const withArgs = (given: unknown[]) => original.apply(this, given);
    const call = () => withArgs(args);
    return applies(ownerOf(this) ?? "") ? impl(call, args, withArgs) : call();
  };
  patches.push(() => {
    proto[method] = original;
  });
}

/**
 * Holds the calls of `method` that reach `owner`'s object until `release()`
 * (or the end of the test); `reached` resolves at the first. Released calls
 * go through, unless `lost` gives the answer a caller that is gone would get
 * (the call then records nothing).
 */
export function holdCalls(owner: string, method: string, lost?: { answer: unknown }): { reached: Promise<void>; release: () => void } {
  let signal!: () => void;
  let release!: () => void;
  const reached = new Promise<void>((resolve) => (signal = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  patchObject(owner, method, async (original) => {
    signal();
    await released;
    return lost ? lost.answer : original();
  });
  patches.push(release);
  return { reached, release };
}

/** Undoes every patch of the test (and lets held calls go). */
export function restorePatches(): void {
  for (const restore of patches.splice(0).reverse()) restore();
}

export function stubOf(userId: string) {
  return env.USER.getByName(userId);
}

/**
 * Sets a meta value of a user's live object (e.g. to move a deadline into the
 * past instead of waiting). Goes through the object's store, which caches meta.
 */
export async function setMeta<K extends MetaKey>(userId: string, key: K, update: (value: Meta[K] | null) => Meta[K] | null) {
  await runInDurableObject(stubOf(userId), (instance) => {
    const store = (instance as unknown as { store: UserStore }).store;
    store.set(key, update(store.get(key)));
  });
}

/** A real WebSocket to the real worker, with a queue of parsed frames. */
export class Client extends FrameClient {
  private constructor(readonly ws: WebSocket) {
    super();
    ws.addEventListener("message", (e) => this.received(typeof e.data === "string" && e.data !== "pong" ? JSON.parse(e.data) : e.data));
    ws.addEventListener("close", (e) => this.ended(e.code, e.reason));
  }

  static async connect(userId: string, opts: { device?: string; kind?: string; friends?: string[] } = {}): Promise<Client> {
    const params = new URLSearchParams({ device: opts.device ?? "d1", kind: opts.kind ?? "desktop" });
    if (opts.friends) params.set("friends", opts.friends.join(","));
    const res = await worker().fetch(`http://presence/v1/connect?${params}`, {
      headers: { Upgrade: "websocket", Authorization: `Bearer ${await token(userId)}` },
    });
    expect(res.status).toBe(101);
    const ws = res.webSocket!;
    ws.accept();
    const client = new Client(ws);
    const welcome = await client.next((f) => f.type === "welcome");
    expect(welcome.userId).toBe(userId);
    return client;
  }

  send(message: unknown) {
    this.ws.send(typeof message === "string" ? message : JSON.stringify(message));
  }

  override presenceOf(userId: string, predicate: (p: Presence) => boolean = () => true, timeoutMs?: number): Promise<Presence> {
    return super.presenceOf(userId, predicate, timeoutMs);
  }

  /** Nothing matching arrives within `ms` (used to prove no leak). */
  async expectNone(predicate: (frame: any) => boolean, ms = 300): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
    expect(this.frames.filter(predicate)).toEqual([]);
  }

  async close(code = 1000) {
    this.ws.close(code, "bye");
  }
}

/**
 * Moves a user's devices' signs of life into the past (`ms` earlier, or through
 * `shift`), as if they had been silent: in the object's memory, on disk and in
 * the sockets' attachments, where a heartbeat keeps them (issue #11).
 */
export async function ageDevices(userId: string, ms: number | ((t: number) => number), device?: string) {
  await runInDurableObject(stubOf(userId), (instance) => {
    const presence = (instance as unknown as { presence: OwnPresence }).presence;
    presence.ageSignsOfLife(typeof ms === "number" ? (t) => t - ms : ms, device);
  });
}

/**
 * A and B are friends, B's socket is subscribed (B watches A), and A is
 * connected as `device` and online after one heartbeat (`online`: what B saw).
 */
export async function watchedPair(opts: { device?: string; kind?: string; heartbeat?: Record<string, unknown> } = {}) {
  const [a, b] = [user("a"), user("b")];
  await befriend(a, b);
  const watcher = await Client.connect(b);
  await watcher.request({ type: "SubscribeFriendshipPresenceUpdates" });
  const ca = await Client.connect(a, { device: opts.device ?? "a-pc", ...(opts.kind ? { kind: opts.kind } : {}) });
  await ca.heartbeat({ realm: "lobby", ...opts.heartbeat });
  const online = await watcher.presenceOf(a, (p) => p.status === "online");
  await membershipRecorded(a);
  return { a, b, ca, watcher, online };
}

/** The user's realm membership is recorded (its KV row is written when the shard answers, which may be after the ack): row counts start after it. */
export async function membershipRecorded(userId: string): Promise<void> {
  await until(`${userId}'s realm membership is recorded`, () =>
    runInDurableObject(stubOf(userId), (instance, state) => {
      const wanted = memberRealm((instance as unknown as { presence: OwnPresence }).presence.published());
      return (state.storage.kv.get<{ realm: string }>("realm-membership")?.realm ?? null) === wanted;
    }),
  );
}

/** Counts calls of `method` arriving at any of `users`' objects (restored by `restorePatches`). */
export function countCalls(method: string, users: string[]): { readonly n: number } {
  const targets = new Set(users);
  const counter = { n: 0 };
  patchObject(
    (userId) => targets.has(userId),
    method,
    (original) => {
      counter.n++;
      return original();
    },
  );
  return counter;
}

/**
 * The coalescing interval is over: the last push moved an hour back in memory, where published_at lives
 * (no row; after a wake it comes back from the sockets' attachments, which this value then overrides).
 */
export async function coalescingOver(userId: string) {
  await runInDurableObject(stubOf(userId), (instance) => (instance as unknown as { store: UserStore }).store.remember("published_at", Date.now() - 3_600_000));
}
