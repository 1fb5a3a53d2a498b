/**
 * The few host APIs the SDK uses, typed here so it compiles without DOM or
 * Node type libraries and runs unchanged in browsers, Node, Deno, Bun and
 * Workers.
 */

/** The subset of the WHATWG WebSocket (and of the `ws` package) the SDK needs. */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol?: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string; wasClean?: boolean }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface FetchResponseLike {
  ok: boolean;
  status: number;
  json(): Promise<unknown>;
}
export type FetchLike = (url: string, init?: { method?: string; headers?: Record<string, string>; body?: string }) => Promise<FetchResponseLike>;

export type TimerHandle = unknown;

interface Host {
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  queueMicrotask?(callback: () => void): void;
  fetch?: FetchLike;
  WebSocket?: WebSocketConstructor;
  crypto?: { randomUUID?(): string };
}

const host = globalThis as unknown as Host;

export const setTimer = (callback: () => void, ms: number): TimerHandle => host.setTimeout(callback, ms);
export const clearTimer = (handle: TimerHandle | null | undefined): void => {
  if (handle !== null && handle !== undefined) host.clearTimeout(handle);
};
export const defer = (callback: () => void): void => {
  if (host.queueMicrotask) host.queueMicrotask(callback);
  else void Promise.resolve().then(callback);
};
export const globalFetch = (): FetchLike | undefined => host.fetch?.bind(globalThis) as FetchLike | undefined;
export const globalWebSocket = (): WebSocketConstructor | undefined => host.WebSocket;

export function randomId(): string {
  const uuid = host.crypto?.randomUUID?.();
  if (uuid) return uuid;
  return Math.random().toString(36).slice(2) + Date.now().toString(36);
}

export const OPEN = 1;

/** The WHATWG URL subset used to build endpoints. */
export interface URLLike {
  protocol: string;
  pathname: string;
  search: string;
  readonly searchParams: { set(name: string, value: string): void };
  toString(): string;
}
export const makeURL = (href: string): URLLike => new (globalThis as unknown as { URL: new (href: string) => URLLike }).URL(href);
