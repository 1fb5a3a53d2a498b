import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { computeSync, type FriendEntry, type PresenceEntry } from "../../src/matrix/sync";
import { decodeSince, encodeSince } from "../../src/matrix/since";
import { matrixView } from "../../src/matrix/mapping";
import { offlinePresence } from "../../src/presence/protocol";
import type { Presence } from "../../src/presence/types";

const T = 1_800_000_000_000;
const SERVER = "example.org";
const EPOCH = 77;

function p(userId: string, status: Presence["status"], seq: number, statusText: string | null = null): Presence {
  return { userId, status, realm: null, position: null, statusText, devices: [], lastActiveAt: T - 1_000, seq };
}

function run(self: PresenceEntry, friends: FriendEntry[], since: string | null, extra: { fullState?: boolean; filter?: object; epoch?: number } = {}) {
  return computeSync({ self, friends, since, fullState: extra.fullState ?? false, epoch: extra.epoch ?? EPOCH, now: T, serverName: SERVER, filter: extra.filter });
}

const senders = (events: { sender: string }[]) => events.map((e) => e.sender);

describe("computeSync", () => {
  const me = { presence: p("me", "online", 3) };

  it("initial sync: myself, and every friend who is not offline", () => {
    const out = run(
      me,
      [
        { slot: 1, presence: p("ann", "online", 5, "hi") },
        { slot: 2, presence: p("bob", "offline", 9) },
        { slot: 3, presence: p("cyd", "busy", 2, "focus") },
      ],
      null,
    );
    expect(out.initial).toBe(true);
    expect(senders(out.events)).toEqual(["@me:example.org", "@ann:example.org", "@cyd:example.org"]);
    expect(out.events[0]).toEqual({
      type: "m.presence",
      sender: "@me:example.org",
      content: { presence: "online", currently_active: true, status_msg: null, last_active_ago: 1_000, user_id: "@me:example.org" },
    });
    expect(out.events[2]!.content).toMatchObject({ presence: "unavailable", status_msg: "focus" });
    // The token records the offline friend too: nothing about bob arrives until bob changes.
    expect(decodeSince(out.nextBatch)).toEqual({
      epoch: EPOCH,
      self: 3,
      seen: new Map([
        [1, 5],
        [2, 9],
        [3, 2],
      ]),
    });
  });

  it("incremental: only what moved past the token, once", () => {
    const friends = [
      { slot: 1, presence: p("ann", "online", 5) },
      { slot: 2, presence: p("bob", "offline", 9) },
    ];
    const first = run(me, friends, null);
    expect(run(me, friends, first.nextBatch).events).toEqual([]);
    const moved = [{ slot: 1, presence: p("ann", "away", 6) }, friends[1]!];
    const second = run(me, moved, first.nextBatch);
    expect(senders(second.events)).toEqual(["@ann:example.org"]);
    expect(second.events[0]!.content.presence).toBe("unavailable");
    expect(run(me, moved, second.nextBatch).events).toEqual([]);
    // The same old token again (a client that lost the response): the same answer, nothing lost.
    expect(run(me, moved, first.nextBatch).events).toEqual(second.events);
  });

  it("a seq bump that Matrix cannot see (position, realm, devices) is recorded but not sent", () => {
    const first = run(me, [{ slot: 1, presence: p("ann", "online", 5), contentSeq: 5 }], null);
    const moved = run(me, [{ slot: 1, presence: p("ann", "online", 8), contentSeq: 5 }], first.nextBatch);
    expect(moved.events).toEqual([]);
    expect(decodeSince(moved.nextBatch)!.seen.get(1)).toBe(8);
    const changed = run(me, [{ slot: 1, presence: p("ann", "online", 9, "new text"), contentSeq: 9 }], moved.nextBatch);
    expect(changed.events).toHaveLength(1);
  });

  it("a seq below the token's (the friend's state was reset) is sent again, not hidden", () => {
    const first = run(me, [{ slot: 1, presence: p("ann", "online", 50) }], null);
    const reset = run(me, [{ slot: 1, presence: p("ann", "online", 1) }], first.nextBatch);
    expect(senders(reset.events)).toEqual(["@ann:example.org"]);
    expect(decodeSince(reset.nextBatch)!.seen.get(1)).toBe(1);
  });

  it("unknown is never sent and does not advance the token", () => {
    const first = run(me, [{ slot: 1, presence: p("ann", "online", 5) }], null);
    const unknown = run(me, [{ slot: 1, presence: { ...p("ann", "unknown", 5) } }], first.nextBatch);
    expect(unknown.events).toEqual([]);
    expect(decodeSince(unknown.nextBatch)!.seen.get(1)).toBe(5);
    const initialUnknown = run(me, [{ slot: 1, presence: p("ann", "unknown", 0) }], null);
    expect(senders(initialUnknown.events)).toEqual(["@me:example.org"]);
    expect(decodeSince(initialUnknown.nextBatch)!.seen.has(1)).toBe(false);
  });

  it("full_state sends everyone, offline friends included", () => {
    const friends = [
      { slot: 1, presence: p("ann", "online", 5) },
      { slot: 2, presence: p("bob", "offline", 9) },
    ];
    const first = run(me, friends, null);
    expect(senders(run(me, friends, first.nextBatch, { fullState: true }).events)).toEqual(["@me:example.org", "@ann:example.org", "@bob:example.org"]);
  });

  it("a token of another epoch, a garbled one, or another server's is a fresh start, not an error", () => {
    const friends = [{ slot: 1, presence: p("ann", "online", 5) }];
    const first = run(me, friends, null);
    for (const since of [encodeSince({ epoch: EPOCH + 1, self: 3, seen: new Map([[1, 5]]) }), first.nextBatch.slice(0, -3), "s123_456"]) {
      const out = run(me, friends, since);
      expect(out.initial).toBe(true);
      expect(out.events).toHaveLength(2);
    }
  });

  it("filters: filtered-out events count as seen; events cut by limit come next time", () => {
    const friends = [
      { slot: 1, presence: p("ann", "online", 5) },
      { slot: 2, presence: p("bob", "online", 9) },
    ];
    expect(run(me, friends, null, { filter: { not_types: ["m.*"] } }).events).toEqual([]);
    const noBob = run(me, friends, null, { filter: { not_senders: ["@bob:example.org"] } });
    expect(senders(noBob.events)).toEqual(["@me:example.org", "@ann:example.org"]);
    expect(run(me, friends, noBob.nextBatch).events).toEqual([]);
    const limited = run(me, friends, null, { filter: { limit: 2 } });
    expect(senders(limited.events)).toEqual(["@me:example.org", "@ann:example.org"]);
    expect(senders(run(me, friends, limited.nextBatch).events)).toEqual(["@bob:example.org"]);
  });

  it("a user with no Matrix id (over 255 bytes) is skipped, not sent broken", () => {
    const long = "@".repeat(128);
    const out = run(me, [{ slot: 1, presence: p(long, "online", 5) }], null);
    expect(senders(out.events)).toEqual(["@me:example.org"]);
  });

  it("property: a client that keeps its last token misses nothing and receives nothing twice", () => {
    // A history of friends' presence changes; the client syncs at random points, sometimes
    // losing the response (it then retries with the token it had), sometimes restarting
    // (same token). After every delivered response its view equals the truth.
    const change = fc.record({
      friend: fc.integer({ min: 0, max: 3 }),
      kind: fc.constantFrom("status", "text", "move", "unknown", "known"),
      status: fc.constantFrom<Presence["status"]>("online", "away", "busy", "offline"),
      text: fc.constantFrom(null, "a", "b"),
    });
    const step = fc.oneof(
      change.map((c) => ({ op: "change" as const, ...c })),
      fc.record({ op: fc.constant("sync" as const), lost: fc.boolean() }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const names = ["ann", "bob", "cyd", "dee"];
        const truth = names.map((n) => ({ presence: offlinePresence(n) as Presence, contentSeq: 0, unknownSince: null as Presence | null }));
        let token: string | null = null;
        const view = new Map<string, string>(); // sender → last Matrix view received
        const delivered = new Set<string>(); // `${sender}#${seq}`
        const entries = (): FriendEntry[] => truth.map((t, i) => ({ slot: i + 1, presence: t.unknownSince ?? t.presence, contentSeq: t.contentSeq }));
        for (const s of steps) {
          if (s.op === "change") {
            const t = truth[s.friend]!;
            if (s.kind === "unknown") {
              t.unknownSince = { ...t.presence, status: "unknown" };
              continue;
            }
            if (s.kind === "known") {
              t.unknownSince = null;
              continue;
            }
            const before = t.presence;
            const next: Presence =
              s.kind === "move"
                ? { ...before, position: { x: Math.random(), y: 0, z: 0 }, seq: before.seq + 1 }
                : s.kind === "text"
                  ? { ...before, statusText: before.status === "offline" ? before.statusText : s.text, seq: before.seq + 1 }
                  : { ...before, status: s.status, seq: before.seq + 1 };
            if (matrixView(next) !== matrixView(before)) t.contentSeq = next.seq;
            t.presence = next;
            continue;
          }
          const out = run({ presence: p("me", "online", 1) }, entries(), token);
          if (s.lost) continue;
          for (const e of out.events) {
            if (e.sender === "@me:example.org") continue;
            const i = names.indexOf(e.sender.slice(1, e.sender.indexOf(":")));
            const key = `${e.sender}#${truth[i]!.presence.seq}`;
            expect(delivered.has(key), `delivered twice: ${key}`).toBe(false);
            delivered.add(key);
            view.set(e.sender, JSON.stringify([e.content.presence, e.content.currently_active, e.content.status_msg]));
          }
          token = out.nextBatch;
          // Nothing missed: every friend whose state is known shows as it is (never-seen = offline).
          truth.forEach((t, i) => {
            if (t.unknownSince) return;
            const sender = `@${names[i]}:example.org`;
            const shown = view.get(sender);
            const actual = matrixView(t.presence);
            if (shown === undefined) expect(t.presence.status).toBe("offline");
            else expect(shown).toBe(actual);
          });
        }
      }),
      { numRuns: 300 },
    );
  });
});
