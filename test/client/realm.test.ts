// Realm population in the SDK (issue #16): `realmCount` over HTTP and
// `subscribeRealm` (its own socket, batched counts), against a real `wrangler dev`.
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type ConnectOptions, type PresenceClient, type RealmCount, type WebSocketConstructor } from "../../client/src/index.js";
import { startDevServer, type DevServer } from "../../scripts/lib/dev-server.mjs";
import { sleep, until, user } from "../shared/util";

let server: DevServer;
const clients: PresenceClient[] = [];

beforeAll(async () => {
  server = await startDevServer({ vars: { PRESENCE_TTL_MS: "6000", HEARTBEAT_INTERVAL_MS: "2000", REALM_BATCH_MS: "500" } });
});
afterAll(async () => {
  for (const client of clients) client.close();
  await server?.stop();
});

function open(userId: string, realm: string, options: Partial<ConnectOptions> = {}): PresenceClient {
  const client = connect({
    url: server.url,
    getToken: () => server.token(userId),
    device: `${userId}-d1`,
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    reconnect: { initialDelayMs: 100, maxDelayMs: 500 },
    initial: { position: { x: 0, y: 0, z: 0 }, realm, status: "online" },
    ...options,
  });
  clients.push(client);
  return client;
}

describe("SDK: realm counts against wrangler dev", () => {
  it("subscribeRealm gets the count at once and then each change; realmCount reads it; close() ends the subscription", async () => {
    const realm = user("harbour");
    const watcher = open(user("watcher"), user("elsewhere"));
    await watcher.ready();
    const counts: RealmCount[] = [];
    const subscription = watcher.subscribeRealm(realm, (count) => counts.push(count));
    await until("the count at once", () => counts.length > 0);
    expect(counts[0]).toMatchObject({ type: "realm_count", realm, count: 0 });
    expect(subscription.latest?.count).toBe(0);

    const a = open(user("a"), realm);
    const b = open(user("b"), realm);
    await Promise.all([a.ready(), b.ready()]);
    await until("two in the harbour", () => subscription.latest?.count === 2);
    expect(await watcher.realmCount(realm)).toMatchObject({ type: "realm_count", realm, count: 2 });

    // b walks off; a goes invisible (not counted).
    await b.heartbeat({ position: { x: 0, y: 0, z: 0 }, realm: user("open-sea") });
    await a.setStatus("invisible");
    await until("nobody visible in the harbour", () => subscription.latest?.count === 0);
    expect(counts.map((c) => c.count)).toContain(2);
    for (let i = 1; i < counts.length; i++) expect(counts[i]!.at).toBeGreaterThanOrEqual(counts[i - 1]!.at);

    // Closed: no more counts, however the realm changes.
    subscription.close();
    const seen = counts.length;
    await a.setStatus("online");
    await until("a counts again over HTTP", async () => (await watcher.realmCount(realm)).count === 1);
    await sleep(1_000);
    expect(counts.length).toBe(seen);
  });
});
