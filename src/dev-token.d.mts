export interface MintOptions {
  /** The HS256 key (JWT_SECRET). */
  secret: string;
  /** `exp`: a duration ("1h", "3600s") or seconds since the epoch. Default "1h". */
  expiresIn?: string | number;
  /** `nbf`, in the same forms. */
  notBefore?: string | number;
  /** `iss` / `aud`, when the server checks them. */
  issuer?: string;
  audience?: string;
}

/** An HS256 token for user `sub` (dev and tests only). */
export function mintToken(sub: string, options: MintOptions): Promise<string>;
