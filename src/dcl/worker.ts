/**
 * The worker's part of a Decentraland connection (GET /dcl). A Decentraland
 * client names itself only in its first frame, after the upgrade, and a
 * Durable Object can only take a socket during an upgrade; so the worker
 * accepts the client's socket, runs the handshake (src/dcl/handshake.ts: the
 * auth frame, the 3004 timer, frames held while the chain is verified), and
 * then opens a WebSocket to the signer's object, which accepts it with the
 * Hibernation API (durable/dcl.ts). From then on it only pipes frames both
 * ways, in order, and passes close codes through.
 */
import type { Env } from "../env";
import { readConfig } from "../presence/config";
import { verifyAuthHeaders } from "./auth";
import { expire, handshakeFrame, handshakeVerified, startHandshake, type HandshakeState, type HandshakeStep } from "./handshake";

/** The path the object recognizes a proxied DCL socket by (the worker sets it; clients cannot reach the object directly). */
export const DCL_OBJECT_PATH = "/dcl";

/** 1005/1006 (and anything else a peer may not send) become 1000 when passed on. */
function sendableCode(code: number | undefined): number {
  return code !== undefined && (code === 1000 || (code >= 3000 && code <= 4999) || (code >= 1001 && code <= 1014 && code !== 1005 && code !== 1006)) ? code : 1000;
}

function closeQuietly(ws: WebSocket, code: number | undefined, reason: string): void {
  try {
    ws.close(sendableCode(code), reason.slice(0, 120));
  } catch {
    // Already closed.
  }
}

export async function dclUpgrade(request: Request, env: Env): Promise<Response> {
  if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
    return Response.json({ error: { code: "upgrade_required", message: "connect with a WebSocket upgrade" } }, { status: 426 });
  }
  const timeoutMs = readConfig(env).dclAuthTimeoutMs;
  const { 0: client, 1: socket } = new WebSocketPair();
  socket.accept();
  // Reading a Blob is asynchronous and could reorder frames: ask for ArrayBuffers.
  (socket as unknown as { binaryType: string }).binaryType = "arraybuffer";

  let state: HandshakeState = startHandshake(Date.now(), timeoutMs);
  /** The object's end once connected; frames for it wait in `pending` until then. */
  let upstream: WebSocket | null = null;
  const pending: Uint8Array[] = [];
  let ended = false;

  const toObject = (frames: Uint8Array[]) => {
    if (upstream) for (const frame of frames) upstream.send(frame);
    else pending.push(...frames);
  };

  const apply = (step: HandshakeStep) => {
    state = step.state;
    for (const text of step.send) socket.send(text);
    if (step.close) {
      ended = true;
      clearTimeout(timer);
      closeQuietly(socket, step.close.code, step.close.reason);
      return;
    }
    toObject(step.forward);
    if (step.verify) void verify(step.verify);
    if (state.phase === "ready" && !upstream && !connecting) void connect(state.address);
  };

  const timer = setTimeout(() => apply(expire(state, Date.now())), timeoutMs);

  const verify = async (headers: Record<string, unknown>) => {
    const result = await verifyAuthHeaders(headers);
    if (ended) return;
    if (result.ok) clearTimeout(timer);
    apply(handshakeVerified(state, result));
  };

  let connecting = false;
  const connect = async (address: string) => {
    connecting = true;
    try {
      const response = await env.USER.getByName(address).fetch(`https://presence${DCL_OBJECT_PATH}`, {
        headers: { Upgrade: "websocket" },
      });
      const ws = response.webSocket;
      if (response.status !== 101 || !ws) {
        // Refused by the object (the device limit): say why, as the JSON endpoint would.
        const reason = ((await response.json().catch(() => null)) as { error?: { code?: string } } | null)?.error?.code ?? "refused";
        ended = true;
        closeQuietly(socket, 1013, reason);
        return;
      }
      ws.accept();
      (ws as unknown as { binaryType: string }).binaryType = "arraybuffer";
      ws.addEventListener("message", (event) => {
        try {
          socket.send(event.data as string | ArrayBuffer);
        } catch {
          // The client is gone; its close reaches the object.
        }
      });
      ws.addEventListener("close", (event) => {
        ended = true;
        closeQuietly(socket, event.code, event.reason);
      });
      ws.addEventListener("error", () => closeQuietly(socket, 1011, "upstream error"));
      if (ended) {
        closeQuietly(ws, 1000, "client left");
        return;
      }
      upstream = ws;
      for (const frame of pending.splice(0)) ws.send(frame);
    } catch (error) {
      console.error("dcl: cannot reach the user's object", error);
      ended = true;
      closeQuietly(socket, 1011, "the request failed; it is safe to retry");
    }
  };

  socket.addEventListener("message", (event) => {
    if (ended) return;
    const data = event.data as string | ArrayBuffer;
    if (state.phase === "ready") {
      // Past the handshake every frame is the object's business (text included: it answers a protocol error).
      toObject([typeof data === "string" ? new TextEncoder().encode(data) : new Uint8Array(data)]);
      return;
    }
    apply(handshakeFrame(state, data, Date.now()));
  });
  socket.addEventListener("close", (event) => {
    ended = true;
    clearTimeout(timer);
    if (upstream) closeQuietly(upstream, event.code, event.reason);
    closeQuietly(socket, event.code, event.reason);
  });
  socket.addEventListener("error", () => {
    ended = true;
    clearTimeout(timer);
    if (upstream) closeQuietly(upstream, 1001, "client error");
  });

  return new Response(null, { status: 101, webSocket: client });
}
