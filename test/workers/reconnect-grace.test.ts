/**
 * Issue #16: reconnect grace. A socket that drops without a close frame (1006,
 * a phone switching networks) keeps its device shown for RECONNECT_GRACE_MS
 * (10 s here, the default): a reconnect of the same device id within it shows
 * friends nothing at all; a real departure shows offline once the grace is
 * over, through the alarm; a clean close still goes offline at once.
 *
 * Inside workerd a test's client cannot drop its TCP connection, so the drop
 * is the runtime's own call of the object's handler with what it passes for
 * one (`webSocketClose(ws, 1006, "", false)`, or `webSocketError`), on the
 * server end of the real socket. test/e2e/grace.e2e.test.ts drops a real one.
 */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { meterTotals } from "../../durable/meter";
import type { UserPresence } from "../../durable/user-presence";
import { DEFAULT_CONFIG } from "../../src/presence/config";
import { ageDevices, Client, stubOf, watchedPair } from "./helpers";

/** A on a phone, with a status text, watched by B. */
const GRACE_PAIR = { device: "a-phone", kind: "mobile", heartbeat: { statusText: "on the train" } };

const GRACE = DEFAULT_CONFIG.reconnectGraceMs;

/** The runtime reports that `device`'s socket of `userId` dropped without a close frame. */
async function drop(userId: string, device: string, how: "1006" | "error" = "1006") {
  await runInDurableObject(stubOf(userId), async (instance: UserPresence, state) => {
    const [ws] = state.getWebSockets(device);
    expect(ws).toBeDefined();
    if (how === "error") await instance.webSocketError(ws!);
    else await instance.webSocketClose(ws!, 1006, "", false);
  });
}

const alarmOf = (userId: string) => runInDurableObject(stubOf(userId), (_, state) => state.storage.getAlarm());
const aboutA = (userId: string) => (f: any) => f.type === "presence" && f.presence.userId === userId;

describe("reconnect grace (RECONNECT_GRACE_MS, issue #16)", () => {
  it("a drop without a close frame and a reconnect of the same device within the grace: friends see nothing at all", async () => {
    const { a, ca, watcher, online } = await watchedPair(GRACE_PAIR);
    await drop(a, "a-phone");
    await watcher.expectNone(aboutA(a), 300);
    // The phone is back on another network: same device id, its usual heartbeat.
    const again = await Client.connect(a, { device: "a-phone", kind: "mobile" });
    const ack = await again.heartbeat({ realm: "lobby", statusText: "on the train" });
    expect(ack.presence).toMatchObject({ status: "online", statusText: "on the train", seq: online.seq });
    await watcher.expectNone(aboutA(a), 300);
    // The friend's view never moved, and the next real change is one step on.
    expect((await watcher.request({ type: "GetPresence", userId: a })).presence).toMatchObject({ status: "online", seq: online.seq });
    await again.heartbeat({ realm: "lobby", status: "busy" });
    expect((await watcher.presenceOf(a, (p) => p.status === "busy")).seq).toBe(online.seq + 1);
    expect(ca.closed).not.toBeNull();
  });

  it("does not hide a real departure: offline once the grace is over, through the alarm (webSocketError too)", async () => {
    for (const how of ["1006", "error"] as const) {
      const { a, watcher } = await watchedPair(GRACE_PAIR);
      await drop(a, "a-phone", how);
      // The alarm is due when the grace ends, not at the TTL.
      const alarm = await alarmOf(a);
      expect(alarm).not.toBeNull();
      expect(alarm!).toBeLessThanOrEqual(Date.now() + GRACE);
      await watcher.expectNone(aboutA(a), 200);
      // The grace passes (moved back here) and the alarm runs.
      await ageDevices(a, GRACE);
      await runDurableObjectAlarm(stubOf(a));
      const offline = await watcher.presenceOf(a, (p) => p.status === "offline");
      expect(offline).toMatchObject({ devices: [], statusText: null });
    }
  });

  it("the grace survives the object's restart (written where the device lives)", async () => {
    const { a, watcher } = await watchedPair(GRACE_PAIR);
    await drop(a, "a-phone");
    await evictDurableObject(stubOf(a));
    // A fresh instance still shows the device and still ends it with the grace, not the TTL.
    expect(await stubOf(a).lookup(a)).toMatchObject({ ok: true, value: { status: "online" } });
    expect((await alarmOf(a))!).toBeLessThanOrEqual(Date.now() + GRACE);
    await ageDevices(a, GRACE);
    await runDurableObjectAlarm(stubOf(a));
    await watcher.presenceOf(a, (p) => p.status === "offline");
  });

  it("a clean close still goes offline at once", async () => {
    const { a, ca, watcher } = await watchedPair(GRACE_PAIR);
    await ca.close(1000);
    await watcher.presenceOf(a, (p) => p.status === "offline", 2_000);
  });

  it("writes what a removal writes: at most two rows, none when the reconnect follows", async () => {
    const { a, watcher } = await watchedPair(GRACE_PAIR);
    const before = meterTotals();
    await drop(a, "a-phone");
    const mid = meterTotals();
    expect(mid.rowsWritten - before.rowsWritten + mid.alarmsSet - before.alarmsSet).toBeLessThanOrEqual(2);
    const again = await Client.connect(a, { device: "a-phone", kind: "mobile" });
    await again.heartbeat({ realm: "lobby", statusText: "on the train" });
    await watcher.expectNone(aboutA(a), 100);
  });
});
