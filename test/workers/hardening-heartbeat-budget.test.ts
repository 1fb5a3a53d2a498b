/**
 * Heartbeats within the call budget (issue #12, item 4): a status change is
 * published to every watching friend, and with many friends a flapping status
 * would cost watchers × changes calls. While the call budget is spent a
 * publish waits (coalesced: the latest state goes when the budget returns,
 * never lost, never refused), so the calls one user causes stay within
 * CALL_BUDGET_BURST + CALL_BUDGET_PER_SECOND × T + one fan-out, whatever the
 * number of friends. Test config: budget 50/s, burst 100 (test/workers/bindings.ts).
 */
import { runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { until } from "../shared/util";
import { WORKER_TEST_BINDINGS } from "./bindings";
import { befriend, Client, patchObject, restorePatches, stubOf, user } from "./helpers";

const RATE = Number(WORKER_TEST_BINDINGS.CALL_BUDGET_PER_SECOND);
const BURST = Number(WORKER_TEST_BINDINGS.CALL_BUDGET_BURST);
const STATUSES = ["away", "busy", "online"] as const;
afterEach(restorePatches);

describe("status changes with many watching friends stay within the call budget", () => {
  it("100 status changes sent at once to 50 watching friends: at most burst + rate × T + 50 calls, and friends end with the last state", async () => {
    const a = user("a");
    const friends = Array.from({ length: 50 }, () => user("f"));
    // Each friend initiates (the admin pair's first user is the one whose MAX_FRIENDS applies: 20 in this config).
    for (const f of friends) expect((await befriend(f, a)).status).toBe(200);
    const watchers: Client[] = [];
    for (const f of friends) {
      const client = await Client.connect(f);
      await client.request({ type: "SubscribeFriendshipPresenceUpdates" });
      watchers.push(client);
    }
    const leases = () => runInDurableObject(stubOf(a), (_, state) => Number(state.storage.sql.exec(`SELECT COUNT(*) AS n FROM watchers`).one().n));
    await until("every friend watches a", async () => (await leases()) === friends.length);
    const ca = await Client.connect(a);
    // The request bucket (40 + 10/s) would refuse most of 100 frames in a second: raised on a's object, so that
    // what limits the calls here is the call budget alone.
    await runInDurableObject(stubOf(a), (instance) => {
      const config = (instance as unknown as { config: { rateBurst: number; ratePerSecond: number } }).config;
      config.rateBurst = 500;
      config.ratePerSecond = 500;
    });
    await ca.request({ type: "GetOnlineFriends" });

    const targets = new Set(friends);
    let calls = 0;
    patchObject(
      (userId) => targets.has(userId),
      "receivePresence",
      (original) => {
        calls++;
        return original();
      },
    );
    const started = Date.now();
    const acks = await Promise.all(Array.from({ length: 100 }, (_, i) => ca.heartbeat({ status: STATUSES[i % 3], statusText: `n${i}` })));
    const sent = (Date.now() - started) / 1000;
    expect(acks.every((f) => f.type === "heartbeat_ack")).toBe(true);
    const last = { status: STATUSES[99 % 3], statusText: "n99" };
    const pushesTo = (w: Client) => w.frames.filter((f) => f.type === "presence" && f.presence.userId === a).map((f) => f.presence);
    await until("every friend shows the last state", () => watchers.every((w) => pushesTo(w).at(-1)?.statusText === last.statusText), 10_000);
    const converged = (Date.now() - started) / 1000;
    await new Promise((r) => setTimeout(r, 500)); // nothing older arrives after it
    const seconds = (Date.now() - started) / 1000;
    const bound = BURST + RATE * seconds + friends.length;
    console.log(
      `100 status changes (acknowledged in ${sent.toFixed(2)} s) to 50 watchers: ${calls} calls, every friend at the last state after ${converged.toFixed(2)} s; bound at ${seconds.toFixed(2)} s: ${bound.toFixed(0)} (unbounded: ${100 * friends.length})`,
    );
    expect(calls).toBeLessThanOrEqual(bound);
    for (const w of watchers) {
      const pushes = pushesTo(w);
      expect(pushes.at(-1)).toMatchObject(last);
      const seqs = pushes.map((p) => p.seq);
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    }
    for (const w of watchers) await w.close();
    await ca.close();
  }, 60_000);
});
