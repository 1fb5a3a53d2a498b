/**
 * `npm run test:runtimes [-- node bun deno]`: proves the service and the SDK on
 * Node, Bun and Deno (issue #15; README, "Runtimes"). For each runtime asked for
 * (default: all three):
 *
 *   suites  vitest run --config vitest.runtimes.config.ts, hosted by that runtime:
 *           the pure rules, the friendship state machine, their property tests, the
 *           SDK's units, the Hono app on the runtime's Web APIs (Node: only the
 *           test/runtimes files; its other suites run in test:unit and test:client)
 *   workers (Bun, Deno) two files of test:workers, the Workers Vitest integration
 *           (tests inside workerd) with vitest itself hosted by that runtime
 *   smoke   (Bun, Deno) the service hosted by that runtime — workerd runs the worker
 *           and the Durable Objects — and two SDK clients run by that runtime's own
 *           test runner (test/runtimes/smoke), importing the packed SDK by name
 *
 * Every step runs even if an earlier one failed; the exit code is 1 if any failed.
 * Bun and Deno come from node_modules (npm packages `bun` and `deno`) and may not
 * download anything: the npm registry is pointed at a closed port for the run.
 * Runs on the Node 24 of node_modules/.bin (`npm run` puts it first on PATH).
 */
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

type Runtime = "node" | "bun" | "deno";

const root = fileURLToPath(new URL("../..", import.meta.url).href);
const bin = (name: string) => join(root, "node_modules/.bin", name);
const NODE = process.execPath;
const BUN = bin("bun");
const BUNX = bin("bunx");
const DENO = bin("deno");
/** `deno run`/`deno test` flags: everything from node_modules, nothing fetched. */
const DENO_OFFLINE = ["--cached-only", "--node-modules-dir=manual"];
const smokeDir = join(root, "test/runtimes/smoke");
const SMOKE_SECRET = "runtimes-smoke-secret-0123456789abcdef";

const baseEnv: NodeJS.ProcessEnv = {
  ...process.env,
  NPM_CONFIG_REGISTRY: "http://127.0.0.1:9/",
  DENO_NO_UPDATE_CHECK: "1",
  DENO_NO_PROMPT: "1",
  DO_NOT_TRACK: "1",
  WRANGLER_SEND_METRICS: "false",
};

interface Result {
  runtime: Runtime | "sdk";
  step: string;
  ok: boolean;
  ms: number;
}
const results: Result[] = [];

function banner(text: string) {
  console.log(`\n━━ ${text}`);
}

/** The command `run` is waiting for, ended with us on a signal. */
let current: ChildProcess | null = null;

/** Runs a command with inherited output; resolves whether it exited 0. */
function run(command: string, args: string[], options: SpawnOptions = {}): Promise<boolean> {
  console.log(`$ ${[command.replace(root, ""), ...args].join(" ")}`);
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: root, stdio: "inherit", env: baseEnv, ...options });
    current = child;
    child.once("exit", () => {
      if (current === child) current = null;
    });
    child.once("error", (error) => {
      console.error(`${command}: ${error.message}`);
      resolve(false);
    });
    child.once("exit", (code, signal) => {
      if (code !== 0) console.error(`exited with ${signal ?? code}`);
      resolve(code === 0);
    });
  });
}

/** Runs a command and returns its stdout (throws on failure). */
function capture(command: string, args: string[], cwd = root): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ["ignore", "pipe", "inherit"], env: baseEnv });
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`${command} ${args.join(" ")} exited with ${code}`))));
  });
}

async function step(runtime: Result["runtime"], name: string, body: () => Promise<boolean>): Promise<boolean> {
  banner(`${runtime}: ${name}`);
  const started = Date.now();
  let ok = false;
  try {
    ok = await body();
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
  }
  results.push({ runtime, step: name, ok, ms: Date.now() - started });
  return ok;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

// ─── the service, hosted by a runtime ───────────────────────────────────────
// A small launcher of its own for now; it belongs in the shared `wrangler dev` launcher.

interface Host {
  readonly name: string;
  readonly url: string;
  stop(): Promise<void>;
  output(): string;
}

/** Hosts still running: stopped on Ctrl-C too (they run in process groups of their own). */
const running = new Set<Host>();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    current?.kill(signal);
    void Promise.all([...running].map((host) => host.stop())).finally(() => process.exit(130));
  });
}

/**
 * Starts `command` (its own process group, so workerd goes with it) and waits
 * until GET /health answers `readyStatus`.
 */
async function startHost(name: string, command: string, args: (port: number, persist: string) => Promise<string[]>, readyStatus = 200): Promise<Host> {
  const port = await freePort();
  const persist = mkdtempSync(join(tmpdir(), "edge-presence-runtimes-"));
  const url = `http://127.0.0.1:${port}`;
  const argv = await args(port, persist);
  console.log(`starting ${name}: ${[command.replace(root, ""), ...argv].join(" ")}`);
  const child = spawn(command, argv, { cwd: root, detached: true, stdio: ["ignore", "pipe", "pipe"], env: { ...baseEnv, NO_COLOR: "1", CI: "1" } });
  let log = "";
  child.stdout!.on("data", (d) => (log += d));
  child.stderr!.on("data", (d) => (log += d));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        // already gone
      }
      const killed = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5_000))]);
      if (!killed) console.error(`${name} did not stop on SIGTERM; killing its process group`);
    }
    if (child.pid !== undefined) {
      try {
        process.kill(-child.pid, "SIGKILL"); // anything left in the group (workerd)
      } catch {
        // the whole group is gone
      }
    }
    rmSync(persist, { recursive: true, force: true });
  };
  const host: Host = {
    name,
    url,
    stop: async () => {
      running.delete(host);
      await stop();
    },
    output: () => log,
  };
  running.add(host);

  const started = Date.now();
  const deadline = started + 90_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await host.stop();
      throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}) before it served:\n${log}`);
    }
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel();
      if (res.status === readyStatus) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await host.stop();
      throw new Error(`${name} did not answer ${readyStatus} on ${url}/health within 90 s:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  console.log(`${name} is up on ${url} after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return host;
}

const devVars = (persist: string) => ["--persist-to", persist, "--var", "DEV_MODE:1", "--var", `JWT_SECRET:${SMOKE_SECRET}`];
const wranglerDev = async (port: number, persist: string) => [
  "dev",
  "--ip",
  "127.0.0.1",
  "--port",
  String(port),
  "--inspector-port",
  String(await freePort()),
  "--show-interactive-dev-session=false",
  ...devVars(persist),
];
const miniflare = async (port: number, persist: string) => ["scripts/serve-miniflare.mjs", "--port", String(port), ...devVars(persist)];

/** Starts the hosts, runs `test` with their URLs, always stops them; prints a host's output when the test failed. */
async function withHosts(starts: (() => Promise<Host>)[], test: (hosts: Host[]) => Promise<boolean>): Promise<boolean> {
  const settled = await Promise.allSettled(starts.map((start) => start()));
  const hosts = settled.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  let ok = false;
  try {
    const failed = settled.flatMap((s) => (s.status === "rejected" ? [s.reason] : []));
    for (const error of failed) console.error(error instanceof Error ? error.message : error);
    ok = failed.length === 0 && (await test(hosts));
  } finally {
    await Promise.all(hosts.map((host) => host.stop()));
  }
  // After stopping: a host's last lines may only be flushed when it exits.
  if (!ok) for (const host of hosts) console.error(`\n── output of ${host.name} ──\n${host.output().split("\n").slice(-60).join("\n")}`);
  return ok;
}

// ─── steps ──────────────────────────────────────────────────────────────────

/** Builds client/dist, packs @edge-presence/client as npm would publish it, installs the tarball into test/runtimes/smoke. */
async function installPackedSdk(): Promise<boolean> {
  if (!(await run(NODE, [join(root, "node_modules/typescript/bin/tsc"), "-p", "client"]))) return false;
  const packDir = mkdtempSync(join(tmpdir(), "edge-presence-sdk-"));
  try {
    const [packed] = JSON.parse(await capture("npm", ["pack", "--json", "--pack-destination", packDir], join(root, "client"))) as { filename: string; files: { path: string }[] }[];
    if (!packed) throw new Error("npm pack printed nothing");
    console.log(
      `packed ${packed.filename}: ${packed.files
        .map((f) => f.path)
        .filter((p) => !p.endsWith(".map"))
        .join(", ")}`,
    );
    const target = join(smokeDir, "node_modules/@edge-presence/client");
    rmSync(join(smokeDir, "node_modules"), { recursive: true, force: true });
    mkdirSync(target, { recursive: true });
    return await run("tar", ["-xzf", join(packDir, packed.filename), "-C", target, "--strip-components=1"]);
  } finally {
    rmSync(packDir, { recursive: true, force: true });
  }
}

const suiteArgs = ["run", "--config", "vitest.runtimes.config.ts"];
/** A canary of the Workers Vitest integration hosted by Bun/Deno (the whole test:workers passes there too, but takes a minute). */
const workersCanaryArgs = ["run", "--config", "vitest.workers.config.ts", "test/workers/hibernation.test.ts", "test/workers/ttl.test.ts"];
const WORKERS_CANARY = "Workers Vitest integration (workerd): hibernation and TTL alarm tests";

async function node(): Promise<void> {
  await step("node", "vitest: test/runtimes (the other suites: test:unit, test:client)", () =>
    run(NODE, [join(root, "node_modules/vitest/vitest.mjs"), ...suiteArgs, "test/runtimes/"], { env: { ...baseEnv, EXPECTED_RUNTIME: "node" } }),
  );
}

async function bun(sdkReady: boolean): Promise<void> {
  await step("bun", "vitest: pure rules, friendship, property tests, SDK units, Hono app", () =>
    run(BUN, ["--bun", "--no-install", "vitest", ...suiteArgs], { env: { ...baseEnv, EXPECTED_RUNTIME: "bun" } }),
  );
  await step("bun", WORKERS_CANARY, () => run(BUN, ["--bun", "--no-install", "vitest", ...workersCanaryArgs]));
  await step("bun", "smoke: service hosted by Bun, two SDK clients on `bun test`", async () => {
    if (!sdkReady) throw new Error("the packed SDK is missing (see the sdk step)");
    return withHosts(
      [
        () => startHost("Miniflare API under Bun", BUN, async (p, d) => ["--no-install", ...(await miniflare(p, d))]),
        // Answers 503 by design (oven-sh/bun#39247); bun.test.ts checks that it still does.
        () => startHost("wrangler dev under Bun", BUNX, async (p, d) => ["--bun", "wrangler", ...(await wranglerDev(p, d))], 503),
      ],
      ([mf, wrangler]) =>
        run(BUN, ["--no-install", "test", "--timeout", "60000", "./test/runtimes/smoke/bun.test.ts"], {
          env: { ...baseEnv, SMOKE_MINIFLARE_URL: mf!.url, SMOKE_BUN_WRANGLER_URL: wrangler!.url },
        }),
    );
  });
}

async function deno(sdkReady: boolean): Promise<void> {
  await step("deno", "vitest: pure rules, friendship, property tests, SDK units, Hono app", () =>
    run(DENO, ["run", "-A", ...DENO_OFFLINE, "npm:vitest", ...suiteArgs], { env: { ...baseEnv, EXPECTED_RUNTIME: "deno" } }),
  );
  await step("deno", WORKERS_CANARY, () => run(DENO, ["run", "-A", ...DENO_OFFLINE, "npm:vitest", ...workersCanaryArgs]));
  await step("deno", "smoke: service hosted by Deno, two SDK clients on `deno test`", async () => {
    if (!sdkReady) throw new Error("the packed SDK is missing (see the sdk step)");
    return withHosts(
      [
        () => startHost("wrangler dev under Deno", DENO, async (p, d) => ["run", "-A", ...DENO_OFFLINE, "npm:wrangler", ...(await wranglerDev(p, d))]),
        () => startHost("Miniflare API under Deno", DENO, async (p, d) => ["run", "-A", ...DENO_OFFLINE, ...(await miniflare(p, d))]),
      ],
      ([wrangler, mf]) =>
        // `deno test` type-checks the test, the scenario and the SDK's .d.ts first.
        run(DENO, ["test", "-A", ...DENO_OFFLINE, "--config", join(smokeDir, "deno.json"), join(smokeDir, "deno.test.ts")], {
          env: { ...baseEnv, SMOKE_WRANGLER_URL: wrangler!.url, SMOKE_MINIFLARE_URL: mf!.url },
        }),
    );
  });
}

const all: Runtime[] = ["node", "bun", "deno"];
const asked = process.argv.slice(2);
const unknown = asked.filter((a) => !all.includes(a as Runtime));
if (unknown.length > 0) {
  console.error(`unknown runtime ${unknown.join(", ")}; choose from ${all.join(", ")}`);
  process.exit(2);
}
const runtimes = asked.length > 0 ? (asked as Runtime[]) : all;
const started = Date.now();

let sdkReady = false;
if (runtimes.includes("bun") || runtimes.includes("deno")) sdkReady = await step("sdk", "build, pack and install @edge-presence/client for the smoke tests", installPackedSdk);
if (runtimes.includes("node")) await node();
if (runtimes.includes("bun")) await bun(sdkReady);
if (runtimes.includes("deno")) await deno(sdkReady);

banner(`runtimes: ${((Date.now() - started) / 1000).toFixed(1)} s`);
for (const r of results) console.log(`  ${r.ok ? "✓" : "✗"} ${r.runtime.padEnd(5)} ${r.step} (${(r.ms / 1000).toFixed(1)} s)`);
process.exit(results.every((r) => r.ok) ? 0 : 1);
