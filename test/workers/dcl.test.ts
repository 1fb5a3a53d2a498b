/**
 * Issue #13, phase 2: Decentraland clients end to end, inside workerd. The
 * REAL @dcl/rpc client (WebSocketTransport, loadService(SocialServiceDefinition))
 * connects to GET /dcl of the real worker, which verifies the @dcl/crypto
 * chain and proxies the socket to the signer's UserPresence object; JSON
 * clients (JWT) of the same users connect to /v1/connect as usual.
 */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import type { OwnPresence } from "../../durable/presence";
import type { UserStore } from "../../durable/store";
import { describe, expect, it } from "vitest";
import { FriendshipStatus } from "@dcl/protocol/out-js/decentraland/social_service/v2/social_service_v2.gen";
import { objectCounters } from "../../durable/counters";
import { authHeadersAt } from "../dcl/harness";
import { authHeaders, collect, ConnectivityStatus, createIdentity, dial, lastStatus, rawDcl, until, type Identity } from "./dcl-helpers";
import { ADMIN, api, befriend, Client, stubOf, worker } from "./helpers";

const TTL = 120_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function friends(): Promise<[Identity, Identity]> {
  const [alice, bob] = await Promise.all([createIdentity(), createIdentity()]);
  await befriend(alice.address, bob.address);
  return [alice, bob];
}

/** Moves the last sign of life of a user's DCL devices `ms` into the past. */
async function ageDcl(address: string, ms: number) {
  // Devices live in the object's memory (issue #11): aged there, not in SQL.
  await runInDurableObject(stubOf(address), (instance) => {
    const { presence, store } = instance as unknown as { presence: OwnPresence; store: UserStore };
    for (const device of store.devices().filter((d) => d.kind === "dcl")) presence.ageSignsOfLife((t) => t - ms, device.deviceId);
  });
}

/** alice on a DCL socket, friends with bob, who follows her from a JSON socket and has seen her online. */
async function dclWatched() {
  const [alice, bob] = await friends();
  const jb = await Client.connect(bob.address);
  await jb.request({ type: "SubscribeFriendshipPresenceUpdates" });
  const a = await dial(alice);
  await jb.presenceOf(alice.address, (p) => p.status === "online");
  return { alice, bob, jb, a };
}

async function dclLastSeen(address: string): Promise<number[]> {
  return runInDurableObject(stubOf(address), (instance) =>
    (instance as unknown as { store: UserStore }).store
      .devices()
      .filter((d) => d.kind === "dcl")
      .map((d) => d.lastSeenAt),
  );
}

describe("the handshake", () => {
  it("a valid chain: the RPCs work, and the user id is the lowercase signer", async () => {
    const [alice, bob] = await friends();
    const a = await dial(alice);
    expect((await a.service.getFriends({})).friends.map((f) => f.address)).toEqual([bob.address]);
    expect((await a.service.getFriendshipStatus({ user: { address: bob.address } })).response).toMatchObject({
      $case: "accepted",
      accepted: { status: FriendshipStatus.ACCEPTED },
    });
    // The same object a JWT whose sub is the address reaches.
    const jwt = await Client.connect(alice.address);
    expect((await jwt.request({ type: "ListFriends" })).friends).toEqual([bob.address]);
    a.close();
  });

  it("a tampered chain closes with 3003; so does an expired ephemeral key", async () => {
    const alice = await createIdentity();
    const tampered = authHeaders(alice);
    const link = JSON.parse(tampered["x-identity-auth-chain-2"]!);
    link.signature = `${link.signature.slice(0, -4)}0000`;
    tampered["x-identity-auth-chain-2"] = JSON.stringify(link);
    const expired = await createIdentity(-1);
    for (const headers of [tampered, authHeaders(expired), authHeadersAt(alice, Date.now() - 10 * 60_000)]) {
      const s = await rawDcl();
      s.ws.send(JSON.stringify(headers));
      expect((await s.waitClosed()).code).toBe(3003);
    }
  });

  it("no auth frame: 3004 after DCL_AUTH_TIMEOUT_MS (1 s in these tests)", async () => {
    const s = await rawDcl();
    expect((await s.waitClosed(5_000)).code).toBe(3004);
  });

  it("an @dcl/rpc frame before the auth frame gets an error text and the socket stays open; auth still works after", async () => {
    const alice = await createIdentity();
    const s = await rawDcl();
    s.ws.send(new Uint8Array([0x0d, 0x01, 0x00, 0x00, 0x08, 0x12, 0x00]));
    await until(() => s.frames.length === 1, "the error");
    expect(JSON.parse(s.frames[0] as string).error).toMatch(/Not authenticated/);
    expect(s.closed()).toBeNull();
    s.ws.send(JSON.stringify(authHeaders(alice)));
    await until(() => s.frames.length === 2, "SERVER_READY");
    expect(new Uint8Array(s.frames[1] as ArrayBuffer)).toEqual(new Uint8Array([0x0d, 0, 0, 0, 0x58]));
    s.ws.close(1000);
  });

  it("the rest of the service answers a clean RPC error; the socket stays open", async () => {
    const alice = await createIdentity();
    const a = await dial(alice);
    await expect(a.service.getSocialSettings({})).rejects.toThrow(/not implemented here/);
    expect((await a.service.getFriends({})).friends).toEqual([]);
    expect(a.closed()).toBeNull();
    a.close();
  });
});

describe("presence", () => {
  it("two DCL friends see each other ONLINE, then OFFLINE at once when one closes", async () => {
    const [alice, bob] = await friends();
    const a = await dial(alice);
    const aSees = collect(a.service.subscribeToFriendConnectivityUpdates({}));
    const b = await dial(bob);
    const bSees = collect(b.service.subscribeToFriendConnectivityUpdates({}));
    await until(() => lastStatus(aSees.items, bob.address) === ConnectivityStatus.ONLINE, "alice sees bob ONLINE");
    await until(() => lastStatus(bSees.items, alice.address) === ConnectivityStatus.ONLINE, "bob sees alice ONLINE (snapshot)");
    b.close();
    await until(() => lastStatus(aSees.items, bob.address) === ConnectivityStatus.OFFLINE, "alice sees bob OFFLINE");
    // One's own presence is never sent to oneself.
    expect(aSees.items.filter((u) => u.friend?.address === alice.address)).toEqual([]);
    expect(bSees.items.filter((u) => u.friend?.address === bob.address)).toEqual([]);
    a.close();
  });

  it("a DCL client and a JWT client of two friends see each other: ONLINE → AWAY → OFFLINE", async () => {
    const [alice, bob] = await friends();
    const a = await dial(alice);
    const aSees = collect(a.service.subscribeToFriendConnectivityUpdates({}));
    const jb = await Client.connect(bob.address, { device: "bob-phone", kind: "mobile" });
    await jb.request({ type: "SubscribeFriendshipPresenceUpdates" });
    // Bob (JSON) sees alice's DCL device: online, kind dcl.
    const seen = await jb.request({ type: "GetOnlineFriends" });
    expect(seen.friends).toEqual([expect.objectContaining({ userId: alice.address, status: "online", devices: [expect.objectContaining({ kind: "dcl" })] })]);
    await jb.heartbeat({ status: "online" });
    await until(() => lastStatus(aSees.items, bob.address) === ConnectivityStatus.ONLINE, "ONLINE");
    await jb.heartbeat({ status: "away" });
    await until(() => lastStatus(aSees.items, bob.address) === ConnectivityStatus.AWAY, "AWAY");
    await jb.close();
    await until(() => lastStatus(aSees.items, bob.address) === ConnectivityStatus.OFFLINE, "OFFLINE");
    expect(aSees.items.map((u) => u.status)).toEqual([ConnectivityStatus.ONLINE, ConnectivityStatus.AWAY, ConnectivityStatus.OFFLINE]);
    // And alice's DCL socket leaving is seen by a JSON client at once.
    const jb2 = await Client.connect(bob.address, { device: "bob-pc" });
    await jb2.request({ type: "SubscribeFriendshipPresenceUpdates" });
    a.close();
    await jb2.presenceOf(alice.address, (p) => p.status === "offline");
  });

  it("the opening snapshot is read after the live listener is registered: a change while it is read is not lost", async () => {
    const [alice, bob] = await friends();
    const jb = await Client.connect(bob.address);
    await jb.heartbeat({ status: "online" });
    const a = await dial(alice);
    const gate = globalThis as unknown as { dclSnapshotRead?: boolean; dclGateOpen?: boolean };
    gate.dclSnapshotRead = false;
    gate.dclGateOpen = false;
    await runInDurableObject(stubOf(alice.address), (instance) => {
      const hooks = (instance as unknown as { dcl: { hooks: { onlineFriends: () => Promise<unknown[]> } } }).dcl.hooks;
      const original = hooks.onlineFriends;
      hooks.onlineFriends = async () => {
        hooks.onlineFriends = original;
        const snapshot = await original(); // bob ONLINE
        gate.dclSnapshotRead = true;
        while (!gate.dclGateOpen) await new Promise((r) => setTimeout(r, 5));
        return snapshot; // stale by now
      };
    });
    const aSees = collect(a.service.subscribeToFriendConnectivityUpdates({}));
    await until(() => gate.dclSnapshotRead === true, "the snapshot to be read");
    await jb.heartbeat({ status: "away" });
    await sleep(100);
    gate.dclGateOpen = true;
    await until(() => lastStatus(aSees.items, bob.address) === ConnectivityStatus.AWAY, "the change made while the snapshot was read");
    await sleep(100);
    // Nothing older overtakes it: the stale ONLINE is skipped, the AWAY arrives and stays last.
    expect(aSees.items.map((u) => u.status)).toEqual([ConnectivityStatus.AWAY]);
    a.close();
  });

  it("two connections of one address both receive; closing one leaves the other, and the user stays ONLINE", async () => {
    const [alice, bob] = await friends();
    const a1 = await dial(alice);
    const a2 = await dial(alice);
    const s1 = collect(a1.service.subscribeToFriendConnectivityUpdates({}));
    const s2 = collect(a2.service.subscribeToFriendConnectivityUpdates({}));
    const b = await dial(bob);
    const bSees = collect(b.service.subscribeToFriendConnectivityUpdates({}));
    await until(() => lastStatus(s1.items, bob.address) === ConnectivityStatus.ONLINE && lastStatus(s2.items, bob.address) === ConnectivityStatus.ONLINE, "both see bob");
    await until(() => lastStatus(bSees.items, alice.address) === ConnectivityStatus.ONLINE, "bob sees alice");
    a1.close();
    await until(() => a1.closed() !== null, "a1 closed");
    b.close();
    await until(() => lastStatus(s2.items, bob.address) === ConnectivityStatus.OFFLINE, "the other connection still receives");
    expect(a2.closed()).toBeNull();
    expect(await dclLastSeen(alice.address)).toHaveLength(1);
    a2.close();
  });
});

describe("rate limits", () => {
  it("acks never draw from the rate bucket: a snapshot of 19 online friends, then 16 calls, all answered", async () => {
    const alice = await createIdentity();
    const others = await Promise.all(Array.from({ length: 19 }, () => createIdentity()));
    const res = await worker().fetch("http://presence/v1/admin/friendships:import", {
      method: "POST",
      headers: { Authorization: `Bearer ${ADMIN}`, "Content-Type": "application/json" },
      body: JSON.stringify({ pairs: others.map((o) => [alice.address, o.address]) }),
    });
    expect(res.status).toBe(200);
    for (const o of others) {
      const hb = await api(o.address, "/v1/heartbeat?device=http", { method: "POST", body: JSON.stringify({ position: { x: 0, y: 0, z: 0 }, realm: "r", status: "online" }) });
      expect(hb.status).toBe(200);
    }
    const a = await dial(alice);
    const aSees = collect(a.service.subscribeToFriendConnectivityUpdates({}));
    await until(() => aSees.items.length === 19, "the snapshot: 19 elements, 19 acks");
    // 2 calls and 19 acks so far; a burst of 20 leaves room for 18 more calls only if acks were free.
    const answers = await Promise.allSettled(Array.from({ length: 16 }, () => a.service.getFriends({})));
    expect(answers.filter((r) => r.status === "rejected")).toEqual([]);
    // Calls do draw: a burst beyond the bucket is refused with a RemoteError, and the socket stays open.
    const more = await Promise.allSettled(Array.from({ length: 10 }, () => a.service.getBlockingStatus({})));
    expect(more.some((r) => r.status === "rejected" && /rate limited/.test(String(r.reason)))).toBe(true);
    expect(a.closed()).toBeNull();
    a.close();
  });
});

describe("friendships", () => {
  it("request and accept over UpsertFriendship reach the other side's SubscribeToFriendshipUpdates, never the actor's", async () => {
    const [alice, bob] = await Promise.all([createIdentity(), createIdentity()]);
    const a = await dial(alice);
    const b = await dial(bob);
    const aUpdates = collect(a.service.subscribeToFriendshipUpdates({}));
    const bUpdates = collect(b.service.subscribeToFriendshipUpdates({}));
    const aSees = collect(a.service.subscribeToFriendConnectivityUpdates({}));
    await sleep(50);
    const sent = await a.service.upsertFriendship({ action: { $case: "request", request: { user: { address: bob.address }, message: "hi from alice" } } });
    expect(sent.response?.$case).toBe("accepted");
    await until(() => bUpdates.items.length === 1, "bob's request");
    expect(bUpdates.items[0]!.update).toMatchObject({ $case: "request", request: { friend: { address: alice.address }, message: "hi from alice" } });
    const pending = await b.service.getPendingFriendshipRequests({});
    expect(pending.response).toMatchObject({ $case: "requests", requests: { requests: [{ friend: { address: alice.address }, message: "hi from alice" }] } });
    await b.service.upsertFriendship({ action: { $case: "accept", accept: { user: { address: alice.address } } } });
    await until(() => aUpdates.items.length === 1, "alice's accept");
    expect(aUpdates.items[0]!.update).toMatchObject({ $case: "accept", accept: { user: { address: bob.address } } });
    await until(() => lastStatus(aSees.items, bob.address) === ConnectivityStatus.ONLINE, "the new friend's connectivity");
    await sleep(100);
    // Own actions are not echoed.
    expect(aUpdates.items).toHaveLength(1);
    expect(bUpdates.items).toHaveLength(1);
    a.close();
    b.close();
  });

  it("a block hides presence: the blocked friend sees OFFLINE and a delete, then nothing of the blocker", async () => {
    const [alice, bob] = await friends();
    const a = await dial(alice);
    const b = await dial(bob);
    const bSees = collect(b.service.subscribeToFriendConnectivityUpdates({}));
    const bUpdates = collect(b.service.subscribeToFriendshipUpdates({}));
    await until(() => lastStatus(bSees.items, alice.address) === ConnectivityStatus.ONLINE, "alice ONLINE");
    expect((await a.service.blockUser({ user: { address: bob.address } })).response?.$case).toBe("ok");
    await until(() => lastStatus(bSees.items, alice.address) === ConnectivityStatus.OFFLINE, "alice hidden");
    await until(() => bUpdates.items.length === 1, "the delete");
    expect(bUpdates.items[0]!.update?.$case).toBe("delete");
    const count = bSees.items.length;
    // Alice comes and goes: bob hears nothing.
    const a2 = await dial(alice);
    a2.close();
    await sleep(200);
    expect(bSees.items).toHaveLength(count);
    expect((await b.service.getFriends({})).friends).toEqual([]);
    expect((await a.service.getBlockedUsers({})).profiles.map((p) => p.address)).toEqual([bob.address]);
    a.close();
    b.close();
  });
});

describe("hibernation and liveness", () => {
  it("a DCL socket hibernates like the others: evicted, woken by a friend's push, its streams and RPCs intact", async () => {
    const [alice, bob] = await friends();
    const a = await dial(alice);
    const aSees = collect(a.service.subscribeToFriendConnectivityUpdates({}));
    const jb = await Client.connect(bob.address);
    await jb.heartbeat({ status: "online" });
    await until(() => lastStatus(aSees.items, bob.address) === ConnectivityStatus.ONLINE, "ONLINE");
    await evictDurableObject(stubOf(alice.address), { webSockets: "hibernate" });
    const before = objectCounters.instancesCreated;
    await jb.heartbeat({ status: "away" });
    await until(() => lastStatus(aSees.items, bob.address) === ConnectivityStatus.AWAY, "AWAY after the eviction");
    expect(objectCounters.instancesCreated).toBeGreaterThan(before);
    expect(a.closed()).toBeNull();
    // The stream goes on (its sequence and credit were in the attachment), and calls work.
    await jb.heartbeat({ status: "online" });
    await until(() => lastStatus(aSees.items, bob.address) === ConnectivityStatus.ONLINE, "ONLINE again");
    expect((await a.service.getFriends({})).friends.map((f) => f.address)).toEqual([bob.address]);
    expect(aSees.items.map((u) => u.status)).toEqual([ConnectivityStatus.ONLINE, ConnectivityStatus.AWAY, ConnectivityStatus.ONLINE]);
    a.close();
  });

  it("an idle DCL client is probed at half the TTL: its ack is its sign of life", async () => {
    const [alice, bob] = await friends();
    const jb = await Client.connect(bob.address);
    await jb.heartbeat({ status: "online" });
    const a = await dial(alice);
    const aSees = collect(a.service.subscribeToFriendConnectivityUpdates({}));
    await until(() => aSees.items.length === 1, "the snapshot");
    await ageDcl(alice.address, TTL / 2 + 1_000);
    const [aged] = await dclLastSeen(alice.address);
    expect(await runDurableObjectAlarm(stubOf(alice.address))).toBe(true);
    await until(() => aSees.items.length === 2, "the probe (bob's status again)");
    expect(aSees.items[1]).toMatchObject({ friend: { address: bob.address }, status: ConnectivityStatus.ONLINE });
    let seen = aged!;
    await until(() => {
      void dclLastSeen(alice.address).then(([at]) => (seen = at!));
      return seen > aged! + TTL / 2;
    }, "the ack to count as a sign of life");
    expect(a.closed()).toBeNull();
    a.close();
  });

  it("a DCL client's frames are written down at half the TTL: an eviction cannot expire a client that is still talking", async () => {
    // DCL sockets carry no device state in their attachments: the device row is what survives an eviction.
    const { alice, bob, jb, a } = await dclWatched();
    // More than half a TTL without a frame, then one (a call): the sign of life reaches the row.
    await ageDcl(alice.address, TTL / 2 + 1_000);
    expect((await a.service.getFriends({})).friends.map((f) => f.address)).toEqual([bob.address]);
    const [spoke] = await dclLastSeen(alice.address);
    expect(spoke).toBeGreaterThan(Date.now() - 5_000);
    // The object is evicted; the next instance knows the device from its row alone.
    await evictDurableObject(stubOf(alice.address), { webSockets: "hibernate" });
    // Another half TTL and more of silence from then: a whole TTL since the frame was not reached, so the
    // alarm must keep the device (a row still at the old time would put it 2 s past the TTL).
    await ageDcl(alice.address, TTL / 2 + 1_000);
    await runDurableObjectAlarm(stubOf(alice.address));
    expect(await dclLastSeen(alice.address)).toHaveLength(1);
    expect(a.closed()).toBeNull();
    expect((await jb.request({ type: "GetPresence", userId: alice.address })).presence).toMatchObject({ status: "online" });
    await jb.expectNone((f) => f.type === "presence" && f.presence.userId === alice.address && f.presence.status === "offline");
    a.close();
  });

  it("a silent DCL client goes offline after the TTL: the friend sees it, the socket is closed 4000", async () => {
    const { alice, jb, a } = await dclWatched();
    await ageDcl(alice.address, TTL + 1);
    expect(await runDurableObjectAlarm(stubOf(alice.address))).toBe(true);
    await jb.presenceOf(alice.address, (p) => p.status === "offline");
    await until(() => a.closed() !== null, "the socket to close");
    expect(a.closed()!.code).toBe(4000);
  });
});
