/**
 * Deterministic friend graphs. `uniform`: every user gets about `friends`
 * friends at random. `heavy`: the same plus `hubs` users befriended by
 * `hubFriends` others each (the "streamer with 1,000 friends" tail).
 */
export function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function makeGraph({ users, friends, shape = "uniform", hubs = 0, hubFriends = 1000, maxFriends = 1000, seed = 42 }) {
  const random = rng(seed);
  const ids = Array.from({ length: users }, (_, i) => `u${String(i).padStart(5, "0")}`);
  const adj = ids.map(() => new Set());
  const pairs = [];
  const link = (a, b) => {
    if (a === b || adj[a].has(b) || adj[a].size >= maxFriends || adj[b].size >= maxFriends) return false;
    adj[a].add(b);
    adj[b].add(a);
    pairs.push([ids[a], ids[b]]);
    return true;
  };
  const hubCount = shape === "heavy" ? Math.min(hubs, users) : 0;
  // Hubs first, so the friend cap never starves them.
  for (let h = 0; h < hubCount; h++) {
    const want = Math.min(hubFriends, users - 1);
    for (let tries = 0; adj[h].size < want && tries < want * 20; tries++) link(h, Math.floor(random() * users));
  }
  const target = Math.min(friends, users - 1);
  for (let a = 0; a < users; a++) {
    for (let tries = 0; adj[a].size < target && tries < target * 20; tries++) {
      const b = Math.floor(random() * users);
      if (adj[b].size < target + hubCount) link(a, b);
    }
  }
  const degrees = adj.map((s) => s.size).sort((x, y) => x - y);
  return {
    ids,
    index: new Map(ids.map((id, i) => [id, i])),
    friends: adj.map((s) => [...s]),
    pairs,
    hubs: ids.slice(0, hubCount),
    stats: {
      users,
      edges: pairs.length,
      meanFriends: degrees.reduce((a, b) => a + b, 0) / users,
      medianFriends: degrees[Math.floor(users / 2)],
      maxFriends: degrees[users - 1],
    },
  };
}
