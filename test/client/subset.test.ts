// Large friend lists in the SDK (issue #16): following a subset of friends
// (`friends` option, `setFriends`) and paging the online friends, against a
// real `wrangler dev`; and the snapshot rule of a subset in FriendsState.
import { describe, expect, it } from "vitest";
import { FriendsState, type Presence } from "../../client/src/index.js";
import { until, user } from "../shared/util";
import { sdkServer } from "./harness";

const presence = (userId: string, status: Presence["status"], seq = 1): Presence => ({
  userId,
  status,
  realm: null,
  position: null,
  statusText: null,
  devices: [],
  lastActiveAt: null,
  seq,
});

describe("FriendsState with a subset snapshot", () => {
  it("a snapshot scoped to a subset says nothing about the friends outside it", () => {
    const state = new FriendsState();
    state.applySnapshot([presence("a", "online"), presence("b", "online")]);
    state.applySnapshot([], new Set(), new Set(["a"]));
    expect(state.get("a")?.status).toBe("offline");
    expect(state.get("b")?.status).toBe("online");
  });
});

const dev = sdkServer({ PRESENCE_TTL_MS: "6000", HEARTBEAT_INTERVAL_MS: "2000", POSITION_COALESCE_MS: "50" });
const { open } = dev;

describe("SDK: subsets and pages against wrangler dev", () => {
  it("follows only the named friends, switches with setFriends, and pages through every online friend", async () => {
    const alice = user("alice");
    const friends = Array.from({ length: 5 }, (_, i) => user(`f${i}`));
    for (const f of friends) await dev.server.befriend(alice, f);
    const others = friends.map((f) => open(f));
    await Promise.all(others.map((c) => c.ready()));
    await Promise.all(others.map((c) => c.heartbeat({ position: { x: 0, y: 0, z: 0 }, realm: "lobby" })));
    const [f0, f1, f2] = friends as [string, string, string];

    const a = open(alice, { friends: [f0] });
    await a.ready();
    expect(a.following).toEqual([f0]);
    await until("alice sees f0", () => a.friend(f0)?.status === "online");
    const updates: string[] = [];
    a.on("update", ({ presence }) => updates.push(presence.userId));

    await others[1]!.setStatus("busy", "not followed");
    await others[0]!.setStatus("busy", "followed");
    await until("alice sees f0 busy", () => a.friend(f0)?.status === "busy");
    expect(updates).not.toContain(f1);
    expect(a.friend(f1)).toBeUndefined();

    // Switch to f1 and f2: their presence arrives with the reply.
    const snapshot = await a.setFriends([f1, f2]);
    expect(snapshot.map((p) => p.userId).sort()).toEqual([f1, f2].sort());
    expect(a.friend(f1)).toMatchObject({ status: "busy", statusText: "not followed" });
    await others[2]!.setStatus("away");
    await until("alice sees f2 away", () => a.friend(f2)?.status === "away");

    // Pages: every online friend once, whatever is followed.
    const seen: string[] = [];
    for await (const page of a.onlineFriendsPages({ limit: 2 })) {
      expect(page.length).toBeLessThanOrEqual(2);
      seen.push(...page.map((p) => p.userId));
    }
    expect(seen).toEqual([...friends].sort());

    await a.setFriends("all");
    expect(a.following).toBeNull();
    await others[4]!.setStatus("busy");
    await until("alice sees f4 busy", () => a.friend(friends[4]!)?.status === "busy");
  });
});
