/**
 * Peer (a): the single-process ceiling. The friend graph and the online set
 * are Maps in this one Node process; a change is a loop over the user's
 * friends and their subscribed sockets. No persistence, no second node.
 *
 *   PORT=8830 JWT_SECRET=... ADMIN_TOKEN=... TTL_MS=120000 node bench/peers/memory.mjs
 */
import { env, serve } from "./core.mjs";

const friends = new Map();
const online = new Map();
const seqs = new Map();
let node;

const backend = {
  attach: (n) => (node = n),
  async importPairs(pairs) {
    for (const [a, b] of pairs) {
      if (a === b) continue;
      if (!friends.has(a)) friends.set(a, new Set());
      if (!friends.has(b)) friends.set(b, new Set());
      friends.get(a).add(b);
      friends.get(b).add(a);
    }
  },
  async friendsOf(user) {
    return [...(friends.get(user) ?? [])];
  },
  async onlineFriends(_user, list) {
    return list.map((f) => online.get(f)).filter(Boolean);
  },
  async publish(user, presence) {
    if (presence.status === "offline") online.delete(user);
    else online.set(user, presence);
    node.deliverLocal(user, presence);
  },
  async nextSeq(user) {
    const seq = (seqs.get(user) ?? 0) + 1;
    seqs.set(user, seq);
    return seq;
  },
  async watch() {},
  async unwatch() {},
  async touch() {},
  async close() {},
};

const server = await serve({
  port: Number(env("PORT")),
  backend,
  ttlMs: Number(env("TTL_MS", "120000")),
  coalesceMs: Number(env("POSITION_COALESCE_MS", "1000")),
  secret: env("JWT_SECRET"),
  adminToken: env("ADMIN_TOKEN"),
});
console.log(`memory peer listening on ${env("PORT")}`);
process.on("SIGTERM", async () => {
  await server.close();
  process.exit(0);
});
