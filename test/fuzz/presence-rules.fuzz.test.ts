/**
 * Properties of the presence rules over generated device sets, clocks and
 * request sequences: aggregation and change classification
 * (src/presence/aggregate.ts) and the timer/limit arithmetic
 * (src/presence/timers.ts). Each property is a sentence of docs/PROTOCOL.md or
 * docs/DESIGN-NOTES.md.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { aggregate, classifyChange, isLive } from "../../src/presence/aggregate";
import { alarmTime, backoffMs, deviceDeadline, nextDeadline, positionPublishAt, takeToken, type Bucket } from "../../src/presence/timers";
import type { DeviceState, Presence } from "../../src/presence/types";
import { fuzzRuns, position } from "./arbitraries";

const RUNS = fuzzRuns(500);
const TTL = 120_000;
const NOW = 1_800_000_000_000;
const RANK = { online: 3, busy: 2, away: 1 } as const;

const deviceArb = (id: string) =>
  fc
    .record({
      kind: fc.constantFrom("desktop", "mobile", "web" as const),
      transport: fc.constantFrom("ws", "http" as const),
      status: fc.constantFrom(null, "online", "away", "busy", "invisible" as const),
      statusText: fc.option(fc.string({ maxLength: 5 }), { nil: null }),
      realm: fc.constantFrom("lobby", "forest", "castle"),
      position,
      // From well inside the TTL to well past it, with the exact boundary over-represented.
      age: fc.oneof(fc.integer({ min: 0, max: 2 * TTL }), fc.constantFrom(0, TTL - 1, TTL, TTL + 1)),
      heartbeatLag: fc.integer({ min: 0, max: 5_000 }),
    })
    .map(
      ({ age, heartbeatLag, status, position, realm, ...rest }): DeviceState => ({
        deviceId: id,
        ...rest,
        status,
        realm: status === null ? null : realm,
        position: status === null ? null : position,
        lastSeenAt: NOW - age,
        lastHeartbeatAt: status === null ? null : NOW - age - heartbeatLag,
      }),
    );

const devicesArb = fc
  .uniqueArray(fc.constantFrom("pc", "phone", "tab", "web-1", "web-2", "tv"), { maxLength: 6 })
  .chain((ids) => (ids.length === 0 ? fc.constant([] as DeviceState[]) : fc.tuple(...ids.map(deviceArb))));
const lastSeenArb = fc.option(fc.integer({ min: NOW - 10 * TTL, max: NOW }), { nil: null });

const OFFLINE_FIELDS = { status: "offline", realm: null, position: null, statusText: null, devices: [] };

describe("aggregation invariants", () => {
  it(`status is offline iff no visible device; invisible never leaks anything (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(devicesArb, lastSeenArb, (devices, lastSeen) => {
        const { view, hasLiveDevice, invisible } = aggregate("u", devices, NOW, TTL, lastSeen);
        const live = devices.filter((d) => d.lastSeenAt + TTL > NOW);
        const anyInvisible = live.some((d) => d.status === "invisible");
        const visible = anyInvisible ? [] : live.filter((d) => d.status !== null && d.lastHeartbeatAt !== null);

        expect(hasLiveDevice).toBe(live.length > 0);
        expect(invisible).toBe(anyInvisible);
        expect(view.status === "offline").toBe(visible.length === 0);
        if (visible.length === 0) {
          // Exactly the shape of a user with no device at all: nothing to tell invisible from offline.
          expect(view).toEqual(aggregate("u", [], NOW, TTL, lastSeen).view);
          expect(view).toMatchObject(OFFLINE_FIELDS);
          expect(view.lastActiveAt).toBe(lastSeen);
        } else {
          expect(view.status).toBe(visible.map((d) => d.status as keyof typeof RANK).reduce((a, b) => (RANK[b] > RANK[a] ? b : a)));
          expect(view.devices.map((d) => d.deviceId)).toEqual(visible.map((d) => d.deviceId).sort((a, b) => a.localeCompare(b)));
          for (const d of view.devices) expect(d.status).toBe(visible.find((v) => v.deviceId === d.deviceId)!.status);
          const latest = Math.max(...visible.map((d) => d.lastHeartbeatAt!));
          expect(view.lastActiveAt).toBe(latest);
          // Realm, position and text come from a device that heartbeated last.
          const candidates = visible.filter((d) => d.lastHeartbeatAt === latest);
          expect(candidates.some((d) => d.realm === view.realm && d.statusText === view.statusText && d.position === view.position)).toBe(true);
        }
        // Nothing of an invisible or not-yet-shown device ever reaches friends.
        const hidden = new Set(devices.filter((d) => !visible.includes(d)).map((d) => d.deviceId));
        expect(view.devices.some((d) => hidden.has(d.deviceId))).toBe(false);
      }),
      { numRuns: RUNS },
    );
  });

  it(`expired devices never influence what friends see (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(devicesArb, lastSeenArb, (devices, lastSeen) => {
        const liveOnly = devices.filter((d) => isLive(d, NOW, TTL));
        expect(aggregate("u", devices, NOW, TTL, lastSeen)).toEqual(aggregate("u", liveOnly, NOW, TTL, lastSeen));
      }),
      { numRuns: RUNS },
    );
  });

  it(`the device order does not matter when heartbeat times differ (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(
        devicesArb.filter((ds) => new Set(ds.map((d) => d.lastHeartbeatAt)).size === ds.length),
        fc.infiniteStream(fc.nat()),
        (devices, randoms) => {
          const it = randoms[Symbol.iterator]();
          const shuffled = [...devices].sort(() => (it.next().value % 3) - 1);
          expect(aggregate("u", shuffled, NOW, TTL, null)).toEqual(aggregate("u", devices, NOW, TTL, null));
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("ties in heartbeat time: realm/position follow the row order (documented, see RELIABILITY.md)", () => {
    const base = { kind: "desktop", transport: "ws", status: "online", statusText: null, lastSeenAt: NOW, lastHeartbeatAt: NOW } as const;
    const a: DeviceState = { ...base, deviceId: "a", realm: "ra", position: { x: 1, y: 0, z: 0 } };
    const b: DeviceState = { ...base, deviceId: "b", realm: "rb", position: { x: 2, y: 0, z: 0 } };
    // Both answers are allowed by the protocol ("the device that heartbeated last"); the row order decides.
    expect(aggregate("u", [a, b], NOW, TTL, null).view.realm).toBe("ra");
    expect(aggregate("u", [b, a], NOW, TTL, null).view.realm).toBe("rb");
  });

  it(`the TTL boundary is exclusive: live until lastSeen + TTL, offline at it (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: NOW }), fc.integer({ min: 1, max: 10 * TTL }), fc.integer({ min: -5, max: 5 }), (seen, ttl, delta) => {
        const device = { lastSeenAt: seen } as DeviceState;
        const now = deviceDeadline(device, ttl) + delta;
        expect(isLive(device, now, ttl)).toBe(now < seen + ttl);
        expect(isLive(device, deviceDeadline(device, ttl), ttl)).toBe(false);
        expect(isLive(device, deviceDeadline(device, ttl) - 1, ttl)).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });
});

describe("change classification", () => {
  const viewArb = devicesArb.chain((devices) => lastSeenArb.map((lastSeen) => aggregate("u", devices, NOW, TTL, lastSeen).view));

  it(`a view compared with itself, or with only times changed, is no change (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(viewArb, fc.integer({ min: 1, max: 100_000 }), (view, dt) => {
        expect(classifyChange(view, view)).toBe("none");
        expect(classifyChange(null, view)).toBe("significant");
        const later = { ...view, lastActiveAt: (view.lastActiveAt ?? 0) + dt, devices: view.devices.map((d) => ({ ...d, lastActiveAt: (d.lastActiveAt ?? 0) + dt })) };
        expect(classifyChange(view, later)).toBe("none");
      }),
      { numRuns: RUNS },
    );
  });

  it(`status, realm, text or device changes are significant; position alone is "position" (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(viewArb, viewArb, (a, b) => {
        const change = classifyChange(a, b);
        const same = (x: Omit<Presence, "seq">, y: Omit<Presence, "seq">) =>
          x.status === y.status &&
          x.realm === y.realm &&
          x.statusText === y.statusText &&
          JSON.stringify(x.devices.map((d) => [d.deviceId, d.kind, d.status])) === JSON.stringify(y.devices.map((d) => [d.deviceId, d.kind, d.status]));
        if (!same(a, b)) expect(change).toBe("significant");
        else expect(change).toBe(JSON.stringify(a.position) === JSON.stringify(b.position) ? "none" : "position");
        // An offline (or invisible) user never produces a position-only push.
        if (a.status === "offline" && b.status === "offline") expect(change).toBe("none");
      }),
      { numRuns: RUNS },
    );
  });
});

describe("timers and limits", () => {
  it(`the alarm is always in the future and is the earliest deadline (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: NOW - TTL, max: NOW + TTL }), fc.constantFrom(null, undefined, Number.NaN, Infinity))),
        fc.integer({ min: NOW - TTL, max: NOW + TTL }),
        (deadlines, now) => {
          const finite = deadlines.filter((d): d is number => typeof d === "number" && Number.isFinite(d));
          const next = nextDeadline(deadlines);
          expect(next).toBe(finite.length ? Math.min(...finite) : null);
          if (next !== null) {
            const at = alarmTime(next, now);
            expect(at).toBeGreaterThanOrEqual(now + 1);
            if (next > now) expect(at).toBe(next);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it(`outbox backoff stays within [base/2, cap) and grows (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100 }), fc.double({ min: 0, max: 0.999999, noNaN: true }), (attempt, r) => {
        const delay = backoffMs(attempt, 1_000, 300_000, () => r);
        expect(delay).toBeGreaterThanOrEqual(500);
        expect(delay).toBeLessThanOrEqual(300_000);
        expect(backoffMs(attempt + 1, 1_000, 300_000, () => r)).toBeGreaterThanOrEqual(delay);
      }),
      { numRuns: RUNS },
    );
  });

  it(`coalescing: a position publish is never before now nor sooner than the interval (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(fc.option(fc.integer({ min: NOW - 10_000, max: NOW }), { nil: null }), fc.integer({ min: 1, max: 5_000 }), (last, interval) => {
        const at = positionPublishAt(last, NOW, interval);
        expect(at).toBeGreaterThanOrEqual(NOW);
        if (last !== null) expect(at).toBeGreaterThanOrEqual(last + interval);
        else expect(at).toBe(NOW);
      }),
      { numRuns: RUNS },
    );
  });

  it(`token bucket: in any window, at most burst + rate × seconds messages pass (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.integer({ min: 0, max: 700 }), { minLength: 1, maxLength: 300 }),
        (burst, rate, gaps) => {
          let bucket: Bucket | undefined;
          let t = NOW;
          const allowedAt: number[] = [];
          for (const gap of gaps) {
            t += gap;
            const result = takeToken(bucket, t, burst, rate);
            bucket = result.bucket;
            expect(bucket.tokens).toBeGreaterThanOrEqual(0);
            expect(bucket.tokens).toBeLessThanOrEqual(burst);
            if (result.allowed) allowedAt.push(t);
          }
          for (let i = 0; i < allowedAt.length; i++) {
            for (let j = i; j < allowedAt.length; j++) {
              const seconds = (allowedAt[j]! - allowedAt[i]!) / 1000;
              expect(j - i + 1).toBeLessThanOrEqual(burst + rate * seconds + 1e-9);
            }
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it(`token bucket: a client at or under the rate is never refused (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 20 }), fc.array(fc.integer({ min: 0, max: 3_000 }), { maxLength: 200 }), (burst, rate, extra) => {
        let bucket: Bucket | undefined;
        let t = NOW;
        for (const slack of extra) {
          t += Math.ceil(1000 / rate) + slack;
          const result = takeToken(bucket, t, burst, rate);
          bucket = result.bucket;
          expect(result.allowed).toBe(true);
        }
      }),
      { numRuns: RUNS },
    );
  });
});
