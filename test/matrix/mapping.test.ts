import { describe, expect, it } from "vitest";
import { deviceStatusFor, matrixState, sameMatrixView, statusMsgProblem, toMatrixContent } from "../../src/matrix/mapping";
import { offlinePresence } from "../../src/presence/protocol";
import type { Presence } from "../../src/presence/types";

const T = 1_800_000_000_000;

function presence(status: Presence["status"], statusText: string | null = null, lastActiveAt: number | null = T - 5_000, seq = 1): Presence {
  return { userId: "alice", status, realm: "lobby", position: { x: 1, y: 2, z: 3 }, statusText, devices: [], lastActiveAt, seq };
}

describe("project presence → m.presence", () => {
  it("online ↔ online, currently active", () => {
    expect(toMatrixContent(presence("online", "raiding"), T)).toEqual({ presence: "online", currently_active: true, status_msg: "raiding", last_active_ago: 5_000 });
  });

  it("away ↔ unavailable", () => {
    expect(toMatrixContent(presence("away"), T)).toEqual({ presence: "unavailable", currently_active: false, status_msg: null, last_active_ago: 5_000 });
  });

  it("busy shows as unavailable and keeps its status text", () => {
    expect(toMatrixContent(presence("busy", "in a meeting"), T)).toMatchObject({ presence: "unavailable", status_msg: "in a meeting", currently_active: false });
  });

  it("busy never idles: time alone changes nothing but last_active_ago", () => {
    const busy = presence("busy", "focus");
    const later = toMatrixContent(busy, T + 24 * 3_600_000);
    expect(later).toMatchObject({ presence: "unavailable", status_msg: "focus", currently_active: false });
    expect(later.last_active_ago).toBe(24 * 3_600_000 + 5_000);
    const online = toMatrixContent(presence("online"), T + 24 * 3_600_000);
    expect(online).toMatchObject({ presence: "online", currently_active: true });
  });

  it("offline (and invisible, which friends receive as offline) ↔ offline; a kept status text stays", () => {
    expect(toMatrixContent(offlinePresence("alice", T - 60_000), T)).toEqual({ presence: "offline", currently_active: false, status_msg: null, last_active_ago: 60_000 });
    expect(toMatrixContent({ ...offlinePresence("alice", T - 60_000), statusText: "gone fishing" }, T).status_msg).toBe("gone fishing");
    expect(toMatrixContent({ ...offlinePresence("alice"), invisible: true }, T)).toEqual({ presence: "offline", currently_active: false, status_msg: null });
  });

  it("unknown is never online, and says nothing it does not know", () => {
    const content = toMatrixContent(presence("unknown", "stale text"), T);
    expect(content).toEqual({ presence: "offline", currently_active: false, status_msg: null });
  });

  it("never reports a negative last_active_ago (clock skew between objects)", () => {
    expect(toMatrixContent(presence("online", null, T + 500), T).last_active_ago).toBe(0);
  });

  it("a change of last_active_ago alone, of realm or of position is not a change", () => {
    const a = presence("online", "x", T - 1_000, 3);
    expect(sameMatrixView(a, { ...a, lastActiveAt: T, seq: 4 })).toBe(true);
    expect(sameMatrixView(a, { ...a, realm: "forest", position: { x: 9, y: 9, z: 9 }, seq: 5 })).toBe(true);
    expect(sameMatrixView(a, { ...a, statusText: "y" })).toBe(false);
    expect(sameMatrixView(a, { ...a, status: "away" })).toBe(false);
    expect(sameMatrixView({ ...a, status: "away" }, { ...a, status: "busy" })).toBe(true); // both unavailable, same text
  });

  it("Matrix → the matrix device's status", () => {
    expect(deviceStatusFor("online")).toBe("online");
    expect(deviceStatusFor("unavailable")).toBe("away");
    expect(deviceStatusFor("offline")).toBeNull();
    expect(matrixState("busy")).toBe("unavailable");
  });

  it("status_msg follows the heartbeat's statusText rules", () => {
    expect(statusMsgProblem("fine")).toBeNull();
    expect(statusMsgProblem(null)).toBeNull();
    expect(statusMsgProblem(undefined)).toBeNull();
    expect(statusMsgProblem(42)).toMatch(/string/);
    expect(statusMsgProblem("x".repeat(141))).toMatch(/140/);
    expect(statusMsgProblem("line\nbreak")).toMatch(/control/);
  });
});
