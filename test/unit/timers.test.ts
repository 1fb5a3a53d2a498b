import { describe, expect, it } from "vitest";
import { alarmTime, type Bucket, backoffMs, deviceDeadline, nextDeadline, positionPublishAt, takeToken } from "../../src/presence/timers";

describe("timers", () => {
  it("device deadline is last sign of life + TTL", () => {
    expect(deviceDeadline({ lastSeenAt: 1_000 }, 120_000)).toBe(121_000);
  });
  it("next deadline is the earliest defined one", () => {
    expect(nextDeadline([5, null, 3, undefined, 9])).toBe(3);
    expect(nextDeadline([null, undefined])).toBeNull();
    expect(nextDeadline([Number.NaN, 4])).toBe(4);
  });
  it("alarms are never set at or before now", () => {
    expect(alarmTime(100, 500)).toBe(501);
    expect(alarmTime(900, 500)).toBe(900);
  });
  it("backoff grows exponentially, is jittered into [0.5, 1) and capped", () => {
    expect(backoffMs(0, 1_000, 300_000, () => 0)).toBe(500);
    expect(backoffMs(3, 1_000, 300_000, () => 0.999)).toBeLessThan(8_000);
    expect(backoffMs(3, 1_000, 300_000, () => 0)).toBe(4_000);
    expect(backoffMs(50, 1_000, 300_000, () => 0.999)).toBeLessThanOrEqual(300_000);
  });
  it("position changes are published at most once per interval", () => {
    expect(positionPublishAt(null, 10_000, 1_000)).toBe(10_000);
    expect(positionPublishAt(9_500, 10_000, 1_000)).toBe(10_500);
    expect(positionPublishAt(8_000, 10_000, 1_000)).toBe(10_000);
  });
  it("token bucket allows a burst, then refills at the rate", () => {
    let bucket: Bucket | undefined;
    let allowed = 0;
    for (let i = 0; i < 10; i++) {
      const r = takeToken(bucket, 0, 3, 1);
      bucket = r.bucket;
      if (r.allowed) allowed++;
    }
    expect(allowed).toBe(3);
    expect(takeToken(bucket, 999, 3, 1).allowed).toBe(false);
    expect(takeToken(bucket, 1_000, 3, 1).allowed).toBe(true);
  });
});
