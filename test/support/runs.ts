// What the emulator suites read of a run to check it: its document, the entries it wrote, and the recount
// every finished run must pass.
import { expect } from "vitest";
import { buildReport } from "../../functions/src/runs/report";
import type { RunDoc } from "../../functions/src/store/runs";
import { db, testDeps } from "./emulator";

/** A run's document as stored. */
export async function runDoc(id: string): Promise<RunDoc> {
  return (await db().collection("dataMigrations").doc(id).get()).data() as RunDoc;
}

/** Ledger entries a run wrote (its own: `migrationId` is the run). */
export async function entriesOf(runId: string): Promise<number> {
  return (await db().collection("ledgerEntries").where("migrationId", "==", runId).count().get()).data().count;
}

/**
 * A finished run's counters equal a recount: `processed` the events its entries name (a dry run: its
 * shadow entries), its counters a recount of its page records, reconciled and verified.
 */
export async function expectRecount(id: string, note: string) {
  const run = await runDoc(id);
  const entries = run.dryRun
    ? await db().collection("dataMigrations").doc(id).collection("shadowLedger").select("sourceEventId").get()
    : await db().collection("ledgerEntries").where("migrationId", "==", id).select("sourceEventId").get();
  const writers = new Set(entries.docs.map((d) => d.get("sourceEventId") as string));
  expect(run.processed, `${note}: processed equals the events the run's entries name`).toBe(writers.size);
  const report = await buildReport(testDeps().deps, id);
  expect(report.totals, `${note}: counters equal a recount of the page records`).toEqual({
    total: run.total,
    processed: run.processed,
    skipped: run.skipped,
    errors: run.errors,
  });
  expect(report.reconciled, `${note}: reconciled`).toBe(true);
  expect(report.verification.ok, `${note}: verification ${JSON.stringify(report.verification)}`).toBe(true);
  return { run, report };
}
