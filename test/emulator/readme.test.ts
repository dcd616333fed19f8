// The README's runbook, run verbatim: every ```bash block of the "Operator runbook" section, in order, in
// one shell, against the stack with the sample store `npm start` seeds.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { seedSampleData } from "../../scripts/seed";
import { db } from "../support/emulator";

function runbookBlocks(): string[] {
  const readme = readFileSync("README.md", "utf8");
  const section = readme.slice(readme.indexOf("## Operator runbook"), readme.indexOf("## Scheduled replays"));
  return [...section.matchAll(/```bash\n([\s\S]*?)```/g)].map((m) => m[1] as string);
}

describe("the README runbook", () => {
  it("works verbatim, start to finish, against the sample store", async () => {
    await seedSampleData(db());
    const blocks = runbookBlocks();
    expect(blocks.length).toBeGreaterThanOrEqual(8);
    const script = ["set -euo pipefail", ...blocks.map((b, i) => `echo "::block ${i + 1}"\n${b}`)].join("\n");
    const { stdout } = await promisify(execFile)("bash", ["-c", script], { maxBuffer: 64 * 1024 * 1024, timeout: 600_000 });

    // The real replay, the retry after adding the product, the reversal backfill, and the final dry run.
    expect(stdout).toMatch(/completed \[dry run\] .*examined 88\/88 · processed 84 · skipped 0 · errors 4/);
    expect(stdout).toMatch(/webhook_replay_\d+ completed reversals · examined 88\/88 · processed 84 · skipped 0 · errors 4 · chunks 21\/21\n/);
    expect(stdout).toMatch(/retry: done/);
    expect(stdout).toMatch(/completed reversals · examined 88\/88 · processed 86 · skipped 0 · errors 2/);
    expect(stdout).toMatch(/reversal_backfill_\d+ completed reversals · examined 34\/34 · processed 9 /);
    expect(stdout).toMatch(/Wrote report.json: .* reconciled with the run: yes; verification: ok/);
    expect(stdout).toMatch(/completed \[dry run\] reversals · examined 2\/2 · processed 0 · skipped 0 · errors 2/);
    expect(stdout).toMatch(/backfill DISABLED/);
    expect(stdout).toMatch(/backfill enabled/);
    const report = JSON.parse(readFileSync("report.json", "utf8"));
    expect(report).toMatchObject({ reconciled: true, verification: { ok: true } });
  });
});
