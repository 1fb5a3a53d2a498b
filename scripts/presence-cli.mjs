#!/usr/bin/env node
// A tiny terminal client: connects as <user>, subscribes to friends' presence, heartbeats, prints changes.
//   node scripts/presence-cli.mjs alice [--url http://localhost:8787] [--realm lobby] [--status online]
// Type a status (online/away/busy/invisible) or "move" and Enter to change presence; Ctrl-C to leave.
import { createInterface } from "node:readline";
import WebSocket from "ws";
import { mintToken } from "../src/dev-token.mjs";
import { readDevVars } from "./lib/dev-vars.mjs";

const args = process.argv.slice(2);
const user = args.find((a) => !a.startsWith("--") && !args[args.indexOf(a) - 1]?.startsWith("--"));
const opt = (name, fallback) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : fallback);
if (!user) {
  console.error("usage: node scripts/presence-cli.mjs <userId> [--url http://localhost:8787] [--realm lobby]");
  process.exit(2);
}
const url = opt("url", "http://localhost:8787");
const state = { realm: opt("realm", "lobby"), status: opt("status", "online"), position: { x: 0, y: 0, z: 0 } };
const { JWT_SECRET } = readDevVars();
const token = await mintToken(user, { secret: JWT_SECRET, expiresIn: "12h" });

const ws = new WebSocket(`${url.replace(/^http/, "ws")}/v1/connect?device=cli-${user}&kind=desktop`, { headers: { Authorization: `Bearer ${token}` } });
const show = (p) => `${p.userId.padEnd(10)} ${p.status.padEnd(8)} ${p.realm ?? "-"} ${p.position ? `(${p.position.x},${p.position.y},${p.position.z})` : ""} ${p.statusText ?? ""}`;
// Lines typed (or piped) before the socket is open only change `state`: the first heartbeat after `welcome` carries it.
const heartbeat = () => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify({ type: "PositionHeartbeat", ...state }));
let welcomed = false;
let timers = [];

ws.on("error", (error) => {
  console.error(`cannot connect to ${url}: ${error.message}`);
  process.exit(1);
});
ws.on("unexpected-response", (_req, res) => {
  console.error(`refused: HTTP ${res.statusCode}`);
  process.exit(1);
});
ws.on("message", (data) => {
  const text = data.toString();
  if (text === "pong") return;
  const msg = JSON.parse(text);
  if (msg.type === "welcome") {
    welcomed = true;
    console.log(`connected as ${msg.userId} (heartbeat every ${msg.heartbeatIntervalMs / 1000}s). Type online/away/busy/invisible or move.`);
    ws.send(JSON.stringify({ type: "SubscribeFriendshipPresenceUpdates", id: "sub" }));
    heartbeat();
    timers = [setInterval(heartbeat, msg.heartbeatIntervalMs), setInterval(() => ws.readyState === WebSocket.OPEN && ws.send(msg.ping), msg.heartbeatIntervalMs / 2)];
  } else if (msg.type === "subscribed") {
    console.log(msg.friends.length ? "friends online:" : "no friends online yet");
    for (const p of msg.friends) console.log(`  ${show(p)}`);
  } else if (msg.type === "presence") console.log(`update: ${show(msg.presence)}`);
  else if (msg.type === "friend_added") console.log(`friend added: ${show(msg.presence)}`);
  else if (msg.type === "friend_removed") console.log(`friend removed: ${msg.userId}`);
  else if (msg.type === "error") console.log(`error ${msg.code}: ${msg.message}`);
});
ws.on("close", (code, reason) => {
  timers.forEach(clearInterval);
  console.log(`closed ${code} ${reason}`);
  process.exit(0);
});
createInterface({ input: process.stdin }).on("line", (line) => {
  const word = line.trim();
  if (["online", "away", "busy", "invisible"].includes(word)) state.status = word;
  else if (word === "move") state.position = { x: Math.round(Math.random() * 100), y: 0, z: Math.round(Math.random() * 100) };
  else if (word) state.realm = word;
  if (welcomed) heartbeat();
});
process.on("SIGINT", () => (ws.readyState === WebSocket.CONNECTING ? process.exit(0) : ws.close(1000, "bye")));
