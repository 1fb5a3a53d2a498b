import { describe, expect, it } from "vitest";
import { aggregate, classifyChange } from "../../src/presence/aggregate";
import type { DeviceState } from "../../src/presence/types";

const TTL = 120_000;
const NOW = 1_000_000_000;

function device(id: string, fields: Partial<DeviceState> = {}): DeviceState {
  return {
    deviceId: id,
    kind: "desktop",
    transport: "ws",
    status: "online",
    statusText: null,
    realm: "lobby",
    position: { x: 1, y: 2, z: 3 },
    lastHeartbeatAt: NOW - 1_000,
    lastSeenAt: NOW - 1_000,
    ...fields,
  };
}

describe("aggregate", () => {
  it("no devices → offline with last seen", () => {
    const { view, hasLiveDevice } = aggregate("u", [], NOW, TTL, 42);
    expect(view).toMatchObject({ status: "offline", devices: [], lastActiveAt: 42, realm: null, position: null });
    expect(hasLiveDevice).toBe(false);
  });

  it("most available device wins; realm and position come from the latest heartbeat", () => {
    const { view } = aggregate(
      "u",
      [
        device("phone", { status: "away", realm: "old", lastHeartbeatAt: NOW - 5_000 }),
        device("desk", { status: "busy", realm: "new", position: { x: 9, y: 9, z: 9 }, lastHeartbeatAt: NOW - 10 }),
      ],
      NOW,
      TTL,
      null,
    );
    expect(view.status).toBe("busy");
    expect(view.realm).toBe("new");
    expect(view.position).toEqual({ x: 9, y: 9, z: 9 });
    expect(view.devices.map((d) => [d.deviceId, d.status])).toEqual([
      ["desk", "busy"],
      ["phone", "away"],
    ]);
  });

  it("online beats busy beats away; all away → away", () => {
    expect(aggregate("u", [device("a", { status: "away" }), device("b", { status: "online" })], NOW, TTL, null).view.status).toBe("online");
    expect(aggregate("u", [device("a", { status: "away" }), device("b", { status: "away" })], NOW, TTL, null).view.status).toBe("away");
  });

  it("a device is live until exactly TTL after its last sign of life", () => {
    const stillLive = device("a", { lastSeenAt: NOW - TTL + 1 });
    const expired = device("b", { lastSeenAt: NOW - TTL });
    expect(aggregate("u", [stillLive], NOW, TTL, null).view.status).toBe("online");
    expect(aggregate("u", [expired], NOW, TTL, null).view.status).toBe("offline");
    expect(aggregate("u", [expired], NOW, TTL, null).hasLiveDevice).toBe(false);
  });

  it("any live invisible device makes the user look offline to friends", () => {
    const result = aggregate("u", [device("a", { status: "invisible" }), device("b")], NOW, TTL, 7);
    expect(result.view).toMatchObject({ status: "offline", devices: [], realm: null, position: null, statusText: null });
    expect(result.invisible).toBe(true);
    expect(result.hasLiveDevice).toBe(true);
  });

  it("a connected device without a heartbeat is live but not shown", () => {
    const result = aggregate("u", [device("a", { status: null, lastHeartbeatAt: null })], NOW, TTL, null);
    expect(result.view.status).toBe("offline");
    expect(result.hasLiveDevice).toBe(true);
  });
});

describe("classifyChange", () => {
  const base = aggregate("u", [device("a")], NOW, TTL, null).view;
  it("a heartbeat that changes only times is no change", () => {
    const later = aggregate("u", [device("a", { lastHeartbeatAt: NOW, lastSeenAt: NOW })], NOW, TTL, null).view;
    expect(classifyChange(base, later)).toBe("none");
  });
  it("position alone is a position change", () => {
    const moved = aggregate("u", [device("a", { position: { x: 5, y: 2, z: 3 } })], NOW, TTL, null).view;
    expect(classifyChange(base, moved)).toBe("position");
  });
  it("status, realm, text and devices are significant", () => {
    for (const fields of [{ status: "away" as const }, { realm: "other" }, { statusText: "brb" }]) {
      expect(classifyChange(base, aggregate("u", [device("a", fields)], NOW, TTL, null).view)).toBe("significant");
    }
    expect(classifyChange(base, aggregate("u", [device("a"), device("b")], NOW, TTL, null).view)).toBe("significant");
    expect(classifyChange(null, base)).toBe("significant");
  });
});
