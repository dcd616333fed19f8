// Mutation testing of the pure core: runs Stryker (stryker.config.mjs: functions/src/core against the unit
// tests) and prints, as its last line, the mutation score in JSON. Exits 1 below the target.
//
//   npm run mutation
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./setup";

/** The score the core must keep (issue "Runs that never lose an event…"). */
const TARGET = 85;

interface Report {
  files: Record<string, { mutants: Array<{ status: string }> }>;
}

const run = spawnSync("npx", ["stryker", "run"], { cwd: ROOT, stdio: "inherit" });
if (run.status !== 0) process.exit(run.status ?? 1);

const report = JSON.parse(readFileSync(join(ROOT, "reports/mutation/mutation.json"), "utf8")) as Report;
const count: Record<string, number> = {};
for (const file of Object.values(report.files))
  for (const m of file.mutants) count[m.status] = (count[m.status] ?? 0) + 1;
const n = (status: string) => count[status] ?? 0;
// Stryker's own definition: detected (killed or timed out) over valid mutants (not ignored, not errors).
const detected = n("Killed") + n("Timeout");
const valid = detected + n("Survived") + n("NoCoverage");
const mutationScore = valid === 0 ? 0 : Math.round((detected / valid) * 10_000) / 100;
console.log(
  JSON.stringify({
    mutationScore,
    killed: n("Killed"),
    timeout: n("Timeout"),
    survived: n("Survived"),
    noCoverage: n("NoCoverage"),
    target: TARGET,
  }),
);
process.exit(mutationScore >= TARGET ? 0 : 1);
