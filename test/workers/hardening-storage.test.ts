/**
 * Storage nobody can grow without bound (issue #12, items 3 and the blocks of
 * arbitrary ids): an object only ever asked about keeps no storage (its tables
 * are created by its first write, durable/store/tables.ts), and migrations
 * still run for objects that have tables.
 */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { meterTotals } from "../../durable/meter";
import { MIGRATIONS } from "../../durable/schema";
import { api, stubOf, user } from "./helpers";

/** The tables of a user's object (SQLite's catalogue; the runtime's own `_cf_` tables left out) and its database size. */
function storageOf(userId: string): Promise<{ tables: string[]; bytes: number }> {
  return runInDurableObject(stubOf(userId), (_, state) => ({
    tables: state.storage.sql
      .exec(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
      .toArray()
      .map((r) => String(r.name))
      .filter((name) => !name.startsWith("_cf_")),
    bytes: state.storage.sql.databaseSize,
  }));
}

/** Rows written (SQL and alarms) while `during` runs by objects' constructions and by the events of `kind`. */
async function writtenBy(kind: string, during: () => Promise<unknown>): Promise<{ events: number; rows: number }> {
  const of = (t: ReturnType<typeof meterTotals>, k: string) => t.byEvent[k] ?? { events: 0, rowsWritten: 0, alarmsSet: 0 };
  const rows = (t: ReturnType<typeof meterTotals>) => [kind, "construct"].reduce((sum, k) => sum + of(t, k).rowsWritten + of(t, k).alarmsSet, 0);
  const before = meterTotals();
  await during();
  const after = meterTotals();
  return { events: of(after, kind).events - of(before, kind).events, rows: rows(after) - rows(before) };
}

describe("item 3: asking about a never-used id creates no storage there", () => {
  it("N requests to N never-used ids: their objects have no tables and wrote no row; the ids stay usable", async () => {
    const a = user("a");
    const ghosts = Array.from({ length: 20 }, () => user("ghost"));
    const empty = await storageOf(user("never-touched"));
    expect((await api(a, "/v1/friends")).status).toBe(200); // the requester's own object exists before the count
    const cost = await writtenBy("rpc:receiveEdge", async () => {
      for (const ghost of ghosts) {
        const res = await api(a, "/v1/friends/requests", { method: "POST", body: JSON.stringify({ userId: ghost }) });
        expect(res).toMatchObject({ status: 404, body: { error: { code: "user_not_found" } } });
      }
    });
    console.log(`${ghosts.length} requests to never-used ids: ${cost.events} receiveEdge events, ${cost.rows} rows written there; empty database ${empty.bytes} bytes`);
    expect(cost.events).toBe(ghosts.length); // each target was asked
    expect(cost.rows).toBe(0);
    for (const ghost of ghosts) expect(await storageOf(ghost)).toEqual({ tables: [], bytes: empty.bytes });
    // The first real use creates the tables; a request then arrives.
    const ghost = ghosts[0]!;
    expect((await api(ghost, "/v1/friends")).status).toBe(200);
    expect((await storageOf(ghost)).tables).toContain("friends");
    expect((await api(a, "/v1/friends/requests", { method: "POST", body: JSON.stringify({ userId: ghost }) })).status).toBe(200);
    expect((await api(ghost, "/v1/friends")).body.incoming.map((r: { userId: string }) => r.userId)).toEqual([a]);
  });

  it("a presence lookup, a watch and an unwatch by a stranger write nothing either", async () => {
    const stranger = user("s");
    const ghost = user("ghost");
    expect((await api(stranger, `/v1/presence/${ghost}`)).status).toBe(404);
    const stub = stubOf(ghost);
    expect(await stub.watch(stranger, 60_000)).toMatchObject({ ok: false });
    await stub.unwatch(stranger);
    expect(await stub.presenceFor(stranger)).toMatchObject({ ok: false });
    expect((await storageOf(ghost)).tables).toEqual([]);
  });
});

describe("migrations still run for objects that have tables", () => {
  it("an object left at the first schema version is migrated on its next wake, its rows kept", async () => {
    const u = user("old");
    const friend = user("f");
    await runInDurableObject(stubOf(u), (_, state) => {
      expect(state.storage.sql.exec(`SELECT 1 FROM sqlite_master WHERE name = 'schema_version'`).toArray()).toEqual([]);
      // The storage as the first deployed version left it.
      state.storage.transactionSync(() => {
        state.storage.sql.exec(`CREATE TABLE schema_version (version INTEGER NOT NULL)`);
        for (const statement of MIGRATIONS[0]!) state.storage.sql.exec(statement);
        state.storage.sql.exec(`INSERT INTO schema_version (version) VALUES (1)`);
        state.storage.sql.exec(`INSERT INTO meta (key, value) VALUES ('registered', '1')`);
        state.storage.sql.exec(`INSERT INTO friends (friend_id, state, mine, my_version, theirs, their_version, since) VALUES (?, 'blocked', 'blocked', 1, 'none', 0, 1)`, friend);
        state.storage.sql.exec(`INSERT INTO friend_presence (friend_id, seq, presence) VALUES (?, 1, '{}')`, friend);
      });
    });
    await evictDurableObject(stubOf(u));
    expect((await api(u, "/v1/friends")).body.blocked).toEqual([friend]);
    const after = await runInDurableObject(stubOf(u), (_, state) => ({
      version: Number(state.storage.sql.exec(`SELECT MAX(version) AS v FROM schema_version`).one().v),
      tables: state.storage.sql
        .exec(`SELECT name FROM sqlite_master WHERE type = 'table'`)
        .toArray()
        .map((r) => String(r.name)),
      watcherColumns: state.storage.sql
        .exec(`SELECT name FROM pragma_table_info('watchers')`)
        .toArray()
        .map((r) => String(r.name)),
    }));
    expect(after.version).toBe(MIGRATIONS.length);
    expect(after.tables).not.toContain("friend_presence");
    expect(after.watcherColumns).toEqual(expect.arrayContaining(["positions", "realm"]));
  });
});
