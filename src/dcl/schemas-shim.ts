/**
 * A stand-in for `@dcl/schemas` in the worker bundle (optional; see
 * docs/DECENTRALAND.md, "Bundle size"). @dcl/crypto imports `@dcl/schemas`
 * only for the `AuthLinkType` enum (and re-exports two schema objects it never
 * calls), but `@dcl/schemas` brings ajv and every Decentraland schema: about
 * 600 KB of the ~900 KB @dcl/crypto adds. Aliasing `@dcl/schemas` to this file
 * (wrangler.toml `[alias]`) keeps the auth code identical and the bundle small.
 * The values are @dcl/schemas' own (dist/misc/auth-chain.js).
 */
export enum AuthLinkType {
  SIGNER = "SIGNER",
  ECDSA_PERSONAL_EPHEMERAL = "ECDSA_EPHEMERAL",
  ECDSA_PERSONAL_SIGNED_ENTITY = "ECDSA_SIGNED_ENTITY",
  ECDSA_EIP_1654_EPHEMERAL = "ECDSA_EIP_1654_EPHEMERAL",
  ECDSA_EIP_1654_SIGNED_ENTITY = "ECDSA_EIP_1654_SIGNED_ENTITY",
}

/** Re-exported by @dcl/crypto's types module; never called by its Authenticator. */
export const AuthChain = {};
export const AuthLink = {};
