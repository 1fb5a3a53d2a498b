#!/usr/bin/env node
/**
 * The benchmark harness: for each scenario and each server (edge = wrangler
 * dev, memory = bare Node ws fan-out, redis = Node + Redis SET EX + pub/sub),
 * start the server, import the friend graph, drive it with the load
 * generator, sample CPU/RSS from /proc, stop it, and write
 * bench/results/<scenario>.<server>.json, summary.json, summary.md and SVG plots.
 *
 *   npm run bench              full run (~15 min)
 *   npm run bench:quick        smoke run (under a minute), results in bench/results/tmp/quick
 *   node bench/run.mjs --servers edge,memory --scenarios scale-1000 --steady 10
 *   node bench/run.mjs --servers edge --scenarios scale-1600 --idle 60   (a longer pings-only phase)
 *   node bench/run.mjs --servers edge --scenarios capacity-3000 --connect-deadline 600   (stop connecting after 10 min; go on with those connected)
 *   node bench/run.mjs --servers edge --via proxy   (clients through wrangler's proxy workerd, as before #11's sixth round;
 *                                                    the default, direct, connects them to the runtime's own socket)
 *
 * Nothing here asserts a timing: the numbers are reported, never judged.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { readDevVars } from "../scripts/lib/dev-vars.mjs";
import { makeGraph } from "./lib/graph.mjs";
import { importGraph, mintTokens, runLoad, summarize } from "./lib/loadgen.mjs";
import { sample } from "./lib/proc.mjs";
import { edgeCommit, persistRoot, startServer, versions } from "./lib/servers.mjs";
import { cdfPoints, lineChart } from "./lib/svg.mjs";
import { costPerUserMonth, MONTH_SECONDS, PRICES } from "../src/presence/cost.ts";
import { DEFAULT_CONFIG } from "../src/presence/config.ts";

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    servers: { type: "string", default: "edge,memory,redis" },
    scenarios: { type: "string" },
    steady: { type: "string" },
    idle: { type: "string" },
    "connect-deadline": { type: "string" },
    out: { type: "string" },
    report: { type: "boolean", default: false },
    // edge only: "direct" connects clients to the runtime workerd's own entry socket; "proxy" goes through
    // wrangler's proxy workerd in front of it (dev tooling production does not have; the default up to #11's sixth round).
    via: { type: "string", default: "direct" },
  },
});

/**
 * The Node peers' equivalent of the bill (stated assumptions): a VM at $25 per
 * vCPU-month with 2 GiB, run at 50 % CPU; memory priced at $5 per GiB-month;
 * Redis on the same VM. So $/user-month = (cores × 2 × 25 + GiB × 5) / users.
 */
const PEER = { vcpuMonthUsd: 25, headroom: 2, gibMonthUsd: 5 };

const HB = { hbIntervalMs: 5000, moveProb: 0.5, statusProb: 0.05 };
/** Issue #11 (a), ADR-246: 1,000 online users × 25 friends (20 online), a heartbeat every 30 s carrying a position that moves, a status change per 5 min, positions wanted from the own realm only. */
const ADR246 = { users: 1250, friends: 25, online: 0.8, hbIntervalMs: 30000, moveProb: 1, statusProb: 0.1, positions: "realm", realms: 5, pingMs: 20000 };
/** How many users one wrangler dev holds: 20 friends, a heartbeat every 30 s as in production (30 s counted). */
const CAPACITY = { friends: 20, online: 0.8, hbIntervalMs: 30000, moveProb: 1, statusProb: 0.1, positions: "realm", realms: 5, steadyMs: 30000, connectConcurrency: 64 };
/** connected = users × online; the offline scenario shortens the TTL (and says so). */
const FULL = [
  {
    name: "offline-detect",
    users: 125,
    friends: 10,
    online: 0.8,
    ttlMs: 10000,
    pingMs: 3000,
    steadyMs: 8000,
    probeClean: 10,
    probeReset: 10,
    probeSilent: 10,
    probeTimeoutMs: 25000,
    ...HB,
  },
  { name: "scale-100", users: 125, friends: 20, online: 0.8, churnPerSec: 2, steadyMs: 15000, probeClean: 10, ...HB },
  { name: "scale-1000", users: 1250, friends: 20, online: 0.8, churnPerSec: 10, steadyMs: 15000, probeClean: 20, ...HB },
  { name: "friends-5-1000", users: 1250, friends: 5, online: 0.8, churnPerSec: 10, steadyMs: 12000, ...HB },
  { name: "friends-50-1000", users: 1250, friends: 50, online: 0.8, churnPerSec: 10, steadyMs: 12000, ...HB },
  { name: "heavy-1000", users: 1250, friends: 20, shape: "heavy", hubs: 3, hubFriends: 1000, online: 0.8, churnPerSec: 10, steadyMs: 15000, probeClean: 20, ...HB },
  // Every heartbeat is a no-op for friends (nothing moves): the bare cost of a heartbeat, offered at 1,000/s.
  { name: "heartbeat-max-1000", users: 1250, friends: 20, online: 0.8, steadyMs: 10000, hbIntervalMs: 1000, moveProb: 0, statusProb: 0 },
  { name: "scale-1600", users: 2000, friends: 20, online: 0.8, churnPerSec: 10, steadyMs: 15000, idleMs: 20000, probeClean: 20, connectConcurrency: 48, ...HB },
  // Issue #11's two cost workloads (25 friends × 80 % online ≈ 20 online friends each; the steady window spans a TTL so alarms count).
  // (a) ADR-246: heartbeat every 30 s carrying a position that moves every time, a status change every 5 min on average,
  //     clients want positions only of friends in their own realm (5 realms: about a fifth of friends share it).
  { name: "adr246-1000", ...ADR246, steadyMs: 130000 },
  // The same with churn (2 users/s sign off and 2 sign on): connect→snapshot of a user arriving while 1,000 are online.
  { name: "adr246-1000-churn", ...ADR246, steadyMs: 60000, churnPerSec: 2 },
  // The same with the deployer's cost lever POSITION_INTERVAL_MS at 60 s: position-only moves pushed at most once a minute (every other heartbeat).
  { name: "adr246-1000-interval60", ...ADR246, steadyMs: 130000, serverVars: { POSITION_INTERVAL_MS: "60000" } },
  // (b) harsh: a change every 5 s (every heartbeat moves; 5 % of them change status), every watcher wants every position.
  { name: "harsh-1000", users: 1250, friends: 25, online: 0.8, hbIntervalMs: 5000, moveProb: 1, statusProb: 0.05, steadyMs: 30000 },
  // (b) scaled down to 300 online users where 1,000 do not connect in reasonable time on a shared 2-core machine (same per-user load).
  { name: "harsh-300", users: 375, friends: 25, online: 0.8, hbIntervalMs: 5000, moveProb: 1, statusProb: 0.05, steadyMs: 30000 },
  // How many users one wrangler dev holds (issue #11 target 3,000+): 20 friends, a heartbeat every 30 s as in production.
  { name: "capacity-3000", ...CAPACITY, users: 3750 },
  // Where one wrangler dev stops keeping up, with the same load per user.
  { name: "capacity-6000", ...CAPACITY, users: 7500 },
  { name: "scale-5000", users: 6250, friends: 20, online: 0.8, churnPerSec: 20, steadyMs: 15000, idleMs: 20000, probeClean: 20, connectConcurrency: 64, ...HB },
];
const QUICK = [
  {
    name: "quick",
    users: 50,
    friends: 5,
    online: 0.8,
    ttlMs: 4000,
    pingMs: 1500,
    churnPerSec: 1,
    steadyMs: 4000,
    drainMs: 1500,
    probeClean: 3,
    probeReset: 2,
    probeSilent: 2,
    probeTimeoutMs: 10000,
    hbIntervalMs: 1000,
    moveProb: 0.5,
    statusProb: 0.1,
  },
];

const root = new URL("../", import.meta.url).pathname;
const outDir = args.out ?? join(root, args.quick ? "bench/results/tmp/quick" : "bench/results");
const logDir = join(root, "bench/results/tmp/logs");
mkdirSync(outDir, { recursive: true });
mkdirSync(logDir, { recursive: true });

let scenarios = args.quick ? QUICK : FULL;
if (args.scenarios) {
  const wanted = new Set(args.scenarios.split(","));
  scenarios = [...FULL, ...QUICK].filter((s) => wanted.has(s.name));
}
if (args.steady) scenarios = scenarios.map((s) => ({ ...s, steadyMs: Number(args.steady) * 1000 }));
if (args["connect-deadline"]) scenarios = scenarios.map((s) => ({ ...s, connectDeadlineMs: Number(args["connect-deadline"]) * 1000 }));
if (args.idle) scenarios = scenarios.map((s) => ({ ...s, idleMs: Number(args.idle) * 1000 }));
const servers = args.servers.split(",");
const vars = readDevVars();
const log = (...parts) => console.log(`[${new Date().toISOString().slice(11, 19)}]`, ...parts);

const machine = {
  nproc: cpus().length,
  cpuModel: cpus()[0]?.model,
  memoryGiB: +(totalmem() / 2 ** 30).toFixed(1),
  loadAvgAtStart: loadavg().map((v) => +v.toFixed(2)),
  edgePresenceCommit: edgeCommit(),
  edgePersistRoot: persistRoot(),
  ...versions(),
};
log("machine", JSON.stringify(machine));

if (args.report) {
  // Redraw summary.md and the plots from an earlier run's summary.json.
  const { readFileSync } = await import("node:fs");
  const summary = JSON.parse(readFileSync(join(outDir, "summary.json"), "utf8"));
  writeFileSync(join(outDir, "summary.md"), markdown(summary.results));
  plots(summary.results);
  console.log(markdown(summary.results));
  process.exit(0);
}

const results = [];
const wallStarted = performance.now();
for (const scenario of scenarios) {
  const graph = makeGraph({ users: scenario.users, friends: scenario.friends, shape: scenario.shape, hubs: scenario.hubs, hubFriends: scenario.hubFriends });
  const tokens = await mintTokens(graph.ids, vars.JWT_SECRET);
  for (const serverName of servers) {
    log(
      `── ${scenario.name} × ${serverName}: ${graph.stats.users} users, ${graph.stats.edges} friendships (mean ${graph.stats.meanFriends.toFixed(1)}, max ${graph.stats.maxFriends})`,
    );
    const ttlMs = scenario.ttlMs ?? 120000;
    const server = await startServer(serverName, {
      ttlMs,
      secret: vars.JWT_SECRET,
      adminToken: vars.ADMIN_TOKEN,
      logDir,
      label: `${scenario.name}.${serverName}`,
      vars: scenario.serverVars ?? {},
      via: args.via,
    });
    try {
      const samples = {};
      const processes = () => ({
        ...sample(server.pids()),
        parts: Object.fromEntries(Object.entries(server.parts()).map(([part, pid]) => [part, sample([pid])])),
        generatorCpu: process.cpuUsage(),
        // Other people's test suites share the machine's 2 cores: the load average goes with each phase (timings depend on it, billed counts do not).
        loadAvg: loadavg().map((v) => +v.toFixed(2)),
      });
      const take = async (name) => {
        // What the bill counts (edge only: durable/meter.ts, summed over the isolate's objects).
        const metered = serverName === "edge" && (name === "steady-start" || name === "steady-end");
        // The processes' CPU spans the load generator's window: it starts when this hook returns and ends
        // before it is called. A saturated runtime answers the stats request late, so at the start the CPU is
        // read after the answer and at the end before the request (it was read before both, and the wait at
        // the start, up to minutes, was charged to a window that did not count it: "6.8 cores" on 2).
        if (!metered || name === "steady-end") samples[name] = processes();
        if (!metered) return;
        // Both at once: on a saturated runtime each waits behind the backlog.
        const [meter, counters] = await Promise.all([meterStats(server.baseUrl), devCounters(server.baseUrl)]);
        if (name === "steady-start") samples[name] = processes();
        samples[name].meter = meter;
        samples[name].devCounters = counters;
        // When the counts were taken: a saturated runtime answers minutes late, and the counts are as of its answer.
        samples[name].meterAt = performance.now();
      };
      await take("started");
      const importMs = await importGraph(server.baseUrl, vars.ADMIN_TOKEN, graph.pairs);
      log(`imported in ${(importMs / 1000).toFixed(1)} s`);
      await new Promise((r) => setTimeout(r, 500));
      await take("imported");
      const load = await runLoad({
        wsUrl: server.wsUrl,
        graph,
        tokens,
        params: { ...scenario },
        hooks: { phase: (name) => take(name) },
        log,
      });
      const result = figures(scenario, serverName, server, graph, importMs, load, samples, ttlMs);
      results.push(result);
      print(result);
      writeFileSync(join(outDir, `${scenario.name}.${serverName}.json`), JSON.stringify(result, null, 2));
    } catch (error) {
      log(`FAILED ${scenario.name} × ${serverName}: ${error.stack ?? error}`);
      results.push({ scenario: scenario.name, server: serverName, failed: String(error) });
    } finally {
      await server.stop();
    }
  }
}
machine.loadAvgAtEnd = loadavg().map((v) => +v.toFixed(2));
const wallSeconds = (performance.now() - wallStarted) / 1000;
log(`done in ${wallSeconds.toFixed(0)} s`);

writeFileSync(join(outDir, "summary.json"), JSON.stringify({ machine, wallSeconds, results }, null, 2));
writeFileSync(join(outDir, "summary.md"), markdown(results));
plots(results);
console.log(`\n${markdown(results)}`);

async function meterStats(baseUrl) {
  const res = await fetch(`${baseUrl}/v1/admin/stats`, { headers: { Authorization: `Bearer ${vars.ADMIN_TOKEN}` } });
  return res.ok ? res.json() : null;
}

/** The realm population's traffic (issue #16: shard calls, reports, pushes), which durable/meter.ts does not see. */
async function devCounters(baseUrl) {
  const res = await fetch(`${baseUrl}/dev/counters`);
  return res.ok ? res.json() : null;
}

/**
 * The realm population's share of the bill (issue #16), outside the meter: each
 * shard call (a join, renewal or leave) is a request plus about two rows at the
 * shard (the member's upsert or delete, and its alarm when the deadline moves);
 * each shard→counter report and counter push a request and a row. The user's
 * own membership record (sync KV, a row per join, move or leave) is the meter's.
 * Approximate.
 */
function realmShare(s, users, seconds) {
  const a = s["steady-start"].devCounters?.realm;
  const b = s["steady-end"].devCounters?.realm;
  if (!a || !b || !users) return null;
  const calls = b.shardCalls - a.shardCalls;
  const reports = b.reports - a.reports + (b.pushes - a.pushes);
  const cost = costPerUserMonth({ requests: calls + reports, wsMessagesIn: 0, rowsRead: 0, rowsWritten: 2 * calls + reports, activeSeconds: 0 }, users, seconds);
  return { shardCalls: calls, reportsAndPushes: reports, usdPerUserMonth: +cost.usd.total.toFixed(4) };
}

/**
 * Lease renewals happen once per half-life, watch leases every WATCH_LEASE_MS / 2
 * (12 h) and realm memberships every REALM_LEASE_MS / 2 (3 h), so no steady window
 * sees them: priced from what the code does (they ride on the TTL alarm's fire:
 * no alarm of their own).
 *   - watch: a live user renews a lease on every friend (online or not): one call
 *     and one row (the lease's upsert) per friend, and one row of its own per
 *     round (`watch_renew_at`);
 *   - realm: a user counted in a realm (every user of these workloads: each
 *     heartbeat names one) renews its membership: one call to its shard, there the
 *     member's upsert and the shard's alarm moved to the next expiry (≈ 2 rows),
 *     and its own membership record (1 KV row; the meter counts it when a window
 *     sees one).
 */
function leaseRenewals(meanFriends) {
  const watchRounds = 1 / (DEFAULT_CONFIG.watchLeaseMs / 2 / 1000);
  const realmRounds = 1 / (DEFAULT_CONFIG.realmLeaseMs / 2 / 1000);
  const month = (requests, rows) => MONTH_SECONDS * (requests * PRICES.requestUsd + rows * PRICES.rowWrittenUsd);
  const watch = { requests: meanFriends * watchRounds, rows: (meanFriends + 1) * watchRounds };
  const realm = { requests: realmRounds, rows: 3 * realmRounds };
  const watchUsd = month(watch.requests, watch.rows);
  const realmUsd = month(realm.requests, realm.rows);
  return {
    watchLeaseMs: DEFAULT_CONFIG.watchLeaseMs,
    realmLeaseMs: DEFAULT_CONFIG.realmLeaseMs,
    requestsPerUserSecond: +(watch.requests + realm.requests).toFixed(6),
    rowsWrittenPerUserSecond: +(watch.rows + realm.rows).toFixed(6),
    watchUsdPerUserMonth: +watchUsd.toFixed(4),
    realmUsdPerUserMonth: +realmUsd.toFixed(4),
    usdPerUserMonth: +(watchUsd + realmUsd).toFixed(4),
  };
}

/** Billed counts in the steady window → per online user per second, and $ per online user-month. */
function billing(serverName, s, load, steadyCpu, meanFriends) {
  const users = load.connected;
  // The counts span from one answer of the stats endpoint to the other (the load generator's window on a runtime that keeps up).
  const meterSpan = s["steady-end"].meterAt && s["steady-start"].meterAt ? (s["steady-end"].meterAt - s["steady-start"].meterAt) / 1000 : null;
  const seconds = serverName === "edge" && meterSpan ? Math.max(meterSpan, load.steadySeconds) : load.steadySeconds;
  if (serverName !== "edge") {
    const cores = steadyCpu / seconds;
    const gib = s["steady-end"].rss / 2 ** 30;
    const usd = users ? (cores * PEER.headroom * PEER.vcpuMonthUsd + gib * PEER.gibMonthUsd) / users : null;
    return { model: `VM: $${PEER.vcpuMonthUsd}/vCPU-month at ${100 / PEER.headroom} % load + $${PEER.gibMonthUsd}/GiB-month`, usdPerUserMonth: usd };
  }
  const a = s["steady-start"].meter;
  const b = s["steady-end"].meter;
  if (!a || !b) return null;
  const d = (k) => b[k] - a[k];
  const ev = (kind, k) => (b.byEvent[kind]?.[k] ?? 0) - (a.byEvent[kind]?.[k] ?? 0);
  const runtimeCpu =
    s["steady-end"].parts.workerdRuntime && s["steady-start"].parts.workerdRuntime
      ? s["steady-end"].parts.workerdRuntime.cpu - s["steady-start"].parts.workerdRuntime.cpu
      : steadyCpu;
  // Duration is billed while an object handles events. Local wall time under-counts pure CPU (workerd's clock
  // stands still while JS runs), so the larger of the objects' busy wall time and the runtime's CPU time is used.
  const activeSeconds = Math.max(d("activeMs") / 1000, runtimeCpu);
  const counts = { requests: d("requests"), wsMessagesIn: d("wsMessagesIn"), rowsRead: d("rowsRead"), rowsWritten: d("rowsWritten") + d("alarmsSet"), activeSeconds };
  const cost = costPerUserMonth(counts, users, seconds);
  const per = (x, n) => (n ? +(x / n).toFixed(3) : null);
  const hb = ev("ws:heartbeat", "events");
  const deliveries = ev("rpc:receivePresence", "events");
  return {
    window: { users, seconds: +seconds.toFixed(1), loadGeneratorSeconds: +load.steadySeconds.toFixed(1) },
    counts: { ...counts, alarmsSet: d("alarmsSet"), wallBusySeconds: +(d("activeMs") / 1000).toFixed(1), runtimeCpuSeconds: +runtimeCpu.toFixed(1), instances: d("instances") },
    byEvent: Object.fromEntries(
      Object.keys(b.byEvent).map((k) => [
        k,
        { events: ev(k, "events"), rowsWritten: ev(k, "rowsWritten") + ev(k, "alarmsSet"), rowsRead: ev(k, "rowsRead"), wallMs: ev(k, "wallMs") },
      ]),
    ),
    rowsWrittenPerDelivery: per(ev("rpc:receivePresence", "rowsWritten") + ev("rpc:receivePresence", "alarmsSet"), deliveries),
    rowsWrittenPerHeartbeatEvent: per(ev("ws:heartbeat", "rowsWritten") + ev("ws:heartbeat", "alarmsSet"), hb),
    rowsWrittenPerHeartbeatAllIn: per(counts.rowsWritten, hb),
    requestsPerUserSecond: +cost.requestsPerUserSecond.toFixed(4),
    rowsWrittenPerUserSecond: +cost.rowsWrittenPerUserSecond.toFixed(4),
    rowsReadPerUserSecond: +cost.rowsReadPerUserSecond.toFixed(3),
    gbSecondsPerUserSecond: +cost.gbSecondsPerUserSecond.toFixed(6),
    usd: Object.fromEntries(Object.entries(cost.usd).map(([k, v]) => [k, +v.toFixed(4)])),
    usdPerUserMonth: +cost.usd.total.toFixed(4),
    // The month's bill: the window's rate plus the lease renewals no window of minutes sees.
    leaseRenewals: leaseRenewals(meanFriends),
    realmPopulation: realmShare(s, users, seconds),
    usdPerUserMonthWithRenewals: +(cost.usd.total + leaseRenewals(meanFriends).usdPerUserMonth + (realmShare(s, users, seconds)?.usdPerUserMonth ?? 0)).toFixed(4),
    prices: PRICES,
  };
}

function figures(scenario, serverName, server, graph, importMs, load, s, ttlMs) {
  const connected = load.connected;
  const steadyCpu = s["steady-end"].cpu - s["steady-start"].cpu;
  const genCpu = (s["steady-end"].generatorCpu.user + s["steady-end"].generatorCpu.system - s["steady-start"].generatorCpu.user - s["steady-start"].generatorCpu.system) / 1e6;
  const kib = (b) => Math.round(b / 1024);
  return {
    scenario: scenario.name,
    server: serverName,
    graph: graph.stats,
    ttlMs,
    params: load.params,
    connected,
    importSeconds: +(importMs / 1000).toFixed(1),
    connectSeconds: +load.connectSeconds.toFixed(1),
    heartbeatsPerSecOffered: +load.heartbeatsPerSecOffered.toFixed(1),
    heartbeatsPerSec: +load.heartbeatsPerSec.toFixed(1),
    deliveredPerSec: +load.deliveredPerSec.toFixed(1),
    notifyLatencyMs: load.notifyLatencyMs,
    offlineLatencyMs: load.offlineLatencyMs,
    connectToSnapshotMs: load.connectToSnapshotMs,
    connectToSnapshotSteadyMs: load.connectToSnapshotSteadyMs,
    connectToOpenMs: load.connectToOpenMs,
    heartbeatAckMs: load.heartbeatAckMs,
    memory: {
      rssAfterImportMiB: +(s.imported.rss / 2 ** 20).toFixed(1),
      rssConnectedMiB: +(s.connected.rss / 2 ** 20).toFixed(1),
      rssSteadyEndMiB: +(s["steady-end"].rss / 2 ** 20).toFixed(1),
      perConnectedUserKiB: kib((s.connected.rss - s.imported.rss) / connected),
      perConnectedUserSteadyKiB: kib((s["steady-end"].rss - s.imported.rss) / connected),
      ...(s["idle-end"]
        ? {
            rssIdleStartMiB: +(s["idle-start"].rss / 2 ** 20).toFixed(1),
            rssIdleEndMiB: +(s["idle-end"].rss / 2 ** 20).toFixed(1),
            perConnectedUserIdleKiB: kib((s["idle-end"].rss - s.imported.rss) / connected),
          }
        : {}),
    },
    cpu: {
      serverCoresSteady: +(steadyCpu / load.steadySeconds).toFixed(2),
      serverCpuMsPer1000Delivered: load.deliveredInSteady ? +((steadyCpu * 1000) / (load.deliveredInSteady / 1000)).toFixed(1) : null,
      serverCpuMsPer1000Heartbeats: load.heartbeatsPerSec ? +((steadyCpu * 1000) / ((load.heartbeatsPerSec * load.steadySeconds) / 1000)).toFixed(1) : null,
      generatorCoresSteady: +(genCpu / load.steadySeconds).toFixed(2),
      ...(s["idle-end"] ? { serverCoresIdle: +((s["idle-end"].cpu - s["idle-start"].cpu) / ((s["idle-end"].at - s["idle-start"].at) / 1000)).toFixed(3) } : {}),
    },
    byProcess: Object.fromEntries(
      Object.keys(s.connected.parts).map((part) => [
        part,
        {
          rssConnectedMiB: +(s.connected.parts[part].rss / 2 ** 20).toFixed(1),
          rssImportedMiB: +(s.imported.parts[part].rss / 2 ** 20).toFixed(1),
          coresSteady: +((s["steady-end"].parts[part].cpu - s["steady-start"].parts[part].cpu) / load.steadySeconds).toFixed(2),
        },
      ]),
    ),
    counts: load.counts,
    billing: billing(serverName, s, load, steadyCpu, graph.stats.meanFriends),
    loadAvg: Object.fromEntries(Object.entries(s).map(([phase, sample]) => [phase, sample.loadAvg])),
    generatorEventLoopDelayMs: load.generatorEventLoopDelayMs,
    via: server.via ?? null,
    serverStartupMs: server.startupMs,
    serverReloads: server.reloads?.() ?? 0,
    latencyCdf: cdfPoints(load.latencySamples),
    statusChangeLatencyCdf: cdfPoints(load.statusChangeSamples),
  };
}

function print(r) {
  const l = r.notifyLatencyMs.all;
  if (r.serverReloads) log(`WARNING: the server reloaded ${r.serverReloads} time(s) during ${r.scenario} × ${r.server}; its numbers are not valid`);
  const c = r.counts;
  log(
    `${r.scenario} × ${r.server}: ${r.connected} connected | hb/s ${r.heartbeatsPerSec} (offered ${r.heartbeatsPerSecOffered}) | delivered/s ${r.deliveredPerSec}` +
      ` | notify ms p50 ${l.p50} p95 ${l.p95} p99 ${l.p99} max ${l.max} (status changes p50 ${r.notifyLatencyMs.significant.p50} p99 ${r.notifyLatencyMs.significant.p99}) | snapshot ms p50 ${r.connectToSnapshotMs.p50} p99 ${r.connectToSnapshotMs.p99} (steady-state connects p50 ${r.connectToSnapshotSteadyMs?.p50 ?? "-"} p99 ${r.connectToSnapshotSteadyMs?.p99 ?? "-"})` +
      ` | offline clean p50 ${r.offlineLatencyMs.clean.p50 ?? "-"} reset p50 ${r.offlineLatencyMs.reset.p50 ?? "-"} silent p50 ${r.offlineLatencyMs.silentFromLastSignOfLife.p50 ?? "-"}` +
      ` | RSS/user ${r.memory.perConnectedUserKiB} KiB | CPU ${r.cpu.serverCoresSteady} cores, ${r.cpu.serverCpuMsPer1000Delivered} ms/1k updates` +
      ` | load avg ${JSON.stringify(r.loadAvg?.["steady-start"])} → ${JSON.stringify(r.loadAvg?.["steady-end"])}` +
      (r.billing?.usdPerUserMonth !== undefined
        ? ` | $/user-month ${r.billing.usdPerUserMonth} (with lease renewals (watch and realm) and realm population ${r.billing.usdPerUserMonthWithRenewals ?? "-"})`
        : "") +
      ` | expected ${c.expected} exact ${c.exact} coalesced ${c.coalesced} lost ${c.lost} lostOffline ${c.lostOffline} errors ${JSON.stringify(c.errorFrames)} failures ${c.connectFailures} unexpectedCloses ${JSON.stringify(c.unexpectedCloseCodes)}`,
  );
}

function markdown(rows) {
  const ok = rows.filter((r) => !r.failed);
  const head = [
    "scenario",
    "server",
    "connected",
    "friends mean/max",
    "hb/s (offered)",
    "delivered/s",
    "notify p50/p95/p99/max ms (all changes)",
    "status change p50/p99 ms",
    "offline after close p50/p99 ms",
    "after reset p50 ms",
    "after silent drop p50/max s",
    "connect→snapshot p50/p99 ms",
    "RSS MiB / KiB per user",
    "server cores",
    "CPU ms per 1k updates",
    "expected / exact / coalesced / lost",
    "errors",
  ];
  const lines = [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`];
  for (const r of ok) {
    const l = r.notifyLatencyMs.all;
    const off = r.offlineLatencyMs.clean.n ? r.offlineLatencyMs.clean : r.offlineLatencyMs.churn;
    const silent = r.offlineLatencyMs.silentFromLastSignOfLife;
    const c = r.counts;
    const errors = Object.values(c.errorFrames).reduce((a, b) => a + b, 0) + c.connectFailures + c.unexpectedCloses;
    lines.push(
      `| ${[
        r.scenario,
        r.server,
        r.connected,
        `${r.graph.meanFriends.toFixed(1)}/${r.graph.maxFriends}`,
        `${r.heartbeatsPerSec} (${r.heartbeatsPerSecOffered})`,
        r.deliveredPerSec,
        `${l.p50}/${l.p95}/${l.p99}/${l.max}`,
        r.notifyLatencyMs.significant.n ? `${r.notifyLatencyMs.significant.p50}/${r.notifyLatencyMs.significant.p99}` : "-",
        off.n ? `${off.p50}/${off.p99}` : "-",
        r.offlineLatencyMs.reset?.n ? r.offlineLatencyMs.reset.p50 : "-",
        silent.n ? `${(silent.p50 / 1000).toFixed(1)}/${(silent.max / 1000).toFixed(1)} (TTL ${r.ttlMs / 1000} s)` : "-",
        `${r.connectToSnapshotMs.p50}/${r.connectToSnapshotMs.p99}`,
        `${r.memory.rssConnectedMiB} / ${r.memory.perConnectedUserKiB}${r.memory.perConnectedUserIdleKiB !== undefined ? ` (idle ${r.memory.perConnectedUserIdleKiB})` : ""}`,
        r.cpu.serverCoresSteady,
        r.cpu.serverCpuMsPer1000Delivered,
        `${c.expected} / ${c.exact} / ${c.coalesced} / ${c.lost + c.lostOffline}`,
        errors,
      ].join(" | ")} |`,
    );
  }
  for (const r of rows.filter((r) => r.failed)) lines.push(`| ${r.scenario} | ${r.server} | FAILED: ${r.failed.replace(/\|/g, "/").slice(0, 200)} |`);
  // What the bill counts (issue #11), per online user, in the steady window.
  const billed = ok.filter((r) => r.billing);
  if (billed.length) {
    lines.push(
      "",
      "| scenario | server | requests /user/s | rows written /user/s | rows read /user/s | GB-s /user/s | rows written per delivery / per heartbeat (event; all-in) | $ per online user-month (requests + rows + duration) |",
      "|---|---|---|---|---|---|---|---|",
    );
    for (const r of billed) {
      const b = r.billing;
      if (r.server !== "edge") {
        lines.push(`| ${r.scenario} | ${r.server} | - | - | - | - | - | ${b.usdPerUserMonth?.toFixed(4) ?? "-"} (${b.model}) |`);
        continue;
      }
      lines.push(
        `| ${[
          r.scenario,
          r.server,
          b.requestsPerUserSecond,
          b.rowsWrittenPerUserSecond,
          b.rowsReadPerUserSecond,
          b.gbSecondsPerUserSecond,
          `${b.rowsWrittenPerDelivery ?? "-"} / ${b.rowsWrittenPerHeartbeatEvent ?? "-"}; ${b.rowsWrittenPerHeartbeatAllIn ?? "-"}`,
          `${b.usdPerUserMonth} (${b.usd.requests} + ${b.usd.rowsWritten} + ${b.usd.duration}); with lease renewals (watch and realm) and realm population ${b.usdPerUserMonthWithRenewals}`,
        ].join(" | ")} |`,
      );
    }
  }
  return `${lines.join("\n")}\n`;
}

function plots(rows) {
  const ok = rows.filter((r) => !r.failed);
  const byServer = (filter, x, y) =>
    servers.map((name) => ({
      name,
      points: ok
        .filter((r) => r.server === name && filter(r))
        .map((r) => [x(r), y(r)])
        .sort((a, b) => a[0] - b[0]),
    }));
  const scale = (r) => r.scenario.startsWith("scale-") || r.scenario === "quick";
  const write = (file, svg) => writeFileSync(join(outDir, file), svg);
  write(
    "delivered-vs-users.svg",
    lineChart(
      byServer(
        scale,
        (r) => r.connected,
        (r) => r.deliveredPerSec,
      ),
      { title: "Delivered friend updates/s vs connected users", xLabel: "connected users (log)", yLabel: "delivered updates/s", logX: true },
    ),
  );
  write(
    "cpu-vs-users.svg",
    lineChart(
      byServer(
        scale,
        (r) => r.connected,
        (r) => r.cpu.serverCpuMsPer1000Delivered,
      ),
      { title: "Server CPU per 1,000 delivered updates", xLabel: "connected users (log)", yLabel: "CPU ms / 1k updates", logX: true, logY: true },
    ),
  );
  write(
    "memory-vs-users.svg",
    lineChart(
      byServer(
        scale,
        (r) => r.connected,
        (r) => r.memory.rssConnectedMiB,
      ),
      { title: "Server RSS with all users connected", xLabel: "connected users (log)", yLabel: "RSS MiB", logX: true },
    ),
  );
  const friendsRuns = (r) => r.scenario === "scale-1000" || r.scenario.startsWith("friends-");
  write(
    "cpu-vs-friends.svg",
    lineChart(
      byServer(
        friendsRuns,
        (r) => r.graph.meanFriends,
        (r) => r.cpu.serverCoresSteady,
      ),
      { title: "Server CPU vs friends per user (1,000 connected)", xLabel: "mean friends per user", yLabel: "server cores busy" },
    ),
  );
  // Latency CDF at the largest scale every server completed, and at 1,000.
  for (const scenarioName of [...new Set(ok.filter(scale).map((r) => r.scenario)), "heavy-1000"]) {
    const series = servers.map((name) => ({ name, points: ok.find((r) => r.server === name && r.scenario === scenarioName)?.latencyCdf ?? [] }));
    if (series.every((s) => s.points.length === 0)) continue;
    write(
      `latency-cdf-${scenarioName}.svg`,
      lineChart(series, { title: `Notify latency change → friend socket (${scenarioName})`, xLabel: "latency ms (log)", yLabel: "% of deliveries ≤ x", logX: true }),
    );
    const status = servers.map((name) => ({ name, points: ok.find((r) => r.server === name && r.scenario === scenarioName)?.statusChangeLatencyCdf ?? [] }));
    write(
      `status-latency-cdf-${scenarioName}.svg`,
      lineChart(status, { title: `Status change → friend socket, never coalesced (${scenarioName})`, xLabel: "latency ms (log)", yLabel: "% of deliveries ≤ x", logX: true }),
    );
  }
}

export { summarize };
