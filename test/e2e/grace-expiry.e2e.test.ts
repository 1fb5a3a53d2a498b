/**
 * Issue #16 against `wrangler dev` with real sockets: a TCP connection that
 * drops without a close frame (`terminate()`: the server sees 1006) keeps the
 * device shown for RECONNECT_GRACE_MS, so a reconnect shows the friend
 * nothing, while a real departure shows offline after the grace (well before
 * the TTL); and a status with "clear after" reverts on its own through the
 * alarm.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Peer, sleep, startDevServer, type DevServer } from "./harness";

const TTL_MS = 20_000;
const GRACE_MS = 2_000;
let server: DevServer;

beforeAll(async () => {
  server = await startDevServer({ vars: { PRESENCE_TTL_MS: String(TTL_MS), HEARTBEAT_INTERVAL_MS: "5000", RECONNECT_GRACE_MS: String(GRACE_MS) } });
});
afterAll(async () => {
  await server?.stop();
});

const about = (userId: string) => (f: any) => f.type === "presence" && f.presence.userId === userId;

describe("reconnect grace and status expiry (wrangler dev)", () => {
  it("a dropped connection that comes back within the grace: the friend sees nothing; one that does not: offline after the grace", async () => {
    expect((await server.admin("PUT", "/friendships", { a: "gina", b: "hank" })).status).toBe(200);
    const hank = await Peer.connect(server.url, "hank");
    await hank.request({ type: "SubscribeFriendshipPresenceUpdates" });
    const phone = await Peer.connect(server.url, "gina", "gina-phone", "mobile");
    await phone.heartbeat({ realm: "street" });
    const online = await hank.presenceOf("gina", (p) => p.status === "online");

    phone.terminate();
    await sleep(500);
    const back = await Peer.connect(server.url, "gina", "gina-phone", "mobile");
    await back.heartbeat({ realm: "street" });
    await sleep(GRACE_MS + 1_000);
    expect(hank.frames.filter(about("gina"))).toEqual([]);

    back.terminate();
    const dropped = Date.now();
    const offline = await hank.presenceOf("gina", (p) => p.status === "offline", TTL_MS);
    const after = Date.now() - dropped;
    expect(after).toBeGreaterThanOrEqual(GRACE_MS - 200);
    expect(after).toBeLessThan(TTL_MS / 2);
    expect(offline.seq).toBe(online.seq + 1);
    hank.close();
  });

  it("busy with a text, clear after 1.5 s: the friend sees it revert without the user doing anything", async () => {
    expect((await server.admin("PUT", "/friendships", { a: "ida", b: "jon" })).status).toBe(200);
    const jon = await Peer.connect(server.url, "jon");
    await jon.request({ type: "SubscribeFriendshipPresenceUpdates" });
    const ida = await Peer.connect(server.url, "ida");
    const ack = await ida.heartbeat({ realm: "office", status: "busy", statusText: "call", expiresInMs: 1_500 });
    expect(ack.expiresAt).toBeGreaterThan(Date.now());
    await jon.presenceOf("ida", (p) => p.status === "busy" && p.statusText === "call");
    const cleared = await jon.presenceOf("ida", (p) => p.status === "online", 5_000);
    expect(cleared.statusText).toBeNull();
    expect(Date.now()).toBeGreaterThanOrEqual(ack.expiresAt);
    ida.close();
    jon.close();
  });
});
