/**
 * Connectivity update latency to a Decentraland client vs to a JSON client,
 * in the same run (issue #13). One `wrangler dev` (scripts/lib/dev-server.mjs);
 * a subject user with a JSON client switches between online and away; two
 * friends watch: one through GET /dcl with the real @dcl/rpc client
 * (WebSocketTransport over `ws`, loadService(SocialServiceDefinition),
 * identity made with @dcl/crypto), one through /v1/connect (JWT, JSON). Each
 * round measures, from the heartbeat being sent, the time until each watcher
 * has the new status.
 *
 *   npm run bench:dcl [-- --rounds 60 --gap-ms 400]
 *
 * Prints the figures and writes bench/results/dcl-latency.json.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import cryptoPkg from "@dcl/crypto";
import cryptoInternals from "@dcl/crypto/dist/crypto.js";
import gen from "@dcl/protocol/out-js/decentraland/social_service/v2/social_service_v2.gen.js";
import rpcPkg from "@dcl/rpc";
import codegen from "@dcl/rpc/dist/codegen.js";
import transports from "@dcl/rpc/dist/transports/WebSocket.js";
import cryptoFetch from "decentraland-crypto-fetch";
import WebSocket from "ws";
import { startDevServer } from "../scripts/lib/dev-server.mjs";

const { Authenticator } = cryptoPkg;
const { createUnsafeIdentity } = cryptoInternals;
const { ConnectivityStatus, SocialServiceDefinition } = gen;
const { createRpcClient } = rpcPkg;
const { loadService } = codegen;
const { WebSocketTransport } = transports;
const { signedHeaderFactory } = cryptoFetch;

const { values: args } = parseArgs({
  options: { rounds: { type: "string", default: "60" }, "gap-ms": { type: "string", default: "400" }, out: { type: "string" } },
});
const rounds = Number(args.rounds);
const gapMs = Number(args["gap-ms"]);
const root = new URL("../", import.meta.url).pathname;
const outDir = args.out ?? join(root, "bench/results");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.log("[dcl-latency]", ...a);

async function identity() {
  const ephemeral = createUnsafeIdentity();
  const account = createUnsafeIdentity();
  const authChain = await Authenticator.initializeAuthChain(account.address, ephemeral, 60, async (message) => Authenticator.createSignature(account, message));
  return { address: account.address.toLowerCase(), authChain };
}

/** Resolves when `check` is true, polling every millisecond. */
async function until(check, what, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

function opened(ws) {
  return new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
}

/** A JSON client: its presence pushes by user. */
async function jsonClient(server, userId, device) {
  const ws = new WebSocket(`${server.url.replace("http", "ws")}/v1/connect?device=${device}&kind=desktop`, {
    headers: { Authorization: `Bearer ${await server.token(userId)}` },
  });
  const latest = new Map();
  const waiting = new Map();
  ws.on("message", (data) => {
    const frame = JSON.parse(String(data));
    if (frame.type === "presence") latest.set(frame.presence.userId, { status: frame.presence.status, at: performance.now() });
    if (frame.id !== undefined && waiting.has(frame.id)) waiting.get(frame.id)(frame);
  });
  await opened(ws);
  let n = 0;
  const request = (message) =>
    new Promise((resolve) => {
      const id = `r${++n}`;
      waiting.set(id, resolve);
      ws.send(JSON.stringify({ ...message, id }));
    });
  return { ws, latest, request };
}

/** A Decentraland client, as the explorer connects. */
async function dclClient(server, who) {
  const ws = new WebSocket(`${server.url.replace("http", "ws")}/dcl`);
  const transport = WebSocketTransport(ws);
  await opened(ws);
  const sign = signedHeaderFactory();
  ws.send(JSON.stringify(Object.fromEntries(sign(who.authChain, "get", "/", {}).entries())));
  const client = await createRpcClient(transport);
  const service = loadService(await client.createPort("social_service"), SocialServiceDefinition);
  await service.getBlockingStatus({});
  const latest = new Map();
  void (async () => {
    for await (const update of service.subscribeToFriendConnectivityUpdates({})) {
      latest.set(update.friend.address, { status: update.status, at: performance.now() });
    }
  })().catch(() => undefined);
  return { ws, latest };
}

function stats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  const round = (v) => +v.toFixed(2);
  return { n: sorted.length, p50: round(q(0.5)), p95: round(q(0.95)), max: round(sorted.at(-1)), mean: round(sorted.reduce((s, v) => s + v, 0) / sorted.length) };
}

const server = await startDevServer({ ports: { first: 8860, count: 10 } });
let exitCode = 0;
try {
  log(`wrangler dev at ${server.url}; ${rounds} rounds, ${gapMs} ms apart`);
  const [subject, watcher] = await Promise.all([identity(), identity()]);
  const jsonWatcher = "bench-json-watcher";
  await server.befriend(subject.address, watcher.address);
  await server.befriend(subject.address, jsonWatcher);

  const dcl = await dclClient(server, watcher);
  const json = await jsonClient(server, jsonWatcher, "watcher-pc");
  await json.request({ type: "SubscribeFriendshipPresenceUpdates" });
  const me = await jsonClient(server, subject.address, "subject-pc");
  const heartbeat = (status) => me.request({ type: "PositionHeartbeat", position: { x: 0, y: 0, z: 0 }, realm: "bench", status });

  await heartbeat("online");
  await until(() => dcl.latest.get(subject.address)?.status === ConnectivityStatus.ONLINE && json.latest.get(subject.address)?.status === "online", "both watchers to see ONLINE");

  const toDcl = [];
  const toJson = [];
  for (let i = 1; i <= rounds; i++) {
    const status = i % 2 === 1 ? "away" : "online";
    const dclStatus = status === "away" ? ConnectivityStatus.AWAY : ConnectivityStatus.ONLINE;
    const sent = performance.now();
    void heartbeat(status);
    await until(() => {
      const d = dcl.latest.get(subject.address);
      const j = json.latest.get(subject.address);
      return d?.status === dclStatus && d.at >= sent && j?.status === status && j.at >= sent;
    }, `round ${i}`);
    toDcl.push(dcl.latest.get(subject.address).at - sent);
    toJson.push(json.latest.get(subject.address).at - sent);
    await sleep(gapMs);
  }

  const result = {
    scenario: "connectivity update latency: one status change (online ↔ away) of a JSON subject, to a DCL watcher and to a JSON watcher, same run",
    date: new Date().toISOString(),
    server: "wrangler dev (workerd, local)",
    machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg: loadavg().map((v) => +v.toFixed(2)) },
    rounds,
    gapMs,
    latencyMs: { dcl: stats(toDcl), json: stats(toJson), dclMinusJson: stats(toDcl.map((d, i) => d - toJson[i])) },
  };
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, "dcl-latency.json"), `${JSON.stringify(result, null, 2)}\n`);
  const line = (name, s) => `${name.padEnd(5)} p50 ${s.p50} ms  p95 ${s.p95} ms  max ${s.max} ms  mean ${s.mean} ms  (n=${s.n})`;
  log(line("DCL", result.latencyMs.dcl));
  log(line("JSON", result.latencyMs.json));
  log(line("diff", result.latencyMs.dclMinusJson), "(DCL − JSON, per round)");
  log(`written to ${join(outDir, "dcl-latency.json")}`);
  dcl.ws.close();
  json.ws.close();
  me.ws.close();
} catch (error) {
  console.error(error);
  console.error(server.output().slice(-3000));
  exitCode = 1;
} finally {
  await server.stop();
}
process.exit(exitCode);
