/**
 * Validation of everything a client sends: socket frames and HTTP bodies.
 * Nothing reaches the presence rules without passing through here.
 */
import { z } from "zod";
import { DEVICE_KINDS, DEVICE_STATUSES, LAST_SEEN_PRIVACY, MAX_STATUS_EXPIRY_MS, type ClientMessage, type ErrorCode, type HeartbeatBody, type RequestId } from "../protocol";
import type { Refusal } from "./result";
import { decodeCursor, MAX_PAGE_LIMIT, MAX_SUBSET_FRIENDS } from "./subset";

export const MAX_REALM_LENGTH = 64;
export const MAX_STATUS_TEXT_LENGTH = 140;
export const MAX_COORDINATE = 1e9;
export const MAX_USER_ID_LENGTH = 128;

/** Printable text: no control characters, no lone surrogates. */
const printable = (max: number) =>
  z
    .string()
    .max(max * 2)
    .refine((s) => [...s].length <= max, `at most ${max} characters`)
    // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
    .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), "control characters are not allowed")
    .refine((s) => s.isWellFormed(), "lone surrogates are not allowed");

export const userIdSchema = z
  .string()
  .min(1)
  .max(MAX_USER_ID_LENGTH)
  .regex(/^[A-Za-z0-9_.@:-]+$/, "user ids are letters, digits and _ . @ : -")
  // URL normalisation turns /v1/presence/.. into another path: such a user could not be addressed over HTTP (#12).
  .refine((id) => id !== "." && id !== "..", "user ids . and .. are reserved");

export const deviceIdSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_.:-]+$/, "device ids are letters, digits and _ . : -");

export const deviceKindSchema = z.enum(DEVICE_KINDS);
export const deviceStatusSchema = z.enum(DEVICE_STATUSES);

const coordinate = z.number().min(-MAX_COORDINATE).max(MAX_COORDINATE);
export const positionSchema = z.object({ x: coordinate, y: coordinate, z: coordinate });

/** Request ids are echoed back verbatim in the reply. */
export const requestIdSchema = z.union([z.string().max(64), z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)]);

const heartbeatFields = z.object({
  position: positionSchema,
  realm: printable(MAX_REALM_LENGTH).pipe(z.string().min(1)),
  status: deviceStatusSchema,
  statusText: printable(MAX_STATUS_TEXT_LENGTH).nullable().optional(),
  expiresAt: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable().optional(),
  expiresInMs: z.number().int().min(1).max(MAX_STATUS_EXPIRY_MS).optional(),
});
/** "Clear after" is a time or a duration, not both. */
const oneExpiry = (b: { expiresAt?: number | null; expiresInMs?: number }) => b.expiresAt === undefined || b.expiresInMs === undefined;
const oneExpiryError = { message: "send expiresAt or expiresInMs, not both", path: ["expiresInMs"] };
export const heartbeatBody = heartbeatFields.refine(oneExpiry, oneExpiryError);
export type { HeartbeatBody } from "../protocol";

export const MAX_REQUEST_MESSAGE_LENGTH = 280;
export const requestMessageSchema = printable(MAX_REQUEST_MESSAGE_LENGTH).nullable().optional();
export const shareLocationSchema = z.enum(["all", "none"]);
export const lastSeenSchema = z.enum(LAST_SEEN_PRIVACY);
const privacyFields = { shareLocation: shareLocationSchema.optional(), lastSeen: lastSeenSchema.optional() };
const friendPrivacyFields = { hidden: z.boolean().optional(), lastSeen: z.boolean().optional() };
const anyOf = (keys: string[]) => [(o: Record<string, unknown>) => keys.some((k) => o[k] !== undefined), `at least one of ${keys.join(", ")}`] as const;
/** `PUT /v1/privacy`: the settings for all friends (at least one). */
export const privacyBody = z.object(privacyFields).refine(...anyOf(Object.keys(privacyFields)));
/** `PUT /v1/friends/:userId/privacy`: hide from that friend, and/or let them see your last seen (`lastSeen: chosen`). */
export const friendPrivacyBody = z.object(friendPrivacyFields).refine(...anyOf(Object.keys(friendPrivacyFields)));
export const positionInterestSchema = z.enum(["all", "realm", "none"]);
/** Large friend lists (src/presence/subset.ts): a socket's subset of friends, and the snapshot's paging. */
export const friendSubsetSchema = z.union([z.literal("all"), z.array(userIdSchema).max(MAX_SUBSET_FRIENDS)]);
export const pageLimitSchema = z.number().int().min(1).max(MAX_PAGE_LIMIT);
export const cursorSchema = z.string().refine((c) => decodeCursor(c) !== null, "not a cursor this server gave");
/** `GET /v1/connect?friends=a,b,c`: the socket's subset from the start (empty: none until its Subscribe names some). */
export const friendsParamSchema = z
  .string()
  .max(MAX_SUBSET_FRIENDS * (MAX_USER_ID_LENGTH + 1))
  .transform((raw) => (raw === "" ? [] : raw.split(",")))
  .pipe(z.array(userIdSchema).max(MAX_SUBSET_FRIENDS));
/** `GET /v1/friends/online?limit=&cursor=` (query strings are text). */
export const onlinePageQuery = z.object({ limit: z.coerce.number().pipe(pageLimitSchema).optional(), cursor: cursorSchema.optional() });

export const clientMessageSchema = z.discriminatedUnion("type", [
  heartbeatFields.extend({ type: z.literal("PositionHeartbeat"), id: requestIdSchema.optional() }).refine(oneExpiry, oneExpiryError),
  z.object({ type: z.literal("GetOnlineFriends"), id: requestIdSchema.optional(), limit: pageLimitSchema.optional(), cursor: cursorSchema.optional() }),
  z.object({
    type: z.literal("SubscribeFriendshipPresenceUpdates"),
    id: requestIdSchema.optional(),
    positions: positionInterestSchema.optional(),
    friends: friendSubsetSchema.optional(),
  }),
  z.object({ type: z.literal("UnsubscribeFriendshipPresenceUpdates"), id: requestIdSchema.optional() }),
  z.object({ type: z.literal("GetPresence"), id: requestIdSchema.optional(), userId: userIdSchema }),
  z.object({ type: z.literal("SendFriendRequest"), id: requestIdSchema.optional(), userId: userIdSchema, message: requestMessageSchema }),
  z.object({ type: z.literal("CancelFriendRequest"), id: requestIdSchema.optional(), userId: userIdSchema }),
  z.object({ type: z.literal("AcceptFriendRequest"), id: requestIdSchema.optional(), userId: userIdSchema }),
  z.object({ type: z.literal("RejectFriendRequest"), id: requestIdSchema.optional(), userId: userIdSchema }),
  z.object({ type: z.literal("RemoveFriend"), id: requestIdSchema.optional(), userId: userIdSchema }),
  z.object({ type: z.literal("BlockUser"), id: requestIdSchema.optional(), userId: userIdSchema }),
  z.object({ type: z.literal("UnblockUser"), id: requestIdSchema.optional(), userId: userIdSchema }),
  z.object({ type: z.literal("ListFriends"), id: requestIdSchema.optional() }),
  z.object({ type: z.literal("SetPrivacy"), id: requestIdSchema.optional(), ...privacyFields }).refine(...anyOf(Object.keys(privacyFields))),
  z.object({ type: z.literal("HidePresence"), id: requestIdSchema.optional(), userId: userIdSchema, ...friendPrivacyFields }).refine(...anyOf(Object.keys(friendPrivacyFields))),
]);

/** Socket message type → friendship operation. */
export const FRIENDSHIP_OPS = {
  SendFriendRequest: "request",
  CancelFriendRequest: "cancel",
  AcceptFriendRequest: "accept",
  RejectFriendRequest: "reject",
  RemoveFriend: "remove",
  BlockUser: "block",
  UnblockUser: "unblock",
} as const;
export const CLIENT_MESSAGE_TYPES = clientMessageSchema.options.map((o) => o.shape.type.value);

export type { ClientMessage, ErrorCode, RequestId } from "../protocol";

// The schemas accept exactly the wire types of src/protocol (checked when the project type-checks).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;
export type SchemasMatchProtocol = Assert<
  Same<z.infer<typeof clientMessageSchema>, ClientMessage> & Same<z.infer<typeof requestIdSchema>, RequestId> & Same<z.infer<typeof heartbeatBody>, HeartbeatBody>
>;

/** A refusal that echoes the request's id when one could be read. */
export type ParseResult = { ok: true; message: ClientMessage } | (Refusal<ErrorCode> & { id?: RequestId });

/** Turns one raw socket frame into a validated message or a precise error. */
export function parseClientFrame(frame: string | ArrayBuffer, maxBytes: number): ParseResult {
  if (typeof frame !== "string") {
    return { ok: false, code: "binary_not_supported", message: "send JSON text frames" };
  }
  // Bounds first: UTF-8 has at least one byte per UTF-16 code unit and at most three, so only a frame
  // between maxBytes/3 and maxBytes code units needs counting (the usual heartbeat is far below).
  if (frame.length > maxBytes || (frame.length * 3 > maxBytes && utf8Length(frame) > maxBytes)) {
    return { ok: false, code: "frame_too_large", message: `frames are at most ${maxBytes} bytes` };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(frame);
  } catch {
    return { ok: false, code: "bad_json", message: "frame is not valid JSON" };
  }
  return parseClientMessage(raw);
}

const encoder = new TextEncoder();
function utf8Length(text: string): number {
  return encoder.encode(text).byteLength;
}

/** Validates an already-parsed value as a client message. */
export function parseClientMessage(raw: unknown): ParseResult {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return { ok: false, code: "invalid_message", message: "a message is a JSON object with a `type`" };
  }
  const record = raw as Record<string, unknown>;
  const idResult = requestIdSchema.safeParse(record.id);
  const id = idResult.success ? idResult.data : undefined;
  if (typeof record.type !== "string" || !CLIENT_MESSAGE_TYPES.includes(record.type as never)) {
    return withId({ ok: false, code: "unknown_type", message: `type must be one of ${CLIENT_MESSAGE_TYPES.join(", ")}` }, id);
  }
  const parsed = clientMessageSchema.safeParse(raw);
  if (!parsed.success) {
    return withId({ ok: false, code: "invalid_message", message: describeIssues(parsed.error) }, id);
  }
  return { ok: true, message: parsed.data };
}

function withId(result: Extract<ParseResult, { ok: false }>, id: RequestId | undefined): ParseResult {
  return id === undefined ? result : { ...result, id };
}

export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`)
    .join("; ");
}
