/**
 * The MatrixBackend of the real service: each call goes to the caller's own
 * UserPresence object (`env.USER.getByName(self)`), whose Matrix part
 * (durable/matrix.ts) does the work. A long poll is parked on the object as a
 * hibernatable WebSocket, so the object may sleep while a client waits: the
 * object answers at once if its mark moved, or sends `wake` (and closes) on
 * the next change Matrix can see; the worker lets go on its own timer or when
 * the client leaves.
 */
import type { Env } from "../env";
import { MATRIX_WAIT_HEADER } from "../../durable/matrix";
import type { MatrixBackend, MatrixSyncResult, RateLimited } from "./backend";
import type { Presence } from "../presence/types";
import { rateLimited } from "./errors";

export function objectBackend(env: Env): MatrixBackend {
  const object = (self: string) => env.USER.getByName(self);
  return {
    presence: async (self, target) => {
      const found = (await object(self).matrixPresence(target)) as Presence | null | RateLimited;
      // The object's request budget (issue #12) answers M_LIMIT_EXCEEDED like the other Matrix routes.
      if (found && "code" in found) throw rateLimited(found.retryAfterMs);
      return found;
    },
    setPresence: async (self, state, statusMsg) => (await object(self).matrixSetPresence(state, statusMsg)) as { ok: true } | RateLimited,
    sync: async (self, request) => (await object(self).matrixSync(request)) as MatrixSyncResult | RateLimited,
    waitForChange: (self, mark, timeoutMs, signal) => park(object(self), mark, timeoutMs, signal),
  };
}

async function park(object: ReturnType<Env["USER"]["getByName"]>, mark: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  if (timeoutMs <= 0 || signal?.aborted) return;
  const response = await object.fetch("https://user.internal/matrix/wait", { headers: { Upgrade: "websocket", [MATRIX_WAIT_HEADER]: mark } });
  const ws = response.webSocket;
  // No socket: something changed since the mark; evaluate again now.
  if (!ws) return;
  ws.accept();
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    signal?.addEventListener("abort", done);
    ws.addEventListener("message", done);
    ws.addEventListener("close", done);
    ws.addEventListener("error", done);
  });
  try {
    ws.close(1000, "done");
  } catch {
    // Closed by the object already.
  }
}
