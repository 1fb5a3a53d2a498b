/**
 * Issue #11: watch leases of 24 h (WATCH_LEASE_MS), renewed at half-life
 * (12 h). A long lease costs nothing in correctness: a watcher whose client is
 * gone answers the next push with a refusal and loses its lease there, so a
 * lease left behind (its release lost) costs one refused call, never a stream
 * of them. A watcher may ask for up to 24 h (or the configured lease if longer).
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_CONFIG } from "../../src/presence/config";
import type { UserStore } from "../../durable/store";
import type { Presence } from "../../src/presence/types";
import { until } from "../shared/util";
import { ageDevices, befriend, Client, countCalls, leaseOf, patchObject, restorePatches, stubOf, user } from "./helpers";

afterEach(restorePatches);

const HOUR = 3_600_000;
const TTL = 120_000;

/** b is subscribed and online; then a connects, subscribes and heartbeats `heartbeat`; b has seen a as `seen` says. */
async function bothOnline(
  a: string,
  b: string,
  heartbeat: Record<string, unknown> = {},
  seen: (p: Presence) => boolean = (p) => p.status === "online",
): Promise<{ ca: Client; cb: Client }> {
  const cb = await Client.connect(b);
  await cb.request({ type: "SubscribeFriendshipPresenceUpdates" });
  await cb.heartbeat();
  const ca = await Client.connect(a);
  await ca.request({ type: "SubscribeFriendshipPresenceUpdates" });
  await ca.heartbeat(heartbeat);
  await cb.presenceOf(a, seen);
  return { ca, cb };
}

describe("signing off releases leases without a call of its own (issue #11)", () => {
  it("the final offline push releases the lease on each friend that watched; only the others get `unwatch`", async () => {
    const [a, b, c] = [user("a"), user("b"), user("c")];
    await befriend(a, b);
    await befriend(a, c);
    const { ca, cb } = await bothOnline(a, b);
    // a watches b (online, watching a back) and c (offline: c's object is not watching anyone).
    await until("a holds leases on b and c", async () => (await leaseOf(b, a)) !== null && (await leaseOf(c, a)) !== null);
    const unwatchB = countCalls("unwatch", [b]);
    const unwatchC = countCalls("unwatch", [c]);
    await ca.close();
    await cb.presenceOf(a, (p) => p.status === "offline");
    await until("both leases released", async () => (await leaseOf(b, a)) === null && (await leaseOf(c, a)) === null);
    // b took the offline push, which released a's lease there; c was not told a's presence and got `unwatch`.
    expect(unwatchB.n).toBe(0);
    expect(unwatchC.n).toBe(1);
    // b's next change goes nowhere near a's object.
    const pushes = countCalls("receivePresence", [a]);
    await cb.heartbeat({ status: "busy" });
    await cb.heartbeat({ status: "away" });
    expect(pushes.n).toBe(0);
    await cb.close();
  });
});

describe("an offline that is not a sign-off releases nothing", () => {
  it("going invisible, or hiding from a friend, keeps the user's own leases: the friend's changes still reach them", async () => {
    const [a, b] = [user("a"), user("b")];
    await befriend(a, b);
    const { ca, cb } = await bothOnline(a, b);

    await ca.heartbeat({ status: "invisible" });
    await cb.presenceOf(a, (p) => p.status === "offline");
    await cb.heartbeat({ status: "busy" });
    await ca.presenceOf(b, (p) => p.status === "busy");
    expect(await leaseOf(b, a)).not.toBeNull();

    await ca.heartbeat({ status: "online" });
    await cb.presenceOf(a, (p) => p.status === "online");
    await ca.request({ type: "HidePresence", userId: b, hidden: true });
    await cb.presenceOf(a, (p) => p.status === "offline");
    await cb.heartbeat({ status: "away" });
    await ca.presenceOf(b, (p) => p.status === "away");
    expect(await leaseOf(b, a)).not.toBeNull();
    await ca.close();
    await cb.close();
  });
});

describe("watch leases of 24 h (issue #11)", () => {
  it("the default lease is 24 h, granted in full, and renewed at half-life (12 h)", async () => {
    expect(DEFAULT_CONFIG.watchLeaseMs).toBe(24 * HOUR);
    const a = user("a");
    const b = user("b");
    await befriend(a, b);
    const cb = await Client.connect(b);
    await cb.request({ type: "GetOnlineFriends" });
    const granted = Date.now();
    await until("b holds a lease on a", async () => (await leaseOf(a, b)) !== null);
    const lease = (await leaseOf(a, b))!;
    expect(lease).toBeGreaterThan(granted + 24 * HOUR - 10_000);
    expect(lease).toBeLessThanOrEqual(Date.now() + 24 * HOUR);
    const renewAt = await runInDurableObject(stubOf(b), (instance) => (instance as unknown as { store: UserStore }).store.get("watch_renew_at"));
    expect(renewAt).toBeGreaterThan(granted + 12 * HOUR - 10_000);
    expect(renewAt).toBeLessThanOrEqual(Date.now() + 12 * HOUR);
    await cb.close();
  });

  it("a watcher may ask for 24 h at most (or the configured lease if longer), and 1 s at least", async () => {
    const a = user("a");
    const b = user("b");
    await befriend(a, b);
    /** The lease granted for `askedMs`, as [least, most] it can be (the object's clock ran between the two reads). */
    const granted = async (askedMs: number): Promise<[number, number]> => {
      const before = Date.now();
      expect((await stubOf(a).watch(b, askedMs)).ok).toBe(true);
      const after = Date.now();
      const lease = (await leaseOf(a, b))!;
      return [lease - after, lease - before];
    };
    const twoDays = 48 * HOUR;
    const [least, most] = await granted(twoDays);
    expect(most).toBeGreaterThanOrEqual(24 * HOUR);
    expect(least).toBeLessThanOrEqual(24 * HOUR);
    expect((await granted(1))[0]).toBeLessThanOrEqual(1_000);
    expect((await granted(1))[1]).toBeGreaterThanOrEqual(1_000);
    // Configured above 24 h (as WATCH_LEASE_MS would): the configured lease is granted in full, and no more.
    await runInDurableObject(stubOf(a), (instance) => {
      (instance as unknown as { config: { watchLeaseMs: number } }).config.watchLeaseMs = twoDays;
    });
    expect((await granted(twoDays))[1]).toBeGreaterThanOrEqual(twoDays);
    expect((await granted(3 * twoDays))[0]).toBeLessThanOrEqual(twoDays);
  });

  it("a lease whose release was lost is dropped by its first refused push: one call, then none", async () => {
    const a = user("a");
    const b = user("b");
    await befriend(a, b);
    const { ca } = await bothOnline(a, b, { realm: "one" }, (p) => p.realm === "one");
    await until("b holds a lease on a", async () => (await leaseOf(a, b)) !== null);

    // b's client vanishes (silent drop) and b's release of its leases never arrives: neither its
    // `unwatch` nor the release its final offline push carries.
    patchObject(a, "unwatch", () => undefined);
    patchObject(a, "receivePresence", (_original, [from, presence], withArgs) => withArgs([from, presence, false]));
    await ageDevices(b, TTL + 1);
    await runDurableObjectAlarm(stubOf(b));
    expect(await stubOf(b).lookup(b)).toMatchObject({ ok: true, value: { status: "offline" } });
    expect(await leaseOf(a, b)).toBeGreaterThan(Date.now() + 23 * HOUR);

    // a's next change reaches b once, is refused (b has no live client), and the lease is gone.
    const pushes = countCalls("receivePresence", [b]);
    await ca.heartbeat({ realm: "two", status: "busy" });
    await until("the refused push dropped the lease", async () => (await leaseOf(a, b)) === null);
    expect(pushes.n).toBe(1);
    await ca.heartbeat({ realm: "three", status: "away" });
    await ca.heartbeat({ realm: "four", status: "online" });
    expect(pushes.n).toBe(1);
    await ca.close();
  });
});
