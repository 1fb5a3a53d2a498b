/**
 * Driving the real matrix-js-sdk in tests: a silent logger, a store that keeps
 * the last `next_batch` (what a persistent client store does, so a restarted
 * client resumes from its token), and waits on the SDK's own events.
 */
import {
  ClientEvent,
  createClient,
  MemoryStore,
  SyncState,
  UserEvent,
  type ICreateClientOpts,
  type ISyncResponse,
  type MatrixClient,
  type MatrixEvent,
  type User,
} from "matrix-js-sdk";
import type { MatrixHarness } from "./harness";

type Logger = NonNullable<ICreateClientOpts["logger"]>;

const silent: Logger = {
  trace() {},
  debug() {},
  info() {},
  warn() {},
  error() {},
  getChild: () => silent,
};

/** A MemoryStore that remembers the last sync token and every raw sync response, and hands the token back on restart. */
export class TokenKeepingStore extends MemoryStore {
  readonly responses: ISyncResponse[] = [];

  constructor(public nextBatch: string | null = null) {
    super();
  }

  override async setSyncData(data: ISyncResponse): Promise<void> {
    this.responses.push(data);
    this.nextBatch = data.next_batch;
  }

  override async getSavedSyncToken(): Promise<string | null> {
    return this.nextBatch;
  }

  override async getSavedSync() {
    return this.nextBatch === null ? null : { nextBatch: this.nextBatch, roomsData: { join: {}, invite: {}, leave: {}, knock: {} }, accountData: [] };
  }
}

export interface SdkClient {
  client: MatrixClient;
  store: TokenKeepingStore;
  matrixId: string;
  /** Every m.presence event this client processed, in order. */
  presenceEvents: MatrixEvent[];
  stop(): void;
}

/** createClient + startClient, resolved once the first sync has been processed. */
export async function startSdkClient(harness: MatrixHarness, userId: string, store = new TokenKeepingStore()): Promise<SdkClient> {
  const matrixId = harness.matrixId(userId);
  const client = createClient({ baseUrl: harness.baseUrl, accessToken: await harness.token(userId), userId: matrixId, store, logger: silent });
  const presenceEvents: MatrixEvent[] = [];
  client.on(ClientEvent.Event, (event) => {
    if (event.getType() === "m.presence") presenceEvents.push(event);
  });
  const ready = new Promise<void>((resolve, reject) => {
    const onSync = (state: SyncState) => {
      if (state === SyncState.Prepared || state === SyncState.Syncing) {
        client.off(ClientEvent.Sync, onSync);
        resolve();
      } else if (state === SyncState.Error) {
        client.off(ClientEvent.Sync, onSync);
        reject(new Error(`sync failed for ${matrixId}`));
      }
    };
    client.on(ClientEvent.Sync, onSync);
  });
  await client.startClient({ initialSyncLimit: 1 });
  await ready;
  return { client, store, matrixId, presenceEvents, stop: () => client.stopClient() };
}

/**
 * Resolves with the User once `check` holds for the client's view of `matrixId`,
 * re-checking on the SDK's presence events (UserEvent.Presence for a state
 * change, LastPresenceTs for any presence event: the SDK only raises Presence
 * when `presence` itself changes).
 */
export function waitForUser(client: MatrixClient, matrixId: string, check: (user: User) => boolean, timeoutMs = 5_000): Promise<User> {
  return new Promise((resolve, reject) => {
    // The SDK raises a new user's first events before it stores the User: use the one the event carries.
    const test = (_event?: MatrixEvent, fromEvent?: User) => {
      const user = fromEvent?.userId === matrixId ? fromEvent : client.getUser(matrixId);
      if (user && check(user)) {
        done();
        resolve(user);
      }
    };
    const timer = setTimeout(() => {
      done();
      const user = client.getUser(matrixId);
      reject(new Error(`${matrixId} never matched; last seen presence=${user?.presence} status=${user?.presenceStatusMsg}`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      client.off(UserEvent.Presence, test);
      client.off(UserEvent.LastPresenceTs, test);
    };
    client.on(UserEvent.Presence, test);
    client.on(UserEvent.LastPresenceTs, test);
    test();
  });
}

/** Resolves with the next UserEvent.Presence the client raises for `matrixId` (the event, and the user). */
export function nextPresenceEvent(client: MatrixClient, matrixId: string, timeoutMs = 5_000): Promise<{ event: MatrixEvent; user: User }> {
  return new Promise((resolve, reject) => {
    const listener = (event: MatrixEvent | undefined, user: User) => {
      if (user.userId !== matrixId || !event) return;
      clearTimeout(timer);
      client.off(UserEvent.Presence, listener);
      resolve({ event, user });
    };
    const timer = setTimeout(() => {
      client.off(UserEvent.Presence, listener);
      reject(new Error(`no UserEvent.Presence for ${matrixId} within ${timeoutMs} ms`));
    }, timeoutMs);
    client.on(UserEvent.Presence, listener);
  });
}

/** The m.presence events of a raw sync response, typed loosely (the SDK types them as minimal events without `sender`). */
export function presenceOf(response: ISyncResponse | undefined): { sender: string; content: Record<string, unknown> }[] {
  return (response?.presence?.events ?? []) as unknown as { sender: string; content: Record<string, unknown> }[];
}

/** Resolves once the store holds at least `count` raw sync responses from the server. */
export async function waitForResponses(store: TokenKeepingStore, count: number, timeoutMs = 5_000): Promise<ISyncResponse[]> {
  const deadline = Date.now() + timeoutMs;
  while (store.responses.length < count) {
    if (Date.now() > deadline) throw new Error(`only ${store.responses.length} of ${count} sync responses within ${timeoutMs} ms`);
    await sleep(10);
  }
  return store.responses;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
