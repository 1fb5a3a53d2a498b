import { describe, expect, it } from "vitest";
import { applyRemote, deriveState, NO_EDGE, onReply, planLocal, transitionEvents, type Edge, type EdgeMessage, type EdgeState, type LocalOp } from "../../src/presence/friendship";

const OPEN = { registered: true, pendingLimitReached: false, friendLimitReached: false };

const edgeIn = (state: EdgeState): Edge =>
  ({
    none: NO_EDGE,
    outgoing: { ...NO_EDGE, mine: "want", myVersion: 1 },
    incoming: { ...NO_EDGE, theirs: "want", theirVersion: 1 },
    friends: { mine: "want", myVersion: 1, theirs: "want", theirVersion: 1 },
    blocked: { ...NO_EDGE, mine: "blocked" },
  })[state] as Edge;

describe("planLocal", () => {
  it.each<[EdgeState, LocalOp, EdgeState | string, EdgeMessage["intent"] | null]>([
    ["none", "request", "outgoing", "want"],
    ["outgoing", "request", "outgoing", null],
    ["incoming", "request", "friends", "want"],
    ["friends", "request", "already_friends", null],
    ["blocked", "request", "blocked", null],
    ["outgoing", "cancel", "none", "none"],
    ["none", "cancel", "no_pending_request", null],
    ["incoming", "accept", "friends", "want"],
    ["outgoing", "accept", "no_pending_request", null],
    ["incoming", "reject", "none", "none"],
    ["friends", "remove", "none", "none"],
    ["none", "remove", "not_friends", null],
    ["friends", "block", "blocked", "none"],
    ["none", "block", "blocked", null],
    ["blocked", "unblock", "none", null],
    ["none", "unblock", "not_blocked", null],
    ["blocked", "befriend", "friends", "want"],
  ])("%s + %s → %s", (state, op, expected, intent) => {
    const plan = planLocal(edgeIn(state), op);
    if (plan.ok) expect([deriveState(plan.edge), plan.send?.intent ?? null]).toEqual([expected, intent]);
    else expect(plan.code).toBe(expected);
  });
});

describe("the receiving side", () => {
  const want: EdgeMessage = { intent: "want", version: 5, refuse: null, force: false };
  it("refuses a request to an unregistered user, recording nothing", () => {
    expect(applyRemote(NO_EDGE, want, { ...OPEN, registered: false })).toEqual({ edge: NO_EDGE, reply: "refused" });
  });
  it("shadow refusal: a blocker answers a request like anyone (ok, even when full) and keeps it silently; still blocked", () => {
    for (const context of [OPEN, { ...OPEN, pendingLimitReached: true, friendLimitReached: true }]) {
      const { edge, reply } = applyRemote(edgeIn("blocked"), want, context);
      expect(reply).toBe(applyRemote(NO_EDGE, want, OPEN).reply);
      expect(edge).toEqual({ ...edgeIn("blocked"), theirs: "want", theirVersion: 5 });
      expect(deriveState(edge)).toBe("blocked");
    }
  });
  it("shadow refusal: unblocking withdraws the kept request (as a reject); blocking again keeps it", () => {
    const kept = applyRemote(edgeIn("blocked"), want, OPEN).edge;
    const again = planLocal(kept, "block");
    expect(again.ok && again.edge).toEqual(kept);
    const unblock = planLocal(kept, "unblock");
    if (!unblock.ok) throw new Error("plan");
    expect(deriveState(unblock.edge)).toBe("none");
    expect(unblock.send).toEqual({ intent: "none", version: 1, refuse: 5, force: false });
    // The requester (who sent version 5) sees its request rejected.
    const requester: Edge = { ...NO_EDGE, mine: "want", myVersion: 5 };
    const after = applyRemote(requester, unblock.send!, OPEN).edge;
    expect(deriveState(after)).toBe("none");
    expect(transitionEvents("outgoing", "none", "remote")).toEqual([{ type: "friend_request_rejected", direction: "outgoing" }]);
  });
  it("limits answer `limit` and record nothing", () => {
    expect(applyRemote(NO_EDGE, want, { ...OPEN, pendingLimitReached: true }).reply).toBe("limit");
    expect(applyRemote(edgeIn("outgoing"), want, { ...OPEN, friendLimitReached: true }).reply).toBe("limit");
  });
  it("a duplicate (lost ack) changes nothing", () => {
    const once = applyRemote(NO_EDGE, want, OPEN).edge;
    expect(applyRemote(once, want, OPEN)).toEqual({ edge: once, reply: "ok" });
  });
  it("a refused want is withdrawn by the sender, unless it has moved on", () => {
    const sent = planLocal(NO_EDGE, "request");
    if (!sent.ok || !sent.send) throw new Error("plan");
    expect(deriveState(onReply(sent.edge, sent.send, "refused"))).toBe("none");
    const movedOn = { ...sent.edge, myVersion: sent.edge.myVersion + 1 };
    expect(onReply(movedOn, sent.send, "refused")).toEqual(movedOn);
  });
});

/**
 * The two sides agree: friends ↔ friends, outgoing ↔ incoming, none/blocked ↔
 * none/blocked, and outgoing ↔ blocked exactly when the blocker keeps that
 * request silently (shadow refusal). Checked on the intents too: each side
 * has heard the other's current `want` or not-`want`.
 */
function consistent(ea: Edge, eb: Edge): boolean {
  const a = deriveState(ea);
  const b = deriveState(eb);
  const mirror: Record<EdgeState, EdgeState[]> = {
    friends: ["friends"],
    outgoing: ["incoming", "blocked"],
    incoming: ["outgoing"],
    none: ["none", "blocked"],
    blocked: ["none", "blocked", "outgoing"],
  };
  const heard = (x: Edge, y: Edge) => (x.mine === "want") === (y.theirs === "want");
  return mirror[a].includes(b) && heard(ea, eb) && heard(eb, ea);
}

/** Every interleaving of two ordered queues. */
function interleavings<T>(xs: T[], ys: T[]): T[][] {
  if (xs.length === 0) return [ys];
  if (ys.length === 0) return [xs];
  return [...interleavings(xs.slice(1), ys).map((r) => [xs[0]!, ...r]), ...interleavings(xs, ys.slice(1)).map((r) => [ys[0]!, ...r])];
}

/** Consistent starting pairs (A's edge, B's edge). */
const STARTS: [Edge, Edge][] = [
  [NO_EDGE, NO_EDGE],
  [edgeIn("outgoing"), edgeIn("incoming")],
  [edgeIn("friends"), edgeIn("friends")],
  [edgeIn("blocked"), NO_EDGE],
  [NO_EDGE, edgeIn("blocked")],
  // B blocked A and keeps A's request silently (shadow refusal).
  [edgeIn("outgoing"), { ...edgeIn("blocked"), theirs: "want", theirVersion: 1 }],
];
const OPS: LocalOp[] = ["request", "cancel", "accept", "reject", "remove", "block", "unblock"];
const SEQUENCES: LocalOp[][] = [
  ...OPS.map((op) => [op]),
  ["cancel", "request"],
  ["reject", "request"],
  ["remove", "request"],
  ["request", "cancel"],
  ["block", "unblock"],
  ["block", "unblock", "request"],
  ["request", "request"],
  ["unblock", "request"],
  ["block", "block", "unblock"],
];

describe("convergence: concurrent operations from both sides, every delivery order", () => {
  it("every pair of operation sequences, in every interleaving of deliveries, ends consistent", () => {
    const broken: string[] = [];
    let runs = 0;
    for (const [startA, startB] of STARTS) {
      for (const seqA of SEQUENCES) {
        for (const seqB of SEQUENCES) {
          // Both users act before anything is delivered (the most concurrent case).
          let a = startA;
          let b = startB;
          const fromA: EdgeMessage[] = [];
          const fromB: EdgeMessage[] = [];
          for (const op of seqA) {
            const plan = planLocal(a, op);
            if (!plan.ok) continue;
            a = plan.edge;
            if (plan.send) fromA.push(plan.send);
          }
          for (const op of seqB) {
            const plan = planLocal(b, op);
            if (!plan.ok) continue;
            b = plan.edge;
            if (plan.send) fromB.push(plan.send);
          }
          type Delivery = { to: "A" | "B"; m: EdgeMessage };
          const toB: Delivery[] = fromA.map((m) => ({ to: "B", m }));
          const toA: Delivery[] = fromB.map((m) => ({ to: "A", m }));
          for (const order of interleavings(toB, toA)) {
            let ea = a;
            let eb = b;
            for (const { to, m } of order) {
              if (to === "B") {
                const { edge, reply } = applyRemote(eb, m, OPEN);
                eb = edge;
                ea = onReply(ea, m, reply);
              } else {
                const { edge, reply } = applyRemote(ea, m, OPEN);
                ea = edge;
                eb = onReply(eb, m, reply);
              }
            }
            runs++;
            if (!consistent(ea, eb)) {
              broken.push(`${deriveState(startA)}/${deriveState(startB)}: A ${seqA.join("+")} ‖ B ${seqB.join("+")} → ${deriveState(ea)}/${deriveState(eb)}`);
            }
          }
        }
      }
    }
    expect(runs).toBeGreaterThan(1_000);
    expect(broken).toEqual([]);
  });
});

describe("events", () => {
  it("name what happened, from this side's point of view", () => {
    expect(transitionEvents("none", "outgoing", "local")).toEqual([{ type: "friend_request", direction: "outgoing" }]);
    expect(transitionEvents("outgoing", "none", "reply")).toEqual([{ type: "friend_request_failed" }]);
    expect(transitionEvents("outgoing", "none", "remote")).toEqual([{ type: "friend_request_rejected", direction: "outgoing" }]);
    expect(transitionEvents("incoming", "none", "remote")).toEqual([{ type: "friend_request_cancelled", direction: "incoming" }]);
    expect(transitionEvents("incoming", "none", "local")).toEqual([{ type: "friend_request_rejected", direction: "incoming" }]);
    expect(transitionEvents("friends", "blocked", "local")).toEqual([{ type: "friend_removed" }, { type: "blocked" }]);
    expect(transitionEvents("friends", "friends", "remote")).toEqual([]);
  });
});
