/**
 * The real matrix-js-sdk (createClient, startClient, setPresence, getPresence,
 * UserEvent.Presence), against the server `start` gives: sdk.test.ts runs
 * them over the in-memory backend, wrangler/sdk.wrangler.test.ts against
 * `wrangler dev` (the real worker and objects). Long polls are capped at half
 * the TTL, so a short TTL keeps the tests quick.
 */
import { SetPresence } from "matrix-js-sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { fresh, type MatrixHarness } from "./support/harness";
import { nextPresenceEvent, presenceOf, sleep, startSdkClient, TokenKeepingStore, waitForResponses, waitForUser, type SdkClient } from "./support/sdk";

export function sdkSuite(target: string, TTL_MS: number, startHarness: () => Promise<MatrixHarness>): void {
  let harness: MatrixHarness;
  const running: SdkClient[] = [];

  beforeAll(async () => {
    harness = await startHarness();
  });
  afterAll(async () => {
    await harness?.close();
  });
  afterEach(() => {
    for (const c of running.splice(0)) c.stop();
  });

  async function start(userId: string, store?: TokenKeepingStore) {
    const c = await startSdkClient(harness, userId, store);
    running.push(c);
    return c;
  }

  describe(`matrix-js-sdk against ${target}`, () => {
    it("two friends see each other online, unavailable with a message, and offline", async () => {
      const [alice, bob] = [fresh("alice"), fresh("bob")];
      await harness.befriend(alice, bob);
      const a = await start(alice);
      const b = await start(bob);

      // Syncing makes each of them online; each client raises UserEvent.Presence for the other.
      const aliceSeesBob = await waitForUser(a.client, b.matrixId, (u) => u.presence === "online");
      expect(aliceSeesBob.currentlyActive).toBe(true);
      await waitForUser(b.client, a.matrixId, (u) => u.presence === "online");
      expect(await a.client.getPresence(b.matrixId)).toMatchObject({ presence: "online", currently_active: true });

      // Unavailable with a message: sync with set_presence=unavailable (or the next poll would say online), then PUT.
      const raised = nextPresenceEvent(a.client, b.matrixId);
      await b.client.setSyncPresence(SetPresence.Unavailable);
      await b.client.setPresence({ presence: "unavailable", status_msg: "lunch" });
      const { event, user } = await raised;
      expect(event.getContent()).toMatchObject({ presence: "unavailable", status_msg: "lunch", currently_active: false });
      expect(user.presenceStatusMsg).toBe("lunch");
      expect(await a.client.getPresence(b.matrixId)).toMatchObject({ presence: "unavailable", status_msg: "lunch" });

      // Offline while still syncing: set_presence=offline syncs without being shown.
      const gone = nextPresenceEvent(a.client, b.matrixId);
      await b.client.setSyncPresence(SetPresence.Offline);
      await b.client.setPresence({ presence: "offline" });
      expect((await gone).event.getContent()).toMatchObject({ presence: "offline", status_msg: null });
      // Bob still receives: alice's change reaches him.
      await a.client.setPresence({ presence: "online", status_msg: "back" });
      await waitForUser(b.client, a.matrixId, (u) => u.presenceStatusMsg === "back");
    });

    it("a non-friend sees nothing", async () => {
      const [alice, bob, eve] = [fresh("alice"), fresh("bob"), fresh("eve")];
      await harness.befriend(alice, bob);
      const a = await start(alice);
      const e = await start(eve);
      const b = await start(bob);
      await b.client.setPresence({ presence: "online", status_msg: "only for friends" });
      await waitForUser(a.client, b.matrixId, (u) => u.presenceStatusMsg === "only for friends");
      await sleep(300);
      expect(e.client.getUser(b.matrixId)).toBeNull();
      expect(e.presenceEvents.map((ev) => ev.getSender())).toEqual([e.matrixId]);
      await expect(e.client.getPresence(b.matrixId)).rejects.toMatchObject({ errcode: "M_NOT_FOUND", httpStatus: 404 });
      // ...exactly as for a user who does not exist.
      await expect(e.client.getPresence(harness.matrixId(fresh("nobody")))).rejects.toMatchObject({ errcode: "M_NOT_FOUND", httpStatus: 404 });
    });

    it("a client that stops syncing goes offline after the TTL, keeping its status message", async () => {
      const [alice, bob] = [fresh("alice"), fresh("bob")];
      await harness.befriend(alice, bob);
      const a = await start(alice);
      const b = await start(bob);
      await b.client.setPresence({ presence: "online", status_msg: "brb" });
      await waitForUser(a.client, b.matrixId, (u) => u.presence === "online" && u.presenceStatusMsg === "brb");
      const offline = nextPresenceEvent(a.client, b.matrixId, TTL_MS * 4);
      b.stop();
      const stoppedAt = Date.now();
      const { event } = await offline;
      const after = Date.now() - stoppedAt;
      expect(event.getContent()).toMatchObject({ presence: "offline", status_msg: "brb" });
      // Offline no earlier than a TTL after bob's last poll began (polls last at most TTL/2), and not much later than a TTL.
      expect(after).toBeGreaterThanOrEqual(TTL_MS / 2 - 100);
      expect(after).toBeLessThan(TTL_MS + 1_000);
    });

    it("a client restarted with its last since token gets exactly the changes it missed", async () => {
      const [alice, bob, carol, dave] = [fresh("alice"), fresh("bob"), fresh("carol"), fresh("dave")];
      for (const f of [bob, carol, dave]) await harness.befriend(alice, f);
      await harness.heartbeat(bob, "pc", "online");
      await harness.heartbeat(carol, "pc", "online", "steady");
      const first = await start(alice);
      await waitForUser(first.client, harness.matrixId(bob), (u) => u.presence === "online");
      await waitForUser(first.client, harness.matrixId(carol), (u) => u.presence === "online");
      first.stop();
      const token = first.store.nextBatch;
      expect(token).toMatch(/^p1_/);

      // While alice is away (within her TTL): bob goes away with a message, dave comes online, carol changes nothing.
      await harness.heartbeat(bob, "pc", "away", "lunch");
      await harness.heartbeat(dave, "pc", "online");
      await harness.heartbeat(carol, "pc", "online", "steady");

      const store = new TokenKeepingStore(token);
      const second = await start(alice, store);
      const [resumed] = await waitForResponses(store, 1);
      const got = presenceOf(resumed).map((e) => [e.sender, e.content.presence, e.content.status_msg]);
      expect(got).toEqual([
        [harness.matrixId(bob), "unavailable", "lunch"],
        [harness.matrixId(dave), "online", null],
      ]);
      expect(second.client.getUser(harness.matrixId(bob))?.presence).toBe("unavailable");
      // And nothing twice: the next response has nothing about them.
      await sleep(TTL_MS / 2 + 100);
      const later = store.responses
        .slice(1)
        .flatMap((r) => presenceOf(r))
        .map((e) => e.sender);
      expect(later).not.toContain(harness.matrixId(bob));
      expect(later).not.toContain(harness.matrixId(dave));
    });

    it("a token from before a server restart still works", async () => {
      const [alice, bob] = [fresh("alice"), fresh("bob")];
      await harness.befriend(alice, bob);
      await harness.heartbeat(bob, "pc", "online");
      const first = await start(alice);
      await waitForUser(first.client, harness.matrixId(bob), (u) => u.presence === "online");
      first.stop();
      await harness.restart();
      await harness.heartbeat(bob, "pc", "online", "after the restart");
      const store = new TokenKeepingStore(first.store.nextBatch);
      await start(alice, store);
      const [resumed] = await waitForResponses(store, 1);
      // Her own event may come too: a restart that outlasts the TTL made her offline and back meanwhile (a change she missed).
      const aboutFriends = presenceOf(resumed).filter((e) => e.sender !== harness.matrixId(alice));
      expect(aboutFriends.map((e) => [e.sender, e.content.status_msg])).toEqual([[harness.matrixId(bob), "after the restart"]]);
    });
  });
}
