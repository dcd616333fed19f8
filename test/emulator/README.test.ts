// The README's runbook, run verbatim: every ```bash and ```sh block of the "Operator runbook" section, in
// order, against the stack with the sample store `npm start` seeds. Each block is a test of its own (a
// shell of its own, as a reader's terminal would be), so no single one comes near its timeout; the last
// test checks that together they printed what the runbook promises. (Commands that only make sense
// against production live in docs/, not in the runbook.)
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seedSampleData } from "../../scripts/seed";
import { clearFirestore, db } from "../support/emulator";

interface Block {
  heading: string;
  script: string;
}

function runbookBlocks(): Block[] {
  const readme = readFileSync("README.md", "utf8");
  const start = readme.indexOf("## Operator runbook");
  const section = readme.slice(start, readme.indexOf("\n## ", start + 1));
  const blocks: Block[] = [];
  let heading = "Operator runbook";
  for (const m of section.matchAll(/^### (.+)$|```(?:bash|sh)\n([\s\S]*?)```/gm)) {
    if (m[1] !== undefined) heading = m[1];
    else blocks.push({ heading, script: m[2] as string });
  }
  return blocks;
}

const blocks = runbookBlocks();
// The longest block (the canary: a dry run and its execution over 21 days) takes about 55 s on the 2-core
// machine on PayNow's format; three times that leaves room on a busy one.
const BLOCK_TIMEOUT_MS = 180_000;
const printed: string[] = [];
let broken: string | null = null;

describe("the README runbook", () => {
  // Seeding 15,000 busy-week events takes about 35 s on the 2-core machine: give it room on a busy one.
  beforeAll(async () => {
    await seedSampleData(db());
  }, 300_000);
  // The sample store's busy week makes every later query scan 15,000 more documents on the emulator;
  // the files after this one start from an empty database instead.
  afterAll(async () => {
    await clearFirestore();
  });

  it("has the whole procedure", () => {
    expect(blocks.length).toBeGreaterThanOrEqual(10);
  });

  it.each(blocks.map((b, i) => [`${i + 1}`, b.heading, b] as const))(
    "block %s (%s) works verbatim",
    async (index, _heading, block) => {
      if (broken) throw new Error(`not run: block ${broken} stopped the runbook`);
      const run = promisify(execFile)("bash", ["-c", `set -euo pipefail\n${block.script}`], {
        maxBuffer: 64 * 1024 * 1024,
        timeout: BLOCK_TIMEOUT_MS,
      });
      const { stdout } = await run.catch((error: { stdout?: string; stderr?: string }) => {
        broken = index;
        console.log(`block ${index} stopped:\n${error.stdout ?? ""}\n${error.stderr ?? ""}`);
        throw error;
      });
      if (process.env.README_TEST_PRINT) console.log(stdout);
      printed.push(stdout);
    },
    BLOCK_TIMEOUT_MS + 30_000,
  );

  it("prints what the runbook promises", () => {
    const stdout = printed.join("\n");
    // The dry run; the canary and its execution; the whole range planned again and executed; the retry
    // after adding the product (which now differs from its plan, and says why); the reversal backfill; the
    // check; pause, resume and cancel of the busy week; the kill switch; curl executing a plan.
    expect(stdout).toMatch(/completed \[dry run\] closings · examined 109\/109 · processed 98 · skipped 4 · errors 7/);
    // What the dry run would do to wallets, which the operator signs off on.
    expect(stdout).toMatch(
      /^Would move: \+[\d,]+ credited, −[\d,]+ reversed, \+[\d,]+ reinstated \(net \+[\d,]+\) across \d+ wallets; largest: \d{18} [+−][\d,]+/m,
    );
    expect(stdout).toMatch(/^Moved: \+[\d,]+ credited/m);
    expect(stdout).toMatch(
      /completed \[dry run\] \[canary: 2 users\] closings · examined 8\/109 · processed 7 · skipped 1 · errors 0/,
    );
    expect(stdout).toMatch(
      /webhook_replay_\d+ completed \[canary: 2 users\] closings · examined 8\/109 · processed 7 · skipped 1 · errors 0 · chunks 21\/21\nMatches its dry run webhook_replay_\d+\./,
    );
    expect(stdout).toMatch(
      /webhook_replay_\d+ completed closings · examined 101\/101 · processed 91 · skipped 3 · errors 7 · chunks 21\/21\nMatches its dry run webhook_replay_\d+\./,
    );
    expect(stdout).toMatch(/retry: done/);
    expect(stdout).toMatch(
      /completed closings · examined 101\/101 · processed 93 · skipped 3 · errors 5 · chunks 21\/21\nDiffers from its dry run webhook_replay_\d+: processed 91 → 93, errors 7 → 5; 2 events differ:/,
    );
    expect(stdout).toMatch(/\d{18}: dry run error \(PRODUCT_NOT_FOUND\), real run processed — the product was added/);
    expect(stdout).toMatch(
      /reversal_backfill_\d+ completed closings · examined 50\/50 · processed 11 .*\nMatches its dry run reversal_backfill_\d+\./,
    );
    expect(stdout).toMatch(/Wrote report.json: .* reconciled with the run: yes; verification: ok/);
    expect(stdout).toMatch(/completed \[dry run\] closings · examined 3\/3 · processed 0 · skipped 0 · errors 3/);
    expect(stdout).toMatch(/pause: done .* paused \(paused by operator@backfill.local\)/);
    expect(stdout).toMatch(/resume: done/);
    expect(stdout).toMatch(/cancel: done .* cancelled/);
    expect(stdout).toMatch(/backfill DISABLED/);
    expect(stdout).toMatch(/backfill enabled/);
    expect(stdout).toMatch(/"planOf":"webhook_replay_\d+"/);
    // PayNow's example order, signed and sent to the receiver, then its refund of the Gems line.
    expect(stdout).toMatch(
      /^200 \{"received":true,"eventId":"\d{18}","eventType":"ON_ORDER_COMPLETED","stored":"created","outcome":\{"eventId":"\d{18}","result":"processed","entries":\[\{"id":"purchase_612502796311908352_612502796320296960"/m,
    );
    expect(stdout).toMatch(
      /^200 \{"received":true,"eventId":"\d{18}","eventType":"ON_REFUND","stored":"created","outcome":\{"eventId":"\d{18}","result":"processed","entries":\[\{"id":"reversal_612502796311908352_612502796320296961","kind":"reversal","userId":"603120447719821312","points":-3000\}\]/m,
    );
    const report = JSON.parse(readFileSync("report.json", "utf8"));
    expect(report).toMatchObject({ reconciled: true, verification: { ok: true } });
  });
});
