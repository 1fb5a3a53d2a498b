/**
 * Friendships: this user's side of every edge (src/presence/friendship.ts has
 * the rules). A change is stored here at once and told to the other side
 * through the ordered outbox (delivered now, retried by the alarm until
 * acknowledged); the other side's reply is folded back in. Live views follow
 * every change: events to this user's sockets, leases and cache dropped when
 * a friendship ends, the new friend watched when one begins.
 */
import {
  applyRemote,
  deriveState,
  onReply,
  planLocal,
  transitionEvents,
  type Edge,
  type EdgeMessage,
  type EdgeReply,
  type EdgeState,
  type FriendList,
  type FriendshipErrorCode,
  type LocalOp,
} from "../src/presence/friendship";
import type { ServerMessage } from "../src/protocol";
import { ok, refuse, type Refusal, type Result } from "../src/presence/result";
import type { ServerEvents } from "./events";
import type { Host } from "./host";
import type { Outbox } from "./outbox";
import type { Sockets } from "./sockets";
import type { EdgeRow } from "./schema";
import type { Watching } from "./watching";

/** An edge message as queued in the outbox. */
interface EdgePayload extends EdgeMessage {
  /** The request's note, for `want` messages. */
  text: string | null;
  /** The sender became friends by this message: show the friend when the ack says so. */
  announce: boolean;
}

/** What this user now sees about the other user; `pending`: the other side has not acknowledged yet. */
export interface FriendshipChange {
  userId: string;
  state: EdgeState;
  pending: boolean;
}

/** A local operation, planned and not yet stored. */
export interface Planned {
  other: string;
  previous: Edge;
  edge: Edge;
  send: EdgeMessage | null;
}

export type FriendshipRefusalCode = FriendshipErrorCode | "friend_limit" | "request_limit" | "block_limit" | "user_not_found";

/** Who moved an edge: this user, the other side's message, or the other side's reply. */
type Cause = "local" | "remote" | "reply";

export class Friendships {
  /** Server-side events (durable/events.ts); null: the operator configured no queue. */
  events: ServerEvents | null = null;
  /** Last reply of each target's object to an edge message (for a synchronous answer to the caller). */
  private readonly lastReplies = new Map<string, EdgeReply>();

  constructor(
    private readonly host: Host,
    private readonly sockets: Sockets,
    private readonly outbox: Outbox,
    private readonly watching: Watching,
  ) {
    outbox.handle("edge", async (row) => {
      const target = row.target;
      const { text, announce, ...message } = JSON.parse(row.payload) as EdgePayload;
      const reply = await this.host.stub(target).receiveEdge(this.host.userId, message, text);
      this.lastReplies.set(target, reply);
      await this.applyEdge(target, onReply(this.host.store.edge(target), message, reply), "reply", null);
      if (announce && reply === "ok") await this.watching.watchNewFriend(target, Date.now());
      if (reply !== "ok") this.forgetIfUntouched(target);
    });
  }

  /**
   * Plans one operation by this user about `other` (request, accept, block…):
   * the new edge and the message for the other side, or why not. Nothing is
   * stored yet.
   */
  plan(other: string, op: LocalOp): Result<Planned, FriendshipRefusalCode> {
    if (other === this.host.userId) return refuse("cannot_befriend_self", "that is you");
    const edge = this.host.store.edge(other);
    const plan = planLocal(edge, op);
    if (!plan.ok) return plan;
    const limit = this.limitRefusal(deriveState(edge), deriveState(plan.edge));
    if (limit) return limit;
    return ok({ other, previous: edge, edge: plan.edge, send: plan.send });
  }

  /** Stores a planned change at once, and tells the other side now (the outbox retries if it does not answer). */
  async apply({ other, previous, edge, send }: Planned, text: string | null, now: number): Promise<void> {
    await this.applyEdge(other, edge, "local", text);
    if (!send) return;
    const announce = deriveState(edge) === "friends" && deriveState(previous) !== "friends";
    this.outbox.enqueueEdge(other, { ...send, text, announce } satisfies EdgePayload, now);
    await this.outbox.deliver(now, other);
  }

  /**
   * What the caller is told after `apply`: a request to a user who never
   * used the service fails (`user_not_found`; one to a user who blocked this
   * one is answered `ok` and looks like any pending request: shadow refusal,
   * src/presence/friendship.ts); an accept of a request withdrawn meanwhile fails too.
   */
  outcome(other: string, op: LocalOp, sent?: EdgeMessage | null): Result<FriendshipChange, FriendshipRefusalCode> {
    const { store } = this.host;
    const edge = store.edge(other);
    const final = deriveState(edge);
    const reply = this.lastReplies.get(other);
    this.lastReplies.delete(other);
    // This user moved on meanwhile (a cancel pipelined behind the request): report what they see now, not a refusal.
    const movedOn = sent !== undefined && sent !== null && edge.myVersion > sent.version;
    if (op === "request" && final === "none" && !movedOn) {
      return reply === "limit" ? refuse("request_limit", "that user cannot take more friend requests or friends") : refuse("user_not_found", "no such user");
    }
    if (op === "accept" && final !== "friends") return refuse("no_pending_request", "the request was withdrawn");
    return ok({ userId: other, state: final, pending: store.hasPendingEdges(other) });
  }

  /** Admin: make this user friends (or not) with each of `others`, through the same path as users' own operations. */
  async setAll(others: string[], state: "friends" | "removed", now: number): Promise<Result<{ pending: string[] }, "friend_limit">> {
    const { store, config } = this.host;
    const self = this.host.userId;
    const targets = [...new Set(others)].filter((o) => o !== self);
    if (state === "friends") {
      const current = new Set(store.friendIds());
      const added = targets.filter((t) => !current.has(t)).length;
      if (current.size + added > config.maxFriends) return refuse("friend_limit", `${self} would have more than ${config.maxFriends} friends`);
    }
    for (const other of targets) {
      const edge = store.edge(other);
      const plan = planLocal(edge, state === "friends" ? "befriend" : "unfriend");
      if (!plan.ok) continue;
      await this.applyEdge(other, plan.edge, "local", null);
      const announce = deriveState(plan.edge) === "friends" && deriveState(edge) !== "friends";
      if (plan.send) this.outbox.enqueueEdge(other, { ...plan.send, text: null, announce } satisfies EdgePayload, now);
    }
    await this.outbox.deliver(now, targets);
    return ok({ pending: targets.filter((t) => store.hasPendingEdges(t)) });
  }

  /**
   * Storage bound (issue #12, item 3): a first request that was refused (the
   * target never used the service, or is full) leaves
   * no row here. Safe for the version order: the target recorded nothing from
   * this user (no message of ours was ever accepted, none of theirs heard),
   * so a later request may start again at version 1.
   */
  private forgetIfUntouched(target: string): void {
    const { store } = this.host;
    const edge = store.edge(target);
    if (edge.mine === "none" && edge.theirs === "none" && edge.myVersion === 1 && edge.theirVersion === 0 && !store.hasPendingEdges(target, 1)) {
      store.forgetEdge(target);
    }
  }

  /** A change of intent from `from`'s object. Idempotent (duplicates are ignored by version). */
  async receive(from: string, message: EdgeMessage, text: string | null): Promise<EdgeReply> {
    const { store, config } = this.host;
    if (message.force) store.set("registered", true);
    const counts = store.edgeCounts();
    const registered = store.get("registered") === true;
    const { edge, reply } = applyRemote(store.edge(from), message, {
      registered,
      pendingLimitReached: counts.incoming >= config.maxPendingRequests,
      friendLimitReached: counts.friends >= config.maxFriends,
    });
    // A user who never used the service records nothing others send (issue #12): asking costs it no storage.
    if (!registered) return reply;
    await this.applyEdge(from, edge, "remote", text);
    return reply;
  }

  /** This user's friendships, requests and blocks (the privacy settings are added by the caller). */
  list(): Omit<FriendList, "shareLocation" | "lastSeen" | "lastSeenShownTo"> {
    const rows = this.host.store.edges();
    const of = (state: EdgeState) => rows.filter((r) => r.state === state);
    const request = ({ userId, message, since }: EdgeRow) => ({ userId, message, since });
    return {
      friends: of("friends").map((r) => r.userId),
      incoming: of("incoming").map(request),
      outgoing: of("outgoing").map(request),
      blocked: of("blocked").map((r) => r.userId),
      hiddenFrom: of("friends")
        .filter((r) => r.hidden)
        .map((r) => r.userId),
    };
  }

  /**
   * The limits of this user's own rows. Blocks count too (issue #12): a block
   * of an id never contacted is a row here and nothing anywhere else (no
   * message is sent), so MAX_BLOCKED bounds it — the same answer whether the
   * id is in use or not, so the limit tells nothing about who exists.
   */
  private limitRefusal(state: EdgeState, next: EdgeState): Refusal<"friend_limit" | "request_limit" | "block_limit"> | null {
    const { store, config } = this.host;
    const counts = store.edgeCounts();
    if (next === "friends" && state !== "friends" && counts.friends >= config.maxFriends) {
      return refuse("friend_limit", `at most ${config.maxFriends} friends`);
    }
    if (next === "outgoing" && state !== "outgoing" && counts.outgoing >= config.maxPendingRequests) {
      return refuse("request_limit", `at most ${config.maxPendingRequests} pending requests`);
    }
    if (next === "blocked" && state !== "blocked" && counts.blocked >= config.maxBlocked) {
      return refuse("block_limit", `at most ${config.maxBlocked} blocked users`);
    }
    return null;
  }

  /**
   * Stores this side of the edge with `other` and updates live views at once:
   * events to this user's sockets, leases and cache dropped when a friendship
   * ends, the new friend's presence fetched when one begins by the other
   * side's message (the originator does that when the ack arrives: until then
   * the other object would refuse a non-friend's watch).
   */
  private async applyEdge(other: string, edge: Edge, cause: Cause, text: string | null): Promise<void> {
    const { store } = this.host;
    const previous = deriveState(store.edge(other));
    const next = deriveState(edge);
    const now = Date.now();
    store.putEdge(other, edge, text, now);
    if (previous === next) return;
    this.sockets.tap({ type: "edge", userId: other, previous, next, cause });
    if (previous === "friends") {
      store.removeWatcher(other);
      store.dropQueued(["presence", "watch"], other);
      store.uncache(other);
    }
    for (const event of transitionEvents(previous, next, cause)) {
      if (event.type === "friend_added") {
        if (cause === "remote") await this.watching.watchNewFriend(other, now);
        continue;
      }
      const message = event.type === "friend_request" ? store.requestNote(other) : undefined;
      this.sockets.broadcast({ ...event, userId: other, ...(message !== undefined ? { message } : {}) } as ServerMessage);
    }
    await this.events?.edgeChanged(other, previous, edge, cause, now);
  }
}
