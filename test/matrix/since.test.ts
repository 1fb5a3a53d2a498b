import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeSince, encodeSince, SINCE_PREFIX, type SinceToken } from "../../src/matrix/since";

const tokenArb = fc
  .record({
    epoch: fc.integer({ min: 0, max: 0xffffffff }),
    self: fc.oneof(fc.nat(1000), fc.maxSafeNat()),
    entries: fc.uniqueArray(fc.tuple(fc.integer({ min: 1, max: 1_000_000 }), fc.oneof(fc.nat(100_000), fc.maxSafeNat())), { selector: ([slot]) => slot, maxLength: 60 }),
  })
  .map(({ epoch, self, entries }): SinceToken => ({ epoch, self, seen: new Map(entries) }));

describe("since token", () => {
  it("round-trips", () => {
    fc.assert(
      fc.property(tokenArb, (token) => {
        const text = encodeSince(token);
        expect(text.startsWith(SINCE_PREFIX)).toBe(true);
        expect(text).toMatch(/^p1_[A-Za-z0-9_-]+$/); // safe in a URL as is
        expect(decodeSince(text)).toEqual(token);
      }),
    );
  });

  it("is compact: about 3 bytes a friend for realistic seqs", () => {
    const seen = new Map<number, number>();
    for (let slot = 1; slot <= 1_000; slot++) seen.set(slot, 1_000 + slot * 7);
    const text = encodeSince({ epoch: 0xdeadbeef, self: 42, seen });
    expect(text.length).toBeLessThan(4_500);
  });

  it("never throws on garbage and never accepts a damaged token", () => {
    const good = encodeSince({
      epoch: 7,
      self: 3,
      seen: new Map([
        [1, 5],
        [4, 9],
      ]),
    });
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (text) => {
        expect(() => decodeSince(text)).not.toThrow();
      }),
    );
    // Any single-character change of the body is caught (checksum, or the structure).
    const body = good.slice(SINCE_PREFIX.length);
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (let i = 0; i < body.length; i++) {
      for (const ch of alphabet) {
        if (ch === body[i]) continue;
        const damaged = SINCE_PREFIX + body.slice(0, i) + ch + body.slice(i + 1);
        const decoded = decodeSince(damaged);
        // base64 tails can carry unused bits: a change there decodes to the very same token.
        if (decoded !== null) expect(decoded).toEqual(decodeSince(good));
      }
    }
    expect(decodeSince(`${good}A`)).toBeNull();
    expect(decodeSince(good.slice(0, -2))).toBeNull();
    expect(decodeSince(`p2_${body}`)).toBeNull();
    expect(decodeSince("s72594_4483_1934")).toBeNull(); // a Synapse token
    expect(decodeSince(null)).toBeNull();
    expect(decodeSince("")).toBeNull();
  });

  it("rejects non-canonical and out-of-range values even with a valid checksum", () => {
    // Hand-built bodies with a correct checksum: an overlong varint, and a zero slot delta.
    const withChecksum = (bytes: number[]) => {
      let hash = 0x811c9dc5;
      for (const b of bytes) hash = Math.imul(hash ^ b, 0x01000193) >>> 0;
      const all = [...bytes, hash >>> 24, (hash >>> 16) & 0xff, (hash >>> 8) & 0xff, hash & 0xff];
      return (
        SINCE_PREFIX +
        btoa(String.fromCharCode(...all))
          .replace(/\+/g, "-")
          .replace(/\//g, "_")
          .replace(/=+$/, "")
      );
    };
    expect(decodeSince(withChecksum([1, 2, 0]))).toEqual({ epoch: 1, self: 2, seen: new Map() });
    expect(decodeSince(withChecksum([0x81, 0x00, 2, 0]))).toBeNull(); // 1 spelled in two bytes
    expect(decodeSince(withChecksum([1, 2, 1, 0, 5]))).toBeNull(); // slot delta 0
    expect(decodeSince(withChecksum([1, 2, 2, 1, 5]))).toBeNull(); // says 2 entries, has 1
    expect(decodeSince(withChecksum([0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0]))).toBeNull(); // epoch past 32 bits
  });

  it("refuses to encode what it could not decode", () => {
    expect(() => encodeSince({ epoch: -1, self: 0, seen: new Map() })).toThrow();
    expect(() => encodeSince({ epoch: 1, self: 0, seen: new Map([[0, 1]]) })).toThrow();
    expect(() => encodeSince({ epoch: 1, self: 1.5, seen: new Map() })).toThrow();
  });
});
