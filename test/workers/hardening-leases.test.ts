/**
 * Lease expiry (issue #12, a test the mutation check showed missing): a
 * watcher's lease that has run out is never called again, and its row is
 * gone after the next change. Leases expire lazily (durable/store.ts drops
 * expired rows when it picks the fan-out targets); the lease is aged in
 * storage instead of waiting WATCH_LEASE_MS.
 */
import { runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import type { UserStore } from "../../durable/store";
import { until } from "../shared/util";
import { befriend, Client, patchObject, restorePatches, stubOf, user } from "./helpers";

afterEach(restorePatches);

/** The `watchers` rows of `userId`'s object: who holds a lease, and until when. */
function leases(userId: string): Promise<Array<{ watcher: string; expiresAt: number }>> {
  return runInDurableObject(stubOf(userId), (_, state) =>
    state.storage.sql
      .exec(`SELECT watcher_id, lease_expires_at FROM watchers ORDER BY watcher_id`)
      .toArray()
      .map((r) => ({ watcher: String(r.watcher_id), expiresAt: Number(r.lease_expires_at) })),
  );
}

/** Counts receivePresence calls arriving at `userId`'s object. */
function countPresenceCallsTo(userId: string): { count: () => number } {
  let calls = 0;
  patchObject(userId, "receivePresence", (original) => {
    calls++;
    return original();
  });
  return { count: () => calls };
}

describe("lease expiry", () => {
  it("an expired lease gets no call on the next change, and its row is gone; a valid one still does", async () => {
    const a = user("a");
    const expired = user("expired");
    const valid = user("valid");
    expect((await befriend(a, expired)).status).toBe(200);
    expect((await befriend(a, valid)).status).toBe(200);
    const ca = await Client.connect(a);
    const ce = await Client.connect(expired);
    const cv = await Client.connect(valid);
    for (const watcher of [ce, cv]) expect(await watcher.request({ type: "SubscribeFriendshipPresenceUpdates" })).toMatchObject({ type: "subscribed" });
    await ca.heartbeat({ realm: "r1" });
    await ce.presenceOf(a, (p) => p.realm === "r1");
    await cv.presenceOf(a, (p) => p.realm === "r1");
    await until("both hold a lease on a", async () => (await leases(a)).length === 2);

    // The lease of `expired` runs out: aged in storage, as if WATCH_LEASE_MS had passed without a renewal.
    const now = Date.now();
    // Through the object's store, which keeps the leases in memory too.
    await runInDurableObject(stubOf(a), (instance) => (instance as unknown as { store: UserStore }).store.putWatcher(expired, now - 1));
    expect((await leases(a)).find((l) => l.watcher === expired)?.expiresAt).toBeLessThan(now);

    const toExpired = countPresenceCallsTo(expired);
    const toValid = countPresenceCallsTo(valid);
    ce.frames.length = 0;
    await ca.heartbeat({ realm: "r2", status: "busy" });
    expect((await cv.presenceOf(a, (p) => p.status === "busy", 1_000)).realm).toBe("r2");
    expect(toValid.count()).toBe(1);
    expect(toExpired.count()).toBe(0);
    await ce.expectNone((f) => f.type === "presence" && f.presence.userId === a);
    expect((await leases(a)).map((l) => l.watcher)).toEqual([valid]);
    await ca.close();
    await ce.close();
    await cv.close();
  });
});
