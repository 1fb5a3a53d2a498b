// Reconciliation rules of the SDK, as a pure module: seq ordering, duplicates, snapshots.
import { describe, expect, it } from "vitest";
import { FriendsState, transition, type Presence } from "../../client/src/index.js";

function presence(userId: string, seq: number, over: Partial<Presence> = {}): Presence {
  return {
    userId,
    status: "online",
    realm: "lobby",
    position: { x: seq, y: 0, z: 0 },
    statusText: null,
    devices: [{ deviceId: "d1", kind: "desktop", status: "online", lastActiveAt: 1_000 + seq }],
    lastActiveAt: 1_000 + seq,
    seq,
    ...over,
  };
}

describe("FriendsState.applyPresence", () => {
  it("applies newer updates and ignores out-of-order and duplicate ones", () => {
    const state = new FriendsState();
    expect(state.applyPresence(presence("bob", 3))).toHaveLength(1);
    expect(state.applyPresence(presence("bob", 5))).toHaveLength(1);
    expect(state.applyPresence(presence("bob", 4))).toEqual([]); // late
    expect(state.applyPresence(presence("bob", 5, { status: "busy" }))).toEqual([]); // duplicate seq
    expect(state.applyPresence(presence("bob", 2, { status: "offline" }))).toEqual([]);
    expect(state.get("bob")).toMatchObject({ seq: 5, status: "online", position: { x: 5, y: 0, z: 0 } });
  });

  it("keeps users independent", () => {
    const state = new FriendsState();
    state.applyPresence(presence("bob", 9));
    expect(state.applyPresence(presence("carol", 1))).toHaveLength(1);
    expect(state.all().map((p) => [p.userId, p.seq])).toEqual([
      ["bob", 9],
      ["carol", 1],
    ]);
  });

  it("lets the real presence replace an `unknown` placeholder with the same seq", () => {
    const state = new FriendsState();
    state.applySnapshot([presence("bob", 4, { status: "unknown" })]);
    expect(state.applyPresence(presence("bob", 4, { status: "away" }))).toHaveLength(1);
    expect(state.get("bob")?.status).toBe("away");
    expect(state.applyPresence(presence("bob", 4, { status: "unknown" }))).toEqual([]);
  });
});

describe("FriendsState.applySnapshot", () => {
  it("replaces state from the snapshot but never with an older seq", () => {
    const state = new FriendsState();
    state.applyPresence(presence("bob", 7, { realm: "newer" }));
    state.applyPresence(presence("carol", 2));
    const changes = state.applySnapshot([presence("bob", 6, { realm: "older" }), presence("carol", 3, { status: "busy" })]);
    expect(state.get("bob")).toMatchObject({ seq: 7, realm: "newer" });
    expect(state.get("carol")).toMatchObject({ seq: 3, status: "busy" });
    expect(changes.map((c) => c.kind === "update" && c.presence.userId)).toEqual(["carol"]);
  });

  it("marks friends absent from the snapshot offline, keeping their last seq and last seen", () => {
    const state = new FriendsState();
    state.applyPresence(presence("bob", 7));
    const [change] = state.applySnapshot([]);
    expect(state.get("bob")).toMatchObject({ status: "offline", seq: 7, position: null, realm: null, lastActiveAt: 1_007 });
    expect(change && transition(change)).toBe("offline");
    // A later real update still applies; the stale one it replaced does not come back.
    expect(state.applyPresence(presence("bob", 7))).toEqual([]);
    expect(state.applyPresence(presence("bob", 8, { status: "offline", position: null }))).toHaveLength(1);
  });

  it("does not mark offline a friend pushed on this connection after the snapshot was requested", () => {
    const state = new FriendsState();
    state.applyPresence(presence("bob", 8));
    expect(state.applySnapshot([], new Set(["bob"]))).toEqual([]);
    expect(state.get("bob")?.status).toBe("online");
  });

  it("treats a snapshot equal to what we hold as nothing new", () => {
    const state = new FriendsState();
    state.applyPresence(presence("bob", 3));
    expect(state.applySnapshot([presence("bob", 3)])).toEqual([]);
  });
});

describe("friend added / removed and transitions", () => {
  it("adds, removes, and derives online/offline transitions", () => {
    const state = new FriendsState();
    const [added] = state.addFriend(presence("dave", 1));
    expect(added).toMatchObject({ kind: "added" });
    expect(added && transition(added)).toBe("online");
    const [away] = state.applyPresence(presence("dave", 2, { status: "away" }));
    expect(away && transition(away)).toBeNull(); // still shown
    const [gone] = state.applyPresence(presence("dave", 3, { status: "offline" }));
    expect(gone && transition(gone)).toBe("offline");
    expect(state.removeFriend("dave")).toEqual([{ kind: "removed", userId: "dave", previous: expect.objectContaining({ seq: 3 }) }]);
    expect(state.get("dave")).toBeUndefined();
  });
});
