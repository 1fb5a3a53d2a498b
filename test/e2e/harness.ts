/**
 * End-to-end helpers: the worker runs in `wrangler dev` (scripts/lib/dev-server.mjs:
 * the production code path, only the vars differ) and is driven by real `ws` clients.
 */
import WebSocket from "ws";
import { readDevVars } from "../../scripts/lib/dev-vars.mjs";
import { mintToken, type MintOptions } from "../../src/dev-token.mjs";
import { FrameClient } from "../shared/frame-client";

export { startDevServer, type DevServer } from "../../scripts/lib/dev-server.mjs";
export { sleep } from "../shared/util";

/** The JWT_SECRET the dev server runs with. */
export const SECRET = readDevVars().JWT_SECRET!;

/** A user token signed with the dev server's secret (or `secret`). */
export function token(sub: string, options: Partial<MintOptions> = {}): Promise<string> {
  return mintToken(sub, { secret: SECRET, ...options });
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

  /** `query`: more connect-URL parameters (e.g. `{ friends: "a,b" }`). */
  static async connect(baseUrl: string, userId: string, device = "d1", kind = "desktop", query: Record<string, string> = {}): Promise<Peer> {
    const params = new URLSearchParams({ device, kind, ...query });
    const ws = new WebSocket(`${baseUrl.replace("http", "ws")}/v1/connect?${params}`, {
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
