/**
 * The `outbox` table: queued calls to other users' objects (durable/outbox.ts
 * delivers and retries them). Presence pushes and watch retries are keyed, one
 * row per (kind, target); edge messages are queued in order per target.
 * Reached through UserStore (durable/store.ts).
 */
import type { OutboxRow } from "../schema";
import type { Tables } from "./tables";

/** No tables yet (durable/store/tables.ts): nothing is queued; the first enqueue creates them. */
export class OutboxRows {
  constructor(
    private readonly sql: SqlStorage,
    private readonly tables: Tables,
  ) {}

  /**
   * Keys of the queued presence/watch rows, read once and kept in step, so a
   * successful push (every fan-out) costs no SQL when nothing was queued for
   * that friend — the common case.
   */
  private keyedCache: Set<string> | null = null;
  /** Known to hold no row (a read found none and nothing was queued since): every refresh asks, and it is usually empty. */
  private empty = false;

  private keyed(): Set<string> {
    this.keyedCache ??= new Set(
      !this.tables.exist
        ? []
        : this.sql
            .exec(`SELECT key FROM outbox WHERE key IS NOT NULL`)
            .toArray()
            .map((r) => String(r.key)),
    );
    return this.keyedCache;
  }

  /** Presence pushes and watch retries: one row per (kind, target); an existing row stays as it is. */
  enqueueKeyed(kind: "presence" | "watch", target: string, nextAttemptAt: number): void {
    this.keyed().add(`${kind}:${target}`);
    this.empty = false;
    this.tables.create();
    this.sql.exec(
      `INSERT INTO outbox (key, target, kind, payload, attempts, next_attempt_at) VALUES (?, ?, ?, '{}', 0, ?)
       ON CONFLICT(key) DO NOTHING`,
      `${kind}:${target}`,
      target,
      kind,
      nextAttemptAt,
    );
  }

  /** Edge messages: queued in order per target, never merged. */
  enqueueEdge(target: string, payload: string, now: number): void {
    this.empty = false;
    this.tables.create();
    this.sql.exec(`INSERT INTO outbox (key, target, kind, payload, attempts, next_attempt_at) VALUES (NULL, ?, 'edge', ?, 0, ?)`, target, payload, now);
  }

  all(): OutboxRow[] {
    if (!this.tables.exist || this.empty) return [];
    const rows = this.sql.exec(`SELECT * FROM outbox ORDER BY id`).toArray() as unknown as OutboxRow[];
    this.empty = rows.length === 0;
    return rows;
  }

  delivered(row: Pick<OutboxRow, "id" | "key">): void {
    if (row.key !== null) this.keyed().delete(row.key);
    if (this.tables.exist) this.sql.exec(`DELETE FROM outbox WHERE id = ?`, row.id);
  }

  deliveredKeyed(kind: "presence" | "watch", target: string): void {
    const key = `${kind}:${target}`;
    if (!this.keyed().delete(key) || !this.tables.exist) return;
    this.sql.exec(`DELETE FROM outbox WHERE key = ?`, key);
  }

  failed(id: number, attempts: number, nextAttemptAt: number): void {
    if (this.tables.exist) this.sql.exec(`UPDATE outbox SET attempts = ?, next_attempt_at = ? WHERE id = ?`, attempts, nextAttemptAt, id);
  }

  /** Drops queued presence/watch work (for one target, or all of one kind). */
  dropQueued(kinds: Array<"presence" | "watch">, target?: string): void {
    const keys = this.keyed();
    for (const key of [...keys]) {
      const [kind, ...rest] = key.split(":");
      if (kinds.includes(kind as "presence" | "watch") && (target === undefined || rest.join(":") === target)) keys.delete(key);
    }
    if (!this.tables.exist) return;
    for (const kind of kinds) {
      if (target === undefined) this.sql.exec(`DELETE FROM outbox WHERE kind = ?`, kind);
      else this.sql.exec(`DELETE FROM outbox WHERE kind = ? AND target = ?`, kind, target);
    }
  }

  /** Whether edge messages to `target` are queued (more than `besides`: the one being delivered). */
  hasPendingEdges(target: string, besides = 0): boolean {
    if (!this.tables.exist) return false;
    return this.sql.exec(`SELECT 1 FROM outbox WHERE kind = 'edge' AND target = ? LIMIT 1 OFFSET ?`, target, besides).toArray().length > 0;
  }

  /** When the outbox next needs the alarm: only the head of each target's edge queue counts (the rest wait for it). */
  nextAttempt(): number | null {
    if (!this.tables.exist || this.empty) return null;
    const next = this.sql
      .exec(
        `SELECT MIN(next_attempt_at) AS next FROM outbox o
         WHERE kind != 'edge' OR id = (SELECT MIN(id) FROM outbox h WHERE h.kind = 'edge' AND h.target = o.target)`,
      )
      .one().next;
    return next === null ? null : Number(next);
  }

  /** A batch of server-side events whose send to the queue failed (durable/events.ts): one row, not keyed, retried like the others. */
  enqueueEvents(payload: string, nextAttemptAt: number): void {
    this.empty = false;
    this.tables.create();
    this.sql.exec(`INSERT INTO outbox (key, target, kind, payload, attempts, next_attempt_at) VALUES (NULL, 'EVENTS', 'event', ?, 1, ?)`, payload, nextAttemptAt);
  }
}
