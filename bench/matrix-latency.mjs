#!/usr/bin/env node
/**
 * Matrix long polling vs WebSocket, on one `wrangler dev` (production code path, default vars):
 *
 *   1. latency: alice watches bob twice, through a long-polling Matrix /sync loop
 *      (timeout 30 s, as matrix-js-sdk does) and through a subscribed WebSocket
 *      client. Bob changes status (online ↔ away, with a text) ROUNDS times over
 *      his own WebSocket; each change is timed from bob's send to its arrival
 *      on each of alice's clients (same machine, same clock).
 *   2. idle cost: alice's /sync client polls with nothing changing; the
 *      object's counters (/dev/counters, DEV_MODE) give the calls made to her
 *      object per idle poll: /sync evaluations (RPC), parks (WebSocket
 *      upgrades) and events on parked sockets (the close when the worker lets go).
 *
 *   npm run bench:matrix                     (ROUNDS=40 IDLE_POLLS=4 IDLE_TIMEOUT_MS=10000)
 *
 * Prints a summary and writes bench/results/matrix-latency.json. Reported, never judged.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import WebSocket from "ws";
import { startDevServer } from "../scripts/lib/dev-server.mjs";

const ROUNDS = Number(process.env.ROUNDS ?? 40);
const IDLE_POLLS = Number(process.env.IDLE_POLLS ?? 4);
const IDLE_TIMEOUT_MS = Number(process.env.IDLE_TIMEOUT_MS ?? 10_000);
const SERVER_NAME = "bench.test";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const server = await startDevServer({ vars: { SERVER_NAME } });
const stamp = Date.now().toString(36);
const alice = `alice${stamp}`;
const bob = `bob${stamp}`;
const mx = (u) => `@${u}:${SERVER_NAME}`;

function connect(userId, device, token) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${server.url.replace("http", "ws")}/v1/connect?device=${device}&kind=desktop`, { headers: { Authorization: `Bearer ${token}` } });
    const listeners = new Set();
    ws.on("message", (data) => {
      const text = data.toString();
      if (text === "pong") return;
      const frame = JSON.parse(text);
      for (const l of listeners) l(frame);
    });
    ws.once("error", reject);
    ws.once("open", () => {
      const keepAlive = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send("ping"), 20_000);
      ws.once("close", () => clearInterval(keepAlive));
      resolve({ ws, on: (l) => listeners.add(l), off: (l) => listeners.delete(l), send: (m) => ws.send(JSON.stringify(m)) });
    });
  });
}

const counters = async () => (await fetch(`${server.url}/dev/counters`)).json();
const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const stats = (xs) => ({
  n: xs.length,
  p50: quantile(xs, 0.5),
  p90: quantile(xs, 0.9),
  p99: quantile(xs, 0.99),
  max: Math.max(...xs),
  mean: +(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(1),
});

try {
  await server.befriend(alice, bob);
  const [aliceToken, bobToken] = await Promise.all([server.token(alice), server.token(bob)]);

  // Alice's WebSocket client, subscribed to her friends' presence.
  const aliceWs = await connect(alice, "pc", aliceToken);
  aliceWs.send({ type: "PositionHeartbeat", id: "h0", status: "online", realm: "lobby", position: { x: 0, y: 0, z: 0 } });
  aliceWs.send({ type: "SubscribeFriendshipPresenceUpdates", id: "s0" });
  const bobWs = await connect(bob, "pc", bobToken);

  // Alice's Matrix client: a /sync loop like matrix-js-sdk's (initial sync, then long polls).
  const syncArrivals = [];
  let stopSync = false;
  let since;
  const syncLoop = (async () => {
    while (!stopSync) {
      const url = new URL(`${server.url}/_matrix/client/v3/sync`);
      url.searchParams.set("timeout", since ? "30000" : "0");
      if (since) url.searchParams.set("since", since);
      const res = await fetch(url, { headers: { Authorization: `Bearer ${aliceToken}` } });
      const body = await res.json();
      const at = performance.now();
      for (const e of body.presence?.events ?? []) if (e.sender === mx(bob)) syncArrivals.push({ at, content: e.content });
      since = body.next_batch;
    }
  })();

  const heartbeat = (status, statusText) => bobWs.send({ type: "PositionHeartbeat", id: `b${Math.random()}`, status, statusText, realm: "lobby", position: { x: 0, y: 0, z: 0 } });
  heartbeat("online", "warm-up");
  await sleep(2_000);

  const ws = [];
  const sync = [];
  for (let i = 0; i < ROUNDS; i++) {
    const status = i % 2 === 0 ? "away" : "online";
    const text = `round ${i}`;
    const gotWs = new Promise((resolve) => {
      const l = (f) => {
        if (f.type === "presence" && f.presence.userId === bob && f.presence.statusText === text) {
          aliceWs.off(l);
          resolve(performance.now());
        }
      };
      aliceWs.on(l);
    });
    const seenBefore = syncArrivals.length;
    const t0 = performance.now();
    heartbeat(status, text);
    const tWs = await gotWs;
    while (!syncArrivals.slice(seenBefore).some((a) => a.content.status_msg === text)) await sleep(1);
    const tSync = syncArrivals.slice(seenBefore).find((a) => a.content.status_msg === text).at;
    ws.push(+(tWs - t0).toFixed(2));
    sync.push(+(tSync - t0).toFixed(2));
    await sleep(250);
  }
  stopSync = true;
  // Let the last poll end (the next change wakes it).
  heartbeat("online", "done");
  await syncLoop;

  // Idle: nothing changes; alice's client long-polls with IDLE_TIMEOUT_MS.
  let idleSince = since;
  const before = await counters();
  for (let i = 0; i < IDLE_POLLS; i++) {
    const url = new URL(`${server.url}/_matrix/client/v3/sync`);
    url.searchParams.set("timeout", String(IDLE_TIMEOUT_MS));
    url.searchParams.set("since", idleSince);
    const body = await (await fetch(url, { headers: { Authorization: `Bearer ${aliceToken}` } })).json();
    idleSince = body.next_batch;
  }
  await sleep(500);
  const after = await counters();
  const per = (k) => +((after[k] - before[k]) / IDLE_POLLS).toFixed(2);
  const idle = {
    polls: IDLE_POLLS,
    timeoutMs: IDLE_TIMEOUT_MS,
    perPoll: { syncRpcs: per("matrixSyncs"), parks: per("matrixParks"), waitSocketEvents: per("matrixWaitEvents") },
  };
  idle.perPoll.total = +(idle.perPoll.syncRpcs + idle.perPoll.parks + idle.perPoll.waitSocketEvents).toFixed(2);

  const result = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model },
    rounds: ROUNDS,
    latencyMs: { websocket: stats(ws), matrixLongPoll: stats(sync) },
    idle,
  };
  console.log(`presence latency, bob's change → alice (ms, ${ROUNDS} changes, one wrangler dev):`);
  console.log(`  WebSocket push     p50 ${result.latencyMs.websocket.p50}  p90 ${result.latencyMs.websocket.p90}  max ${result.latencyMs.websocket.max}`);
  console.log(`  Matrix /sync poll  p50 ${result.latencyMs.matrixLongPoll.p50}  p90 ${result.latencyMs.matrixLongPoll.p90}  max ${result.latencyMs.matrixLongPoll.max}`);
  console.log(`idle long poll (${IDLE_POLLS} × ${IDLE_TIMEOUT_MS} ms): per poll ${JSON.stringify(idle.perPoll)} calls to the user's object`);
  mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
  writeFileSync(new URL("./results/matrix-latency.json", import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
  aliceWs.ws.terminate();
  bobWs.ws.terminate();
} finally {
  await server.stop();
}
