// "Clear after" (src/presence/expiry.ts) and the reconnect grace's setting: pure rules, issue #16.
import { describe, expect, it } from "vitest";
import { aggregate } from "../../src/presence/aggregate";
import { DEFAULT_CONFIG, readConfig } from "../../src/presence/config";
import { effectiveDevice, heartbeatExpiry, pendingExpiry } from "../../src/presence/expiry";
import { heartbeatBody } from "../../src/presence/schema";
import type { DeviceState } from "../../src/presence/types";

const NOW = 1_800_000_000_000;
const body = { position: { x: 0, y: 0, z: 0 }, realm: "r" };
const device = (over: Partial<DeviceState> = {}): DeviceState => ({
  deviceId: "d",
  kind: "desktop",
  transport: "ws",
  status: "busy",
  statusText: "lunch",
  realm: "r",
  position: null,
  lastHeartbeatAt: NOW - 1_000,
  lastSeenAt: NOW - 1_000,
  expiresAt: NOW + 60_000,
  ...over,
});

describe("heartbeatExpiry: the deadline a heartbeat sets", () => {
  it("takes a duration from now, or a time as given; null clears", () => {
    expect(heartbeatExpiry(null, { ...body, status: "busy", expiresInMs: 5_000 }, NOW)).toBe(NOW + 5_000);
    expect(heartbeatExpiry(null, { ...body, status: "invisible", expiresAt: NOW + 9 }, NOW)).toBe(NOW + 9);
    expect(heartbeatExpiry(device(), { ...body, status: "busy", statusText: "lunch", expiresAt: null }, NOW)).toBeNull();
  });

  it("keeps the device's deadline while status and text are the ones it was set with, and only then", () => {
    expect(heartbeatExpiry(device(), { ...body, status: "busy", statusText: "lunch" }, NOW)).toBe(NOW + 60_000);
    expect(heartbeatExpiry(device(), { ...body, status: "busy", statusText: "dinner" }, NOW)).toBeNull();
    expect(heartbeatExpiry(device(), { ...body, status: "away", statusText: "lunch" }, NOW)).toBeNull();
    // An expired one is kept too: repeating the old heartbeat stays cleared.
    expect(heartbeatExpiry(device({ expiresAt: NOW - 1 }), { ...body, status: "busy", statusText: "lunch" }, NOW)).toBe(NOW - 1);
  });

  it("nothing that can clear (online or away without a text) has no deadline", () => {
    expect(heartbeatExpiry(null, { ...body, status: "online", expiresInMs: 5_000 }, NOW)).toBeNull();
    expect(heartbeatExpiry(null, { ...body, status: "away", statusText: null, expiresAt: NOW + 5 }, NOW)).toBeNull();
    expect(heartbeatExpiry(null, { ...body, status: "away", statusText: "brb", expiresAt: NOW + 5 }, NOW)).toBe(NOW + 5);
  });
});

describe("effectiveDevice and the aggregate", () => {
  it("before the deadline the choice stands; from it on busy/invisible are online and the text is gone (away stays away)", () => {
    expect(effectiveDevice(device(), NOW)).toMatchObject({ status: "busy", statusText: "lunch" });
    expect(effectiveDevice(device(), NOW + 60_000)).toMatchObject({ status: "online", statusText: null });
    expect(effectiveDevice(device({ status: "invisible" }), NOW + 60_000)).toMatchObject({ status: "online" });
    expect(effectiveDevice(device({ status: "away" }), NOW + 60_000)).toMatchObject({ status: "away", statusText: null });
    expect(pendingExpiry(device(), NOW)).toBe(NOW + 60_000);
    expect(pendingExpiry(device(), NOW + 60_000)).toBeNull();
  });

  it("an invisible device whose deadline passed no longer hides the user", () => {
    const invisible = device({ status: "invisible", statusText: null, expiresAt: NOW + 10 });
    expect(aggregate("u", [invisible], NOW, 120_000, null).view.status).toBe("offline");
    expect(aggregate("u", [invisible], NOW + 10, 120_000, null).view.status).toBe("online");
  });
});

describe("wire and settings", () => {
  it("a heartbeat carries expiresAt or expiresInMs, not both, in bounds", () => {
    expect(heartbeatBody.safeParse({ ...body, status: "busy", expiresInMs: 1_000 }).success).toBe(true);
    expect(heartbeatBody.safeParse({ ...body, status: "busy", expiresAt: null }).success).toBe(true);
    expect(heartbeatBody.safeParse({ ...body, status: "busy", expiresAt: NOW, expiresInMs: 1 }).success).toBe(false);
    expect(heartbeatBody.safeParse({ ...body, status: "busy", expiresInMs: 0 }).success).toBe(false);
    expect(heartbeatBody.safeParse({ ...body, status: "busy", expiresInMs: 400 * 86_400_000 }).success).toBe(false);
  });

  it("RECONNECT_GRACE_MS: 10 s by default, 0 turns it off (kept, unlike other tunables' 0)", () => {
    expect(DEFAULT_CONFIG.reconnectGraceMs).toBe(10_000);
    expect(readConfig({ RECONNECT_GRACE_MS: "0" }).reconnectGraceMs).toBe(0);
    expect(readConfig({ RECONNECT_GRACE_MS: "-1" }).reconnectGraceMs).toBe(10_000);
    expect(readConfig({ MAX_FRIENDS: "0" }).maxFriends).toBe(DEFAULT_CONFIG.maxFriends);
  });
});
