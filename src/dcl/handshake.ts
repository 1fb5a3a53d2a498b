/**
 * The opening of a Decentraland connection, before the user is known: the
 * first frame must be the signed auth headers (text, or the same JSON as a
 * binary frame, which is what @dcl/rpc-based clients send); until it is
 * verified nothing reaches the user's object. This is a pure state machine,
 * run by whoever holds the socket before the user is known (the worker:
 * the user's Durable Object can only be chosen after this succeeds).
 *
 *   awaiting  ──auth frame──▶  verifying ──ok──▶ ready (forward held RPC frames)
 *      │                          │
 *      │ RPC frame: error text     ├─ RPC frames: held, in order (the client pipelines
 *      │                          │   CREATE_PORT right behind the auth frame)
 *      │ deadline: close 3004     ├─ another auth frame: error text (as the real service)
 *                                 └─ bad chain: close 3003
 *
 * No Cloudflare imports here.
 */
import { AUTH_FAILED_CLOSE, AUTH_TIMEOUT_CLOSE, parseAuthFrame, type AuthResult } from "./auth";

export const DEFAULT_AUTH_TIMEOUT_MS = 30_000;
/** The largest auth frame read (a chain of a few links is ~1 KB). */
export const MAX_AUTH_FRAME_BYTES = 16_384;
/** RPC frames held while the chain is verified. */
export const MAX_HELD_FRAMES = 16;
export const MAX_HELD_BYTES = 16_384;

export const NOT_AUTHENTICATED_ERROR = JSON.stringify({ error: "Not authenticated: the first frame must be the signed auth headers" });
export const AUTH_IN_PROGRESS_ERROR = JSON.stringify({ error: "Authentication already in progress, please try again later" });
export const TOO_MANY_FRAMES_ERROR = JSON.stringify({ error: "Too many frames before authentication completed" });

export type HandshakeState =
  | { phase: "awaiting"; deadline: number }
  | { phase: "verifying"; deadline: number; held: Uint8Array[] }
  | { phase: "ready"; address: string }
  | { phase: "closed" };

export interface HandshakeStep {
  state: HandshakeState;
  /** Frames for the client (error notices, as JSON text). */
  send: string[];
  /** Verify these headers, then call `verified`. */
  verify?: Record<string, unknown>;
  /** Frames for the user's object, in order (after `ready`). */
  forward: Uint8Array[];
  close?: { code: number; reason: string };
}

export function startHandshake(now: number, timeoutMs = DEFAULT_AUTH_TIMEOUT_MS): HandshakeState {
  return { phase: "awaiting", deadline: now + timeoutMs };
}

const step = (state: HandshakeState, extra: Partial<HandshakeStep> = {}): HandshakeStep => ({ state, send: [], forward: [], ...extra });

function bytesOf(frame: string | ArrayBuffer | ArrayBufferView): Uint8Array | string {
  if (typeof frame === "string") return frame;
  if (frame instanceof ArrayBuffer) return new Uint8Array(frame);
  return new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength);
}

/** A JSON object (possibly sent as binary) rather than an RPC frame, which always starts with 0x0d (field 1, fixed32). */
function looksLikeAuth(frame: string | Uint8Array): boolean {
  if (typeof frame === "string") return true;
  for (const byte of frame) {
    if (byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d) continue;
    return byte === 0x7b; // "{"
  }
  return false;
}

/** One frame from the client (a Blob must be read into an ArrayBuffer first). */
export function handshakeFrame(state: HandshakeState, input: string | ArrayBuffer | ArrayBufferView, now: number): HandshakeStep {
  const frame = bytesOf(input);
  switch (state.phase) {
    case "closed":
    case "ready":
      // After `ready` frames go straight to the user's object; nothing to do here.
      return step(state, typeof frame === "string" ? {} : { forward: [frame] });
    case "awaiting": {
      if (now >= state.deadline) return expire(state, now);
      if (!looksLikeAuth(frame)) return step(state, { send: [NOT_AUTHENTICATED_ERROR] });
      const tooLarge = (typeof frame === "string" ? frame.length : frame.byteLength) > MAX_AUTH_FRAME_BYTES;
      const headers = tooLarge ? null : parseAuthFrame(frame);
      if (!headers) return step({ phase: "closed" }, { close: { code: AUTH_FAILED_CLOSE, reason: "Unauthorized" } });
      return step({ phase: "verifying", deadline: state.deadline, held: [] }, { verify: headers });
    }
    case "verifying": {
      if (looksLikeAuth(frame)) return step(state, { send: [AUTH_IN_PROGRESS_ERROR] });
      const bytes = frame as Uint8Array;
      const heldBytes = state.held.reduce((sum, f) => sum + f.byteLength, 0);
      if (state.held.length >= MAX_HELD_FRAMES || heldBytes + bytes.byteLength > MAX_HELD_BYTES) return step(state, { send: [TOO_MANY_FRAMES_ERROR] });
      return step({ ...state, held: [...state.held, new Uint8Array(bytes)] }); // a copy: the caller may reuse its buffer
    }
  }
}

/** The verification finished. */
export function handshakeVerified(state: HandshakeState, result: AuthResult): HandshakeStep {
  if (state.phase !== "verifying") return step(state);
  if (!result.ok) return step({ phase: "closed" }, { close: { code: result.closeCode, reason: "Unauthorized" } });
  return step({ phase: "ready", address: result.address }, { forward: state.held });
}

/** Call at the deadline (a timer in the worker; the real service's default is 5 minutes). */
export function expire(state: HandshakeState, now: number): HandshakeStep {
  if ((state.phase === "awaiting" || state.phase === "verifying") && now >= state.deadline) {
    return step({ phase: "closed" }, { close: { code: AUTH_TIMEOUT_CLOSE, reason: "Authorization timeout" } });
  }
  return step(state);
}
