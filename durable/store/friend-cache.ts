/**
 * The presence of the friends this user watches, in memory only (issue #11):
 * a friend's presence received by a watcher is what its sockets were sent;
 * after a wake the object rebuilds it from its friends (a re-watch,
 * durable/watching.ts). A delivered update writes no row.
 */
import type { Presence } from "../../src/presence/types";

export class FriendCache {
  private readonly byFriend = new Map<string, Presence>();

  get(friend: string): Presence | null {
    return this.byFriend.get(friend) ?? null;
  }

  /** Every cached presence, by friend id. */
  all(): Presence[] {
    return [...this.byFriend.values()].sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0));
  }

  /**
   * Keeps a friend's presence if it is newer than the cached one (a higher
   * seq, or the cached one is an `unknown` placeholder), or always with
   * `force`; returns whether it was kept.
   */
  keepIfNewer(presence: Presence, force: boolean): boolean {
    const held = this.byFriend.get(presence.userId);
    if (!force && held && held.status !== "unknown" && presence.seq <= held.seq) return false;
    this.byFriend.set(presence.userId, presence);
    return true;
  }

  /** Forgets one friend, or all. */
  forget(friend?: string): void {
    if (friend === undefined) this.byFriend.clear();
    else this.byFriend.delete(friend);
  }
}
