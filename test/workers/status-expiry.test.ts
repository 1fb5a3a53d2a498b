/**
 * Issue #16: "clear after". A heartbeat may give its `busy`, `invisible` or
 * status text a deadline (`expiresInMs`, or `expiresAt` in ms since epoch);
 * when it passes, the user's object reverts it on its own — the alarm wakes
 * it — and friends see the change like any other. The deadline is written
 * with the device (a status change writes anyway), so it survives
 * hibernation and a restart; repeating the heartbeat writes nothing more.
 */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { meterTotals } from "../../durable/meter";
import { api, Client, stubOf, user, watchedPair } from "./helpers";
import { sleep } from "../shared/util";

const rowsDuring = async (during: () => Promise<unknown>) => {
  const before = meterTotals();
  await during();
  const after = meterTotals();
  return after.rowsWritten - before.rowsWritten + after.alarmsSet - before.alarmsSet;
};
const alarmOf = (userId: string) => runInDurableObject(stubOf(userId), (_, state) => state.storage.getAlarm());

/** Waits until `at` has passed, then runs the user's alarm (the deadline's wake-up). */
async function deadlinePasses(userId: string, at: number) {
  await sleep(Math.max(0, at - Date.now() + 20));
  await runDurableObjectAlarm(stubOf(userId));
}

describe("status expiry, 'clear after' (issue #16)", () => {
  it("busy with a text for a while: friends see it, then online with no text once the alarm finds the deadline passed", async () => {
    const { a, ca, watcher, online } = await watchedPair();
    const sent = Date.now();
    const ack = await ca.heartbeat({ realm: "lobby", status: "busy", statusText: "in a meeting", expiresInMs: 600 });
    expect(ack.expiresAt).toBeGreaterThanOrEqual(sent + 600);
    expect(ack.expiresAt).toBeLessThan(Date.now() + 600 + 1);
    const busy = await watcher.presenceOf(a, (p) => p.status === "busy");
    expect(busy).toMatchObject({ statusText: "in a meeting", seq: online.seq + 1 });
    // The one alarm is due at the deadline (the device's TTL is much later).
    expect(await alarmOf(a)).toBe(ack.expiresAt);

    await deadlinePasses(a, ack.expiresAt);
    const cleared = await watcher.presenceOf(a, (p) => p.status === "online");
    expect(cleared).toMatchObject({ statusText: null, realm: "lobby", seq: busy.seq + 1 });
    // The alarm is back on the TTL.
    expect((await alarmOf(a))!).toBeGreaterThan(Date.now() + 60_000);
    // The client keeps repeating its old heartbeat (no deadline named): it stays cleared, nothing is pushed.
    const repeat = await ca.heartbeat({ realm: "lobby", status: "busy", statusText: "in a meeting" });
    expect(repeat.presence).toMatchObject({ status: "online", statusText: null });
    expect(repeat.expiresAt).toBeUndefined();
    await watcher.expectNone((f) => f.type === "presence" && f.presence.userId === a, 100);
    // A new choice without a deadline is for good.
    await ca.heartbeat({ realm: "lobby", status: "busy", statusText: "focus" });
    expect(await watcher.presenceOf(a, (p) => p.status === "busy")).toMatchObject({ statusText: "focus" });
  });

  it("invisible until a time (expiresAt): friends see offline, then the user is back without doing anything", async () => {
    const { a, ca, watcher } = await watchedPair();
    const at = Date.now() + 500;
    const ack = await ca.heartbeat({ realm: "lobby", status: "invisible", expiresAt: at });
    expect(ack).toMatchObject({ expiresAt: at, presence: { status: "offline", invisible: true } });
    await watcher.presenceOf(a, (p) => p.status === "offline");
    await deadlinePasses(a, at);
    expect(await watcher.presenceOf(a, (p) => p.status === "online")).toMatchObject({ realm: "lobby" });
  });

  it("survives hibernation and a restart: the deadline is on disk and the alarm still clears it", async () => {
    for (const webSockets of ["hibernate", "close"] as const) {
      const { a, ca, watcher } = await watchedPair();
      const ack = await ca.heartbeat({ realm: "lobby", status: "busy", statusText: "dentist", expiresInMs: 800 });
      await watcher.presenceOf(a, (p) => p.status === "busy");
      await evictDurableObject(stubOf(a), { webSockets });
      const onDisk = await runInDurableObject(stubOf(a), (_, state) => state.storage.sql.exec(`SELECT expires_at FROM devices`).one().expires_at);
      expect(onDisk).toBe(ack.expiresAt);
      expect(await stubOf(a).lookup(a)).toMatchObject({ ok: true, value: { status: "busy", statusText: "dentist" } });
      await deadlinePasses(a, ack.expiresAt);
      expect(await watcher.presenceOf(a, (p) => p.status === "online")).toMatchObject({ statusText: null });
    }
  });

  it("rows: setting a deadline is a status change (≤ 2 rows), repeating it writes none, the expiry itself ≤ 2", async () => {
    const { a, ca, watcher } = await watchedPair();
    // "Clear after 30 min": the device row and the published presence; the alarm (due at the TTL, sooner) stays.
    expect(
      await rowsDuring(async () => {
        await ca.heartbeat({ realm: "lobby", status: "busy", statusText: "lunch", expiresInMs: 30 * 60_000 });
        await watcher.presenceOf(a, (p) => p.status === "busy");
      }),
      "setting a 30 min deadline",
    ).toBeLessThanOrEqual(2);
    // A deadline sooner than the alarm already set moves the alarm: one setAlarm more.
    let expiresAt = 0;
    expect(
      await rowsDuring(async () => {
        expiresAt = (await ca.heartbeat({ realm: "lobby", status: "busy", expiresInMs: 700 })).expiresAt;
        await watcher.presenceOf(a, (p) => p.status === "busy" && p.statusText === null);
      }),
    ).toBeLessThanOrEqual(3);
    // What the SDK does: repeat the deadline it was given.
    expect(
      await rowsDuring(async () => {
        for (let i = 0; i < 3; i++) await ca.heartbeat({ realm: "lobby", status: "busy", expiresAt });
      }),
      "repeating the deadline",
    ).toBe(0);
    expect(
      await rowsDuring(async () => {
        // The runtime's own alarm (running one early here would count a re-arm of its own).
        await watcher.presenceOf(a, (p) => p.status === "online", expiresAt - Date.now() + 3_000);
      }),
      "the expiry through the alarm",
    ).toBeLessThanOrEqual(2);
  });

  it("the HTTP heartbeat takes the same fields; a deadline already past means cleared; a status with nothing to clear keeps none", async () => {
    const a = user("a");
    const beat = (body: Record<string, unknown>) =>
      api(a, "/v1/heartbeat?device=h", { method: "POST", body: JSON.stringify({ realm: "r", position: { x: 0, y: 0, z: 0 }, ...body }) });
    expect((await beat({ status: "busy", statusText: "late", expiresAt: Date.now() - 1 })).body.presence).toMatchObject({ status: "online", statusText: null });
    const busy = await beat({ status: "busy", expiresInMs: 60_000 });
    expect(busy.body.presence).toMatchObject({ status: "busy" });
    expect(busy.body.expiresAt).toBeGreaterThan(Date.now()); // as in heartbeat_ack
    expect(busy.body.expiresAt).toBeLessThanOrEqual(Date.now() + 60_000);
    expect(await alarmOf(a)).toBeLessThanOrEqual(Date.now() + 60_000);
    // Online with no text has nothing to clear: the deadline is dropped (the alarm goes back to the TTL).
    expect((await beat({ status: "online", expiresInMs: 1_000 })).body).not.toHaveProperty("expiresAt");
    const device = await runInDurableObject(stubOf(a), (_, state) => state.storage.sql.exec(`SELECT expires_at FROM devices`).one().expires_at);
    expect(device).toBeNull();
  });

  it("refuses malformed deadlines with the documented errors", async () => {
    const a = user("a");
    const ca = await Client.connect(a);
    for (const bad of [{ expiresInMs: 0 }, { expiresInMs: 1.5 }, { expiresAt: -1 }, { expiresAt: "soon" }, { expiresAt: Date.now() + 1_000, expiresInMs: 1_000 }]) {
      expect(await ca.heartbeat({ status: "busy", ...bad })).toMatchObject({ type: "error", code: "invalid_message" });
    }
    const http = await api(a, "/v1/heartbeat", { method: "POST", body: JSON.stringify({ realm: "r", position: { x: 0, y: 0, z: 0 }, status: "busy", expiresInMs: -5 }) });
    expect(http).toMatchObject({ status: 400, body: { error: { code: "invalid_request" } } });
  });
});
