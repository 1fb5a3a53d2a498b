// Realm population at 10,000 simulated users (issue #16): how fast counts
// converge, how many pushes subscribers get, and how many billed calls
// between objects it takes. Starts `wrangler dev` (scripts/lib/dev-server.mjs),
// joins 10,000 simulated members through the admin-only bulk route
// (POST /v1/admin/realms/:realm/simulate: memberships without user objects,
// one call per shard), then a few real users over WebSockets for the calls a
// real join costs. Writes bench/results/realm-counts.json.
import { mkdirSync, writeFileSync } from "node:fs";
import WebSocket from "ws";
import { startDevServer } from "../scripts/lib/dev-server.mjs";

const USERS = Number(process.env.REALM_USERS ?? 10_000);
const BATCH = 1_000;
const SUBSCRIBERS = Number(process.env.REALM_SUBSCRIBERS ?? 100);
const REAL_USERS = 20;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const server = await startDevServer({ ports: { first: 8960, count: 10 } });
const realm = "plaza";
const counters = async () => (await (await fetch(`${server.url}/dev/counters`)).json()).realm;
const token = await server.token("bench-reader");
const httpCount = async () => (await (await fetch(`${server.url}/v1/realms/${realm}`, { headers: { Authorization: `Bearer ${token}` } })).json()).count;

try {
  // Subscribers: each holds a socket to the realm's counter.
  const subs = await Promise.all(
    Array.from({ length: SUBSCRIBERS }, () => {
      const ws = new WebSocket(`${server.url.replace("http", "ws")}/v1/realms/${realm}/live`, { headers: { Authorization: `Bearer ${token}` } });
      const frames = [];
      ws.on("message", (d) => frames.push({ ...JSON.parse(d.toString()), receivedAt: Date.now() }));
      return new Promise((resolve, reject) => {
        ws.once("open", () => resolve({ ws, frames }));
        ws.once("error", reject);
      });
    }),
  );
  const waitAll = async (count, timeoutMs = 30_000) => {
    const start = Date.now();
    while (Date.now() - start < timeoutMs) {
      if (subs.every((s) => s.frames.at(-1)?.count === count)) return Date.now();
      await sleep(20);
    }
    throw new Error(`subscribers did not converge on ${count}: last ${JSON.stringify(subs[0].frames.slice(-3))}, HTTP ${await httpCount()}`);
  };
  const waitHttp = async (count, timeoutMs = 30_000) => {
    const start = Date.now();
    while (Date.now() - start < timeoutMs) {
      if ((await httpCount()) === count) return Date.now();
      await sleep(50);
    }
    throw new Error(`HTTP count did not converge on ${count}`);
  };
  await sleep(500);

  // 10,000 joins in bulk.
  const c0 = await counters();
  const t0 = Date.now();
  let adminCalls = 0;
  for (let from = 0; from < USERS; from += BATCH) {
    const res = await server.admin("POST", `/realms/${realm}/simulate`, { action: "join", prefix: "sim-", from, count: Math.min(BATCH, USERS - from) });
    if (!res.ok) throw new Error(`simulate: ${res.status} ${await res.text()}`);
    adminCalls += (await res.json()).calls;
  }
  const joinedAt = Date.now();
  const subsAt = await waitAll(USERS);
  const httpAt = await waitHttp(USERS);
  const c1 = await counters();
  const pushes = subs.map((s) => s.frames.length - 1);
  const gaps = subs[0].frames
    .slice(1)
    .map((f, i, all) => (i ? f.at - all[i - 1].at : null))
    .filter((g) => g !== null);

  // Steady state: nothing changes, nothing is called.
  await sleep(5_000);
  const c2 = await counters();

  // Half of them leave.
  const t3 = Date.now();
  for (let from = 0; from < USERS / 2; from += BATCH) {
    await server.admin("POST", `/realms/${realm}/simulate`, { action: "leave", prefix: "sim-", from, count: BATCH });
  }
  const leftSubsAt = await waitAll(USERS / 2);
  const c3 = await counters();

  // Real users: a join through the user's own object, then heartbeats in the same realm.
  const real = [];
  for (let i = 0; i < REAL_USERS; i++) {
    const t = await server.token(`real-${i}`);
    const ws = new WebSocket(`${server.url.replace("http", "ws")}/v1/connect?device=d&kind=desktop`, { headers: { Authorization: `Bearer ${t}` } });
    await new Promise((r) => ws.once("message", r));
    real.push(ws);
  }
  const c4 = await counters();
  const beat = (ws, n) => ws.send(JSON.stringify({ type: "PositionHeartbeat", id: n, position: { x: n, y: 0, z: 0 }, realm, status: "online" }));
  for (const ws of real) beat(ws, 1);
  await waitAll(USERS / 2 + REAL_USERS);
  const c5 = await counters();
  for (let n = 2; n < 7; n++) {
    for (const ws of real) beat(ws, n);
    await sleep(300);
  }
  await sleep(1_500);
  const c6 = await counters();

  // Many HTTP reads: remembered per isolate for REALM_BATCH_MS.
  const reads = 500;
  await Promise.all(Array.from({ length: reads }, () => httpCount()));
  const c7 = await counters();

  const diff = (a, b, k) => b[k] - a[k];
  const result = {
    users: USERS,
    shards: Number(server.vars.REALM_SHARDS ?? 16),
    subscribers: SUBSCRIBERS,
    join: {
      adminRequests: Math.ceil(USERS / BATCH),
      adminShardCalls: adminCalls,
      shardCalls: diff(c0, c1, "shardCalls"),
      reports: diff(c0, c1, "reports"),
      pushes: diff(c0, c1, "pushes"),
      joinMs: joinedAt - t0,
      subscribersConvergedMs: subsAt - t0,
      httpConvergedMs: httpAt - t0,
      pushesPerSubscriber: { min: Math.min(...pushes), max: Math.max(...pushes) },
      minGapBetweenPushesMs: gaps.length ? Math.min(...gaps) : null,
    },
    steadyState5s: { shardCalls: diff(c1, c2, "shardCalls"), reports: diff(c1, c2, "reports"), pushes: diff(c1, c2, "pushes") },
    leaveHalf: { shardCalls: diff(c2, c3, "shardCalls"), reports: diff(c2, c3, "reports"), subscribersConvergedMs: leftSubsAt - t3 },
    realUsers: {
      users: REAL_USERS,
      shardCallsOnConnect: diff(c3, c4, "shardCalls"),
      shardCallsOnFirstHeartbeat: diff(c4, c5, "shardCalls"),
      shardCallsPerJoin: diff(c4, c5, "shardCalls") / REAL_USERS,
      heartbeatsSameRealm: REAL_USERS * 5,
      shardCallsOnThoseHeartbeats: diff(c5, c6, "shardCalls"),
    },
    httpReads: { reads, reachedCounter: diff(c6, c7, "counterReads") },
  };
  console.log(JSON.stringify(result, null, 2));
  mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
  writeFileSync(new URL("./results/realm-counts.json", import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
  for (const s of subs) s.ws.close();
  for (const ws of real) ws.close();
} finally {
  await server.stop();
}
