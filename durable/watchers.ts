/**
 * Watchers: the friends holding a lease on this user because they have a
 * live client, and the fan-out of this user's presence to them. Only watchers
 * are told anything: an offline friend's object is never woken by this user's
 * moves. A friend this user hides from sees the frozen offline shape instead.
 * A lease carries the watcher's position interest: position-only moves go
 * only to watchers that want them (issue #11); everything else to all.
 * Per watcher, one call is in flight at a time and at most one newer state
 * waits for it (latest wins): the work a burst leaves behind is bounded by the
 * number of watchers, and a slow watcher gets coarser updates, not late ones.
 */
import { inChunks } from "../src/presence/chunks";
import { ok, refuse, type Result } from "../src/presence/result";
import { wantsPosition } from "../src/presence/interest";
import type { PositionInterest, Presence } from "../src/presence/types";
import { FANOUT_CHUNK, type Host } from "./host";
import type { Lease } from "./schema";
import type { Outbox } from "./outbox";

/** Shortest and longest lease a watcher may ask for (a configured WATCH_LEASE_MS above 24 h raises the longest). */
const LEASE_MS = { min: 1_000, max: 86_400_000 };

/** The newest state waiting for a watcher's call in flight, and the pushes that wait for it to be sent. */
interface Pending {
  presence: Presence;
  now: number;
  sent: Promise<void>;
  resolve: () => void;
}

export class Watchers {
  /**
   * The watchers a call is in flight to, each with at most one newer state
   * waiting for that call (issue #11): a burst of changes sends the first and
   * then only the latest, so a slow watcher gets coarser updates, never stale
   * or lost ones, and this object never has more than one call per watcher out
   * nor more than one state per watcher held.
   */
  private readonly sending = new Map<string, { pending: Pending | null }>();

  /**
   * Watchers that took this user's final offline push (no live device left):
   * that push also released this user's lease on them, so `Watching.stop`
   * sends them no `unwatch` (one call per friend saved at every sign-off).
   */
  readonly releasedBy = new Set<string>();

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
    this.host.store.putWatcher(watcher, now + Math.min(Math.max(leaseMs, LEASE_MS.min), Math.max(LEASE_MS.max, this.host.config.watchLeaseMs)), positions, realm);
    return ok(undefined);
  }

  release(watcher: string): void {
    this.host.store.removeWatcher(watcher);
  }

  /** A fan-out is still waiting for a friend's object (back-pressure for position-only moves). */
  get busy(): boolean {
    return this.sending.size > 0;
  }

  /** Calls in flight and states waiting, over all watchers (tests: the bound holds). */
  get backlog(): { inFlight: number; pending: number } {
    let pending = 0;
    for (const slot of this.sending.values()) if (slot.pending) pending++;
    return { inFlight: this.sending.size, pending };
  }

  /**
   * Sends this user's presence to every watcher holding a valid lease (or
   * `only` to one: a privacy toggle), in parallel chunks. A watcher a call is
   * still out to gets this state after that call, replacing any state waiting
   * there (latest wins; every state is the whole presence). Resolves once each
   * target has its own call answered or its waiting state sent: at most two
   * calls' time. A push that fails is retried through the outbox with the
   * latest presence; a watcher that says it no longer watches loses its lease.
   */
  async push(presence: Presence, now: number, only?: string, positionOnly = false): Promise<void> {
    const { store } = this.host;
    // A position-only move goes only to watchers who asked for it (the watcher's realm as its lease says: it survives a wake).
    const wanted = positionOnly ? (l: Lease) => wantsPosition(l.positions, l.realm ?? store.cached(l.watcher)?.realm, presence.realm) : undefined;
    const targets = store.fanOutLeases(now, only, wanted).map((l) => l.watcher);
    const waiting: Array<Promise<void>> = [];
    const free: string[] = [];
    for (const watcher of targets) {
      const slot = this.sending.get(watcher);
      if (!slot) free.push(watcher);
      else if (slot.pending) {
        slot.pending.presence = presence;
        slot.pending.now = now;
        waiting.push(slot.pending.sent);
      } else {
        let resolve!: () => void;
        const sent = new Promise<void>((r) => (resolve = r));
        slot.pending = { presence, now, sent, resolve };
        waiting.push(sent);
      }
    }
    for (const watcher of free) this.sending.set(watcher, { pending: null });
    await Promise.all([...waiting, inChunks(free, FANOUT_CHUNK, (watcher) => this.sendFirst(watcher, presence, now))]);
  }

  /** The call to a watcher none was in flight to; once answered, the state that waited meanwhile (if any) goes out. */
  private async sendFirst(watcher: string, presence: Presence, now: number): Promise<void> {
    const slot = this.sending.get(watcher)!;
    let delivered = false;
    try {
      delivered = await this.send(watcher, presence, now);
    } finally {
      // Waited for by the pushes that left a state there, not by this one.
      void this.drain(watcher, slot, delivered);
    }
  }

  /** Sends what waited for a watcher's call, until nothing does; then the watcher is free. */
  private async drain(watcher: string, slot: { pending: Pending | null }, delivered: boolean): Promise<void> {
    try {
      while (slot.pending) {
        const { presence, now, resolve } = slot.pending;
        slot.pending = null;
        // After a failed call the outbox's retry carries the latest presence; after a refusal the lease is gone.
        try {
          if (delivered) delivered = await this.send(watcher, presence, now);
        } finally {
          resolve();
        }
      }
    } finally {
      this.sending.delete(watcher);
      slot.pending?.resolve();
    }
  }

  /** One call; true when the watcher took it (a refusal drops the lease, a failure is retried by the outbox). */
  private async send(watcher: string, presence: Presence, now: number): Promise<boolean> {
    const { store } = this.host;
    try {
      // The final offline (checked only for an offline presence: other pushes pay nothing for it).
      const releasing = presence.status === "offline" && this.signingOff();
      const result = await this.host.call(watcher, (stub) => stub.receivePresence(this.host.userId, this.viewFor(watcher, presence), releasing));
      if (releasing) this.releasedBy.add(watcher);
      if (!result.ok) {
        store.removeWatcher(watcher);
        return false;
      }
      store.deliveredKeyed("presence", watcher);
      return true;
    } catch {
      this.outbox.retry("presence", watcher, now);
      return false;
    }
  }

  /**
   * What one friend may see of `presence`: set by the presence part
   * (durable/presence.ts `viewFor`: hiding, "last seen", that friend's seq).
   */
  viewFor: (friend: string, presence: Presence) => Presence = (_friend, presence) => presence;

  /** Whether this user has no live device left (set by the class): an offline push then releases this user's lease on the watcher. */
  signingOff: () => boolean = () => false;
}
