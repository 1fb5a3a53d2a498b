import type { RealmCount } from "../../src/protocol/index.js";
import { PROTOCOL_VERSION, TOKEN_PROTOCOL_PREFIX } from "../../src/protocol/index.js";
import { clearTimer, setTimer, type TimerHandle, type WebSocketConstructor, type WebSocketLike } from "./runtime.js";

/**
 * A live count of a realm's population (`GET /v1/realms/:realm/live`): its own
 * socket to the realm's counter, the current count at once, then batched
 * totals (at most one a second). Reconnects after an unexpected close until
 * `close()`.
 */
export class RealmSubscription {
  private socket: WebSocketLike | null = null;
  private closed = false;
  private retryTimer: TimerHandle | null = null;
  private attempt = 0;
  /** The last count received (null before the first). */
  latest: RealmCount | null = null;

  constructor(
    private readonly url: string,
    private readonly token: () => Promise<string>,
    private readonly WebSocketImpl: WebSocketConstructor,
    private readonly onCount: (count: RealmCount) => void,
    private readonly onError: (error: unknown) => void = () => undefined,
  ) {
    void this.open();
  }

  private async open(): Promise<void> {
    if (this.closed) return;
    let socket: WebSocketLike;
    try {
      socket = new this.WebSocketImpl(this.url, [PROTOCOL_VERSION, `${TOKEN_PROTOCOL_PREFIX}${await this.token()}`]);
    } catch (error) {
      this.onError(error);
      return this.retry();
    }
    this.socket = socket;
    socket.onmessage = (event) => {
      if (typeof event.data !== "string" || event.data === "pong") return;
      try {
        const frame = JSON.parse(event.data) as RealmCount;
        if (frame.type !== "realm_count") return;
        this.attempt = 0;
        this.latest = frame;
        this.onCount(frame);
      } catch (error) {
        this.onError(error);
      }
    };
    socket.onerror = (event) => this.onError(event);
    socket.onclose = () => {
      if (this.socket === socket) this.socket = null;
      this.retry();
    };
  }

  private retry(): void {
    if (this.closed) return;
    const delay = Math.min(30_000, 1_000 * 2 ** this.attempt++) * (0.5 + Math.random() / 2);
    this.retryTimer = setTimer(() => void this.open(), delay);
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer !== null) clearTimer(this.retryTimer);
    try {
      this.socket?.close(1000, "unsubscribed");
    } catch {
      // Already closing.
    }
    this.socket = null;
  }
}
