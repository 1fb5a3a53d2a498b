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
import { WORKER_TEST_BINDINGS } from "./bindings";
import { api, Client, stubOf, user } from "./helpers";

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

describe("blocks of arbitrary ids are bounded (MAX_BLOCKED)", () => {
  const MAX_BLOCKED = Number(WORKER_TEST_BINDINGS.MAX_BLOCKED);

  it("a flood of blocks cannot grow the blocker's rows past MAX_BLOCKED, and the targets keep no storage", async () => {
    const a = user("a");
    // Within the request bucket (burst 40): the limit refuses, not the rate.
    const targets = Array.from({ length: MAX_BLOCKED + 10 }, () => user("t"));
    const statuses: number[] = [];
    for (const t of targets) {
      const res = await api(a, `/v1/blocks/${t}`, { method: "PUT" });
      statuses.push(res.status);
      if (res.status !== 200) expect(res).toMatchObject({ status: 409, body: { error: { code: "block_limit" } } });
    }
    expect(statuses.filter((s) => s === 200).length).toBe(MAX_BLOCKED);
    const rows = () => runInDurableObject(stubOf(a), (_, state) => Number(state.storage.sql.exec(`SELECT COUNT(*) AS n FROM friends`).one().n));
    expect(await rows()).toBe(MAX_BLOCKED);
    expect((await api(a, "/v1/friends")).body.blocked).toHaveLength(MAX_BLOCKED);
    // Blocking someone already blocked is no new row and no refusal; an unblock makes room (its row goes).
    expect((await api(a, `/v1/blocks/${targets[0]}`, { method: "PUT" })).status).toBe(200);
    expect((await api(a, `/v1/blocks/${targets[0]}`, { method: "DELETE" })).status).toBe(200);
    expect(await rows()).toBe(MAX_BLOCKED - 1);
    expect((await api(a, `/v1/blocks/${targets.at(-1)}`, { method: "PUT" })).status).toBe(200);
    expect(await rows()).toBe(MAX_BLOCKED);
    // Nothing was sent to the never-used ids: their objects were not even asked.
    for (const t of targets.slice(0, 3)) expect((await storageOf(t)).tables).toEqual([]);
  });

  it("the limit answers alike for ids in use and never used, over a socket too", async () => {
    const a = user("a");
    for (let i = 0; i < MAX_BLOCKED; i++) expect((await api(a, `/v1/blocks/${user("t")}`, { method: "PUT" })).status).toBe(200);
    const used = user("used");
    expect((await api(used, "/v1/friends")).status).toBe(200);
    const overUsed = await api(a, `/v1/blocks/${used}`, { method: "PUT" });
    const overGhost = await api(a, `/v1/blocks/${user("ghost")}`, { method: "PUT" });
    expect(overUsed.status).toBe(409);
    expect({ ...overUsed.body }).toEqual({ ...overGhost.body });
    const ca = await Client.connect(a);
    const reply = await ca.request({ type: "BlockUser", userId: used });
    expect(reply).toMatchObject({ type: "error", code: "block_limit" });
    await ca.close();
  });
});
