// The one minter of HS256 user tokens for development and tests: the worker's
// POST /dev/token (DEV_MODE only), `npm run token`, the CLI, the test suites
// and the load generator all sign through here. Plain JS (with dev-token.d.mts)
// so that Node scripts can use it as well as the worker.
import { SignJWT } from "jose";

/**
 * @param {string} sub the user id
 * @param {{ secret: string, expiresIn?: string | number, notBefore?: string | number, issuer?: string, audience?: string }} options
 * @returns {Promise<string>}
 */
export async function mintToken(sub, { secret, expiresIn = "1h", notBefore, issuer, audience }) {
  let jwt = new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject(sub).setIssuedAt().setExpirationTime(expiresIn);
  if (notBefore !== undefined) jwt = jwt.setNotBefore(notBefore);
  if (issuer) jwt = jwt.setIssuer(issuer);
  if (audience) jwt = jwt.setAudience(audience);
  return jwt.sign(new TextEncoder().encode(secret));
}
