export { connect, PresenceClient, PresenceError } from "./client.js";
export type {
  ClientErrorCode,
  ConnectionEvent,
  ConnectionState,
  ConnectOptions,
  FriendRequest,
  FriendRequestEnded,
  FriendshipResult,
  HeartbeatInput,
  OnlineFriendsPage,
  PresenceEvents,
  PresenceUpdate,
} from "./client.js";
export { RealmSubscription } from "./realm.js";
export { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from "./backoff.js";
export { FriendsState, isNewer, transition, wentOffline, type StateChange } from "./state.js";
// The whole wire vocabulary (types and constants), as the server defines it.
export * from "../../src/protocol/index.js";
export type { FetchLike, WebSocketConstructor, WebSocketLike } from "./runtime.js";
