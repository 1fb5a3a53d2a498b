/**
 * Budgets (issue #12, items 2 and 4): every authenticated route takes from the
 * user's request bucket (429 rate_limited with Retry-After), and the calls one
 * user causes to other users' objects are bounded per second whatever the
 * number of friends. In this configuration (test/workers/bindings.ts) the
 * call budget is 50/s with a burst of 100, the request bucket 10/s with a
 * burst of 40, and MAX_FRIENDS 20.
 */
import { afterEach, describe, expect, it } from "vitest";
import { WORKER_TEST_BINDINGS } from "./bindings";
import { api, befriend, Client, countCalls, restorePatches, user } from "./helpers";

const RATE = Number(WORKER_TEST_BINDINGS.CALL_BUDGET_PER_SECOND);
const BURST = Number(WORKER_TEST_BINDINGS.CALL_BUDGET_BURST);
afterEach(restorePatches);

async function withFriends(n: number): Promise<{ a: string; friends: string[] }> {
  const a = user("a");
  const friends = Array.from({ length: n }, () => user("f"));
  for (const f of friends) expect((await befriend(a, f)).status).toBe(200);
  return { a, friends };
}

describe("every authenticated route is rate limited (item 2)", () => {
  it.each([
    ["GET", "/v1/friends", undefined],
    ["PUT", "/v1/privacy", { shareLocation: "all" }],
    ["GET", "/v1/friends/online", undefined],
  ])("%s %s answers 429 rate_limited with Retry-After once the user's bucket is spent", async (method, path, body) => {
    const a = user("a");
    const statuses: number[] = [];
    let limited: { status: number; body: any } | null = null;
    for (let i = 0; i < 50 && !limited; i++) {
      const res = await api(a, path, { method, ...(body ? { body: JSON.stringify(body) } : {}) });
      statuses.push(res.status);
      if (res.status === 429) limited = res;
    }
    expect(limited, `statuses: ${statuses.join(",")}`).not.toBeNull();
    expect(limited!.body.error.code).toBe("rate_limited");
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(40); // the burst is served
  });

  it("the 429 carries Retry-After, and a request/cancel loop over HTTP pushes at most the bucket's rate to the victim", async () => {
    const a = user("a");
    const victim = user("v");
    const cv = await Client.connect(victim);
    await cv.request({ type: "SubscribeFriendshipPresenceUpdates" });
    const started = Date.now();
    let retryAfter: string | null = null;
    let admitted = 0;
    for (let i = 0; i < 40; i++) {
      for (const [method, path, body] of [
        ["POST", "/v1/friends/requests", { userId: victim, message: "spam" }],
        ["DELETE", `/v1/friends/requests/${victim}`, undefined],
      ] as const) {
        const res = await (await import("./helpers")).worker().fetch(`http://presence${path}`, {
          method,
          headers: { Authorization: `Bearer ${await (await import("./helpers")).token(a)}`, "Content-Type": "application/json" },
          ...(body ? { body: JSON.stringify(body) } : {}),
        });
        if (res.status === 429) retryAfter ??= res.headers.get("Retry-After");
        else admitted++;
        await res.text();
      }
    }
    const seconds = (Date.now() - started) / 1000;
    await new Promise((r) => setTimeout(r, 200));
    const pushed = cv.frames.filter((f) => f.type === "friend_request").length;
    console.log(`request/cancel loop: ${pushed} friend_request frames to the victim in ${seconds.toFixed(2)} s`);
    expect(retryAfter).toMatch(/^[1-9][0-9]*$/);
    // At most the user's bucket (burst 40 + 10/s) is admitted, and only an admitted request can push: under
    // load the admitted ones need not alternate request/cancel, so the pushes are bounded by the bucket, not half of it.
    expect(admitted).toBeLessThanOrEqual(Math.ceil(40 + 10 * seconds) + 1);
    expect(pushed).toBeLessThanOrEqual(admitted);
    await cv.close();
  });
});

describe("calls one user causes per second are bounded whatever the friend count (item 4)", () => {
  it("HTTP friends-online: a flood costs at most the call budget; the rest is served from the last answer", async () => {
    const { a, friends } = await withFriends(20);
    const calls = countCalls("presenceFor", friends);
    const started = Date.now();
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) {
      const res = await api(a, "/v1/friends/online");
      statuses.push(res.status);
      expect([200, 429]).toContain(res.status);
    }
    const seconds = (Date.now() - started) / 1000;
    const bound = BURST + RATE * seconds + friends.length;
    console.log(
      `friends-online flood (20 friends, 40 GETs): ${calls.n} calls in ${seconds.toFixed(2)} s; bound ${bound.toFixed(0)}; 200s: ${statuses.filter((s) => s === 200).length}`,
    );
    expect(calls.n).toBeLessThanOrEqual(bound);
    expect(statuses.filter((s) => s === 200).length).toBe(40); // served: computed, or the last answer
  });

  it("privacy toggles with every friend watching: the pushes stay within the call budget", async () => {
    const { a, friends } = await withFriends(10);
    const watchers: Client[] = [];
    for (const f of friends) watchers.push(await Client.connect(f));
    const ca = await Client.connect(a);
    await ca.heartbeat({ realm: "r" });
    await new Promise((r) => setTimeout(r, 1_500)); // let the connects' calls refill
    const pushes = countCalls("receivePresence", friends);
    const started = Date.now();
    let refused = 0;
    for (let i = 0; i < 30; i++) {
      const res = await api(a, "/v1/privacy", { method: "PUT", body: JSON.stringify({ shareLocation: i % 2 === 0 ? "none" : "all" }) });
      if (res.status === 429) refused++;
      else expect(res.status).toBe(200);
    }
    const seconds = (Date.now() - started) / 1000;
    const bound = BURST + RATE * seconds + friends.length;
    console.log(`privacy toggles (10 watchers, 30 PUTs): ${pushes.n} pushes in ${seconds.toFixed(2)} s, ${refused} refused; bound ${bound.toFixed(0)}`);
    expect(pushes.n).toBeLessThanOrEqual(bound);
    expect(refused).toBeGreaterThan(0);
    for (const w of watchers) await w.close();
    await ca.close();
  });
});
