import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeLocalpart, encodeLocalpart, isValidServerName, parseMatrixId, toMatrixId } from "../../src/matrix/ids";

/** Valid project user ids: the allowed characters, except the reserved `.` and `..`. */
const userIdArb = fc.stringMatching(/^[A-Za-z0-9_.@:-]{1,128}$/).filter((id) => id !== "." && id !== "..");

describe("Matrix ids", () => {
  it("maps plain lower-case ids to themselves", () => {
    expect(toMatrixId("alice", "example.org")).toBe("@alice:example.org");
    expect(toMatrixId("bob.smith-2", "localhost:8787")).toBe("@bob.smith-2:localhost:8787");
  });

  it("escapes upper case, underscore, @ and : as the spec suggests", () => {
    expect(encodeLocalpart("Alice")).toBe("_alice");
    expect(encodeLocalpart("a_b")).toBe("a__b");
    expect(encodeLocalpart("user@mail")).toBe("user=40mail");
    expect(encodeLocalpart("team:red")).toBe("team=3ared");
    expect(decodeLocalpart("_alice")).toBe("Alice");
    expect(decodeLocalpart("team=3ared")).toBe("team:red");
  });

  it("round-trips every valid project user id, and the localpart uses only the spec's characters", () => {
    fc.assert(
      fc.property(userIdArb, (userId) => {
        const localpart = encodeLocalpart(userId);
        expect(localpart).toMatch(/^[a-z0-9._=\-/+]+$/);
        expect(decodeLocalpart(localpart)).toBe(userId);
      }),
    );
  });

  it("accepts only the canonical spelling, so two Matrix ids never name one user", () => {
    expect(decodeLocalpart("=61lice")).toBeNull(); // "alice" spelled with an escape
    expect(decodeLocalpart("a=5fb")).toBeNull(); // "_" must be "__"
    expect(decodeLocalpart("=3A")).toBeNull(); // upper-case hex
    expect(decodeLocalpart("_")).toBeNull();
    expect(decodeLocalpart("_1")).toBeNull();
    expect(decodeLocalpart("=4")).toBeNull();
    expect(decodeLocalpart("a/b")).toBeNull(); // legal in Matrix, but no project id maps to it
    expect(decodeLocalpart("=c3=a9")).toBeNull(); // é: valid UTF-8, not a project user id
    expect(decodeLocalpart("=ff")).toBeNull(); // not UTF-8
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(..."ab_=0f3A/+.-".split("")), maxLength: 12 }), (localpart) => {
        const userId = decodeLocalpart(localpart);
        if (userId !== null) expect(encodeLocalpart(userId)).toBe(localpart);
      }),
    );
  });

  it("parses ids of this server, tells malformed from foreign", () => {
    expect(parseMatrixId("@_alice:example.org", "example.org")).toEqual({ ok: true, userId: "Alice" });
    expect(parseMatrixId("@alice:localhost:8787", "localhost:8787")).toEqual({ ok: true, userId: "alice" });
    expect(parseMatrixId("@alice:other.org", "example.org")).toEqual({ ok: false, reason: "foreign" });
    expect(parseMatrixId("@=61lice:example.org", "example.org")).toEqual({ ok: false, reason: "foreign" });
    expect(parseMatrixId("alice:example.org", "example.org")).toEqual({ ok: false, reason: "malformed" });
    expect(parseMatrixId("@:example.org", "example.org")).toEqual({ ok: false, reason: "malformed" });
    expect(parseMatrixId("@alice", "example.org")).toEqual({ ok: false, reason: "malformed" });
    expect(parseMatrixId("@alice:bad_host", "example.org")).toEqual({ ok: false, reason: "malformed" });
    expect(parseMatrixId(`@${"a".repeat(250)}:example.org`, "example.org")).toEqual({ ok: false, reason: "malformed" });
  });

  it("refuses ids over 255 bytes instead of truncating them", () => {
    expect(toMatrixId("a".repeat(128), "example.org")).toHaveLength(1 + 128 + 1 + 11);
    expect(toMatrixId("@".repeat(128), "example.org")).toBeNull(); // 384 bytes of escapes
  });

  it("validates server names", () => {
    for (const ok of ["example.org", "localhost", "localhost:8787", "1.2.3.4", "1.2.3.4:80", "[::1]", "[1234:5678::abcd]:443"]) expect(isValidServerName(ok), ok).toBe(true);
    for (const bad of ["", "exa mple.org", "host:99999", "host:", "[::1", "a_b.org", "@x"]) expect(isValidServerName(bad), bad).toBe(false);
  });
});
