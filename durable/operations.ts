/**
 * Operations: what a user does, the same whichever way they ask — an HTTP
 * request (the RPC methods of durable/user-presence.ts, after admission), a
 * JSON frame (durable/json-sockets.ts) or a Decentraland RPC (durable/dcl.ts).
 * Plain functions over the object's parts, so a part can hold one and call
 * it alone; `refresh` and `scheduleAlarm` are the object's own.
 */
import type { FriendList, LocalOp } from "../src/presence/friendship";
import { ok, refuse, type Result } from "../src/presence/result";
import type { HeartbeatBody } from "../src/presence/schema";
import type { DeviceKind, LastSeenPrivacy, Presence, Transport } from "../src/presence/types";
import type { FriendshipChange, FriendshipRefusalCode, Friendships } from "./friendships";
import type { Host } from "./host";
import type { OwnPresence } from "./presence";
import type { Watching } from "./watching";

export const NOT_FOUND = "no such user among your friends";

/** A privacy change for all friends (`shareLocation`, `lastSeen`) and/or one `friend` (hidden from, chosen to see last seen). */
export type PrivacyChange = { shareLocation?: "all" | "none"; lastSeen?: LastSeenPrivacy; friend?: { userId: string; hidden?: boolean; lastSeen?: boolean } };

export interface Operations {
  /** A heartbeat of one device (already admitted): recorded, presence refreshed; the user's own view after it. */
  heartbeat(deviceId: string, kind: DeviceKind, transport: Transport, body: HeartbeatBody, now: number): Promise<Presence>;
  /** Self, or a friend's presence from their object; anyone else is not found. */
  lookup(target: string): Promise<Result<Presence, "not_found">>;
  /**
   * One friendship operation by this user about `other` (request, accept, block…).
   * This side changes at once; the other side is told through the ordered
   * outbox (delivered now, retried by the alarm until acknowledged) and its
   * reply is folded back in.
   */
  friendship(other: string, op: LocalOp, text?: string | null): Promise<Result<FriendshipChange, FriendshipRefusalCode>>;
  friendList(): FriendList;
  /** Privacy: share realm/position with all friends or none; who sees "last seen"; hide presence from single friends. */
  privacy(change: PrivacyChange): Promise<Result<FriendList, "not_found">>;
  onlineFriends(): Promise<Presence[]>;
  refresh(now: number): Promise<void>;
}

interface Parts {
  host: Host;
  presence: OwnPresence;
  friendships: Friendships;
  watching: Watching;
  refresh(now: number): Promise<void>;
  scheduleAlarm(now: number): Promise<void>;
}

export function userOperations({ host, presence, friendships, watching, refresh, scheduleAlarm }: Parts): Operations {
  const friendList = (): FriendList => ({
    ...friendships.list(),
    shareLocation: presence.shareLocation,
    lastSeen: presence.lastSeen,
    lastSeenShownTo: host.store.lastSeenShownTo(),
  });
  return {
    heartbeat: async (deviceId, kind, transport, body, now) => {
      presence.recordHeartbeat(deviceId, kind, transport, body, now);
      await refresh(now);
      return presence.selfView(now);
    },
    lookup: async (target) => {
      if (target === host.userId) return ok(presence.selfView(Date.now()));
      if (!host.store.isFriend(target)) return refuse("not_found", NOT_FOUND);
      const seen = await host.stub(target).presenceFor(host.userId);
      return seen.ok ? ok(seen.value) : refuse("not_found", NOT_FOUND);
    },
    friendship: async (other, op, text) => {
      const planned = friendships.plan(other, op);
      if (!planned.ok) return planned;
      const now = Date.now();
      await friendships.apply(planned.value, text ?? null, now);
      await scheduleAlarm(now);
      return friendships.outcome(other, op, planned.value.send);
    },
    friendList,
    privacy: async (change) => {
      const now = Date.now();
      const { friend } = change;
      if (friend) {
        if (!host.store.isFriend(friend.userId)) return refuse("not_found", NOT_FOUND);
        if (friend.lastSeen !== undefined) presence.showLastSeenTo(friend.userId, friend.lastSeen);
        if (friend.hidden !== undefined) await presence.hideFrom(friend.userId, friend.hidden, now);
      }
      if (change.lastSeen) presence.lastSeen = change.lastSeen;
      if (change.shareLocation) {
        presence.shareLocation = change.shareLocation;
        await refresh(now);
      }
      await scheduleAlarm(now);
      return ok(friendList());
    },
    onlineFriends: () => watching.onlineFriends(),
    refresh,
  };
}
