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
  PresenceEvents,
  PresenceUpdate,
} from "./client.js";
export { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from "./backoff.js";
export { FriendsState, isNewer, transition, wentOffline, type StateChange } from "./state.js";
export {
  CloseCode,
  isShownOnline,
  PROTOCOL_VERSION,
  type ClientMessage,
  type DeviceKind,
  type DeviceStatus,
  type FriendList,
  type FriendshipState,
  type Position,
  type Presence,
  type PublicDevice,
  type PublicStatus,
  type ServerMessage,
} from "../../src/protocol/index.js";
export type { FetchLike, WebSocketConstructor, WebSocketLike } from "./runtime.js";
