// The SDK's "clear after" and "last seen" privacy against a real `wrangler dev` (issue #16).
import { describe, expect, it } from "vitest";
import { until, user } from "../shared/util";
import { sdkServer } from "./harness";

const dev = sdkServer({ PRESENCE_TTL_MS: "20000", HEARTBEAT_INTERVAL_MS: "500" });
const { open } = dev;

describe("SDK: clear after, last seen (wrangler dev)", () => {
  it("setStatus with clearAfterMs: the friend sees busy, then online without text; the client follows; its periodic heartbeats never bring busy back", async () => {
    const { a, b, bob } = await dev.friendsOnline();

    const before = Date.now();
    const self = await b.setStatus("busy", "lunch", { clearAfterMs: 1_500 });
    expect(self).toMatchObject({ status: "busy", statusText: "lunch" });
    expect(b.statusExpiresAt).toBeGreaterThanOrEqual(before + 1_500);
    await until("alice sees bob busy", () => a.friend(bob)?.status === "busy");
    await until("alice sees bob back online", () => a.friend(bob)?.status === "online" && a.friend(bob)?.statusText === null, 5_000);
    await until("bob's own view follows", () => b.self?.status === "online" && b.statusExpiresAt === null, 5_000);
    // Several periodic heartbeats later, still online.
    await new Promise((r) => setTimeout(r, 1_200));
    expect(a.friend(bob)).toMatchObject({ status: "online", statusText: null });

    // A status set for good drops an earlier deadline.
    await b.setStatus("busy", "focus", { clearAfterMs: 60_000 });
    expect(b.statusExpiresAt).not.toBeNull();
    await b.setStatus("busy", "focus");
    expect(b.statusExpiresAt).toBeNull();
  });

  it("setLastSeen and showLastSeenTo: only the chosen friend gets lastActiveAt", async () => {
    const [alice, bob, carol] = [user("alice"), user("bob"), user("carol")];
    await dev.server.befriend(alice, bob);
    await dev.server.befriend(alice, carol);
    const b = open(bob);
    const c = open(carol);
    const a = open(alice);
    await Promise.all([a.ready(), b.ready(), c.ready()]);
    expect((await a.setLastSeen("chosen")).lastSeen).toBe("chosen");
    expect((await a.showLastSeenTo(bob)).lastSeenShownTo).toEqual([bob]);
    await a.setStatus("away");
    await until("both see alice away", () => b.friend(alice)?.status === "away" && c.friend(alice)?.status === "away");
    expect(b.friend(alice)?.lastActiveAt).toBeGreaterThan(0);
    expect(c.friend(alice)?.lastActiveAt).toBeNull();
  });
});
