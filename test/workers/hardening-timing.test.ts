/**
 * Timing side channel of friend requests (issue #12, item 5d): how long the
 * first request takes to a never-used id, to a user who blocked the sender
 * (shadow refusal: answered like any request), and to an ordinary existing
 * user. Each sample uses a fresh, warmed-up requester (first request, no
 * limit in the way); the three kinds are measured in rotating order. Timings
 * are only reported (docs/RELIABILITY.md) and checked with a generous bound:
 * this machine is shared.
 */
import { describe, expect, it } from "vitest";
import { api, token, user, worker } from "./helpers";

const SAMPLES = 30;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function timedRequest(from: string, to: string): Promise<{ ms: number; status: number }> {
  const headers = { Authorization: `Bearer ${await token(from)}`, "Content-Type": "application/json" };
  const body = JSON.stringify({ userId: to });
  const start = performance.now();
  const res = await worker().fetch("http://presence/v1/friends/requests", { method: "POST", headers, body });
  await res.arrayBuffer();
  return { ms: performance.now() - start, status: res.status };
}

describe("timing of a first friend request", () => {
  it(`never-used id vs blocker vs ordinary user: median of ${SAMPLES} each (reported)`, async () => {
    const times = { neverUsed: [] as number[], blocker: [] as number[], ordinary: [] as number[] };
    const statuses = { neverUsed: new Set<number>(), blocker: new Set<number>(), ordinary: new Set<number>() };
    for (let i = 0; i < SAMPLES; i++) {
      const requester = user("req");
      const blocker = user("blocker");
      const ordinary = user("ordinary");
      const ghost = user("ghost");
      await api(requester, "/v1/friends"); // warm: the requester's object exists and is loaded
      await api(ordinary, "/v1/friends");
      expect((await api(blocker, `/v1/blocks/${requester}`, { method: "PUT" })).status).toBe(200);
      const kinds: Array<[keyof typeof times, string]> = [
        ["neverUsed", ghost],
        ["blocker", blocker],
        ["ordinary", ordinary],
      ];
      // Rotate the order so that no kind always goes first. A requester asks each target once (limit: 3 pending).
      for (let k = 0; k < kinds.length; k++) {
        const [kind, target] = kinds[(i + k) % kinds.length]!;
        const { ms, status } = await timedRequest(requester, target);
        times[kind].push(ms);
        statuses[kind].add(status);
      }
    }
    const report = Object.fromEntries(
      Object.entries(times).map(([k, xs]) => [k, { median: Number(median(xs).toFixed(2)), min: Number(Math.min(...xs).toFixed(2)), max: Number(Math.max(...xs).toFixed(2)) }]),
    );
    console.log(
      `first friend request, ${SAMPLES} samples each (ms):`,
      JSON.stringify(report),
      "statuses:",
      JSON.stringify(Object.fromEntries(Object.entries(statuses).map(([k, s]) => [k, [...s]]))),
    );
    expect([...statuses.neverUsed]).toEqual([404]);
    expect([...statuses.blocker]).toEqual([200]);
    expect([...statuses.ordinary]).toEqual([200]);
    // Generous: the two answers that look alike (200) must not differ by more than a few times.
    const [b, o] = [median(times.blocker), median(times.ordinary)];
    expect(Math.abs(b - o)).toBeLessThan(Math.max(25, 2 * Math.min(b, o)));
  });
});
