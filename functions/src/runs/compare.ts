// The comparison of a finished real run with the dry run it executed (`planOf`), as GET
// /api/admin/dataMigrations/{id} shows it. Computed once the real run has finished and kept in
// `dataMigrations/{id}/report/comparison` while the run's outcome is the same.
import {
  COMPARED_COUNTERS,
  counterDifferences,
  describeOutcome,
  differingEvents,
  explain,
  type ComparedCounters,
  type EventNow,
  type Outcome,
} from "../core/compare";
import { isFinishedRun, type Run } from "../core/run";
import type { Deps } from "../deps";
import type { PlanComparison } from "../http/schemas";
import { refs } from "../platform/collections";
import type { ReadTally } from "../platform/firestore";
import type { MoneyMoved } from "../core/moves";
import { runMoney } from "./moves";
import { readOutcomes, type ReportEvent } from "./report";
import { keptWhileSame } from "../store/reportCache";
import { runStore } from "../store/runs";

/** Differences listed with their reason; the count covers them all. */
export const MAX_DIFFERENCES_LISTED = 100;

const counters = (run: Run): ComparedCounters =>
  Object.fromEntries(COMPARED_COUNTERS.map((k) => [k, run[k]])) as ComparedCounters;

const asOutcome = (e: ReportEvent): Outcome =>
  e.outcome === "processed"
    ? { outcome: "processed" }
    : e.outcome === "skipped"
      ? { outcome: "skipped", reason: e.reason ?? "" }
      : { outcome: "error", code: e.code ?? "" };

export async function planComparison(deps: Deps, real: Run, tally?: ReadTally): Promise<PlanComparison | null> {
  if (!real.planOf || !isFinishedRun(real.status)) return null;
  const outcome = [
    "v2",
    real.status,
    real.retries,
    real.finishedAt,
    real.total,
    real.processed,
    real.skipped,
    real.errors,
  ];
  return keptWhileSame(deps, real.id, "comparison", outcome, tally, () => compare(deps, real, tally));
}

async function compare(deps: Deps, real: Run, tally: ReadTally | undefined): Promise<PlanComparison> {
  const dryId = real.planOf as string;
  const [dryRead, dryEvents, realEvents, realMoney] = await Promise.all([
    runStore(deps.db).get(dryId),
    readOutcomes(deps, dryId, tally),
    readOutcomes(deps, real.id, tally),
    runMoney(deps, real, tally) as Promise<MoneyMoved>,
  ]);
  tally?.docs(1);
  if (!dryRead) {
    return {
      dryRunId: dryId,
      matches: false,
      dry: null,
      real: counters(real),
      counterDifferences: [],
      differenceCount: 0,
      differences: [],
      money: { dry: null, real: realMoney },
      note: `The dry run ${dryId} no longer exists.`,
    };
  }
  const dry = dryRead.data;
  const dryMoney = await runMoney(deps, dry, tally);
  const dryOutcomes = new Map([...dryEvents].map(([id, e]) => [id, asOutcome(e)]));
  const realOutcomes = new Map([...realEvents].map(([id, e]) => [id, asOutcome(e)]));
  const differing = differingEvents(dryOutcomes, realOutcomes);
  const listed = differing.slice(0, MAX_DIFFERENCES_LISTED);
  const snaps = listed.length > 0 ? await deps.db.getAll(...listed.map((id) => refs(deps.db).events.doc(id))) : [];
  tally?.docs(snaps.length);
  const now = new Map<string, EventNow>(
    snaps.map((s) => [
      s.id,
      {
        exists: s.exists,
        processed: s.get("processed") === true,
        processedBy: (s.get("processedBy") ?? null) as string | null,
        arrivedAt: s.createTime ? s.createTime.toMillis() : null,
      },
    ]),
  );
  const facts = (r: Run) => ({ id: r.id, createdAt: r.createdAt, capReached: r.capReached });
  const differences = listed.map((eventId) => {
    const d = dryOutcomes.get(eventId);
    const r = realOutcomes.get(eventId);
    return {
      eventId,
      dry: describeOutcome(d),
      real: describeOutcome(r),
      why: explain(d, r, now.get(eventId), facts(dry), facts(real)),
    };
  });
  const counterDiffs = counterDifferences(counters(dry), counters(real));
  // The same outcomes can still move other amounts: a product's points changed in between.
  const moneyDiffers = JSON.stringify(dryMoney) !== JSON.stringify(realMoney);
  return {
    dryRunId: dryId,
    matches: counterDiffs.length === 0 && differing.length === 0 && !moneyDiffers,
    dry: counters(dry),
    real: counters(real),
    counterDifferences: counterDiffs,
    differenceCount: differing.length,
    differences,
    money: { dry: dryMoney, real: realMoney },
    note:
      moneyDiffers && differing.length === 0
        ? "the same events moved other amounts of points than the dry run said: a product's points changed in between"
        : null,
  };
}
