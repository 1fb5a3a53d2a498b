// The dev secrets shared by npm start, npm run token/befriend/cli, the tests and the benchmark:
// .dev.vars if it exists, else .dev.vars.example.
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The repository's root directory, with a trailing slash. */
export const root = fileURLToPath(new URL("../..", import.meta.url).href);

export function readDevVars() {
  const file = existsSync(`${root}.dev.vars`) ? `${root}.dev.vars` : `${root}.dev.vars.example`;
  /** @type {Record<string, string>} */
  const vars = {};
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const match = /^\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (match) vars[match[1]] = match[2].replace(/^"(.*)"$/, "$1");
  }
  return vars;
}
