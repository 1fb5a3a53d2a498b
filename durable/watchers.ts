/**
 * Watchers: the friends holding a lease on this user because they have a
 * live client, and the fan-out of this user's presence to them. Only watchers
 * are told anything: an offline friend's object is never woken by this user's
 * moves. A friend this user hides from sees the frozen offline shape instead.
 * A lease carries the watcher's position interest: position-only moves go
 * only to watchers that want them (issue #11); everything else to all.
 */
import { inChunks } from "../src/presence/chunks";
import { ok, refuse, type Result } from "../src/presence/result";
import { wantsPosition } from "../src/presence/interest";
import type { PositionInterest, Presence } from "../src/presence/types";
import { FANOUT_CHUNK, type Host } from "./host";
import type { Outbox } from "./outbox";

/** Shortest and longest lease a watcher may ask for. */
const LEASE_MS = { min: 1_000, max: 3_600_000 };

export class Watchers {
  /** This user's fan-outs still waiting for friends' objects to answer. */
  private inFlight = 0;

  constructor(
    private readonly host: Host,
    private readonly outbox: Outbox,
  ) {
    outbox.handle("presence", async ({ target }) => {
      const { store } = this.host;
      if (!store.isFriend(target)) return;
      const pushed = await this.host.stub(target).receivePresence(this.host.userId, this.viewFor(target, store.published(this.host.userId)));
      if (!pushed.ok) store.removeWatcher(target);
    });
  }

  /** A friend with a live client takes (or renews) a lease on this user. */
  grant(watcher: string, leaseMs: number, now: number, positions: PositionInterest = "all", realm: string | null = null): Result<void, "not_friends"> {
    if (!this.host.store.isFriend(watcher)) return refuse("not_friends", "only friends may watch");
    this.host.store.putWatcher(watcher, now + Math.min(Math.max(leaseMs, LEASE_MS.min), LEASE_MS.max), positions, realm);
    return ok(undefined);
  }

  release(watcher: string): void {
    this.host.store.removeWatcher(watcher);
  }

  /** A fan-out is still waiting for a friend's object (back-pressure for position-only moves). */
  get busy(): boolean {
    return this.inFlight > 0;
  }

  /**
   * Sends this user's presence to every watcher holding a valid lease (or
   * `only` to one: a privacy toggle), in parallel chunks. A push that fails is
   * retried through the outbox with the latest presence; a watcher that says
   * it no longer watches loses its lease.
   */
  async push(presence: Presence, now: number, only?: string, positionOnly = false): Promise<void> {
    const { store } = this.host;
    const from = this.host.userId;
    // A position-only move goes only to watchers who asked for it (the watcher's realm as its lease says: it survives a wake).
    const leases = store.fanOutLeases(now, only);
    const targets = positionOnly
      ? leases.filter((l) => wantsPosition(l.positions, l.realm ?? store.cached(l.watcher)?.realm, presence.realm)).map((l) => l.watcher)
      : leases.map((l) => l.watcher);
    this.inFlight++;
    try {
      await inChunks(
        targets,
        FANOUT_CHUNK,
        (w) => this.host.call(w, (stub) => stub.receivePresence(from, this.viewFor(w, presence))),
        (watcher, result) => {
          if (result.status === "rejected") this.outbox.retry("presence", watcher, now);
          else if (!result.value.ok) store.removeWatcher(watcher);
          else store.deliveredKeyed("presence", watcher);
        },
      );
    } finally {
      this.inFlight--;
    }
  }

  /**
   * What one friend may see of `presence`: set by the presence part
   * (durable/presence.ts `viewFor`: hiding, "last seen", that friend's seq).
   */
  viewFor: (friend: string, presence: Presence) => Presence = (_friend, presence) => presence;
}
