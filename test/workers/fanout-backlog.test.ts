/**
 * Issue #11: a bound on the fan-out's work. Per watcher, at most one call is in
 * flight and at most one newer state waits for it (latest wins): a burst of
 * changes to a slow watcher ends with the watcher seeing the last state after
 * two calls, and the object holding no more than one call and one state for it.
 */
import { runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import type { Watchers } from "../../durable/watchers";
import { until } from "../shared/util";
import { patchObject, restorePatches, stubOf, watchedPair } from "./helpers";

afterEach(restorePatches);

/** The calls of receivePresence that reach `owner`'s object: counted, and held until `release()`. */
function heldPushes(owner: string, answer?: unknown) {
  let calls = 0;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  patchObject(owner, "receivePresence", async (original) => {
    calls++;
    await released;
    return answer ?? original();
  });
  return { calls: () => calls, release };
}

function backlog(userId: string) {
  return runInDurableObject(stubOf(userId), (instance) => (instance as unknown as { watchers: Watchers }).watchers.backlog);
}

function publishedRealm(userId: string) {
  return runInDurableObject(stubOf(userId), async (instance) => (await (instance as unknown as { presenceFor: (r: string) => Promise<any> }).presenceFor(userId)).value.realm);
}

describe("one call in flight and one state waiting per watcher (issue #11)", () => {
  it("a burst of changes to a watcher whose calls are held: two calls, the last state seen, never more held", async () => {
    const { a, b, ca, watcher } = await watchedPair({ heartbeat: { realm: "r0" } });
    const pushes = heldPushes(b);
    const statuses = ["busy", "away", "online"] as const;
    const acks = Array.from({ length: 9 }, (_, i) => ca.heartbeat({ realm: `r${i + 1}`, status: statuses[i % 3] }));
    // Every change has been published, while the first call to b is still held.
    await until("the last change is published", async () => (await publishedRealm(a)) === "r9");
    expect(pushes.calls()).toBe(1);
    expect(await backlog(a)).toEqual({ inFlight: 1, pending: 1 });

    pushes.release();
    await Promise.all(acks);
    const last = await watcher.presenceOf(a, (p) => p.realm === "r9");
    expect(last.status).toBe("online");
    expect(pushes.calls()).toBe(2);
    // Coarser, never out of order: b saw the first change and then the last, nothing in between.
    const before = watcher.frames.filter((f) => f.type === "presence" && f.presence.userId === a).map((f) => f.presence.realm);
    expect([...before, last.realm]).toEqual(["r1", "r9"]);
    expect(await backlog(a)).toEqual({ inFlight: 0, pending: 0 });

    // The watcher is free again: the next change is one call, at once.
    await ca.heartbeat({ realm: "r10", status: "busy" });
    expect((await watcher.presenceOf(a, (p) => p.realm === "r10")).status).toBe("busy");
    expect(pushes.calls()).toBe(3);
    await ca.close();
  });

  it("a refused call drops the lease and the state that waited behind it is not sent", async () => {
    const { a, b, ca } = await watchedPair({ heartbeat: { realm: "r0" } });
    const pushes = heldPushes(b, { ok: false, code: "not_watching", message: "this user has no live client" });
    const acks = [1, 2, 3].map((i) => ca.heartbeat({ realm: `r${i}`, status: i % 2 ? "busy" : "away" }));
    await until("the last change is published", async () => (await publishedRealm(a)) === "r3");
    pushes.release();
    await Promise.all(acks);
    expect(pushes.calls()).toBe(1);
    expect(await backlog(a)).toEqual({ inFlight: 0, pending: 0 });
    const leases = await runInDurableObject(stubOf(a), (_, state) => state.storage.sql.exec(`SELECT watcher_id FROM watchers`).toArray());
    expect(leases).toEqual([]);
    await ca.close();
  });
});
