/**
 * The friendship lifecycle, as one side of an edge sees it.
 *
 * Each side owns exactly one thing: its own *intent* towards the other user
 * (`none`, `want`, or `blocked`), versioned. It tells the other side every change
 * of intent through an ordered, retried message, and keeps the last intent it
 * heard from the other side. What a user sees is derived from the pair:
 *
 *   mine \ theirs   none       want
 *   none            none       incoming
 *   want            outgoing   friends
 *   blocked         blocked    blocked
 *
 * Because each side only ever writes its own intent and messages from one side
 * arrive in order, both sides converge on the same pair whatever the races
 * (test/unit/friendship.test.ts checks every interleaving of concurrent
 * operations). Three extras keep it faithful to what users mean:
 *   - `refuse`: reject, remove and block also withdraw the other side's `want`
 *     at the version they saw, so a removed friend does not linger as "outgoing",
 *     while a newer request the refuser had not seen survives;
 *   - replies: a `want` to a user who never used the service, or over a limit,
 *     is not recorded and the sender withdraws it (`refused`/`limit`);
 *   - shadow refusal: a `want` to a user who blocked you is answered `ok` like
 *     any request and kept silently (the blocker sees only `blocked`); the
 *     sender sees a pending request that never completes. Unblocking withdraws
 *     it (`refuse`, as a reject), so a block cannot be told from a user who
 *     has not answered (yet), nor from a removal;
 *   - `force` (admin API): sets both intents on both sides.
 * docs/FRIENDSHIPS.md draws the states and transitions.
 */
import type { FriendshipState } from "../protocol";
import { refuse, type Refusal } from "./result";

export type Intent = "none" | "want" | "blocked";

/** One side of an edge as stored by a user's object. */
export interface Edge {
  mine: Intent;
  /** Bumped on every message this side sends. */
  myVersion: number;
  theirs: "none" | "want";
  /** Version of the last message heard from the other side. */
  theirVersion: number;
}

export const NO_EDGE: Edge = { mine: "none", myVersion: 0, theirs: "none", theirVersion: 0 };

/** What a user sees about one other user (the wire's FriendshipState). `blocked` is known only to the blocker. */
export type EdgeState = FriendshipState;

export function deriveState(edge: Edge): EdgeState {
  if (edge.mine === "blocked") return "blocked";
  if (edge.mine === "want") return edge.theirs === "want" ? "friends" : "outgoing";
  return edge.theirs === "want" ? "incoming" : "none";
}

export type { FriendList } from "../protocol";

/** What a user (or the admin API) asks their own object to do about another user. */
export type LocalOp = "request" | "cancel" | "accept" | "reject" | "remove" | "block" | "unblock" | "befriend" | "unfriend";

/** One change of intent, travelling to the other side's object (ordered per target, at least once). */
export interface EdgeMessage {
  intent: "none" | "want";
  version: number;
  /** Withdraw the receiver's `want` if it is still at this version. */
  refuse: number | null;
  /** Admin: set both intents on the receiving side too (clears a block). */
  force: boolean;
}

/** The receiver's answer. `refused`/`limit`: a `want` was not recorded; the sender withdraws it. */
export type EdgeReply = "ok" | "refused" | "limit";

export type FriendshipErrorCode = "already_friends" | "blocked" | "no_pending_request" | "not_friends" | "not_blocked" | "cannot_befriend_self";

export type LocalPlan = { ok: true; edge: Edge; send: EdgeMessage | null } | Refusal<FriendshipErrorCode>;

const fail = (code: FriendshipErrorCode, message: string): LocalPlan => refuse(code, message);

function change(edge: Edge, mine: Intent, theirs: Edge["theirs"], message: Omit<EdgeMessage, "version"> | null): LocalPlan {
  if (!message) return { ok: true, edge: { ...edge, mine, theirs }, send: null };
  const version = edge.myVersion + 1;
  return { ok: true, edge: { ...edge, mine, theirs, myVersion: version }, send: { ...message, version } };
}

/** Plans a local operation: this side's new edge and the message for the other side, if any. */
export function planLocal(edge: Edge, op: LocalOp): LocalPlan {
  const state = deriveState(edge);
  const plain = (intent: EdgeMessage["intent"]) => ({ intent, refuse: null, force: false });
  const refusing = { intent: "none" as const, refuse: edge.theirVersion, force: false };
  switch (op) {
    case "request":
      if (state === "friends") return fail("already_friends", "you are already friends");
      if (state === "blocked") return fail("blocked", "unblock this user first");
      // Asking again while a request is pending changes nothing and sends nothing.
      if (state === "outgoing") return change(edge, "want", edge.theirs, null);
      // Asking someone who already asked you is accepting.
      return change(edge, "want", edge.theirs, plain("want"));
    case "accept":
      if (state === "friends") return change(edge, "want", "want", null);
      if (state !== "incoming") return fail("no_pending_request", "this user has not sent you a request");
      return change(edge, "want", "want", plain("want"));
    case "cancel":
      if (state !== "outgoing") return fail("no_pending_request", "you have no pending request to this user");
      return change(edge, "none", edge.theirs, plain("none"));
    case "reject":
      if (state !== "incoming") return fail("no_pending_request", "this user has not sent you a request");
      return change(edge, "none", "none", refusing);
    case "remove":
      if (state !== "friends") return fail("not_friends", "you are not friends");
      return change(edge, "none", "none", refusing);
    case "block":
      // Blocking again keeps a silently kept request (unblocking withdraws it).
      if (state === "blocked") return change(edge, "blocked", edge.theirs, null);
      // The other side only learns that the edge is gone, never that it is blocked.
      return change(edge, "blocked", "none", state === "none" ? null : refusing);
    case "unblock":
      if (state !== "blocked") return fail("not_blocked", "this user is not blocked");
      // A request kept silently during the block is withdrawn now, as a reject would.
      return change(edge, "none", "none", edge.theirs === "want" ? refusing : null);
    case "befriend":
      return change(edge, "want", "want", { intent: "want", refuse: null, force: true });
    case "unfriend":
      if (state !== "friends") return change(edge, edge.mine, edge.theirs, null);
      return change(edge, "none", "none", { intent: "none", refuse: null, force: true });
  }
}

export interface RemoteContext {
  /** The receiver has used the service; a `want` to someone who has not is refused. */
  registered: boolean;
  /** Recording one more incoming request would exceed the receiver's pending limit. */
  pendingLimitReached: boolean;
  /** Becoming friends would exceed the receiver's friend limit. */
  friendLimitReached: boolean;
}

/** Applies a message from the other side. Duplicates (a lost ack) change nothing. */
export function applyRemote(edge: Edge, message: EdgeMessage, context: RemoteContext): { edge: Edge; reply: EdgeReply } {
  if (message.version <= edge.theirVersion) return { edge, reply: "ok" };
  if (message.force) return { edge: { ...edge, mine: message.intent, theirs: message.intent, theirVersion: message.version }, reply: "ok" };
  let next = { ...edge };
  if (message.refuse !== null && message.refuse === edge.myVersion && edge.mine === "want") next.mine = "none";
  if (message.intent === "want") {
    if (!context.registered) return { edge: next, reply: "refused" };
    // Shadow refusal: kept silently, answered like any request (no limit applies: it is not an incoming request).
    if (next.mine === "blocked") return { edge: { ...next, theirs: "want", theirVersion: message.version }, reply: "ok" };
    if (next.mine === "want" && next.theirs !== "want" && context.friendLimitReached) return { edge: next, reply: "limit" };
    if (next.mine !== "want" && next.theirs !== "want" && context.pendingLimitReached) return { edge: next, reply: "limit" };
  }
  next = { ...next, theirs: message.intent, theirVersion: message.version };
  return { edge: next, reply: "ok" };
}

/** Folds the reply in: a refused `want` is withdrawn, unless this side has moved on since. */
export function onReply(edge: Edge, sent: EdgeMessage, reply: EdgeReply): Edge {
  if (reply !== "ok" && sent.intent === "want" && edge.myVersion === sent.version && edge.mine === "want") return { ...edge, mine: "none" };
  return edge;
}

/** Events for this side's clients when what it sees moves; `cause` says who moved it. */
export type FriendshipEvent =
  | { type: "friend_request"; direction: "incoming" | "outgoing" }
  | { type: "friend_request_cancelled"; direction: "incoming" | "outgoing" }
  | { type: "friend_request_rejected"; direction: "incoming" | "outgoing" }
  | { type: "friend_request_failed" }
  | { type: "friend_added" }
  | { type: "friend_removed" }
  | { type: "blocked" }
  | { type: "unblocked" };

export function transitionEvents(previous: EdgeState, next: EdgeState, cause: "local" | "remote" | "reply"): FriendshipEvent[] {
  if (previous === next) return [];
  const events: FriendshipEvent[] = [];
  if (previous === "friends") events.push({ type: "friend_removed" });
  if (next === "friends") events.push({ type: "friend_added" });
  if (next === "blocked") events.push({ type: "blocked" });
  if (previous === "blocked") events.push({ type: "unblocked" });
  if (next === "outgoing") events.push({ type: "friend_request", direction: "outgoing" });
  if (next === "incoming") events.push({ type: "friend_request", direction: "incoming" });
  if (previous === "outgoing" && next !== "friends") {
    if (cause === "local") events.push({ type: "friend_request_cancelled", direction: "outgoing" });
    else if (cause === "reply") events.push({ type: "friend_request_failed" });
    else events.push({ type: "friend_request_rejected", direction: "outgoing" });
  }
  if (previous === "incoming" && next !== "friends") {
    if (cause === "local") events.push({ type: "friend_request_rejected", direction: "incoming" });
    else events.push({ type: "friend_request_cancelled", direction: "incoming" });
  }
  return events;
}
