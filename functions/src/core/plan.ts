// How a run's event cap is shared out among its chunks (days, or shards of busy days). The plan is computed once, from counts taken
// when the run starts, so a dry run and the real run that follows it examine the same events: the first
// `maxEvents` selected events, purchases before reversals, earliest day first.
//
// Every chunk's budget is what it held itself when the run was planned (never the range's total), so
// events that arrive later, on any day, cannot take a run past `maxEvents`: a chunk stops at its budget
// and leaves them for the next run. Per-chunk counts come from one read of the selected events' times
// when they are few, else from `countPerChunk`, whose cost follows the chunks that hold events.
import type { Phase } from "./types";

/** How many events one phase of one day would examine, counted when the run was planned. */
export interface SelectedCount {
  day: string;
  phase: Phase;
  selected: number;
}

export interface Allocation {
  /** Budget per day and phase; a chunk examines at most this many events in that phase. */
  budgets: Map<string, Partial<Record<Phase, number>>>;
  /** Events the run plans to examine. */
  planned: number;
  /** Events selected in the range when the run was planned. */
  selected: number;
  /** True when the cap leaves selected events for a later run. */
  capReached: boolean;
  /** Queries the plan took: range counts, and at most one read of event times per phase. */
  queries?: number;
}

/**
 * Shares `maxEvents` out in phase order, then day order, from a count per day and phase. `totals` (events
 * selected per phase in the whole range) stands in for the sum of the counts when those stop at the cap.
 */
export function allocateBudgets(
  counts: readonly SelectedCount[],
  phases: readonly Phase[],
  maxEvents: number,
  totals?: Partial<Record<Phase, number>>,
): Allocation {
  const budgets = new Map<string, Partial<Record<Phase, number>>>();
  let remaining = maxEvents;
  let selected = 0;
  const ordered = [...counts].sort(
    (a, b) => phases.indexOf(a.phase) - phases.indexOf(b.phase) || a.day.localeCompare(b.day),
  );
  for (const { day, phase, selected: n } of ordered) {
    selected += n;
    const budget = Math.min(n, remaining);
    remaining -= budget;
    const perDay = budgets.get(day) ?? {};
    perDay[phase] = budget;
    budgets.set(day, perDay);
  }
  const planned = maxEvents - remaining;
  if (totals) selected = phases.reduce((n, p) => n + (totals[p] ?? 0), 0);
  return { budgets, planned: Math.min(planned, selected), selected, capReached: selected > planned };
}

/**
 * Selected events per chunk, for chunks `0..chunks-1` in time order holding `total` in all, exact up to the
 * first `cap` events: chunks after the cap runs out read 0 (they get no budget whatever they hold).
 * `count(from, to)` counts chunks `from..to-1`. Halves the chunks and counts only the first half of each
 * split (the second is the parent's count minus it), never splitting a part that holds nothing or lies
 * past the cap: the counts taken follow the chunks that hold events, not the range's length.
 */
export async function countPerChunk(
  chunks: number,
  total: number,
  cap: number,
  count: (from: number, to: number) => Promise<number>,
): Promise<number[]> {
  const out = Array.from({ length: chunks }, () => 0);
  const walk = async (from: number, to: number, held: number, room: number): Promise<void> => {
    if (held <= 0 || room <= 0 || from >= to) return;
    if (to - from === 1) {
      out[from] = held;
      return;
    }
    const mid = Math.floor((from + to) / 2);
    const left = await count(from, mid);
    await Promise.all([walk(from, mid, left, room), walk(mid, to, held - left, room - left)]);
  };
  await walk(0, chunks, total, cap);
  return out;
}

/** How many of `times` (ms, any order) fall in each of `chunks` ([startMs, endMs), in time order, contiguous). */
export function bucketTimes(
  times: readonly number[],
  chunks: ReadonlyArray<{ startMs: number; endMs: number }>,
): number[] {
  const out = chunks.map(() => 0);
  for (const t of times) {
    let lo = 0;
    let hi = chunks.length - 1;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if ((chunks[mid] as { startMs: number }).startMs <= t) lo = mid;
      else hi = mid - 1;
    }
    const bounds = chunks[lo];
    if (bounds && t >= bounds.startMs && t < bounds.endMs) out[lo] = (out[lo] ?? 0) + 1;
  }
  return out;
}
