/**
 * The friendship lifecycle as seen from one side of an edge. Each user's
 * object stores its own side; the two sides talk through ordered, retried edge
 * messages. The side receiving a message is authoritative for conflicts (it
 * replies, and the sender corrects itself), so races converge:
 *   - both request each other at once → both become friends;
 *   - accept crosses a cancel → the acceptor is told "refused" and reverts;
 *   - a duplicate delivery (lost ack) is a no-op.
 * docs/FRIENDSHIPS.md draws the states and transitions.
 */

/** A user's own view of their friendships (ListFriends, GET /v1/friends). */
export interface FriendList {
  friends: string[];
  incoming: { userId: string; message: string | null; since: number }[];
  outgoing: { userId: string; message: string | null; since: number }[];
  blocked: string[];
  hiddenFrom: string[];
  shareLocation: "all" | "none";
}

/** One side of an edge. `blocked` is known only to the blocker. */
export type EdgeState = "none" | "outgoing" | "incoming" | "friends" | "blocked";

/** What a user (or the admin API) asks their own object to do about another user. */
export type LocalOp = "request" | "cancel" | "accept" | "reject" | "remove" | "block" | "unblock" | "befriend" | "unfriend";

/** What travels to the other side's object (ordered per target, at least once). */
export type EdgeMessage = "request" | "cancel" | "accept" | "reject" | "remove" | "befriend";

/** The receiving side's answer, which the sender folds back in with `onReply`. */
export type EdgeReply = "pending" | "friends" | "refused" | "limit" | "ok";

export type FriendshipErrorCode =
  | "already_friends"
  | "blocked"
  | "no_pending_request"
  | "not_friends"
  | "not_blocked"
  | "cannot_befriend_self";

export type LocalPlan =
  | { ok: true; next: EdgeState; send: EdgeMessage | null }
  | { ok: false; code: FriendshipErrorCode; message: string };

const fail = (code: FriendshipErrorCode, message: string): LocalPlan => ({ ok: false, code, message });

/** Plans a local operation: the new state of this side and the message for the other side, if any. */
export function planLocal(state: EdgeState, op: LocalOp): LocalPlan {
  switch (op) {
    case "request":
      if (state === "friends") return fail("already_friends", "you are already friends");
      if (state === "blocked") return fail("blocked", "unblock this user first");
      // Asking someone who already asked you is accepting.
      if (state === "incoming") return { ok: true, next: "friends", send: "accept" };
      return { ok: true, next: "outgoing", send: "request" };
    case "cancel":
      if (state !== "outgoing") return fail("no_pending_request", "you have no pending request to this user");
      return { ok: true, next: "none", send: "cancel" };
    case "accept":
      if (state === "friends") return { ok: true, next: "friends", send: null };
      if (state !== "incoming") return fail("no_pending_request", "this user has not sent you a request");
      return { ok: true, next: "friends", send: "accept" };
    case "reject":
      if (state !== "incoming") return fail("no_pending_request", "this user has not sent you a request");
      return { ok: true, next: "none", send: "reject" };
    case "remove":
      if (state !== "friends") return fail("not_friends", "you are not friends");
      return { ok: true, next: "none", send: "remove" };
    case "block":
      if (state === "blocked") return { ok: true, next: "blocked", send: null };
      // The other side only learns that the edge is gone, never that it is blocked.
      return { ok: true, next: "blocked", send: state === "none" ? null : "remove" };
    case "unblock":
      if (state !== "blocked") return fail("not_blocked", "this user is not blocked");
      return { ok: true, next: "none", send: null };
    case "befriend":
      // Admin: make friends regardless (bulk import, support tools).
      return { ok: true, next: "friends", send: "befriend" };
    case "unfriend":
      return state === "friends" ? { ok: true, next: "none", send: "remove" } : { ok: true, next: state, send: null };
  }
}

export interface RemoteContext {
  /** The receiver has never used the service: a request fails as for a blocker (no leak). */
  registered: boolean;
  /** Accepting one more incoming request would exceed the receiver's pending limit. */
  pendingLimitReached: boolean;
  /** Becoming friends would exceed the receiver's friend limit. */
  friendLimitReached: boolean;
}

/** Applies a message from the other side; returns this side's new state and the reply. */
export function applyRemote(state: EdgeState, message: EdgeMessage, context: RemoteContext): { next: EdgeState; reply: EdgeReply } {
  switch (message) {
    case "request":
      if (state === "blocked" || !context.registered) return { next: state, reply: "refused" };
      if (state === "friends") return { next: "friends", reply: "friends" };
      if (state === "outgoing") {
        if (context.friendLimitReached) return { next: state, reply: "limit" };
        return { next: "friends", reply: "friends" };
      }
      if (state === "incoming") return { next: "incoming", reply: "pending" };
      if (context.pendingLimitReached) return { next: state, reply: "limit" };
      return { next: "incoming", reply: "pending" };
    case "cancel":
      return { next: state === "incoming" ? "none" : state, reply: "ok" };
    case "accept":
      if (state === "friends") return { next: "friends", reply: "friends" };
      if (state === "outgoing") {
        if (context.friendLimitReached) return { next: "none", reply: "limit" };
        return { next: "friends", reply: "friends" };
      }
      return { next: state, reply: "refused" };
    case "reject":
      return { next: state === "outgoing" ? "none" : state, reply: "ok" };
    case "remove":
      return { next: state === "blocked" ? "blocked" : "none", reply: "ok" };
    case "befriend":
      return { next: "friends", reply: "friends" };
  }
}

/** Folds the other side's reply into this side's state. */
export function onReply(state: EdgeState, sent: EdgeMessage, reply: EdgeReply): EdgeState {
  if (sent === "request") {
    if (reply === "friends" && state === "outgoing") return "friends";
    if ((reply === "refused" || reply === "limit") && state === "outgoing") return "none";
  }
  if (sent === "accept" && (reply === "refused" || reply === "limit") && state === "friends") return "none";
  return state;
}

/** Events for this side's clients when its state moves; `cause` says who moved it. */
export type FriendshipEvent =
  | { type: "friend_request"; direction: "incoming" | "outgoing" }
  | { type: "friend_request_cancelled"; direction: "incoming" | "outgoing" }
  | { type: "friend_request_rejected"; direction: "incoming" | "outgoing" }
  | { type: "friend_request_failed" }
  | { type: "friend_added" }
  | { type: "friend_removed" }
  | { type: "blocked" }
  | { type: "unblocked" };

export function transitionEvents(previous: EdgeState, next: EdgeState, cause: "local" | "remote" | "reply", sent?: EdgeMessage): FriendshipEvent[] {
  if (previous === next) return [];
  const events: FriendshipEvent[] = [];
  if (previous === "friends") events.push({ type: "friend_removed" });
  if (next === "friends") events.push({ type: "friend_added" });
  if (next === "blocked") events.push({ type: "blocked" });
  if (previous === "blocked") events.push({ type: "unblocked" });
  if (next === "outgoing") events.push({ type: "friend_request", direction: "outgoing" });
  if (next === "incoming") events.push({ type: "friend_request", direction: "incoming" });
  if (previous === "outgoing" && next === "none") {
    if (cause === "local") events.push({ type: "friend_request_cancelled", direction: "outgoing" });
    else if (cause === "reply" && sent === "request") events.push({ type: "friend_request_failed" });
    else events.push({ type: "friend_request_rejected", direction: "outgoing" });
  }
  if (previous === "incoming" && next === "none") {
    if (cause === "local") events.push({ type: "friend_request_rejected", direction: "incoming" });
    else events.push({ type: "friend_request_cancelled", direction: "incoming" });
  }
  if (previous === "incoming" && next === "blocked") events.push({ type: "friend_request_rejected", direction: "incoming" });
  if (previous === "outgoing" && next === "blocked") events.push({ type: "friend_request_cancelled", direction: "outgoing" });
  return events;
}
