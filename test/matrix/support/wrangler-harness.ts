/**
 * The `wrangler` target of MatrixHarness: `wrangler dev` (scripts/lib/dev-server.mjs)
 * runs the real worker and UserPresence objects, with a short TTL. Friendships
 * go through the admin API; a project device is a real WebSocket client
 * (`/v1/connect`, PositionHeartbeat frames, the SDK's 1 s keep-alive pings).
 */
import { startDevServer, type DevServer } from "../../../scripts/lib/dev-server.mjs";
import { toMatrixId } from "../../../src/matrix/ids";
import type { DeviceStatus } from "../../../src/presence/types";
import { Peer } from "../../e2e/harness";
import type { MatrixHarness } from "./harness";

export interface WranglerHarness extends MatrixHarness {
  readonly server: DevServer;
  /** A project WebSocket device of `userId` (connected on first use; reconnected after a restart). */
  peer(userId: string, deviceId: string): Promise<Peer>;
}

export async function startWranglerHarness(options: { ttlMs: number; serverName?: string; vars?: Record<string, string> }): Promise<WranglerHarness> {
  const serverName = options.serverName ?? "matrix.test";
  const server = await startDevServer({ vars: { PRESENCE_TTL_MS: String(options.ttlMs), SERVER_NAME: serverName, ...options.vars } });
  const peers = new Map<string, Peer>();

  const peer = async (userId: string, deviceId: string) => {
    const key = `${userId}/${deviceId}`;
    let p = peers.get(key);
    if (!p || p.closed) {
      p = await Peer.connect(server.url, userId, deviceId, "desktop");
      peers.set(key, p);
    }
    return p;
  };
  const dropPeers = () => {
    for (const p of peers.values()) p.terminate();
    peers.clear();
  };

  return {
    server,
    baseUrl: server.url,
    serverName,
    ttlMs: options.ttlMs,
    token: (userId, expiresIn) => server.token(userId, expiresIn === undefined ? {} : { expiresIn }),
    matrixId: (userId) => toMatrixId(userId, serverName)!,
    befriend: (a, b) => server.befriend(a, b),
    peer,
    heartbeat: async (userId: string, deviceId: string, status: DeviceStatus, statusText: string | null = null) => {
      const p = await peer(userId, deviceId);
      const ack = await p.heartbeat({ status, ...(statusText === null ? {} : { statusText }) });
      if (ack.type !== "heartbeat_ack") throw new Error(`heartbeat refused: ${JSON.stringify(ack)}`);
    },
    restart: async () => {
      dropPeers();
      await server.restart();
    },
    close: async () => {
      dropPeers();
      await server.stop();
    },
  };
}
