/**
 * The shared body of the two peer servers. It speaks the edge-presence wire
 * protocol (same routes, same frames, same presence shape, same presence rules:
 * most available device wins, invisible shows offline, position-only changes
 * coalesced to one per `coalesceMs`, a device is online until `ttlMs` after its
 * last sign of life) so the one load generator drives all three servers.
 *
 * What differs between peers is the backend: where the friend graph and the
 * online set live and how a change reaches the friends' sockets
 * (memory.mjs: a Map and a loop; redis.mjs: SET EX + PUBLISH/SUBSCRIBE).
 * Compact on purpose: no rate limiting, no schema library, no HTTP heartbeat.
 */
import { createServer } from "node:http";
import { jwtVerify } from "jose";
import { WebSocketServer } from "ws";

const AVAILABILITY = { online: 3, busy: 2, away: 1 };
const DEVICE_STATUS = new Set(["online", "away", "busy", "invisible"]);

export function offlinePresence(userId, lastActiveAt = null, seq = 0) {
  return { userId, status: "offline", realm: null, position: null, statusText: null, devices: [], lastActiveAt, seq };
}

/** Same rules as src/presence/aggregate.ts, for the devices of one user. */
function aggregate(userId, devices, lastActiveAt) {
  const list = [...devices.values()];
  const invisible = list.some((d) => d.status === "invisible");
  const visible = invisible ? [] : list.filter((d) => d.status && d.status !== "invisible" && d.lastHeartbeatAt);
  if (visible.length === 0) return offlineView(userId, lastActiveAt);
  const status = visible.reduce((best, d) => (AVAILABILITY[d.status] > AVAILABILITY[best] ? d.status : best), "away");
  const latest = visible.reduce((a, b) => (b.lastHeartbeatAt > a.lastHeartbeatAt ? b : a));
  return {
    userId,
    status,
    realm: latest.realm,
    position: latest.position,
    statusText: latest.statusText,
    devices: visible.map((d) => ({ deviceId: d.deviceId, kind: d.kind, status: d.status, lastActiveAt: d.lastHeartbeatAt })).sort((a, b) => a.deviceId.localeCompare(b.deviceId)),
    lastActiveAt: latest.lastHeartbeatAt,
  };
}

function offlineView(userId, lastActiveAt) {
  const { seq: _seq, ...view } = offlinePresence(userId, lastActiveAt);
  return view;
}

function classifyChange(prev, next) {
  const shape = (p) => JSON.stringify([p.status, p.realm, p.statusText, p.devices.map((d) => [d.deviceId, d.kind, d.status])]);
  if (shape(prev) !== shape(next)) return "significant";
  const a = prev.position;
  const b = next.position;
  const same = (a === null && b === null) || (a !== null && b !== null && a.x === b.x && a.y === b.y && a.z === b.z);
  return same ? "none" : "position";
}

function validHeartbeat(m) {
  const p = m.position;
  return (
    p &&
    typeof p === "object" &&
    [p.x, p.y, p.z].every((v) => typeof v === "number" && Number.isFinite(v)) &&
    typeof m.realm === "string" &&
    m.realm.length > 0 &&
    m.realm.length <= 64 &&
    DEVICE_STATUS.has(m.status) &&
    (m.statusText === undefined || m.statusText === null || (typeof m.statusText === "string" && m.statusText.length <= 140))
  );
}

/**
 * Starts the HTTP + WebSocket server. `backend` implements
 *   importPairs(pairs), friendsOf(user) → string[], onlineFriends(user, friends) → Presence[],
 *   publish(user, presence) (store + deliver to friends' nodes, which call node.deliverLocal),
 *   watch(user, friends) / unwatch(user, friends) (this node now has / no longer has a subscribed socket of user),
 *   touch(user) (a sign of life without a change: keep the user's TTL fresh), nextSeq(user) → number,
 *   close().
 */
export async function serve({ port, backend, ttlMs, coalesceMs = 1000, heartbeatIntervalMs = 30000, secret, adminToken, localTtlSweep = true }) {
  const key = new TextEncoder().encode(secret);
  /** userId → { devices: Map<deviceId, device>, sockets: Set<ws>, published, publishedAt, timer, lastActiveAt, friends } */
  const users = new Map();
  /** friendId → Set<local userId subscribed to that friend> */
  const localWatchers = new Map();

  const node = {
    /** A change of `from` reached this node: send it to every local subscribed socket of a friend. */
    deliverLocal(from, presence) {
      const watchers = localWatchers.get(from);
      if (!watchers) return;
      const frame = JSON.stringify({ type: "presence", presence });
      for (const w of watchers) for (const ws of users.get(w)?.sockets ?? []) if (ws.subscribed) safeSend(ws, frame);
    },
    /** The backend saw `userId`'s TTL run out (Redis key expired): drop its devices. */
    expire(userId) {
      const user = users.get(userId);
      if (!user) return;
      for (const ws of user.sockets) ws.close(4000, "no sign of life within the TTL");
      user.devices.clear();
      void recompute(userId, Date.now());
    },
  };
  backend.attach?.(node);

  function user(userId) {
    let u = users.get(userId);
    if (!u) {
      u = { devices: new Map(), sockets: new Set(), published: null, publishedAt: 0, timer: null, lastActiveAt: null, friends: null, subscribed: 0 };
      users.set(userId, u);
    }
    return u;
  }

  async function recompute(userId, now) {
    const u = user(userId);
    const view = aggregate(userId, u.devices, u.lastActiveAt);
    if (view.status !== "offline") u.lastActiveAt = view.lastActiveAt;
    const prev = u.published ?? offlineView(userId, null);
    const change = classifyChange(prev, view);
    if (change === "none") return;
    if (change === "position" && now - u.publishedAt < coalesceMs) {
      u.timer ??= setTimeout(
        () => {
          u.timer = null;
          void recompute(userId, Date.now());
        },
        u.publishedAt + coalesceMs - now,
      );
      return;
    }
    const presence = { ...view, seq: await backend.nextSeq(userId) };
    u.published = view;
    u.publishedAt = now;
    await backend.publish(userId, presence);
  }

  function selfPresence(userId) {
    const u = user(userId);
    return { ...aggregate(userId, u.devices, u.lastActiveAt), seq: 0 };
  }

  // TTL sweep for the devices this node carries (the Redis peer lets Redis keys expire instead).
  const sweep = setInterval(() => {
    if (!localTtlSweep) return;
    const now = Date.now();
    for (const [userId, u] of users) {
      let expired = false;
      for (const [deviceId, d] of u.devices) {
        if (d.lastSeenAt + ttlMs > now) continue;
        u.devices.delete(deviceId);
        expired = true;
        for (const ws of u.sockets) if (ws.deviceId === deviceId) ws.close(4000, "no sign of life within the TTL");
      }
      if (expired) void recompute(userId, now);
    }
  }, 250);

  const wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });

  const http = createServer(async (req, res) => {
    const url = new URL(req.url, "http://x");
    const json = (status, body) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    try {
      if (url.pathname === "/health") return json(200, { ok: true });
      if (req.method === "POST" && url.pathname === "/v1/admin/friendships:import") {
        if (req.headers.authorization !== `Bearer ${adminToken}`) return json(401, { error: { code: "unauthorized" } });
        let body = "";
        for await (const chunk of req) body += chunk;
        const { pairs } = JSON.parse(body);
        await backend.importPairs(pairs.map((p) => (Array.isArray(p) ? p : [p.a, p.b])));
        for (const u of users.values()) u.friends = null;
        return json(200, { imported: pairs.length, pending: [], refusals: [] });
      }
      return json(404, { error: { code: "not_found", message: "no such route" } });
    } catch (error) {
      return json(500, { error: { code: "internal", message: String(error) } });
    }
  });

  http.on("upgrade", async (req, socket, head) => {
    const url = new URL(req.url, "http://x");
    const reject = (status) => {
      socket.end(`HTTP/1.1 ${status} Refused\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if (url.pathname !== "/v1/connect") return reject(404);
    const token = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? "")?.[1];
    let userId;
    try {
      const { payload } = await jwtVerify(token ?? "", key, { algorithms: ["HS256"], requiredClaims: ["exp", "sub"] });
      userId = payload.sub;
    } catch {
      return reject(401);
    }
    const deviceId = url.searchParams.get("device") ?? crypto.randomUUID();
    const kind = url.searchParams.get("kind") ?? "web";
    wss.handleUpgrade(req, socket, head, (ws) => void onConnect(ws, userId, deviceId, kind));
  });

  async function onConnect(ws, userId, deviceId, kind) {
    const u = user(userId);
    const now = Date.now();
    for (const old of u.sockets) if (old.deviceId === deviceId) old.close(4001, "replaced by a newer connection of this device");
    ws.userId = userId;
    ws.deviceId = deviceId;
    ws.subscribed = false;
    u.sockets.add(ws);
    const prev = u.devices.get(deviceId);
    u.devices.set(deviceId, { ...(prev ?? { deviceId, status: null, statusText: null, realm: null, position: null, lastHeartbeatAt: null }), kind, lastSeenAt: now });
    safeSend(ws, JSON.stringify({ type: "welcome", userId, deviceId, protocol: "presence.v1", heartbeatIntervalMs, ttlMs, maxFrameBytes: 4096, ping: "ping" }));
    ws.on("message", (data, isBinary) => void onMessage(ws, u, data, isBinary));
    ws.on("close", (code) => void onClose(ws, u, code));
    ws.on("error", () => {});
  }

  async function friendsOf(userId) {
    const u = user(userId);
    u.friends ??= await backend.friendsOf(userId);
    return u.friends;
  }

  async function onMessage(ws, u, data, isBinary) {
    const now = Date.now();
    const device = u.devices.get(ws.deviceId);
    if (device) device.lastSeenAt = now;
    if (isBinary) return safeSend(ws, JSON.stringify({ type: "error", code: "binary_not_supported", message: "send JSON text frames" }));
    const text = data.toString();
    if (text === "ping") {
      safeSend(ws, "pong");
      return backend.touch(ws.userId);
    }
    let m;
    try {
      m = JSON.parse(text);
    } catch {
      return safeSend(ws, JSON.stringify({ type: "error", code: "bad_json", message: "frame is not valid JSON" }));
    }
    const id = m?.id;
    try {
      switch (m?.type) {
        case "PositionHeartbeat": {
          if (!validHeartbeat(m)) return safeSend(ws, JSON.stringify({ type: "error", id, code: "invalid_message", message: "bad heartbeat" }));
          u.devices.set(ws.deviceId, {
            ...(device ?? { deviceId: ws.deviceId, kind: "web" }),
            status: m.status,
            statusText: m.statusText ?? null,
            realm: m.realm,
            position: { x: m.position.x, y: m.position.y, z: m.position.z },
            lastHeartbeatAt: now,
            lastSeenAt: now,
          });
          await backend.touch(ws.userId);
          await recompute(ws.userId, now);
          return safeSend(ws, JSON.stringify({ type: "heartbeat_ack", id, presence: selfPresence(ws.userId), nextHeartbeatMs: heartbeatIntervalMs }));
        }
        case "GetOnlineFriends": {
          const friends = await backend.onlineFriends(ws.userId, await friendsOf(ws.userId));
          return safeSend(ws, JSON.stringify({ type: "online_friends", id, friends }));
        }
        case "SubscribeFriendshipPresenceUpdates": {
          const friends = await friendsOf(ws.userId);
          if (!ws.subscribed) {
            ws.subscribed = true;
            if (u.subscribed++ === 0) {
              for (const f of friends) {
                let set = localWatchers.get(f);
                if (!set) {
                  set = new Set();
                  localWatchers.set(f, set);
                }
                set.add(ws.userId);
              }
              await backend.watch(ws.userId, friends);
            }
          }
          const online = await backend.onlineFriends(ws.userId, friends);
          return safeSend(ws, JSON.stringify({ type: "subscribed", id, friends: online }));
        }
        case "UnsubscribeFriendshipPresenceUpdates":
          await unsubscribe(ws, u);
          return safeSend(ws, JSON.stringify({ type: "unsubscribed", id }));
        default:
          return safeSend(ws, JSON.stringify({ type: "error", id, code: "unknown_type", message: "unknown message type" }));
      }
    } catch (error) {
      console.error("message failed", error);
      return safeSend(ws, JSON.stringify({ type: "error", id, code: "internal", message: "the request failed; it is safe to retry" }));
    }
  }

  async function unsubscribe(ws, u) {
    if (!ws.subscribed) return;
    ws.subscribed = false;
    if (--u.subscribed > 0) return;
    const friends = await friendsOf(ws.userId);
    for (const f of friends) {
      const set = localWatchers.get(f);
      set?.delete(ws.userId);
      if (set?.size === 0) localWatchers.delete(f);
    }
    await backend.unwatch(ws.userId, friends);
  }

  async function onClose(ws, u, code) {
    u.sockets.delete(ws);
    await unsubscribe(ws, u);
    if (code !== 4000 && ![...u.sockets].some((s) => s.deviceId === ws.deviceId)) u.devices.delete(ws.deviceId);
    await recompute(ws.userId, Date.now());
  }

  await new Promise((resolve) => http.listen(port, "127.0.0.1", resolve));
  return {
    async close() {
      clearInterval(sweep);
      for (const client of wss.clients) client.terminate();
      http.close();
      await backend.close();
    },
  };
}

function safeSend(ws, frame) {
  if (ws.readyState === 1) ws.send(frame);
}

export function env(name, fallback) {
  const value = process.env[name];
  if (value === undefined || value === "") {
    if (fallback === undefined) throw new Error(`${name} is required`);
    return fallback;
  }
  return value;
}
