// Counts the events a new run would select, so that the event cap can be shared out deterministically
// before any chunk starts (see core/plan.ts). The cost is bounded whatever the range: a handful of range
// counts, plus a binary search for the day the cap runs out on when it binds (times the groups of ten users
// a canary's counts take).
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
 * Users per count query of a canary: a query may hold 30 disjunctions, and a reversal count multiplies the
 * users by its two event types.
 */
export const USERS_PER_QUERY = 10;

type Counter = (q: Query) => Promise<number>;

/** A count over everyone's events, or, for a canary, the sum of counts over its users in groups. */
function counterFor(count: Counter, userIds: readonly string[] | null): Counter {
  if (!userIds) return count;
  const groups: string[][] = [];
  for (let i = 0; i < userIds.length; i += USERS_PER_QUERY) groups.push(userIds.slice(i, i + USERS_PER_QUERY));
  return async (q) => (await Promise.all(groups.map((g) => count(q.where("userId", "in", g))))).reduce((a, b) => a + b, 0);
}

/**
 * Selected events per phase between two days (inclusive), matching core/selection.ts for a run that has not
 * started: a replay selects what is not processed, a reversal backfill every refund and chargeback.
 */
async function countPhases(db: Firestore, type: RunType, from: string, to: string, count: Counter): Promise<Partial<Record<Phase, number>>> {
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
  request: { type: RunType; startDate: string; endDate: string; maxEvents: number; userIds?: readonly string[] | null },
): Promise<Allocation> {
  let queries = 0;
  const count = counterFor(async (q: Query) => {
    queries++;
    return (await q.count().get()).data().count;
  }, request.userIds ?? null);
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
