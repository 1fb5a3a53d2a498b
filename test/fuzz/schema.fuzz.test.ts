/**
 * Hostile input, pure layer: parseClientFrame over generated and mutated
 * frames. It must never throw, must answer every frame with `ok` or one of
 * the documented error codes, and must agree with docs/PROTOCOL.md on which.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CLIENT_MESSAGE_TYPES, MAX_COORDINATE, parseClientFrame, requestIdSchema, type ParseResult } from "../../src/presence/schema";
import { fuzzRuns, labelledFrame, MESSAGE_TYPES, PARSE_ERROR_CODES, tooLarge } from "./arbitraries";

const MAX = 4_096;
const RUNS = fuzzRuns(1_000);
const bytes = (s: string) => new TextEncoder().encode(s).byteLength;

function parse(frame: string | Uint8Array, max = MAX): ParseResult {
  return parseClientFrame(typeof frame === "string" ? frame : (frame.buffer.slice(frame.byteOffset, frame.byteOffset + frame.byteLength) as ArrayBuffer), max);
}

/** What an accepted message must look like, restated from docs/PROTOCOL.md. */
function assertWellFormed(result: Extract<ParseResult, { ok: true }>) {
  const m = result.message;
  expect(CLIENT_MESSAGE_TYPES).toContain(m.type);
  if (m.id !== undefined) expect(requestIdSchema.safeParse(m.id).success).toBe(true);
  if (m.type === "PositionHeartbeat") {
    for (const v of [m.position.x, m.position.y, m.position.z]) {
      expect(Number.isFinite(v)).toBe(true);
      expect(Math.abs(v)).toBeLessThanOrEqual(MAX_COORDINATE);
    }
    expect([...m.realm].length).toBeGreaterThanOrEqual(1);
    expect([...m.realm].length).toBeLessThanOrEqual(64);
    for (const text of [m.realm, m.statusText ?? ""]) {
      expect(/[\u0000-\u001f\u007f]/.test(text)).toBe(false);
      expect(text.isWellFormed()).toBe(true);
    }
    if (m.statusText != null) expect([...m.statusText].length).toBeLessThanOrEqual(140);
    expect(["online", "away", "busy", "invisible"]).toContain(m.status);
  }
  if ("userId" in m) expect(m.userId).toMatch(/^[A-Za-z0-9_.@:-]{1,128}$/);
  if ("message" in m && typeof m.message === "string") {
    expect([...m.message].length).toBeLessThanOrEqual(280);
    expect(m.message.isWellFormed() && !/[\u0000-\u001f\u007f]/.test(m.message)).toBe(true);
  }
}

describe("parseClientFrame under fuzzing", () => {
  it("the generators cover every message type the server accepts", () => {
    expect([...MESSAGE_TYPES].sort()).toEqual([...CLIENT_MESSAGE_TYPES].sort());
  });

  it(`answers every labelled frame as the protocol documents (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(labelledFrame({ deadlines: "any" }), ({ label, frame, expect: expected }) => {
        let result: ParseResult;
        expect(() => (result = parse(frame)), label).not.toThrow();
        result = result!;
        if (result.ok) {
          expect(["ok", "any"], `${label}: accepted ${JSON.stringify(frame).slice(0, 200)}`).toContain(expected);
          assertWellFormed(result);
        } else {
          // The parser alone never rate-limits, looks people up or fails internally.
          expect(PARSE_ERROR_CODES).toContain(result.code);
          expect(typeof result.message).toBe("string");
          if (expected !== "any") expect(result.code, `${label}: ${JSON.stringify(frame).slice(0, 200)}`).toBe(expected);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it(`never throws on arbitrary text, bytes or limits (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: "binary", maxLength: 300 }), fc.json(), fc.uint8Array({ maxLength: 64 })), fc.integer({ min: 1, max: 10_000 }), (frame, max) => {
        const result = parse(frame, max);
        if (!result.ok) expect(PARSE_ERROR_CODES).toContain(result.code);
        else assertWellFormed(result);
      }),
      { numRuns: RUNS },
    );
  });

  it(`the size limit is in UTF-8 bytes, exactly (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 200 }), fc.integer({ min: 1, max: 800 }), (text, max) => {
        const frame = JSON.stringify({ type: "GetOnlineFriends", pad: text });
        const result = parse(frame, max);
        if (bytes(frame) > max) expect(result).toMatchObject({ ok: false, code: "frame_too_large" });
        else expect(result).toMatchObject({ ok: true });
      }),
      { numRuns: RUNS },
    );
    fc.assert(
      fc.property(tooLarge(MAX), ({ frame }) => {
        expect(parse(frame)).toMatchObject({ ok: false, code: "frame_too_large" });
      }),
      { numRuns: Math.min(RUNS, 200) },
    );
  });

  it(`errors echo the request id exactly when it is a valid id (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.jsonValue({ maxDepth: 1 }), fc.constantFrom(-1, 1.5, 2 ** 53, "i".repeat(65))),
        fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom(...MESSAGE_TYPES)),
        (rawId, type) => {
          const frame = JSON.stringify({ type, id: rawId, status: 5 });
          const id = JSON.parse(frame).id; // what the server actually receives (-0 → 0, undefined → absent)
          const result = parse(frame);
          if (result.ok) return; // e.g. a GetOnlineFriends with a valid id
          const valid = requestIdSchema.safeParse(id).success;
          if (valid) expect(result.id).toEqual(id);
          else expect(result).not.toHaveProperty("id");
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("deep nesting far beyond the frame limit does not throw (large limits, e.g. a misconfigured MAX_FRAME_BYTES)", () => {
    for (const depth of [10_000, 100_000, 500_000]) {
      const frame = "[".repeat(depth) + "]".repeat(depth);
      const result = parse(frame, 10_000_000);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(["invalid_message", "bad_json"]).toContain(result.code);
      const object = `{"type":"GetOnlineFriends","x":${"[".repeat(depth)}${"]".repeat(depth)}}`;
      expect(() => parse(object, 10_000_000)).not.toThrow();
    }
  });
});
