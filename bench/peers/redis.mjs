/**
 * Peer (b): the original proposal. A Node service keeps every online user in
 * Redis as `p:<user>` = presence JSON with `SET EX <ttl>` (refreshed by
 * heartbeats and, at most every ttl/4, by pings); the friend graph is a Redis
 * set `f:<user>`; every change is `PUBLISH pc:<user>`, and the node SUBSCRIBEs
 * to `pc:<friend>` for each friend of each of its subscribed users. Silent
 * drops are found by Redis itself: a key that expires raises a keyspace event
 * (`notify-keyspace-events Ex`), and the node publishes the user offline.
 *
 *   PORT=8831 REDIS_URL=redis://127.0.0.1:8832 JWT_SECRET=... ADMIN_TOKEN=... node bench/peers/redis.mjs
 */
import Redis from "ioredis";
import { env, offlinePresence, serve } from "./core.mjs";

const ttlMs = Number(env("TTL_MS", "120000"));
const ttlSeconds = Math.max(1, Math.round(ttlMs / 1000));
const redis = new Redis(env("REDIS_URL"), { enableAutoPipelining: true });
const sub = redis.duplicate();
const channelRefs = new Map();
const lastTouch = new Map();
let node;

await sub.config("SET", "notify-keyspace-events", "Ex");
await sub.subscribe("__keyevent@0__:expired");
sub.on("message", (channel, message) => {
  if (channel === "__keyevent@0__:expired") {
    if (message.startsWith("p:")) void expired(message.slice(2));
    return;
  }
  node.deliverLocal(channel.slice(3), JSON.parse(message));
});

/** The TTL ran out in Redis: tell the friends, and drop the user's sockets on this node. */
async function expired(user) {
  const seq = await redis.incr(`s:${user}`);
  await redis.publish(`pc:${user}`, JSON.stringify(offlinePresence(user, Date.now(), seq)));
  node.expire(user);
}

const backend = {
  attach: (n) => (node = n),
  async importPairs(pairs) {
    const pipeline = redis.pipeline();
    for (const [a, b] of pairs) {
      pipeline.sadd(`f:${a}`, b);
      pipeline.sadd(`f:${b}`, a);
    }
    await pipeline.exec();
  },
  async friendsOf(user) {
    return redis.smembers(`f:${user}`);
  },
  async onlineFriends(_user, list) {
    if (list.length === 0) return [];
    const values = await redis.mget(list.map((f) => `p:${f}`));
    return values.filter(Boolean).map((v) => JSON.parse(v));
  },
  async publish(user, presence) {
    const json = JSON.stringify(presence);
    if (presence.status === "offline") await Promise.all([redis.del(`p:${user}`), redis.publish(`pc:${user}`, json)]);
    else await Promise.all([redis.set(`p:${user}`, json, "EX", ttlSeconds), redis.publish(`pc:${user}`, json)]);
    lastTouch.set(user, Date.now());
  },
  async nextSeq(user) {
    return redis.incr(`s:${user}`);
  },
  async watch(_user, friends) {
    const fresh = [];
    for (const f of friends) {
      const n = (channelRefs.get(f) ?? 0) + 1;
      channelRefs.set(f, n);
      if (n === 1) fresh.push(`pc:${f}`);
    }
    if (fresh.length) await sub.subscribe(...fresh);
  },
  async unwatch(_user, friends) {
    const gone = [];
    for (const f of friends) {
      const n = (channelRefs.get(f) ?? 1) - 1;
      if (n <= 0) {
        channelRefs.delete(f);
        gone.push(`pc:${f}`);
      } else channelRefs.set(f, n);
    }
    if (gone.length) await sub.unsubscribe(...gone);
  },
  /** A sign of life: keep the key alive, at most once per ttl/4 per user. */
  async touch(user) {
    const now = Date.now();
    if (now - (lastTouch.get(user) ?? 0) < ttlMs / 4) return;
    lastTouch.set(user, now);
    await redis.expire(`p:${user}`, ttlSeconds);
  },
  async close() {
    sub.disconnect();
    redis.disconnect();
  },
};

const server = await serve({
  port: Number(env("PORT")),
  backend,
  ttlMs,
  coalesceMs: Number(env("POSITION_COALESCE_MS", "1000")),
  secret: env("JWT_SECRET"),
  adminToken: env("ADMIN_TOKEN"),
  localTtlSweep: false,
});
console.log(`redis peer listening on ${env("PORT")}`);
process.on("SIGTERM", async () => {
  await server.close();
  process.exit(0);
});
