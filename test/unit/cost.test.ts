import { describe, expect, it } from "vitest";
import { costPerUserMonth, MONTH_SECONDS, workloadCost } from "../../src/presence/cost";

describe("cost per online user-month at list prices", () => {
  it("one request per user per second is $0.15 per million × a month", () => {
    const c = costPerUserMonth({ requests: 100, wsMessagesIn: 0, rowsRead: 0, rowsWritten: 0, activeSeconds: 0 }, 10, 10);
    expect(c.requestsPerUserSecond).toBe(1);
    expect(c.usd.requests).toBeCloseTo((MONTH_SECONDS * 0.15) / 1e6, 9);
    expect(c.usd.total).toBeCloseTo(c.usd.requests, 12);
  });

  it("incoming WebSocket messages count 20:1", () => {
    const c = costPerUserMonth({ requests: 0, wsMessagesIn: 20, rowsRead: 0, rowsWritten: 0, activeSeconds: 0 }, 1, 1);
    expect(c.requestsPerUserSecond).toBe(1);
  });

  it("rows written are $1 per million, rows read $0.001, duration 128 MB × $12.50 per million GB-s", () => {
    const c = costPerUserMonth({ requests: 0, wsMessagesIn: 0, rowsRead: 1, rowsWritten: 1, activeSeconds: 1 }, 1, 1);
    expect(c.usd.rowsWritten).toBeCloseTo(MONTH_SECONDS / 1e6, 9);
    expect(c.usd.rowsRead).toBeCloseTo((MONTH_SECONDS * 0.001) / 1e6, 12);
    expect(c.gbSecondsPerUserSecond).toBeCloseTo(0.128, 12);
    expect(c.usd.duration).toBeCloseTo((MONTH_SECONDS * 0.128 * 12.5) / 1e6, 9);
  });

  it("the issue's naive workload: ≈1 row per delivery at 4 deliveries/s is ≈ $10 a month", () => {
    const c = workloadCost({ heartbeatsPerSecond: 0, deliveriesPerSecond: 0, rowsWrittenPerSecond: 4, alarmsPerSecond: 0, activeSecondsPerSecond: 0 });
    expect(c.usd.total).toBeGreaterThan(10);
    expect(c.usd.total).toBeLessThan(11);
  });

  it("the request floor of one call per delivery at 4 deliveries/s is ≈ $1.6", () => {
    const c = workloadCost({ heartbeatsPerSecond: 0, deliveriesPerSecond: 4, rowsWrittenPerSecond: 0, alarmsPerSecond: 0, activeSecondsPerSecond: 0 });
    expect(c.usd.total).toBeCloseTo(1.555, 2);
  });

  it("no users or no time: zero, not NaN", () => {
    expect(costPerUserMonth({ requests: 5, wsMessagesIn: 5, rowsRead: 5, rowsWritten: 5, activeSeconds: 5 }, 0, 10).usd.total).toBe(0);
  });
});
