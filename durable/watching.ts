/**
 * Watching: while this user has a live client, their object holds a lease on
 * each friend's object and keeps a cache of the friends' presence, fed by
 * their pushes (fan-in). Leases are taken when the first device comes,
 * renewed at half-life (which doubles as anti-entropy), and released when the
 * last device goes. A friend whose object cannot be reached shows `unknown`
 * (Matrix's "don't know") until a retry gets through.
 *
 * The cache is memory only (issue #11: a delivered update writes no row).
 * After a wake it holds only what was pushed since; the first snapshot asked
 * for (Subscribe, GetOnlineFriends) rebuilds it with one re-watch of every
 * friend, which also renews the leases. Waking costs no fan-out by itself.
 */
import { inChunks } from "../src/presence/chunks";
import { offlinePresence } from "../src/presence/protocol";
import { isShownOnline } from "../src/protocol";
import { ok, refuse, type Result } from "../src/presence/result";
import { combinedInterest } from "../src/presence/interest";
import type { PositionInterest, Presence } from "../src/presence/types";
import { FANOUT_CHUNK, type Host } from "./host";
import type { Outbox } from "./outbox";
import type { Sockets } from "./sockets";

const unknown = (presence: Presence): Presence => ({ ...presence, status: "unknown" });

export class Watching {
  /** Friends whose friend_added is being announced right now (several paths may race to it). */
  private readonly announcing = new Set<string>();
  /** The cache holds every friend (watched by this instance); false after a wake until a re-watch. */
  private complete = false;
  /** The re-watch under way, shared by the snapshots that wait for it. */
  private rebuilding: Promise<void> | null = null;

  constructor(
    private readonly host: Host,
    private readonly sockets: Sockets,
    private readonly outbox: Outbox,
  ) {
    outbox.handle("watch", async ({ target }) => {
      const { store } = this.host;
      if (!this.live || !store.isFriend(target)) return;
      const watched = await this.host.stub(target).watch(this.host.userId, this.host.config.watchLeaseMs, this.interest(), this.ownRealm());
      if (!watched.ok) store.uncache(target);
      else if (store.cacheIfNewer(watched.value, true)) this.sockets.broadcast({ type: "presence", presence: watched.value });
    });
  }

  /** The user has a live device, so this object watches their friends. */
  get live(): boolean {
    return this.host.store.get("live") === true;
  }

  /**
   * The position interest the leases carry: the user's clients' (src/presence/interest.ts),
   * or, before any has said, the last one asked for (clients usually ask the same each time).
   */
  interest(): PositionInterest {
    const interests = this.sockets.positionInterests();
    return interests.length > 0 ? combinedInterest(interests) : (this.host.store.get("positions") ?? "all");
  }

  /** This user's realm as friends were last told (null when hidden, offline or not shared). */
  private ownRealm(): string | null {
    return this.host.store.published(this.host.userId).realm;
  }

  /** A client (un)subscribed: if the interest the leases carry changed, renew every lease with it now. */
  async interestChanged(now: number): Promise<void> {
    const interest = this.interest();
    if (interest === (this.host.store.get("positions") ?? "all")) return;
    this.host.store.set("positions", interest === "all" ? null : interest);
    if (this.live) {
      if (this.rebuilding !== null) await this.rebuilding;
      await this.watch(this.host.store.friendIds(), now);
    }
  }

  /** The user's first device came: watch every friend. */
  async start(now: number): Promise<void> {
    this.host.store.set("live", true);
    await this.fanIn(now);
  }

  /** Watches every friend; a snapshot asked for meanwhile waits for this one instead of starting another. */
  private fanIn(now: number): Promise<void> {
    this.rebuilding ??= this.watch(this.host.store.friendIds(), now).finally(() => {
      this.rebuilding = null;
    });
    return this.rebuilding;
  }

  /** While live: renew the leases when half of them has passed. */
  async renewIfDue(now: number): Promise<void> {
    const renewAt = this.host.store.get("watch_renew_at");
    if (renewAt !== null && renewAt <= now) await this.watch(this.host.store.friendIds(), now);
  }

  /** When the leases are next renewed (only while live). */
  nextWakeUp(): number | null {
    return this.live ? this.host.store.get("watch_renew_at") : null;
  }

  /**
   * Takes (or renews) a lease on each friend and caches their presence; a
   * newer presence than the cached one means a push was lost: show it.
   */
  private async watch(friends: string[], now: number): Promise<void> {
    const { store, config } = this.host;
    const userId = this.host.userId;
    store.set("watch_renew_at", now + Math.floor(config.watchLeaseMs / 2));
    // A renewal that finds a newer presence repairs a lost push: show it. The first fan-in (or the
    // rebuild after a wake) is answered by the snapshot that waits for it instead.
    const repair = this.complete;
    const positions = this.interest();
    const realm = this.ownRealm();
    this.complete = true;
    await inChunks(
      friends,
      FANOUT_CHUNK,
      (f) => this.host.call(f, (stub) => stub.watch(userId, config.watchLeaseMs, positions, realm)),
      (friend, result) => {
        if (result.status === "fulfilled" && result.value.ok) {
          if (store.cacheIfNewer(result.value.value, false) && repair) this.sockets.broadcast({ type: "presence", presence: result.value.value });
          store.watcherRealmSeen(friend, result.value.value.realm);
        } else if (result.status === "fulfilled") store.uncache(friend);
        else {
          store.cacheIfNewer(unknown(store.cached(friend) ?? offlinePresence(friend)), true);
          this.outbox.retry("watch", friend, now);
        }
      },
    );
  }

  /** The user's last live device is gone: release every lease, drop the cache. */
  async stop(): Promise<void> {
    const { store } = this.host;
    const userId = this.host.userId;
    const friends = store.friendIds();
    store.set("live", null);
    store.set("watch_renew_at", null);
    this.complete = false;
    store.uncache();
    store.dropQueued(["watch"]);
    // Best effort: a lease that is not released expires, and the next push is refused anyway.
    await inChunks(friends, FANOUT_CHUNK, (f) => this.host.stub(f).unwatch(userId));
  }

  /**
   * Whether `friend`'s presence is known here, so a watch from them is not a
   * new friendship to announce. After a wake, before the re-watch, every friend
   * counts as known (the re-watch finds any that is not).
   */
  knows(friend: string): boolean {
    return !this.complete || this.host.store.cached(friend) !== null;
  }

  /** The snapshot waits for the fan-in under way (a connect's), or, after a wake, for one re-watch of every friend. */
  private async ensureComplete(): Promise<void> {
    if (this.rebuilding !== null) await this.rebuilding;
    if (this.complete || !this.live) return;
    await this.fanIn(Date.now());
  }

  /**
   * A friendship just took effect: if this user has a live client, watch the
   * friend and announce them once (friend_added). Several paths lead here (the
   * other side's message, its ack, the other side's first watch); the cache row
   * and the `announcing` set make it happen once.
   */
  async watchNewFriend(other: string, now: number): Promise<void> {
    const { store, config } = this.host;
    if (!this.live || !store.isFriend(other) || store.cached(other) || this.announcing.has(other)) return;
    this.announcing.add(other);
    try {
      let presence: Presence;
      try {
        const watched = await this.host.call(other, (stub) => stub.watch(this.host.userId, config.watchLeaseMs, this.interest()));
        // Refused: the other side has not recorded the friendship yet; its first watch of this user brings us back here.
        if (!watched.ok) return;
        presence = watched.value;
      } catch {
        presence = unknown(offlinePresence(other));
        this.outbox.retry("watch", other, now);
      }
      if (!store.isFriend(other)) return;
      store.cacheIfNewer(presence, true);
      this.sockets.broadcast({ type: "friend_added", userId: other, presence });
    } finally {
      this.announcing.delete(other);
    }
  }

  /**
   * A friend's object pushes its presence here (fan-in). Refused when the
   * sender is not a friend or this user has no live client: the sender then
   * drops the lease (no presence goes to people who are not there to see it).
   */
  receive(from: string, presence: Presence): Result<boolean, "not_friends" | "not_watching"> {
    const { store } = this.host;
    if (!store.isFriend(from) || presence.userId !== from) return refuse("not_friends", "only friends' presence is taken");
    if (!this.live) return refuse("not_watching", "this user has no live client");
    const newer = store.cacheIfNewer(presence, false);
    if (newer) {
      this.sockets.broadcast({ type: "presence", presence });
      // If that friend watches this user for same-realm positions only, its lease follows its realm.
      store.watcherRealmSeen(from, presence.realm);
    }
    return ok(newer);
  }

  /**
   * Every friend's presence, offline ones included (Matrix /sync): from the
   * cache while live; otherwise each friend's object is asked once.
   */
  async allFriends(): Promise<Presence[]> {
    const { store } = this.host;
    if (this.live) return store.cachedAll();
    const userId = this.host.userId;
    const all: Presence[] = [];
    await inChunks(
      store.friendIds(),
      FANOUT_CHUNK,
      (f) => this.host.call(f, (stub) => stub.presenceFor(userId)),
      (friend, result) => {
        if (result.status === "rejected") all.push(unknown(offlinePresence(friend)));
        else if (result.value.ok) all.push(result.value.value);
      },
    );
    return all;
  }

  /**
   * The friends who are not offline (unknown ones included while live). From
   * the cache while live; otherwise (an HTTP-only reader) each friend's object
   * is asked once, and no lease is taken.
   */
  async onlineFriends(): Promise<Presence[]> {
    const { store } = this.host;
    await this.ensureComplete();
    if (this.live) return store.cachedAll().filter((p) => isShownOnline(p.status) || p.status === "unknown");
    const userId = this.host.userId;
    const online: Presence[] = [];
    await inChunks(
      store.friendIds(),
      FANOUT_CHUNK,
      (f) => this.host.call(f, (stub) => stub.presenceFor(userId)),
      (friend, result) => {
        if (result.status === "rejected") online.push(unknown(offlinePresence(friend)));
        else if (result.value.ok && isShownOnline(result.value.value.status)) online.push(result.value.value);
      },
    );
    return online;
  }
}
