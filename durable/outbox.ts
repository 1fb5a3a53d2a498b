/**
 * Outbox: calls to other users' objects that must arrive. Friendship changes
 * (edge messages) are queued in order per target and never merged; presence
 * pushes and watch retries are keyed, one per target (the latest state is sent
 * when it goes). Delivered now when possible, otherwise retried by the alarm
 * with exponential backoff (1 s … 5 min), forever, until acknowledged.
 * What a delivery does is the business of the part that queued it.
 *
 * Crash safety: a row is stored together with an armed alarm, in one
 * synchronous step (one implicit transaction) before any delivery attempt,
 * and its first retry time is set as if the attempt in flight will fail. A
 * host that dies mid-delivery therefore leaves a row *and* an alarm that
 * retries it within RPC_TIMEOUT_MS (issue #12).
 */
import { inChunks } from "../src/presence/chunks";
import { backoffMs, withTimeout } from "../src/presence/timers";
import { FANOUT_CHUNK, type Host } from "./host";
import type { OutboxKind, OutboxRow } from "./schema";

/** Delivers one row; throws when the target's object did not acknowledge it. */
export type Deliver = (row: OutboxRow) => Promise<void>;

/** Makes sure the object's one alarm fires no later than `at` (synchronously: same transaction as the row). */
export type Arm = (at: number) => void;

export class Outbox {
  private readonly deliveries = new Map<OutboxKind, Deliver>();

  constructor(
    private readonly host: Host,
    private readonly arm: Arm,
  ) {}

  /** The part that queues rows of `kind` says how to deliver them. */
  handle(kind: OutboxKind, deliver: Deliver): void {
    this.deliveries.set(kind, deliver);
  }

  /** A presence push or watch to retry; an existing row for the same target stays as it is. */
  retry(kind: "presence" | "watch", target: string, now: number): void {
    const at = now + backoffMs(0);
    this.host.store.enqueueKeyed(kind, target, at);
    this.arm(at);
  }

  /**
   * An edge message, after every earlier one to the same target. Its first
   * retry is due when the delivery that normally follows at once would have
   * timed out; the alarm is armed for it before this returns.
   */
  enqueueEdge(target: string, payload: unknown, now: number): void {
    const at = now + this.host.config.rpcTimeoutMs;
    this.host.store.enqueueEdge(target, JSON.stringify(payload), at);
    this.arm(at);
  }

  /**
   * Delivers due rows; `force` delivers the given targets' rows now. Edge
   * messages go in order, one target's queue stopping at its first failure.
   */
  async deliver(now: number, force?: string | string[]): Promise<void> {
    const forced = new Set(typeof force === "string" ? [force] : (force ?? []));
    const rows = this.host.store.outbox();
    if (rows.length === 0) return;
    const due = (row: OutboxRow) => forced.has(row.target) || Number(row.next_attempt_at) <= now;
    const queues = new Map<string, OutboxRow[]>();
    const tasks: Array<() => Promise<unknown>> = [];
    for (const row of rows) {
      if (row.kind !== "edge") {
        if (due(row)) tasks.push(() => this.attempt(row, now));
      } else queues.set(row.target, [...(queues.get(row.target) ?? []), row]);
    }
    for (const queue of queues.values()) {
      if (!due(queue[0]!)) continue;
      tasks.push(async () => {
        for (const row of queue) if (!(await this.attempt(row, now))) return;
      });
    }
    await inChunks(tasks, FANOUT_CHUNK, (task) => task());
  }

  /** One delivery attempt; returns whether it was acknowledged. */
  private async attempt(row: OutboxRow, now: number): Promise<boolean> {
    try {
      const deliver = this.deliveries.get(row.kind);
      if (!deliver) throw new Error(`no delivery for ${row.kind} rows`);
      await withTimeout(deliver(row), this.host.config.rpcTimeoutMs);
      this.host.store.delivered(row);
      return true;
    } catch (error) {
      const attempts = Number(row.attempts) + 1;
      console.warn(`outbox ${row.kind} to ${row.target} failed (attempt ${attempts})`, String(error));
      this.host.store.failed(row.id, attempts, now + backoffMs(attempts));
      return false;
    }
  }

  /** When the outbox next needs the alarm. */
  nextWakeUp(): number | null {
    return this.host.store.nextOutboxAttempt();
  }
}
