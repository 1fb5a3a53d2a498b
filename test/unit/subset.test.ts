// Large friend lists (issue #16): the union of the sockets' subsets, the cursor, and the paging rules.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeCursor, encodeCursor, inSubset, pageOnline, sameSubset, unionOfSubsets } from "../../src/presence/subset";
import { clientMessageSchema, friendsParamSchema } from "../../src/presence/schema";
import type { Presence } from "../../src/presence/types";

const presence = (userId: string, status: Presence["status"]): Presence => ({
  userId,
  status,
  realm: null,
  position: null,
  statusText: null,
  devices: [],
  lastActiveAt: null,
  seq: 1,
});

describe("subsets", () => {
  it("the union is every friend as soon as one socket wants all, or when there is no socket", () => {
    expect(unionOfSubsets([])).toBeNull();
    expect(unionOfSubsets([["a"], undefined])).toBeNull();
    expect([...unionOfSubsets([["a", "b"], ["b", "c"], []])!].sort()).toEqual(["a", "b", "c"]);
    expect(unionOfSubsets([[]])).toEqual(new Set());
    expect(inSubset(undefined, "x")).toBe(true);
    expect(inSubset(["a"], "x")).toBe(false);
    expect(sameSubset(null, null)).toBe(true);
    expect(sameSubset(null, [])).toBe(false);
    expect(sameSubset(["a", "b"], ["b", "a"])).toBe(true);
  });

  it("validates the connect parameter and the Subscribe field", () => {
    expect(friendsParamSchema.parse("")).toEqual([]);
    expect(friendsParamSchema.parse("a,b")).toEqual(["a", "b"]);
    expect(friendsParamSchema.safeParse("a,,b").success).toBe(false);
    expect(friendsParamSchema.safeParse("..").success).toBe(false);
    const subscribe = (friends: unknown) => clientMessageSchema.safeParse({ type: "SubscribeFriendshipPresenceUpdates", friends }).success;
    expect(subscribe("all")).toBe(true);
    expect(subscribe([])).toBe(true);
    expect(subscribe(Array.from({ length: 100 }, (_, i) => `u${i}`))).toBe(true);
    expect(subscribe(Array.from({ length: 101 }, (_, i) => `u${i}`))).toBe(false);
    expect(subscribe("none")).toBe(false);
  });

  it("a cursor is opaque, round-trips every user id, and anything else is refused", () => {
    fc.assert(fc.property(fc.stringMatching(/^[A-Za-z0-9_.@:-]{1,128}$/), (id) => decodeCursor(encodeCursor(id)) === id));
    for (const bad of ["", "not a cursor", "%%%", encodeCursor("a").concat("!"), btoa("has space")]) expect(decodeCursor(bad)).toBeNull();
  });
});

describe("pageOnline", () => {
  const statuses: Presence["status"][] = ["online", "away", "busy", "offline", "unknown"];
  const world = fc.uniqueArray(fc.record({ id: fc.stringMatching(/^[a-z0-9]{1,6}$/), status: fc.constantFrom(...statuses), held: fc.boolean() }), {
    selector: (f) => f.id,
    maxLength: 60,
  });

  it("lists every friend that is not offline exactly once, in id order, with at most `limit` listed and asked per page", async () => {
    await fc.assert(
      fc.asyncProperty(world, fc.integer({ min: 1, max: 12 }), async (friends, limit) => {
        const byId = new Map(friends.map((f) => [f.id, f]));
        const ids = friends.map((f) => f.id);
        let cursor: string | null = null;
        const listed: string[] = [];
        for (let pages = 0; pages <= ids.length + 1; pages++) {
          let asked = 0;
          const page = await pageOnline(
            ids,
            { after: cursor === null ? null : decodeCursor(cursor), limit },
            (id) => {
              const f = byId.get(id)!;
              if (!f.held) return undefined;
              return f.status === "offline" ? null : presence(id, f.status);
            },
            async (toAsk) => {
              asked += toAsk.length;
              return new Map(toAsk.map((id) => [id, presence(id, byId.get(id)!.status)]));
            },
          );
          expect(page.friends.length).toBeLessThanOrEqual(limit);
          expect(asked).toBeLessThanOrEqual(limit);
          listed.push(...page.friends.map((p) => p.userId));
          cursor = page.nextCursor;
          if (cursor === null) break;
        }
        expect(cursor).toBeNull();
        expect(listed).toEqual(
          friends
            .filter((f) => f.status !== "offline")
            .map((f) => f.id)
            .sort(),
        );
      }),
    );
  });

  it("fills a page from held presences without asking anyone", async () => {
    const ids = ["a", "b", "c", "d", "e"];
    const page = await pageOnline(
      ids,
      { after: null, limit: 2 },
      (id) => (id === "b" ? null : presence(id, "online")),
      async () => {
        throw new Error("asked");
      },
    );
    expect(page.friends.map((p) => p.userId)).toEqual(["a", "c"]);
    expect(decodeCursor(page.nextCursor!)).toBe("c");
  });
});
