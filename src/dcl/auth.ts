/**
 * Verifies the first frame of a Decentraland social-service connection: the
 * JSON object of ADR-44 signed-fetch headers that the client builds for
 * `GET /` (`x-identity-auth-chain-0..n`, `x-identity-timestamp`,
 * `x-identity-metadata`). The last link of the chain signs
 * `get:/:<timestamp>:<metadata>`; the chain is checked with @dcl/crypto's
 * `Authenticator.validateSignature` (signatures and the ephemeral key's
 * expiry), and the timestamp must be recent. The user is the chain's signer,
 * as a lowercase address.
 *
 * Accepted payload spellings: the current one (method and path lowercased,
 * timestamp and metadata verbatim, as decentraland-crypto-fetch 3 and
 * @dcl/crypto-middleware 6 build it) and the older fully lowercased one
 * (decentraland-crypto-fetch 2, the latest on npm); they are equal for the `{}`
 * metadata every first-party client sends.
 *
 * Not accepted: EIP-1654 (smart-contract wallet) chains, which need an
 * Ethereum node or a Catalyst at run time; and chains signed on a scene's
 * behalf (metadata `signer: "decentraland-kernel-scene"`), which the real
 * service refuses too.
 *
 * No Cloudflare imports here; runs in workerd as is (no Node built-ins).
 */
import { Authenticator } from "@dcl/crypto";

/** Close code for a bad chain (the real service's). */
export const AUTH_FAILED_CLOSE = 3003;
/** Close code when no auth frame came in time (the real service's). */
export const AUTH_TIMEOUT_CLOSE = 3004;

export const DEFAULT_SIGNATURE_WINDOW_MS = 5 * 60_000;

const CHAIN_PREFIX = "x-identity-auth-chain-";
const TIMESTAMP = "x-identity-timestamp";
const METADATA = "x-identity-metadata";
const MAX_CHAIN_LINKS = 10;
const SCENE_SIGNER = "decentraland-kernel-scene";

export type AuthFailureReason =
  | "malformed"
  | "bad_timestamp"
  | "stale_timestamp"
  | "future_timestamp"
  | "unsupported_chain"
  | "scene_signer"
  | "wrong_payload"
  | "invalid_signature";

export type AuthResult =
  | { ok: true; address: string; metadata: Record<string, unknown> }
  | { ok: false; reason: AuthFailureReason; message: string; closeCode: typeof AUTH_FAILED_CLOSE };

export interface AuthOptions {
  now?: number;
  /** How old (or how far in the future, for clock skew) the signed timestamp may be. */
  windowMs?: number;
}

interface AuthLink {
  type: string;
  payload: string;
  signature: string;
}

const fail = (reason: AuthFailureReason, message: string): AuthResult => ({ ok: false, reason, message, closeCode: AUTH_FAILED_CLOSE });

function isLink(value: unknown): value is AuthLink {
  if (typeof value !== "object" || value === null) return false;
  const link = value as Record<string, unknown>;
  return typeof link.type === "string" && typeof link.payload === "string" && typeof link.signature === "string";
}

/** Parses the first frame (text, or the same JSON sent as a binary frame). */
export function parseAuthFrame(frame: string | Uint8Array): Record<string, unknown> | null {
  try {
    const text = typeof frame === "string" ? frame : new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(frame);
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Verifies the signed headers object; never throws. */
export async function verifyAuthHeaders(headers: unknown, options: AuthOptions = {}): Promise<AuthResult> {
  const now = options.now ?? Date.now();
  const windowMs = options.windowMs ?? DEFAULT_SIGNATURE_WINDOW_MS;
  if (typeof headers !== "object" || headers === null || Array.isArray(headers)) return fail("malformed", "the auth frame is not a JSON object");
  const fields = headers as Record<string, unknown>;

  const chain: AuthLink[] = [];
  for (let i = 0; typeof fields[CHAIN_PREFIX + i] === "string"; i++) {
    if (i >= MAX_CHAIN_LINKS) return fail("malformed", "the auth chain is too long");
    let link: unknown;
    try {
      link = JSON.parse(fields[CHAIN_PREFIX + i] as string);
    } catch {
      return fail("malformed", `${CHAIN_PREFIX}${i} is not JSON`);
    }
    if (!isLink(link)) return fail("malformed", `${CHAIN_PREFIX}${i} is not an auth link`);
    chain.push(link);
  }
  if (chain.length < 2) return fail("malformed", "no auth chain");

  const rawTimestamp = fields[TIMESTAMP];
  const rawMetadata = fields[METADATA] ?? "";
  if (typeof rawTimestamp !== "string" || !/^\d{1,16}$/.test(rawTimestamp)) return fail("bad_timestamp", `${TIMESTAMP} must be milliseconds since the epoch`);
  if (typeof rawMetadata !== "string") return fail("malformed", `${METADATA} must be a string`);
  const timestamp = Number(rawTimestamp);
  if (timestamp + windowMs < now) return fail("stale_timestamp", "the signature is older than allowed");
  if (timestamp - windowMs > now) return fail("future_timestamp", "the signature's timestamp is in the future");

  let metadata: Record<string, unknown> = {};
  if (rawMetadata !== "") {
    try {
      const parsed: unknown = JSON.parse(rawMetadata);
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return fail("malformed", `${METADATA} must be a JSON object`);
      metadata = parsed as Record<string, unknown>;
    } catch {
      return fail("malformed", `${METADATA} is not JSON`);
    }
  }
  if (Object.hasOwn(metadata, "signer") && metadata.signer === SCENE_SIGNER) return fail("scene_signer", "scene-signed requests are not accepted here");

  if (chain.some((link) => link.type.startsWith("ECDSA_EIP_1654"))) {
    return fail("unsupported_chain", "smart-contract wallet (EIP-1654) chains are not supported by this server");
  }

  const signed = chain[chain.length - 1]!.payload;
  const current = `get:/:${rawTimestamp}:${rawMetadata}`;
  const legacy = current.toLowerCase();
  if (signed !== current && signed !== legacy) return fail("wrong_payload", "the chain does not sign this request");

  let verdict: { ok: boolean; message?: string };
  try {
    // The provider is only used for EIP-1654 links, refused above.
    verdict = await Authenticator.validateSignature(signed, chain as Parameters<typeof Authenticator.validateSignature>[1], null as never, now);
  } catch (error) {
    return fail("invalid_signature", error instanceof Error ? error.message : String(error));
  }
  if (!verdict.ok) return fail("invalid_signature", verdict.message ?? "invalid signature");

  const address = Authenticator.ownerAddress(chain as Parameters<typeof Authenticator.ownerAddress>[0]);
  if (!/^0x[0-9a-fA-F]{40}$/.test(address)) return fail("malformed", "the chain's signer is not an Ethereum address");
  return { ok: true, address: address.toLowerCase(), metadata };
}
