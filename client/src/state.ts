/**
 * FriendsState: the client's view of its friends' presence, and the only
 * place that decides whether an incoming presence is applied. Pure (no I/O,
 * no timers) so the reconciliation rules are unit-tested on their own.
 *
 * Rules
 *  - `seq` is per user and only grows: a presence older than the one held is
 *    dropped, an equal one is a duplicate (dropped), except that an `unknown`
 *    placeholder may be replaced by the same seq (the server re-sends the
 *    real presence with the seq it had before it lost contact).
 *  - A `subscribed` snapshot lists the friends who are online now. Each entry
 *    replaces what we hold unless we hold something newer. Friends we hold as
 *    online who are absent from the snapshot went offline while we were not
 *    listening — unless a push for them arrived on this connection after we
 *    asked for the snapshot (that push is newer than the snapshot).
 */
import { isShownOnline, type Presence } from "../../src/protocol/index.js";

export type StateChange =
  | { kind: "update"; presence: Presence; previous: Presence | undefined }
  | { kind: "added"; presence: Presence; previous: Presence | undefined }
  | { kind: "removed"; userId: string; previous: Presence | undefined };

/** Whether `next` may replace `current` (undefined: nothing held yet). */
export function isNewer(next: Presence, current: Presence | undefined, allowEqual = false): boolean {
  if (!current) return true;
  if (next.seq > current.seq) return true;
  if (next.seq === current.seq) return allowEqual || (current.status === "unknown" && next.status !== "unknown");
  return false;
}

/** What a friend looks like once they are known to have gone offline, keeping the last seq we saw. */
export function wentOffline(previous: Presence): Presence {
  return { ...previous, status: "offline", realm: null, position: null, statusText: null, devices: [] };
}

export class FriendsState {
  private readonly byId = new Map<string, Presence>();

  get(userId: string): Presence | undefined {
    return this.byId.get(userId);
  }

  /** Every friend we know of, sorted by user id. */
  all(): Presence[] {
    return [...this.byId.values()].sort((a, b) => a.userId.localeCompare(b.userId));
  }

  get size(): number {
    return this.byId.size;
  }

  /** A `presence` push, a `presence_result`, or an entry of `online_friends`. */
  applyPresence(presence: Presence): StateChange[] {
    const previous = this.byId.get(presence.userId);
    if (!isNewer(presence, previous)) return [];
    this.byId.set(presence.userId, presence);
    return [{ kind: "update", presence, previous }];
  }

  /**
   * The `subscribed` snapshot of online friends. `touched`: users whose
   * presence was applied from pushes on this connection after the
   * subscription request was sent; absence from the snapshot says nothing
   * about them. `scope`: the friends the snapshot covers (a subset
   * subscription's); absence says nothing about anyone else.
   */
  applySnapshot(online: Presence[], touched: ReadonlySet<string> = new Set(), scope?: ReadonlySet<string>): StateChange[] {
    const changes: StateChange[] = [];
    const listed = new Set<string>();
    for (const presence of online) {
      listed.add(presence.userId);
      const previous = this.byId.get(presence.userId);
      if (!isNewer(presence, previous, true) || same(presence, previous)) continue;
      this.byId.set(presence.userId, presence);
      changes.push({ kind: "update", presence, previous });
    }
    for (const previous of [...this.byId.values()]) {
      if (listed.has(previous.userId) || touched.has(previous.userId) || previous.status === "offline") continue;
      if (scope && !scope.has(previous.userId)) continue;
      const presence = wentOffline(previous);
      this.byId.set(previous.userId, presence);
      changes.push({ kind: "update", presence, previous });
    }
    return changes;
  }

  /** `friend_added`: the new friend's current presence (re-adding someone keeps the seq rule). */
  addFriend(presence: Presence): StateChange[] {
    const previous = this.byId.get(presence.userId);
    if (!isNewer(presence, previous, true)) return [{ kind: "added", presence: previous!, previous }];
    this.byId.set(presence.userId, presence);
    return [{ kind: "added", presence, previous }];
  }

  /** `friend_removed`. */
  removeFriend(userId: string): StateChange[] {
    const previous = this.byId.get(userId);
    this.byId.delete(userId);
    return [{ kind: "removed", userId, previous }];
  }

  clear(): void {
    this.byId.clear();
  }
}

function same(a: Presence, b: Presence | undefined): boolean {
  return b !== undefined && a.seq === b.seq && a.status === b.status;
}

/** Transitions a change implies for the `online` / `offline` events. */
export function transition(change: StateChange): "online" | "offline" | null {
  if (change.kind === "removed") return null;
  const was = change.previous !== undefined && isShownOnline(change.previous.status);
  const is = isShownOnline(change.presence.status);
  if (is && !was) return "online";
  if (!is && was && change.presence.status === "offline") return "offline";
  return null;
}
