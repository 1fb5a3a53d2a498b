#!/usr/bin/env node
// Makes two users friends through the admin API:  npm run befriend -- alice bob [--url http://localhost:8787]
import { befriend } from "./lib/admin.mjs";
import { readDevVars } from "./lib/dev-vars.mjs";

const args = process.argv.slice(2);
const url = args.includes("--url") ? args[args.indexOf("--url") + 1] : "http://localhost:8787";
const [a, b] = args.filter((x, i) => !x.startsWith("--") && args[i - 1] !== "--url");
if (!a || !b) {
  console.error("usage: npm run befriend -- <userA> <userB>");
  process.exit(2);
}
const res = await befriend({ url, adminToken: readDevVars().ADMIN_TOKEN }, a, b);
console.log(res.status, await res.text());
process.exit(res.ok ? 0 : 1);
