import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { api, Client, patchObject, restorePatches, stubOf, user } from "./helpers";

function call(userId: string, method: string, path: string, body?: unknown) {
  return api(userId, path, { method, body: body === undefined ? undefined : JSON.stringify(body) });
}

/** A user who has used the service (any authenticated call registers them). */
async function registered(prefix: string) {
  const id = user(prefix);
  expect((await call(id, "GET", "/v1/friends")).status).toBe(200);
  return id;
}

const list = async (userId: string) => (await call(userId, "GET", "/v1/friends")).body;

async function online(userId: string, realm = "lobby") {
  const client = await Client.connect(userId);
  await client.request({ type: "SubscribeFriendshipPresenceUpdates" });
  await client.heartbeat({ realm });
  return client;
}

/** Makes `method` throw for the next `times` RPC calls addressed to `userId`'s object (restored after each test). */
afterEach(restorePatches);
function failNext(userId: string, method: "receiveEdge" | "receivePresence", times = 1) {
  let left = times;
  patchObject(userId, method, async (original) => {
    if (left-- > 0) throw new Error("injected failure");
    return original();
  });
}

/** Makes every outbox row due (as if the backoff had elapsed) and runs the alarm. */
async function retryNow(userId: string) {
  await runInDurableObject(stubOf(userId), (_, state) => state.storage.sql.exec(`UPDATE outbox SET next_attempt_at = 0`));
  expect(await runDurableObjectAlarm(stubOf(userId))).toBe(true);
}

describe("friend requests", () => {
  it("request → both sides see it → accept → both are friends and see each other's presence", async () => {
    const a = await registered("a");
    const b = await registered("b");
    const ca = await online(a, "ra");
    const cb = await online(b, "rb");
    const sent = await ca.request({ type: "SendFriendRequest", userId: b, message: "hi, it's me" });
    expect(sent).toMatchObject({ type: "friendship", userId: b, state: "outgoing", pending: false });
    expect(await ca.next((f) => f.type === "friend_request")).toMatchObject({ userId: b, direction: "outgoing" });
    expect(await cb.next((f) => f.type === "friend_request")).toEqual({ type: "friend_request", userId: a, direction: "incoming", message: "hi, it's me" });
    expect((await list(b)).incoming).toEqual([expect.objectContaining({ userId: a, message: "hi, it's me" })]);
    expect((await list(a)).outgoing).toEqual([expect.objectContaining({ userId: b })]);

    const accepted = await cb.request({ type: "AcceptFriendRequest", userId: a });
    expect(accepted).toMatchObject({ type: "friendship", state: "friends", pending: false });
    expect(await cb.next((f) => f.type === "friend_added")).toMatchObject({ userId: a, presence: { status: "online", realm: "ra" } });
    expect(await ca.next((f) => f.type === "friend_added")).toMatchObject({ userId: b, presence: { status: "online", realm: "rb" } });
    expect((await list(a)).friends).toEqual([b]);
    expect((await list(b)).friends).toEqual([a]);
    await ca.heartbeat({ realm: "moved" });
    expect((await cb.presenceOf(a, (p) => p.realm === "moved")).status).toBe("online");
  });

  it("both send requests to each other at once → friends", async () => {
    const a = await registered("a");
    const b = await registered("b");
    const [ra, rb] = await Promise.all([call(a, "POST", "/v1/friends/requests", { userId: b }), call(b, "POST", "/v1/friends/requests", { userId: a })]);
    expect([ra.status, rb.status]).toEqual([200, 200]);
    expect((await list(a)).friends).toEqual([b]);
    expect((await list(b)).friends).toEqual([a]);
    expect((await list(a)).outgoing).toEqual([]);
    expect((await list(b)).incoming).toEqual([]);
  });

  it("a request to a user who never used the service fails (404); one to a blocker looks sent and never completes", async () => {
    const a = await registered("a");
    const blocker = await registered("blocker");
    expect((await call(blocker, "PUT", `/v1/blocks/${a}`)).status).toBe(200);
    const toNobody = await call(a, "POST", "/v1/friends/requests", { userId: user("ghost") });
    expect(toNobody.status).toBe(404);
    expect(toNobody.body.error.code).toBe("user_not_found");
    // Shadow refusal: answered like any request (docs/FRIENDSHIPS.md), kept silently by the blocker.
    const toBlocker = await call(a, "POST", "/v1/friends/requests", { userId: blocker });
    expect(toBlocker).toEqual({ status: 200, body: { userId: blocker, state: "outgoing", pending: false } });
    expect((await list(a)).outgoing.map((r: { userId: string }) => r.userId)).toEqual([blocker]);
    expect((await list(blocker)).incoming).toEqual([]);
    expect((await list(blocker)).blocked).toEqual([a]);
  });

  it("cancel: the receiver sees it withdrawn; reject: the sender sees it rejected", async () => {
    const a = await registered("a");
    const b = await registered("b");
    const ca = await online(a);
    const cb = await online(b);
    await ca.request({ type: "SendFriendRequest", userId: b });
    await cb.next((f) => f.type === "friend_request");
    expect(await ca.request({ type: "CancelFriendRequest", userId: b })).toMatchObject({ state: "none" });
    expect(await cb.next((f) => f.type === "friend_request_cancelled")).toMatchObject({ userId: a, direction: "incoming" });
    expect((await list(b)).incoming).toEqual([]);

    await ca.request({ type: "SendFriendRequest", userId: b });
    await cb.next((f) => f.type === "friend_request");
    expect(await cb.request({ type: "RejectFriendRequest", userId: a })).toMatchObject({ state: "none" });
    expect(await ca.next((f) => f.type === "friend_request_rejected")).toMatchObject({ userId: b, direction: "outgoing" });
    expect((await list(a)).outgoing).toEqual([]);
    expect((await list(a)).friends).toEqual([]);
  });

  it("operations that make no sense get clear errors", async () => {
    const a = await registered("a");
    const b = await registered("b");
    expect((await call(a, "POST", `/v1/friends/requests/${b}/accept`)).body.error.code).toBe("no_pending_request");
    expect((await call(a, "DELETE", `/v1/friends/${b}`)).body.error.code).toBe("not_friends");
    expect((await call(a, "DELETE", `/v1/blocks/${b}`)).body.error.code).toBe("not_blocked");
    expect((await call(a, "POST", "/v1/friends/requests", { userId: a })).status).toBe(400);
    expect((await call(a, "POST", "/v1/friends/requests", { userId: "bad id" })).status).toBe(400);
    await call(a, "POST", "/v1/friends/requests", { userId: b });
    await call(b, "POST", `/v1/friends/requests/${a}/accept`);
    const again = await call(a, "POST", "/v1/friends/requests", { userId: b });
    expect(again).toMatchObject({ status: 409, body: { error: { code: "already_friends" } } });
  });

  it("pending requests are limited (MAX_PENDING_REQUESTS = 3 here)", async () => {
    const a = await registered("a");
    for (let i = 0; i < 3; i++) expect((await call(a, "POST", "/v1/friends/requests", { userId: await registered(`t${i}`) })).status).toBe(200);
    const over = await call(a, "POST", "/v1/friends/requests", { userId: await registered("t4") });
    expect(over).toMatchObject({ status: 409, body: { error: { code: "request_limit" } } });
    // The receiving side's limit holds too.
    const popular = await registered("popular");
    for (let i = 0; i < 3; i++) await call(await registered(`fan${i}`), "POST", "/v1/friends/requests", { userId: popular });
    const late = await call(await registered("late"), "POST", "/v1/friends/requests", { userId: popular });
    expect(late).toMatchObject({ status: 409, body: { error: { code: "request_limit" } } });
  });
});

describe("removal and blocking", () => {
  it("remove while the other is offline: consistent when it returns, and no presence flows", async () => {
    const a = await registered("a");
    const b = await registered("b");
    await call(a, "POST", "/v1/friends/requests", { userId: b });
    await call(b, "POST", `/v1/friends/requests/${a}/accept`);
    const ca = await online(a);
    expect((await call(a, "DELETE", `/v1/friends/${b}`)).status).toBe(200);
    expect(await ca.next((f) => f.type === "friend_removed")).toEqual({ type: "friend_removed", userId: b });
    // b comes back later.
    const cb = await online(b);
    const snapshot = await cb.request({ type: "ListFriends" });
    expect(snapshot.friends).toEqual([]);
    await ca.heartbeat({ realm: "elsewhere" });
    await cb.expectNone((f) => f.type === "presence");
    expect((await call(b, "GET", `/v1/presence/${a}`)).status).toBe(404);
  });

  it("block: the blocked friend sees only a removal, nothing more, and a request that never completes", async () => {
    const a = await registered("a");
    const b = await registered("b");
    await call(a, "POST", "/v1/friends/requests", { userId: b });
    await call(b, "POST", `/v1/friends/requests/${a}/accept`);
    const ca = await online(a);
    const cb = await online(b);
    await ca.presenceOf(b);
    expect(await cb.request({ type: "BlockUser", userId: a })).toMatchObject({ state: "blocked" });
    expect(await cb.next((f) => f.type === "blocked")).toEqual({ type: "blocked", userId: a });
    expect(await ca.next((f) => f.type === "friend_removed")).toEqual({ type: "friend_removed", userId: b });
    await cb.heartbeat({ status: "busy", realm: "hidden" });
    await ca.expectNone((f) => f.type === "presence" || f.type === "blocked");
    // Asking again looks sent (as after a removal) and never completes: b sees nothing.
    expect(await ca.request({ type: "SendFriendRequest", userId: b })).toMatchObject({ type: "friendship", state: "outgoing" });
    await cb.expectNone((f) => f.type === "friend_request");
    expect((await list(b)).blocked).toEqual([a]);
    // Unblock: a's request is withdrawn (as a reject), and a may ask again.
    await cb.request({ type: "UnblockUser", userId: a });
    expect(await ca.next((f) => f.type === "friend_request_rejected")).toEqual({ type: "friend_request_rejected", userId: b, direction: "outgoing" });
    expect(await ca.request({ type: "SendFriendRequest", userId: b })).toMatchObject({ type: "friendship", state: "outgoing" });
    expect(await cb.next((f) => f.type === "friend_request")).toMatchObject({ userId: a, direction: "incoming" });
  });
});

describe("consistency across objects", () => {
  it("the other object throws on the first attempt → the outbox retries and both sides converge", async () => {
    const a = await registered("a");
    const b = await registered("b");
    await call(a, "POST", "/v1/friends/requests", { userId: b });
    failNext(a, "receiveEdge");
    const accepted = await call(b, "POST", `/v1/friends/requests/${a}/accept`);
    expect(accepted).toMatchObject({ status: 202, body: { state: "friends", pending: true } });
    expect((await list(a)).friends).toEqual([]);
    // The alarm is armed for the retry; when it fires, the delivery succeeds.
    expect(await runInDurableObject(stubOf(b), (_, state) => state.storage.getAlarm())).not.toBeNull();
    await retryNow(b);
    expect((await list(a)).friends).toEqual([b]);
    expect((await list(b)).friends).toEqual([a]);
    expect(await runInDurableObject(stubOf(b), (_, state) => state.storage.sql.exec(`SELECT COUNT(*) AS n FROM outbox`).one().n)).toBe(0);
  });

  it("an accept that crosses a cancel: both sides agree, and the acceptor's wish stands as a request", async () => {
    const a = await registered("a");
    const b = await registered("b");
    await call(a, "POST", "/v1/friends/requests", { userId: b });
    // a cancels, but the cancel does not reach b yet...
    failNext(b, "receiveEdge");
    expect((await call(a, "DELETE", `/v1/friends/requests/${b}`)).status).toBe(202);
    // ...so b still sees the request and accepts it.
    expect((await call(b, "POST", `/v1/friends/requests/${a}/accept`)).status).toBe(200);
    await retryNow(a);
    // a withdrew, b wants: no friendship; b's acceptance is now b's own request to a.
    expect(await list(a)).toMatchObject({ friends: [], outgoing: [], incoming: [expect.objectContaining({ userId: b })] });
    expect(await list(b)).toMatchObject({ friends: [], incoming: [], outgoing: [expect.objectContaining({ userId: a })] });
  });

  it("messages to one user are delivered in order: a queued remove is not overtaken by a later request", async () => {
    const a = await registered("a");
    const b = await registered("b");
    await call(a, "POST", "/v1/friends/requests", { userId: b });
    await call(b, "POST", `/v1/friends/requests/${a}/accept`);
    failNext(b, "receiveEdge", 2);
    expect((await call(a, "DELETE", `/v1/friends/${b}`)).status).toBe(202);
    expect((await call(a, "POST", "/v1/friends/requests", { userId: b })).status).toBe(202);
    // The alarm waits for the head of the queue (the remove), not for the request queued behind it.
    const [alarm, head] = await runInDurableObject(stubOf(a), async (_, state) => [
      await state.storage.getAlarm(),
      Number(state.storage.sql.exec(`SELECT next_attempt_at FROM outbox ORDER BY id LIMIT 1`).one().next_attempt_at),
    ]);
    // (At most the head's time: a retry that failed again moved the head later, and the alarm is only ever moved earlier.)
    expect(alarm).toBeLessThanOrEqual(head!);
    expect(alarm).toBeGreaterThan(Date.now());
    await retryNow(a);
    // Removed first, then asked again: a request is pending, not a friendship.
    expect(await list(a)).toMatchObject({ friends: [], outgoing: [expect.objectContaining({ userId: b })] });
    expect(await list(b)).toMatchObject({ friends: [], incoming: [expect.objectContaining({ userId: a })] });
  });
});

describe("privacy controls", () => {
  async function friends(prefix: string) {
    const a = await registered(`${prefix}a`);
    const b = await registered(`${prefix}b`);
    await call(a, "POST", "/v1/friends/requests", { userId: b });
    await call(b, "POST", `/v1/friends/requests/${a}/accept`);
    return [a, b] as const;
  }

  it("hide my presence from one friend: they see exactly offline, others still see me", async () => {
    const [a, b] = await friends("h");
    const c = await registered("c");
    await call(a, "POST", "/v1/friends/requests", { userId: c });
    await call(c, "POST", `/v1/friends/requests/${a}/accept`);
    const cb = await online(b);
    const cc = await online(c);
    const ca = await online(a, "secret");
    await cb.presenceOf(a, (p) => p.status === "online");
    await cc.presenceOf(a, (p) => p.status === "online");
    const res = await call(a, "PUT", `/v1/friends/${b}/privacy`, { hidden: true });
    expect(res.body.hiddenFrom).toEqual([b]);
    const hidden = await cb.presenceOf(a, (p) => p.status === "offline");
    expect(hidden).toMatchObject({ realm: null, position: null, statusText: null, devices: [], lastActiveAt: expect.any(Number) });
    await ca.heartbeat({ realm: "secret-2", status: "busy" });
    expect((await cc.presenceOf(a, (p) => p.status === "busy")).realm).toBe("secret-2");
    await cb.expectNone((f) => f.type === "presence" && f.presence.status !== "offline");
    expect((await call(b, "GET", `/v1/presence/${a}`)).body.presence.status).toBe("offline");
    // Unhide: b sees the truth again (with a newer seq, so the SDK applies it).
    await ca.request({ type: "HidePresence", userId: b, hidden: false });
    const back = await cb.presenceOf(a, (p) => p.status === "busy");
    expect(back.seq).toBeGreaterThan(hidden.seq);
    expect(await ca.request({ type: "HidePresence", userId: user("stranger"), hidden: true })).toMatchObject({ type: "error", code: "not_found" });
  });

  it("share location with none: friends see status but never realm or position, and moves are not pushed", async () => {
    const [a, b] = await friends("loc");
    const cb = await online(b);
    const ca = await online(a, "castle");
    await cb.presenceOf(a, (p) => p.realm === "castle");
    const reply = await ca.request({ type: "SetPrivacy", shareLocation: "none" });
    expect(reply).toMatchObject({ type: "friends_list", shareLocation: "none" });
    const masked = await cb.presenceOf(a, (p) => p.realm === null);
    expect(masked).toMatchObject({ status: "online", position: null });
    await ca.heartbeat({ realm: "castle", position: { x: 50, y: 0, z: 0 } });
    await ca.heartbeat({ realm: "dungeon", position: { x: 60, y: 0, z: 0 } });
    await cb.expectNone((f) => f.type === "presence");
    // The user still sees their own location.
    expect((await ca.heartbeat({ realm: "dungeon" })).presence.realm).toBe("dungeon");
  });
});
