// The configuration is defined once (src/presence/config.ts); the places that list it must agree.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { announcedHeartbeatMs, DEFAULT_CONFIG, readConfig, SETTINGS, TUNABLES } from "../../src/presence/config";

const root = new URL("../../", import.meta.url);
const read = (file: string) => readFileSync(new URL(file, root).pathname, "utf8");

/** `NAME = "value"` lines of one TOML section. */
function tomlSection(toml: string, section: string): Record<string, string> {
  const body = toml.split(`[${section}]`)[1]?.split(/^\[/m)[0] ?? "";
  return Object.fromEntries([...body.matchAll(/^([A-Z0-9_]+)\s*=\s*"(.*)"\s*$/gm)].map((m) => [m[1]!, m[2]!]));
}

/** README's configuration table, as it must read. */
function configurationTable(): string {
  const rows = SETTINGS.map((s) => `| \`${s.name}\` | ${s.kind} | ${s.shown} | ${s.doc} |`);
  return ["| name | kind | default | meaning |", "|---|---|---|---|", ...rows].join("\n");
}

describe("the announced heartbeat interval", () => {
  it("is the configured one while it fits the TTL", () => {
    expect(announcedHeartbeatMs(DEFAULT_CONFIG)).toBe(30_000);
    expect(announcedHeartbeatMs({ heartbeatIntervalMs: 1_000, ttlMs: 4_000 })).toBe(1_000);
  });

  it("never exceeds a third of the TTL: a client that follows it survives one lost heartbeat", () => {
    expect(announcedHeartbeatMs({ heartbeatIntervalMs: 30_000, ttlMs: 10_000 })).toBe(3_333);
    expect(announcedHeartbeatMs({ heartbeatIntervalMs: 30_000, ttlMs: 60_000 })).toBe(20_000);
    for (const ttlMs of [1, 2, 3, 500, 29_999, 90_000, 120_000]) {
      const every = announcedHeartbeatMs({ heartbeatIntervalMs: 30_000, ttlMs });
      expect(every).toBeGreaterThanOrEqual(1);
      // The heartbeat after a lost one still arrives before the TTL runs out.
      if (ttlMs >= 3) expect(2 * every).toBeLessThan(ttlMs);
    }
  });
});

describe("configuration, one source", () => {
  it("wrangler.toml [vars] lists every var with its default, and nothing else", () => {
    const expected = Object.fromEntries(SETTINGS.filter((s) => s.kind === "var").map((s) => [s.name, /^\d+$/.test(s.shown) ? s.shown : ""]));
    expect(tomlSection(read("wrangler.toml"), "vars")).toEqual(expected);
  });

  it(".dev.vars.example sets every secret and local setting", () => {
    const names = [...read(".dev.vars.example").matchAll(/^([A-Z0-9_]+)=/gm)].map((m) => m[1]);
    expect(names.sort()).toEqual(
      SETTINGS.filter((s) => s.kind !== "var")
        .map((s) => s.name)
        .sort(),
    );
  });

  it("README's table is the one the settings make", () => {
    const table = configurationTable();
    expect(read("README.md"), `README.md's configuration table should read:\n${table}`).toContain(table);
  });

  it("reads vars and keeps defaults for junk", () => {
    const config = readConfig({ PRESENCE_TTL_MS: "3000", HEARTBEAT_INTERVAL_MS: "abc", MAX_FRIENDS: "-5" });
    expect(config.ttlMs).toBe(3_000);
    expect(config.heartbeatIntervalMs).toBe(DEFAULT_CONFIG.heartbeatIntervalMs);
    expect(config.maxFriends).toBe(DEFAULT_CONFIG.maxFriends);
    expect(readConfig({})).toEqual(Object.fromEntries(Object.entries(TUNABLES).map(([k, t]) => [k, t.default])));
  });
});
