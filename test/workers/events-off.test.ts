/**
 * Server-side events are opt-in (docs/EVENTS.md): this project runs
 * wrangler.toml as shipped, whose `[[queues.producers]]` block is commented
 * out, so no event is built, sent or kept. (The events themselves are tested
 * in test/events/, where the binding is configured.)
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { Client, stubOf, user } from "./helpers";

describe("server-side events, off", () => {
  it("without an EVENTS binding a user's object has no events part and a status change keeps nothing for it", async () => {
    expect((env as { EVENTS?: unknown }).EVENTS).toBeUndefined();
    const a = user("a");
    const ca = await Client.connect(a);
    await ca.heartbeat({ status: "busy" });
    await ca.close();
    const state = await runInDurableObject(stubOf(a), (instance, state) => ({
      parts: [(instance as any).presence.events, (instance as any).friendships.events],
      rows: Number(state.storage.sql.exec(`SELECT COUNT(*) AS n FROM outbox WHERE kind = 'event'`).one().n),
    }));
    expect(state).toEqual({ parts: [null, null], rows: 0 });
  });
});
