// Which runtime runs this suite. test/runtimes/run.ts sets EXPECTED_RUNTIME, so a
// runner that silently fell back to Node (a shebang, a pool that spawns `node`)
// fails here instead of passing the other suites on the wrong runtime.
import { expect, it } from "vitest";

type Runtime = "node" | "bun" | "deno";
const host = globalThis as { Deno?: { version: { deno: string } }; Bun?: { version: string } };

function runtime(): { name: Runtime; version: string } {
  if (host.Deno) return { name: "deno", version: host.Deno.version.deno };
  if (host.Bun) return { name: "bun", version: host.Bun.version };
  return { name: "node", version: process.versions.node };
}

const { name, version } = runtime();

it(`runs on ${name} ${version}, the runtime it was started for`, () => {
  const expected = process.env.EXPECTED_RUNTIME;
  if (expected) expect(name).toBe(expected);
  else expect(["node", "bun", "deno"]).toContain(name);
});
