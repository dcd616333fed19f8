// How a run's event cap is shared out among its chunks (days, or shards of busy days). The plan is computed once, from counts taken
// when the run starts, so a dry run and the real run that follows it examine the same events: the first
// `maxEvents` selected events, purchases before reversals, earliest day first.
//
// Planning costs a bounded number of count queries whatever the range: one per phase over the whole range,
// and, only for the phase where the cap runs out, a binary search for the day it runs out on (at most
// ceil(log2(days)) + 1 counts of a range prefix). Days before that day may examine everything they hold,
// that day what is left of the cap, the days after it nothing.
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
  /** Count queries the plan took (each a range count: bounded by the number of phases and log2 of the days). */
  queries?: number;
  /** The chunk where the cap runs out, and in which phase: the only chunk whose budget may stop it early. */
  cutAt?: { phase: Phase; chunk: string } | null;
}

/** Shares `maxEvents` out in phase order, then day order, from a count per day and phase. */
export function allocateBudgets(counts: readonly SelectedCount[], phases: readonly Phase[], maxEvents: number): Allocation {
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
  return { budgets, planned, selected, capReached: selected > planned };
}

/** Where the cap runs out in a phase: on `days[index]`, after `before` events of the days before it. */
export interface Cut {
  index: number;
  before: number;
}

/**
 * The first day on which the running total of a phase's selected events reaches `cap`, by binary search over
 * `prefix(i)` = selected events from the first day to `days[i]` inclusive (one count query each). The caller
 * knows the whole range holds more than `cap`, so the last day always qualifies.
 */
export async function findCut(days: number, cap: number, prefix: (i: number) => Promise<number>): Promise<Cut> {
  let lo = 0;
  let hi = days - 1;
  const known = new Map<number, number>();
  const at = async (i: number) => {
    if (i < 0) return 0;
    const cached = known.get(i);
    if (cached !== undefined) return cached;
    const n = await prefix(i);
    known.set(i, n);
    return n;
  };
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if ((await at(mid)) >= cap) hi = mid;
    else lo = mid + 1;
  }
  return { index: lo, before: await at(lo - 1) };
}

/**
 * Budgets from the range totals and, where the cap runs out, its cut. A phase the cap covers gives every
 * day the phase's range total (no day can hold more); the phase it runs out in gives the days before the
 * cut their range total, the cut's day the rest of the cap, and later days nothing; later phases nothing.
 */
export function budgetsFromCut(
  days: readonly string[],
  phases: readonly Phase[],
  totals: Partial<Record<Phase, number>>,
  maxEvents: number,
  cut: { phase: Phase; cut: Cut } | null,
): Allocation {
  const budgets = new Map<string, Partial<Record<Phase, number>>>();
  let remaining = maxEvents;
  let selected = 0;
  for (const phase of phases) {
    const total = totals[phase] ?? 0;
    selected += total;
    if (total === 0) continue;
    const give = (i: number, n: number) => {
      const day = days[i] as string;
      budgets.set(day, { ...budgets.get(day), [phase]: n });
    };
    if (remaining <= 0) {
      days.forEach((_, i) => give(i, 0));
    } else if (cut?.phase === phase) {
      days.forEach((_, i) => give(i, i < cut.cut.index ? total : i === cut.cut.index ? remaining - cut.cut.before : 0));
      remaining = 0;
    } else {
      days.forEach((_, i) => give(i, total));
      remaining -= total;
    }
  }
  const planned = maxEvents - Math.max(remaining, 0);
  const cutAt = cut ? { phase: cut.phase, chunk: days[cut.cut.index] as string } : null;
  return { budgets, planned: Math.min(planned, selected), selected, capReached: selected > Math.min(planned, selected), cutAt };
}
