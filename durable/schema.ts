/**
 * The shape of a user's object's storage: the SQLite tables (as migrations),
 * the row types read back from them, and the typed values of the meta table.
 * durable/store.ts reads and writes them.
 */
import type { EdgeState } from "../src/presence/friendship";
import type { PositionInterest, Presence } from "../src/presence/types";

/** Append-only: a deployed object runs every migration it has not run yet. */
export const MIGRATIONS: string[][] = [
  [
    `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
    `CREATE TABLE devices (
       device_id TEXT PRIMARY KEY, kind TEXT NOT NULL, transport TEXT NOT NULL,
       status TEXT, status_text TEXT, realm TEXT, x REAL, y REAL, z REAL,
       last_heartbeat_at INTEGER, last_seen_at INTEGER NOT NULL)`,
    // This user's side of each edge (src/presence/friendship.ts): own intent, the other's last
    // heard intent, and the derived state (outgoing | incoming | friends | blocked) for queries.
    `CREATE TABLE friends (friend_id TEXT PRIMARY KEY, state TEXT NOT NULL,
       mine TEXT NOT NULL, my_version INTEGER NOT NULL, theirs TEXT NOT NULL, their_version INTEGER NOT NULL,
       message TEXT, hidden INTEGER NOT NULL DEFAULT 0, hidden_view TEXT, since INTEGER NOT NULL)`,
    `CREATE TABLE watchers (watcher_id TEXT PRIMARY KEY, lease_expires_at INTEGER NOT NULL)`,
    `CREATE TABLE friend_presence (friend_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, presence TEXT NOT NULL, unknown INTEGER NOT NULL DEFAULT 0)`,
    // Calls to other users' objects that must arrive. Edges are queued in id order per
    // target; presence/watch rows are keyed (one per target, the latest wins).
    `CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT UNIQUE, target TEXT NOT NULL, kind TEXT NOT NULL,
       payload TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL)`,
  ],
  // Issue #11: friends' presence lives in memory (rebuilt by a re-watch after a wake), not on disk.
  [`DROP TABLE friend_presence`],
  // Issue #11: a lease carries the watcher's position interest (null: all) and its realm as last heard.
  [`ALTER TABLE watchers ADD COLUMN positions TEXT`, `ALTER TABLE watchers ADD COLUMN realm TEXT`],
];

/** `event`: a batch of server-side events whose send failed (durable/events.ts), retried like the rest. */
export type OutboxKind = "edge" | "presence" | "watch" | "event";
export interface OutboxRow {
  id: number;
  key: string | null;
  target: string;
  kind: OutboxKind;
  payload: string;
  attempts: number;
  next_attempt_at: number;
}

/** A watcher with a valid lease, as fan-out sees it. */
export interface Lease {
  watcher: string;
  positions: PositionInterest;
  /** The watcher's realm as this user last heard it (its watch, or its presence pushed here); null: unknown. */
  realm: string | null;
}

export interface EdgeRow {
  userId: string;
  state: EdgeState;
  message: string | null;
  hidden: boolean;
  since: number;
}

/** Every single value a user's object keeps (the meta table), with its type. Absent is `null`. */
export interface Meta {
  /** The user has used the service (a call from the worker): friend requests to them are accepted. */
  registered: true;
  /** The user has a live device: this object watches their friends. */
  live: true;
  /** Sequence number of the last published presence (before issue #11; now `published.seq`). */
  seq: number;
  /**
   * A seq reservation: position-only publishes are not written, so their seqs
   * stay below this, written as seq + SEQ_RESERVATION when a publish crosses it.
   * An object woken with no socket to tell it the last seq resumes here.
   */
  seq_ceiling: number;
  /** What friends were last told (on disk: the last significant change; in memory: the latest). */
  published: Presence;
  published_at: number;
  /** A coalesced position-only publish is due at this time. */
  publish_at: number;
  /** Leases on friends are renewed at this time (while live). */
  watch_renew_at: number;
  /** Last heartbeat of a visible device: "last seen" once offline. */
  last_active_at: number;
  /** The position interest this user's leases on friends carry; absent: all. */
  positions: "realm" | "none";
  /** Location shared with nobody; absent: with every friend. */
  share_location: "none";
  /** The friends watched when the clients follow subsets of them (durable/watching.ts); absent: every friend. */
  watched_subset: string[];
}
export type MetaKey = keyof Meta;

/** Stored as text: flags as "1", numbers in decimal, presences as JSON. */
export const DECODE: { [K in MetaKey]: (raw: string) => Meta[K] } = {
  registered: () => true,
  live: () => true,
  seq: Number,
  seq_ceiling: Number,
  published: (raw) => JSON.parse(raw) as Presence,
  published_at: Number,
  publish_at: Number,
  watch_renew_at: Number,
  last_active_at: Number,
  positions: (raw) => (raw === "none" ? "none" : "realm"),
  share_location: () => "none",
  watched_subset: (raw) => JSON.parse(raw) as string[],
};
