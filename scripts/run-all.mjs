// Runs every command given (each a shell command line), all of them even when one fails,
// and exits non-zero if any failed: `a && b` would skip b whenever a fails (issue #12).
import { spawnSync } from "node:child_process";

const failed = [];
for (const command of process.argv.slice(2)) {
  const { status, signal } = spawnSync(command, { shell: true, stdio: "inherit" });
  if (status !== 0) failed.push(`${command} (${signal ?? `exit ${status}`})`);
}
if (failed.length > 0) {
  console.error(`\nfailed: ${failed.join("; ")}`);
  process.exit(1);
}
