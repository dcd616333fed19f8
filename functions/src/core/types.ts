import type { MoneyEventType } from "./paynow";

/** The two kinds of repair a run can perform. */
export const RUN_TYPES = ["webhook_replay", "reversal_backfill"] as const;
export type RunType = (typeof RUN_TYPES)[number];

/** Life cycle of a run (`dataMigrations/{id}.status`). */
export const RUN_STATUSES = ["pending", "running", "paused", "completed", "failed", "cancelled"] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** Life cycle of one day chunk. `waiting` means it is done with a phase and waits for the run to reach its next. */
export const CHUNK_STATUSES = ["pending", "running", "waiting", "paused", "done", "failed", "cancelled"] as const;
export type ChunkStatus = (typeof CHUNK_STATUSES)[number];

/**
 * A run works in phases, so that across its whole range every purchase is applied before any refund or
 * chargeback, and every refund and chargeback before any chargeback's closing.
 */
export const PHASES = ["purchases", "reversals", "closings"] as const;
export type Phase = (typeof PHASES)[number];

/** The PayNow event types each phase examines; every other type is never examined. */
export const PHASE_EVENT_TYPES: Readonly<Record<Phase, readonly MoneyEventType[]>> = {
  purchases: ["ON_ORDER_COMPLETED"],
  reversals: ["ON_REFUND", "ON_CHARGEBACK"],
  closings: ["ON_CHARGEBACK_CLOSED"],
};

/**
 * Phases whose chunks run one at a time, in time order: one order's refunds, chargebacks and closings may
 * fall on different days, and their outcome depends on the order they are decided in. Purchases of
 * different orders never depend on each other, so their chunks run side by side.
 */
export const SEQUENTIAL_PHASES: readonly Phase[] = ["reversals", "closings"];

/** Counters every chunk and run carries; `total = processed + skipped + errors` always holds. */
export interface Counters {
  total: number;
  processed: number;
  skipped: number;
  errors: number;
}

export const ZERO_COUNTERS: Counters = Object.freeze({ total: 0, processed: 0, skipped: 0, errors: 0 });

export function addCounters(a: Counters, b: Counters): Counters {
  return {
    total: a.total + b.total,
    processed: a.processed + b.processed,
    skipped: a.skipped + b.skipped,
    errors: a.errors + b.errors,
  };
}

export function countOutcomes(outcomes: readonly { result: "processed" | "skipped" | "error" }[]): Counters {
  const c = { total: outcomes.length, processed: 0, skipped: 0, errors: 0 };
  for (const o of outcomes) {
    if (o.result === "processed") c.processed++;
    else if (o.result === "skipped") c.skipped++;
    else c.errors++;
  }
  return c;
}

export function phasesFor(type: RunType): Phase[] {
  return type === "webhook_replay" ? ["purchases", "reversals", "closings"] : ["reversals", "closings"];
}
