/**
 * Realm population (issue #16): counts converge after joins, realm moves,
 * closes, TTL expiry and lost leaves (a failed leave is retried by the alarm;
 * a user object that never says goodbye is dropped by the lease); invisible
 * and `shareLocation: none` users are never counted; subscribers get batched
 * totals at most once per REALM_BATCH_MS; a bulk join costs one call per shard.
 */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { RealmShard } from "../../durable/realm-shard";
import { shardName, shardOf } from "../../src/presence/realm";
import { until } from "../shared/util";
import { ADMIN, ageDevices, api, Client, stubOf, token, user, worker } from "./helpers";

type ShardMethod = "join" | "leave";
const shardProto = RealmShard.prototype as unknown as Record<ShardMethod, (...args: unknown[]) => Promise<number>>;
/** Patches of RealmShard's prototype (RPC dispatches through it), undone after each test. */
const restores: Array<() => void> = [];
afterEach(() => {
  for (const restore of restores.splice(0).reverse()) restore();
});
function patchShard(method: ShardMethod, impl: (original: () => Promise<number>) => Promise<number>): void {
  const original = shardProto[method];
  shardProto[method] = function (this: RealmShard, ...args: unknown[]) {
    return impl(() => original.apply(this, args));
  };
  restores.push(() => {
    shardProto[method] = original;
  });
}

/** The next `n` leave calls reaching a shard fail, as a call lost in transit would. */
function failLeaves(n: number): { readonly failed: number } {
  const state = { failed: 0 };
  patchShard("leave", async (original) => {
    if (state.failed >= n) return original();
    state.failed++;
    throw new Error("leave lost in transit");
  });
  return state;
}

/**
 * The next join call reaching a shard waits for `release()` (or the end of the test); `reached` says it came.
 * (Polled, not awaited: a promise resolved inside the shard would run the test on in the shard's I/O context.)
 */
function holdJoin(): { readonly reached: boolean; release: () => void } {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const state = { reached: false, release };
  patchShard("join", async (original) => {
    if (state.reached) return original();
    state.reached = true;
    await released;
    return original();
  });
  restores.push(release);
  return state;
}

type Membership = { realm: string | null; shard: number; renewAt: number; owed?: Array<{ realm: string; shard: number; attempts: number }> };

function membershipOf(userId: string): Promise<Membership | undefined> {
  return runInDurableObject(stubOf(userId), (_, state) => state.storage.kv.get<Membership>("realm-membership"));
}

const TTL = 120_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `GET /v1/realms/:realm` until it answers `expected` (counts are batched: about a second). */
async function countConverges(realm: string, expected: number, timeoutMs = 8_000): Promise<void> {
  const reader = user("reader");
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const { status, body } = await api(reader, `/v1/realms/${encodeURIComponent(realm)}`);
    expect(status).toBe(200);
    last = body.count;
    if (body.count === expected) return;
    await sleep(200);
  }
  expect(last, `count of ${realm}`).toBe(expected);
}

async function member(realm: string, fields: Record<string, unknown> = {}) {
  const id = user("m");
  const client = await Client.connect(id);
  await client.heartbeat({ realm, ...fields });
  return { id, client };
}

async function subscribe(realm: string) {
  const res = await worker().fetch(`http://presence/v1/realms/${encodeURIComponent(realm)}/live`, {
    headers: { Upgrade: "websocket", Authorization: `Bearer ${await token(user("sub"))}` },
  });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  ws.accept();
  const frames: Array<{ type: string; realm: string; count: number; at: number; receivedAt: number }> = [];
  ws.addEventListener("message", (e) => {
    if (e.data !== "pong") frames.push({ ...JSON.parse(e.data as string), receivedAt: Date.now() });
  });
  return { ws, frames };
}

async function simulate(realm: string, body: Record<string, unknown>) {
  const res = await worker().fetch(`http://presence/v1/admin/realms/${encodeURIComponent(realm)}/simulate`, {
    method: "POST",
    headers: { Authorization: `Bearer ${ADMIN}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { calls: number; shardCounts: number[] };
}

describe("realm population", () => {
  it("joins, a realm move and a close converge; a heartbeat in the same realm calls nothing", async () => {
    const realm = user("forest");
    const other = user("lake");
    const a = await member(realm);
    const b = await member(realm);
    const c = await member(realm);
    await countConverges(realm, 3);
    await b.client.heartbeat({ realm: other });
    await c.client.close();
    await countConverges(realm, 1);
    await countConverges(other, 1);
    // Heartbeats that keep the realm make no call to a shard: the membership row is unchanged.
    const before = await runInDurableObject(stubOf(a.id), (_, state) => state.storage.kv.get("realm-membership"));
    await a.client.heartbeat({ realm, position: { x: 5, y: 5, z: 5 } });
    expect(await runInDurableObject(stubOf(a.id), (_, state) => state.storage.kv.get("realm-membership"))).toEqual(before);
  });

  it("invisible and shareLocation-none users are not counted; becoming visible or sharing again counts them", async () => {
    const realm = user("secret");
    await member(realm);
    const invisible = await member(realm, { status: "invisible" });
    const hidden = await member(realm);
    await hidden.client.request({ type: "SetPrivacy", shareLocation: "none" });
    await countConverges(realm, 1);
    await sleep(1_100); // past the per-user interval
    await invisible.client.heartbeat({ realm, status: "online" });
    await countConverges(realm, 2);
    await hidden.client.request({ type: "SetPrivacy", shareLocation: "all" });
    await countConverges(realm, 3);
    await sleep(1_100);
    await invisible.client.heartbeat({ realm, status: "invisible" });
    await countConverges(realm, 2);
  });

  it("a device that expires by TTL leaves the count (the user's alarm)", async () => {
    const realm = user("ttl");
    const { id } = await member(realm);
    await member(realm);
    await countConverges(realm, 2);
    await ageDevices(id, TTL + 1);
    expect(await runDurableObjectAlarm(stubOf(id))).toBe(true);
    await countConverges(realm, 1);
  });

  it("a member whose user object never says goodbye (crash, lost leave) leaves when its lease runs out", async () => {
    const realm = user("crash");
    await simulate(realm, { action: "join", prefix: "ghost-", from: 0, count: 5, leaseMs: 1_500 });
    await countConverges(realm, 5);
    await countConverges(realm, 0, 10_000);
  });

  it("a leave that fails is retried by the alarm (with backoff, in the same record), not left to the 6 h lease", async () => {
    const realm = user("retry");
    const { id, client } = await member(realm);
    await countConverges(realm, 1);
    const leaves = failLeaves(1);
    await sleep(1_100); // past the per-user interval
    await client.heartbeat({ realm, status: "invisible" });
    expect(leaves.failed).toBe(1);
    // Counted no more here; the shard still counts it: the leave is owed.
    expect(await membershipOf(id)).toMatchObject({ realm: null, owed: [{ realm, attempts: 1 }] });
    // The alarm retries it within seconds (RETRY_MS, then backoff): the count drops, the record goes.
    await countConverges(realm, 0, 12_000);
    expect(await membershipOf(id)).toBeUndefined();
  });

  it("a realm move whose leave fails: the new realm counts at once, the old one once the retry gets through", async () => {
    const [from, to] = [user("from"), user("to")];
    const { id, client } = await member(from);
    await countConverges(from, 1);
    failLeaves(1);
    await sleep(1_100);
    await client.heartbeat({ realm: to });
    expect(await membershipOf(id)).toMatchObject({ realm: to, owed: [{ realm: from, attempts: 1 }] });
    await countConverges(to, 1);
    await countConverges(from, 0, 12_000);
    expect((await membershipOf(id))?.owed).toBeUndefined();
  });

  it("a leave asked for while the join is still out goes after it: a leave never overtakes a join at the shard", async () => {
    const realm = user("order");
    const id = user("m");
    const client = await Client.connect(id);
    await client.request({ type: "GetOnlineFriends" }); // the connect's fan-in is over
    const join = holdJoin();
    const joining = client.heartbeat({ realm });
    await until("the join reached the shard", () => join.reached);
    await sleep(1_100); // past the per-user interval
    // Invisible while the join is out: nothing goes to the shard yet (the round in flight re-checks when it settles).
    await client.heartbeat({ realm, status: "invisible" });
    join.release();
    await joining;
    await countConverges(realm, 0);
    expect(await membershipOf(id)).toBeUndefined();
  });

  it("a renewal after REALM_SHARDS changed leaves the old shard as it joins the new one: never counted twice", async () => {
    const realm = user("reshard");
    const { id } = await member(realm);
    await countConverges(realm, 1);
    const before = (await membershipOf(id))!;
    const shards = [2, 3, 4, 5, 6, 7, 8, 9].find((n) => shardOf(id, n) !== before.shard)!;
    // REALM_SHARDS changed (this instance's config, as a deploy would) and the renewal is due.
    await runInDurableObject(stubOf(id), (instance, state) => {
      const object = instance as unknown as { config: { realmShards: number }; realms: { kept?: Membership } };
      object.config.realmShards = shards;
      const due = { ...before, renewAt: Date.now() - 1 };
      state.storage.kv.put("realm-membership", due);
      object.realms.kept = due;
    });
    await sleep(1_100);
    expect(await runDurableObjectAlarm(stubOf(id))).toBe(true);
    expect((await membershipOf(id))?.shard).toBe(shardOf(id, shards));
    expect(await env.REALM_SHARD.getByName(shardName(realm, before.shard)).count()).toBe(0);
    expect(await env.REALM_SHARD.getByName(shardName(realm, shardOf(id, shards))).count()).toBe(1);
    await countConverges(realm, 1);
  });

  it("the user's object renews its lease at half-life, not per heartbeat, and its alarm includes the renewal", async () => {
    const realm = user("renew");
    const { id } = await member(realm);
    const membership = await runInDurableObject(stubOf(id), (_, state) => state.storage.kv.get<{ renewAt: number }>("realm-membership"));
    expect(membership!.renewAt).toBeGreaterThan(Date.now() + 200_000);
    // Lease renewal due: the alarm renews (same realm), nothing else changes.
    await runInDurableObject(stubOf(id), (_, state) => {
      state.storage.kv.put("realm-membership", { ...membership!, renewAt: Date.now() - 1 });
    });
    // The object keeps its membership in memory (it is the row's only writer): a wake reads the aged row.
    await evictDurableObject(stubOf(id));
    await sleep(1_100);
    expect(await runDurableObjectAlarm(stubOf(id))).toBe(true);
    const renewed = await runInDurableObject(stubOf(id), (_, state) => state.storage.kv.get<{ renewAt: number }>("realm-membership"));
    expect(renewed!.renewAt).toBeGreaterThan(Date.now() + 200_000);
    await countConverges(realm, 1);
  });

  it("subscribers get the count at once, then batched totals at most once per second; a bulk join is one call per shard", async () => {
    const realm = user("hot");
    const { ws, frames } = await subscribe(realm);
    await sleep(100);
    expect(frames[0]).toMatchObject({ type: "realm_count", realm, count: 0 });
    for (let i = 0; i < 10; i++) {
      const { calls } = await simulate(realm, { action: "join", prefix: `u${i}-`, from: 0, count: 50 });
      expect(calls).toBeLessThanOrEqual(16);
    }
    const deadline = Date.now() + 8_000;
    while (Date.now() < deadline && frames.at(-1)?.count !== 500) await sleep(100);
    expect(frames.at(-1)?.count).toBe(500);
    const pushes = frames.slice(1);
    // Many joins, few pushes: each at least REALM_BATCH_MS after the previous one.
    expect(pushes.length).toBeLessThan(10);
    for (let i = 1; i < pushes.length; i++) expect(pushes[i]!.at - pushes[i - 1]!.at).toBeGreaterThanOrEqual(1_000);
    await simulate(realm, { action: "leave", prefix: "u0-", from: 0, count: 50 });
    const until = Date.now() + 8_000;
    while (Date.now() < until && frames.at(-1)?.count !== 450) await sleep(100);
    expect(frames.at(-1)?.count).toBe(450);
    ws.close(1000, "bye");
  });

  it("invalid realms are refused; the routes need a token", async () => {
    expect((await api(user("r"), `/v1/realms/${"x".repeat(65)}`)).status).toBe(400);
    const res = await worker().fetch("http://presence/v1/realms/lobby");
    expect(res.status).toBe(401);
    expect(env.REALM_COUNTER).toBeDefined();
  });
});
