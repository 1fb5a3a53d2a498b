#!/usr/bin/env node
// Mints a dev token signed with JWT_SECRET from .dev.vars:  npm run token -- alice [--ttl 3600]
import { SignJWT } from "jose";
import { readDevVars } from "./dev-vars.mjs";

const args = process.argv.slice(2);
const user = args.find((a) => !a.startsWith("--"));
const ttlIndex = args.indexOf("--ttl");
const ttl = ttlIndex >= 0 ? Number(args[ttlIndex + 1]) : 24 * 3600;
if (!user) {
  console.error("usage: npm run token -- <userId> [--ttl seconds]");
  process.exit(2);
}
const { JWT_SECRET, JWT_ISSUER, JWT_AUDIENCE } = readDevVars();
let jwt = new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject(user).setIssuedAt().setExpirationTime(`${ttl}s`);
if (JWT_ISSUER) jwt = jwt.setIssuer(JWT_ISSUER);
if (JWT_AUDIENCE) jwt = jwt.setAudience(JWT_AUDIENCE);
console.log(await jwt.sign(new TextEncoder().encode(JWT_SECRET)));
