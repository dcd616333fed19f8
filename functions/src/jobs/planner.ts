// Counts, per day and phase, the events a new run would select, so that the event cap can be shared out
// deterministically before any chunk starts (see core/plan.ts).
import { Timestamp, type Firestore, type Query } from "firebase-admin/firestore";
import { allocateBudgets, type Allocation, type SelectedCount } from "../core/plan";
import { dayBounds, dayStartMs, DAY_MS, daysInRange } from "../core/dates";
import { phasesFor, REVERSAL_EVENT_TYPES, type RunType } from "../core/types";
import { refs } from "../platform/collections";
import { mapWithConcurrency } from "../platform/firestore";

const COUNT_CONCURRENCY = 24;

async function count(query: Query): Promise<number> {
  return (await query.count().get()).data().count;
}

function inRange(db: Firestore, startMs: number, endMs: number): Query {
  return refs(db)
    .events.where("createdAt", ">=", Timestamp.fromMillis(startMs))
    .where("createdAt", "<", Timestamp.fromMillis(endMs));
}

/** Selected events per day and phase, matching `isSelected` for a run that has not started yet. */
export async function countSelected(db: Firestore, type: RunType, startDate: string, endDate: string): Promise<SelectedCount[]> {
  const rangeTotal = await count(inRange(db, dayStartMs(startDate), dayStartMs(endDate) + DAY_MS));
  if (rangeTotal === 0) return [];
  const perDay = await mapWithConcurrency(daysInRange(startDate, endDate), COUNT_CONCURRENCY, async (day) => {
    const { startMs, endMs } = dayBounds(day);
    const all = inRange(db, startMs, endMs);
    const reversals = all.where("type", "in", REVERSAL_EVENT_TYPES);
    if (type === "reversal_backfill") {
      return [{ day, phase: "reversals" as const, selected: await count(reversals) }];
    }
    const total = await count(all);
    if (total === 0) return [];
    const [processed, reversalTotal, reversalProcessed] = await Promise.all([
      count(all.where("processed", "==", true)),
      count(reversals),
      count(reversals.where("processed", "==", true)),
    ]);
    const openReversals = reversalTotal - reversalProcessed;
    return [
      { day, phase: "purchases" as const, selected: total - reversalTotal - (processed - reversalProcessed) },
      { day, phase: "reversals" as const, selected: openReversals },
    ];
  });
  return perDay.flat();
}

export async function planRun(
  db: Firestore,
  request: { type: RunType; startDate: string; endDate: string; maxEvents: number },
): Promise<Allocation> {
  const counts = await countSelected(db, request.type, request.startDate, request.endDate);
  return allocateBudgets(counts, phasesFor(request.type), request.maxEvents);
}
