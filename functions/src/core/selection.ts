// Which events a run examines in each phase. A replay takes events nobody has processed; a reversal
// backfill takes every refund and chargeback, processed or not.
import type { Phase, RunType } from "./types";

/** The fields of an event that decide whether a run's phase examines it. */
export interface SelectionFields {
  type?: unknown;
  processed?: unknown;
  processedBy?: unknown;
  userId?: unknown;
}

/**
 * Whether a run examines an event in a phase. A replay takes events nobody has processed, plus those this
 * same run processed in an earlier delivery (so a retried page counts them again instead of losing them).
 * A canary run (`userIds`) takes only those users' events, by the same rules.
 */
export function isSelected(
  event: SelectionFields,
  run: { runId: string; type: RunType; dryRun: boolean; userIds?: readonly string[] | null },
  phase: Phase,
): boolean {
  if (run.userIds && !run.userIds.includes(event.userId as string)) return false;
  const reversal = event.type === "order.refunded" || event.type === "order.chargeback";
  if (reversal !== (phase === "reversals")) return false;
  if (run.type === "reversal_backfill") return true;
  return event.processed !== true || (!run.dryRun && event.processedBy === run.runId);
}
