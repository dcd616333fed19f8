// How a run's event cap is shared out among its day chunks. The plan is computed once, from counts taken
// when the run starts, so a dry run and the real run that follows it examine the same events: the first
// `maxEvents` selected events, purchases before reversals, earliest day first.
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
  /** Events the run plans to examine: the sum of all budgets. */
  planned: number;
  /** Events selected in the range when the run was planned. */
  selected: number;
  /** True when the cap leaves selected events for a later run. */
  capReached: boolean;
}

/** Shares `maxEvents` out in phase order, then day order. */
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
