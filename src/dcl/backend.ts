/**
 * What the Decentraland endpoint needs from the user's Durable Object, in
 * presence terms. The RPC layer (src/dcl/rpc.ts, src/dcl/session.ts) knows the
 * wire protocol and the proto messages; it knows no storage and no other
 * objects. The UserPresence object implements this interface for the one user
 * the socket belongs to (the signer of the auth chain), reusing the same code
 * paths as the JSON protocol: the friend list, the friendship state machine,
 * the cached presence of watched friends.
 *
 * No Cloudflare imports here.
 */
import type { EdgeState, FriendList, FriendshipErrorCode } from "../presence/friendship";
import type { Presence } from "../presence/types";

/** The friendship operations a DCL client can ask for (UpsertFriendship, BlockUser, UnblockUser). */
export type DclFriendshipOp = "request" | "accept" | "reject" | "cancel" | "remove" | "block" | "unblock";

/** What the object answers to one friendship operation (the shape of UserPresence.friendship's result). */
export type FriendshipOutcome =
  | { ok: true; userId: string; state: EdgeState; pending: boolean }
  | { ok: false; code: FriendshipErrorCode | "friend_limit" | "request_limit" | "user_not_found" | (string & {}); message: string };

/** Display fields of a Decentraland profile. edge-presence has no source for them: empty unless a hook provides them. */
export interface DclProfile {
  name: string;
  hasClaimedName: boolean;
  profilePictureUrl: string;
}

export interface DclBackend {
  /** The user's own view of their friendships: friends, requests both ways (with note and time), blocked users. */
  friendList(): Promise<FriendList>;
  /**
   * Friends of `other` who are also this user's friends (GetMutualFriends).
   * The object decides what it may reveal: [] when `other` is unknown, blocks this user, or refuses.
   */
  mutualFriends(other: string): Promise<string[]>;
  /**
   * The friends this user sees as online right now (the opening snapshot of
   * SubscribeToFriendConnectivityUpdates): the watched friends' cached presence
   * while the user has a live device, which a DCL socket is.
   */
  onlineFriends(): Promise<Presence[]>;
  /** One friendship operation by this user about `other`, through the same path as the JSON protocol. */
  friendship(other: string, op: DclFriendshipOp, message: string | null): Promise<FriendshipOutcome>;
  /**
   * Optional profile hook (names, pictures), for example from a Catalyst or a
   * KV namespace. Missing entries are sent with empty fields: an update is never
   * dropped because a profile is missing.
   */
  profiles?(addresses: string[]): Promise<Map<string, DclProfile>>;
}

/**
 * What the object tells a DCL socket about, as it happens: the same events it
 * broadcasts to JSON sockets (durable/user-presence.ts `broadcast`), with the
 * cause of friendship changes so that a user's own actions are not echoed.
 */
export type DclEvent =
  /** A friend's presence changed (the JSON `presence` push). */
  | { type: "presence"; presence: Presence }
  /** A friendship change of this user's edge with `userId` (the JSON friendship events), and who caused it. */
  | {
      type: "friendship";
      userId: string;
      change:
        | "friend_request_incoming"
        | "friend_request_outgoing"
        | "friend_request_cancelled_incoming"
        | "friend_request_cancelled_outgoing"
        | "friend_request_rejected_incoming"
        | "friend_request_rejected_outgoing"
        | "friend_request_failed"
        | "friend_added"
        | "friend_removed"
        | "blocked"
        | "unblocked";
      cause: "local" | "remote" | "reply";
      /** The request's note (friend_request_incoming). */
      message?: string | null;
      /** When the request was made (ms since epoch), for friend_request_incoming. */
      since?: number;
      /** The friend's presence, for friend_added. */
      presence?: Presence;
    }
  /**
   * Someone blocked (or unblocked) this user. edge-presence never tells a user
   * that they are blocked (docs/FRIENDSHIPS.md), so the object does not emit
   * this today; the stream exists for protocol compatibility.
   */
  | { type: "block"; address: string; isBlocked: boolean };
