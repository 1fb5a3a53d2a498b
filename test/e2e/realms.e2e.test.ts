/**
 * Realm population (issue #16) against `wrangler dev` with real sockets: a
 * live subscriber and the HTTP count follow joins, a realm move, a clean close
 * and a dropped connection (after the reconnect grace); and after a crash
 * (SIGKILL of wrangler, restart on the same storage) the counts converge —
 * members that come back stay counted, the ones that never do leave by their
 * user object's persisted TTL alarm or, at the latest, by their shard lease
 * (members without any user object leave by the lease alone).
 */
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROTOCOL_VERSION, TOKEN_PROTOCOL_PREFIX } from "../../src/protocol";
import { user } from "../shared/util";
import { Peer, sleep, startDevServer, token, type DevServer } from "./harness";

const TTL_MS = 6_000;
const GRACE_MS = 1_000;
const LEASE_MS = 8_000;
const BATCH_MS = 1_000;
let server: DevServer;
const peers: Peer[] = [];

beforeAll(async () => {
  server = await startDevServer({
    vars: {
      PRESENCE_TTL_MS: String(TTL_MS),
      HEARTBEAT_INTERVAL_MS: "2000",
      RECONNECT_GRACE_MS: String(GRACE_MS),
      REALM_LEASE_MS: String(LEASE_MS),
      REALM_BATCH_MS: String(BATCH_MS),
      REALM_SHARDS: "4",
    },
  });
});
afterAll(async () => {
  for (const peer of peers) peer.terminate();
  await server?.stop();
});

async function member(userId: string, realm: string, device = "d1"): Promise<Peer> {
  const peer = await Peer.connect(server.url, userId, device);
  peers.push(peer);
  await peer.heartbeat({ realm });
  return peer;
}

async function countOf(realm: string): Promise<number> {
  const res = await fetch(`${server.url}/v1/realms/${encodeURIComponent(realm)}`, { headers: { Authorization: `Bearer ${await token(user("reader"))}` } });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { realm: string; count: number; at: number };
  expect(body.realm).toBe(realm);
  return body.count;
}

/** Polls the HTTP count until it is `expected` (it is batched, and remembered per isolate for REALM_BATCH_MS). */
async function converges(realm: string, expected: number, timeoutMs = 8_000): Promise<number> {
  const started = Date.now();
  let last = -1;
  while (Date.now() - started < timeoutMs) {
    last = await countOf(realm);
    if (last === expected) return Date.now() - started;
    await sleep(250);
  }
  expect(last, `count of ${realm} after ${timeoutMs} ms`).toBe(expected);
  return Date.now() - started;
}

/** A raw subscriber on `GET /v1/realms/:realm/live`, as the SDK opens it (token in Sec-WebSocket-Protocol). */
async function subscribe(realm: string) {
  const ws = new WebSocket(`${server.url.replace("http", "ws")}/v1/realms/${encodeURIComponent(realm)}/live`, [
    PROTOCOL_VERSION,
    `${TOKEN_PROTOCOL_PREFIX}${await token(user("sub"))}`,
  ]);
  const frames: Array<{ type: string; realm: string; count: number; at: number; receivedAt: number }> = [];
  ws.on("message", (data) => {
    const text = data.toString();
    if (text !== "pong") frames.push({ ...JSON.parse(text), receivedAt: Date.now() });
  });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
    ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
  const latest = () => frames.at(-1)?.count;
  const reaches = async (count: number, timeoutMs = 8_000) => {
    const deadline = Date.now() + timeoutMs;
    while (latest() !== count && Date.now() < deadline) await sleep(50);
    expect(latest(), `live count of ${realm}`).toBe(count);
  };
  return { ws, frames, latest, reaches, protocol: ws.protocol };
}

describe("realm population (wrangler dev)", () => {
  it("joins, a move, a clean close and a dropped connection: the live count and the HTTP count converge; pushes are batched", async () => {
    const [forest, lake] = [user("forest"), user("lake")];
    const live = await subscribe(forest);
    expect(live.protocol).toBe(PROTOCOL_VERSION);
    await live.reaches(0, 3_000); // the count at once, before anyone is there

    const [a, b, c, d] = [user("a"), user("b"), user("c"), user("d")];
    await member(a, forest);
    const bPeer = await member(b, forest);
    const cPeer = await member(c, forest);
    const dPeer = await member(d, forest);
    await live.reaches(4);
    await converges(forest, 4);

    // b walks to the lake: leaves one realm, joins the other.
    await bPeer.heartbeat({ realm: lake });
    await live.reaches(3);
    await converges(lake, 1);

    // c says goodbye (close frame): it leaves at once.
    cPeer.close();
    await live.reaches(2);

    // d's connection drops without a close frame: shown through the grace, then gone (well before the TTL).
    const dropped = Date.now();
    dPeer.terminate();
    await live.reaches(1, TTL_MS + 4_000);
    const after = Date.now() - dropped;
    expect(after).toBeGreaterThanOrEqual(GRACE_MS - 200);
    expect(after).toBeLessThan(TTL_MS);
    await converges(forest, 1);

    // Batched: after the count at once, the counter never pushed two counts within one interval.
    const pushes = live.frames.slice(1);
    expect(pushes.length).toBeGreaterThanOrEqual(4);
    for (let i = 1; i < pushes.length; i++) expect(pushes[i]!.at - pushes[i - 1]!.at).toBeGreaterThanOrEqual(BATCH_MS);
    // Each frame is the documented shape.
    for (const frame of live.frames) expect(Object.keys(frame).sort()).toEqual(["at", "count", "realm", "receivedAt", "type"]);
    live.ws.close();
  });

  it("invisible and shareLocation-none members are not counted, and count again when they show themselves", async () => {
    const realm = user("secret");
    const [e, f] = [user("e"), user("f")];
    const ePeer = await member(e, realm);
    const fPeer = await member(f, realm);
    await converges(realm, 2);
    await ePeer.heartbeat({ realm, status: "invisible" });
    expect((await fPeer.request({ type: "SetPrivacy", shareLocation: "none" })).type).toBe("friends_list");
    await converges(realm, 0);
    await ePeer.heartbeat({ realm, status: "online" });
    await converges(realm, 1);
    ePeer.close();
    fPeer.close();
  });

  it("after a crash (SIGKILL, restart on the same storage) the counts converge: who comes back stays counted, who does not leaves", async () => {
    const [plaza, dock] = [user("plaza"), user("dock")];
    const stay = user("stay");
    const gone = [user("gone"), user("gone"), user("gone")];
    const before = [await member(stay, plaza, "stay-phone"), ...(await Promise.all(gone.map((g) => member(g, plaza))))];
    const docked = await member(user("gone"), dock);
    // Five members with no user object behind them (the benchmark's route): only their lease can take them out.
    const simulated = await server.admin("POST", `/realms/${encodeURIComponent(plaza)}/simulate`, { action: "join", prefix: user("sim"), from: 0, count: 5, leaseMs: LEASE_MS });
    expect(simulated.status).toBe(200);
    await converges(plaza, 9);
    await converges(dock, 1);

    await server.kill("SIGKILL");
    for (const peer of [...before, docked]) peer.terminate();
    await server.start();
    const restarted = Date.now();

    // The one that comes back reconnects with the same device id and heartbeats as before.
    const back = await member(stay, plaza, "stay-phone");
    const live = await subscribe(plaza);
    // The others never do: their user objects' TTL alarms (persisted) take them out,
    // and their shard leases bound it if anything was lost in the crash.
    await converges(plaza, 1, TTL_MS + LEASE_MS + 6_000);
    await converges(dock, 0, TTL_MS + LEASE_MS + 6_000);
    await live.reaches(1);
    expect(Date.now() - restarted).toBeLessThan(TTL_MS + LEASE_MS + 10_000);

    // And it stays counted beyond a whole lease: the user object renews it after the restart.
    await sleep(LEASE_MS + 2_000);
    expect(await countOf(plaza)).toBe(1);
    expect(live.latest()).toBe(1);
    back.close();
    await live.reaches(0);
    live.ws.close();
  }, 90_000);
});
