// Counts the events a new run would select, so that the event cap can be shared out deterministically
// before any chunk starts (see core/plan.ts), and cuts the range into chunks (core/shards.ts). Each chunk's
// budget is its own count: per phase, one read of the selected events' times when at most LOCATE_LIMIT of
// them fall under the cap, else counts that halve the chunks holding events (`countPerChunk`).
import { Timestamp, type Firestore, type Query } from "firebase-admin/firestore";
import { allocateBudgets, bucketTimes, countPerChunk, type Allocation, type SelectedCount } from "../core/plan";
import { daysInRange } from "../core/dates";
import { cutRange, wholeDayChunk, type ChunkBounds } from "../core/shards";
import { PHASE_EVENT_TYPES, phasesFor, type Phase, type RunType } from "../core/types";
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

/** What a phase holds in a range, as a run that has not started would select it. */
interface PhaseCount {
  /** Every event of the phase's types. */
  total: number;
  selected: number;
}

/**
 * Selected events of one phase in [startMs, endMs), matching core/selection.ts: a replay selects what is
 * not processed, a reversal backfill every refund, chargeback and closing. A canary's wallets are not in
 * the events' fields a count can filter on (a gift credits another customer, a refund moves the wallets of
 * its order's purchase), so a canary's counts are everyone's: an upper bound of what it selects.
 */
async function countPhase(
  db: Firestore,
  type: RunType,
  phase: Phase,
  startMs: number,
  endMs: number,
  count: Counter,
): Promise<PhaseCount> {
  const q = ofPhase(inRange(db, startMs, endMs), phase);
  if (type === "reversal_backfill") {
    const total = await count(q);
    return { total, selected: total };
  }
  const [total, processed] = await Promise.all([count(q), count(q.where("processed", "==", true))]);
  return { total, selected: total - processed };
}

/**
 * Most selected events whose times one plan reads for a phase (one document read each, a fraction of what
 * the run's own scans then read); past it, the chunks are counted instead. Counts cost one read per 1,000
 * index entries in production, but the emulator answers each in time proportional to the whole collection:
 * planning the 20,000-event bench with 74 counts took about 40 s of its 136 s.
 */
export const LOCATE_LIMIT = 50_000;

/** Count queries a plan has in flight at once. */
const COUNT_CONCURRENCY = 16;

/** Runs at most `n` of the calls it is given at a time. */
function limiter(n: number): <T>(call: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: Array<() => void> = [];
  return async (call) => {
    if (active >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    else active++;
    try {
      return await call();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}

/** What a plan adds to the cap's allocation: the run's chunks. */
export interface RunPlan extends Allocation {
  /** The chunks, in time order: whole days, and the shards of days with more than `shardEvents` events. */
  chunks: ChunkBounds[];
  /** A replay's money events without a `processed` field (see Run.unmarkedEvents); 0 for a reversal backfill. */
  unmarkedEvents: number;
}

/** How a plan sends each of its queries; a test passes one that holds them, to count the plan's round trips. */
export type QueryGate = <T>(send: () => Promise<T>) => Promise<T>;

/**
 * Plans a run: its chunks, budgets per chunk and phase, and how many queries that took. A start waits for
 * its plan behind Hosting's 60 s, so what bounds its time is the plan's round trips (queries that must wait
 * for another's answer), not its queries: the phases are planned side by side.
 */
export async function planRun(
  db: Firestore,
  request: { type: RunType; startDate: string; endDate: string; maxEvents: number; userIds?: readonly string[] | null },
  options: { shardEvents: number; gate?: QueryGate },
): Promise<RunPlan> {
  let queries = 0;
  const slot = limiter(COUNT_CONCURRENCY);
  const gate: QueryGate = options.gate ?? ((send) => send());
  const count: Counter = (q: Query) =>
    gate(() =>
      slot(async () => {
        queries++;
        return (await q.count().get()).data().count;
      }),
    );
  const { type } = request;
  const phases = phasesFor(type);
  const days = daysInRange(request.startDate, request.endDate);
  const rangeStart = wholeDayChunk(days[0] as string).startMs;
  const rangeEnd = wholeDayChunk(days[days.length - 1] as string).endMs;
  const types = phases.flatMap((p) => PHASE_EVENT_TYPES[p]);
  // Per phase its events and those processed; for a replay, once for all its phases, those marked
  // unprocessed: the rest of the unprocessed have no `processed` field at all.
  const [counted, open] = await Promise.all([
    Promise.all(phases.map((phase) => countPhase(db, type, phase, rangeStart, rangeEnd, count))),
    type === "webhook_replay"
      ? count(inRange(db, rangeStart, rangeEnd).where("event_type", "in", types).where("processed", "==", false))
      : Promise.resolve(null),
  ]);
  const totals: Partial<Record<Phase, number>> = Object.fromEntries(
    phases.map((p, i) => [p, (counted[i] as PhaseCount).selected]),
  );
  const selectedAll = counted.reduce((n, c) => n + c.selected, 0);
  const unmarkedEvents = open === null ? 0 : Math.max(0, selectedAll - open);
  // Chunks are sized by what their scans will read: a replay whose events all carry `processed` reads only
  // the unprocessed ones (by index); otherwise every money event of the run's phases.
  const byIndex = type === "webhook_replay" && unmarkedEvents === 0;
  const scanned = counted.reduce((n, c) => n + (byIndex ? c.selected : c.total), 0);
  const read = (s: number, e: number) => {
    const q = inRange(db, s, e).where("event_type", "in", types);
    return count(byIndex ? q.where("processed", "==", false) : q);
  };
  // A canary's events are few: its chunks stay days. Otherwise busy days are cut into shards.
  const chunks = request.userIds
    ? days.map(wholeDayChunk)
    : (await cutRange(days, options.shardEvents, MAX_CHUNKS, read, scanned)).chunks;

  // Each phase's events per chunk, exact up to what is left of the cap after the phases before it; the
  // phases side by side.
  const perChunk: SelectedCount[] = [];
  let remaining = request.maxEvents;
  const needs = phases.map((phase, i) => {
    const { selected } = counted[i] as PhaseCount;
    const need = Math.min(selected, Math.max(remaining, 0));
    remaining -= selected;
    return { phase, selected, need };
  });
  const unmarked = unmarkedEvents;
  const located = await Promise.all(
    needs.map(async ({ phase, selected, need }) => {
      if (need === 0) return [];
      let held: number[];
      if (need <= LOCATE_LIMIT && (type === "reversal_backfill" || unmarked === 0)) {
        // The earliest `need` selected events' times: which chunk holds how many, in one read.
        let q = ofPhase(inRange(db, rangeStart, rangeEnd), phase);
        if (type === "webhook_replay") q = q.where("processed", "==", false);
        queries++;
        const snap = await gate(() => q.orderBy("createdAt").select("createdAt").limit(need).get());
        held = bucketTimes(
          snap.docs.map((d) => (d.get("createdAt") as Timestamp).toMillis()),
          chunks,
        );
      } else {
        // One count per split where every event carries `processed` (those not processed), else two.
        const countOf = async (from: number, to: number) => {
          const startMs = (chunks[from] as ChunkBounds).startMs;
          const endMs = (chunks[to - 1] as ChunkBounds).endMs;
          if (type === "webhook_replay" && unmarked === 0)
            return count(ofPhase(inRange(db, startMs, endMs), phase).where("processed", "==", false));
          return (await countPhase(db, type, phase, startMs, endMs, count)).selected;
        };
        held = await countPerChunk(chunks.length, selected, need, countOf);
      }
      const out: SelectedCount[] = [];
      held.forEach((n, k) => out.push({ day: (chunks[k] as ChunkBounds).id, phase, selected: n }));
      return out;
    }),
  );
  for (const counts of located) perChunk.push(...counts);
  const allocation = allocateBudgets(perChunk, phases, request.maxEvents, totals);
  return { ...allocation, chunks, queries, unmarkedEvents };
}
