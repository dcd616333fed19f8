// Deliberate bugs in the I/O code (Stryker mutates only the pure core), each of which a named emulator test
// must catch. For each: patch the source, run that test inside the local stack, expect it to fail, restore.
//
//   npm run mutation:io            every bug
//   npm run mutation:io -- 2       only the second
//
// Prints one line per bug and, last, a JSON summary. Exits 1 if any bug survived its test.
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./setup";

interface Mutant {
  name: string;
  file: string;
  find: string;
  replace: string;
  test: { file: string; name: string };
}

export const MUTANTS: Mutant[] = [
  {
    name: "run every day's refunds and chargebacks at once (their outcome then depends on which day runs first)",
    file: "functions/src/core/types.ts",
    find: 'export const SEQUENTIAL_PHASES: readonly Phase[] = ["reversals", "closings"];',
    replace: "export const SEQUENTIAL_PHASES: readonly Phase[] = [];",
    test: { file: "test/emulator/index.model.test.ts", name: "sequences from seed" },
  },
  {
    name: "drop the page commit's compare-and-set (commit from wherever the chunk is now)",
    file: "functions/src/chunks/page.ts",
    find: "const transition = commitPage(current.data, page, me,",
    replace: "const transition = commitPage(current.data, { ...page, from: positionKey(current.data) }, me,",
    test: {
      file: "test/emulator/chunks/worker.concurrency.test.ts",
      name: "a retry of the task takes over while the first attempt",
    },
  },
  {
    name: "split one order's events over a page's parallel groups (a refund and a chargeback of it then race)",
    file: "functions/src/ledger/groups.ts",
    find: "const key = orderId ?? `\\u0000${e.id}`;",
    replace: 'const key = `${orderId ?? ""}\\u0000${e.id}`;',
    test: { file: "test/emulator/index.model.test.ts", name: "sequences from seed" },
  },
  {
    name: "count a cancelled holder's page twice (a stopped chunk takes a late page from any position)",
    file: "functions/src/chunks/page.ts",
    find: "const transition = commitPage(current.data, page, me,",
    replace:
      'const transition = commitPage(current.data, current.data.status === "cancelled" ? { ...page, from: positionKey(current.data) } : page, me,',
    test: { file: "test/emulator/chunks/worker.concurrency.test.ts", name: "a cancel while a slow holder is mid-page" },
  },
  {
    name: "give every chunk its phase's range total as budget (events stored later then take a run past maxEvents)",
    file: "functions/src/start/planner.ts",
    find: "held.forEach((n, k) => out.push({ day: (chunks[k] as ChunkBounds).id, phase, selected: n }));",
    replace: "held.forEach((_, k) => out.push({ day: (chunks[k] as ChunkBounds).id, phase, selected }));",
    test: { file: "test/emulator/start/planner.test.ts", name: "the event cap while events arrive" },
  },
  {
    name: "scan every money event of the range, not by index (a replay's reads then follow the history)",
    file: "functions/src/chunks/pagePlan.ts",
    find: 'if (run.type === "webhook_replay" && run.unmarkedEvents === 0) {',
    replace: 'if (run.type === "webhook_replay" && run.unmarkedEvents === -1) {',
    test: { file: "test/emulator/chunks/pagePlan.cost.test.ts", name: "reads about 3 documents per open event" },
  },
  {
    name: "trust ledgerOrders alone (an order credited before the record existed is then never refunded)",
    file: "functions/src/ledger/reads.ts",
    find: "  if (unrecorded.length === 0) return lines;",
    replace: "  if (unrecorded.length >= 0) return lines;",
    test: {
      file: "test/emulator/start/planner.test.ts",
      name: "an order credited without one is still found by its refund",
    },
  },
];

const only = process.argv
  .slice(2)
  .filter((a) => a !== "--")
  .map(Number);
const chosen = MUTANTS.map((m, i) => ({ m, n: i + 1 })).filter(({ n }) => only.length === 0 || only.includes(n));
const results: Array<{ n: number; name: string; test: string; killed: boolean }> = [];
for (const { m, n } of chosen) {
  const path = join(ROOT, m.file);
  const original = readFileSync(path, "utf8");
  if (!original.includes(m.find))
    throw new Error(`mutant ${n}: ${m.file} no longer contains the line it changes; update scripts/io-mutants.ts`);
  writeFileSync(path, original.replace(m.find, m.replace));
  try {
    const run = spawnSync(
      "npx",
      ["tsx", "scripts/stack.ts", "exec", "--", `vitest run ${m.test.file} -t "${m.test.name}"`],
      { cwd: ROOT, encoding: "utf8" },
    );
    const killed = run.status !== 0 && /Tests\s.*\d+ failed/.test(run.stdout.replace(/\x1b\[[0-9;]*m/g, ""));
    results.push({ n, name: m.name, test: `${m.test.file} › ${m.test.name}`, killed });
    console.log(`${killed ? "killed  " : "SURVIVED"} ${n}. ${m.name}\n         by ${m.test.file} › "${m.test.name}"`);
  } finally {
    writeFileSync(path, original);
  }
}
const killed = results.filter((r) => r.killed).length;
console.log(JSON.stringify({ ioMutants: results.length, killed, survived: results.length - killed }));
process.exit(killed === results.length ? 0 : 1);
