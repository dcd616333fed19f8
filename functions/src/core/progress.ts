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

/**
 * One piece of a chunk's work: `scan` reads the day's events for a phase from the chunk's cursor; `errors`
 * re-examines the events of that phase that ended in an error (a retry).
 */
export interface Step {
  phase: Phase;
  step: "scan" | "errors";
}

/** A chunk's position: the status it is in, its current step, and the steps after it. */
export interface ChunkPosition {
  status: "pending" | "running" | "waiting" | "done";
  current: Step;
  upcoming: Step[];
}

/** The scan steps of a new chunk: every phase with budget, in phase order. */
export function initialSteps(budgets: Partial<Record<Phase, number>>, phases: readonly Phase[]): Step[] {
  return phases.filter((p) => (budgets[p] ?? 0) > 0).map((phase) => ({ phase, step: "scan" }));
}

/**
 * Where a chunk with `steps` to do stands while the run is in `runPhase`: due now (pending), waiting for a
 * later phase, or done when there is nothing to do.
 */
export function positionFor(steps: readonly Step[], runPhase: Phase, phases: readonly Phase[]): ChunkPosition {
  const [current, ...upcoming] = steps;
  if (!current) return { status: "done", current: { phase: phases[phases.length - 1] as Phase, step: "scan" }, upcoming: [] };
  return { status: current.phase === runPhase ? "pending" : "waiting", current, upcoming };
}

/** After a step: the next step of the same phase runs on at once; a later phase waits; nothing left is done. */
export function afterStep(finished: Step, upcoming: readonly Step[]): ChunkPosition {
  const [next, ...rest] = upcoming;
  if (!next) return { status: "done", current: finished, upcoming: [] };
  return { status: next.phase === finished.phase ? "running" : "waiting", current: next, upcoming: rest };
}

/**
 * The steps a retry gives a chunk: what it had left (a failed chunk resumes its step from its cursor),
 * plus an errors pass for every phase where it has open errors, each phase's steps in phase order.
 */
export function retrySteps(remaining: readonly Step[], errorPhases: readonly Phase[], phases: readonly Phase[]): Step[] {
  const steps: Step[] = [];
  for (const phase of phases) {
    const own = remaining.filter((s) => s.phase === phase);
    steps.push(...own);
    if (errorPhases.includes(phase) && !own.some((s) => s.step === "errors")) steps.push({ phase, step: "errors" });
  }
  return steps;
}

/** The phase after `current`, if any. */
export function nextPhase(current: Phase, phases: readonly Phase[]): Phase | undefined {
  return phases[phases.indexOf(current) + 1];
}

/** How a page changes a chunk's counters: a scan adds its events; an errors pass replaces their old error. */
export function pageDelta(step: Step["step"], outcomes: Counters): Counters {
  if (step === "scan") return outcomes;
  return { total: 0, processed: outcomes.processed, skipped: outcomes.skipped, errors: outcomes.errors - outcomes.total };
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
