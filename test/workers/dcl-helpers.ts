/**
 * Decentraland clients against the real worker inside workerd: the REAL
 * @dcl/rpc client (WebSocketTransport, createRpcClient, loadService) over a
 * socket from GET /dcl, identities made with @dcl/crypto and the auth frame
 * signed with decentraland-crypto-fetch (test/dcl/harness.ts).
 */
import { createRpcClient } from "@dcl/rpc";
import { loadService } from "@dcl/rpc/dist/codegen";
import { WebSocketTransport } from "@dcl/rpc/dist/transports/WebSocket";
import { ConnectivityStatus, SocialServiceDefinition } from "@dcl/protocol/out-js/decentraland/social_service/v2/social_service_v2.gen";
import { expect } from "vitest";
import { authHeaders, collect, createIdentity, until, type Identity } from "../dcl/harness";
import { worker } from "./helpers";

export { authHeaders, collect, ConnectivityStatus, createIdentity, until, type Identity };

/** A raw socket to /dcl, accepted, with its frames and close recorded. */
export async function rawDcl() {
  const res = await worker().fetch("http://presence/dcl", { headers: { Upgrade: "websocket" } });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  ws.accept();
  (ws as unknown as { binaryType: string }).binaryType = "arraybuffer";
  const frames: Array<string | ArrayBuffer> = [];
  let closed: { code: number; reason: string } | null = null;
  ws.addEventListener("message", (e) => frames.push(e.data as string | ArrayBuffer));
  ws.addEventListener("close", (e) => (closed = { code: e.code, reason: e.reason }));
  return {
    ws,
    frames,
    closed: () => closed as { code: number; reason: string } | null,
    async waitClosed(timeoutMs = 5_000) {
      await until(() => closed !== null, "the socket to close", timeoutMs);
      return closed!;
    },
  };
}

export type Service = ReturnType<typeof loadService<object, typeof SocialServiceDefinition>>;

/** A Decentraland client as the explorer connects: the auth frame, then @dcl/rpc. */
export async function dial(identity: Identity) {
  const res = await worker().fetch("http://presence/dcl", { headers: { Upgrade: "websocket" } });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  ws.accept();
  let closed: { code: number; reason: string } | null = null;
  ws.addEventListener("close", (e) => {
    closed = { code: e.code, reason: e.reason };
  });
  const transport = WebSocketTransport(ws as never);
  ws.send(JSON.stringify(authHeaders(identity)));
  const client = await createRpcClient(transport);
  const port = await client.createPort("social_service");
  const service = loadService(port, SocialServiceDefinition);
  // loadService requests the module at once and only its calls await that: a client closed
  // before the answer leaves an unhandled "RPC Transport closed". One call settles it.
  await service.getBlockingStatus({});
  return {
    ws,
    service,
    address: identity.address,
    closed: () => closed as { code: number; reason: string } | null,
    close: () => ws.close(1000, "bye"),
  };
}

export type Dcl = Awaited<ReturnType<typeof dial>>;

/** The last status a connectivity stream reported for `address`. */
export function lastStatus(items: Array<{ friend?: { address: string }; status: ConnectivityStatus }>, address: string): ConnectivityStatus | undefined {
  return items.filter((u) => u.friend?.address === address).at(-1)?.status;
}
