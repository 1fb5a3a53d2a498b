/**
 * Starts and stops the three servers under test on ports 8820-8849, each in
 * its own process group so that stopping one ends exactly what it started.
 *   edge    wrangler dev (workerd, the production code path) with a fresh --persist-to dir
 *   memory  bench/peers/memory.mjs
 *   redis   redis-server (no persistence) + bench/peers/redis.mjs
 */
import { spawn, execFileSync } from "node:child_process";
import { copyFileSync, createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { commandLine, descendants } from "./proc.mjs";

const root = new URL("../../", import.meta.url).pathname;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function portFree(port) {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

export async function freePort(taken = new Set()) {
  for (let port = 8820; port <= 8849; port++) if (!taken.has(port) && (await portFree(port))) return port;
  throw new Error("no free port in 8820-8849");
}

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

function launch(command, args, { env = {}, logFile, cwd = root }) {
  const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const log = createWriteStream(logFile);
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  return child;
}

async function stopGroup(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  try {
    process.kill(-child.pid, "SIGTERM");
  } catch {
    return;
  }
  const timeout = sleep(8000).then(() => "timeout");
  if ((await Promise.race([exited, timeout])) === "timeout") {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // gone
    }
    await exited;
  }
}

async function waitHealthy(url, child, timeoutMs = 90000) {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode} before it was healthy`);
    try {
      const res = await fetch(url);
      if (res.ok) return Date.now() - started;
    } catch {
      // not yet
    }
    await sleep(250);
  }
  throw new Error(`${url} not healthy after ${timeoutMs} ms`);
}

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
export async function startServer(name, { ttlMs, secret, adminToken, logDir, label = name }) {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const wsUrl = `ws://127.0.0.1:${port}/v1/connect`;
  if (name === "edge") {
    // Durable Object storage goes to tmpfs by default: on this machine's disk every SQLite commit of
    // wrangler dev waits for the disk, which is a property of the local runtime, not of Durable Objects
    // (docs/BENCHMARKS.md shows both). BENCH_PERSIST_ROOT=/tmp measures the disk-backed variant.
    const persist = mkdtempSync(join(persistRoot(), "edge-presence-bench-"));
    const child = launch(join(root, "node_modules/.bin/wrangler"), ["dev", "--port", String(port), "--ip", "127.0.0.1", "--persist-to", persist, "--var", `PRESENCE_TTL_MS:${ttlMs}`, "--show-interactive-dev-session=false"], {
      // A private dev registry and no config watching: another developer's `wrangler dev` of the same
      // worker name otherwise makes this one reload (and drop every socket) in the middle of a run.
      env: { WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", WRANGLER_REGISTRY_PATH: join(persist, "registry"), WRANGLER_CI_DISABLE_CONFIG_WATCHING: "true" },
      logFile: join(logDir, `${label}.log`),
      cwd: edgeSnapshot(),
    });
    const startupMs = await waitHealthy(`${baseUrl}/health`, child);
    // wrangler (node) starts two workerd processes: one bound to --port (the proxy in front) and one
    // that runs the worker and its Durable Objects (the one with the inspector). Both carry every socket: measure both.
    // Looked up at every sample: if wrangler ever restarts the runtime, the numbers follow the new process.
    const workerd = () => descendants(child.pid).filter((pid) => commandLine(pid).includes("workerd serve"));
    const isProxy = (pid) => commandLine(pid).includes(`entry=127.0.0.1:${port} `);
    const logFile = join(logDir, `${label}.log`);
    return {
      name, baseUrl, wsUrl, startupMs,
      /** Times wrangler reloaded the worker during the run (each one drops every socket): should be 0. */
      reloads: () => (existsSync(logFile) ? readFileSync(logFile, "utf8").split("Reloading local server").length - 1 : 0),
      pids: workerd,
      parts: () => Object.fromEntries(workerd().map((pid) => [isProxy(pid) ? "workerdProxy" : "workerdRuntime", pid])),
      allPids: () => [child.pid, ...descendants(child.pid)],
      async stop() {
        await stopGroup(child);
        rmSync(persist, { recursive: true, force: true });
      },
    };
  }
  if (name === "memory") {
    const child = launch(process.execPath, ["bench/peers/memory.mjs"], {
      env: { PORT: String(port), TTL_MS: String(ttlMs), JWT_SECRET: secret, ADMIN_TOKEN: adminToken },
      logFile: join(logDir, `${label}.log`),
    });
    const startupMs = await waitHealthy(`${baseUrl}/health`, child);
    return { name, baseUrl, wsUrl, startupMs, pids: () => [child.pid], parts: () => ({ node: child.pid }), allPids: () => [child.pid], stop: () => stopGroup(child) };
  }
  if (name === "redis") {
    const redisPort = await freePort(new Set([port]));
    const redisDir = mkdtempSync(join(tmpdir(), "edge-presence-redis-"));
    const redis = launch("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", redisDir, "--notify-keyspace-events", "Ex"], {
      logFile: join(logDir, `${label}.redis-server.log`),
    });
    await sleep(300);
    const child = launch(process.execPath, ["bench/peers/redis.mjs"], {
      env: { PORT: String(port), REDIS_URL: `redis://127.0.0.1:${redisPort}`, TTL_MS: String(ttlMs), JWT_SECRET: secret, ADMIN_TOKEN: adminToken },
      logFile: join(logDir, `${label}.log`),
    });
    const startupMs = await waitHealthy(`${baseUrl}/health`, child);
    return {
      name, baseUrl, wsUrl, startupMs,
      pids: () => [child.pid, redis.pid],
      parts: () => ({ node: child.pid, redisServer: redis.pid }),
      allPids: () => [child.pid, redis.pid],
      async stop() {
        await stopGroup(child);
        await stopGroup(redis);
        rmSync(redisDir, { recursive: true, force: true });
      },
    };
  }
  throw new Error(`unknown server ${name}`);
}
