// The SDK against a real `wrangler dev` (the one launcher, scripts/lib/dev-server.mjs): one server per test
// file, started before its tests and stopped after them with every client the file opened.
import WebSocket from "ws";
import { afterAll, beforeAll } from "vitest";
import { connect, type ConnectOptions, type PresenceClient, type WebSocketConstructor } from "../../client/src/index.js";
import { startDevServer, type DevServer } from "../../scripts/lib/dev-server.mjs";
import { until, user } from "../shared/util";

export interface SdkServer {
  /** The running server (set before the first test). */
  readonly server: DevServer;
  /** A connected client for `userId` (device `<userId>-d1`, desktop, in "lobby"), closed after the file. */
  open(userId: string, options?: Partial<ConnectOptions>): PresenceClient;
  /** Two new friends, alice and bob, each with an open client; alice already sees bob online. */
  friendsOnline(): Promise<{ a: PresenceClient; b: PresenceClient; alice: string; bob: string }>;
}

export function sdkServer(vars: Record<string, string>): SdkServer {
  let server: DevServer | undefined;
  const clients: PresenceClient[] = [];
  beforeAll(async () => {
    server = await startDevServer({ vars });
  });
  afterAll(async () => {
    for (const client of clients) client.close();
    await server?.stop();
  });
  const running = (): DevServer => {
    if (!server) throw new Error("the dev server is not started yet (use it inside a test)");
    return server;
  };
  return {
    get server() {
      return running();
    },
    open(userId, options = {}) {
      const client = connect({
        url: running().url,
        getToken: () => running().token(userId),
        device: `${userId}-d1`,
        kind: "desktop",
        WebSocket: WebSocket as unknown as WebSocketConstructor,
        reconnect: { initialDelayMs: 100, maxDelayMs: 500 },
        initial: { position: { x: 1, y: 2, z: 3 }, realm: "lobby", status: "online" },
        ...options,
      });
      clients.push(client);
      return client;
    },
    async friendsOnline() {
      const [alice, bob] = [user("alice"), user("bob")];
      await running().befriend(alice, bob);
      const a = this.open(alice);
      const b = this.open(bob);
      await Promise.all([a.ready(), b.ready()]);
      await until("alice sees bob online", () => a.friend(bob)?.status === "online");
      return { a, b, alice, bob };
    },
  };
}
