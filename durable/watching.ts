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
 *
 * Subsets (issue #16, src/presence/subset.ts): when every client of the user
 * follows a subset of friends, only their union is watched. A friend that
 * leaves the union is not told: its next push is refused (`not_watching`) and
 * it drops the lease, so it costs at most one call, and none if it does not
 * change (an explicit unwatch would always cost one). The union last watched
 * is kept in meta (`watched_subset`, written only when it changes) so that
 * release after a wake knows whom to tell.
 */
import { inChunks } from "../src/presence/chunks";
import { offlinePresence } from "../src/presence/protocol";
import { ok, refuse, type Result } from "../src/presence/result";
import { combinedInterest } from "../src/presence/interest";
import { type OnlinePage, type PageRequest, pageOnline, sameSubset, unionOfSubsets } from "../src/presence/subset";
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
  /** The watch of friends newly in the union, which the snapshots wait for too. */
  private adding: Promise<void> | null = null;

  constructor(
    private readonly host: Host,
    private readonly sockets: Sockets,
    private readonly outbox: Outbox,
  ) {
    outbox.handle("watch", async ({ target }) => {
      const { store } = this.host;
      if (!this.live || !store.isFriend(target) || !this.wants(target)) return;
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

  /**
   * A client (un)subscribed or changed its subset: watch the friends newly in
   * the union; if the interest the leases carry changed, renew every lease with it now.
   */
  async interestChanged(now: number): Promise<void> {
    if (this.live) await this.followSubsets(now);
    const interest = this.interest();
    if (interest === (this.host.store.get("positions") ?? "all")) return;
    this.host.store.set("positions", interest === "all" ? null : interest);
    if (this.live) {
      if (this.rebuilding !== null) await this.rebuilding;
      await this.watch(this.watched(), now);
    }
  }

  // ─── whom to watch: every friend, or the union of the clients' subsets ───

  /**
   * The friends the user's clients want now: null (every friend) unless every
   * client is a socket following a subset. A device without a socket (HTTP,
   * Matrix) reads every friend, and so does a socket that named none.
   */
  private wanted(): string[] | null {
    if (this.host.store.devices().some((d) => d.transport !== "ws")) return null;
    const subsets = this.sockets.friendSubsets();
    // No open socket (one dropped without a close; its device waits for the TTL): nobody asks for more than before.
    if (subsets.length === 0) return this.host.store.get("watched_subset");
    const union = unionOfSubsets(subsets);
    return union === null ? null : [...union].sort();
  }

  /** Whether `friend` is in the union last watched (every friend when no subset). */
  wants(friend: string): boolean {
    const subset = this.host.store.get("watched_subset");
    return subset === null || subset.includes(friend);
  }

  /** The friends in the union last watched. */
  private watched(): string[] {
    const friends = this.host.store.friendIds();
    const subset = this.host.store.get("watched_subset");
    if (subset === null) return friends;
    const wanted = new Set(subset);
    return friends.filter((f) => wanted.has(f));
  }

  /**
   * The union may have changed (a subscription, a socket or a device came or
   * went): remember it, forget the friends that left it (their next push is
   * refused, which drops their lease), and watch the ones that joined it.
   */
  private async followSubsets(now: number): Promise<void> {
    const { store } = this.host;
    const before = store.get("watched_subset");
    const after = this.wanted();
    if (sameSubset(before, after)) return;
    store.set("watched_subset", after);
    const watched = new Set(this.watched());
    for (const friend of store.cachedAll()) if (!watched.has(friend.userId)) store.uncache(friend.userId);
    // After a wake (not complete) the snapshot's re-watch takes them; before the first fan-in, start does.
    if (!this.complete) return;
    const joined = before === null ? [] : [...watched].filter((f) => !before.includes(f));
    if (joined.length === 0) return;
    const adding = this.watch(joined, now, false).finally(() => {
      if (this.adding === adding) this.adding = null;
    });
    this.adding = adding;
    await adding;
  }

  /** The user's first device came: watch every friend (or the union of the clients' subsets). */
  async start(now: number): Promise<void> {
    this.host.store.set("live", true);
    this.host.store.set("watched_subset", this.wanted());
    await this.fanIn(now);
  }

  /** Watches every friend in the union; a snapshot asked for meanwhile waits for this one instead of starting another. */
  private fanIn(now: number): Promise<void> {
    this.rebuilding ??= this.watch(this.watched(), now).finally(() => {
      this.rebuilding = null;
    });
    return this.rebuilding;
  }

  /** While live: follow the clients' subsets, and renew the leases when half of them has passed. */
  async renewIfDue(now: number): Promise<void> {
    await this.followSubsets(now);
    const renewAt = this.host.store.get("watch_renew_at");
    if (renewAt !== null && renewAt <= now) await this.watch(this.watched(), now);
  }

  /** When the leases are next renewed (only while live). */
  nextWakeUp(): number | null {
    return this.live ? this.host.store.get("watch_renew_at") : null;
  }

  /**
   * Takes (or renews) a lease on each friend and caches their presence; a
   * newer presence than the cached one means a push was lost: show it.
   * `every`: these are all the watched friends (a fan-in or a renewal), not
   * the ones that just joined a subset (their snapshot is the Subscribe reply).
   */
  private async watch(friends: string[], now: number, every = true): Promise<void> {
    const { store, config } = this.host;
    const userId = this.host.userId;
    if (every) store.set("watch_renew_at", now + Math.floor(config.watchLeaseMs / 2));
    // A renewal that finds a newer presence repairs a lost push: show it. The first fan-in (or the
    // rebuild after a wake) is answered by the snapshot that waits for it instead.
    const repair = this.complete && every;
    const positions = this.interest();
    const realm = this.ownRealm();
    if (every) this.complete = true;
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

  /**
   * The user's last live device is gone: release every lease (of the union
   * last watched), drop the cache. Friends that took the final offline push
   * were released by it (`released`); only the others are sent `unwatch`.
   */
  async stop(released: ReadonlySet<string> = new Set()): Promise<void> {
    const { store } = this.host;
    const userId = this.host.userId;
    const friends = this.watched().filter((f) => !released.has(f));
    store.set("live", null);
    store.set("watched_subset", null);
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
    return !this.complete || !this.wants(friend) || this.host.store.cached(friend) !== null;
  }

  /** The snapshot waits for the fan-in under way (a connect's), or, after a wake, for one re-watch of every friend. */
  private async ensureComplete(): Promise<void> {
    if (this.rebuilding !== null) await this.rebuilding;
    if (this.adding !== null) await this.adding;
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
    // Outside every client's subset: announced with their presence as of now, not watched.
    const watch = this.wants(other);
    try {
      let presence: Presence;
      try {
        const userId = this.host.userId;
        const seen = await this.host.call(other, (stub) => (watch ? stub.watch(userId, config.watchLeaseMs, this.interest()) : stub.presenceFor(userId)));
        // Refused: the other side has not recorded the friendship yet; its first watch of this user brings us back here.
        if (!seen.ok) return;
        presence = seen.value;
      } catch {
        presence = unknown(offlinePresence(other));
        if (watch) this.outbox.retry("watch", other, now);
      }
      if (!store.isFriend(other)) return;
      if (watch) store.cacheIfNewer(presence, true);
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
    // Left every client's subset: the sender drops its lease (at most one call per friend that left).
    if (!this.wants(from)) return refuse("not_watching", "this user's clients do not follow the sender");
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
   * The friends who are not offline (unknown ones included while live), by
   * friend id. While live, watched friends come from the cache; the others
   * (outside the clients' subsets, or every friend for an HTTP-only reader)
   * are asked, one call each, and no lease is taken.
   */
  async onlineFriends(): Promise<Presence[]> {
    return (await this.onlineFriendsPage({ after: null, limit: Number.MAX_SAFE_INTEGER })).friends;
  }

  /** One page of the same (src/presence/subset.ts `pageOnline`): at most `limit` friends listed and `limit` friends asked. */
  async onlineFriendsPage(request: PageRequest): Promise<OnlinePage> {
    const { store } = this.host;
    await this.ensureComplete();
    const live = this.live;
    const userId = this.host.userId;
    return pageOnline(
      store.friendIds(),
      request,
      (friend) => (live && this.wants(friend) ? store.cached(friend) : undefined),
      async (friends) => {
        const seen = new Map<string, Presence>();
        await inChunks(
          friends,
          FANOUT_CHUNK,
          (f) => this.host.call(f, (stub) => stub.presenceFor(userId)),
          (friend, result) => {
            if (result.status === "rejected") seen.set(friend, unknown(offlinePresence(friend)));
            else if (result.value.ok) seen.set(friend, result.value.value);
          },
        );
        return seen;
      },
    );
  }

  /** Whether a snapshot asks friends' objects (not live, or live with friends outside the subsets): it then needs the call budget. */
  snapshotAsks(): boolean {
    return !this.live || this.host.store.get("watched_subset") !== null;
  }

  /** The online friends among `ids` that are watched (a subset socket's snapshot): from the cache, no call. */
  async onlineAmong(ids: readonly string[]): Promise<Presence[]> {
    await this.ensureComplete();
    const { store } = this.host;
    return [...new Set(ids)]
      .sort()
      .map((id) => (store.isFriend(id) && this.wants(id) ? store.cached(id) : null))
      .filter((p): p is Presence => p !== null && p.status !== "offline");
  }
}
