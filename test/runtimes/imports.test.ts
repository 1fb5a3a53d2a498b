// What the code imports and which host globals it may use, checked on the real
// module graphs (esbuild resolves every import, packages included, with the
// conditions wrangler bundles for workerd) and by type-checking without host types:
//  - the presence rules and the friendship state machine (src/presence) import zod and nothing else;
//  - the client SDK (client/src) imports nothing;
//  - the worker's only non-Web import is `cloudflare:workers`, in durable/ (the Durable
//    Object class is where a Cloudflare binding is the point); hono, jose and zod bring no `node:*`;
//  - src/presence and client/src type-check with the ECMAScript library plus TextEncoder and
//    timers: no Node (Buffer, process), DOM or Workers globals.
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Plugin } from "esbuild";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url).href);

interface Graph {
  /** Project files in the graph, relative to the root; packages as `node_modules/<name>`. */
  files: string[];
  /** Every import of a package or a host module: `importer -> specifier`. */
  packages: string[];
}

const packageName = (specifier: string) =>
  specifier
    .split("/")
    .slice(0, specifier.startsWith("@") ? 2 : 1)
    .join("/");

/** The module graph from `entries`, resolved as wrangler's bundler does for workerd. */
async function graph(entries: string[]): Promise<Graph> {
  const packages = new Set<string>();
  const recorder: Plugin = {
    name: "record-imports",
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, (args) => {
        if (args.kind === "entry-point") return undefined;
        const importer = relative(root, args.importer).replace(/^node_modules\/((@[^/]+\/)?[^/]+).*$/, "node_modules/$1");
        const host = /^(node|cloudflare|bun|deno):/.test(args.path);
        packages.add(`${importer} -> ${host ? args.path : packageName(args.path)}`);
        return host ? { path: args.path, external: true } : undefined;
      });
    },
  };
  const result = await build({
    entryPoints: entries.map((entry) => join(root, entry)),
    bundle: true,
    write: false,
    metafile: true,
    format: "esm",
    outdir: "out",
    platform: "neutral",
    mainFields: ["module", "main"],
    conditions: ["workerd", "worker", "browser"],
    plugins: [recorder],
    logLevel: "silent",
  });
  const files = new Set(Object.keys(result.metafile.inputs).map((file) => file.replace(/^node_modules\/((@[^/]+\/)?[^/]+).*$/, "node_modules/$1")));
  return { files: [...files].sort(), packages: [...packages].sort() };
}

const sources = (dir: string) =>
  readdirSync(join(root, dir))
    .filter((name) => name.endsWith(".ts"))
    .map((name) => `${dir}/${name}`);

/**
 * The Web-standard globals (WHATWG Encoding, HTML timers) that the pure code may use:
 * the same on Node, Bun, Deno, workerd and browsers. Anything else (Buffer, process,
 * WebSocketPair, document…) is a type error.
 */
const WEB_GLOBALS = `
declare class TextEncoder { encode(input?: string): Uint8Array; }
declare function setTimeout(callback: () => void, ms?: number): unknown;
declare function clearTimeout(handle: unknown): void;
`;

/** Type errors of `files` checked against the ECMAScript library and WEB_GLOBALS only (no @types, no DOM). */
function typeErrorsWithoutHostTypes(files: string[]): string[] {
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2024,
    module: ts.ModuleKind.ES2022,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ["lib.es2024.d.ts"],
    types: [],
    strict: true,
    noEmit: true,
    skipLibCheck: true,
  };
  const globalsFile = join(root, "web-globals.d.ts");
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists } = host;
  host.fileExists = (name) => name === globalsFile || fileExists(name);
  host.getSourceFile = (name, language, ...rest) => (name === globalsFile ? ts.createSourceFile(name, WEB_GLOBALS, language) : getSourceFile(name, language, ...rest));
  const program = ts.createProgram([globalsFile, ...files.map((file) => join(root, file))], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file ? `${relative(root, d.file.fileName)}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}` : "";
    return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`;
  });
}

describe("imports", () => {
  it("src/presence (rules, schemas, friendship state machine) imports zod and the wire types (src/protocol), nothing else", async () => {
    const { files, packages } = await graph(sources("src/presence"));
    expect(files.filter((f) => !f.startsWith("src/presence/") && !f.startsWith("src/protocol/"))).toEqual(["node_modules/zod"]);
    expect(new Set(packages.map((p) => p.split(" -> ")[1]))).toEqual(new Set(["zod"]));
  });

  it("the client SDK imports nothing but the wire types it is built with (src/protocol)", async () => {
    const { files, packages } = await graph(["client/src/index.ts"]);
    expect(files.filter((f) => !f.startsWith("client/src/") && !f.startsWith("src/protocol/"))).toEqual([]);
    expect(files.some((f) => f.startsWith("src/protocol/"))).toBe(true);
    expect(packages).toEqual([]);
  });

  it("the worker's only host import is cloudflare:workers, from durable/; its packages bring no node:*", async () => {
    const { packages } = await graph(["src/index.ts"]);
    const hostImports = packages.filter((p) => /-> (node|cloudflare|bun|deno):/.test(p));
    expect(hostImports.length).toBeGreaterThan(0);
    for (const entry of hostImports) expect(entry).toMatch(/^durable\/[^ ]+ -> cloudflare:workers$/);
    // The Decentraland endpoint (src/dcl, docs/DECENTRALAND.md) brings the @dcl stack; none of it imports node:*.
    // (@dcl/schemas and ajv are replaced by src/dcl/schemas-shim.ts in the deployed bundle: wrangler.toml [alias].)
    const dcl = ["@dcl/crypto", "@dcl/protocol", "@dcl/rpc", "@dcl/schemas", "@noble/curves", "@noble/hashes", "eth-connect", "ethereum-cryptography", "long", "protobufjs"];
    const dclDeep = ["aspromise", "base64", "eventemitter", "float", "inquire", "pool", "utf8"].map((m) => `@protobufjs/${m}`);
    const ajv = ["ajv", "ajv-errors", "ajv-keywords", "fast-deep-equal", "fast-uri", "json-schema-traverse"];
    expect(new Set(packages.map((p) => p.split(" -> ")[1]))).toEqual(new Set(["hono", "jose", "zod", "cloudflare:workers", ...dcl, ...dclDeep, ...ajv]));
  });

  it("the Hono app (src/app.ts) imports no host module at all", async () => {
    const { packages } = await graph(["src/app.ts"]);
    expect(packages.filter((p) => p.includes(":"))).toEqual([]);
  });

  it("the wire types (src/protocol) import nothing at all", async () => {
    const { files, packages } = await graph(sources("src/protocol"));
    expect(files.every((f) => f.startsWith("src/protocol/"))).toBe(true);
    expect(packages).toEqual([]);
  });
});

describe("globals", () => {
  it("src/presence and the client SDK type-check with the ECMAScript library and three Web globals (TextEncoder, setTimeout, clearTimeout)", () => {
    expect(typeErrorsWithoutHostTypes([...sources("src/presence"), ...sources("client/src")])).toEqual([]);
  });
});
