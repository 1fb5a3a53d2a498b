import type { MintOptions } from "../../src/dev-token.d.mts";

export interface DevServerOptions {
  /** Var overrides on top of the dev secrets (.dev.vars or its example) and DEV_MODE=1. */
  vars?: Record<string, string>;
  /** Wrangler configs run in one process (`-c a -c b`; the first is served at `url`). Default: wrangler.toml alone. */
  configs?: string[];
  /** Where to claim a port: [first, first + count); the inspector gets port + count. Default 8800, 10 (tests). */
  ports?: { first: number; count: number };
  /** Where the fresh --persist-to directory is made. Default the OS temp dir. */
  persistRoot?: string;
  /** The tree to run. Default this repository. */
  cwd?: string;
  /** Extra environment for wrangler. */
  env?: Record<string, string>;
  /** Also append wrangler's output to this file. */
  logFile?: string;
  /** How long to wait for /health. Default 60 s. */
  readyTimeoutMs?: number;
}

export interface DevServer {
  readonly url: string;
  readonly port: number;
  readonly persistDir: string;
  /** The vars the worker runs with (secrets included). */
  readonly vars: Record<string, string>;
  /** Start again on the same port and storage (after kill). */
  start(): Promise<void>;
  /** Ends wrangler and workerd and keeps the storage: SIGKILL (default) is a crash as clients see it, SIGTERM a clean stop. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** kill() then start(). */
  restart(): Promise<void>;
  /** Stops for good: clean stop, port released, storage removed. */
  stop(): Promise<void>;
  /** The wrangler process (its process group holds workerd), while running. */
  pid(): number | undefined;
  /** Everything wrangler printed, for failure messages. */
  output(): string;
  /** A token for `userId`, signed with this server's JWT_SECRET (and its issuer/audience). */
  token(userId: string, options?: Partial<MintOptions>): Promise<string>;
  /** One call to /v1/admin/<path>. */
  admin(method: string, path: string, body: unknown): Promise<Response>;
  /** Friends now (throws unless 2xx). */
  befriend(a: string, b: string): Promise<void>;
  unfriend(a: string, b: string): Promise<void>;
}

export interface ProcessOptions {
  command: string;
  args: string[];
  /** Default: this repository. */
  cwd?: string;
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** Also append the output to this file. */
  logFile?: string;
  /** Ready when this answers 2xx; without it, started is ready. */
  readyUrl?: string;
  /** Default 60 s. */
  readyTimeoutMs?: number;
}

export interface RunningProcess {
  /** The process; its process group holds everything it started. */
  readonly pid: number;
  output(): string;
  /** Signals the group (SIGTERM by default), SIGKILL after 10 s, and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts a server in its own process group and waits until it is ready. */
export function startProcess(options: ProcessOptions): Promise<RunningProcess>;

/** Claims a free port in [first, first + count) (and port + count with `inspector`) with a lock file. */
export function claimPort(range: { first: number; count: number }, options?: { inspector?: boolean }): Promise<{ port: number; release: () => void }>;
export function portIsFree(port: number): Promise<boolean>;
export function startDevServer(options?: DevServerOptions): Promise<DevServer>;
