/**
 * What the workerd tests' `Client` and the end-to-end tests' `Peer` share: a
 * queue of parsed frames from one socket, and waiting for the frame you expect.
 */
export abstract class FrameClient {
  readonly frames: any[] = [];
  closed: { code: number; reason: string } | null = null;
  private waiters: Array<() => void> = [];

  abstract send(message: unknown): void;

  protected received(frame: unknown) {
    this.frames.push(frame);
    this.wake();
  }

  protected ended(code: number, reason: string) {
    this.closed = { code, reason };
    this.wake();
  }

  private wake() {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** Waits for (and removes) the first frame matching `predicate`. */
  async next(predicate: (frame: any) => boolean = () => true, timeoutMs = 5_000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.frames.findIndex(predicate);
      if (index >= 0) return this.frames.splice(index, 1)[0];
      if (this.closed) throw new Error(`socket closed (${this.closed.code}) before a matching frame; have ${JSON.stringify(this.frames)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching frame within ${timeoutMs} ms; have ${JSON.stringify(this.frames)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Sends a request with a fresh id and waits for the reply (or error) that echoes it. */
  async request(message: Record<string, unknown>): Promise<any> {
    const id = `r${Math.random().toString(36).slice(2)}`;
    this.send({ ...message, id });
    return this.next((f) => f.id === id);
  }

  heartbeat(fields: Record<string, unknown> = {}) {
    return this.request({ type: "PositionHeartbeat", position: { x: 0, y: 0, z: 0 }, realm: "lobby", status: "online", ...fields });
  }

  /** The next `presence` push about `userId` that matches `predicate`. */
  async presenceOf(userId: string, predicate: (p: any) => boolean = () => true, timeoutMs?: number): Promise<any> {
    const frame = await this.next((f) => f.type === "presence" && f.presence.userId === userId && predicate(f.presence), timeoutMs);
    return frame.presence;
  }
}
