// Server-side events (docs/EVENTS.md): what each event holds, under which privacy setting, and its id.
import { describe, expect, it } from "vitest";
import { EVENT_VERSION, friendshipEvent, presenceEvent, readEventPolicy } from "../../src/presence/events";
import { NO_EDGE, type Edge } from "../../src/presence/friendship";
import { offlinePresence } from "../../src/presence/protocol";
import type { Presence } from "../../src/presence/types";

const AT = 1_700_000_000_000;
const online = (fields: Partial<Presence> = {}): Presence => ({
  userId: "alice",
  status: "online",
  realm: "forest",
  position: { x: 1, y: 2, z: 3 },
  statusText: "hi",
  devices: [{ deviceId: "pc", kind: "desktop", status: "online", lastActiveAt: AT - 5 }],
  lastActiveAt: AT - 5,
  seq: 7,
  ...fields,
});
const OFF = readEventPolicy({});

describe("presence events", () => {
  it("carry old → new status, seq, time, what friends see; device heartbeat times and positions stay out by default", () => {
    expect(presenceEvent(offlinePresence("alice", null, 6), online(), AT, OFF)).toEqual({
      v: EVENT_VERSION,
      id: "alice/presence/7",
      kind: "presence",
      userId: "alice",
      seq: 7,
      at: AT,
      status: { from: "offline", to: "online" },
      statusText: "hi",
      realm: "forest",
      devices: [{ deviceId: "pc", kind: "desktop", status: "online" }],
      lastActiveAt: AT - 5,
    });
  });

  it("carry the position only when the operator opts in (and only what friends were told: null when not shared)", () => {
    const policy = readEventPolicy({ EVENTS_POSITIONS: "1" });
    expect(policy).toEqual({ positions: true });
    expect(presenceEvent(offlinePresence("alice"), online(), AT, policy)?.position).toEqual({ x: 1, y: 2, z: 3 });
    expect(presenceEvent(offlinePresence("alice"), online({ realm: null, position: null }), AT, policy)).toMatchObject({ realm: null, position: null });
    for (const value of ["", "0", "yes", undefined]) expect(readEventPolicy({ EVENTS_POSITIONS: value })).toEqual({ positions: false });
  });

  it("are emitted for status, realm, text and device changes; not for a position-only move or a re-publish of the same view", () => {
    const before = online({ seq: 7 });
    expect(presenceEvent(before, online({ seq: 8, status: "away" }), AT, OFF)?.status).toEqual({ from: "online", to: "away" });
    expect(presenceEvent(before, online({ seq: 8, realm: "desert" }), AT, OFF)?.status).toEqual({ from: "online", to: "online" });
    expect(presenceEvent(before, online({ seq: 8, statusText: null }), AT, OFF)).not.toBeNull();
    expect(presenceEvent(before, online({ seq: 8, devices: [] }), AT, OFF)).not.toBeNull();
    expect(presenceEvent(before, online({ seq: 8, position: { x: 9, y: 9, z: 9 } }), AT, OFF)).toBeNull();
    expect(presenceEvent(before, online({ seq: 8, lastActiveAt: AT }), AT, OFF)).toBeNull();
  });

  it("have an id per (user, seq): a retried send repeats it, a later change never does", () => {
    const a = presenceEvent(offlinePresence("alice"), online({ seq: 7 }), AT, OFF)!;
    const again = presenceEvent(offlinePresence("alice"), online({ seq: 7 }), AT + 10, OFF)!;
    const next = presenceEvent(online({ seq: 7 }), online({ seq: 8, status: "busy" }), AT, OFF)!;
    expect(again.id).toBe(a.id);
    expect(next.id).not.toBe(a.id);
  });
});

describe("friendship events", () => {
  const friends: Edge = { mine: "want", myVersion: 1, theirs: "want", theirVersion: 1 };

  it("name both users, from → to, the cause, and the transitions clients get", () => {
    expect(friendshipEvent("alice", "bob", "outgoing", friends, "remote", AT)).toEqual({
      v: EVENT_VERSION,
      id: `alice/friendship/bob/1.1/${AT}`,
      kind: "friendship",
      userId: "alice",
      otherUserId: "bob",
      seq: 2,
      at: AT,
      state: { from: "outgoing", to: "friends" },
      cause: "remote",
      transitions: [{ type: "friend_added" }],
    });
    const blocked: Edge = { ...friends, mine: "blocked", myVersion: 2 };
    expect(friendshipEvent("alice", "bob", "friends", blocked, "local", AT)?.transitions).toEqual([{ type: "friend_removed" }, { type: "blocked" }]);
  });

  it("are not emitted when what the user sees did not move; seq grows with every change of either side", () => {
    expect(friendshipEvent("alice", "bob", "friends", friends, "remote", AT)).toBeNull();
    const request = friendshipEvent("alice", "bob", "none", { ...NO_EDGE, mine: "want", myVersion: 1 }, "local", AT)!;
    const accepted = friendshipEvent("alice", "bob", "outgoing", friends, "remote", AT + 1)!;
    const removed = friendshipEvent("alice", "bob", "friends", { ...friends, mine: "none", myVersion: 2 }, "local", AT + 2)!;
    expect([request.seq, accepted.seq, removed.seq]).toEqual([1, 2, 3]);
  });
});
