/**
 * Starts a real `wrangler dev` for a test file: a free port in 8800-8809 (its
 * inspector on port + 10, so everything stays in 8800-8819), a fresh
 * `--persist-to` directory, the dev secrets from .dev.vars(.example), and
 * optional var overrides. `restart()` kills the whole process group and starts
 * again on the same port and storage (a server crash as clients see it).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url).href);
const lockDir = join(tmpdir(), "edge-presence-test-ports");

export function devVars(): Record<string, string> {
  const file = existsSync(join(root, ".dev.vars")) ? join(root, ".dev.vars") : join(root, ".dev.vars.example");
  const vars: Record<string, string> = {};
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const match = /^\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (match) vars[match[1]!] = match[2]!.replace(/^"(.*)"$/, "$1");
  }
  return vars;
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Claims a port pair with a lock file so parallel test files never share one. */
async function claimPort(): Promise<{ port: number; release: () => void }> {
  mkdirSync(lockDir, { recursive: true });
  for (let port = 8800; port <= 8809; port++) {
    const lock = join(lockDir, String(port));
    if (existsSync(lock)) {
      const owner = Number(readFileSync(lock, "utf8"));
      if (owner && pidAlive(owner)) continue;
      rmSync(lock, { force: true });
    }
    let fd: number;
    try {
      fd = openSync(lock, "wx");
    } catch {
      continue;
    }
    writeSync(fd, String(process.pid));
    closeSync(fd);
    if ((await portIsFree(port)) && (await portIsFree(port + 10))) return { port, release: () => rmSync(lock, { force: true }) };
    rmSync(lock, { force: true });
  }
  throw new Error("no free port pair in 8800-8819");
}

export interface DevServer {
  readonly url: string;
  readonly port: number;
  /** Kill wrangler and workerd (the socket of every client drops), keep the storage. */
  kill(): Promise<void>;
  /** Start again on the same port and storage. */
  start(): Promise<void>;
  stop(): Promise<void>;
  token(userId: string): Promise<string>;
  befriend(a: string, b: string): Promise<void>;
  unfriend(a: string, b: string): Promise<void>;
  /** Everything wrangler printed, for failure messages. */
  output(): string;
}

export async function startDevServer(vars: Record<string, string> = {}): Promise<DevServer> {
  const { port, release } = await claimPort();
  const persist = mkdtempSync(join(tmpdir(), "edge-presence-persist-"));
  const secrets = devVars();
  const allVars = {
    JWT_SECRET: secrets.JWT_SECRET ?? "dev-secret-change-me-please-0123456789",
    ADMIN_TOKEN: secrets.ADMIN_TOKEN ?? "dev-admin-token",
    DEV_MODE: "1",
    ...vars,
  };
  const url = `http://127.0.0.1:${port}`;
  let child: ChildProcess | null = null;
  let log = "";

  const start = async () => {
    const args = [join(root, "node_modules/wrangler/bin/wrangler.js"), "dev", "--port", String(port), "--ip", "127.0.0.1"];
    args.push("--inspector-port", String(port + 10), "--persist-to", persist, "--show-interactive-dev-session=false");
    for (const [key, value] of Object.entries(allVars)) args.push("--var", `${key}:${value}`);
    const proc = spawn(process.execPath, args, {
      cwd: root,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", CI: "1" },
    });
    child = proc;
    proc.stdout!.on("data", (d) => (log += d));
    proc.stderr!.on("data", (d) => (log += d));
    const deadline = Date.now() + 45_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`wrangler dev exited (${proc.exitCode}):\n${log}`);
      try {
        const res = await fetch(`${url}/health`);
        if (res.ok) return;
      } catch {
        // not up yet
      }
      await new Promise((r) => setTimeout(r, 150));
    }
    throw new Error(`wrangler dev did not become ready on ${url}:\n${log}`);
  };

  const kill = async () => {
    const proc = child;
    child = null;
    if (!proc || proc.exitCode !== null || proc.pid === undefined) return;
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    try {
      process.kill(-proc.pid, "SIGKILL");
    } catch {
      // already gone
    }
    await exited;
    // workerd is in the same process group; wait until the port is really free.
    for (let i = 0; i < 100 && !(await portIsFree(port)); i++) await new Promise((r) => setTimeout(r, 100));
  };

  const admin = async (method: "PUT" | "DELETE", a: string, b: string) => {
    const res = await fetch(`${url}/v1/admin/friendships`, {
      method,
      headers: { Authorization: `Bearer ${allVars.ADMIN_TOKEN}`, "Content-Type": "application/json" },
      body: JSON.stringify({ a, b }),
    });
    if (!res.ok) throw new Error(`${method} friendships ${a}-${b}: ${res.status} ${await res.text()}`);
  };

  try {
    await start();
  } catch (error) {
    await kill();
    release();
    rmSync(persist, { recursive: true, force: true });
    throw error;
  }

  return {
    url,
    port,
    kill,
    start,
    async stop() {
      await kill();
      release();
      rmSync(persist, { recursive: true, force: true });
    },
    async token(userId: string) {
      const res = await fetch(`${url}/dev/token`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ userId }) });
      if (!res.ok) throw new Error(`POST /dev/token: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { token: string }).token;
    },
    befriend: (a, b) => admin("PUT", a, b),
    unfriend: (a, b) => admin("DELETE", a, b),
    output: () => log,
  };
}

let counter = 0;
/** A fresh user name per test. */
export function user(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${counter++}`;
}

/** Waits until `check` returns a truthy value (re-evaluated on every poll), or fails with `what`. */
export async function until<T>(what: string, check: () => T | Promise<T>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
