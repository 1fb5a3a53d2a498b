/**
 * Issue #16: who sees "last seen" (`lastActiveAt`): every friend (default),
 * the friends the user chose, or nobody. Enforced in the user's own object,
 * like `shareLocation`: what leaves it (pushes, snapshots, lookups, the
 * frozen view of a hidden-from friend) carries `null` for anyone not allowed.
 */
import { describe, expect, it } from "vitest";
import { api, befriend, Client, user } from "./helpers";

function put(userId: string, path: string, body: unknown) {
  return api(userId, path, { method: "PUT", body: JSON.stringify(body) });
}

async function friendsWatching(a: string, n: number) {
  const out: Array<{ id: string; client: Client }> = [];
  for (let i = 0; i < n; i++) {
    const id = user(`f${i}`);
    await befriend(a, id);
    const client = await Client.connect(id);
    await client.request({ type: "SubscribeFriendshipPresenceUpdates" });
    out.push({ id, client });
  }
  return out;
}

describe("hide last seen (issue #16)", () => {
  it("nobody: friends get lastActiveAt null online and offline, over every path; the user still sees their own", async () => {
    const a = user("a");
    const [f] = await friendsWatching(a, 1);
    const set = await put(a, "/v1/privacy", { lastSeen: "none" });
    expect(set).toMatchObject({ status: 200, body: { lastSeen: "none", lastSeenShownTo: [], shareLocation: "all" } });

    const ca = await Client.connect(a);
    const ack = await ca.heartbeat({ realm: "lobby" });
    expect(ack.presence.lastActiveAt).toBeGreaterThan(0);
    const online = await f!.client.presenceOf(a, (p) => p.status === "online");
    expect(online).toMatchObject({ lastActiveAt: null });
    // Each device's activity would tell it too: hidden as well, while the device itself is shown.
    expect(online.devices).toHaveLength(1);
    expect(online.devices[0]).toMatchObject({ status: "online", lastActiveAt: null });
    expect(ack.presence.devices[0].lastActiveAt).toBeGreaterThan(0);
    await ca.close();
    expect(await f!.client.presenceOf(a, (p) => p.status === "offline")).toMatchObject({ lastActiveAt: null });
    expect((await api(f!.id, `/v1/presence/${a}`)).body.presence).toMatchObject({ status: "offline", lastActiveAt: null });
    expect((await api(a, `/v1/presence/${a}`)).body.presence.lastActiveAt).toBeGreaterThan(0);

    // Back to everyone: the last seen time is there again (it was kept all along).
    expect((await put(a, "/v1/privacy", { lastSeen: "all" })).body.lastSeen).toBe("all");
    expect((await api(f!.id, `/v1/presence/${a}`)).body.presence.lastActiveAt).toBe(ack.presence.lastActiveAt);
  });

  it("chosen: only the friends chosen (per-friend privacy route or frame) see it", async () => {
    const a = user("a");
    const [chosen, other] = await friendsWatching(a, 2);
    const ca = await Client.connect(a);
    await ca.request({ type: "SetPrivacy", lastSeen: "chosen" });
    const list = await ca.request({ type: "HidePresence", userId: chosen!.id, lastSeen: true });
    expect(list).toMatchObject({ type: "friends_list", lastSeen: "chosen", lastSeenShownTo: [chosen!.id], hiddenFrom: [] });
    await ca.heartbeat({ realm: "lobby", status: "busy" });
    const toChosen = await chosen!.client.presenceOf(a, (p) => p.status === "busy");
    expect(toChosen.lastActiveAt).toBeGreaterThan(0);
    expect(toChosen.devices[0]?.lastActiveAt).toBeGreaterThan(0);
    const toOther = await other!.client.presenceOf(a, (p) => p.status === "busy");
    expect(toOther.lastActiveAt).toBeNull();
    expect(toOther.devices[0]?.lastActiveAt).toBeNull();
    // Over HTTP, per friend; the choice shows in the friends list.
    const http = await put(a, `/v1/friends/${other!.id}/privacy`, { lastSeen: true });
    expect(http.body.lastSeenShownTo.sort()).toEqual([chosen!.id, other!.id].sort());
    expect((await api(other!.id, `/v1/presence/${a}`)).body.presence.lastActiveAt).toBeGreaterThan(0);
    expect((await api(a, "/v1/friends")).body).toMatchObject({ lastSeen: "chosen" });
  });

  it("applies to the frozen view of a friend the user hides from", async () => {
    const a = user("a");
    const [f] = await friendsWatching(a, 1);
    const ca = await Client.connect(a);
    await ca.heartbeat({ realm: "lobby" });
    await f!.client.presenceOf(a, (p) => p.status === "online");
    await ca.request({ type: "HidePresence", userId: f!.id, hidden: true });
    expect((await f!.client.presenceOf(a, (p) => p.status === "offline")).lastActiveAt).toBeGreaterThan(0);
    await ca.request({ type: "SetPrivacy", lastSeen: "none" });
    expect((await api(f!.id, `/v1/presence/${a}`)).body.presence).toMatchObject({ status: "offline", lastActiveAt: null });
  });

  it("a removed friend loses the choice; bad bodies are refused with the documented errors", async () => {
    const a = user("a");
    const [f] = await friendsWatching(a, 1);
    await put(a, "/v1/privacy", { lastSeen: "chosen" });
    expect((await put(a, `/v1/friends/${f!.id}/privacy`, { lastSeen: true })).body.lastSeenShownTo).toEqual([f!.id]);
    expect((await api(a, `/v1/friends/${f!.id}`, { method: "DELETE" })).status).toBe(200);
    expect((await api(a, "/v1/friends")).body.lastSeenShownTo).toEqual([]);

    expect(await put(a, "/v1/privacy", {})).toMatchObject({ status: 400, body: { error: { code: "invalid_request" } } });
    expect(await put(a, "/v1/privacy", { lastSeen: "friends" })).toMatchObject({ status: 400, body: { error: { code: "invalid_request" } } });
    expect(await put(a, `/v1/friends/${f!.id}/privacy`, {})).toMatchObject({ status: 400, body: { error: { code: "invalid_request" } } });
    expect(await put(a, `/v1/friends/${user("stranger")}/privacy`, { lastSeen: true })).toMatchObject({ status: 404 });
    const ca = await Client.connect(a);
    expect(await ca.request({ type: "SetPrivacy" })).toMatchObject({ type: "error", code: "invalid_message" });
    expect(await ca.request({ type: "HidePresence", userId: f!.id })).toMatchObject({ type: "error", code: "invalid_message" });
  });
});
