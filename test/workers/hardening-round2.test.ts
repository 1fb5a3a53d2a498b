/**
 * Hardening, round two (issue #12): the smaller findings of item 5, each
 * shown by a test that failed before its fix, and the tests a mutation check
 * showed missing.
 */
import { runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { until } from "../shared/util";
import { api, befriend, Client, holdCalls, patchObject, restorePatches, stubOf, token, user, worker } from "./helpers";

afterEach(restorePatches);

/** Holds receiveEdge calls addressed to `userId` until released; `reached` resolves at the first. */
function holdEdgesTo(userId: string): { reached: Promise<void>; release: () => void } {
  return holdCalls(userId, "receiveEdge");
}

describe("item 5: smaller findings", () => {
  it("a friend request pipelined with its cancel is not answered user_not_found", async () => {
    const a = user("a");
    const b = user("b");
    await api(b, "/v1/friends"); // b exists
    const { reached, release } = holdEdgesTo(b);
    const request = api(a, "/v1/friends/requests", { method: "POST", body: JSON.stringify({ userId: b }) });
    await reached;
    const cancel = api(a, `/v1/friends/requests/${b}`, { method: "DELETE" });
    await new Promise((r) => setTimeout(r, 50));
    release();
    const [sent, cancelled] = await Promise.all([request, cancel]);
    expect(sent.body.error?.code).not.toBe("user_not_found");
    expect([200, 202]).toContain(sent.status);
    expect(sent.body).toMatchObject({ userId: b, state: "none" });
    expect(cancelled.status).toBeLessThan(300);
    expect((await api(b, "/v1/friends")).body.incoming).toEqual([]);
  });

  it("the 101 never echoes a bearer token offered as a subprotocol", async () => {
    const a = user("a");
    const jwt = await token(a);
    const only = await worker().fetch("http://presence/v1/connect?device=d1", { headers: { Upgrade: "websocket", "Sec-WebSocket-Protocol": `bearer.${jwt}` } });
    expect(only.status).toBe(101);
    expect(only.headers.get("Sec-WebSocket-Protocol") ?? "").not.toContain(jwt);
    only.webSocket!.accept();
    only.webSocket!.close(1000);
    const both = await worker().fetch("http://presence/v1/connect?device=d2", {
      headers: { Upgrade: "websocket", "Sec-WebSocket-Protocol": `bearer.${jwt}, presence.v1` },
    });
    expect(both.status).toBe(101);
    expect(both.headers.get("Sec-WebSocket-Protocol")).toBe("presence.v1");
    both.webSocket!.accept();
    both.webSocket!.close(1000);
  });

  it("user ids . and .. are refused: as token subjects and as targets", async () => {
    for (const id of [".", ".."]) {
      const res = await worker().fetch("http://presence/v1/friends", { headers: { Authorization: `Bearer ${await token(id)}` } });
      expect(res.status).toBe(401);
      expect(((await res.json()) as any).error.code).toBe("invalid_token");
      const request = await api(user("a"), "/v1/friends/requests", { method: "POST", body: JSON.stringify({ userId: id }) });
      expect(request.status).toBe(400);
    }
  });
});

describe("tests a mutation check showed missing", () => {
  it("owner-side friend check: B removed A, A has not heard yet: A's lookup and friends-online do not show B", async () => {
    const a = user("a");
    const b = user("b");
    expect((await befriend(a, b)).status).toBe(200);
    const cb = await Client.connect(b);
    await cb.heartbeat({ realm: "secret-realm" });
    // A is HTTP-only: friends-online asks B's object, which must answer as the owner of its friendships.
    expect((await api(a, "/v1/friends/online")).body.friends.map((p: { userId: string }) => p.userId)).toEqual([b]);
    const { release } = holdEdgesTo(a); // B's removal never reaches A (for now)
    const removed = await api(b, `/v1/friends/${a}`, { method: "DELETE" });
    expect(removed.status).toBe(202);
    expect((await api(a, "/v1/friends")).body.friends).toEqual([b]); // A has not heard
    const lookup = await api(a, `/v1/presence/${b}`);
    expect(lookup.status).toBe(404);
    expect(JSON.stringify(lookup.body)).not.toContain("secret-realm");
    const online = await api(a, "/v1/friends/online");
    expect(online.body.friends).toEqual([]);
    release();
    await cb.close();
  });

  it("leases after a removal: neither side keeps a lease row, and the next heartbeat calls nobody", async () => {
    const a = user("a");
    const b = user("b");
    expect((await befriend(a, b)).status).toBe(200);
    const ca = await Client.connect(a);
    const cb = await Client.connect(b);
    await ca.heartbeat({ realm: "r1" });
    await cb.heartbeat({ realm: "r1" });
    const leases = (id: string) =>
      runInDurableObject(stubOf(id), (_, state) =>
        state.storage.sql
          .exec(`SELECT watcher_id FROM watchers`)
          .toArray()
          .map((r) => r.watcher_id),
      );
    await until("both hold a lease", async () => (await leases(a)).includes(b) && (await leases(b)).includes(a));
    expect((await api(a, `/v1/friends/${b}`, { method: "DELETE" })).status).toBe(200);
    expect(await leases(a)).toEqual([]);
    expect(await leases(b)).toEqual([]);
    let calls = 0;
    patchObject(b, "receivePresence", (original) => {
      calls++;
      return original();
    });
    await ca.heartbeat({ realm: "r2", status: "busy" });
    expect(calls).toBe(0);
    await ca.close();
    await cb.close();
  });
});

describe("item 3: storage a flood of requests can create", () => {
  it("requests to never-used ids leave no row at the sender (bounded by the pending limit while in flight)", async () => {
    const a = user("a");
    const answers: number[] = [];
    for (let i = 0; i < 30; i++) {
      const res = await api(a, "/v1/friends/requests", { method: "POST", body: JSON.stringify({ userId: user("ghost") }) });
      answers.push(res.status);
      if (res.status === 404) expect(res.body.error.code).toBe("user_not_found");
    }
    expect(answers.filter((s) => s === 404).length).toBeGreaterThan(20);
    const rows = await runInDurableObject(stubOf(a), (_, state) => ({
      friends: Number(state.storage.sql.exec(`SELECT COUNT(*) AS n FROM friends`).one().n),
      outbox: Number(state.storage.sql.exec(`SELECT COUNT(*) AS n FROM outbox`).one().n),
    }));
    expect(rows).toEqual({ friends: 0, outbox: 0 });
  });

  it("a request to a blocker is kept silently in the blocker's one row; after the unblock it is withdrawn and a new request arrives", async () => {
    const a = user("a");
    const b = user("b");
    expect((await api(b, `/v1/blocks/${a}`, { method: "PUT" })).status).toBe(200);
    expect((await api(a, "/v1/friends/requests", { method: "POST", body: JSON.stringify({ userId: b }) })).status).toBe(200);
    expect((await api(a, "/v1/friends")).body.outgoing.map((r: { userId: string }) => r.userId)).toEqual([b]);
    expect((await api(b, "/v1/friends")).body).toMatchObject({ incoming: [], blocked: [a] });
    expect(await runInDurableObject(stubOf(b), (_, state) => Number(state.storage.sql.exec(`SELECT COUNT(*) AS n FROM friends`).one().n))).toBe(1);
    expect((await api(b, `/v1/blocks/${a}`, { method: "DELETE" })).status).toBe(200);
    await until("a's request is withdrawn", async () => (await api(a, "/v1/friends")).body.outgoing.length === 0);
    expect((await api(b, "/v1/friends")).body.incoming).toEqual([]);
    expect((await api(a, "/v1/friends/requests", { method: "POST", body: JSON.stringify({ userId: b }) })).status).toBe(200);
    expect((await api(b, "/v1/friends")).body.incoming.map((r: { userId: string }) => r.userId)).toEqual([a]);
  });
});

describe("item 5c: a blocked ex-friend cannot tell the block from a removal", () => {
  /** Two ex-friends of `requester`'s kind: one removed them, one blocked them. */
  async function exFriends() {
    const removedA = user("removed");
    const remover = user("remover");
    const blockedA = user("blocked");
    const blocker = user("blocker");
    expect((await befriend(removedA, remover)).status).toBe(200);
    expect((await befriend(blockedA, blocker)).status).toBe(200);
    expect((await api(remover, `/v1/friends/${removedA}`, { method: "DELETE" })).status).toBe(200);
    expect((await api(blocker, `/v1/blocks/${blockedA}`, { method: "PUT" })).status).toBe(200);
    return { removedA, remover, blockedA, blocker };
  }

  it("over HTTP: the same status and the same bytes (the other user's id aside); both see a pending request", async () => {
    const { removedA, remover, blockedA, blocker } = await exFriends();
    const ask = async (from: string, to: string) => {
      const res = await worker().fetch("http://presence/v1/friends/requests", {
        method: "POST",
        headers: { Authorization: `Bearer ${await token(from)}`, "Content-Type": "application/json" },
        body: JSON.stringify({ userId: to }),
      });
      return { status: res.status, headers: [...res.headers].filter(([k]) => k !== "date"), bytes: (await res.text()).replaceAll(to, "<them>") };
    };
    const afterRemoval = await ask(removedA, remover);
    const afterBlock = await ask(blockedA, blocker);
    expect(afterBlock).toEqual(afterRemoval);
    expect(afterRemoval.status).toBe(200);
    // What each requester sees afterwards is the same too: one pending outgoing request.
    const seen = async (from: string, to: string) =>
      JSON.stringify((await api(from, "/v1/friends")).body)
        .replaceAll(to, "<them>")
        .replace(/"since":\d+/g, "");
    expect(await seen(blockedA, blocker)).toBe(await seen(removedA, remover));
    // The blocker sees nothing of it; the remover sees an incoming request.
    expect((await api(blocker, "/v1/friends")).body).toMatchObject({ incoming: [], blocked: [blockedA] });
    expect((await api(remover, "/v1/friends")).body.incoming.map((r: { userId: string }) => r.userId)).toEqual([removedA]);
  });

  it("over the socket: the same reply frame and the same events", async () => {
    const { removedA, remover, blockedA, blocker } = await exFriends();
    const ask = async (from: string, to: string) => {
      const client = await Client.connect(from);
      client.frames.length = 0;
      const reply = await client.request({ type: "SendFriendRequest", userId: to, message: "again?" });
      await new Promise((r) => setTimeout(r, 300)); // any late event (a refusal would come here)
      const frames = [{ ...reply, id: "<id>" }, ...client.frames].map((f) => JSON.stringify(f).replaceAll(to, "<them>"));
      await client.close();
      return frames;
    };
    const afterRemoval = await ask(removedA, remover);
    const afterBlock = await ask(blockedA, blocker);
    expect(afterBlock).toEqual(afterRemoval);
    expect(afterRemoval.some((f) => f.includes('"state":"outgoing"'))).toBe(true);
  });
});
