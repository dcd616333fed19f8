// Counts the events a new run would select, so that the event cap can be shared out deterministically
// before any chunk starts (see core/plan.ts), and cuts the range into chunks (core/shards.ts). The cost is
// bounded whatever the range: a handful of range counts, one count per split of a busy range, plus a
// binary search for the chunk the cap runs out in when it binds.
import { Timestamp, type Firestore, type Query } from "firebase-admin/firestore";
import { budgetsFromCut, findCut, type Allocation, type Cut } from "../core/plan";
import { daysInRange } from "../core/dates";
import { cutRange, daySpan, type Span } from "../core/shards";
import { PHASE_EVENT_TYPES, phasesFor, SEQUENTIAL_PHASES, type Phase, type RunType } from "../core/types";
import { refs } from "../platform/collections";

function inRange(db: Firestore, startMs: number, endMs: number): Query {
  return refs(db)
    .events.where("createdAt", ">=", Timestamp.fromMillis(startMs))
    .where("createdAt", "<", Timestamp.fromMillis(endMs));
}

/** Most chunks a run may have: a run, its chunks, its idempotency and admission records share one 500-write batch. */
export const MAX_CHUNKS = 497;

type Counter = (q: Query) => Promise<number>;

/** The events of a phase's types in a query's range. */
function ofPhase(q: Query, phase: Phase): Query {
  const types = PHASE_EVENT_TYPES[phase];
  return types.length === 1 ? q.where("event_type", "==", types[0]) : q.where("event_type", "in", types);
}

/**
 * Selected events per phase in [startMs, endMs), matching core/selection.ts for a run that has not
 * started: a replay selects what is not processed, a reversal backfill every refund, chargeback and
 * closing. A canary's wallets are not in the events' fields a count can filter on (a gift credits another
 * customer, a refund moves the wallets of its order's purchase), so a canary's counts are everyone's: an
 * upper bound of what it selects. The phases are counted side by side.
 */
async function countPhases(db: Firestore, type: RunType, startMs: number, endMs: number, count: Counter): Promise<Partial<Record<Phase, number>>> {
  const counted = await Promise.all(phasesFor(type).map(async (phase): Promise<[Phase, number]> => [phase, await countPhase(db, type, phase, startMs, endMs, count)]));
  return Object.fromEntries(counted);
}

/** Selected events of one phase in [startMs, endMs): one count, two for a replay (less those processed). */
async function countPhase(db: Firestore, type: RunType, phase: Phase, startMs: number, endMs: number, count: Counter): Promise<number> {
  const q = ofPhase(inRange(db, startMs, endMs), phase);
  if (type === "reversal_backfill") return count(q);
  const [total, processed] = await Promise.all([count(q), count(q.where("processed", "==", true))]);
  return total - processed;
}

/**
 * Most refunds, chargebacks or closings in a range whose times one plan reads, to give the chunks without
 * any no step in that phase (sequential phases run one chunk after another: an empty chunk still costs a
 * turn). Past it, every chunk gets the step and scans.
 */
export const LOCATE_LIMIT = 10_000;

/** The chunks whose span holds at least one event of `phase` (null: more events than LOCATE_LIMIT). */
async function chunksWith(db: Firestore, phase: Phase, spans: readonly Span[], startMs: number, endMs: number): Promise<Set<string> | null> {
  const snap = await ofPhase(inRange(db, startMs, endMs), phase).select("createdAt").limit(LOCATE_LIMIT + 1).get();
  if (snap.size > LOCATE_LIMIT) return null;
  const times = snap.docs.map((d) => (d.get("createdAt") as Timestamp).toMillis());
  return new Set(spans.filter((s) => times.some((t) => t >= s.startMs && t < s.endMs)).map((s) => s.id));
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
  const count = plain;
  const phases = phasesFor(request.type);
  const days = daysInRange(request.startDate, request.endDate);
  const rangeStart = daySpan(days[0] as string).startMs;
  const rangeEnd = daySpan(days[days.length - 1] as string).endMs;
  const [totals, all] = await Promise.all([countPhases(db, request.type, rangeStart, rangeEnd, count), plain(inRange(db, rangeStart, rangeEnd))]);
  // A canary's events are few: its chunks stay days. Otherwise busy days are cut into shards.
  const spans = request.userIds ? days.map(daySpan) : (await cutRange(days, options.shardEvents, MAX_CHUNKS, (s, e) => plain(inRange(db, s, e)), all)).spans;
  // Where the cap runs out: the first phase whose total exceeds what is left of it.
  let remaining = request.maxEvents;
  let cut: { phase: Phase; cut: Cut } | null = null;
  for (const phase of phases) {
    const total = totals[phase] ?? 0;
    if (total > remaining) {
      const prefix = (i: number) => countPhase(db, request.type, phase, rangeStart, (spans[i] as Span).endMs, count);
      cut = { phase, cut: await findCut(spans.length, remaining, prefix) };
      break;
    }
    remaining -= total;
  }
  const ids = spans.map((s) => s.id);
  const allocation = budgetsFromCut(ids, phases, totals, request.maxEvents, cut);
  // A chunk with no event of a sequential phase gets no step in it (one read of the events' times).
  for (const phase of phases.filter((p) => SEQUENTIAL_PHASES.includes(p) && (totals[p] ?? 0) > 0)) {
    queries++;
    const used = await chunksWith(db, phase, spans, rangeStart, rangeEnd);
    if (!used) continue;
    for (const [id, budget] of allocation.budgets) if (!used.has(id) && budget[phase] !== undefined) budget[phase] = 0;
  }
  return { ...allocation, spans, queries };
}
