/**
 * Server-side events end to end (issue #16, docs/EVENTS.md): the worker runs
 * in `wrangler dev` with wrangler.toml's documented `[[queues.producers]]`
 * block switched on, together with the example consumer
 * (examples/events-consumer) in the same process (`-c a -c b`: they share the
 * local queue). Real clients change presence and friendships; the events are
 * read from the consumer's log lines, as its operator would see them.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { root } from "../../scripts/lib/dev-vars.mjs";
import type { FriendshipEvent, PresenceEvent, ServerEvent } from "../../src/presence/events";
import { until } from "../shared/util";
import { Peer, startDevServer, type DevServer } from "./harness";

const PRODUCER = ["# [[queues.producers]]", '# binding = "EVENTS"', '# queue = "presence-events"'];
const config = join(root, `.events-e2e-${process.pid}.wrangler.toml`);
let server: DevServer;

beforeAll(async () => {
  // wrangler.toml as documented, with its commented producer block switched on (it must be there, exactly so).
  const toml = readFileSync(join(root, "wrangler.toml"), "utf8");
  expect(toml).toContain(PRODUCER.join("\n"));
  writeFileSync(config, toml.replace(PRODUCER.join("\n"), PRODUCER.map((line) => line.slice(2)).join("\n")));
  server = await startDevServer({ configs: [config, join(root, "examples/events-consumer/wrangler.toml")] });
});
afterAll(async () => {
  await server?.stop();
  rmSync(config, { force: true });
});

/** The consumer's log lines so far: every delivery, in order. */
function consumed(): Array<{ deliveries: number; event: ServerEvent }> {
  return [...server.output().matchAll(/^.*?events-consumer (\{.*\})\s*$/gm)].map((m) => JSON.parse(m[1]!));
}

function eventsOf(userId: string) {
  return consumed()
    .map((c) => c.event)
    .filter((e) => e.userId === userId);
}

describe("server-side events through wrangler dev and the example consumer", () => {
  it("presence and friendship changes arrive at the consumer as documented, each once", async () => {
    const stamp = Date.now().toString(36);
    const [alice, bob] = [`alice-${stamp}`, `bob-${stamp}`];
    const a = await Peer.connect(server.url, alice, "alice-pc", "desktop");
    const b = await Peer.connect(server.url, bob, "bob-phone", "mobile");
    await a.heartbeat({ realm: "forest", position: { x: 1, y: 2, z: 3 } });
    expect((await a.request({ type: "SendFriendRequest", userId: bob })).type).toBe("friendship");
    expect((await b.request({ type: "AcceptFriendRequest", userId: alice })).type).toBe("friendship");
    await a.heartbeat({ realm: "forest", status: "busy", statusText: "in a meeting" });
    a.close();

    await until("alice's offline event", () => eventsOf(alice).some((e) => e.kind === "presence" && e.status.to === "offline"), 30_000);
    await until("bob's friendship events", () => eventsOf(bob).filter((e) => e.kind === "friendship").length >= 2, 30_000);

    const presence = eventsOf(alice).filter((e): e is PresenceEvent => e.kind === "presence");
    expect(presence.map((e) => [e.status.from, e.status.to, e.realm, e.statusText])).toEqual([
      ["offline", "online", "forest", null],
      ["online", "busy", "forest", "in a meeting"],
      ["busy", "offline", null, null],
    ]);
    for (const e of presence) {
      expect(Object.keys(e).sort()).toEqual(["at", "devices", "id", "kind", "lastActiveAt", "realm", "seq", "status", "statusText", "userId", "v"]);
      expect(e.id).toBe(`${alice}/presence/${e.seq}`);
    }
    expect(presence[1]!.devices).toEqual([{ deviceId: "alice-pc", kind: "desktop", status: "busy" }]);
    expect(presence.map((e) => e.seq)).toEqual([...presence.map((e) => e.seq)].sort((x, y) => x - y));

    const edges = (userId: string) =>
      eventsOf(userId)
        .filter((e): e is FriendshipEvent => e.kind === "friendship")
        .map((e) => [e.otherUserId, e.state.from, e.state.to, e.cause]);
    expect(edges(alice)).toEqual([
      [bob, "none", "outgoing", "local"],
      [bob, "outgoing", "friends", "remote"],
    ]);
    expect(edges(bob)).toEqual([
      [alice, "none", "incoming", "remote"],
      [alice, "incoming", "friends", "local"],
    ]);
    // At least once, and here exactly once: no delivery of these was a repeat.
    const mine = consumed().filter((c) => c.event.userId === alice || c.event.userId === bob);
    expect(mine.every((c) => c.deliveries === 1)).toBe(true);
    expect(new Set(mine.map((c) => c.event.id)).size).toBe(mine.length);
    b.close();
  });
});
