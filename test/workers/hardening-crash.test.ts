/**
 * Crash safety of the outbox (issue #12, item 1): the runtime is killed
 * between "row stored" and "first delivery answered". The row and the alarm
 * that retries it must already be durable, and the alarm must deliver it
 * within the retry bound (RPC_TIMEOUT_MS: the first retry is due when the
 * attempt in flight would have timed out).
 */
import { runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { until } from "../shared/util";
import { ADMIN, api, holdCalls, restorePatches, stubOf, user, worker } from "./helpers";
import { WORKER_TEST_BINDINGS } from "./bindings";

const RPC_TIMEOUT_MS = Number(WORKER_TEST_BINDINGS.RPC_TIMEOUT_MS);
afterEach(restorePatches);

/** Every receiveEdge addressed to `userId`'s object hangs (until the test ends), then answers a caller that is gone: that delivery is lost, nothing was recorded. */
function hangEdgesTo(userId: string): { reached: Promise<void> } {
  return holdCalls(userId, "receiveEdge", { answer: "ok" });
}

/** Kills `userId`'s object as a crashed host would: in-memory state and in-flight calls are gone, storage stays. */
async function crash(userId: string): Promise<void> {
  await runInDurableObject(stubOf(userId), (_, state) => {
    state.abort("simulated crash");
  }).catch(() => undefined);
}

async function alarmOf(userId: string): Promise<number | null> {
  return runInDurableObject(stubOf(userId), (_, state) => state.storage.getAlarm());
}

async function outboxRows(userId: string): Promise<number> {
  return runInDurableObject(stubOf(userId), (_, state) => Number(state.storage.sql.exec(`SELECT COUNT(*) AS n FROM outbox`).one().n));
}

describe("a crash between storing an outbox row and its first delivery", () => {
  it("a friend request: the alarm is already armed, and retries it to convergence", async () => {
    const a = user("a");
    const b = user("b");
    await api(b, "/v1/friends"); // b has used the service
    const { reached } = hangEdgesTo(b);
    const started = Date.now();
    const request = api(a, "/v1/friends/requests", { method: "POST", body: JSON.stringify({ userId: b, message: "hi" }) }).catch(() => null);
    await reached;
    await crash(a); // the host dies with the delivery in flight
    await request;
    restorePatches();

    expect(await outboxRows(a)).toBe(1);
    const alarm = await alarmOf(a);
    expect(alarm, "the outbox row has no alarm to retry it").not.toBeNull();
    expect(alarm!).toBeLessThanOrEqual(started + RPC_TIMEOUT_MS + 1_000);
    // The runtime fires the alarm by itself: converged within the retry bound.
    await until("b sees the request", async () => (await api(b, "/v1/friends")).body.incoming.some((r: { userId: string }) => r.userId === a), RPC_TIMEOUT_MS + 4_000);
    expect(Date.now() - started).toBeLessThan(RPC_TIMEOUT_MS + 4_000);
    expect((await api(a, "/v1/friends")).body.outgoing.map((r: { userId: string }) => r.userId)).toEqual([b]);
    await until("a's outbox is empty", async () => (await outboxRows(a)) === 0);
  });

  it("admin setFriendships: the alarm is already armed, and retries it to convergence", async () => {
    const a = user("a");
    const b = user("b");
    const { reached } = hangEdgesTo(b);
    const started = Date.now();
    const put = worker()
      .fetch("http://presence/v1/admin/friendships", {
        method: "PUT",
        headers: { Authorization: `Bearer ${ADMIN}`, "Content-Type": "application/json" },
        body: JSON.stringify({ a, b }),
      })
      .catch(() => null);
    await reached;
    await crash(a);
    await put;
    restorePatches();

    // a's side is stored (a's object was called first; b's object may or may not have been reached).
    const alarm = await alarmOf(a);
    expect(alarm, "the outbox row has no alarm to retry it").not.toBeNull();
    expect(alarm!).toBeLessThanOrEqual(started + RPC_TIMEOUT_MS + 1_000);
    await until("b sees the friendship", async () => (await api(b, "/v1/friends")).body.friends.includes(a), RPC_TIMEOUT_MS + 4_000);
    expect((await api(a, "/v1/friends")).body.friends).toEqual([b]);
    await until("a's outbox is empty", async () => (await outboxRows(a)) === 0);
  });
});
