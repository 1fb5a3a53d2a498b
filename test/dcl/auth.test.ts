// ADR-44 signed-fetch auth of the Decentraland endpoint, with identities made by @dcl/crypto.
import { beforeAll, describe, expect, it } from "vitest";
import { AUTH_FAILED_CLOSE, parseAuthFrame, verifyAuthHeaders } from "../../src/dcl/auth";
import { authHeaders, authHeadersAt, createIdentity, type Identity } from "./harness";

let alice: Identity;
let bob: Identity;
beforeAll(async () => {
  alice = await createIdentity();
  bob = await createIdentity();
});

const MINUTE = 60_000;

describe("verifyAuthHeaders", () => {
  it("accepts a valid chain and names its signer as a lowercase address", async () => {
    const result = await verifyAuthHeaders(authHeaders(alice));
    expect(result).toEqual({ ok: true, address: alice.address, metadata: {} });
    expect(alice.address).toMatch(/^0x[0-9a-f]{40}$/);
  });

  it("accepts both payload spellings: metadata verbatim (crypto-fetch 3) and fully lowercased (crypto-fetch 2)", async () => {
    const legacy = authHeaders(alice, { Origin: "Explorer" }); // decentraland-crypto-fetch 2.0.1 folds the whole payload
    expect(await verifyAuthHeaders(legacy)).toMatchObject({ ok: true, address: alice.address, metadata: { Origin: "Explorer" } });
    const now = Date.now();
    const current = authHeadersAt(alice, now, '{"Origin":"Explorer"}');
    expect(await verifyAuthHeaders(current, { now })).toMatchObject({ ok: true, address: alice.address });
  });

  it("refuses a tampered signature", async () => {
    const headers = authHeaders(alice);
    const last = Object.keys(headers).filter((k) => k.startsWith("x-identity-auth-chain-")).length - 1;
    const link = JSON.parse(headers[`x-identity-auth-chain-${last}`]!);
    link.signature = link.signature.slice(0, 10) + (link.signature[10] === "0" ? "1" : "0") + link.signature.slice(11);
    headers[`x-identity-auth-chain-${last}`] = JSON.stringify(link);
    expect(await verifyAuthHeaders(headers)).toMatchObject({ ok: false, reason: "invalid_signature", closeCode: AUTH_FAILED_CLOSE });
  });

  it("refuses a chain whose signer was swapped for someone else", async () => {
    const headers = authHeaders(alice);
    headers["x-identity-auth-chain-0"] = JSON.stringify({ type: "SIGNER", payload: bob.address, signature: "" });
    expect(await verifyAuthHeaders(headers)).toMatchObject({ ok: false, reason: "invalid_signature", closeCode: 3003 });
  });

  it("refuses headers whose timestamp or metadata is not what was signed", async () => {
    const headers = authHeaders(alice);
    headers["x-identity-timestamp"] = String(Number(headers["x-identity-timestamp"]) + 1);
    expect(await verifyAuthHeaders(headers)).toMatchObject({ ok: false, reason: "wrong_payload" });
    const other = authHeaders(alice);
    other["x-identity-metadata"] = '{"signer":"someone"}';
    expect(await verifyAuthHeaders(other)).toMatchObject({ ok: false, reason: "wrong_payload" });
  });

  it("refuses a chain signed for another request", async () => {
    const now = Date.now();
    const headers = authHeadersAt(alice, now, "{}", `post:/v1/friends:${now}:{}`);
    expect(await verifyAuthHeaders(headers, { now })).toMatchObject({ ok: false, reason: "wrong_payload" });
  });

  it("refuses an expired ephemeral key", async () => {
    const expired = await createIdentity(-1);
    const result = await verifyAuthHeaders(authHeaders(expired));
    expect(result).toMatchObject({ ok: false, reason: "invalid_signature", closeCode: 3003 });
    expect(result.ok ? "" : result.message).toMatch(/expired/i);
    // A valid key read after its expiry (10 minutes) fails the same way.
    const headers = authHeaders(alice);
    expect(await verifyAuthHeaders(headers, { now: Date.now() + 11 * MINUTE, windowMs: 20 * MINUTE })).toMatchObject({ ok: false, reason: "invalid_signature" });
  });

  it("refuses a timestamp older than 5 minutes, and one too far in the future", async () => {
    const now = Date.now();
    expect(await verifyAuthHeaders(authHeadersAt(alice, now - 4 * MINUTE), { now })).toMatchObject({ ok: true });
    expect(await verifyAuthHeaders(authHeadersAt(alice, now - 5 * MINUTE - 1), { now })).toMatchObject({ ok: false, reason: "stale_timestamp", closeCode: 3003 });
    expect(await verifyAuthHeaders(authHeaders(alice), { now: now + 6 * MINUTE })).toMatchObject({ ok: false, reason: "stale_timestamp" });
    expect(await verifyAuthHeaders(authHeadersAt(alice, now + 6 * MINUTE), { now })).toMatchObject({ ok: false, reason: "future_timestamp" });
  });

  it("refuses scene-signed requests and smart-contract wallet chains (they need the network)", async () => {
    expect(await verifyAuthHeaders(authHeaders(alice, { signer: "decentraland-kernel-scene" }))).toMatchObject({ ok: false, reason: "scene_signer" });
    const headers = authHeaders(alice);
    const link = JSON.parse(headers["x-identity-auth-chain-1"]!);
    headers["x-identity-auth-chain-1"] = JSON.stringify({ ...link, type: "ECDSA_EIP_1654_EPHEMERAL" });
    expect(await verifyAuthHeaders(headers)).toMatchObject({ ok: false, reason: "unsupported_chain" });
  });

  it("refuses malformed frames without throwing", async () => {
    for (const bad of [null, 42, [], {}, { "x-identity-auth-chain-0": "{", "x-identity-timestamp": "1" }]) {
      expect(await verifyAuthHeaders(bad)).toMatchObject({ ok: false, closeCode: 3003 });
    }
    const headers = authHeaders(alice);
    delete headers["x-identity-timestamp"];
    expect(await verifyAuthHeaders(headers)).toMatchObject({ ok: false, reason: "bad_timestamp" });
    const links = authHeaders(alice);
    links["x-identity-auth-chain-1"] = JSON.stringify({ type: "ECDSA_EPHEMERAL" });
    expect(await verifyAuthHeaders(links)).toMatchObject({ ok: false, reason: "malformed" });
  });

  it("reads the auth frame as text or as the same JSON in a binary frame", () => {
    const text = JSON.stringify(authHeaders(alice));
    expect(parseAuthFrame(text)).toEqual(JSON.parse(text));
    expect(parseAuthFrame(new TextEncoder().encode(text))).toEqual(JSON.parse(text));
    expect(parseAuthFrame("[1]")).toBeNull();
    expect(parseAuthFrame(new Uint8Array([0x0d, 1, 2, 3]))).toBeNull();
  });
});
