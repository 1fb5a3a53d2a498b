/**
 * What the runtime did with this isolate's objects, counted in memory (per
 * isolate, reset when it restarts). `instancesCreated` grows by one each time
 * a user's object is constructed: on first use and on every wake from
 * hibernation or eviction (bumped by ObjectMeter's constructor, durable/meter.ts,
 * the one place a construction is counted). Tests read it to prove that
 * something (a keep-alive ping) did *not* wake an object.
 *
 * Not durable/meter.ts: the meter counts what the bill counts (requests,
 * messages, rows, alarms) per event kind, in windows the bench resets
 * (`GET /v1/admin/stats`). These count what no bill names — Matrix polls and
 * realm-shard traffic — never reset, read as differences by the benchmarks
 * (`GET /dev/counters`) and tests.
 */
export const objectCounters = {
  instancesCreated: 0,
  /** Matrix (durable/matrix.ts): /sync evaluations, long polls parked, and events on parked polls' sockets (close/error/message). */
  matrixSyncs: 0,
  matrixParks: 0,
  matrixWaitEvents: 0,
};

/** Realm population (durable/realm-shard.ts, realm-counter.ts): calls to shards, shard→counter reports, batched pushes, count reads that reached a counter. */
export const realmCounters = {
  shardCalls: 0,
  reports: 0,
  pushes: 0,
  counterReads: 0,
};
