/**
 * Reading a Linux `perf record -g` of the workerd runtime (bench/profile.mjs,
 * bench/hot-path.mjs): self time per symbol, grouped into what it is in
 * presence terms. JIT-compiled JS has no symbol (unnamed addresses): "JS (JIT code)".
 */
import { execFileSync } from "node:child_process";

/** Symbol → what it is in presence terms. First match wins; order matters. */
export const CATEGORIES = [
  ["SQLite: commit / WAL", /sqlite3PagerCommit|sqlite3WalFrames|walWrite|sqlite3BtreeCommit|ActorSqlite.*commit|Sqlite.*[Cc]ommit/],
  ["SQLite: statements", /sqlite3|Sqlite|SqlStorage/],
  ["RPC / capnp / JS RPC", /capnp|JsRpc|jsrpc|Rpc|rpc/],
  ["WebSocket (send/receive/hibernation)", /WebSocket|websocket|Hibernat/],
  ["HTTP / kj I/O", /kj::(Http|Async|Network|.*Stream)|HttpService|Http/],
  ["alarms / actor runtime", /Alarm|alarm|ActorCache|Actor|actor/],
  ["V8 runtime (GC, builtins, compiler)", /v8::|Builtins_|Builtin|Heap|Scavenge|Marking|Compiler|Turbofan|Maglev|Sparkplug|Runtime_/],
  ["JSON / serialization", /JSON|Json|Serializer|Deserializer|structuredClone/],
  ["kernel", /^\[k\]|entry_SYSCALL|syscall|__x64_sys|do_syscall/],
  ["libc / allocator", /malloc|free|memcpy|memmove|memset|tcmalloc|operator new|operator delete/],
];

/** Self time per symbol of a perf.data file, and the same grouped by CATEGORIES (percent of samples). */
export function categorize(perfData) {
  const report = execFileSync("perf", ["report", "-i", perfData, "--stdio", "--no-children", "--sort", "sym", "-g", "none", "--percent-limit", "0.05"], {
    encoding: "utf8",
    maxBuffer: 256 * 2 ** 20,
    stdio: ["ignore", "pipe", "ignore"],
  });
  const symbols = [];
  for (const line of report.split("\n")) {
    const m = /^\s+([\d.]+)%\s+(\[[.k]\])\s+(.*)$/.exec(line);
    if (m) symbols.push({ percent: Number(m[1]), kind: m[2], symbol: m[3].trim() });
  }
  const totals = new Map();
  for (const { percent, kind, symbol } of symbols) {
    const name = /^0x[0-9a-f]+$/.test(symbol) ? "JS (JIT code)" : (CATEGORIES.find(([, re]) => re.test(kind === "[k]" ? `[k] ${symbol}` : symbol))?.[0] ?? "other native");
    totals.set(name, (totals.get(name) ?? 0) + percent);
  }
  const categories = [...totals.entries()].sort((a, b) => b[1] - a[1]).map(([name, percent]) => ({ name, percent: +percent.toFixed(1) }));
  return { categories, symbols };
}
