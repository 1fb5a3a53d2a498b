/**
 * The smoke scenario every host runtime must pass, written the way an app on
 * Bun or Deno would use the SDK: the packed `@edge-presence/client` imported by
 * name, the runtime's own WebSocket and fetch, nothing else.
 *
 * Two users connect, become friends through friend requests, see each other
 * online, one changes status and then closes, and the other sees it go offline.
 * Type-checked by `deno test` (this folder is a consumer project with its own
 * deno.json, outside the root tsconfig); run by `bun test` and `deno test`.
 */
import { connect, type Presence, type PresenceClient } from "@edge-presence/client";

const STEP_TIMEOUT_MS = 10_000;

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Resolves with the first `event` the client emits, or rejects after STEP_TIMEOUT_MS. */
function next<T>(what: string, subscribe: (listener: (value: T) => void) => () => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out waiting for ${what}`));
    }, STEP_TIMEOUT_MS);
    const off = subscribe((value) => {
      clearTimeout(timer);
      off();
      resolve(value);
    });
  });
}

async function devToken(url: string, userId: string): Promise<string> {
  const res = await fetch(new URL("/dev/token", url), {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ userId }),
  });
  if (!res.ok) throw new Error(`POST /dev/token: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}

function expectEqual(what: string, actual: unknown, expected: unknown): void {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

/** Runs the scenario against the service at `url`; `label` makes the user ids unique per run. Returns the steps passed. */
export async function friendsSeeEachOther(url: string, label: string): Promise<string[]> {
  const steps: string[] = [];
  const step = (name: string) => steps.push(name);
  const suffix = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
  const [alice, bob] = [`${label}-alice-${suffix}`, `${label}-bob-${suffix}`];
  const open = (userId: string): PresenceClient =>
    connect({
      url,
      getToken: () => devToken(url, userId),
      device: `${userId}-desktop`,
      kind: "desktop",
      // No `WebSocket` option: the runtime's global WebSocket is the point.
      initial: { position: { x: 1, y: 2, z: 3 }, realm: "lobby", status: "online" },
    });

  const a = open(alice);
  const b = open(bob);
  try {
    await Promise.all([a.ready(), b.ready()]);
    step("both connected");

    const asked = next<{ userId: string; direction: string }>("bob's friendRequest event", (l) => b.on("friendRequest", l));
    expectEqual("alice's request", (await a.sendFriendRequest(bob, "hi from the smoke test")).state, "outgoing");
    expectEqual("bob is asked by alice", await asked.then(({ userId, direction }) => ({ userId, direction })), { userId: alice, direction: "incoming" });
    const bobAdded = next<Presence>("alice's friendAdded event", (l) => a.on("friendAdded", l));
    expectEqual("bob accepts", (await b.acceptFriendRequest(alice)).state, "friends");
    expectEqual("alice is told bob is a friend", (await bobAdded).userId, bob);
    step("became friends");

    await until("alice sees bob online", () => a.friend(bob)?.status === "online");
    await until("bob sees alice online", () => b.friend(alice)?.status === "online");
    expectEqual("where alice sees bob", a.friend(bob)?.realm, "lobby");
    step("see each other online");

    const self = await b.setStatus("busy", "in a meeting");
    expectEqual("bob's own view", [self.status, self.statusText], ["busy", "in a meeting"]);
    await until("alice sees bob busy", () => a.friend(bob)?.status === "busy");
    expectEqual("bob's status text as alice sees it", a.friend(bob)?.statusText, "in a meeting");
    step("status change seen");

    const offline = next<Presence>("alice's offline event", (l) => a.on("offline", l));
    const bobClosed = next<unknown>("bob's closed state", (l) => b.on("connection", (e) => e.state === "closed" && l(e)));
    b.close();
    expectEqual("who went offline", (await offline).userId, bob);
    expectEqual("bob as alice sees him now", a.friend(bob)?.status, "offline");
    await bobClosed;
    step("close → offline");
  } finally {
    a.close();
    b.close();
  }
  return steps;
}
