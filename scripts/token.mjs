#!/usr/bin/env node
// Prints a dev token (and nothing else) signed with JWT_SECRET from .dev.vars:
//   npm run -s token -- alice [--ttl 3600]      (-s: without npm's banner, so the output can be pasted or captured)
import { mintToken } from "../src/dev-token.mjs";
import { readDevVars } from "./lib/dev-vars.mjs";

const args = process.argv.slice(2);
const user = args.find((a) => !a.startsWith("--"));
const ttlIndex = args.indexOf("--ttl");
const ttl = ttlIndex >= 0 ? Number(args[ttlIndex + 1]) : 24 * 3600;
if (!user) {
  console.error("usage: npm run -s token -- <userId> [--ttl seconds]");
  process.exit(2);
}
const { JWT_SECRET, JWT_ISSUER, JWT_AUDIENCE } = readDevVars();
console.log(await mintToken(user, { secret: JWT_SECRET, expiresIn: `${ttl}s`, issuer: JWT_ISSUER, audience: JWT_AUDIENCE }));
