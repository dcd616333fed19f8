// Counts the events a new run would select, so that the event cap can be shared out deterministically
// before any chunk starts (see core/plan.ts). The cost is bounded whatever the range: a handful of range
// counts, plus a binary search for the day the cap runs out on when it binds.
import { Timestamp, type Firestore, type Query } from "firebase-admin/firestore";
import { budgetsFromCut, findCut, type Allocation, type Cut } from "../core/plan";
import { dayStartMs, DAY_MS, daysInRange } from "../core/dates";
import { phasesFor, REVERSAL_EVENT_TYPES, type Phase, type RunType } from "../core/types";
import { refs } from "../platform/collections";

function inRange(db: Firestore, startMs: number, endMs: number): Query {
  return refs(db)
    .events.where("createdAt", ">=", Timestamp.fromMillis(startMs))
    .where("createdAt", "<", Timestamp.fromMillis(endMs));
}

/**
 * Selected events per phase between two days (inclusive), matching core/selection.ts for a run that has not
 * started: a replay selects what is not processed, a reversal backfill every refund and chargeback.
 */
async function countPhases(db: Firestore, type: RunType, from: string, to: string, count: (q: Query) => Promise<number>): Promise<Partial<Record<Phase, number>>> {
  const all = inRange(db, dayStartMs(from), dayStartMs(to) + DAY_MS);
  const reversals = all.where("type", "in", REVERSAL_EVENT_TYPES);
  if (type === "reversal_backfill") return { reversals: await count(reversals) };
  const total = await count(all);
  if (total === 0) return { purchases: 0, reversals: 0 };
  const [processed, reversalTotal, reversalProcessed] = await Promise.all([
    count(all.where("processed", "==", true)),
    count(reversals),
    count(reversals.where("processed", "==", true)),
  ]);
  return { purchases: total - reversalTotal - (processed - reversalProcessed), reversals: reversalTotal - reversalProcessed };
}

/** Plans a run: budgets per day and phase, and how many count queries that took. */
export async function planRun(
  db: Firestore,
  request: { type: RunType; startDate: string; endDate: string; maxEvents: number },
): Promise<Allocation> {
  let queries = 0;
  const count = async (q: Query) => {
    queries++;
    return (await q.count().get()).data().count;
  };
  const phases = phasesFor(request.type);
  const days = daysInRange(request.startDate, request.endDate);
  const totals = await countPhases(db, request.type, request.startDate, request.endDate, count);
  // Where the cap runs out: the first phase whose total exceeds what is left of it.
  let remaining = request.maxEvents;
  let cut: { phase: Phase; cut: Cut } | null = null;
  for (const phase of phases) {
    const total = totals[phase] ?? 0;
    if (total > remaining) {
      const prefix = async (i: number) => (await countPhases(db, request.type, request.startDate, days[i] as string, count))[phase] ?? 0;
      cut = { phase, cut: await findCut(days.length, remaining, prefix) };
      break;
    }
    remaining -= total;
  }
  return { ...budgetsFromCut(days, phases, totals, request.maxEvents, cut), queries };
}
