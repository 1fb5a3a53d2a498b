#!/usr/bin/env node
// Serves the worker through Miniflare's API instead of `wrangler dev`, from any
// host runtime: `node`, `bun` or `deno run -A`. workerd still runs the worker and
// the Durable Objects; the host only bundles the code and supervises workerd.
//
//   npx bun scripts/serve-miniflare.mjs                 # Bun: `wrangler dev` refuses to serve under Bun (see README, Runtimes)
//   npx deno run -A scripts/serve-miniflare.mjs         # Deno
//   node scripts/serve-miniflare.mjs --port 8787 --persist-to .wrangler/state --var PRESENCE_TTL_MS:5000
//
// Same wrangler.toml, vars, .dev.vars secrets (.dev.vars.example's if there is no
// .dev.vars) and Durable Object bindings as `wrangler dev` (read through
// wrangler's own `unstable_getMiniflareWorkerOptions`);
// bundled like wrangler does (esbuild, workerd conditions). No live reload, no
// inspector. Prints "Ready on <url>" and serves until SIGINT or SIGTERM.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";

const root = fileURLToPath(new URL("..", import.meta.url));

function parseArgs(argv) {
  const options = { ip: "127.0.0.1", port: 8787, persistTo: join(root, ".wrangler/state"), vars: {} };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => inline ?? argv[++i] ?? "";
    if (flag === "--port") options.port = Number(value());
    else if (flag === "--ip") options.ip = value();
    else if (flag === "--persist-to") options.persistTo = resolve(value());
    else if (flag === "--var") {
      const [name, ...rest] = value().split(":");
      options.vars[name] = rest.join(":");
    } else throw new Error(`unknown option ${argv[i]} (known: --port, --ip, --persist-to, --var NAME:value)`);
  }
  if (!Number.isInteger(options.port) || options.port <= 0) throw new Error("--port needs a port number");
  return options;
}

const options = parseArgs(process.argv.slice(2));
const runtime = globalThis.Deno ? `Deno ${globalThis.Deno.version.deno}` : process.versions.bun ? `Bun ${process.versions.bun}` : `Node ${process.version}`;

const outDir = mkdtempSync(join(tmpdir(), "edge-presence-bundle-"));
const scriptPath = join(outDir, "index.js");
await build({
  entryPoints: [join(root, "src/index.ts")],
  outfile: scriptPath,
  bundle: true,
  format: "esm",
  target: "es2024",
  conditions: ["workerd", "worker", "browser"],
  external: ["cloudflare:*", "node:*"],
  define: { "process.env.NODE_ENV": '"development"' },
  keepNames: true,
  sourcemap: true,
  logLevel: "warning",
});

/** NAME=value lines of a .dev.vars file. */
function readDevVars(file) {
  const vars = {};
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const match = /^\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (match) vars[match[1]] = match[2].replace(/^"(.*)"$/, "$1");
  }
  return vars;
}

// Vars from wrangler.toml, secrets from .dev.vars, the USER namespace (SQLite), assets.
const { workerOptions } = unstable_getMiniflareWorkerOptions(join(root, "wrangler.toml"));
const exampleSecrets = existsSync(join(root, ".dev.vars")) ? {} : readDevVars(join(root, ".dev.vars.example"));
if (Object.keys(exampleSecrets).length > 0) console.log("no .dev.vars: using .dev.vars.example (dev secrets only)");
const mf = new Miniflare(
  convertV4MiniflareOptions({
    host: options.ip,
    port: options.port,
    resourcePersistencePath: options.persistTo,
    workers: [
      {
        name: "edge-presence",
        ...workerOptions,
        modulesRules: undefined,
        modules: true,
        modulesRoot: outDir,
        scriptPath,
        bindings: { ...workerOptions.bindings, ...exampleSecrets, ...options.vars },
      },
    ],
  }),
);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  try {
    await mf.dispose();
  } finally {
    rmSync(outDir, { recursive: true, force: true });
    process.exit(0);
  }
}
process.on("SIGINT", stop);
process.on("SIGTERM", stop);

const url = await mf.ready;
console.log(`edge-presence on Miniflare, hosted by ${runtime}`);
console.log(`Ready on ${url.href.replace(/\/$/, "")}`);
