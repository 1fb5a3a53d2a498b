/**
 * The friends table of one user's object: this user's side of every
 * friendship edge (intent and version of each side, the request note) and
 * what each friend may see (hidden with a frozen view, the friend's seq
 * offset, "last seen"). Rows are kept after a friendship ends: their versions
 * order later messages (docs/FRIENDSHIPS.md).
 */
import { deriveState, NO_EDGE, type Edge, type EdgeState, type Intent } from "../../src/presence/friendship";
import type { Presence } from "../../src/presence/types";
import type { Audience, EdgeRow } from "../schema";
import type { Tables } from "./tables";

/** What a push to one friend needs of their row, kept in memory per wake. */
interface Facts {
  state: EdgeState;
  /** Hidden from them (the flag; `audience.hidden` is the frozen view, when there is one). */
  hidden: boolean;
  audience: Audience;
}

/** More remembered rows than this and the memory starts over (ids named by requests need not be friends). */
const FACTS_KEPT = 4_096;

export class FriendRows {
  /**
   * Each friend's row as pushes and checks need it (is a friend? hidden from?
   * what may they see?), read once per wake instead of once or twice per push
   * and delivery (issue #11); forgotten by every write to that row. `null`:
   * no row.
   */
  private readonly facts = new Map<string, Facts | null>();

  constructor(
    private readonly sql: SqlStorage,
    private readonly tables: Tables,
  ) {}

  private factsOf(friend: string): Facts | null {
    if (!this.tables.exist) return null;
    const known = this.facts.get(friend);
    if (known !== undefined) return known;
    const row = this.sql.exec(`SELECT state, hidden, hidden_view, seq_offset, last_seen FROM friends WHERE friend_id = ?`, friend).toArray()[0];
    const facts: Facts | null = row
      ? {
          state: row.state as EdgeState,
          hidden: Number(row.hidden) === 1,
          audience: {
            hidden: Number(row.hidden) === 1 && row.hidden_view ? (JSON.parse(String(row.hidden_view)) as Presence) : null,
            seqOffset: Number(row.seq_offset),
            lastSeen: Number(row.last_seen) === 1,
          },
        }
      : null;
    if (this.facts.size >= FACTS_KEPT) this.facts.clear();
    this.facts.set(friend, facts);
    return facts;
  }

  edge(other: string): Edge {
    if (!this.tables.exist) return NO_EDGE;
    const row = this.sql.exec(`SELECT mine, my_version, theirs, their_version FROM friends WHERE friend_id = ?`, other).toArray()[0];
    if (!row) return NO_EDGE;
    return { mine: row.mine as Intent, myVersion: Number(row.my_version), theirs: row.theirs as Edge["theirs"], theirVersion: Number(row.their_version) };
  }

  /** Stores this side of an edge. Rows are kept after a friendship ends: their versions order later messages. */
  putEdge(other: string, edge: Edge, text: string | null, now: number): void {
    // No edge is no row (an unblock of someone never contacted used to leave the block in place).
    if (edge.mine === "none" && edge.theirs === "none" && edge.myVersion === 0 && edge.theirVersion === 0) {
      this.forgetEdge(other);
      return;
    }
    const state = deriveState(edge);
    this.facts.delete(other);
    this.tables.create();
    this.sql.exec(
      `INSERT INTO friends (friend_id, state, mine, my_version, theirs, their_version, message, hidden, since)
       VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)
       ON CONFLICT(friend_id) DO UPDATE SET state = excluded.state, mine = excluded.mine, my_version = excluded.my_version,
         theirs = excluded.theirs, their_version = excluded.their_version,
         message = CASE WHEN excluded.state IN ('incoming', 'outgoing') THEN COALESCE(excluded.message, message) ELSE NULL END,
         hidden = CASE WHEN excluded.state = 'friends' THEN hidden ELSE 0 END,
         hidden_view = CASE WHEN excluded.state = 'friends' THEN hidden_view ELSE NULL END,
         last_seen = CASE WHEN excluded.state = 'friends' THEN last_seen ELSE 0 END,
         since = CASE WHEN excluded.state = state THEN since ELSE excluded.since END`,
      other,
      state,
      edge.mine,
      edge.myVersion,
      edge.theirs,
      edge.theirVersion,
      state === "incoming" || state === "outgoing" ? text : null,
      now,
    );
  }

  /** Drops the edge row of a user this one never had anything recorded with (see Friendships.forgetIfUntouched). */
  forgetEdge(other: string): void {
    this.facts.delete(other);
    if (this.tables.exist) this.sql.exec(`DELETE FROM friends WHERE friend_id = ?`, other);
  }

  edges(): EdgeRow[] {
    if (!this.tables.exist) return [];
    return this.sql
      .exec(`SELECT friend_id, state, message, hidden, since FROM friends WHERE state != 'none' ORDER BY friend_id`)
      .toArray()
      .map((r) => ({
        userId: String(r.friend_id),
        state: r.state as EdgeState,
        message: (r.message as string | null) ?? null,
        hidden: Number(r.hidden) === 1,
        since: Number(r.since),
      }));
  }

  requestNote(other: string): string | null {
    if (!this.tables.exist) return null;
    const row = this.sql.exec(`SELECT message FROM friends WHERE friend_id = ?`, other).toArray()[0];
    return (row?.message as string | null | undefined) ?? null;
  }

  friendIds(): string[] {
    if (!this.tables.exist) return [];
    return this.sql
      .exec(`SELECT friend_id FROM friends WHERE state = 'friends'`)
      .toArray()
      .map((r) => String(r.friend_id));
  }

  isFriend(userId: string): boolean {
    return this.factsOf(userId)?.state === "friends";
  }

  /** This user hides from them (their pushes get the frozen offline view). */
  hiddenFrom(friend: string): boolean {
    return this.factsOf(friend)?.hidden === true;
  }

  edgeCounts(): Record<EdgeState, number> {
    const counts: Record<EdgeState, number> = { none: 0, outgoing: 0, incoming: 0, friends: 0, blocked: 0 };
    if (!this.tables.exist) return counts;
    for (const r of this.sql.exec(`SELECT state, COUNT(*) AS n FROM friends GROUP BY state`).toArray()) counts[r.state as EdgeState] = Number(r.n);
    return counts;
  }

  // What one friend may see: hidden, seq numbering, last seen (issues #12, #16).

  /** One row read per friend and wake. A non-friend: nothing hidden, no offset. */
  audience(friend: string): Audience {
    return this.factsOf(friend)?.audience ?? { hidden: null, seqOffset: 0, lastSeen: false };
  }

  /** Hides from a friend (the frozen view) or shows again, with the friend's seq offset from now on: one row. */
  setAudience(friend: string, hidden: Presence | null, seqOffset: number): void {
    this.facts.delete(friend);
    if (this.tables.exist)
      this.sql.exec(
        `UPDATE friends SET hidden = ?, hidden_view = ?, seq_offset = ? WHERE friend_id = ?`,
        hidden ? 1 : 0,
        hidden ? JSON.stringify(hidden) : null,
        seqOffset,
        friend,
      );
  }

  /** Chooses a friend to see "last seen" (or not). */
  setLastSeenShown(friend: string, shown: boolean): void {
    this.facts.delete(friend);
    if (this.tables.exist) this.sql.exec(`UPDATE friends SET last_seen = ? WHERE friend_id = ? AND state = 'friends'`, shown ? 1 : 0, friend);
  }

  lastSeenShownTo(): string[] {
    if (!this.tables.exist) return [];
    return this.sql
      .exec(`SELECT friend_id FROM friends WHERE state = 'friends' AND last_seen = 1 ORDER BY friend_id`)
      .toArray()
      .map((r) => String(r.friend_id));
  }
}
