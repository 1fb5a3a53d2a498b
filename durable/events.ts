/**
 * ServerEvents: sends this user's presence and friendship events to the
 * operator's Cloudflare Queue (docs/EVENTS.md; what an event holds is decided
 * in src/presence/events.ts). Off, and free, without an `EVENTS` binding: the
 * object then builds none of this.
 *
 * At least once, without a row on the way: events are sent when the change is
 * made (a change that is already written: a significant publish, an edge),
 * and only a batch whose send failed or timed out is written, as one outbox
 * row that the alarm retries with the outbox's backoff until the queue takes
 * it. A retried batch carries the same ids (a timed-out send that did arrive
 * is delivered twice: consumers dedupe on `id`). Changes made while a send is
 * out go together in the next `sendBatch` (group commit).
 */
import { type EventPolicy, friendshipEvent, presenceEvent, readEventPolicy, SEND_BATCH_MAX, type ServerEvent } from "../src/presence/events";
import type { Edge, EdgeState } from "../src/presence/friendship";
import { backoffMs, withTimeout } from "../src/presence/timers";
import type { Presence } from "../src/presence/types";
import type { Host } from "./host";
import type { Arm, Outbox } from "./outbox";

/** The bindings events need: the queue (absent: events off) and the operator's choices. */
export interface EventBindings {
  EVENTS?: Queue<ServerEvent>;
  EVENTS_POSITIONS?: string;
}

export class ServerEvents {
  /** Events not yet handed to a send. */
  private waiting: ServerEvent[] = [];
  /** The send loop while one runs: later events join it. */
  private flushing: Promise<void> | null = null;
  /** Messages handed to the queue by this instance (accepted sends only): the cost test reads it. */
  sent = 0;

  /** The events part, or null when the operator configured no queue. */
  static create(env: EventBindings, host: Host, outbox: Outbox, arm: Arm): ServerEvents | null {
    return env.EVENTS ? new ServerEvents(env.EVENTS, readEventPolicy(env), host, outbox, arm) : null;
  }

  private constructor(
    private readonly queue: Queue<ServerEvent>,
    private readonly policy: EventPolicy,
    private readonly host: Host,
    outbox: Outbox,
    private readonly arm: Arm,
  ) {
    outbox.handle("event", (row) => this.send(JSON.parse(row.payload) as ServerEvent[]));
  }

  /** After a publish to every watcher: `previous` → `next` is what friends were told. */
  published(previous: Presence, next: Presence, now: number): Promise<void> {
    return this.emit(presenceEvent(previous, next, now, this.policy));
  }

  /** After this side of the edge with `other` moved from `previous` to `next`. */
  edgeChanged(other: string, previous: EdgeState, next: Edge, cause: "local" | "remote" | "reply", now: number): Promise<void> {
    return this.emit(friendshipEvent(this.host.userId, other, previous, next, cause, now));
  }

  private async emit(event: ServerEvent | null): Promise<void> {
    if (!event) return;
    this.waiting.push(event);
    this.flushing ??= this.flush().finally(() => (this.flushing = null));
    await this.flushing;
  }

  private async flush(): Promise<void> {
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0, SEND_BATCH_MAX);
      try {
        await withTimeout(this.send(batch), this.host.config.rpcTimeoutMs);
      } catch (error) {
        // Written only now, with the alarm that retries it (one synchronous step: committed together).
        const at = Date.now() + backoffMs(0);
        console.warn(`events: send of ${batch.length} failed; the alarm retries it`, String(error));
        this.host.store.enqueueEvents(JSON.stringify(batch), at);
        this.arm(at);
      }
    }
  }

  /** One sendBatch (JSON bodies, so that pull consumers over HTTP read them too). */
  private async send(batch: ServerEvent[]): Promise<void> {
    await this.queue.sendBatch(batch.map((body) => ({ body, contentType: "json" as const })));
    this.sent += batch.length;
  }
}
