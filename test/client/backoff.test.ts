// Reconnect schedule: exponential, jittered, bounded; and the client obeys it.
import { describe, expect, it } from "vitest";
import { backoffDelay, connect, type ConnectionEvent, type WebSocketLike } from "../../client/src/index.js";

describe("backoffDelay", () => {
  it("grows exponentially up to the bound", () => {
    const top = () => 1; // jitter at its maximum
    const delays = Array.from({ length: 12 }, (_, i) => backoffDelay(i, { initialDelayMs: 100, maxDelayMs: 5_000, factor: 2, jitter: 0.5 }, top));
    expect(delays.slice(0, 6)).toEqual([100, 200, 400, 800, 1_600, 3_200]);
    expect(delays.slice(6).every((d) => d === 5_000)).toBe(true);
  });

  it("keeps jitter within [ceiling·(1-jitter), ceiling] and never above maxDelayMs", () => {
    for (let attempt = 0; attempt < 60; attempt++) {
      for (const r of [0, 0.25, 0.5, 0.999, 1]) {
        const d = backoffDelay(attempt, { initialDelayMs: 250, maxDelayMs: 10_000, jitter: 0.5 }, () => r);
        const ceiling = Math.min(10_000, 250 * 2 ** attempt);
        expect(d).toBeGreaterThanOrEqual(Math.floor(ceiling / 2));
        expect(d).toBeLessThanOrEqual(10_000);
      }
    }
    expect(backoffDelay(1_000_000)).toBeLessThanOrEqual(30_000); // defaults, absurd attempt count
  });
});

/** A WebSocket whose server is never there: every attempt closes with 1006. */
class UnreachableSocket implements WebSocketLike {
  static opened = 0;
  static last: { url: string; protocols?: string | string[] } | null = null;
  readyState = 0;
  onopen: WebSocketLike["onopen"] = null;
  onmessage: WebSocketLike["onmessage"] = null;
  onclose: WebSocketLike["onclose"] = null;
  onerror: WebSocketLike["onerror"] = null;
  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {
    UnreachableSocket.opened++;
    UnreachableSocket.last = { url, protocols };
    setTimeout(() => {
      this.readyState = 3;
      this.onerror?.({});
      this.onclose?.({ code: 1006, reason: "" });
    }, 0);
  }
  send(): void {
    throw new Error("not open");
  }
  close(): void {}
}

describe("client reconnect schedule", () => {
  it("retries with bounded delays, asks for a token each time, and gives up after maxAttempts", async () => {
    let tokens = 0;
    const events: ConnectionEvent[] = [];
    const client = connect({
      url: "http://presence.invalid",
      getToken: () => `token-${++tokens}`,
      device: "d1",
      WebSocket: UnreachableSocket,
      reconnect: { initialDelayMs: 1, maxDelayMs: 8, factor: 2, jitter: 0.5, maxAttempts: 8 },
    });
    client.on("connection", (e) => events.push(e));
    await expect(client.ready(5_000)).rejects.toThrow(/gave up after 8 attempts/);
    const waits = events.filter((e) => e.state === "reconnecting" && e.delayMs !== undefined).map((e) => e.delayMs!);
    expect(waits).toHaveLength(8);
    expect(waits.every((d) => d <= 8)).toBe(true);
    expect(Math.max(...waits)).toBeGreaterThanOrEqual(4); // it did grow towards the bound
    expect(events.at(-1)?.state).toBe("closed");
    expect(client.state).toBe("closed");
    expect(tokens).toBe(9); // first connect + 8 retries
    expect(UnreachableSocket.opened).toBe(9);
    // The socket URL carries device and kind; the token goes in the subprotocol, never in the URL.
    expect(UnreachableSocket.last).toEqual({ url: "ws://presence.invalid/v1/connect?device=d1&kind=web", protocols: ["presence.v1", "bearer.token-9"] });
    await expect(client.getOnlineFriends()).rejects.toMatchObject({ code: "disconnected" });
  });
});
