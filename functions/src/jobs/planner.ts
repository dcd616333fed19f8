// Counts the events a new run would select, so that the event cap can be shared out deterministically
// before any chunk starts (see core/plan.ts), and cuts the range into chunks (core/shards.ts). The cost is
// bounded whatever the range: a handful of range counts, one count per split of a busy range, plus a
// binary search for the chunk the cap runs out in when it binds (times the groups of ten users a canary's
// counts take).
import { Timestamp, type Firestore, type Query } from "firebase-admin/firestore";
import { budgetsFromCut, findCut, type Allocation, type Cut } from "../core/plan";
import { daysInRange } from "../core/dates";
import { cutRange, daySpan, type Span } from "../core/shards";
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

/** Most chunks a run may have: a run, its chunks, its idempotency and admission records share one 500-write batch. */
export const MAX_CHUNKS = 497;

type Counter = (q: Query) => Promise<number>;

/** A count over everyone's events, or, for a canary, the sum of counts over its users in groups. */
function counterFor(count: Counter, userIds: readonly string[] | null): Counter {
  if (!userIds) return count;
  const groups: string[][] = [];
  for (let i = 0; i < userIds.length; i += USERS_PER_QUERY) groups.push(userIds.slice(i, i + USERS_PER_QUERY));
  return async (q) => (await Promise.all(groups.map((g) => count(q.where("userId", "in", g))))).reduce((a, b) => a + b, 0);
}

/**
 * Selected events per phase in [startMs, endMs), matching core/selection.ts for a run that has not
 * started: a replay selects what is not processed, a reversal backfill every refund and chargeback. For a
 * replay, `all` is every event of the span.
 */
async function countPhases(
  db: Firestore,
  type: RunType,
  startMs: number,
  endMs: number,
  count: Counter,
): Promise<{ phases: Partial<Record<Phase, number>>; all?: number }> {
  const all = inRange(db, startMs, endMs);
  const reversals = all.where("type", "in", REVERSAL_EVENT_TYPES);
  if (type === "reversal_backfill") return { phases: { reversals: await count(reversals) } };
  const total = await count(all);
  if (total === 0) return { phases: { purchases: 0, reversals: 0 }, all: 0 };
  const [processed, reversalTotal, reversalProcessed] = await Promise.all([
    count(all.where("processed", "==", true)),
    count(reversals),
    count(reversals.where("processed", "==", true)),
  ]);
  return {
    phases: { purchases: total - reversalTotal - (processed - reversalProcessed), reversals: reversalTotal - reversalProcessed },
    all: total,
  };
}

/** What a plan adds to the cap's allocation: the run's chunks. */
export interface RunPlan extends Allocation {
  /** The chunks, in time order: whole days, and the shards of days with more than `shardEvents` events. */
  spans: Span[];
}

/** Plans a run: its chunks, budgets per chunk and phase, and how many count queries that took. */
export async function planRun(
  db: Firestore,
  request: { type: RunType; startDate: string; endDate: string; maxEvents: number; userIds?: readonly string[] | null },
  options: { shardEvents: number },
): Promise<RunPlan> {
  let queries = 0;
  const plain: Counter = async (q: Query) => {
    queries++;
    return (await q.count().get()).data().count;
  };
  const count = counterFor(plain, request.userIds ?? null);
  const phases = phasesFor(request.type);
  const days = daysInRange(request.startDate, request.endDate);
  const rangeStart = daySpan(days[0] as string).startMs;
  const rangeEnd = daySpan(days[days.length - 1] as string).endMs;
  const totals = await countPhases(db, request.type, rangeStart, rangeEnd, count);
  // A canary's events are few: its chunks stay days. Otherwise busy days are cut into shards.
  const spans = request.userIds
    ? days.map(daySpan)
    : (await cutRange(days, options.shardEvents, MAX_CHUNKS, (s, e) => plain(inRange(db, s, e)), totals.all)).spans;
  // Where the cap runs out: the first phase whose total exceeds what is left of it.
  let remaining = request.maxEvents;
  let cut: { phase: Phase; cut: Cut } | null = null;
  for (const phase of phases) {
    const total = totals.phases[phase] ?? 0;
    if (total > remaining) {
      const prefix = async (i: number) => (await countPhases(db, request.type, rangeStart, (spans[i] as Span).endMs, count)).phases[phase] ?? 0;
      cut = { phase, cut: await findCut(spans.length, remaining, prefix) };
      break;
    }
    remaining -= total;
  }
  const ids = spans.map((s) => s.id);
  return { ...budgetsFromCut(ids, phases, totals.phases, request.maxEvents, cut), spans, queries };
}
