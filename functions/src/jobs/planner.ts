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

/**
 * Plans a run. Counting the whole range first costs a handful of queries; only when the cap binds (more
 * selected events than maxEvents) are days counted one by one, to share the cap out exactly. Otherwise
 * every day may examine up to the range's count for each phase, which no single day can exceed.
 */
export async function planRun(
  db: Firestore,
  request: { type: RunType; startDate: string; endDate: string; maxEvents: number },
): Promise<Allocation> {
  const phases = phasesFor(request.type);
  const range = await countRange(db, request.type, request.startDate, request.endDate);
  const selected = phases.reduce((n, p) => n + (range[p] ?? 0), 0);
  if (selected > request.maxEvents) {
    const counts = await countSelected(db, request.type, request.startDate, request.endDate);
    return allocateBudgets(counts, phases, request.maxEvents);
  }
  const budgets = new Map<string, Partial<Record<(typeof phases)[number], number>>>();
  if (selected > 0) {
    const perDay = Object.fromEntries(phases.filter((p) => (range[p] ?? 0) > 0).map((p) => [p, range[p] as number]));
    for (const day of daysInRange(request.startDate, request.endDate)) budgets.set(day, { ...perDay });
  }
  return { budgets, planned: selected, selected, capReached: false };
}

/** Selected events per phase over the whole range. */
async function countRange(db: Firestore, type: RunType, startDate: string, endDate: string): Promise<Partial<Record<"purchases" | "reversals", number>>> {
  const all = inRange(db, dayStartMs(startDate), dayStartMs(endDate) + DAY_MS);
  const reversals = all.where("type", "in", REVERSAL_EVENT_TYPES);
  if (type === "reversal_backfill") return { reversals: await count(reversals) };
  const total = await count(all);
  if (total === 0) return {};
  const [processed, reversalTotal, reversalProcessed] = await Promise.all([
    count(all.where("processed", "==", true)),
    count(reversals),
    count(reversals.where("processed", "==", true)),
  ]);
  return { purchases: total - reversalTotal - (processed - reversalProcessed), reversals: reversalTotal - reversalProcessed };
}
