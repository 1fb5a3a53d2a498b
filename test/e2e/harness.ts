/**
 * Starts the real worker with `wrangler dev` on a free port (production code
 * path; only the vars given here differ) and drives it with real `ws` clients.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT } from "jose";
import WebSocket from "ws";
import { FrameClient } from "../shared/frame-client";

export const SECRET = "e2e-secret-0123456789abcdefghijklmnop";
export const ADMIN = "e2e-admin-token";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export class Wrangler {
  private child: ChildProcess | null = null;
  private output = "";
  readonly persistDir: string;

  constructor(
    readonly port: number,
    private readonly vars: Record<string, string>,
    persistDir?: string,
  ) {
    this.persistDir = persistDir ?? mkdtempSync(join(tmpdir(), "edge-presence-e2e-"));
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const vars = Object.entries({ JWT_SECRET: SECRET, ADMIN_TOKEN: ADMIN, ...this.vars }).flatMap(([k, v]) => ["--var", `${k}:${v}`]);
    this.output = "";
    this.child = spawn(
      "node_modules/.bin/wrangler",
      ["dev", "--ip", "127.0.0.1", "--port", String(this.port), "--persist-to", this.persistDir, "--show-interactive-dev-session=false", ...vars],
      { env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"], detached: true },
    );
    this.child.stdout!.on("data", (d) => (this.output += d));
    this.child.stderr!.on("data", (d) => (this.output += d));
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) throw new Error(`wrangler dev exited:\n${this.output}`);
      try {
        const res = await fetch(`${this.url}/health`);
        if (res.ok) return;
      } catch {
        // not up yet
      }
      await sleep(250);
    }
    throw new Error(`wrangler dev did not become ready:\n${this.output}`);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    try {
      process.kill(-child.pid!, "SIGTERM");
    } catch {
      child.kill("SIGTERM");
    }
    await Promise.race([exited, sleep(10_000)]);
    if (child.exitCode === null) {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // gone
      }
    }
    this.child = null;
  }

  logs() {
    return this.output;
  }
}

export function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

export async function token(sub: string, exp: string | number = "1h", secret = SECRET): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject(sub).setIssuedAt().setExpirationTime(exp).sign(new TextEncoder().encode(secret));
}

export async function admin(baseUrl: string, method: string, path: string, body: unknown): Promise<Response> {
  return fetch(`${baseUrl}/v1/admin${path}`, {
    method,
    headers: { Authorization: `Bearer ${ADMIN}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

/** A `ws` client with a queue of parsed frames (waiting logic shared with the workerd tests' Client). */
export class Peer extends FrameClient {
  /** Keep "pong" frames in the queue (only for tests about pings). */
  wantPongs = false;
  /** Like the SDK, every peer sends a keep-alive ping (answered by the runtime) every second. */
  private keepAlive: ReturnType<typeof setInterval> | undefined;

  private constructor(readonly ws: WebSocket) {
    super();
    ws.on("open", () => {
      this.keepAlive = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send("ping"), 1_000);
    });
    ws.on("message", (data) => {
      const text = data.toString();
      if (text === "pong" && !this.wantPongs) return;
      this.received(text === "pong" ? text : JSON.parse(text));
    });
    ws.on("close", (code, reason) => {
      clearInterval(this.keepAlive);
      this.ended(code, reason.toString());
    });
  }

  static async connect(baseUrl: string, userId: string, device = "d1", kind = "desktop"): Promise<Peer> {
    const ws = new WebSocket(`${baseUrl.replace("http", "ws")}/v1/connect?device=${device}&kind=${kind}`, {
      headers: { Authorization: `Bearer ${await token(userId)}` },
    });
    const peer = new Peer(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
      ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    await peer.next((f) => f.type === "welcome");
    return peer;
  }

  send(message: unknown) {
    this.ws.send(typeof message === "string" ? message : JSON.stringify(message));
  }

  /** Stops reading and writing without closing: to the server this client has silently vanished. */
  freeze() {
    clearInterval(this.keepAlive);
    (this.ws as unknown as { _socket: { pause(): void } })._socket.pause();
  }

  close() {
    this.ws.close(1000, "bye");
  }

  /** Stops the automatic keep-alive pings (the test then pings by hand). */
  stopKeepAlive() {
    clearInterval(this.keepAlive);
  }

  terminate() {
    clearInterval(this.keepAlive);
    this.ws.terminate();
  }
}

/** Opens a socket that must be refused; resolves with the HTTP status and JSON body. */
export async function refusedUpgrade(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const ws = new WebSocket(url, { headers });
  return new Promise((resolve, reject) => {
    ws.once("open", () => reject(new Error("socket was accepted")));
    ws.once("unexpected-response", (_req, res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    ws.once("error", () => undefined);
  });
}
