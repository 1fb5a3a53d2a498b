/**
 * The server side of @dcl/rpc's wire protocol as a pure state machine whose
 * whole per-socket state is a small JSON value, so it can live in a
 * hibernating WebSocket's attachment. @dcl/rpc's own server keeps ports,
 * loaded modules and pending stream acks in closures and promises, which a
 * hibernated socket loses; here every step takes the state, one client frame
 * (or one batch of updates) and returns the new state, the frames to send and
 * the backend calls to make. Nothing here awaits: the caller does the calls and
 * feeds their results back (`answer`, `openingSnapshot`), re-reading the state
 * from the attachment each time, so interleaved events cannot lose a write.
 *
 * The protocol (decentraland/rpc src/protocol/index.proto): every frame is one
 * protobuf message whose field 1 is `message_identifier` = type << 27 | number.
 *   CREATE_PORT(n, name)            → CREATE_PORT_RESPONSE(n, port id)
 *   REQUEST_MODULE(n, port, name)   → REQUEST_MODULE_RESPONSE(n, port, [procedure id, name])
 *   REQUEST(n, port, procedure, payload)
 *        unary                      → RESPONSE(n, payload) or REMOTE_ERROR_RESPONSE(n, message)
 *        server stream              → STREAM_MESSAGE(n, seq 0) "offer"; then for each element the
 *                                     client acks seq k (STREAM_ACK(n, k)) and the server sends
 *                                     STREAM_MESSAGE(n, k + 1, payload); the client ends it with
 *                                     STREAM_MESSAGE(n, closed), the server with STREAM_MESSAGE(n, closed)
 *                                     or REMOTE_ERROR_RESPONSE(n)
 *   DESTROY_PORT(0, port)           → (nothing)
 * and SERVER_READY(0) once the transport is attached.
 *
 * No Cloudflare imports here. The codecs are the ones @dcl/rpc and
 * @dcl/protocol ship (no hand-written protobuf).
 */
import "./protobuf";
import {
  CreatePort,
  CreatePortResponse,
  DestroyPort,
  RemoteError,
  Request,
  RequestModule,
  RequestModuleResponse,
  Response,
  RpcMessageHeader,
  RpcMessageTypes,
  StreamMessage,
} from "@dcl/rpc/dist/protocol";
import { SocialServiceDefinition } from "@dcl/protocol/out-js/decentraland/social_service/v2/social_service_v2.gen";
import { encodeUpdate, STREAM_OF, type EncodeContext, type StreamKind, type StreamUpdate } from "./mapping";

// ─── the service ────────────────────────────────────────────────────────────

type Methods = typeof SocialServiceDefinition.methods;
export type MethodKey = keyof Methods;

/** The RPCs this endpoint answers without a stream. */
export const UNARY_METHODS = [
  "getFriends",
  "getMutualFriends",
  "getPendingFriendshipRequests",
  "getSentFriendshipRequests",
  "upsertFriendship",
  "getFriendshipStatus",
  "blockUser",
  "unblockUser",
  "getBlockedUsers",
  "getBlockingStatus",
] as const satisfies readonly MethodKey[];
export type UnaryMethod = (typeof UNARY_METHODS)[number];

/** The server streams this endpoint serves, and which updates each carries. */
export const STREAM_METHODS = {
  subscribeToFriendConnectivityUpdates: "connectivity",
  subscribeToFriendshipUpdates: "friendship",
  subscribeToBlockUpdates: "block",
} as const satisfies Partial<Record<MethodKey, StreamKind>>;

export type MethodRequest<K extends MethodKey> = ReturnType<Methods[K]["requestType"]["decode"]>;
export type MethodResponse<K extends MethodKey> = ReturnType<Methods[K]["responseType"]["decode"]>;

interface Procedure {
  id: number;
  key: MethodKey;
  name: string;
  /** What this endpoint does with it. */
  role: { type: "unary" } | { type: "stream"; kind: StreamKind } | { type: "not_implemented" };
}

/**
 * Procedure ids are positions in the service definition (1-based), which is
 * what @dcl/rpc's `registerService` produces; clients look procedures up by
 * name from REQUEST_MODULE_RESPONSE, so only consistency matters. Every
 * procedure is listed, implemented or not: the rest answer a RemoteError.
 */
export const PROCEDURES: readonly Procedure[] = (Object.keys(SocialServiceDefinition.methods) as MethodKey[]).map((key, i) => {
  const stream = (STREAM_METHODS as Partial<Record<MethodKey, StreamKind>>)[key];
  const role: Procedure["role"] = (UNARY_METHODS as readonly MethodKey[]).includes(key)
    ? { type: "unary" }
    : stream
      ? { type: "stream", kind: stream }
      : { type: "not_implemented" };
  return { id: i + 1, key, name: SocialServiceDefinition.methods[key].name, role };
});

/** Module names a client may load: `SocialService` (what @dcl/rpc's loadService and the Unity client ask for) or the full name. */
export const MODULE_NAMES: readonly string[] = [SocialServiceDefinition.name, SocialServiceDefinition.fullName];

// ─── state ──────────────────────────────────────────────────────────────────

export interface PortState {
  id: number;
  name: string;
  /** The SocialService module was requested on this port (procedures are callable). */
  loaded: boolean;
}

export interface StreamState {
  /** The request's message number: the stream's id on the wire. */
  n: number;
  port: number;
  kind: StreamKind;
  /** Sequence id of the last element sent (0: only the offer). */
  seq: number;
  /** The client acked `seq`: the next element may go. */
  credit: boolean;
  /**
   * Connectivity only, while the opening snapshot is being sent: the last
   * address sent from it ("" before the first). The snapshot goes out in
   * address order from memory (`EncodeContext.snapshot`), never from the
   * attachment, so any number of online friends fits; after hibernation it is
   * read again and resumes after this cursor. Live updates wait in `queue`
   * until it is done, and a friend with a live update waiting is skipped by it
   * (the live one is newer).
   */
  snapshot: { after: string } | null;
  /** Live elements waiting for credit (connectivity: at most one per friend). */
  queue: StreamUpdate[];
}

/** Everything the protocol needs to survive hibernation. JSON-serializable. */
export interface RpcState {
  lastPortId: number;
  ports: PortState[];
  streams: StreamState[];
}

export interface RpcLimits {
  /** Ports per socket (a client normally opens one). */
  maxPorts: number;
  /** Open streams per socket. */
  maxStreams: number;
  /**
   * Largest serialized state, in bytes (UTF-8 of its JSON). Past it, the
   * stream with the longest queue is ended with a RemoteError (the client
   * subscribes again and gets a fresh snapshot). Leaves room in the 16 KiB
   * attachment for the socket's other fields.
   */
  maxStateBytes: number;
}

export const DEFAULT_LIMITS: RpcLimits = { maxPorts: 4, maxStreams: 12, maxStateBytes: 12_288 };

export function initialRpcState(): RpcState {
  return { lastPortId: 0, ports: [], streams: [] };
}

// ─── steps ──────────────────────────────────────────────────────────────────

/** A backend call the caller must make, then feed back. */
export type Call =
  | { type: "unary"; n: number; method: UnaryMethod; request: MethodRequest<UnaryMethod> }
  /** Read the friends shown online into memory (for `EncodeContext.snapshot`), then call `snapshotReady(state, n, …)`. */
  | { type: "snapshot"; n: number };

export interface Step {
  state: RpcState;
  send: Uint8Array[];
  calls: Call[];
  /** A protocol violation: close the socket. */
  close?: { code: number; reason: string };
}

/** Close code for frames that are not @dcl/rpc messages (the stock server closes the transport too). */
export const PROTOCOL_ERROR_CLOSE = 1002;

const EMPTY = new Uint8Array(0);

function identifier(type: RpcMessageTypes, messageNumber: number): number {
  return ((type & 0xf) << 27) | (messageNumber & 0x07ffffff);
}

function splitIdentifier(value: number): [type: number, messageNumber: number] {
  return [(value >> 27) & 0xf, value & 0x07ffffff];
}

export function serverReadyFrame(): Uint8Array {
  return RpcMessageHeader.encode({ messageIdentifier: identifier(RpcMessageTypes.RpcMessageTypes_SERVER_READY, 0) }).finish();
}

export function remoteErrorFrame(messageNumber: number, errorMessage: string): Uint8Array {
  return RemoteError.encode({
    messageIdentifier: identifier(RpcMessageTypes.RpcMessageTypes_REMOTE_ERROR_RESPONSE, messageNumber),
    errorCode: 0,
    errorMessage,
  }).finish();
}

/** The RESPONSE to a unary call. */
export function answerFrame<K extends UnaryMethod>(messageNumber: number, method: K, result: MethodResponse<K>): Uint8Array {
  const def = SocialServiceDefinition.methods[method] as { responseType: { encode(message: unknown): { finish(): Uint8Array } } };
  return Response.encode({
    messageIdentifier: identifier(RpcMessageTypes.RpcMessageTypes_RESPONSE, messageNumber),
    payload: def.responseType.encode(result).finish(),
  }).finish();
}

function streamFrame(stream: StreamState, payload: Uint8Array, closed = false): Uint8Array {
  return StreamMessage.encode({
    messageIdentifier: identifier(RpcMessageTypes.RpcMessageTypes_STREAM_MESSAGE, stream.n),
    portId: stream.port,
    sequenceId: stream.seq,
    payload,
    closed,
    ack: false,
  }).finish();
}

function clone(state: RpcState): RpcState {
  return structuredClone(state);
}

function done(state: RpcState, send: Uint8Array[] = [], calls: Call[] = []): Step {
  return { state, send, calls };
}

/** One binary frame from the client. */
export function receive(previous: RpcState, frame: Uint8Array, context: EncodeContext, limits: RpcLimits = DEFAULT_LIMITS): Step {
  const state = clone(previous);
  let type: number;
  let n: number;
  try {
    [type, n] = splitIdentifier(RpcMessageHeader.decode(frame).messageIdentifier);
  } catch {
    return { ...done(state), close: { code: PROTOCOL_ERROR_CLOSE, reason: "not an @dcl/rpc frame" } };
  }
  try {
    switch (type) {
      case RpcMessageTypes.RpcMessageTypes_CREATE_PORT: {
        const { portName } = CreatePort.decode(frame);
        if (state.ports.length >= limits.maxPorts) return done(state, [remoteErrorFrame(n, `at most ${limits.maxPorts} ports per connection`)]);
        const port: PortState = { id: ++state.lastPortId, name: portName.slice(0, 64), loaded: false };
        state.ports.push(port);
        const response = CreatePortResponse.encode({ messageIdentifier: identifier(RpcMessageTypes.RpcMessageTypes_CREATE_PORT_RESPONSE, n), portId: port.id });
        return done(state, [response.finish()]);
      }
      case RpcMessageTypes.RpcMessageTypes_REQUEST_MODULE: {
        const { portId, moduleName } = RequestModule.decode(frame);
        const port = state.ports.find((p) => p.id === portId);
        if (!port) return done(state, [remoteErrorFrame(n, `Cannot find port ${portId}`)]);
        if (!MODULE_NAMES.includes(moduleName)) {
          return done(state, [remoteErrorFrame(n, `Module ${moduleName} is not available for port ${port.name} (${port.id})`)]);
        }
        port.loaded = true;
        const response = RequestModuleResponse.encode({
          messageIdentifier: identifier(RpcMessageTypes.RpcMessageTypes_REQUEST_MODULE_RESPONSE, n),
          portId: port.id,
          procedures: PROCEDURES.map((p) => ({ procedureId: p.id, procedureName: p.name })),
        });
        return done(state, [response.finish()]);
      }
      case RpcMessageTypes.RpcMessageTypes_DESTROY_PORT: {
        const { portId } = DestroyPort.decode(frame);
        state.ports = state.ports.filter((p) => p.id !== portId);
        state.streams = state.streams.filter((s) => s.port !== portId);
        return done(state);
      }
      case RpcMessageTypes.RpcMessageTypes_REQUEST:
        return request(state, n, Request.decode(frame), limits);
      case RpcMessageTypes.RpcMessageTypes_STREAM_ACK:
      case RpcMessageTypes.RpcMessageTypes_STREAM_MESSAGE: {
        const message = StreamMessage.decode(frame);
        const stream = state.streams.find((s) => s.n === n);
        if (!stream) return done(state);
        if (message.closed) {
          // The client ended the stream (its generator's return()); nothing is sent back.
          state.streams = state.streams.filter((s) => s !== stream);
          return done(state);
        }
        if (type === RpcMessageTypes.RpcMessageTypes_STREAM_ACK && message.ack && message.sequenceId === stream.seq) stream.credit = true;
        const send: Uint8Array[] = [];
        const calls: Call[] = [];
        pump(stream, context, send, calls);
        return done(state, send, calls);
      }
      default:
        return { ...done(state), close: { code: PROTOCOL_ERROR_CLOSE, reason: `unexpected @dcl/rpc message type ${type}` } };
    }
  } catch {
    // A frame whose header decoded but whose body did not.
    return { ...done(state), close: { code: PROTOCOL_ERROR_CLOSE, reason: "malformed @dcl/rpc frame" } };
  }
}

function request(state: RpcState, n: number, message: Request, limits: RpcLimits): Step {
  const port = state.ports.find((p) => p.id === message.portId);
  if (!port) return done(state, [remoteErrorFrame(n, "invalid portId")]);
  const procedure = PROCEDURES[message.procedureId - 1];
  if (!port.loaded || !procedure) return done(state, [remoteErrorFrame(n, `procedureId ${message.procedureId} is missing in ${port.name} (${port.id})`)]);
  if (message.clientStream !== 0) return done(state, [remoteErrorFrame(n, "client streams are not supported")]);
  const role = procedure.role;
  if (role.type === "not_implemented") return done(state, [remoteErrorFrame(n, `${procedure.name} is not implemented here`)]);
  let decoded: unknown;
  try {
    decoded = (SocialServiceDefinition.methods[procedure.key].requestType as { decode(input: Uint8Array): unknown }).decode(message.payload);
  } catch {
    return done(state, [remoteErrorFrame(n, `invalid ${procedure.name} payload`)]);
  }
  if (role.type === "unary") {
    return done(state, [], [{ type: "unary", n, method: procedure.key as UnaryMethod, request: decoded as MethodRequest<UnaryMethod> }]);
  }
  if (state.streams.length >= limits.maxStreams) return done(state, [remoteErrorFrame(n, `at most ${limits.maxStreams} open streams per connection`)]);
  // The stream is registered before its snapshot is read: from now on live
  // updates queue behind the snapshot instead of being lost.
  const snapshot = role.kind === "connectivity" ? { after: "" } : null;
  const stream: StreamState = { n, port: port.id, kind: role.kind, seq: 0, credit: false, snapshot, queue: [] };
  state.streams = state.streams.filter((s) => s.n !== n);
  state.streams.push(stream);
  // The offer: the client acks seq 0 when it wants the first element. The
  // snapshot is read meanwhile.
  return done(state, [streamFrame(stream, EMPTY)], snapshot ? [{ type: "snapshot", n }] : []);
}

/**
 * Sends the next element if the client has acked the previous one: the
 * opening snapshot first (from memory; asks for it to be read if it is not
 * there), then the live queue.
 */
function pump(stream: StreamState, context: EncodeContext, send: Uint8Array[], calls: Call[]): void {
  if (!stream.credit) return;
  let next: StreamUpdate | undefined;
  if (stream.snapshot) {
    const snapshot = context.snapshot?.(stream.n);
    if (!snapshot) {
      calls.push({ type: "snapshot", n: stream.n });
      return;
    }
    const after = stream.snapshot.after;
    const waiting = new Set(stream.queue.map((u) => u.a));
    next = snapshot.find((u) => u.a > after && !waiting.has(u.a));
    if (next) stream.snapshot.after = next.a;
    else stream.snapshot = null;
  }
  next ??= stream.queue.shift();
  if (!next) return;
  stream.seq++;
  stream.credit = false;
  send.push(streamFrame(stream, encodeUpdate(next, context)));
}

/**
 * Queues one element. Connectivity keeps at most one element per friend (the
 * latest: only the final status matters), and never lets an older presence
 * (lower seq) replace a newer one.
 */
function enqueue(queue: StreamUpdate[], update: StreamUpdate): void {
  if (update.k !== "c") {
    queue.push(update);
    return;
  }
  const i = queue.findIndex((q) => q.k === "c" && q.a === update.a);
  if (i < 0) {
    queue.push(update);
    return;
  }
  const queued = queue[i] as Extract<StreamUpdate, { k: "c" }>;
  if (queued.q !== undefined && update.q !== undefined && update.q < queued.q) return;
  queue[i] = update;
}

/** Live updates for every open stream of their kind. */
export function push(previous: RpcState, updates: StreamUpdate[], context: EncodeContext, limits: RpcLimits = DEFAULT_LIMITS): Step {
  const state = clone(previous);
  const send: Uint8Array[] = [];
  const calls: Call[] = [];
  for (const update of updates) {
    for (const stream of state.streams) if (stream.kind === STREAM_OF[update.k]) enqueue(stream.queue, update);
  }
  for (const stream of state.streams) pump(stream, context, send, calls);
  return enforceBudget(state, send, calls, limits);
}

/** The snapshot of stream `n` is now in memory (`EncodeContext.snapshot`): send from it if the client is waiting. */
export function snapshotReady(previous: RpcState, n: number, context: EncodeContext): Step {
  const state = clone(previous);
  const stream = state.streams.find((s) => s.n === n);
  const send: Uint8Array[] = [];
  const calls: Call[] = [];
  if (stream?.snapshot && context.snapshot?.(n)) pump(stream, context, send, calls);
  return done(state, send, calls);
}

/** Bytes of the state as JSON (what the attachment will hold, roughly). */
export function stateBytes(state: unknown): number {
  return new TextEncoder().encode(JSON.stringify(state)).length;
}

function enforceBudget(state: RpcState, send: Uint8Array[], calls: Call[], limits: RpcLimits): Step {
  while (state.streams.length > 0 && stateBytes(state) > limits.maxStateBytes) {
    const longest = state.streams.reduce((a, b) => (b.queue.length > a.queue.length ? b : a));
    state.streams = state.streams.filter((s) => s !== longest);
    send.push(remoteErrorFrame(longest.n, "too many updates waiting for acknowledgement; subscribe again"));
  }
  const open = new Set(state.streams.map((s) => s.n));
  return done(
    state,
    send,
    calls.filter((c) => c.type !== "snapshot" || open.has(c.n)),
  );
}
