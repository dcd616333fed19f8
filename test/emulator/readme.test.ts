// The README's runbook, run verbatim: every ```bash and ```sh block of the "Operator runbook" section, in
// order, in one shell, against the stack with the sample store `npm start` seeds. (Commands that only make
// sense against production live in docs/, not in the runbook.)
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { seedSampleData } from "../../scripts/seed";
import { clearFirestore, db } from "../support/emulator";

function runbookBlocks(): string[] {
  const readme = readFileSync("README.md", "utf8");
  const start = readme.indexOf("## Operator runbook");
  const section = readme.slice(start, readme.indexOf("\n## ", start + 1));
  return [...section.matchAll(/```(?:bash|sh)\n([\s\S]*?)```/g)].map((m) => m[1] as string);
}

describe("the README runbook", () => {
  // The sample store's busy week makes every later query scan 10,000 more documents on the emulator;
  // the files after this one start from an empty database instead.
  afterAll(async () => {
    await clearFirestore();
  });

  it("works verbatim, start to finish, against the sample store", async () => {
    await seedSampleData(db());
    const blocks = runbookBlocks();
    expect(blocks.length).toBeGreaterThanOrEqual(8);
    const script = ["set -euo pipefail", ...blocks.map((b, i) => `echo "::block ${i + 1}"\n${b}`)].join("\n");
    const { stdout } = await promisify(execFile)("bash", ["-c", script], { maxBuffer: 64 * 1024 * 1024, timeout: 600_000 }).catch((error: { stdout?: string; stderr?: string }) => {
      console.log(`the runbook stopped:\n${error.stdout ?? ""}\n${error.stderr ?? ""}`);
      throw error;
    });
    if (process.env.README_TEST_PRINT) console.log(stdout);

    // The dry run; the canary and its execution; the whole range planned again and executed; the retry
    // after adding the product (which now differs from its plan, and says why); the reversal backfill; the
    // check; pause, resume and cancel of the busy week; the kill switch; curl executing a plan.
    expect(stdout).toMatch(/completed \[dry run\] .*examined 88\/88 · processed 84 · skipped 0 · errors 4/);
    expect(stdout).toMatch(/completed \[dry run\] \[canary: 2 users\] reversals · examined 12\/12 · processed 12 · skipped 0 · errors 0/);
    expect(stdout).toMatch(/webhook_replay_\d+ completed \[canary: 2 users\] reversals · examined 12\/12 · processed 12 · skipped 0 · errors 0 · chunks 21\/21\nMatches its dry run webhook_replay_\d+\./);
    expect(stdout).toMatch(/webhook_replay_\d+ completed reversals · examined 76\/76 · processed 72 · skipped 0 · errors 4 · chunks 21\/21\nMatches its dry run webhook_replay_\d+\./);
    expect(stdout).toMatch(/retry: done/);
    expect(stdout).toMatch(/completed reversals · examined 76\/76 · processed 74 · skipped 0 · errors 2 · chunks 21\/21\nDiffers from its dry run webhook_replay_\d+: processed 72 → 74, errors 4 → 2; 2 events differ:/);
    expect(stdout).toMatch(/evt_po_legacy_1_completed: dry run error \(PRODUCT_NOT_FOUND\), real run processed — the product was added/);
    expect(stdout).toMatch(/reversal_backfill_\d+ completed reversals · examined 34\/34 · processed 9 .*\nMatches its dry run reversal_backfill_\d+\./);
    expect(stdout).toMatch(/Wrote report.json: .* reconciled with the run: yes; verification: ok/);
    expect(stdout).toMatch(/completed \[dry run\] reversals · examined 2\/2 · processed 0 · skipped 0 · errors 2/);
    expect(stdout).toMatch(/pause: done .* paused \(paused by operator@backfill.local\)/);
    expect(stdout).toMatch(/resume: done/);
    expect(stdout).toMatch(/cancel: done .* cancelled/);
    expect(stdout).toMatch(/backfill DISABLED/);
    expect(stdout).toMatch(/backfill enabled/);
    expect(stdout).toMatch(/"planOf":"webhook_replay_\d+"/);
    const report = JSON.parse(readFileSync("report.json", "utf8"));
    expect(report).toMatchObject({ reconciled: true, verification: { ok: true } });
  });
});
