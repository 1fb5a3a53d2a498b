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
  },
});

/** Symbol → what it is in presence terms. First match wins; order matters. */
const CATEGORIES = [
  ["SQLite: commit / WAL", /sqlite3PagerCommit|sqlite3WalFrames|walWrite|sqlite3BtreeCommit|ActorSqlite.*commit|Sqlite.*[Cc]ommit/],
  ["SQLite: statements", /sqlite3|Sqlite|SqlStorage/],
  ["RPC / capnp / JS RPC", /capnp|JsRpc|jsrpc|Rpc|rpc/],
  ["WebSocket (send/receive/hibernation)", /WebSocket|websocket|Hibernat/],
  ["HTTP / kj I/O", /kj::(Http|Async|Network|.*Stream)|HttpService|Http/],
  ["alarms / actor runtime", /Alarm|alarm|ActorCache|Actor|actor/],
  ["V8 runtime (GC, builtins, compiler)", /v8::|Builtins_|Builtin|Heap|Scavenge|Marking|Compiler|Turbofan|Maglev|Sparkplug|Runtime_/],
  ["JSON / serialization", /JSON|Json|Serializer|Deserializer|structuredClone/],
  ["kernel", /^\[k\]|entry_SYSCALL|syscall|__x64_sys|do_syscall/],
  ["libc / allocator", /malloc|free|memcpy|memmove|memset|tcmalloc|operator new|operator delete/],
];

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
  await runLoad({
    wsUrl: server.wsUrl,
    graph,
    tokens,
    params: { steadyMs, hbIntervalMs: Number(args.hb), moveProb: Number(args.move), statusProb: Number(args.status), online: 0.8 },
    hooks: {
      phase: async (name) => {
        if (name === "steady-start") {
          runtimePid = server.parts().workerdRuntime;
          perf = spawn("perf", ["record", "-e", "cpu-clock", "-F", "499", "-g", "-p", String(runtimePid), "-o", perfData], { stdio: "ignore" });
          await sleep(300);
        }
        if (name === "steady-end" && perf) {
          perf.kill("SIGINT");
          await new Promise((r) => perf.once("exit", r));
        }
      },
    },
    log: (...parts) => console.log(...parts),
  });
} finally {
  await server.stop();
}

// Self time per symbol (no children), then grouped.
const report = execFileSync("perf", ["report", "-i", perfData, "--stdio", "--no-children", "--sort", "sym", "-g", "none", "--percent-limit", "0.05"], {
  encoding: "utf8",
  maxBuffer: 256 * 2 ** 20,
  stdio: ["ignore", "pipe", "ignore"],
});
const symbols = [];
for (const line of report.split("\n")) {
  const m = /^\s+([\d.]+)%\s+(\[[.k]\])\s+(.*)$/.exec(line);
  if (m) symbols.push({ percent: Number(m[1]), kind: m[2], symbol: m[3].trim() });
}
const totals = new Map();
for (const { percent, kind, symbol } of symbols) {
  const name = /^0x[0-9a-f]+$/.test(symbol) ? "JS (JIT code)" : (CATEGORIES.find(([, re]) => re.test(kind === "[k]" ? `[k] ${symbol}` : symbol))?.[0] ?? "other native");
  totals.set(name, (totals.get(name) ?? 0) + percent);
}
const categories = [...totals.entries()].sort((a, b) => b[1] - a[1]).map(([name, percent]) => ({ name, percent: +percent.toFixed(1) }));
const lines = [
  `# workerd runtime CPU profile (perf cpu-clock, ${args.seconds} s steady, ${users} users × ${args.friends} friends, heartbeat ${args.hb} ms, move ${args.move}, status ${args.status})`,
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
