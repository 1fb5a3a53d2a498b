#!/usr/bin/env node
// Signs in as a user, shows friends coming and going, and walks in a circle.
//
//   npm run build:client
//   npx wrangler dev --port 8787                      # or: npm start
//   node client/examples/watch-friends.mjs alice      # in two terminals:
//   node client/examples/watch-friends.mjs bob        # (make them friends first, see client/README.md)
//
// PRESENCE_URL (default http://localhost:8787) picks the server; the token comes
// from POST /dev/token (dev mode), or from PRESENCE_TOKEN if set.
import WebSocket from "ws";
import { connect } from "../dist/client/src/index.js";

const userId = process.argv[2] ?? "alice";
const url = process.env.PRESENCE_URL ?? "http://localhost:8787";

async function getToken() {
  if (process.env.PRESENCE_TOKEN) return process.env.PRESENCE_TOKEN;
  const res = await fetch(new URL("/dev/token", url), {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ userId }),
  });
  if (!res.ok) throw new Error(`POST /dev/token: ${res.status} (is DEV_MODE=1 in .dev.vars?)`);
  return (await res.json()).token;
}

const client = connect({
  url,
  getToken, // called on every (re)connect, so an expired token is replaced
  device: `example-${userId}`,
  kind: "desktop",
  WebSocket, // Node 20 has no global WebSocket
  initial: { position: { x: 0, y: 0, z: 0 }, realm: "lobby", status: "online" },
});

const where = (p) => (p.position ? `${p.realm} (${p.position.x}, ${p.position.y}, ${p.position.z})` : "");
client.on("connection", (e) =>
  console.log(`[connection] ${e.state}${e.code ? ` (closed ${e.code} ${e.reason ?? ""})` : ""}${e.delayMs !== undefined ? ` (retry in ${e.delayMs} ms)` : ""}`),
);
client.on("online", (p) => console.log(`[online]  ${p.userId} is ${p.status} in ${where(p)}`));
client.on("offline", (p) => console.log(`[offline] ${p.userId}`));
client.on("update", ({ presence: p }) => console.log(`[update]  ${p.userId} #${p.seq} ${p.status} ${where(p)} ${p.statusText ?? ""}`));
client.on("friendAdded", (p) => console.log(`[friend+] ${p.userId}`));
client.on("friendRemoved", (id) => console.log(`[friend-] ${id}`));
client.on("error", (e) => console.log(`[error]   ${e.code}: ${e.message}`));

await client.ready();
console.log(`signed in as ${client.userId}; friends:`);
for (const f of await client.listFriends()) console.log(`  ${f.userId}: ${f.status}${f.lastActiveAt ? `, last active ${new Date(f.lastActiveAt).toLocaleTimeString()}` : ""}`);
await client.setStatus("busy", "walking in circles");

let step = 0;
const walk = setInterval(() => {
  step++;
  const angle = (step / 12) * 2 * Math.PI;
  client
    .heartbeat({ position: { x: Math.round(10 * Math.cos(angle)), y: 0, z: Math.round(10 * Math.sin(angle)) }, realm: "lobby" })
    .catch((e) => console.log(`[error]   heartbeat: ${e.message}`));
}, 2_000);

process.on("SIGINT", () => {
  clearInterval(walk);
  client.close(); // friends see you offline at once
  setTimeout(() => process.exit(0), 200);
});
