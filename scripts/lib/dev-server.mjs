// The one way to start the real worker with `wrangler dev`, for the end-to-end,
// SDK and browser tests and the benchmark: a claimed port (its inspector on
// port + count, so each user of the machine stays in its own range), a fresh
// --persist-to directory, the dev secrets plus any var overrides, readiness on
// /health, kill (crash) or graceful stop, restart on the same port and
// storage, and the output kept for failure messages. startProcess is the
// process-group part, which the benchmark's other servers use as well.
import { spawn } from "node:child_process";
import { closeSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mintToken } from "../../src/dev-token.mjs";
import { admin, befriend, unfriend } from "./admin.mjs";
import { readDevVars, root } from "./dev-vars.mjs";

const lockDir = join(tmpdir(), "edge-presence-test-ports");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** @param {number} port */
export function portIsFree(port) {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** @param {number} pid */
function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Claims a free port in [first, first + count) with a lock file, so parallel
 * test files and other checkouts never share one; with `inspector`, port +
 * count must be free too.
 * @param {{ first: number, count: number }} range
 * @param {{ inspector?: boolean }} [options]
 */
export async function claimPort({ first, count }, { inspector = false } = {}) {
  mkdirSync(lockDir, { recursive: true });
  for (let port = first; port < first + count; port++) {
    const lock = join(lockDir, String(port));
    if (existsSync(lock)) {
      const owner = Number(readFileSync(lock, "utf8"));
      if (owner && pidAlive(owner)) continue;
      rmSync(lock, { force: true });
    }
    let fd;
    try {
      fd = openSync(lock, "wx");
    } catch {
      continue;
    }
    writeSync(fd, String(process.pid));
    closeSync(fd);
    if ((await portIsFree(port)) && (!inspector || (await portIsFree(port + count)))) return { port, release: () => rmSync(lock, { force: true }) };
    rmSync(lock, { force: true });
  }
  throw new Error(`no free port in ${first}-${first + count - 1}`);
}

/**
 * Starts `command` in its own process group (so that stopping it ends exactly
 * what it started), keeps its output (and appends it to `logFile`), and waits
 * until `readyUrl` answers 2xx (without one, it returns at once).
 * @param {import("./dev-server.d.mts").ProcessOptions} options
 * @returns {Promise<import("./dev-server.d.mts").RunningProcess>}
 */
export async function startProcess({ command, args, cwd = root, env = {}, logFile, readyUrl, readyTimeoutMs = 60_000 }) {
  const proc = spawn(command, args, { cwd, detached: true, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  const log = logFile ? createWriteStream(logFile, { flags: "a" }) : null;
  let output = "";
  const keep = (/** @type {Buffer} */ data) => {
    output += data;
    log?.write(data);
  };
  proc.stdout?.on("data", keep);
  proc.stderr?.on("data", keep);
  const exited = new Promise((resolve) => proc.once("exit", resolve));
  const gone = () => proc.exitCode !== null || proc.signalCode !== null;
  const group = (/** @type {NodeJS.Signals} */ signal) => {
    try {
      process.kill(-(/** @type {number} */ (proc.pid)), signal);
    } catch {
      // already gone
    }
  };
  const kill = async (/** @type {NodeJS.Signals} */ signal = "SIGTERM") => {
    if (!gone()) {
      group(signal);
      if ((await Promise.race([exited, sleep(10_000).then(() => "timeout")])) === "timeout") {
        group("SIGKILL");
        await exited;
      }
    }
    log?.end();
  };
  const running = { pid: /** @type {number} */ (proc.pid), output: () => output, kill };
  if (!readyUrl) return running;
  const deadline = Date.now() + readyTimeoutMs;
  while (Date.now() < deadline) {
    if (gone()) {
      log?.end();
      throw new Error(`${command} exited (${proc.exitCode ?? proc.signalCode}) before it was ready:\n${output}`);
    }
    try {
      if ((await fetch(readyUrl)).ok) return running;
    } catch {
      // not up yet
    }
    await sleep(150);
  }
  await kill("SIGKILL");
  throw new Error(`${readyUrl} not ready after ${readyTimeoutMs} ms:\n${output}`);
}

/**
 * @param {import("./dev-server.d.mts").DevServerOptions} [options]
 * @returns {Promise<import("./dev-server.d.mts").DevServer>}
 */
export async function startDevServer(options = {}) {
  const { vars: overrides = {}, configs = [], ports = { first: 8800, count: 10 }, persistRoot = tmpdir(), cwd = root, env = {}, logFile, readyTimeoutMs = 60_000 } = options;
  const { port, release } = await claimPort(ports, { inspector: true });
  const persistDir = mkdtempSync(join(persistRoot, "edge-presence-dev-"));
  const secrets = readDevVars();
  const vars = { JWT_SECRET: secrets.JWT_SECRET, ADMIN_TOKEN: secrets.ADMIN_TOKEN, DEV_MODE: "1", ...overrides };
  const url = `http://127.0.0.1:${port}`;
  /** @type {import("./dev-server.d.mts").RunningProcess | null} */
  let wrangler = null;
  let earlier = "";

  const start = async () => {
    const args = [join(root, "node_modules/wrangler/bin/wrangler.js"), "dev", ...configs.flatMap((c) => ["-c", c]), "--ip", "127.0.0.1", "--port", String(port)];
    args.push("--inspector-port", String(port + ports.count), "--persist-to", persistDir, "--show-interactive-dev-session=false");
    for (const [key, value] of Object.entries(vars)) args.push("--var", `${key}:${value}`);
    wrangler = await startProcess({
      command: process.execPath,
      args,
      cwd,
      // A private dev registry and no config watching: another checkout's `wrangler dev` of the same
      // worker name, or an edit of wrangler.toml, would otherwise reload this one and drop every socket.
      env: {
        WRANGLER_SEND_METRICS: "false",
        NO_COLOR: "1",
        CI: "1",
        WRANGLER_REGISTRY_PATH: join(persistDir, "registry"),
        WRANGLER_CI_DISABLE_CONFIG_WATCHING: "true",
        // wrangler's local observability sends every event through a tail stream into an object that writes
        // each span to SQLite: about 2/3 of the runtime's CPU per event (docs/BENCHMARKS.md, "CPU per event").
        // Production has nothing like it; tests and the benchmark measure the worker without it.
        X_LOCAL_OBSERVABILITY: "false",
        ...env,
      },
      logFile,
      readyUrl: `${url}/health`,
      readyTimeoutMs,
    });
  };

  /** @param {NodeJS.Signals} [signal] */
  const kill = async (signal = "SIGKILL") => {
    const running = wrangler;
    wrangler = null;
    if (!running) return;
    earlier += running.output();
    await running.kill(signal);
    // workerd is in the same process group; wait until the port is really free.
    for (let i = 0; i < 100 && !(await portIsFree(port)); i++) await sleep(100);
  };

  const target = { url, adminToken: vars.ADMIN_TOKEN };
  const ok = async (/** @type {Promise<Response>} */ pending, /** @type {string} */ what) => {
    const res = await pending;
    if (!res.ok) throw new Error(`${what}: ${res.status} ${await res.text()}`);
  };

  try {
    await start();
  } catch (error) {
    release();
    rmSync(persistDir, { recursive: true, force: true });
    throw error;
  }

  return {
    url,
    port,
    persistDir,
    vars,
    start,
    kill,
    async restart() {
      await kill();
      await start();
    },
    async stop() {
      await kill("SIGTERM");
      release();
      rmSync(persistDir, { recursive: true, force: true });
    },
    pid: () => wrangler?.pid,
    output: () => earlier + (wrangler?.output() ?? ""),
    token: (userId, opts = {}) => mintToken(userId, { secret: vars.JWT_SECRET, issuer: vars.JWT_ISSUER, audience: vars.JWT_AUDIENCE, ...opts }),
    admin: (method, path, body) => admin(target, method, path, body),
    befriend: (a, b) => ok(befriend(target, a, b), `befriend ${a} ${b}`),
    unfriend: (a, b) => ok(unfriend(target, a, b), `unfriend ${a} ${b}`),
  };
}
