/**
 * RealmCounter: one Durable Object per realm (`REALM_COUNTER.getByName(realm)`),
 * the realm's population. It exists so that reading or watching a realm's
 * count costs one object, whatever the number of members: members never call
 * it (their shards do, at most once per REALM_BATCH_MS each), and subscribers
 * hold hibernating WebSockets to it, pushed the total at most once per
 * REALM_BATCH_MS and only when it changed. It owns
 *   - each shard's last reported count (SQLite), whose sum is the population,
 *   - the subscribers' sockets (tag "sub"; nothing in their attachments).
 */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../src/env";
import { readConfig, type PresenceConfig } from "../src/presence/config";
import { batchSendAt, type RealmCount } from "../src/presence/realm";
import { PING_FRAME, PONG_FRAME } from "../src/protocol";
import { alarmTime } from "../src/presence/timers";
import { realmCounters } from "./counters";

const SUBSCRIBER = "sub";

export class RealmCounter extends DurableObject<Env> {
  private readonly config: PresenceConfig;
  private readonly sql: SqlStorage;
  private lastPushAt: number | null = null;
  private pushed: number | null = null;
  private armedAt: number | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.config = readConfig(env);
    this.sql = ctx.storage.sql;
    this.sql.exec("CREATE TABLE IF NOT EXISTS shards (shard INTEGER PRIMARY KEY, count INTEGER NOT NULL, at INTEGER NOT NULL)");
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
  }

  private get realm(): string {
    if (!this.ctx.id.name) throw new Error("RealmCounter objects are addressed by realm (REALM_COUNTER.getByName)");
    return this.ctx.id.name;
  }

  private total(): number {
    return this.sql.exec<{ n: number | null }>("SELECT SUM(count) AS n FROM shards").one().n ?? 0;
  }

  private frame(now: number): RealmCount {
    return { type: "realm_count", realm: this.realm, count: this.total(), at: now };
  }

  // ─── RPC ──────────────────────────────────────────────────────────────────

  /** A shard's count as of `at` (an older report than the one held is ignored). */
  async report(shard: number, count: number, at: number): Promise<void> {
    this.sql.exec(
      "INSERT INTO shards (shard, count, at) VALUES (?, ?, ?) ON CONFLICT(shard) DO UPDATE SET count = excluded.count, at = excluded.at WHERE excluded.at >= shards.at",
      shard,
      count,
      at,
    );
    await this.pushIfDue(Date.now());
  }

  /** `GET /v1/realms/:realm`. */
  async count(): Promise<RealmCount> {
    realmCounters.counterReads++;
    return this.frame(Date.now());
  }

  // ─── subscribers (Hibernation API) ─────────────────────────────────────────

  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return Response.json({ error: { code: "upgrade_required", message: "connect with a WebSocket upgrade" } }, { status: 426 });
    }
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1], [SUBSCRIBER]);
    const now = Date.now();
    pair[1].send(JSON.stringify(this.frame(now)));
    const headers = new Headers();
    const protocol = request.headers.get("x-presence-protocol");
    if (protocol) headers.set("Sec-WebSocket-Protocol", protocol);
    return new Response(null, { status: 101, webSocket: pair[0], headers });
  }

  /** Subscribers only listen: anything but the keep-alive `ping` (answered by the runtime) is ignored. */
  override async webSocketMessage(): Promise<void> {}

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
  }

  override async alarm(): Promise<void> {
    this.armedAt = null;
    await this.pushIfDue(Date.now());
  }

  /** Pushes the total to every subscriber if it changed, at most once per batch interval (else the alarm does). */
  private async pushIfDue(now: number): Promise<void> {
    const sockets = this.ctx.getWebSockets(SUBSCRIBER);
    if (sockets.length === 0) return;
    const frame = this.frame(now);
    if (frame.count === this.pushed) return;
    const at = batchSendAt(this.lastPushAt, now, this.config.realmBatchMs);
    if (at > now) {
      // At most one row written per batch interval (each setAlarm is one).
      if (this.armedAt !== at) {
        this.armedAt = at;
        await this.ctx.storage.setAlarm(alarmTime(at, Date.now()));
      }
      return;
    }
    this.lastPushAt = now;
    this.pushed = frame.count;
    realmCounters.pushes++;
    const text = JSON.stringify(frame);
    for (const ws of sockets) {
      try {
        ws.send(text);
      } catch {
        // A socket closing as we push: its close event cleans up.
      }
    }
  }
}
