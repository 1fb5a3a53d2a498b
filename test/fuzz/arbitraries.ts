/**
 * fast-check generators for everything a client can send, shared by the pure
 * fuzz suites (test/fuzz, plain Node) and the workerd ones
 * (test/workers/hardening-*.test.ts). No Cloudflare imports here.
 *
 * Frames come labelled with what the server must answer, derived from
 * docs/PROTOCOL.md (not from parseClientFrame), so the suites check the parser
 * against the documentation instead of against itself.
 */
import fc from "fast-check";
import type { ErrorCode } from "../../src/presence/schema";

/** Codes the parser itself answers with (docs/PROTOCOL.md, Errors). */
export const PARSE_ERROR_CODES: readonly ErrorCode[] = ["bad_json", "binary_not_supported", "frame_too_large", "unknown_type", "invalid_message"];
/** Codes a friendship frame may be refused with (docs/PROTOCOL.md, Friendships). */
const FRIENDSHIP_ERROR_CODES: ErrorCode[] = [
  "user_not_found",
  "already_friends",
  "blocked",
  "no_pending_request",
  "not_friends",
  "not_blocked",
  "cannot_befriend_self",
  "friend_limit",
  "request_limit",
  "block_limit",
];

/** Every error code a frame may get back. */
export const FRAME_ERROR_CODES: readonly ErrorCode[] = [...PARSE_ERROR_CODES, "rate_limited", "not_found", "internal", ...FRIENDSHIP_ERROR_CODES];

/** Every client → server type (src/presence/schema.ts). */
export const MESSAGE_TYPES = [
  "PositionHeartbeat",
  "GetOnlineFriends",
  "SubscribeFriendshipPresenceUpdates",
  "UnsubscribeFriendshipPresenceUpdates",
  "GetPresence",
  "SendFriendRequest",
  "CancelFriendRequest",
  "AcceptFriendRequest",
  "RejectFriendRequest",
  "RemoveFriend",
  "BlockUser",
  "UnblockUser",
  "ListFriends",
  "SetPrivacy",
  "HidePresence",
] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];
export const FRIENDSHIP_TYPES = ["SendFriendRequest", "CancelFriendRequest", "AcceptFriendRequest", "RejectFriendRequest", "RemoveFriend", "BlockUser", "UnblockUser"] as const;

/** The reply type each valid request gets, and the error codes it may get instead. */
export const REPLIES: Record<MessageType, { type: string; errors: ErrorCode[] }> = {
  PositionHeartbeat: { type: "heartbeat_ack", errors: [] },
  GetOnlineFriends: { type: "online_friends", errors: [] },
  SubscribeFriendshipPresenceUpdates: { type: "subscribed", errors: [] },
  UnsubscribeFriendshipPresenceUpdates: { type: "unsubscribed", errors: [] },
  GetPresence: { type: "presence_result", errors: ["not_found"] },
  ...(Object.fromEntries(FRIENDSHIP_TYPES.map((t) => [t, { type: "friendship", errors: FRIENDSHIP_ERROR_CODES }])) as Record<
    (typeof FRIENDSHIP_TYPES)[number],
    { type: string; errors: ErrorCode[] }
  >),
  ListFriends: { type: "friends_list", errors: [] },
  SetPrivacy: { type: "friends_list", errors: [] },
  HidePresence: { type: "friends_list", errors: ["not_found"] },
};

/**
 * Budget: the variable `name` (FUZZ_RUNS for pure suites, FUZZ_SESSIONS for live
 * sockets) overrides the small CI default; `npm run test:fuzz` sets large ones.
 */
export function fuzzRuns(fallback: number, vars: Record<string, unknown> = typeof process !== "undefined" ? process.env : {}, name = "FUZZ_RUNS"): number {
  const value = Number(vars[name]);
  return Number.isFinite(value) && value > 0 ? Math.floor(value) : fallback;
}

/** A frame and what the protocol says must come back. */
export interface LabelledFrame {
  label: string;
  frame: string | Uint8Array;
  /** "ok": a reply of the request's type; an error code; "any": any documented outcome. */
  expect: "ok" | ErrorCode | "any";
}

// ─── unicode edge cases ──────────────────────────────────────────────────────

/** Printable text that must be accepted: astral planes, combining marks, RTL, ZWJ emoji, BOM, NBSP. */
export const printableEdge = fc.constantFrom(
  "lobby",
  "😀",
  "👩‍👩‍👧‍👦",
  "e\u0301\u0301\u0301",
  "\u202Eevil",
  "\uFEFF",
  "\u00A0",
  "日本語",
  "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
  "\u2028\u2029",
  "﷽",
  "\uDBFF\uDFFF",
);

/** Text the protocol refuses in realm/statusText: control characters and lone surrogates. */
export const unprintable = fc.constantFrom("\u0000", "a\u0007b", "\n", "\t", "\u001f", "\u007f", "\uD800", "x\uDC00", "\uDBFF");

/** 1..max code points of printable text (grapheme units never contain controls or lone surrogates by themselves). */
export function printableText(max: number) {
  return fc
    .oneof(fc.string({ unit: "grapheme", minLength: 1, maxLength: max }), fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: max }), printableEdge)
    .filter((s) => s.length > 0 && [...s].length <= max && !/[\u0000-\u001f\u007f]/.test(s) && s.isWellFormed());
}

// ─── valid messages ──────────────────────────────────────────────────────────

export const requestId = fc.oneof(fc.string({ maxLength: 64 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));
const maybeId = fc.option(requestId, { nil: undefined, freq: 3 });

const coordinate = fc.oneof(
  fc.double({ min: -1e9, max: 1e9, noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, -0, 1e9, -1e9, 5e-324, -5e-324),
  fc.integer({ min: -1e9, max: 1e9 }),
);
export const position = fc.record({ x: coordinate, y: coordinate, z: coordinate });
export const deviceStatus = fc.constantFrom("online", "away", "busy", "invisible");

/** Longest "clear after" duration (docs/PROTOCOL.md: `expiresInMs` 1 ms – 366 days). */
const MAX_EXPIRY_MS = 366 * 86_400_000;
/** "Clear after": none, a time (`expiresAt`, past, near or far; or `null`) or a duration (`expiresInMs`), never both. */
export const heartbeatDeadline = fc.oneof(
  { arbitrary: fc.constant({}), weight: 2 },
  {
    arbitrary: fc.record({
      expiresAt: fc.oneof(
        fc.constant(null),
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.integer({ min: -120_000, max: 3_600_000 }).map((d) => Math.max(0, Date.now() + d)),
        fc.constantFrom(0, Number.MAX_SAFE_INTEGER),
      ),
    }),
    weight: 1,
  },
  { arbitrary: fc.record({ expiresInMs: fc.oneof(fc.integer({ min: 1, max: MAX_EXPIRY_MS }), fc.constantFrom(1, MAX_EXPIRY_MS)) }), weight: 1 },
);

/**
 * Deadlines that cannot pass during a fuzz session (an hour or more ahead, or
 * `null`): the default for whole frames, so the live-session fuzz
 * (test/workers/hardening-fuzz.test.ts), whose model of the user's presence
 * knows nothing of expiry, still holds. `deadlines: "any"` adds past ones and
 * 1 ms durations (the schema fuzz, where no state follows).
 */
export const laterDeadline = fc.oneof(
  { arbitrary: fc.constant({}), weight: 2 },
  { arbitrary: fc.constant({ expiresAt: null }), weight: 1 },
  { arbitrary: fc.integer({ min: 3_600_000, max: MAX_EXPIRY_MS }).map((d) => ({ expiresAt: Date.now() + d })), weight: 1 },
  { arbitrary: fc.integer({ min: 3_600_000, max: MAX_EXPIRY_MS }).map((expiresInMs) => ({ expiresInMs })), weight: 1 },
);

function heartbeatBodyWith(deadline: fc.Arbitrary<Record<string, unknown>>) {
  return fc
    .tuple(
      fc.record(
        {
          position,
          realm: printableText(64),
          status: deviceStatus,
          statusText: fc.oneof(fc.constant(null), printableText(140)),
        },
        { requiredKeys: ["position", "realm", "status"] },
      ),
      deadline,
    )
    .map(([body, extra]): Record<string, unknown> => ({ ...body, ...extra }));
}

/** A valid heartbeat body, with any deadline or none. */
export const heartbeatBody = heartbeatBodyWith(heartbeatDeadline);

/** A valid user id: the allowed characters, except `.` and `..`, which cannot be addressed over HTTP (#12). */
const anyUserId = fc.stringMatching(/^[A-Za-z0-9_.@:-]{1,128}$/).filter((id) => id !== "." && id !== "..");

export interface Targets {
  /** Heartbeat deadlines ("clear after") in valid frames: only ones that cannot pass in a session (default), or any. */
  deadlines?: "later" | "any";
  /** Whom GetPresence asks about. */
  lookups?: fc.Arbitrary<string>;
  /** Whom friendship operations and HidePresence name. */
  others?: fc.Arbitrary<string>;
}

export function validMessage({ lookups = anyUserId, others = anyUserId, deadlines = "later" }: Targets = {}) {
  const heartbeat = deadlines === "any" ? heartbeatBody : heartbeatBodyWith(laterDeadline);
  return fc.oneof(
    fc.tuple(heartbeat, maybeId).map(([body, id]) => withId({ type: "PositionHeartbeat", ...body }, id)),
    fc
      .tuple(fc.constantFrom("GetOnlineFriends", "SubscribeFriendshipPresenceUpdates", "UnsubscribeFriendshipPresenceUpdates", "ListFriends"), maybeId)
      .map(([type, id]) => withId({ type }, id)),
    fc.tuple(lookups, maybeId).map(([userId, id]) => withId({ type: "GetPresence", userId }, id)),
    fc.tuple(fc.constantFrom(...FRIENDSHIP_TYPES.filter((t) => t !== "SendFriendRequest")), others, maybeId).map(([type, userId, id]) => withId({ type, userId }, id)),
    fc
      .tuple(others, fc.option(fc.oneof(fc.constant(null), printableText(280)), { nil: undefined }), maybeId)
      .map(([userId, message, id]) => withId(message === undefined ? { type: "SendFriendRequest", userId } : { type: "SendFriendRequest", userId, message }, id)),
    fc.tuple(fc.constantFrom("all", "none"), maybeId).map(([shareLocation, id]) => withId({ type: "SetPrivacy", shareLocation }, id)),
    fc.tuple(others, fc.boolean(), maybeId).map(([userId, hidden, id]) => withId({ type: "HidePresence", userId, hidden }, id)),
    fc.tuple(fc.constantFrom("all", "chosen", "none"), maybeId).map(([lastSeen, id]) => withId({ type: "SetPrivacy", lastSeen }, id)),
    fc.tuple(others, fc.boolean(), maybeId).map(([userId, lastSeen, id]) => withId({ type: "HidePresence", userId, lastSeen }, id)),
  );
}

function withId<T extends Record<string, unknown>>(message: T, id: unknown): T {
  return id === undefined ? message : { ...message, id };
}

// ─── invalid messages, each with the code the protocol promises ─────────────

/** Replaces the heartbeat's deadline (whichever it had) with `fields`. */
function withDeadline(fields: Record<string, unknown>) {
  return (m: Record<string, any>) => {
    delete m.expiresAt;
    delete m.expiresInMs;
    Object.assign(m, fields);
  };
}

/** A valid heartbeat with exactly one field broken: always `invalid_message`. */
const brokenHeartbeat = fc
  .tuple(
    heartbeatBody,
    fc.constantFrom<[string, (m: Record<string, any>, junk: string) => void]>(
      ["position is a string", (m) => (m.position = "here")],
      ["position is an array", (m) => (m.position = [1, 2, 3])],
      ["position missing", (m) => delete m.position],
      ["coordinate is a string", (m) => (m.position = { ...m.position, x: "1" })],
      ["coordinate out of range", (m) => (m.position = { ...m.position, y: 1e9 + 1 })],
      ["coordinate null (NaN/Infinity serialise to null)", (m) => (m.position = { ...m.position, z: null })],
      ["coordinate missing", (m) => (m.position = { x: 0, y: 0 })],
      ["realm missing", (m) => delete m.realm],
      ["realm empty", (m) => (m.realm = "")],
      ["realm too long", (m) => (m.realm = "r".repeat(65))],
      ["realm 65 astral characters", (m) => (m.realm = "😀".repeat(65))],
      ["realm has a control/lone surrogate", (m, junk) => (m.realm = `${m.realm}${junk}`)],
      ["realm is a number", (m) => (m.realm = 42)],
      ["status unknown", (m) => (m.status = "offline")],
      ["status wrong case", (m) => (m.status = "Online")],
      ["status missing", (m) => delete m.status],
      ["statusText too long", (m) => (m.statusText = "x".repeat(141))],
      ["statusText has a control/lone surrogate", (m, junk) => (m.statusText = `ok${junk}`)],
      ["statusText is an object", (m) => (m.statusText = { text: "hi" })],
      ["expiresInMs is zero", withDeadline({ expiresInMs: 0 })],
      ["expiresInMs is negative", withDeadline({ expiresInMs: -5 })],
      ["expiresInMs over 366 days", withDeadline({ expiresInMs: MAX_EXPIRY_MS + 1 })],
      ["expiresInMs is a float", withDeadline({ expiresInMs: 1.5 })],
      ["expiresInMs is null", withDeadline({ expiresInMs: null })],
      ["expiresAt is negative", withDeadline({ expiresAt: -1 })],
      ["expiresAt is a string", withDeadline({ expiresAt: "soon" })],
      ["expiresAt beyond safe integers", withDeadline({ expiresAt: Number.MAX_SAFE_INTEGER + 2 })],
      ["expiresAt and expiresInMs both", withDeadline({ expiresAt: Date.now() + 60_000, expiresInMs: 60_000 })],
      ["id is negative", (m) => (m.id = -1)],
      ["id is a float", (m) => (m.id = 1.5)],
      ["id too long", (m) => (m.id = "i".repeat(65))],
      ["id is an object", (m) => (m.id = { evil: true })],
    ),
    unprintable,
  )
  .map(([body, [label, mutate], junk]): LabelledFrame => {
    const message: Record<string, any> = { type: "PositionHeartbeat", ...body };
    mutate(message, junk);
    return { label: `heartbeat: ${label}`, frame: JSON.stringify(message), expect: "invalid_message" };
  });

const badUserId = fc.oneof(
  fc.constant(undefined),
  fc.constant(""),
  fc.constant("../bob"),
  fc.constant("."),
  fc.constant(".."),
  fc.constant("a/b"),
  fc.constant("a b"),
  fc.constant("x".repeat(129)),
  fc.integer(),
  unprintable,
  fc.string().filter((s) => !/^[A-Za-z0-9_.@:-]{1,128}$/.test(s)),
);

/** Messages naming a user, with the user id (or another field) broken: always `invalid_message`. */
const brokenTargeted = fc.oneof(
  fc
    .tuple(fc.constantFrom("GetPresence", "HidePresence", ...FRIENDSHIP_TYPES), badUserId)
    .map(([type, userId]): LabelledFrame => ({ label: `${type}: bad userId`, frame: JSON.stringify({ type, userId, hidden: true }), expect: "invalid_message" })),
  fc
    .constantFrom<[string, Record<string, unknown>]>(
      ["SendFriendRequest: message too long", { type: "SendFriendRequest", userId: "bob", message: "m".repeat(281) }],
      ["SendFriendRequest: message with a control", { type: "SendFriendRequest", userId: "bob", message: "hi\u0000" }],
      ["SendFriendRequest: message is a number", { type: "SendFriendRequest", userId: "bob", message: 5 }],
      ["SetPrivacy: unknown value", { type: "SetPrivacy", shareLocation: "friends" }],
      ["SetPrivacy: missing value", { type: "SetPrivacy" }],
      ["HidePresence: hidden is a string", { type: "HidePresence", userId: "bob", hidden: "yes" }],
      ["HidePresence: hidden missing", { type: "HidePresence", userId: "bob" }],
    )
    .map(([label, message]): LabelledFrame => ({ label, frame: JSON.stringify(message), expect: "invalid_message" })),
);

const unknownType = fc
  .oneof(
    fc.string().filter((s) => !(MESSAGE_TYPES as readonly string[]).includes(s)),
    fc.constantFrom("positionheartbeat", "POSITIONHEARTBEAT", " GetOnlineFriends", "GetOnlineFriends\u0000", "Teleport", "__proto__", "constructor", "toString"),
    fc.constantFrom(null, 1, true, [], {}, ["GetOnlineFriends"]),
  )
  .chain((type) =>
    fc.tuple(fc.constant(type), fc.boolean()).map(
      ([t, drop]): LabelledFrame => ({
        label: "unknown or missing type",
        frame: JSON.stringify(drop ? { id: 1 } : { type: t, id: 1 }),
        expect: "unknown_type",
      }),
    ),
  );

/** JSON that is not an object: `invalid_message`. */
const notAnObject = fc
  .oneof(
    fc.jsonValue().filter((v) => typeof v !== "object" || v === null || Array.isArray(v)),
    fc.array(fc.jsonValue(), { maxLength: 5 }),
  )
  .map((v): LabelledFrame => ({ label: "JSON that is not an object", frame: JSON.stringify(v), expect: "invalid_message" }))
  .filter((f) => (f.frame as string).length <= 4_000);

const notJson = fc
  .oneof(
    fc.constantFrom("", " ", "{", "}", "{oops", "undefined", "NaN", "Infinity", "{'type':'GetOnlineFriends'}", '{"type":"GetOnlineFriends",}', "\uFEFF{}", '{"a":1}}'),
    fc.string({ unit: "binary", maxLength: 200 }),
  )
  .filter((s) => {
    try {
      JSON.parse(s);
      return false;
    } catch {
      return true;
    }
  })
  .map((frame): LabelledFrame => ({ label: "not JSON", frame, expect: "bad_json" }));

/** Over the byte limit: by length, or under it in UTF-16 units but over it in UTF-8 bytes. */
export function tooLarge(maxBytes = 4_096) {
  return fc
    .oneof(
      fc.integer({ min: maxBytes + 1, max: maxBytes * 4 }).map((n) => "x".repeat(n)),
      fc.integer({ min: Math.ceil(maxBytes / 3) + 1, max: maxBytes }).map((n) => JSON.stringify({ type: "GetOnlineFriends", pad: "€".repeat(n) })),
      fc.integer({ min: Math.ceil(maxBytes / 4) + 1, max: maxBytes / 2 }).map((n) => JSON.stringify({ type: "GetOnlineFriends", pad: "😀".repeat(n) })),
    )
    .filter((s) => new TextEncoder().encode(s).byteLength > maxBytes)
    .map((frame): LabelledFrame => ({ label: "over the byte limit", frame, expect: "frame_too_large" }));
}

/** Deep nesting inside the limit: a deep array is not a message; a deep extra field is ignored. */
const deepJson = fc.oneof(
  fc
    .integer({ min: 1, max: 2_040 })
    .map((depth): LabelledFrame => ({ label: `array nested ${depth} deep`, frame: "[".repeat(depth) + "]".repeat(depth), expect: "invalid_message" })),
  fc
    .integer({ min: 1, max: 680 })
    .map((depth): LabelledFrame => ({ label: `object nested ${depth} deep`, frame: `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`, expect: "unknown_type" })),
  fc.integer({ min: 1, max: 2_020 }).map(
    (depth): LabelledFrame => ({
      label: `valid message with an extra field nested ${depth} deep`,
      frame: `{"type":"GetOnlineFriends","x":${"[".repeat(depth)}${"]".repeat(depth)}}`,
      expect: "ok",
    }),
  ),
);

const binary = fc
  .oneof(
    fc.uint8Array({ maxLength: 256 }),
    fc.constant(new TextEncoder().encode(JSON.stringify({ type: "GetOnlineFriends", id: 1 }))),
    fc.constant(new TextEncoder().encode("ping")),
  )
  .map((frame): LabelledFrame => ({ label: "binary frame", frame, expect: "binary_not_supported" }));

/** Valid messages with extra junk fields (ignored) and unicode edge cases: `ok`. */
function validFrames(targets?: Targets) {
  return fc
    .tuple(
      validMessage(targets),
      fc.dictionary(
        fc
          .string({ maxLength: 10 })
          .filter(
            (k) =>
              ![
                "type",
                "id",
                "userId",
                "position",
                "realm",
                "status",
                "statusText",
                "expiresAt",
                "message",
                "shareLocation",
                "hidden",
                "lastSeen",
                "limit",
                "cursor",
                "friends",
                "positions",
              ].includes(k),
          ),
        fc.jsonValue({ maxDepth: 3 }),
        { maxKeys: 3 },
      ),
    )
    .map(([message, extra]): LabelledFrame => ({ label: `valid ${message.type}`, frame: JSON.stringify({ ...extra, ...message }), expect: "ok" }))
    .filter((f) => new TextEncoder().encode(f.frame as string).byteLength <= 4_096);
}

/** A valid frame with a few characters replaced, inserted or deleted: anything documented may come back. */
function mutated(targets?: Targets) {
  return fc
    .tuple(
      validMessage(targets),
      fc.array(fc.tuple(fc.nat(), fc.constantFrom("replace", "insert", "delete"), fc.string({ unit: "binary", minLength: 1, maxLength: 2 })), { minLength: 1, maxLength: 4 }),
    )
    .map(([message, edits]): LabelledFrame => {
      let text = JSON.stringify(message);
      for (const [at, op, chars] of edits) {
        const i = text.length === 0 ? 0 : at % text.length;
        if (op === "replace") text = text.slice(0, i) + chars + text.slice(i + 1);
        else if (op === "insert") text = text.slice(0, i) + chars + text.slice(i);
        else text = text.slice(0, i) + text.slice(i + 1);
      }
      return { label: "mutated valid frame", frame: text, expect: "any" };
    });
}

/** Every kind of frame, with its documented outcome. */
export function labelledFrame(opts: Targets & { maxBytes?: number; validWeight?: number } = {}): fc.Arbitrary<LabelledFrame> {
  return fc.oneof(
    { arbitrary: validFrames(opts), weight: opts.validWeight ?? 4 },
    { arbitrary: brokenHeartbeat, weight: 4 },
    { arbitrary: brokenTargeted, weight: 2 },
    { arbitrary: unknownType, weight: 2 },
    { arbitrary: notAnObject, weight: 1 },
    { arbitrary: notJson, weight: 2 },
    { arbitrary: tooLarge(opts.maxBytes), weight: 1 },
    { arbitrary: deepJson, weight: 1 },
    { arbitrary: binary, weight: 1 },
    { arbitrary: mutated(opts), weight: 3 },
  );
}

/** Arbitrary JSON bodies for the HTTP API: valid, broken, or nothing like one. */
export function httpBody(): fc.Arbitrary<{ label: string; body: string; expect: "ok" | "bad_json" | "invalid_request" | "body_too_large" | "any" }> {
  return fc.oneof(
    heartbeatBody.map((b) => ({ label: "valid heartbeat body", body: JSON.stringify(b), expect: "ok" as const })),
    brokenHeartbeat
      .filter((f) => !f.label.includes("id "))
      .map((f) => {
        const { type: _type, ...body } = JSON.parse(f.frame as string);
        return { label: f.label, body: JSON.stringify(body), expect: "invalid_request" as const };
      }),
    // Body.json() strips a leading BOM (Fetch spec "UTF-8 decode"), so "\uFEFF{}" is JSON over HTTP.
    notJson
      .map((f) => ({ label: f.label, body: f.frame as string, expect: (f.frame as string).startsWith("\uFEFF") ? ("any" as const) : ("bad_json" as const) }))
      .filter((b) => b.body.length > 0),
    notAnObject.map((f) => ({ label: f.label, body: f.frame as string, expect: "invalid_request" as const })),
    tooLarge().map((f) => ({ label: f.label, body: f.frame as string, expect: "body_too_large" as const })),
    mutated().map((f) => ({ label: f.label, body: f.frame as string, expect: "any" as const })),
  );
}
