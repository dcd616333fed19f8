/** The two kinds of repair a run can perform. */
export const RUN_TYPES = ["webhook_replay", "reversal_backfill"] as const;
export type RunType = (typeof RUN_TYPES)[number];

/** Life cycle of a run (`dataMigrations/{id}.status`). */
export const RUN_STATUSES = ["pending", "running", "paused", "completed", "failed", "cancelled"] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** Life cycle of one day chunk. `waiting` means its purchases are done and it waits for every other day's. */
export const CHUNK_STATUSES = ["pending", "running", "waiting", "paused", "done", "failed", "cancelled"] as const;
export type ChunkStatus = (typeof CHUNK_STATUSES)[number];

/**
 * A replay runs in two phases so that, across all days, every purchase is applied before any reversal:
 * `purchases` handles every event that is not a refund or chargeback, `reversals` handles those.
 */
export const PHASES = ["purchases", "reversals"] as const;
export type Phase = (typeof PHASES)[number];

export const EVENT_TYPES = ["order.completed", "order.refunded", "order.chargeback"] as const;
export type EventType = (typeof EVENT_TYPES)[number];
export const REVERSAL_EVENT_TYPES: readonly EventType[] = ["order.refunded", "order.chargeback"];

export type ReversalReason = "refund" | "chargeback";

/** Per-event failure codes recorded on a run; the event stays unprocessed and a later run retries it. */
export const EVENT_ERROR_CODES = {
  INVALID_EVENT: "INVALID_EVENT",
  PRODUCT_NOT_FOUND: "PRODUCT_NOT_FOUND",
  PRODUCT_INVALID: "PRODUCT_INVALID",
  ORIGINAL_PURCHASE_NOT_FOUND: "ORIGINAL_PURCHASE_NOT_FOUND",
} as const;
export type EventErrorCode = keyof typeof EVENT_ERROR_CODES;

/** Why an examined event needed nothing. */
export type SkipReason = "ALREADY_PROCESSED" | "PURCHASE_EXISTS" | "ALREADY_REVERSED";

export type EventOutcome =
  | { eventId: string; result: "processed"; entryId: string; userId: string; points: number }
  | { eventId: string; result: "skipped"; reason: SkipReason; entryId?: string }
  | { eventId: string; result: "error"; code: EventErrorCode; message: string };

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

export function countOutcomes(outcomes: readonly EventOutcome[]): Counters {
  const c = { total: outcomes.length, processed: 0, skipped: 0, errors: 0 };
  for (const o of outcomes) {
    if (o.result === "processed") c.processed++;
    else if (o.result === "skipped") c.skipped++;
    else c.errors++;
  }
  return c;
}

export function phasesFor(type: RunType): Phase[] {
  return type === "webhook_replay" ? ["purchases", "reversals"] : ["reversals"];
}

export function isReversalType(type: unknown): type is EventType {
  return type === "order.refunded" || type === "order.chargeback";
}
