#!/usr/bin/env node
/**
 * CPU per event on the hot path (issue #11): a small, repeatable measure of
 * what one no-op heartbeat and one delivered update cost the runtime, next to
 * the bare Node memory peer and to the runtime's own floor.
 *
 *   npm run bench:hot                                   edge, memory and floor, 3 repeats
 *   npm run bench:hot -- --servers edge --repeat 5 --heartbeats 6000
 *   npm run bench:hot -- --servers edge --perf heartbeat   + a perf profile of that phase
 *
 * One server at a time: `wrangler dev` of the working tree (started by
 * scripts/lib/dev-server.mjs, the one launcher, from a copy so that edits
 * cannot reload it), the memory peer (bench/peers/memory.mjs), and the floor
 * (bench/floor/: a Durable Object per user with a hibernating socket and
 * handlers that do next to nothing). `--users` users with `--friends` friends
 * each (imported through the admin API) connect, subscribe and say they are
 * online; then, `--repeat` times:
 *   heartbeat  `--heartbeats` no-op heartbeats (same position, status and realm
 *              as before), round-robin over the users, `--window` in flight;
 *   ping       as many keep-alive `ping` frames (answered `pong`): what the SDK
 *              sends instead of a heartbeat that would change nothing;
 *   change     `--changes` status changes (online ↔ busy), each delivered to
 *              every friend: CPU per delivered presence frame.
 * The floor runs the same frames through handlers that do nothing (`empty`),
 * send a fixed ack of the same size (`ack`), parse and stringify (`json`), and
 * make one RPC per friend that sends the frame (`fanout`).
 *
 * CPU is read from /proc (every thread's schedstat, ns) of each server process:
 * for `wrangler dev` the runtime workerd (the worker and its objects) and the
 * proxy workerd in front of it are counted apart. With `--via direct` (the
 * default) the clients connect to the runtime's own entry socket, so the proxy
 * carries nothing and the runtime's number is the worker's (plus miniflare's
 * small entry worker, which only sees the upgrade request); `--via proxy`
 * goes through the proxy like the other benches. Each phase subtracts the
 * process's idle CPU rate measured just before it. The machine is shared:
 * every result records the load average; medians over the repeats are reported.
 *
 * Writes bench/results/hot-path/<label>.json and prints a table.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import WebSocket from "ws";
import { startDevServer } from "../scripts/lib/dev-server.mjs";
import { readDevVars, root } from "../scripts/lib/dev-vars.mjs";
import { makeGraph } from "./lib/graph.mjs";
import { importGraph, mintTokens } from "./lib/loadgen.mjs";
import { categorize } from "./lib/perf.mjs";
import { commandLine, descendants } from "./lib/proc.mjs";
import { entryPortOf, startServer } from "./lib/servers.mjs";

const { values: args } = parseArgs({
  options: {
    users: { type: "string", default: "200" },
    friends: { type: "string", default: "20" },
    heartbeats: { type: "string", default: "4000" },
    changes: { type: "string", default: "200" },
    repeat: { type: "string", default: "3" },
    window: { type: "string", default: "8" },
    servers: { type: "string", default: "edge,memory,floor" },
    via: { type: "string", default: "direct" },
    perf: { type: "string" },
    label: { type: "string", default: "latest" },
    observability: { type: "string", default: "off" },
    v8: { type: "string" },
  },
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const USERS = Number(args.users);
const N_HEARTBEATS = Number(args.heartbeats);
const N_CHANGES = Number(args.changes);
const REPEAT = Number(args.repeat);
const WINDOW = Number(args.window);
const outDir = join(root, "bench/results/hot-path");
const logDir = join(root, "bench/results/tmp/logs");
mkdirSync(outDir, { recursive: true });
mkdirSync(logDir, { recursive: true });

const loadavg = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).map(Number);

/** CPU ns of a process, every thread (schedstat: ns on CPU), plus utime+stime as a cross-check. */
function cpuNs(pid) {
  let ns = 0;
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]);
      } catch {
        // thread gone
      }
    }
  } catch {
    return 0;
  }
  return ns;
}
function ticks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}
const sample = (pids) => ({
  at: performance.now(),
  ns: Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuNs(pid)])),
  ticks: Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, ticks(pid)])),
});

/** The working tree's worker in a private copy (node_modules hard-linked), so that editing this tree cannot reload it mid-run. */
function treeCopy() {
  const dir = mkdtempSync(join(tmpdir(), "edge-presence-hot-"));
  execFileSync("sh", ["-c", `tar -c src durable wrangler.toml tsconfig.json package.json public bench/floor | tar -x -C '${dir}'`], { cwd: root });
  execFileSync("cp", ["-al", join(root, "node_modules"), join(dir, "node_modules")]);
  for (const file of [".dev.vars", ".dev.vars.example"]) if (existsSync(join(root, file))) execFileSync("cp", [join(root, file), join(dir, file)]);
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** wrangler dev of the worker (or the floor): its two workerd processes, and where clients connect. */
async function startWrangler(name, dir, vars) {
  const server = await startDevServer({
    vars,
    configs: name === "floor" ? ["bench/floor/wrangler.toml"] : [],
    ports: { first: 8870, count: 10 },
    persistRoot: existsSync("/dev/shm") ? "/dev/shm" : tmpdir(),
    cwd: dir,
    logFile: join(logDir, `hot-path.${name}.log`),
    readyTimeoutMs: 90_000,
    // wrangler's local observability (on by default) runs a trace collector for every event: a tail stream
    // into a Durable Object that writes each span to SQLite. Production has nothing of the kind in the isolate.
    env: args.observability === "off" ? { X_LOCAL_OBSERVABILITY: "false" } : {},
  });
  const all = [server.pid(), ...descendants(server.pid())];
  const workerd = all.filter((pid) => commandLine(pid).includes("workerd serve"));
  const proxy = workerd.find((pid) => commandLine(pid).includes(`entry=127.0.0.1:${server.port} `));
  const runtime = workerd.find((pid) => pid !== proxy);
  let base = server.url;
  if (args.via === "direct") {
    const port = await entryPortOf(runtime);
    if (port === null) throw new Error("runtime entry socket not found; use --via proxy");
    base = `http://127.0.0.1:${port}`;
  }
  return { name, base, inspector: `127.0.0.1:${server.port + 10}`, pids: { runtime, proxy }, stop: () => server.stop() };
}

/** One client per user; replies resolve in order (one request in flight per user), presence pushes are counted. */
function connectClient(url, headers) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    const client = { ws, waiting: [], presence: 0, busy: false, status: "online", requests: 0 };
    ws.on("message", (data, isBinary) => {
      const text = isBinary ? "" : data.toString();
      if (text.startsWith('{"type":"presence"')) client.presence++;
      else if (text.startsWith('{"type":"welcome"')) return;
      else client.waiting.shift()?.(text);
    });
    ws.once("open", () => resolve(client));
    ws.once("error", reject);
    ws.once("unexpected-response", (_req, res) => reject(new Error(`connect ${url}: ${res.statusCode}`)));
  });
}
const request = (client, frame) =>
  new Promise((resolve) => {
    client.waiting.push(resolve);
    client.ws.send(frame);
  });

/** Runs `count` requests, round-robin over idle users, `window` in flight. */
async function closedLoop(clients, count, window, frameFor) {
  let sent = 0;
  let next = 0;
  const errors = [];
  const worker = async () => {
    while (sent < count) {
      let c = null;
      for (let tries = 0; tries < clients.length && !c; tries++) {
        const candidate = clients[next++ % clients.length];
        if (!candidate.busy) c = candidate;
      }
      if (!c) {
        await sleep(1);
        continue;
      }
      sent++;
      c.busy = true;
      const frames = frameFor(c);
      // Every frame but the last is sent without waiting: only the last one is answered.
      for (const frame of frames.slice(0, -1)) c.ws.send(frame);
      const reply = await request(c, frames[frames.length - 1]);
      if (!reply.startsWith('{"type":"heartbeat_ack"') && reply !== "S" && reply !== "pong") errors.push(reply.slice(0, 200));
      c.busy = false;
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
  return errors;
}

const heartbeat = (c, id) => JSON.stringify({ type: "PositionHeartbeat", id, position: { x: 1, y: 1, z: 2 }, realm: "bench", status: c.status });

async function measure(server, clients, phase, expectedDeliveries, run, perfPhase) {
  const expected = typeof expectedDeliveries === "function" ? expectedDeliveries : () => expectedDeliveries;
  // The process's idle rate just before (timers, the proxy's own work), subtracted below.
  const idle0 = sample(server.pids);
  await sleep(1500);
  const idle1 = sample(server.pids);
  const idleRate = Object.fromEntries(Object.keys(server.pids).map((k) => [k, (idle1.ns[k] - idle0.ns[k]) / (idle1.at - idle0.at)]));
  const presenceBefore = clients.reduce((s, c) => s + c.presence, 0);
  let perf = null;
  if (perfPhase === true && server.pids.runtime) {
    const file = join(logDir, `hot-path.${server.name}.${phase}.perf.data`);
    perf = { file, proc: spawn("perf", ["record", "-e", "cpu-clock", "-F", "999", "-g", "-p", String(server.pids.runtime), "-o", file], { stdio: "ignore" }) };
    await sleep(500);
  }
  const v8 = perfPhase === "v8" && server.inspector ? await startV8Profile(server.inspector) : null;
  const before = sample(server.pids);
  const load = loadavg();
  const errors = await run();
  const deadline = Date.now() + 20_000;
  let delivered = clients.reduce((s, c) => s + c.presence, 0) - presenceBefore;
  while (delivered < expected() && Date.now() < deadline) {
    await sleep(20);
    delivered = clients.reduce((s, c) => s + c.presence, 0) - presenceBefore;
  }
  const after = sample(server.pids);
  if (v8) await v8.stop(join(logDir, `hot-path.${server.name}.${phase}.cpuprofile`));
  if (perf) {
    perf.proc.kill("SIGINT");
    await new Promise((r) => perf.proc.once("exit", r));
  }
  const wallMs = after.at - before.at;
  const cpuMs = Object.fromEntries(Object.keys(server.pids).map((k) => [k, (after.ns[k] - before.ns[k]) / 1e6]));
  const netMs = Object.fromEntries(Object.keys(server.pids).map((k) => [k, cpuMs[k] - (idleRate[k] * wallMs) / 1e6]));
  const tickMs = Object.fromEntries(Object.keys(server.pids).map((k) => [k, (after.ticks[k] - before.ticks[k]) * 10]));
  return {
    phase,
    load,
    wallMs,
    cpuMs,
    netMs,
    tickMs,
    idleMsPerS: Object.fromEntries(Object.entries(idleRate).map(([k, v]) => [k, v / 1e3])),
    delivered,
    expectedDeliveries: expected(),
    errors: errors.slice(0, 5),
    perf: perf?.file,
  };
}

/**
 * A V8 CPU profile of the worker's isolate (through wrangler's inspector proxy): JS self time per
 * function, where perf sees only unnamed JIT code. Native work is charged to the JS that called it.
 */
async function startV8Profile(inspector) {
  const targets = await (await fetch(`http://${inspector}/json`)).json();
  const ws = new WebSocket(targets[0].webSocketDebuggerUrl.replace(/^ws:\/\/[^/]+/, `ws://${inspector}`));
  await new Promise((r, j) => {
    ws.once("open", r);
    ws.once("error", j);
  });
  let id = 0;
  const pending = new Map();
  ws.on("message", (data) => {
    const m = JSON.parse(data.toString());
    if (m.id && pending.has(m.id)) pending.get(m.id)(m.result);
  });
  const call = (method, params = {}) =>
    new Promise((r) => {
      pending.set(++id, r);
      ws.send(JSON.stringify({ id, method, params }));
    });
  await call("Profiler.enable");
  await call("Profiler.setSamplingInterval", { interval: 100 });
  await call("Profiler.start");
  return {
    async stop(file) {
      const { profile } = await call("Profiler.stop");
      ws.close();
      writeFileSync(file, JSON.stringify(profile));
      const total = profile.samples.length;
      const self = new Map();
      const byId = new Map(profile.nodes.map((n) => [n.id, n]));
      const counts = new Map();
      for (const s of profile.samples) counts.set(s, (counts.get(s) ?? 0) + 1);
      for (const [nodeId, count] of counts) {
        const { functionName, url, lineNumber } = byId.get(nodeId).callFrame;
        const key = `${functionName || "(anonymous)"} ${url.split("/").slice(-2).join("/")}:${lineNumber + 1}`;
        self.set(key, (self.get(key) ?? 0) + count);
      }
      console.log(`  v8 profile: ${total} samples, ${file}`);
      for (const [key, count] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(`    ${((100 * count) / total).toFixed(1).padStart(5)}%  ${key}`);
    },
  };
}

/** Servers started and not yet stopped: stopped on SIGINT/SIGTERM too. */
const running = new Set();
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, async () => {
    for (const server of running) await server.stop().catch(() => undefined);
    process.exit(130);
  });
}

async function runServer(name, dir, vars, graph, tokens) {
  const label = `${name}${name === "memory" ? "" : `/${args.via}${args.observability === "off" ? "" : "+obs"}`}`;
  console.log(`\n== ${label} (load ${loadavg().join(" ")})`);
  let server;
  if (name === "memory") {
    const s = await startServer("memory", { ttlMs: 120_000, secret: vars.JWT_SECRET, adminToken: vars.ADMIN_TOKEN, logDir, label: "hot-path.memory" });
    server = { name, base: s.baseUrl, pids: { node: s.parts().node }, stop: s.stop };
  } else {
    server = await startWrangler(name, dir, { ...vars, RATE_PER_SECOND: "1000", RATE_BURST: "1000" });
  }
  running.add(server);
  const results = [];
  const clients = [];
  try {
    if (name !== "floor") await importGraph(server.base, vars.ADMIN_TOKEN, graph.pairs);
    const ws = server.base.replace("http", "ws");
    for (let i = 0; i < USERS; i += 16) {
      const batch = graph.ids.slice(i, i + 16).map((id, k) => {
        if (name === "floor") return connectClient(`${ws}/connect?user=${id}&friends=${graph.friends[i + k].map((f) => graph.ids[f]).join(",")}`, {});
        return connectClient(`${ws}/v1/connect?device=d-${id}&kind=desktop`, { Authorization: `Bearer ${tokens.get(id)}` });
      });
      clients.push(...(await Promise.all(batch)));
    }
    if (name !== "floor") {
      for (const c of clients) await request(c, JSON.stringify({ type: "SubscribeFriendshipPresenceUpdates", id: "sub" }));
      await closedLoop(clients, clients.length, WINDOW, (c) => [heartbeat(c, ++c.requests)]);
    }
    await sleep(2000);
    const degree = clients.map((_, i) => graph.friends[i].length);
    for (let r = 0; r < REPEAT; r++) {
      const measuredBefore = results.length;
      const perfOn = (phase) => (r === 0 && args.perf === phase) || (r === 0 && args.v8 === phase ? "v8" : false);
      /**
       * `N_CHANGES` status changes (online ↔ busy, round-robin over the users), each sent as `frameFor` makes
       * it and delivered to every friend (all online and subscribed): CPU per delivered presence frame.
       */
      const changes = async (phase, frameFor) => {
        let expected = 0;
        const m = await measure(
          server,
          clients,
          phase,
          () => expected,
          () =>
            closedLoop(clients, N_CHANGES, Math.max(1, WINDOW / 2), (c) => {
              c.status = c.status === "online" ? "busy" : "online";
              expected += degree[clients.indexOf(c)];
              return [frameFor(c)];
            }),
          perfOn(phase),
        );
        if (m.delivered < expected) m.errors.push(`delivered ${m.delivered} of ${expected}`);
        return { ...m, events: m.delivered };
      };
      if (name === "floor") {
        const body = (c) => heartbeat(c, ++c.requests);
        const units = Math.ceil(N_HEARTBEATS / 10);
        const empty = await measure(server, clients, "empty", 0, () => closedLoop(clients, units, WINDOW, (c) => [...Array(9).fill(`E${body(c)}`), "S"]), perfOn("empty"));
        results.push({ ...empty, events: units * 10 });
        for (const [phase, prefix] of [
          ["ack", "A"],
          ["json", "J"],
        ]) {
          const m = await measure(server, clients, phase, 0, () => closedLoop(clients, N_HEARTBEATS, WINDOW, (c) => [`${prefix}${body(c)}`]), perfOn(phase));
          results.push({ ...m, events: N_HEARTBEATS });
        }
        for (const [phase, prefix] of [
          ["fanout", "F"],
          ["fanout-stubs", "G"],
          ["fanout-object", "H"],
          ["fanout-parsed", "I"],
        ]) {
          results.push(await changes(phase, (c) => `${prefix}${body(c)}`));
        }
      } else {
        const hb = await measure(server, clients, "heartbeat", 0, () => closedLoop(clients, N_HEARTBEATS, WINDOW, (c) => [heartbeat(c, ++c.requests)]), perfOn("heartbeat"));
        results.push({ ...hb, events: N_HEARTBEATS });
        // The keep-alive `ping` (what the SDK sends instead of a heartbeat that would change nothing): edge's
        // runtime answers it without waking the object (setWebSocketAutoResponse); the memory peer in its JS.
        const ping = await measure(server, clients, "ping", 0, () => closedLoop(clients, N_HEARTBEATS, WINDOW, () => ["ping"]), perfOn("ping"));
        results.push({ ...ping, events: N_HEARTBEATS });
        results.push(await changes("change", (c) => heartbeat(c, ++c.requests)));
      }
      for (const m of results.slice(measuredBefore)) console.log(`  ${m.phase.padEnd(9)} ${describe(m)}`);
    }
  } finally {
    for (const c of clients) c.ws.terminate();
    await server.stop();
    running.delete(server);
  }
  return { server: label, pids: Object.keys(server.pids), results };
}

const perEvent = (m, k) => (m.netMs[k] * 1000) / Math.max(1, m.events);
function describe(m) {
  const parts = Object.keys(m.netMs).map((k) => `${k} ${perEvent(m, k).toFixed(1)} µs`);
  return `${String(m.events).padStart(6)} events  ${parts.join("  ")}  (wall ${(m.wallMs / 1000).toFixed(1)} s, load ${m.load[0]})${m.errors.length ? `  errors: ${m.errors.join(" | ")}` : ""}`;
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const vars = readDevVars();
const graph = makeGraph({ users: USERS, friends: Number(args.friends) });
const tokens = await mintTokens(graph.ids, vars.JWT_SECRET);
const dir = treeCopy();
const commit = execFileSync("git", ["describe", "--always", "--dirty"], { cwd: root, encoding: "utf8" }).trim();
const runs = [];
for (const name of args.servers.split(",")) runs.push(await runServer(name, dir, vars, graph, tokens));

const summary = [];
for (const run of runs) {
  for (const phase of [...new Set(run.results.map((m) => m.phase))]) {
    const ms = run.results.filter((m) => m.phase === phase);
    const row = { server: run.server, phase, n: ms.length, load: median(ms.map((m) => m.load[0])) };
    for (const k of run.pids) row[`${k}Us`] = +median(ms.map((m) => perEvent(m, k))).toFixed(2);
    row.allUs = +median(ms.map((m) => run.pids.reduce((s, k) => s + perEvent(m, k), 0))).toFixed(2);
    summary.push(row);
  }
}
const memory = (phase) => summary.find((r) => r.server === "memory" && r.phase === phase)?.nodeUs;
console.log(`\nmedians (µs of CPU per event, idle subtracted), ${USERS} users × ${args.friends} friends, commit ${commit}`);
for (const row of summary) {
  // Against the memory peer's event of the same kind (a ping: also against its heartbeat, what the ping replaces).
  const delivery = row.phase === "change" || row.phase.startsWith("fanout");
  const kinds = row.server === "memory" ? [] : delivery ? ["change"] : row.phase === "ping" ? ["heartbeat", "ping"] : ["heartbeat"];
  const ratio = kinds
    .filter((kind) => memory(kind))
    .map((kind) => `  (runtime ${(row.runtimeUs / memory(kind)).toFixed(1)}× memory's ${kind})`)
    .join("");
  const cols = Object.entries(row)
    .filter(([k]) => k.endsWith("Us"))
    .map(([k, v]) => `${k.slice(0, -2)} ${v}`)
    .join("  ");
  console.log(`  ${row.server.padEnd(14)} ${row.phase.padEnd(9)} ${cols}${ratio}  [load ${row.load}]`);
}
const perfFiles = runs.flatMap((r) => r.results.filter((m) => m.perf).map((m) => ({ server: r.server, phase: m.phase, file: m.perf, events: m.events, netMs: m.netMs })));
for (const p of perfFiles) {
  const { categories, symbols } = categorize(p.file);
  console.log(`\nperf: ${p.server} ${p.phase} (${p.events} events; runtime ${perEvent(p, "runtime").toFixed(1)} µs each)`);
  for (const c of categories) console.log(`  ${c.percent.toFixed(1).padStart(5)}%  ${((c.percent / 100) * perEvent(p, "runtime")).toFixed(1).padStart(6)} µs  ${c.name}`);
  console.log("  top symbols:");
  for (const s of symbols.slice(0, 25)) console.log(`  ${s.percent.toFixed(2).padStart(6)}%  ${s.symbol.slice(0, 120)}`);
  p.categories = categories;
  p.symbols = symbols.slice(0, 100);
}
writeFileSync(join(outDir, `${args.label}.json`), JSON.stringify({ args, commit, at: new Date().toISOString(), summary, runs, perf: perfFiles }, null, 2));
console.log(`\nwrote bench/results/hot-path/${args.label}.json`);
process.exit(0);
