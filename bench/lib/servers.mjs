/**
 * Starts and stops the three servers under test on ports 8820-8849, each in
 * its own process group so that stopping one ends exactly what it started.
 *   edge    wrangler dev (workerd, the production code path) with a fresh --persist-to dir,
 *           started like every test starts it (scripts/lib/dev-server.mjs)
 *   memory  bench/peers/memory.mjs
 *   redis   redis-server (no persistence) + bench/peers/redis.mjs
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { claimPort, startDevServer, startProcess } from "../../scripts/lib/dev-server.mjs";
import { root } from "../../scripts/lib/dev-vars.mjs";
import { commandLine, descendants } from "./proc.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** How the peers are started: this Node, from the repository, logging to the run's log directory. */
const node = (script, env, logFile, readyUrl) => startProcess({ command: process.execPath, args: [script], env, logFile, readyUrl, readyTimeoutMs: 90_000 });

/** Servers (and redis) on 8820-8834; wrangler's inspector on port + 15, so up to 8849. */
const PORTS = { first: 8820, count: 15 };

export const persistRoot = () => process.env.BENCH_PERSIST_ROOT ?? (existsSync("/dev/shm") ? "/dev/shm" : tmpdir());

let snapshot = null;
/**
 * wrangler dev reloads when a source file changes, and other people edit this
 * tree while the bench runs: run the committed code (HEAD) from a copy instead.
 * node_modules is hard-linked, not symlinked: through a symlink the bundler
 * resolves into this tree and watches its package.json, and an edit there
 * reloads the server (and drops every socket) in the middle of a run.
 */
export function edgeSnapshot() {
  if (snapshot) return snapshot.dir;
  const dir = mkdtempSync(join(tmpdir(), "edge-presence-src-"));
  execFileSync("sh", ["-c", `git archive HEAD src durable wrangler.toml tsconfig.json package.json public | tar -x -C '${dir}'`], { cwd: root });
  execFileSync("cp", ["-al", join(root, "node_modules"), join(dir, "node_modules")]);
  for (const file of [".dev.vars", ".dev.vars.example"]) if (existsSync(join(root, file))) copyFileSync(join(root, file), join(dir, file));
  const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim();
  snapshot = { dir, commit };
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
export const edgeCommit = () => snapshot?.commit ?? execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim();

export function versions() {
  const run = (cmd, args) => {
    try {
      return execFileSync(cmd, args, { cwd: root, encoding: "utf8" }).trim().split("\n").pop();
    } catch {
      return "unavailable";
    }
  };
  return {
    node: process.version,
    workerd: run(join(root, "node_modules/.bin/workerd"), ["--version"]),
    wrangler: run(join(root, "node_modules/.bin/wrangler"), ["--version"]),
    redis: run("redis-server", ["--version"]),
  };
}

/** Returns { name, baseUrl, wsUrl, pids() → server pids to measure, stop() }. */
export async function startServer(name, { ttlMs, secret, adminToken, logDir, label = name, vars = {}, via = "proxy" }) {
  const logFile = join(logDir, `${label}.log`);
  if (name === "edge") {
    // Durable Object storage goes to tmpfs by default: on this machine's disk every SQLite commit of
    // wrangler dev waits for the disk, which is a property of the local runtime, not of Durable Objects
    // (docs/BENCHMARKS.md shows both). BENCH_PERSIST_ROOT=/tmp measures the disk-backed variant.
    const started = Date.now();
    const server = await startDevServer({
      vars: { PRESENCE_TTL_MS: String(ttlMs), JWT_SECRET: secret, ADMIN_TOKEN: adminToken, ...vars },
      ports: PORTS,
      persistRoot: persistRoot(),
      cwd: edgeSnapshot(),
      logFile,
      readyTimeoutMs: 90_000,
    });
    const startupMs = Date.now() - started;
    const port = server.port;
    // wrangler (node) starts two workerd processes: one bound to --port (the proxy in front) and one
    // that runs the worker and its Durable Objects (the one with the inspector). Both carry every socket: measure both.
    // Looked up at every sample: if wrangler ever restarts the runtime, the numbers follow the new process.
    const all = () => {
      const pid = server.pid();
      return pid === undefined ? [] : [pid, ...descendants(pid)];
    };
    const workerd = () => all().filter((pid) => commandLine(pid).includes("workerd serve"));
    const isProxy = (pid) => commandLine(pid).includes(`entry=127.0.0.1:${port} `);
    // `via: "direct"`: clients talk to the runtime's own entry socket, not through wrangler's proxy workerd,
    // which production does not have (it carries every frame twice: ≈ 0.7 cores at friends-50-1000).
    let baseUrl = server.url;
    if (via === "direct") {
      const runtime = workerd().find((pid) => !isProxy(pid));
      const entry = runtime === undefined ? null : await entryPortOf(runtime);
      if (entry === null) throw new Error("the runtime's entry socket was not found; use --via proxy");
      baseUrl = `http://127.0.0.1:${entry}`;
    }
    return {
      name,
      baseUrl,
      wsUrl: `${baseUrl.replace("http", "ws")}/v1/connect`,
      via,
      startupMs,
      /** Times wrangler reloaded the worker during the run (each one drops every socket): should be 0. */
      reloads: () => server.output().split("Reloading local server").length - 1,
      pids: workerd,
      parts: () => Object.fromEntries(workerd().map((pid) => [isProxy(pid) ? "workerdProxy" : "workerdRuntime", pid])),
      allPids: all,
      stop: () => server.stop(),
    };
  }
  const { port, release } = await claimPort(PORTS);
  const baseUrl = `http://127.0.0.1:${port}`;
  const wsUrl = `ws://127.0.0.1:${port}/v1/connect`;
  if (name === "memory") {
    const started = Date.now();
    const peer = await node("bench/peers/memory.mjs", { PORT: String(port), TTL_MS: String(ttlMs), JWT_SECRET: secret, ADMIN_TOKEN: adminToken }, logFile, `${baseUrl}/health`);
    return {
      name,
      baseUrl,
      wsUrl,
      startupMs: Date.now() - started,
      pids: () => [peer.pid],
      parts: () => ({ node: peer.pid }),
      allPids: () => [peer.pid],
      async stop() {
        await peer.kill();
        release();
      },
    };
  }
  if (name === "redis") {
    const redisPort = await claimPort(PORTS);
    const redisDir = mkdtempSync(join(tmpdir(), "edge-presence-redis-"));
    const redis = await startProcess({
      command: "redis-server",
      args: ["--port", String(redisPort.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", redisDir, "--notify-keyspace-events", "Ex"],
      logFile: join(logDir, `${label}.redis-server.log`),
    });
    await sleep(300);
    const started = Date.now();
    const env = { PORT: String(port), REDIS_URL: `redis://127.0.0.1:${redisPort.port}`, TTL_MS: String(ttlMs), JWT_SECRET: secret, ADMIN_TOKEN: adminToken };
    const peer = await node("bench/peers/redis.mjs", env, logFile, `${baseUrl}/health`);
    return {
      name,
      baseUrl,
      wsUrl,
      startupMs: Date.now() - started,
      pids: () => [peer.pid, redis.pid],
      parts: () => ({ node: peer.pid, redisServer: redis.pid }),
      allPids: () => [peer.pid, redis.pid],
      async stop() {
        await peer.kill();
        await redis.kill();
        release();
        redisPort.release();
        rmSync(redisDir, { recursive: true, force: true });
      },
    };
  }
  release();
  throw new Error(`unknown server ${name}`);
}

/** The runtime workerd's own entry socket (the one that answers /health): where clients bypass wrangler's proxy workerd. */
export async function entryPortOf(pid) {
  const out = execFileSync("ss", ["-ltnpH"], { encoding: "utf8" });
  const ports = [...out.matchAll(/127\.0\.0\.1:(\d+)\s.*pid=(\d+),fd=(\d+)/g)].filter((m) => Number(m[2]) === pid).map((m) => Number(m[1]));
  for (const port of ports) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return port;
    } catch {
      // not this one
    }
  }
  return null;
}
