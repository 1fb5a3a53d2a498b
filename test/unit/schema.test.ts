import { describe, expect, it } from "vitest";
import { parseClientFrame } from "../../src/presence/schema";

const MAX = 4_096;
const hb = (fields: Record<string, unknown> = {}) =>
  JSON.stringify({ type: "PositionHeartbeat", id: 7, position: { x: 1, y: 2, z: 3 }, realm: "lobby", status: "online", ...fields });

describe("parseClientFrame", () => {
  it("accepts every operation", () => {
    expect(parseClientFrame(hb({ statusText: "hi ✨" }), MAX)).toMatchObject({ ok: true, message: { type: "PositionHeartbeat", statusText: "hi ✨" } });
    for (const type of ["GetOnlineFriends", "SubscribeFriendshipPresenceUpdates", "UnsubscribeFriendshipPresenceUpdates"]) {
      expect(parseClientFrame(JSON.stringify({ type, id: "x" }), MAX)).toMatchObject({ ok: true });
    }
    expect(parseClientFrame(JSON.stringify({ type: "GetPresence", userId: "bob" }), MAX)).toMatchObject({ ok: true });
  });

  it.each([
    ["{nope", "bad_json"],
    ["[]", "invalid_message"],
    ["42", "invalid_message"],
    ["null", "invalid_message"],
    [JSON.stringify({ type: "Teleport", id: 1 }), "unknown_type"],
    [JSON.stringify({ id: 1 }), "unknown_type"],
    [hb({ position: { x: "1", y: 2, z: 3 } }), "invalid_message"],
    [hb({ position: { x: 1e10, y: 2, z: 3 } }), "invalid_message"],
    [hb({ status: "dancing" }), "invalid_message"],
    [hb({ realm: "" }), "invalid_message"],
    [hb({ realm: "r".repeat(65) }), "invalid_message"],
    [hb({ realm: "a\u0000b" }), "invalid_message"],
    [hb({ statusText: "x".repeat(141) }), "invalid_message"],
    [hb({ statusText: "\ud800" }), "invalid_message"],
    [JSON.stringify({ type: "GetPresence", userId: "../admin" }), "invalid_message"],
  ])("%s → %s", (frame, code) => {
    const result = parseClientFrame(frame, MAX);
    expect(result).toMatchObject({ ok: false, code });
  });

  it("huge numbers that parse to Infinity are refused", () => {
    const frame = `{"type":"PositionHeartbeat","position":{"x":1e400,"y":0,"z":0},"realm":"r","status":"online"}`;
    expect(parseClientFrame(frame, MAX)).toMatchObject({ ok: false, code: "invalid_message" });
  });

  it("echoes a valid request id in errors", () => {
    expect(parseClientFrame(hb({ status: 5 }), MAX)).toMatchObject({ ok: false, id: 7 });
    expect(parseClientFrame(JSON.stringify({ type: "Nope", id: { evil: 1 } }), MAX)).not.toHaveProperty("id");
  });

  it("frames over the limit (in bytes, not characters) and binary frames are refused", () => {
    expect(parseClientFrame(hb({ statusText: "é".repeat(100) }), 200)).toMatchObject({ ok: false, code: "frame_too_large" });
    expect(parseClientFrame(new ArrayBuffer(3), MAX)).toMatchObject({ ok: false, code: "binary_not_supported" });
  });

  it("status text counts characters, not UTF-16 units", () => {
    expect(parseClientFrame(hb({ statusText: "😀".repeat(140) }), MAX)).toMatchObject({ ok: true });
  });
});
