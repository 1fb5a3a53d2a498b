/**
 * An example consumer of edge-presence's server-side events (docs/EVENTS.md):
 * a Queue consumer that keeps every event once (deduplicated on its `id`: the
 * queue delivers at least once) and the latest status of each user (ordered
 * by `seq`: batches may arrive out of order), in D1. It also answers over
 * HTTP, which the tests use and a backend could too:
 *
 *   GET /events?userId=…&limit=…   the last events received (oldest first), with how often each was delivered
 *   GET /status/:userId            the latest status of one user
 *
 * and logs one line per delivery (`events-consumer {"deliveries":1,"event":{…}}`).
 *
 * Copy it as a starting point: replace `record` with what your backend does
 * (push notifications to users who are offline, analytics, moderation…).
 */
import type { ServerEvent } from "../../../src/presence/events";

interface Env {
  EVENTS_DB: D1Database;
}

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, kind TEXT NOT NULL,
     seq INTEGER NOT NULL, at INTEGER NOT NULL, body TEXT NOT NULL, deliveries INTEGER NOT NULL DEFAULT 1, received INTEGER NOT NULL)`,
  `CREATE INDEX IF NOT EXISTS events_by_user ON events (user_id, received)`,
  `CREATE TABLE IF NOT EXISTS statuses (user_id TEXT PRIMARY KEY, status TEXT NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL)`,
];

let schemaReady: Promise<unknown> | null = null;

function ready(db: D1Database): Promise<unknown> {
  schemaReady ??= db.batch(SCHEMA.map((sql) => db.prepare(sql))).catch((error) => {
    schemaReady = null;
    throw error;
  });
  return schemaReady;
}

/** The fields every event version 1 has (the rest is kept as sent). */
function isEvent(body: unknown): body is ServerEvent {
  const e = body as Partial<ServerEvent> | null;
  return (
    typeof e === "object" &&
    e !== null &&
    e.v === 1 &&
    typeof e.id === "string" &&
    typeof e.userId === "string" &&
    typeof e.seq === "number" &&
    (e.kind === "presence" || e.kind === "friendship")
  );
}

/** One event, once: a redelivery only counts; the status only moves forward in seq. */
function record(db: D1Database, event: ServerEvent, received: number): D1PreparedStatement[] {
  const statements = [
    db
      .prepare(
        `INSERT INTO events (id, user_id, kind, seq, at, body, received) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(id) DO UPDATE SET deliveries = deliveries + 1 RETURNING deliveries`,
      )
      .bind(event.id, event.userId, event.kind, event.seq, event.at, JSON.stringify(event), received),
  ];
  if (event.kind === "presence") {
    statements.push(
      db
        .prepare(
          `INSERT INTO statuses (user_id, status, seq, at) VALUES (?, ?, ?, ?)
           ON CONFLICT(user_id) DO UPDATE SET status = excluded.status, seq = excluded.seq, at = excluded.at WHERE excluded.seq > statuses.seq`,
        )
        .bind(event.userId, event.status.to, event.seq, event.at),
    );
  }
  return statements;
}

export default {
  async queue(batch: MessageBatch<unknown>, env: Env): Promise<void> {
    await ready(env.EVENTS_DB);
    const received = Date.now();
    for (const message of batch.messages) {
      if (!isEvent(message.body)) {
        // Not ours to understand (a newer version?): log it and let it go rather than retry it forever.
        console.warn("events-consumer: skipped an unknown message", message.id);
        message.ack();
        continue;
      }
      try {
        const [stored] = await env.EVENTS_DB.batch<{ deliveries: number }>(record(env.EVENTS_DB, message.body, received));
        // One line per delivery (the end-to-end test reads them from `wrangler dev`'s output).
        console.log(`events-consumer ${JSON.stringify({ deliveries: stored?.results[0]?.deliveries ?? null, event: message.body })}`);
        message.ack();
      } catch (error) {
        console.error("events-consumer: will retry", message.body.id, String(error));
        message.retry({ delaySeconds: 1 });
      }
    }
  },

  async fetch(request: Request, env: Env): Promise<Response> {
    await ready(env.EVENTS_DB);
    const url = new URL(request.url);
    if (url.pathname === "/health") return Response.json({ ok: true });
    if (url.pathname === "/events") {
      const userId = url.searchParams.get("userId");
      const limit = Math.min(1_000, Math.max(1, Number(url.searchParams.get("limit") ?? 100) || 100));
      const query = userId
        ? env.EVENTS_DB.prepare(`SELECT body, deliveries FROM events WHERE user_id = ? ORDER BY received DESC, rowid DESC LIMIT ?`).bind(userId, limit)
        : env.EVENTS_DB.prepare(`SELECT body, deliveries FROM events ORDER BY received DESC, rowid DESC LIMIT ?`).bind(limit);
      const { results } = await query.all<{ body: string; deliveries: number }>();
      const events = results.reverse().map((r) => ({ ...(JSON.parse(r.body) as ServerEvent), deliveries: r.deliveries }));
      return Response.json({ events });
    }
    const status = url.pathname.match(/^\/status\/(.+)$/);
    if (status) {
      const row = await env.EVENTS_DB.prepare(`SELECT user_id AS userId, status, seq, at FROM statuses WHERE user_id = ?`).bind(decodeURIComponent(status[1]!)).first();
      return row ? Response.json(row) : Response.json({ error: { code: "not_found", message: "no event for this user yet" } }, { status: 404 });
    }
    return Response.json({ error: { code: "not_found", message: "GET /events, /status/:userId or /health" } }, { status: 404 });
  },
} satisfies ExportedHandler<Env>;
