/**
 * Issue #12 (5b): a friend's `seq` moves only when what that friend sees
 * moves. Hiding from one friend, or being invisible, must not let that friend
 * count what happened meanwhile (the seq jump after unhiding), a hide or
 * unhide that changes nothing for them (the user is offline anyway) pushes
 * nothing, and one friend's hide/unhide moves nobody else's seq.
 */
import { describe, expect, it } from "vitest";
import { api, befriend, Client, user } from "./helpers";

const aboutUser = (userId: string) => (f: any) => f.type === "presence" && f.presence.userId === userId;

/** B (and `others`) befriend A, B's client subscribes, A comes online: what B first sees of A. */
async function onlineWatched(a: string, others: string[] = []) {
  const b = user("b");
  await befriend(a, b);
  const watcher = await Client.connect(b);
  await watcher.request({ type: "SubscribeFriendshipPresenceUpdates" });
  for (const other of others) await befriend(a, other);
  const ca = await Client.connect(a);
  await ca.heartbeat({ realm: "lobby" });
  const online = await watcher.presenceOf(a, (p) => p.status === "online");
  return { b, watcher, ca, online };
}

describe("a friend's seq moves only with what that friend sees (issue #12, 5b)", () => {
  it("hidden from a friend while active: showing again is one step past the frozen seq, whatever happened meanwhile", async () => {
    const a = user("a");
    const { b, watcher, ca, online } = await onlineWatched(a);

    await ca.request({ type: "HidePresence", userId: b, hidden: true });
    const frozen = await watcher.presenceOf(a, (p) => p.status === "offline");
    expect(frozen.seq).toBe(online.seq + 1);
    // Six changes the friend does not see.
    for (const [i, status] of (["busy", "away", "online", "busy", "away", "online"] as const).entries()) {
      await ca.heartbeat({ realm: `room-${i}`, status });
    }
    await watcher.expectNone(aboutUser(a), 100);

    await ca.request({ type: "HidePresence", userId: b, hidden: false });
    const shown = await watcher.presenceOf(a, (p) => p.status === "online");
    expect(shown).toMatchObject({ realm: "room-5", seq: frozen.seq + 1 });
    // And from then on, one step per change.
    await ca.heartbeat({ realm: "room-5", status: "busy" });
    expect((await watcher.presenceOf(a, (p) => p.status === "busy")).seq).toBe(shown.seq + 1);
    // What the friend reads over HTTP is in the same numbering.
    expect((await api(b, `/v1/presence/${a}`)).body.presence).toMatchObject({ status: "busy", seq: shown.seq + 1 });
  });

  it("hide and unhide while offline push nothing (offline → offline is no change)", async () => {
    const a = user("a");
    const { b, watcher, ca } = await onlineWatched(a);
    await ca.close();
    const offline = await watcher.presenceOf(a, (p) => p.status === "offline");

    for (const hidden of [true, false, true, false]) {
      expect((await api(a, `/v1/friends/${b}/privacy`, { method: "PUT", body: JSON.stringify({ hidden }) })).status).toBe(200);
    }
    await watcher.expectNone(aboutUser(a), 200);
    expect((await api(b, `/v1/presence/${a}`)).body.presence).toMatchObject({ status: "offline", seq: offline.seq });
    // Back online: one step.
    const again = await Client.connect(a);
    await again.heartbeat({ realm: "lobby" });
    expect((await watcher.presenceOf(a, (p) => p.status === "online")).seq).toBe(offline.seq + 1);
  });

  it("invisible → visible is one step for every friend, however often the user hid from someone else meanwhile", async () => {
    const a = user("a");
    const other = user("c");
    const { watcher, ca } = await onlineWatched(a, [other]);
    await ca.heartbeat({ realm: "lobby", status: "invisible" });
    const gone = await watcher.presenceOf(a, (p) => p.status === "offline");

    for (const hidden of [true, false, true, false, true]) await ca.request({ type: "HidePresence", userId: other, hidden });
    for (let x = 0; x < 3; x++) await ca.heartbeat({ realm: "secret", status: "invisible", position: { x, y: 0, z: 0 } });
    await watcher.expectNone(aboutUser(a), 100);

    await ca.heartbeat({ realm: "lobby", status: "online" });
    expect((await watcher.presenceOf(a, (p) => p.status === "online")).seq).toBe(gone.seq + 1);
  });

  it("hiding from one friend moves no other friend's seq", async () => {
    const a = user("a");
    const other = user("c");
    const { watcher, ca, online } = await onlineWatched(a, [other]);
    for (const hidden of [true, false, true, false]) await ca.request({ type: "HidePresence", userId: other, hidden });
    await ca.heartbeat({ realm: "lobby", status: "away" });
    expect((await watcher.presenceOf(a, (p) => p.status === "away")).seq).toBe(online.seq + 1);
    expect((await ca.heartbeat({ realm: "lobby", status: "away" })).presence.seq).toBe(online.seq + 1);
  });

  it("a hidden friend that watches again (after its own restart) gets the frozen view, and the resumed numbering after unhiding", async () => {
    const a = user("a");
    const { b, watcher, ca } = await onlineWatched(a);
    await ca.request({ type: "HidePresence", userId: b, hidden: true });
    const frozen = await watcher.presenceOf(a, (p) => p.status === "offline");
    for (const status of ["busy", "away", "online"] as const) await ca.heartbeat({ realm: "lobby", status });
    // The friend comes back: a new snapshot.
    await watcher.close();
    const fresh = await Client.connect(b);
    const snapshot = await fresh.request({ type: "GetPresence", userId: a });
    expect(snapshot.presence).toMatchObject({ status: "offline", seq: frozen.seq });
    await fresh.request({ type: "SubscribeFriendshipPresenceUpdates" });
    await ca.request({ type: "HidePresence", userId: b, hidden: false });
    expect((await fresh.presenceOf(a, (p) => p.status === "online")).seq).toBe(frozen.seq + 1);
  });
});
