// Deno: two SDK clients against the service hosted by Deno (test/runtimes/run.ts
// starts it and passes the URLs). Run with `deno test` against this folder's
// deno.json, which maps `@edge-presence/client` to the npm package (as
// `deno add npm:@edge-presence/client` would) and resolves it from node_modules.
import { friendsSeeEachOther } from "./scenario.ts";

const hosts = [
  ["wrangler dev (deno run -A npm:wrangler dev)", Deno.env.get("SMOKE_WRANGLER_URL")],
  ["Miniflare API (deno run -A scripts/serve-miniflare.mjs)", Deno.env.get("SMOKE_MINIFLARE_URL")],
] as const;

for (const [host, url] of hosts) {
  Deno.test(`Deno ${Deno.version.deno}, service on ${host}: friends see each other online, a status change, and offline after close`, async () => {
    if (!url) throw new Error(`no URL for ${host}: run through \`npm run test:runtimes\``);
    const steps = await friendsSeeEachOther(url, "deno");
    if (steps.length !== 5) throw new Error(`only ${steps.join(", ")}`);
  });
}
