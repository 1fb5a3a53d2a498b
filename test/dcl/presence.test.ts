// Friends' presence and friendships as real @dcl/rpc clients see them, against the pure
// endpoint and a World whose friendships follow src/presence/friendship.ts.
import { describe, expect, it } from "vitest";
import {
  ConnectivityStatus,
  FriendshipStatus,
  type FriendConnectivityUpdate,
  type FriendshipUpdate,
} from "@dcl/protocol/out-js/decentraland/social_service/v2/social_service_v2.gen";
import type { Presence } from "../../src/presence/types";
import { collect, connect, createIdentity, settle, until, World, type Client } from "./harness";

const { ONLINE, AWAY, OFFLINE } = ConnectivityStatus;

type Seen = ReturnType<typeof collect<FriendConnectivityUpdate>>;

/** The last status each friend was shown with, from a connectivity stream. */
function view(stream: Seen): Record<string, ConnectivityStatus> {
  const last: Record<string, ConnectivityStatus> = {};
  for (const update of stream.items) last[update.friend!.address] = update.status;
  return last;
}

/** `n` connected clients, all friends of each other (or strangers). */
async function friendsOrNot(world: World, n: number, befriend: boolean): Promise<Client[]> {
  const identities = await Promise.all(Array.from({ length: n }, () => createIdentity()));
  if (befriend) for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) world.befriend(identities[i]!.address, identities[j]!.address);
  return Promise.all(identities.map((identity) => connect(world, identity)));
}

describe("friend connectivity", () => {
  it("two friends see each other ONLINE, then AWAY, then OFFLINE; nobody sees themself", async () => {
    const world = new World();
    const [alice, bob] = await Promise.all([createIdentity(), createIdentity()]);
    world.befriend(alice.address, bob.address);
    const a = await connect(world, alice);
    const aSees = collect(a.service.subscribeToFriendConnectivityUpdates({}));
    await settle();
    expect(aSees.items).toEqual([]); // bob is offline: not in the snapshot

    const b = await connect(world, bob);
    const bSees = collect(b.service.subscribeToFriendConnectivityUpdates({}));
    await until(() => view(aSees)[bob.address] === ONLINE, "alice to see bob ONLINE");
    await until(() => view(bSees)[alice.address] === ONLINE, "bob's snapshot to show alice ONLINE");
    expect(aSees.items[0]).toEqual({ friend: { address: bob.address, name: "", hasClaimedName: false, profilePictureUrl: "", nameColor: undefined }, status: ONLINE });

    // Bob's phone (a JWT device, say) is idle; his DCL client leaves: what is left is away.
    world.user(bob.address).setDevice("phone", "away");
    b.close();
    await until(() => view(aSees)[bob.address] === AWAY, "alice to see bob AWAY");
    world.user(bob.address).setDevice("phone", null);
    await until(() => view(aSees)[bob.address] === OFFLINE, "alice to see bob OFFLINE");
    expect(aSees.items.map((u) => u.status)).toEqual([ONLINE, AWAY, OFFLINE]);
    expect(aSees.items.every((u) => u.friend!.address !== alice.address)).toBe(true);
    expect(bSees.items.every((u) => u.friend!.address !== bob.address)).toBe(true);
    expect(a.server.largestAttachment).toBeLessThan(2_000);
  });

  it("maps busy to ONLINE and never shows unknown as ONLINE", async () => {
    const world = new World();
    const [alice, carol, dave] = await Promise.all([createIdentity(), createIdentity(), createIdentity()]);
    world.befriend(alice.address, carol.address);
    world.befriend(alice.address, dave.address);
    world.user(carol.address).setDevice("desk", "busy");
    const a = await connect(world, alice);
    const seen = collect(a.service.subscribeToFriendConnectivityUpdates({}));
    await until(() => view(seen)[carol.address] === ONLINE, "busy carol as ONLINE");
    // Alice's object cannot reach dave's (the JSON protocol's `unknown`): not ONLINE.
    const unknown: Presence = { ...world.user(dave.address).presence(), status: "unknown" };
    await a.server.endpoint().onEvents([{ type: "presence", presence: unknown }]);
    await until(() => dave.address in view(seen), "an update for dave");
    expect(view(seen)[dave.address]).toBe(OFFLINE);
  });

  it("the snapshot is read after the live listener is registered: a change meanwhile is neither lost nor overtaken", async () => {
    const world = new World();
    const [alice, bob, carol] = await Promise.all([createIdentity(), createIdentity(), createIdentity()]);
    world.befriend(alice.address, bob.address);
    world.befriend(alice.address, carol.address);
    world.user(carol.address).setDevice("desk", "online");
    const a = await connect(world, alice);
    let open!: () => void;
    world.user(alice.address).snapshotGate = new Promise<void>((resolve) => (open = resolve));
    const seen = collect(a.service.subscribeToFriendConnectivityUpdates({}));
    await until(() => world.user(alice.address).calls.includes("onlineFriends"), "the snapshot read to start");
    // While the snapshot is being read: bob comes online then goes away, carol leaves.
    world.user(bob.address).setDevice("laptop", "online");
    world.user(bob.address).setDevice("laptop", "away");
    world.user(carol.address).setDevice("desk", null);
    await settle();
    expect(seen.items).toEqual([]); // held behind the snapshot
    open();
    await until(() => view(seen)[bob.address] === AWAY && view(seen)[carol.address] === OFFLINE, "the final view");
    // One element per friend: the snapshot's entries merged with the newer live ones.
    expect(seen.items.map((u) => [u.friend!.address, u.status])).toEqual(
      expect.arrayContaining([
        [bob.address, AWAY],
        [carol.address, OFFLINE],
      ]),
    );
    expect(seen.items).toHaveLength(2);
  });

  it("two connections of one address both receive, and one closing leaves the user online", async () => {
    const world = new World();
    const [alice, bob] = await Promise.all([createIdentity(), createIdentity()]);
    world.befriend(alice.address, bob.address);
    const desktop = await connect(world, alice);
    const web = await connect(world, alice);
    const s1 = collect(desktop.service.subscribeToFriendConnectivityUpdates({}));
    const s2 = collect(web.service.subscribeToFriendConnectivityUpdates({}));
    const b = await connect(world, bob);
    const bSees = collect(b.service.subscribeToFriendConnectivityUpdates({}));
    await until(() => view(s1)[bob.address] === ONLINE && view(s2)[bob.address] === ONLINE, "both of alice's connections to see bob");
    await until(() => view(bSees)[alice.address] === ONLINE, "bob to see alice");
    web.close();
    await settle();
    expect(view(bSees)[alice.address]).toBe(ONLINE); // alice still has her desktop
    desktop.close();
    await until(() => view(bSees)[alice.address] === OFFLINE, "bob to see alice OFFLINE");
  });

  it("a DCL client and a JWT client of two friends see each other", async () => {
    const world = new World();
    const alice = await createIdentity();
    // A JSON-protocol user whose JWT `sub` is their address: same object, same friendships.
    const jwtUser = (await createIdentity()).address;
    world.befriend(alice.address, jwtUser);
    const jsonPushes: Presence[] = [];
    world.user(jwtUser).listeners.add((events) => {
      for (const e of events) if (e.type === "presence") jsonPushes.push(e.presence);
    });
    world.user(jwtUser).setDevice("laptop", "online");
    const a = await connect(world, alice);
    const seen = collect(a.service.subscribeToFriendConnectivityUpdates({}));
    await until(() => view(seen)[jwtUser] === ONLINE, "alice to see the JWT user ONLINE");
    await until(() => jsonPushes.at(-1)?.status === "online", "the JWT user to see alice online");
    world.user(jwtUser).setDevice("laptop", "away");
    await until(() => view(seen)[jwtUser] === AWAY, "alice to see the JWT user AWAY");
    a.close();
    await until(() => jsonPushes.at(-1)?.status === "offline", "the JWT user to see alice offline at once");
  });
});

describe("friendships", () => {
  it("a request and its accept over UpsertFriendship reach the other's SubscribeToFriendshipUpdates; own actions are not echoed", async () => {
    const world = new World();
    const [a, b] = (await friendsOrNot(world, 2, false)) as [Client, Client];
    const aUpdates = collect(a.service.subscribeToFriendshipUpdates({}));
    const bUpdates = collect(b.service.subscribeToFriendshipUpdates({}));
    const aConnectivity = collect(a.service.subscribeToFriendConnectivityUpdates({}));
    const bConnectivity = collect(b.service.subscribeToFriendConnectivityUpdates({}));
    await settle();

    const sent = await a.service.upsertFriendship({ action: { $case: "request", request: { user: { address: b.address }, message: "hey, it's alice" } } });
    expect(sent.response?.$case).toBe("accepted");
    await until(() => bUpdates.items.length === 1, "bob's request update");
    const request = bUpdates.items[0] as FriendshipUpdate;
    expect(request.update?.$case).toBe("request");
    const r = (request.update as Extract<FriendshipUpdate["update"], { $case: "request" }>).request;
    expect(r.friend?.address).toBe(a.address);
    expect(r.message).toBe("hey, it's alice");
    expect(r.id).toBe((sent.response as { accepted: { id: string } }).accepted.id);

    const pending = await b.service.getPendingFriendshipRequests({});
    expect(pending.response).toMatchObject({ $case: "requests", requests: { requests: [{ id: r.id, friend: { address: a.address }, message: "hey, it's alice" }] } });
    expect(pending.paginationData).toEqual({ total: 1, page: 1 });
    const outgoing = await a.service.getSentFriendshipRequests({});
    expect(outgoing.response).toMatchObject({ requests: { requests: [{ id: r.id, friend: { address: b.address } }] } });
    expect((await b.service.getFriendshipStatus({ user: { address: a.address } })).response).toEqual({
      $case: "accepted",
      accepted: { status: FriendshipStatus.REQUEST_RECEIVED, message: "hey, it's alice" },
    });
    expect((await a.service.getFriendshipStatus({ user: { address: b.address } })).response).toMatchObject({ accepted: { status: FriendshipStatus.REQUEST_SENT } });

    await b.service.upsertFriendship({ action: { $case: "accept", accept: { user: { address: a.address } } } });
    await until(() => aUpdates.items.length === 1, "alice's accept update");
    expect(aUpdates.items[0]!.update).toEqual({ $case: "accept", accept: { user: { address: b.address } } });
    // Both are online: each is announced to the other.
    await until(() => view(aConnectivity)[b.address] === ONLINE && view(bConnectivity)[a.address] === ONLINE, "both ONLINE");
    expect((await a.service.getFriends({})).friends.map((f) => f.address)).toEqual([b.address]);
    expect((await b.service.getFriendshipStatus({ user: { address: a.address } })).response).toMatchObject({ accepted: { status: FriendshipStatus.ACCEPTED } });
    // Neither saw their own action.
    await settle();
    expect(aUpdates.items).toHaveLength(1);
    expect(bUpdates.items).toHaveLength(1);
  });

  it("reject, cancel and delete reach the other user", async () => {
    const world = new World();
    const [a, b] = (await friendsOrNot(world, 2, false)) as [Client, Client];
    const aUpdates = collect(a.service.subscribeToFriendshipUpdates({}));
    const bUpdates = collect(b.service.subscribeToFriendshipUpdates({}));
    const cases = () => [aUpdates.items.map((u) => u.update?.$case), bUpdates.items.map((u) => u.update?.$case)];
    await a.service.upsertFriendship({ action: { $case: "request", request: { user: { address: b.address } } } });
    await b.service.upsertFriendship({ action: { $case: "reject", reject: { user: { address: a.address } } } });
    await a.service.upsertFriendship({ action: { $case: "request", request: { user: { address: b.address } } } });
    await a.service.upsertFriendship({ action: { $case: "cancel", cancel: { user: { address: b.address } } } });
    await b.service.upsertFriendship({ action: { $case: "request", request: { user: { address: a.address } } } });
    await a.service.upsertFriendship({ action: { $case: "accept", accept: { user: { address: b.address } } } });
    await a.service.upsertFriendship({ action: { $case: "delete", delete: { user: { address: b.address } } } });
    await until(() => bUpdates.items.length === 5, "bob's updates");
    expect(cases()).toEqual([
      ["reject", "request"],
      ["request", "request", "cancel", "accept", "delete"],
    ]);
    // Invalid actions answer in the response, as the real service.
    expect((await a.service.upsertFriendship({ action: { $case: "accept", accept: { user: { address: b.address } } } })).response?.$case).toBe("invalidFriendshipAction");
    expect((await a.service.upsertFriendship({ action: { $case: "request", request: { user: { address: a.address } } } })).response?.$case).toBe("invalidFriendshipAction");
    expect((await a.service.upsertFriendship({ action: { $case: "request", request: { user: { address: "bob" } } } })).response).toEqual({
      $case: "invalidRequest",
      invalidRequest: { message: "Invalid user address in the request payload" },
    });
  });

  it("GetMutualFriends lists the friends two users share", async () => {
    const world = new World();
    const [a, b, c, d] = await Promise.all([createIdentity(), createIdentity(), createIdentity(), createIdentity()]);
    world.befriend(a.address, b.address);
    world.befriend(a.address, c.address);
    world.befriend(d.address, c.address);
    world.befriend(d.address, b.address);
    const client = await connect(world, a);
    const mutual = await client.service.getMutualFriends({ user: { address: d.address.toUpperCase().replace("0X", "0x") } });
    expect(mutual.friends.map((f) => f.address).sort()).toEqual([b.address, c.address].sort());
    expect(mutual.paginationData).toEqual({ total: 2, page: 1 });
  });
});

describe("blocking", () => {
  it("a block hides presence both ways, at once and afterwards, and is never revealed to the blocked user", async () => {
    const world = new World();
    const [alice, bob] = await Promise.all([createIdentity(), createIdentity()]);
    world.befriend(alice.address, bob.address);
    const [a, b] = await Promise.all([connect(world, alice), connect(world, bob)]);
    const aSees = collect(a.service.subscribeToFriendConnectivityUpdates({}));
    const bSees = collect(b.service.subscribeToFriendConnectivityUpdates({}));
    const bUpdates = collect(b.service.subscribeToFriendshipUpdates({}));
    const bBlocks = collect(b.service.subscribeToBlockUpdates({}));
    await until(() => view(aSees)[bob.address] === ONLINE && view(bSees)[alice.address] === ONLINE, "both ONLINE");

    const blocked = await a.service.blockUser({ user: { address: bob.address } });
    expect(blocked.response).toMatchObject({ $case: "ok", ok: { profile: { address: bob.address, blockedAt: world.clock } } });
    await until(() => view(bSees)[alice.address] === OFFLINE && view(aSees)[bob.address] === OFFLINE, "both OFFLINE to each other");
    await until(() => bUpdates.items.length === 1, "bob's friendship update");
    expect(bUpdates.items[0]!.update).toEqual({ $case: "delete", delete: { user: { address: alice.address } } }); // not "block"

    // Alice's status changes: bob hears nothing.
    const before = bSees.items.length;
    world.user(alice.address).setDevice("phone", "away");
    await settle();
    expect(bSees.items).toHaveLength(before);
    expect(bBlocks.items).toEqual([]);
    expect((await b.service.getFriends({})).friends).toEqual([]);
    const fresh = collect(b.service.subscribeToFriendConnectivityUpdates({}));
    await settle();
    expect(fresh.items).toEqual([]);

    expect((await a.service.getBlockedUsers({})).profiles.map((p) => p.address)).toEqual([bob.address]);
    expect(await a.service.getBlockingStatus({})).toEqual({ blockedUsers: [bob.address], blockedByUsers: [] });
    expect(await b.service.getBlockingStatus({})).toEqual({ blockedUsers: [], blockedByUsers: [] });
    expect((await a.service.getFriendshipStatus({ user: { address: bob.address } })).response).toMatchObject({ accepted: { status: FriendshipStatus.BLOCKED } });
    expect((await b.service.getFriendshipStatus({ user: { address: alice.address } })).response).toMatchObject({ accepted: { status: FriendshipStatus.NONE } });
    // Bob may ask again: it looks sent, as after a removal (shadow refusal), and alice sees nothing of it.
    expect((await b.service.upsertFriendship({ action: { $case: "request", request: { user: { address: alice.address } } } })).response?.$case).toBe("accepted");
    expect((await a.service.getFriendshipStatus({ user: { address: bob.address } })).response).toMatchObject({ accepted: { status: FriendshipStatus.BLOCKED } });
    expect((await a.service.getPendingFriendshipRequests({})).response).toMatchObject({ requests: { requests: [] } });

    expect((await a.service.unblockUser({ user: { address: bob.address } })).response?.$case).toBe("ok");
    expect((await a.service.unblockUser({ user: { address: bob.address } })).response?.$case).toBe("ok"); // idempotent
    expect((await a.service.getBlockedUsers({})).profiles).toEqual([]);
  });
});

describe("hibernation", () => {
  it("a snapshot of 600 online friends arrives whole, once each, across a hibernation, with a small attachment", async () => {
    const world = new World();
    const alice = await createIdentity();
    const friendIds = Array.from({ length: 600 }, (_, i) => `0x${(i * 7919 + 1).toString(16).padStart(40, "0")}`);
    for (const f of friendIds) {
      world.befriend(alice.address, f);
      world.user(f).setDevice("pc", "online");
    }
    const a = await connect(world, alice);
    // The client acks each element when it asks for the next: reading by hand pauses the server.
    const stream = a.service.subscribeToFriendConnectivityUpdates({})[Symbol.asyncIterator]();
    const items: FriendConnectivityUpdate[] = [];
    const read = async (count: number) => {
      for (let i = 0; i < count; i++) items.push((await stream.next()).value as FriendConnectivityUpdate);
    };
    await read(200);
    a.server.hibernate(); // the snapshot in memory is gone; the cursor in the attachment is not
    world.user(friendIds[0]!).setDevice("pc", "away"); // already sent: goes out after the snapshot
    world.user(friendIds[599]!).setDevice("pc", null); // not sent yet: skipped by the snapshot, its live update goes out
    await read(401);
    let more = false;
    void stream.next().then(() => (more = true));
    await settle();
    expect(more).toBe(false);
    const last: Record<string, ConnectivityStatus> = {};
    for (const u of items) last[u.friend!.address] = u.status;
    expect(items.slice(0, 599).map((u) => u.friend!.address)).toEqual(friendIds.slice(0, 599)); // the snapshot, in address order, once each
    expect(items.slice(599).map((u) => [u.friend!.address, u.status])).toEqual([
      [friendIds[0], AWAY],
      [friendIds[599], OFFLINE],
    ]);
    expect(a.server.largestAttachment).toBeLessThan(1_000);
    expect(world.user(alice.address).calls.filter((c) => c === "onlineFriends")).toHaveLength(2); // read again after hibernation
  });

  it("every step works from the JSON-stored state alone; a busy session's state stays small", async () => {
    const world = new World();
    const clients = await friendsOrNot(world, 6, true);
    const streams = clients.map((c) => collect(c.service.subscribeToFriendConnectivityUpdates({})));
    for (const c of clients) collect(c.service.subscribeToFriendshipUpdates({}));
    for (let round = 0; round < 3; round++) {
      for (const c of clients) world.user(c.address).setDevice("phone", round % 2 ? "away" : "busy");
    }
    await until(() => streams.every((s) => Object.keys(view(s)).length === 5), "everyone to see everyone");
    for (const c of clients) {
      expect(c.server.largestAttachment).toBeLessThan(4_000);
      const stored = JSON.parse(c.server.attachment!);
      expect(stored.rpc.streams.every((s: { queue: unknown[] }) => s.queue.length === 0)).toBe(true);
    }
  });
});
