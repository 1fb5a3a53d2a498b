// Subset subscriptions at 1,000 friends (issue #16): what a user whose screen
// shows 20 friends costs when it follows those 20 instead of all 1,000.
// Starts `wrangler dev` (scripts/lib/dev-server.mjs), makes `reader` friends
// with 1,000 users (one admin import), brings the friends online over HTTP,
// then, for each way of following (all; a subset of 20 from the connect; all
// narrowed to 20 by a Subscribe), connects `reader`, lets every friend change
// status twice, and counts the calls between objects (durable/meter.ts, read
// through GET /v1/admin/stats) and the frames on reader's socket. Last, the
// paged snapshot: an HTTP-only reader and a subset socket paging through
// every online friend. Writes bench/results/subset.json.
import { mkdirSync, writeFileSync } from "node:fs";
import WebSocket from "ws";
import { startDevServer } from "../scripts/lib/dev-server.mjs";

const FRIENDS = Number(process.env.SUBSET_FRIENDS ?? 1_000);
const SUBSET = Number(process.env.SUBSET_SIZE ?? 20);
const PAGE = 100;
const CONCURRENCY = 25;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const server = await startDevServer({
  ports: { first: 8980, count: 10 },
  vars: { CALL_BUDGET_PER_SECOND: "1000000", CALL_BUDGET_BURST: "1000000", PRESENCE_TTL_MS: "900000", RATE_PER_SECOND: "1000", RATE_BURST: "1000" },
});
const reader = "reader";
const friends = Array.from({ length: FRIENDS }, (_, i) => `friend-${String(i).padStart(4, "0")}`);
const subset = friends.slice(0, SUBSET);
const tokens = new Map();
const tokenOf = async (userId) => {
  if (!tokens.has(userId)) tokens.set(userId, await server.token(userId));
  return tokens.get(userId);
};

async function stats() {
  const res = await server.admin("GET", "/stats");
  return (await res.json()).byEvent;
}
const events = (s, kind) => s[kind]?.events ?? 0;
const delta = (a, b) => Object.fromEntries(["rpc:watch", "rpc:unwatch", "rpc:receivePresence", "rpc:presenceFor"].map((k) => [k.slice(4), events(b, k) - events(a, k)]));

/** Runs `task` over `items`, CONCURRENCY at a time. */
async function pool(items, task) {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < items.length) await task(items[next++]);
    }),
  );
}

async function heartbeat(userId, status) {
  const res = await fetch(`${server.url}/v1/heartbeat?device=http&kind=web`, {
    method: "POST",
    headers: { Authorization: `Bearer ${await tokenOf(userId)}`, "Content-Type": "application/json" },
    body: JSON.stringify({ position: { x: 0, y: 0, z: 0 }, realm: "lobby", status }),
  });
  if (!res.ok) throw new Error(`heartbeat ${userId}: ${res.status} ${await res.text()}`);
}

/** Waits until the meter stops moving (every push of a round delivered). */
async function settle() {
  let last = JSON.stringify(await stats());
  for (let i = 0; i < 100; i++) {
    await sleep(300);
    const now = JSON.stringify(await stats());
    if (now === last) return;
    last = now;
  }
}

async function connect(query) {
  const ws = new WebSocket(`${server.url.replace("http", "ws")}/v1/connect?device=d&kind=desktop${query}`, { headers: { Authorization: `Bearer ${await tokenOf(reader)}` } });
  const frames = [];
  const waiting = new Map();
  ws.on("message", (d) => {
    const frame = JSON.parse(d.toString());
    if (frame.id !== undefined && waiting.has(frame.id)) waiting.get(frame.id)(frame);
    else frames.push(frame);
  });
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  let id = 0;
  const request = (message) =>
    new Promise((resolve) => {
      const rid = ++id;
      waiting.set(rid, resolve);
      ws.send(JSON.stringify({ ...message, id: rid }));
    });
  return { ws, frames, request };
}

/** Every friend changes status once; what it cost and what reader's socket got. */
async function round(socket, status) {
  const before = await stats();
  const framesBefore = socket.frames.filter((f) => f.type === "presence").length;
  const t0 = Date.now();
  await pool(friends, (f) => heartbeat(f, status));
  await settle();
  return { ...delta(before, await stats()), framesToSocket: socket.frames.filter((f) => f.type === "presence").length - framesBefore, ms: Date.now() - t0 };
}

async function scenario(name, query, subscribe, narrow) {
  const s0 = await stats();
  const socket = await connect(query);
  const subscribed = await socket.request({ type: "SubscribeFriendshipPresenceUpdates", ...subscribe });
  await settle();
  const s1 = await stats();
  let narrowed = null;
  if (narrow) {
    const reply = await socket.request({ type: "SubscribeFriendshipPresenceUpdates", friends: subset });
    await settle();
    narrowed = { ...delta(s1, await stats()), snapshot: reply.friends.length };
  }
  const first = await round(socket, "busy");
  const second = await round(socket, "online");
  const s2 = await stats();
  socket.ws.close(1000);
  await settle();
  const result = {
    scenario: name,
    connect: { ...delta(s0, s1), snapshot: subscribed.friends.length },
    ...(narrowed ? { narrowed } : {}),
    firstRound: first,
    secondRound: second,
    close: delta(s2, await stats()),
  };
  console.log(JSON.stringify(result));
  return result;
}

try {
  // 1,000 friendships in one admin import, then every friend online over HTTP.
  const imported = await server.admin("POST", "/friendships:import", { pairs: friends.map((f) => [reader, f]) });
  if (!imported.ok) throw new Error(`import: ${imported.status} ${await imported.text()}`);
  await pool(friends, (f) => heartbeat(f, "online"));
  await settle();

  const scenarios = [
    await scenario("all", "", {}, false),
    await scenario(`subset ${SUBSET} (connect ?friends=)`, `&friends=${subset.join(",")}`, { friends: subset }, false),
    await scenario(`all, narrowed to ${SUBSET} by Subscribe`, "", {}, true),
  ];

  // Paged snapshots: an HTTP-only reader, then a live socket following the subset.
  const pages = async (get) => {
    const before = await stats();
    const t0 = Date.now();
    let cursor = null;
    let listed = 0;
    let requests = 0;
    const perPageMs = [];
    do {
      const t = Date.now();
      const page = await get(cursor);
      perPageMs.push(Date.now() - t);
      listed += page.friends.length;
      cursor = page.nextCursor;
      requests++;
    } while (cursor);
    return { requests, listed, presenceForCalls: delta(before, await stats()).presenceFor, totalMs: Date.now() - t0, maxPageMs: Math.max(...perPageMs) };
  };
  const httpGet = async (query) => {
    const res = await fetch(`${server.url}/v1/friends/online${query}`, { headers: { Authorization: `Bearer ${await tokenOf(reader)}` } });
    if (!res.ok) throw new Error(`friends/online: ${res.status} ${await res.text()}`);
    return res.json();
  };
  const unpaged = await pages(() => httpGet(""));
  const httpPaged = await pages((cursor) => httpGet(`?limit=${PAGE}${cursor ? `&cursor=${cursor}` : ""}`));
  const firstPageOnly = await pages(async () => ({ ...(await httpGet(`?limit=${SUBSET}`)), nextCursor: null }));
  const socket = await connect(`&friends=${subset.join(",")}`);
  await socket.request({ type: "SubscribeFriendshipPresenceUpdates" });
  const socketPaged = await pages((cursor) => socket.request({ type: "GetOnlineFriends", limit: PAGE, ...(cursor ? { cursor } : {}) }));
  socket.ws.close(1000);

  const result = {
    friends: FRIENDS,
    subset: SUBSET,
    scenarios,
    snapshot: {
      httpUnpaged: unpaged,
      [`httpPaged${PAGE}`]: httpPaged,
      [`httpFirstPage${SUBSET}`]: firstPageOnly,
      [`subsetSocketPaged${PAGE}`]: socketPaged,
    },
  };
  console.log(JSON.stringify(result.snapshot, null, 2));
  mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
  writeFileSync(new URL("./results/subset.json", import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await server.stop();
}
