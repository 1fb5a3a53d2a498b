#!/usr/bin/env node
/**
 * Where the runtime's CPU goes, native time included: starts `wrangler dev`
 * (the production code path), drives one load scenario, and records the
 * workerd process that runs the worker and its Durable Objects with Linux
 * `perf` (software cpu-clock, call graphs) during the steady phase. The V8
 * profiler cannot do this: it charges SQLite, RPC, WebSocket and commit work to
 * whichever JS function called it.
 *
 *   npm run bench:profile                          scale-1000-ish, 20 s recorded
 *   npm run bench:profile -- --users 500 --friends 20 --seconds 15 --hb 5000
 *   npm run bench:profile -- --users 1250 --friends 25 --hb 30000 --move 1 --during connect   (the connect storm)
 *
 * Writes bench/results/profile.txt (categories, top symbols) and profile.json.
 * Needs `perf` (Debian: apt-get install linux-perf); the workerd binary ships
 * with its symbol table, so native frames have names. JIT-compiled JS shows up
 * as unnamed addresses and is counted as "JS (JIT code)".
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { readDevVars } from "../scripts/lib/dev-vars.mjs";
import { makeGraph } from "./lib/graph.mjs";
import { importGraph, mintTokens, runLoad } from "./lib/loadgen.mjs";
import { categorize } from "./lib/perf.mjs";
import { startServer } from "./lib/servers.mjs";

const { values: args } = parseArgs({
  options: {
    users: { type: "string", default: "625" },
    friends: { type: "string", default: "20" },
    seconds: { type: "string", default: "20" },
    hb: { type: "string", default: "5000" },
    move: { type: "string", default: "0.5" },
    status: { type: "string", default: "0.05" },
    out: { type: "string" },
    // "steady" (default): the steady phase; "connect": the connect storm (every user connecting, 32 at a time).
    during: { type: "string", default: "steady" },
    // Passed to the load generator: how many connects at once in the storm.
    concurrency: { type: "string" },
  },
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const root = new URL("../", import.meta.url).pathname;
const outDir = args.out ?? join(root, "bench/results");
const logDir = join(root, "bench/results/tmp/logs");
mkdirSync(outDir, { recursive: true });
mkdirSync(logDir, { recursive: true });

try {
  execFileSync("perf", ["--version"], { stdio: "ignore" });
} catch {
  console.error("perf not found: apt-get install linux-perf");
  process.exit(2);
}

const vars = readDevVars();
const users = Number(args.users);
const graph = makeGraph({ users, friends: Number(args.friends) });
const tokens = await mintTokens(graph.ids, vars.JWT_SECRET);
const server = await startServer("edge", { ttlMs: 120_000, secret: vars.JWT_SECRET, adminToken: vars.ADMIN_TOKEN, logDir, label: "profile.edge" });
const perfData = join(logDir, "profile.perf.data");
let perf = null;
let runtimePid = null;
try {
  await importGraph(server.baseUrl, vars.ADMIN_TOKEN, graph.pairs);
  const steadyMs = Number(args.seconds) * 1000;
  const record = async () => {
    runtimePid = server.parts().workerdRuntime;
    perf = spawn("perf", ["record", "-e", "cpu-clock", "-F", "499", "-g", "-p", String(runtimePid), "-o", perfData], { stdio: "ignore" });
    await sleep(300);
  };
  const stop = async () => {
    if (!perf || perf.exitCode !== null) return;
    perf.kill("SIGINT");
    await new Promise((r) => perf.once("exit", r));
  };
  if (args.during === "connect") await record();
  await runLoad({
    wsUrl: server.wsUrl,
    graph,
    tokens,
    params: {
      steadyMs,
      hbIntervalMs: Number(args.hb),
      moveProb: Number(args.move),
      statusProb: Number(args.status),
      online: 0.8,
      ...(args.concurrency ? { connectConcurrency: Number(args.concurrency) } : {}),
    },
    hooks: {
      phase: async (name) => {
        if (args.during === "connect") {
          if (name === "connected") await stop();
          return;
        }
        if (name === "steady-start") await record();
        if (name === "steady-end") await stop();
      },
    },
    log: (...parts) => console.log(...parts),
  });
} finally {
  await server.stop();
}

const { categories, symbols } = categorize(perfData);
const lines = [
  `# workerd runtime CPU profile (perf cpu-clock, ${args.during === "connect" ? "the connect storm" : `${args.seconds} s steady`}, ${users} users × ${args.friends} friends, heartbeat ${args.hb} ms, move ${args.move}, status ${args.status})`,
  "",
  "## By category (self time, % of samples)",
  ...categories.map((c) => `${c.percent.toFixed(1).padStart(6)}%  ${c.name}`),
  "",
  "## Top 40 symbols (self time)",
  ...symbols.slice(0, 40).map((s) => `${s.percent.toFixed(2).padStart(6)}%  ${s.symbol.slice(0, 140)}`),
];
writeFileSync(join(outDir, "profile.txt"), `${lines.join("\n")}\n`);
writeFileSync(join(outDir, "profile.json"), JSON.stringify({ params: args, categories, symbols: symbols.slice(0, 200) }, null, 2));
console.log(lines.join("\n"));
