import { describe, expect, it } from "vitest";
import { collect, ConnectivityStatus, createIdentity, dial, lastStatus, until } from "./dcl-helpers";
import { befriend } from "./helpers";

describe("Decentraland clients against the real worker", () => {
  it("smoke: two friends see each other ONLINE, then OFFLINE", async () => {
    const [alice, bob] = await Promise.all([createIdentity(), createIdentity()]);
    await befriend(alice.address, bob.address);
    const a = await dial(alice);
    const friends = await a.service.getFriends({});
    expect(friends.friends.map((f) => f.address)).toEqual([bob.address]);
    const aSees = collect(a.service.subscribeToFriendConnectivityUpdates({}));
    const b = await dial(bob);
    await until(() => lastStatus(aSees.items, bob.address) === ConnectivityStatus.ONLINE, "bob ONLINE");
    b.close();
    await until(() => lastStatus(aSees.items, bob.address) === ConnectivityStatus.OFFLINE, "bob OFFLINE");
    a.close();
    await until(() => a.closed() !== null, "a closed");
    await new Promise((r) => setTimeout(r, 200));
  });
});
