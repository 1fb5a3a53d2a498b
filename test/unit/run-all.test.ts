import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

// `test:unit` runs the unit and the property suites through scripts/run-all.mjs (issue #12):
// with `a && b` a failing unit suite hid the property suites.
describe("scripts/run-all.mjs", () => {
  it("runs every command even when an earlier one fails, and fails if any failed", () => {
    const run = spawnSync(process.execPath, ["scripts/run-all.mjs", "exit 3", "echo second-ran"], { encoding: "utf8" });
    expect(run.stdout).toContain("second-ran");
    expect(run.status).toBe(1);
  });

  it("succeeds when every command succeeds", () => {
    expect(spawnSync(process.execPath, ["scripts/run-all.mjs", "true", "true"]).status).toBe(0);
  });

  it("is what test:unit uses", () => {
    const pkg = JSON.parse(readFileSync("package.json", "utf8")) as { scripts: Record<string, string> };
    expect(pkg.scripts["test:unit"]).toMatch(/^node scripts\/run-all\.mjs /);
  });
});
