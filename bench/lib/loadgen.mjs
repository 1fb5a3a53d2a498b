/**
 * The load generator: one real `ws` client per online user, all in this
 * process. It knows the graph and which friends are subscribed, so every
 * change it makes has a list of friend sockets that must see it; every
 * `presence` frame that arrives settles those expectations:
 *   exact      the frame carries the change itself (latency measured),
 *   coalesced  a later change of the same user arrived first (position
 *              coalescing, or the user went offline right after),
 *   lost       nothing newer arrived before the end of the drain period.
 * A change is tagged by its marker: `position.x` is a per-user counter.
 */
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import WebSocket from "ws";
import { admin } from "../../scripts/lib/admin.mjs";
import { mintToken } from "../../src/dev-token.mjs";
import { rng } from "./graph.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function mintTokens(ids, secret) {
  const tokens = new Map();
  for (const id of ids) tokens.set(id, await mintToken(id, { secret, expiresIn: "3h" }));
  return tokens;
}

export async function importGraph(baseUrl, adminToken, pairs) {
  const started = performance.now();
  for (let i = 0; i < pairs.length; i += 1000) {
    const res = await admin({ url: baseUrl, adminToken }, "POST", "/friendships:import", { pairs: pairs.slice(i, i + 1000) });
    const body = await res.json().catch(() => ({}));
    if (res.status >= 300 && res.status !== 207) throw new Error(`import failed: ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
    if (body.refusals?.length || body.pending?.length) {
      throw new Error(`import incomplete: ${body.refusals?.length ?? 0} refusals, ${body.pending?.length ?? 0} pending`);
    }
  }
  return performance.now() - started;
}

export function summarize(values) {
  if (values.length === 0) return { n: 0 };
  const sorted = Float64Array.from(values).sort();
  const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  const round = (v) => Math.round(v * 10) / 10;
  return {
    n: sorted.length,
    p50: round(q(0.5)),
    p95: round(q(0.95)),
    p99: round(q(0.99)),
    max: round(sorted[sorted.length - 1]),
    mean: round(sorted.reduce((a, b) => a + b, 0) / sorted.length),
  };
}

/**
 * Runs one load scenario against a server that is up and has the graph.
 * `hooks.phase(name)` is awaited at: connected, steady-start, steady-end, idle-start, idle-end.
 */
export async function runLoad({ wsUrl, graph, tokens, params, hooks = {}, log = () => {} }) {
  const p = {
    online: 0.8,
    hbIntervalMs: 5000,
    moveProb: 0.5,
    statusProb: 0.05,
    churnPerSec: 0,
    steadyMs: 20000,
    drainMs: 3000,
    idleMs: 0,
    pingMs: 20000,
    connectConcurrency: 32,
    probeClean: 0,
    probeSilent: 0,
    probeReset: 0,
    probeTimeoutMs: 30000,
    seed: 7,
    ...params,
  };
  const random = rng(p.seed);
  // Realms: user i is in realm i mod p.realms (one shared realm by default). Position interest: p.positions
  // (all | realm | none; absent: the server's default, all). The peers ignore it and deliver every move.
  const realmOf = (i) => ((p.realms ?? 1) > 1 ? `r${i % p.realms}` : "bench");
  const wantsPosition = (w, u) => (p.positions === "none" ? false : p.positions === "realm" ? realmOf(w) === realmOf(u) : true);
  const runStarted = performance.now();
  const n = graph.ids.length;
  const now = () => performance.now();
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();

  const clients = new Array(n).fill(null);
  const markers = new Array(n).fill(0);
  const lat = { significant: [], position: [], online: [] };
  const offlineLat = { churn: [], clean: [], reset: [], silent: [] };
  const connectOpen = [];
  const connectSnapshot = [];
  // Connects begun in the steady state (churn), apart from the initial storm: what one user sees connecting while the others are online.
  const connectSnapshotSteady = [];
  const ackLat = [];
  const counts = {
    connects: 0,
    connectFailures: 0,
    unexpectedCloses: 0,
    errorFrames: {},
    heartbeatsSent: 0,
    acks: 0,
    presenceFrames: 0,
    expected: 0,
    exact: 0,
    coalesced: 0,
    lost: 0,
    abandoned: 0,
    staleSeq: 0,
    expectedOffline: 0,
    offlineSeen: 0,
    lostOffline: 0,
    snapshotMissing: 0,
    unexpectedPresence: 0,
    unexpectedCloseCodes: {},
  };
  /** watcher index → Map(friend index → [[marker, tSend, kind], ...]) */
  const pending = new Map();
  /** `${w}|${u}` → { t, kind } */
  const pendingOffline = new Map();
  let steady = false;
  let steadyAcks = 0;
  let steadyPresence = 0;
  let steadyHeartbeats = 0;

  const isWatching = (i, t) => {
    const c = clients[i];
    return c !== null && c.subscribedAt !== null && c.subscribedAt < t && !c.closing;
  };

  function expect(u, marker, kind, t) {
    for (const w of graph.friends[u]) {
      if (!isWatching(w, t)) continue;
      if (kind === "position" && !wantsPosition(w, u)) continue;
      let byFriend = pending.get(w);
      if (!byFriend) {
        byFriend = new Map();
        pending.set(w, byFriend);
      }
      let list = byFriend.get(u);
      if (!list) {
        list = [];
        byFriend.set(u, list);
      }
      list.push([marker, t, kind]);
      counts.expected++;
    }
  }

  function settle(w, presence, t, viaSnapshot) {
    const u = graph.index.get(presence.userId);
    if (u === undefined) return;
    const c = clients[w];
    if (c) {
      const last = c.seqs.get(u) ?? -1;
      if (presence.seq <= last && !viaSnapshot) counts.staleSeq++;
      else c.seqs.set(u, presence.seq);
    }
    const list = pending.get(w)?.get(u);
    if (presence.status === "offline") {
      const key = `${w}|${u}`;
      const waiting = pendingOffline.get(key);
      if (waiting) {
        pendingOffline.delete(key);
        counts.offlineSeen++;
        offlineLat[waiting.kind].push(t - waiting.t);
      }
      // Changes sent before the user left are superseded by the offline.
      if (list) {
        counts.coalesced += list.length;
        list.length = 0;
      }
      return;
    }
    if (!list || list.length === 0 || !presence.position) return;
    const marker = presence.position.x;
    let k = 0;
    while (k < list.length && list[k][0] <= marker) {
      const [m, tSend, kind] = list[k];
      if (m === marker && !viaSnapshot) {
        counts.exact++;
        lat[kind].push(t - tSend);
      } else counts.coalesced++;
      k++;
    }
    if (k > 0) list.splice(0, k);
  }

  function dropExpectationsOf(w) {
    const byFriend = pending.get(w);
    if (byFriend) for (const list of byFriend.values()) counts.abandoned += list.length;
    pending.delete(w);
    for (const u of graph.friends[w]) pendingOffline.delete(`${w}|${u}`);
  }

  function sendHeartbeat(c, kind) {
    if (c.ws.readyState !== WebSocket.OPEN || c.silent) return;
    const t = now();
    let change = null;
    if (kind === "online") change = "online";
    else if (random() < p.statusProb) {
      c.status = c.status === "online" ? "busy" : "online";
      change = "significant";
    } else if (random() < p.moveProb) change = "position";
    if (change) markers[c.i]++;
    const id = ++c.requests;
    c.acks.set(id, t);
    c.ws.send(JSON.stringify({ type: "PositionHeartbeat", id, position: { x: markers[c.i], y: 1, z: 2 }, realm: realmOf(c.i), status: c.status }));
    c.lastSignOfLife = t;
    counts.heartbeatsSent++;
    if (steady) steadyHeartbeats++;
    if (change) expect(c.i, markers[c.i], change, t);
  }

  function connect(i) {
    return new Promise((resolve) => {
      const t0 = now();
      const inSteady = steady;
      const id = graph.ids[i];
      const ws = new WebSocket(`${wsUrl}?device=d-${id}&kind=desktop${p.positions ? `&positions=${p.positions}` : ""}`, {
        headers: { Authorization: `Bearer ${tokens.get(id)}` },
        perMessageDeflate: false,
      });
      const c = {
        i,
        ws,
        subscribedAt: null,
        closing: false,
        silent: false,
        status: "online",
        requests: 0,
        acks: new Map(),
        seqs: new Map(),
        timers: [],
        lastSignOfLife: t0,
        onlineAtSubscribe: null,
      };
      clients[i] = c;
      let done = false;
      const finish = (ok) => {
        if (done) return;
        done = true;
        resolve(ok);
      };
      ws.on("unexpected-response", (_req, res) => {
        counts.connectFailures++;
        clients[i] = null;
        finish(false);
        res.resume();
      });
      ws.on("error", () => {
        if (c.subscribedAt === null && !done) {
          counts.connectFailures++;
          clients[i] = null;
          finish(false);
        }
      });
      ws.on("open", () => {
        connectOpen.push(now() - t0);
        counts.connects++;
        c.onlineAtSubscribe = graph.friends[i].filter((f) => clients[f]?.visibleAt != null && !clients[f].closing);
        ws.send(JSON.stringify({ type: "SubscribeFriendshipPresenceUpdates", id: "sub", ...(p.positions ? { positions: p.positions } : {}) }));
        sendHeartbeat(c, "online");
        const phase = random() * p.hbIntervalMs;
        c.timers.push(
          setTimeout(() => {
            sendHeartbeat(c);
            c.timers.push(setInterval(() => sendHeartbeat(c), p.hbIntervalMs));
          }, phase),
        );
        c.timers.push(
          setInterval(() => {
            if (ws.readyState === WebSocket.OPEN && !c.silent) {
              ws.send("ping");
              c.lastSignOfLife = now();
            }
          }, p.pingMs),
        );
      });
      ws.on("message", (data) => {
        if (c.silent) return;
        const t = now();
        const text = data.toString();
        if (text === "pong") return;
        let m;
        try {
          m = JSON.parse(text);
        } catch {
          return;
        }
        switch (m.type) {
          case "presence":
            counts.presenceFrames++;
            if (steady) steadyPresence++;
            if (c.subscribedAt === null) counts.unexpectedPresence++;
            settle(i, m.presence, t, false);
            break;
          case "subscribed": {
            c.subscribedAt = t;
            connectSnapshot.push(t - t0);
            if (inSteady) connectSnapshotSteady.push(t - t0);
            const shown = new Set(m.friends.map((f) => f.userId));
            for (const f of c.onlineAtSubscribe) if (!shown.has(graph.ids[f]) && clients[f] && !clients[f].closing) counts.snapshotMissing++;
            for (const presence of m.friends) settle(i, presence, t, true);
            finish(true);
            break;
          }
          case "heartbeat_ack": {
            const sent = c.acks.get(m.id);
            if (sent !== undefined) {
              c.acks.delete(m.id);
              ackLat.push(t - sent);
            }
            counts.acks++;
            if (steady) steadyAcks++;
            c.visibleAt ??= t;
            break;
          }
          case "error":
            counts.errorFrames[m.code] = (counts.errorFrames[m.code] ?? 0) + 1;
            break;
          default:
            break;
        }
      });
      ws.on("close", (code) => {
        for (const timer of c.timers) clearTimeout(timer);
        if (!c.closing) {
          counts.unexpectedCloses++;
          counts.unexpectedCloseCodes[code] = (counts.unexpectedCloseCodes[code] ?? 0) + 1;
          if (process.env.BENCH_DEBUG)
            log(
              `unexpected close ${graph.ids[i]} code ${code} at ${((now() - runStarted) / 1000).toFixed(1)} s, last sign of life ${((now() - c.lastSignOfLife) / 1000).toFixed(1)} s ago`,
            );
        }
        if (clients[i] === c) clients[i] = null;
        dropExpectationsOf(i);
        finish(false);
      });
      setTimeout(() => finish(false), 30000);
    });
  }

  /** Clean close: every subscribed friend must see this user offline. */
  function closeClean(i, kind) {
    const c = clients[i];
    if (!c || c.closing) return;
    const t = now();
    for (const w of graph.friends[i]) {
      if (!isWatching(w, t) || c.visibleAt == null) continue;
      pendingOffline.set(`${w}|${i}`, { t, kind });
      counts.expectedOffline++;
    }
    c.closing = true;
    for (const timer of c.timers) clearTimeout(timer);
    c.ws.close(1000, "bye");
  }

  /** Abrupt drop: the TCP connection is destroyed without a close frame (a crashed client). */
  function dropAbruptly(i) {
    const c = clients[i];
    if (!c || c.closing) return;
    const t = now();
    for (const w of graph.friends[i]) {
      if (!isWatching(w, t) || c.visibleAt == null) continue;
      pendingOffline.set(`${w}|${i}`, { t, kind: "reset" });
      counts.expectedOffline++;
    }
    c.closing = true;
    for (const timer of c.timers) clearTimeout(timer);
    c.ws.terminate();
  }

  /** Silent drop: the socket stays open but nothing is sent or read any more. */
  function dropSilently(i) {
    const c = clients[i];
    if (!c || c.closing) return;
    const t = c.lastSignOfLife;
    for (const w of graph.friends[i]) {
      if (!isWatching(w, now()) || c.visibleAt == null) continue;
      pendingOffline.set(`${w}|${i}`, { t, kind: "silent" });
      counts.expectedOffline++;
    }
    c.closing = true;
    c.silent = true;
    for (const timer of c.timers) clearTimeout(timer);
    c.ws._socket?.pause();
    // It no longer reads, so it cannot see anyone else go offline either.
    dropExpectationsOf(i);
  }

  // ── connect the online fraction ────────────────────────────────────────────
  const hubSet = new Set(graph.hubs.map((h) => graph.index.get(h)));
  const order = Array.from({ length: n }, (_, i) => i).sort(() => random() - 0.5);
  const target = Math.round(n * p.online);
  // Hubs are always online: that is where the heavy tail costs.
  const startOnline = [...hubSet, ...order.filter((i) => !hubSet.has(i))].slice(0, target);
  const connectStarted = now();
  let next = 0;
  await Promise.all(
    Array.from({ length: p.connectConcurrency }, async () => {
      // With a connect deadline (params.connectDeadlineMs), the run goes on with the users connected by then.
      while (next < startOnline.length && !(p.connectDeadlineMs && now() - connectStarted > p.connectDeadlineMs)) await connect(startOnline[next++]);
    }),
  );
  const connectMs = now() - connectStarted;
  log(`connected ${clients.filter(Boolean).length}/${target} in ${(connectMs / 1000).toFixed(1)} s`);
  await sleep(1500);
  await hooks.phase?.("connected");

  // ── steady state with churn ────────────────────────────────────────────────
  await hooks.phase?.("steady-start");
  steady = true;
  const steadyStarted = now();
  let churnDebt = 0;
  const churnTimer =
    p.churnPerSec > 0
      ? setInterval(() => {
          churnDebt += p.churnPerSec / 10;
          while (churnDebt >= 1) {
            churnDebt--;
            const online = [];
            const offline = [];
            for (let i = 0; i < n; i++) {
              if (hubSet.has(i)) continue;
              if (clients[i] && clients[i].subscribedAt !== null && !clients[i].closing) online.push(i);
              else if (!clients[i]) offline.push(i);
            }
            if (online.length) closeClean(online[Math.floor(random() * online.length)], "churn");
            if (offline.length) void connect(offline[Math.floor(random() * offline.length)]);
          }
        }, 100)
      : null;
  await sleep(p.steadyMs);
  if (churnTimer) clearInterval(churnTimer);
  const steadySeconds = (now() - steadyStarted) / 1000;
  steady = false;
  await hooks.phase?.("steady-end");

  // ── drain: stop heartbeats (pings go on), wait, count what never arrived ──
  for (const c of clients) if (c) for (const t of c.timers.splice(0)) clearTimeout(t);
  for (const c of clients) {
    if (!c) continue;
    c.timers.push(
      setInterval(() => {
        if (c.ws.readyState === WebSocket.OPEN && !c.silent) {
          c.ws.send("ping");
          c.lastSignOfLife = now();
        }
      }, p.pingMs),
    );
  }
  log(`steady state over at ${((now() - runStarted) / 1000).toFixed(1)} s; draining`);
  await sleep(p.drainMs);
  for (const [w, byFriend] of pending) {
    if (!clients[w] || clients[w].closing) continue;
    for (const list of byFriend.values()) counts.lost += list.length;
  }
  pending.clear();
  const lostOfflineSteady = pendingOffline.size;
  pendingOffline.clear();

  // ── idle: only pings, so the objects may hibernate ────────────────────────
  if (p.idleMs > 0) {
    log("idle (pings only)");
    await hooks.phase?.("idle-start");
    await sleep(p.idleMs);
    await hooks.phase?.("idle-end");
  }

  // ── offline probes: clean closes and silent drops of users with watching friends ─
  const candidates = [];
  for (let i = 0; i < n; i++) {
    if (hubSet.has(i) || !clients[i] || clients[i].closing || clients[i].visibleAt == null) continue;
    if (graph.friends[i].some((w) => isWatching(w, now()))) candidates.push(i);
  }
  const picked = candidates.sort(() => random() - 0.5);
  const probes = picked.slice(0, p.probeClean + p.probeReset + p.probeSilent);
  // Probe users' own sockets must not count as watchers of each other.
  let probeMs = 0;
  if (probes.length) {
    log(`offline probes at ${((now() - runStarted) / 1000).toFixed(1)} s`);
    const probeStarted = now();
    probes.forEach((i, k) => {
      if (k < p.probeClean) closeClean(i, "clean");
      else if (k < p.probeClean + p.probeReset) dropAbruptly(i);
      else dropSilently(i);
    });
    while (pendingOffline.size > 0 && now() - probeStarted < p.probeTimeoutMs) await sleep(100);
    probeMs = now() - probeStarted;
  }
  counts.lostOffline = lostOfflineSteady + pendingOffline.size;

  // ── close everything ───────────────────────────────────────────────────────
  for (const c of clients) {
    if (!c) continue;
    c.closing = true;
    for (const t of c.timers) clearTimeout(t);
    c.ws.terminate();
  }
  loop.disable();
  await sleep(200);

  return {
    params: p,
    connected: target,
    connectSeconds: connectMs / 1000,
    steadySeconds,
    heartbeatsPerSecOffered: steadyHeartbeats / steadySeconds,
    heartbeatsPerSec: steadyAcks / steadySeconds,
    deliveredPerSec: steadyPresence / steadySeconds,
    deliveredInSteady: steadyPresence,
    notifyLatencyMs: {
      all: summarize([...lat.significant, ...lat.position, ...lat.online]),
      significant: summarize(lat.significant),
      position: summarize(lat.position),
      online: summarize(lat.online),
    },
    offlineLatencyMs: {
      churn: summarize(offlineLat.churn),
      clean: summarize(offlineLat.clean),
      reset: summarize(offlineLat.reset),
      silentFromLastSignOfLife: summarize(offlineLat.silent),
    },
    probeSeconds: probeMs / 1000,
    connectToOpenMs: summarize(connectOpen),
    connectToSnapshotMs: summarize(connectSnapshot),
    connectToSnapshotSteadyMs: summarize(connectSnapshotSteady),
    heartbeatAckMs: summarize(ackLat),
    counts,
    generatorEventLoopDelayMs: { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
    latencySamples: [...lat.significant, ...lat.position, ...lat.online],
    statusChangeSamples: lat.significant,
  };
}
