/**
 * Meter: counts what Cloudflare bills a user's object for, per event kind —
 * requests (RPC calls, fetches, alarms), incoming WebSocket messages, SQLite
 * rows read and written (from the cursors' own rowsRead/rowsWritten, and the
 * sync KV API's, `meteredKv`), alarms set (each one a row written on the bill)
 * and the wall time objects were busy handling events. The bench reads the sums (`GET /v1/admin/stats`) and
 * turns them into $ per online user-month (src/presence/cost.ts).
 *
 * The sums are per isolate (module state), over every object it ran, so an
 * object evicted mid-run keeps its counts; in `wrangler dev` the worker and
 * every object share one isolate. In production they are per isolate and
 * reset when it restarts: a diagnostic, not an invoice.
 *
 * Events are found without touching the object's methods: `meterEntryPoints`
 * wraps the entry points on the class prototype. A call made while another
 * entry point of the same object is in its synchronous part (a socket message
 * that calls `this.lookup`) is part of that event, not a new one. Rows are
 * attributed to the object's most recently started event: exact totals,
 * approximate split when events of one object interleave at an await.
 *
 * Not durable/counters.ts: this counts what the bill counts, per event kind,
 * in windows the bench resets; counters.ts counts what no bill names (Matrix
 * polls, realm shard traffic), monotonic, for the dev endpoint and tests. The
 * one fact both need, an object constructed, is counted once, here
 * (ObjectMeter's constructor), and shown in both.
 */
import { objectCounters } from "./counters";
import type { UserPresence } from "./user-presence";

export interface MeterBucket {
  events: number;
  rowsRead: number;
  rowsWritten: number;
  alarmsSet: number;
  /** Wall ms from the start to the end of the event (overlapping events of one object each count theirs). */
  wallMs: number;
}

export interface MeterTotals {
  /** Objects constructed (first use and every wake). */
  instances: number;
  /** Billed requests: RPC calls, fetches and alarms (WebSocket messages are separate). */
  requests: number;
  wsMessagesIn: number;
  /** Rows read by SQL and the KV API (`kvRowsRead` of them). */
  rowsRead: number;
  /** Rows written by SQL and the KV API (`kvRowsWritten` of them), not counting alarms. */
  rowsWritten: number;
  /** Of rowsRead, by the sync KV API (the realm membership record). */
  kvRowsRead: number;
  /** Of rowsWritten, by the sync KV API. */
  kvRowsWritten: number;
  alarmsSet: number;
  alarmsDeleted: number;
  /** Wall ms during which some event of an object was running, summed over objects (union per object). */
  activeMs: number;
  byEvent: Record<string, MeterBucket>;
}

const empty = (): MeterTotals => ({
  instances: 0,
  requests: 0,
  wsMessagesIn: 0,
  rowsRead: 0,
  rowsWritten: 0,
  kvRowsRead: 0,
  kvRowsWritten: 0,
  alarmsSet: 0,
  alarmsDeleted: 0,
  activeMs: 0,
  byEvent: {},
});

let totals = empty();
const pending: Array<{ cursor: SqlStorageCursor<Record<string, SqlStorageValue>>; kind: string }> = [];

function bucket(kind: string): MeterBucket {
  totals.byEvent[kind] ??= { events: 0, rowsRead: 0, rowsWritten: 0, alarmsSet: 0, wallMs: 0 };
  return totals.byEvent[kind];
}

/** Adds the rows of cursors run since the last settle (they are read fully by then: UserStore never leaves one open). */
function settle(): void {
  for (const { cursor, kind } of pending.splice(0)) {
    const b = bucket(kind);
    b.rowsRead += cursor.rowsRead;
    b.rowsWritten += cursor.rowsWritten;
    totals.rowsRead += cursor.rowsRead;
    totals.rowsWritten += cursor.rowsWritten;
  }
}

/** The sums so far (a copy). */
export function meterTotals(): MeterTotals {
  settle();
  return structuredClone(totals);
}

export function resetMeter(): void {
  settle();
  totals = empty();
}

/** SQL whose cursors are counted, as rows of `meter`'s current event. */
export function meteredSql(sql: SqlStorage, meter: ObjectMeter): SqlStorage {
  const exec = sql.exec.bind(sql);
  return new Proxy(sql, {
    get(target, prop, receiver) {
      if (prop !== "exec") return Reflect.get(target, prop, receiver);
      return (query: string, ...bindings: unknown[]) => {
        const cursor = exec(query, ...bindings);
        pending.push({ cursor, kind: meter.kind });
        return cursor;
      };
    },
  });
}

/**
 * The sync KV API (`ctx.storage.kv`), counted as rows of `meter`'s current
 * event. On a SQLite-backed object, KV methods "store and query data in a
 * hidden SQLite table and are billed as rows read and rows written", deletes
 * counted as rows written (https://developers.cloudflare.com/durable-objects/platform/pricing/,
 * "SQLite storage backend", footnotes 2 and 4). That table is workerd's
 * `_cf_KV (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID` (no separate key
 * index), and the same statements run on a table of that shape through
 * `sql.exec` count: a put (`INSERT … ON CONFLICT DO UPDATE`) 1 row written,
 * new key or not; a get 1 row read when the key exists, 0 when not; a delete
 * 1 read and 1 written when the key existed, 0 when not. `list` reads a row
 * per entry returned.
 */
export function meteredKv(kv: SyncKvStorage, meter: ObjectMeter): SyncKvStorage {
  return {
    get<T>(key: string): T | undefined {
      const value = kv.get<T>(key);
      meter.kvRows(value === undefined ? 0 : 1, 0);
      return value;
    },
    put<T>(key: string, value: T): void {
      kv.put(key, value);
      meter.kvRows(0, 1);
    },
    delete(key: string): boolean {
      const deleted = kv.delete(key);
      if (deleted) meter.kvRows(1, 1);
      return deleted;
    },
    *list<T>(options?: SyncKvListOptions): Iterable<[string, T]> {
      for (const entry of kv.list<T>(options)) {
        meter.kvRows(1, 0);
        yield entry;
      }
    },
  };
}

/** One object's view of the meter: its busy time, its alarms and its KV rows. */
export class ObjectMeter {
  private running = 0;
  private busySince = 0;
  /** Inside the synchronous part of an entry point: calls to other entry points are part of it. */
  private inside = false;
  /** The event most recently started (rows are attributed to it). */
  kind = "construct";

  constructor() {
    totals.instances++;
    objectCounters.instancesCreated++;
  }

  alarmSet(): void {
    totals.alarmsSet++;
    bucket(this.kind).alarmsSet++;
  }

  alarmDeleted(): void {
    totals.alarmsDeleted++;
  }

  /** Rows read and written by the sync KV API (`meteredKv`). */
  kvRows(read: number, written: number): void {
    const b = bucket(this.kind);
    b.rowsRead += read;
    b.rowsWritten += written;
    totals.rowsRead += read;
    totals.rowsWritten += written;
    totals.kvRowsRead += read;
    totals.kvRowsWritten += written;
  }

  /** Runs one entry point as an event of `kind` (nested calls count as part of the outer event). */
  run<T>(kind: string, billed: "request" | "ws" | "none", body: () => T): T {
    if (this.inside) return body();
    settle();
    this.kind = kind;
    const b = bucket(kind);
    b.events++;
    if (billed === "request") totals.requests++;
    else if (billed === "ws") totals.wsMessagesIn++;
    const started = Date.now();
    if (this.running++ === 0) this.busySince = started;
    const done = () => {
      const now = Date.now();
      b.wallMs += now - started;
      if (--this.running === 0) totals.activeMs += now - this.busySince;
    };
    let result: T;
    try {
      this.inside = true;
      result = body();
    } catch (error) {
      done();
      throw error;
    } finally {
      this.inside = false;
    }
    if (result instanceof Promise) return result.finally(done) as T;
    done();
    return result;
  }
}

type EntryPoint = { kind: string | ((...args: never[]) => string); billed: "request" | "ws" | "none" };
type EntryPoints = Record<string, EntryPoint>;

/** Wraps the given methods of a Durable Object class so that each call is a metered event. */
export function meterEntryPoints<T extends object>(proto: T, entryPoints: EntryPoints, meterOf: (instance: T) => ObjectMeter): void {
  const methods = proto as Record<string, (...args: unknown[]) => unknown>;
  for (const [name, { kind, billed }] of Object.entries(entryPoints)) {
    const original = methods[name];
    if (typeof original !== "function") throw new Error(`no entry point ${name} to meter`);
    methods[name] = function (this: T, ...args: unknown[]) {
      const label = typeof kind === "function" ? (kind as (...a: unknown[]) => string)(...args) : kind;
      return meterOf(this).run(label, billed, () => original.apply(this, args));
    };
  }
}

const rpc = (kind: string) => ({ kind: `rpc:${kind}`, billed: "request" as const });

/**
 * The entry points of UserPresence, each a metered event: a billed request
 * (RPC, fetch, alarm) or an incoming WebSocket message. A new RPC method of
 * the class belongs here (the names are checked against the class).
 */
export const USER_PRESENCE_ENTRY_POINTS = {
  fetch: { kind: "fetch", billed: "request" },
  webSocketMessage: {
    kind: (_ws: WebSocket, frame: unknown) => (typeof frame === "string" && frame.includes('"PositionHeartbeat"') ? "ws:heartbeat" : "ws:other"),
    billed: "ws",
  },
  webSocketClose: { kind: "ws:close", billed: "none" },
  webSocketError: { kind: "ws:error", billed: "none" },
  alarm: { kind: "alarm", billed: "request" },
  watch: rpc("watch"),
  unwatch: rpc("unwatch"),
  receivePresence: rpc("receivePresence"),
  presenceFor: rpc("presenceFor"),
  receiveEdge: rpc("receiveEdge"),
  lookup: rpc("lookup"),
  httpHeartbeat: rpc("httpHeartbeat"),
  onlineFriends: rpc("onlineFriends"),
  friendship: rpc("friendship"),
  setFriendships: rpc("setFriendships"),
  friends: rpc("friends"),
  setPrivacy: rpc("setPrivacy"),
  friendsAmong: rpc("friendsAmong"),
  matrixPresence: rpc("matrixPresence"),
  matrixSetPresence: rpc("matrixSetPresence"),
  matrixSync: rpc("matrixSync"),
} satisfies Partial<Record<keyof UserPresence, EntryPoint>>;
