// Realm population in the SDK (issue #16): `realmCount` over HTTP and
// `subscribeRealm` (its own socket, batched counts), against a real `wrangler dev`.
import { describe, expect, it } from "vitest";
import type { ConnectOptions, PresenceClient, RealmCount } from "../../client/src/index.js";
import { sleep, until, user } from "../shared/util";
import { sdkServer } from "./harness";

const dev = sdkServer({ PRESENCE_TTL_MS: "6000", HEARTBEAT_INTERVAL_MS: "2000", REALM_BATCH_MS: "500" });

function open(userId: string, realm: string, options: Partial<ConnectOptions> = {}): PresenceClient {
  return dev.open(userId, { initial: { position: { x: 0, y: 0, z: 0 }, realm, status: "online" }, ...options });
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
