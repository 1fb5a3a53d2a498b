/**
 * A Matrix client's liveness inside the real runtime: its sign of life is each
 * `/sync` poll, and it has no socket whose attachment could carry it, so the
 * object writes it down at half the TTL (`touchDeviceDurably`). An eviction
 * must not expire a client that is still polling, and one that stops polling
 * still goes offline after the TTL.
 */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { UserStore } from "../../durable/store";
import { MATRIX_DEVICE_ID } from "../../src/matrix/backend";
import { ageDevices, api, befriend, Client, stubOf, user } from "./helpers";

const TTL = 120_000;

async function poll(userId: string): Promise<void> {
  const { status } = await api(userId, "/_matrix/client/v3/sync?timeout=0&set_presence=online");
  expect(status).toBe(200);
}

async function matrixLastSeen(userId: string): Promise<number | null> {
  return runInDurableObject(stubOf(userId), (instance) => (instance as unknown as { store: UserStore }).store.device(MATRIX_DEVICE_ID)?.lastSeenAt ?? null);
}

async function pollingWatched(): Promise<{ a: string; watcher: Client }> {
  const [a, b] = [user("a"), user("b")];
  await befriend(a, b);
  const watcher = await Client.connect(b);
  await watcher.request({ type: "SubscribeFriendshipPresenceUpdates" });
  await poll(a);
  await watcher.presenceOf(a, (p) => p.status === "online");
  return { a, watcher };
}

describe("Matrix long-pollers across an eviction", () => {
  it("a poll after half a TTL is written down: the next instance keeps a client that is still polling", async () => {
    const { a, watcher } = await pollingWatched();
    await ageDevices(a, TTL / 2 + 1_000, MATRIX_DEVICE_ID);
    await poll(a);
    expect(await matrixLastSeen(a)).toBeGreaterThan(Date.now() - 5_000);
    await evictDurableObject(stubOf(a));
    // Another half TTL and more since that poll: a row left at the old time would be 2 s past the TTL.
    await ageDevices(a, TTL / 2 + 1_000, MATRIX_DEVICE_ID);
    await runDurableObjectAlarm(stubOf(a));
    expect(await matrixLastSeen(a)).not.toBeNull();
    expect((await watcher.request({ type: "GetPresence", userId: a })).presence).toMatchObject({ status: "online" });
    await watcher.expectNone((f) => f.type === "presence" && f.presence.userId === a && f.presence.status === "offline");
  });

  it("a client that stops polling goes offline after the TTL, eviction or not", async () => {
    const { a, watcher } = await pollingWatched();
    await evictDurableObject(stubOf(a));
    await ageDevices(a, TTL + 1_000, MATRIX_DEVICE_ID);
    await runDurableObjectAlarm(stubOf(a));
    await watcher.presenceOf(a, (p) => p.status === "offline");
    expect(await matrixLastSeen(a)).toBeNull();
  });
});
