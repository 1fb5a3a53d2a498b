/**
 * What the Matrix routes need from the presence service: the calls the
 * user's Durable Object provides as RPC methods (src/matrix/object-backend.ts
 * → durable/matrix.ts), and that a test's memory backend provides too. Every
 * call names the caller (`self`, the verified user id) first: it picks the
 * caller's own object.
 *
 * The `matrix` device: each user has one device of kind `matrix` (id
 * MATRIX_DEVICE_ID) for all their Matrix clients. A /sync with
 * set_presence=online|unavailable is a sign of life of it, and sets its status
 * (online|away) when that differs from what it had; set_presence=offline
 * keeps it live but not shown (it still receives). PUT /presence sets its
 * status and status text. It expires like any device, a TTL after its last
 * sign of life, and merges with the user's other devices by the usual rules
 * (src/presence/aggregate.ts).
 */
import type { PresenceFilter } from "./filter";
import type { MatrixPresenceState } from "./mapping";
import type { MatrixPresenceEvent } from "./sync";
import type { Presence } from "../presence/types";

export const MATRIX_DEVICE_ID = "matrix";

/** A refusal the routes turn into M_LIMIT_EXCEEDED (retry_after_ms). */
export interface RateLimited {
  ok: false;
  code: "rate_limited";
  retryAfterMs: number;
}

export interface MatrixSyncRequest {
  /** The raw `since` parameter, null on an initial sync. */
  since: string | null;
  /** `set_presence` (default online); ignored when `signOfLife` is false. */
  setPresence: MatrixPresenceState;
  /** Count this call as the matrix device's sign of life (the first evaluation of a /sync; not the re-evaluations of a long poll). */
  signOfLife: boolean;
  fullState: boolean;
  filter: PresenceFilter;
}

export interface MatrixSyncResult {
  ok: true;
  events: MatrixPresenceEvent[];
  nextBatch: string;
  /**
   * Opaque mark of the moment this result was computed: `waitForChange(mark)`
   * returns at once if anything this user may see changed since then (no
   * change can slip between an empty result and the wait).
   */
  mark: string;
}

export interface MatrixBackend {
  /** The presence of `target` as `self` may see it: self, or a friend; null for anyone else, existing or not. */
  presence(self: string, target: string): Promise<Presence | null>;

  /** PUT /presence/{self}/status: the matrix device's state and status text (null clears it). */
  setPresence(self: string, state: MatrixPresenceState, statusMsg: string | null): Promise<{ ok: true } | RateLimited>;

  /** One evaluation of /sync (src/matrix/sync.ts `computeSync` over the user's rows). */
  sync(self: string, request: MatrixSyncRequest): Promise<MatrixSyncResult | RateLimited>;

  /**
   * Resolves when something `self` may see changed after `mark` (a friend's
   * or their own Matrix view), when `timeoutMs` passes, or when `signal`
   * aborts (the client went away) — whichever comes first. Spurious wakes are
   * allowed: the caller evaluates again and waits again if nothing is new.
   */
  waitForChange(self: string, mark: string, timeoutMs: number, signal?: AbortSignal): Promise<void>;
}
