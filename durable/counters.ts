/**
 * What the runtime did with this isolate's objects, counted in memory (per
 * isolate, reset when it restarts). `instancesCreated` grows by one each time
 * an object is constructed: on first use and on every wake from hibernation or
 * eviction. Tests read it to prove that something (a keep-alive ping) did *not*
 * wake an object; cost accounting reads it as the number of wakes.
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
