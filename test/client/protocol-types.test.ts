// The SDK carries its own copy of the wire types; this file stops them drifting from the server's.
// The type-level checks fail `npm run typecheck`; the runtime checks fail the test.
import { describe, expect, it } from "vitest";
import * as sdk from "../../client/src/protocol.js";
import * as server from "../../src/presence/protocol";
import type { ClientMessage as ServerClientMessage, ErrorCode } from "../../src/presence/schema";
import type { Presence as ServerPresence } from "../../src/presence/types";

// The server may grow (new messages, new codes: the SDK ignores what it does not know),
// but what the SDK understands must mean the same on both sides.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Within<A, B> = [A] extends [B] ? true : false;
const typesMatch: [
  Same<sdk.Presence, ServerPresence>,
  Within<sdk.ServerMessage, server.ServerMessage>,
  Within<sdk.ServerErrorCode, ErrorCode>,
  Within<sdk.ClientMessage["type"], ServerClientMessage["type"]>,
] = [true, true, true, true];
// Every message the SDK can send is one the server accepts.
const sendable: ServerClientMessage = {} as sdk.ClientMessage;

describe("SDK protocol copy", () => {
  it("matches the server's constants", () => {
    expect(typesMatch).toEqual([true, true, true, true]);
    expect(sendable).toBeDefined();
    expect(sdk.CloseCode).toEqual(server.CloseCode);
    expect([sdk.PROTOCOL_VERSION, sdk.PING_FRAME, sdk.PONG_FRAME]).toEqual([server.PROTOCOL_VERSION, server.PING_FRAME, server.PONG_FRAME]);
  });
});
