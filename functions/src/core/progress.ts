// Run progress derived from its chunks. Counters live on chunk documents (written with the chunk's own
// checkpoint, so a retry cannot count twice) and are summed here; the run document only mirrors the sum.
import { addCounters, ZERO_COUNTERS, type ChunkStatus, type Counters, type Phase, type RunStatus } from "./types";

export interface ChunkSummaryInput extends Counters {
  status: ChunkStatus;
  phase: Phase;
}

export interface RunProgress extends Counters {
  chunksTotal: number;
  chunksDone: number;
  chunksFailed: number;
  chunksPaused: number;
  chunksCancelled: number;
}

export const FINISHED_CHUNK_STATUSES: readonly ChunkStatus[] = ["done", "failed", "cancelled"];
export const ACTIVE_CHUNK_STATUSES: readonly ChunkStatus[] = ["pending", "running"];

export function summarize(chunks: readonly ChunkSummaryInput[]): RunProgress {
  let counters: Counters = ZERO_COUNTERS;
  const count = (s: ChunkStatus) => chunks.filter((c) => c.status === s).length;
  for (const c of chunks) counters = addCounters(counters, c);
  return {
    ...counters,
    chunksTotal: chunks.length,
    chunksDone: count("done"),
    chunksFailed: count("failed"),
    chunksPaused: count("paused"),
    chunksCancelled: count("cancelled"),
  };
}

/** The status a run ends with once every chunk has finished. */
export function finalStatus(progress: RunProgress): Extract<RunStatus, "completed" | "failed"> {
  return progress.chunksFailed > 0 ? "failed" : "completed";
}

export function isFinishedRun(status: RunStatus): boolean {
  return status === "completed" || status === "failed" || status === "cancelled";
}

/** Where a new chunk starts: at its first phase with work, waiting for a later phase, or already done. */
export function initialChunkPosition(
  budgets: Partial<Record<Phase, number>>,
  phases: readonly Phase[],
): { status: "pending" | "waiting" | "done"; phase: Phase } {
  const first = phases.findIndex((p) => (budgets[p] ?? 0) > 0);
  const lastPhase = phases[phases.length - 1] as Phase;
  if (first === -1) return { status: "done", phase: lastPhase };
  return { status: first === 0 ? "pending" : "waiting", phase: phases[first] as Phase };
}

/** Where a chunk goes when it finishes a phase: waiting for its next phase with work, or done. */
export function positionAfterPhase(
  current: Phase,
  budgets: Partial<Record<Phase, number>>,
  phases: readonly Phase[],
): { status: "waiting" | "done"; phase: Phase } {
  const later = phases.slice(phases.indexOf(current) + 1).find((p) => (budgets[p] ?? 0) > 0);
  return later ? { status: "waiting", phase: later } : { status: "done", phase: current };
}

/** The phase after `current`, if any. */
export function nextPhase(current: Phase, phases: readonly Phase[]): Phase | undefined {
  return phases[phases.indexOf(current) + 1];
}

/** The fields of an event that decide whether a run's phase examines it. */
export interface SelectionFields {
  type?: unknown;
  processed?: unknown;
  processedBy?: unknown;
}

/**
 * Whether a run examines an event in a phase. A replay takes events nobody has processed, plus those this
 * same run processed in an earlier delivery (so a retried page counts them again instead of losing them).
 */
export function isSelected(
  event: SelectionFields,
  run: { runId: string; type: "webhook_replay" | "reversal_backfill"; dryRun: boolean },
  phase: Phase,
): boolean {
  const reversal = event.type === "order.refunded" || event.type === "order.chargeback";
  if (reversal !== (phase === "reversals")) return false;
  if (run.type === "reversal_backfill") return true;
  return event.processed !== true || (!run.dryRun && event.processedBy === run.runId);
}
