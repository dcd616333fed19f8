// The life of a run, as a pure state machine: what a run is, how it moves from status to status and phase
// to phase, and how its chunks' progress rolls up onto it and when it ends. What operators may ask of it is
// core/control.ts; what the watchdog repairs, core/watchdog.ts. Like the chunk's (core/chunkTransitions.ts),
// every transition takes the run as read and returns what to write; the store applies it only to that same
// version.
import { isFinishedChunk, nextPhase, type Chunk } from "./chunk";
import {
  addCounters,
  ZERO_COUNTERS,
  type ChunkStatus,
  type Counters,
  type Phase,
  type RunStatus,
  type RunType,
} from "./types";

/** A run as the rules see it (`dataMigrations/{id}`). Times are epoch milliseconds. */
export interface Run extends Counters {
  id: string;
  type: RunType;
  startDate: string;
  endDate: string;
  dryRun: boolean;
  maxEvents: number;
  status: RunStatus;
  /** The phase chunks are working on; a replay moves to `reversals` once every day's purchases are done. */
  phase: Phase;
  phases: Phase[];
  chunksTotal: number;
  chunksDone: number;
  chunksFailed: number;
  /** Events the run plans to examine (its progress denominator). */
  plannedEvents: number;
  /** Events in range that the run's selection matched when it was planned. */
  selectedEvents: number;
  /** True when maxEvents left selected events for a later run. */
  capReached: boolean;
  /**
   * A replay's money events in range with no `processed` field when it was planned (absent means false).
   * 0: its scans read only what they may select, by index (`processed == false`, or processed by this run);
   * more, or null (unknown, a run from before the field): they read every money event of the phase.
   */
  unmarkedEvents: number | null;
  /**
   * When a retry of this ended run was admitted (epoch ms), until the retry reopens it: admission counts the
   * run as active in between, so no overlapping start gets in (issue 18 item 7).
   */
  retryAdmittedAt?: number | null;
  /** A cancelled run some of whose chunks are still to be drained (a page in doubt): the watchdog keeps looking at it. */
  draining?: boolean;
  /** Error rate over the last 200 examined events above which the run pauses itself (1 = never). */
  maxErrorRate: number;
  /** The pace the run keeps below, in events examined per second across its chunks (null: full speed). */
  maxEventsPerSecond: number | null;
  /** Only pages committed after this moment count towards the auto-pause window (reset on resume). */
  windowSince: number | null;
  /** Set when the run paused itself: the rate it saw. */
  autoPause: AutoPause | null;
  /** Retries requested (each re-runs failed chunks and errored events). */
  retries: number;
  /** When the run was started with lookbackDays, how many. */
  lookbackDays: number | null;
  /** A canary run: only these users' events (sorted); null for everyone's. */
  userIds: string[] | null;
  /** The dry run whose parameters this real run executes (`{"planOf": id}`), if any. */
  planOf: string | null;
  /** How long the run should take, from its planned events and measured throughput (core/estimate.ts). */
  estimatedSeconds: number;
  /** Who started the run: the verified email and the token's subject (or "scheduler" for the scheduled replay). */
  requestedBy: string;
  requestedBySub: string;
  createdAt: number | null;
  startedAt: number | null;
  finishedAt: number | null;
  pausedReason: string | null;
  failureReason: string | null;
}

export interface AutoPause {
  errorRate: number;
  window: number;
  threshold: number;
  at: number;
}

export interface RunTransition<R> {
  result: R;
  update: Partial<Run> | null;
}

export function isFinishedRun(status: RunStatus): boolean {
  return status === "completed" || status === "failed" || status === "cancelled";
}

/** Pending or running: the run's chunks may work. */
export function isActiveRun(status: RunStatus): boolean {
  return status === "pending" || status === "running";
}

/** The first delivery started work. */
export function markStarted(run: Run, now: number): RunTransition<boolean> {
  if (run.status !== "pending") return { result: false, update: null };
  return { result: true, update: { status: "running", startedAt: run.startedAt ?? now } };
}

/** Pauses a pending or running run (an operator, the kill switch, or its own error rate). */
export function pause(run: Run, reason: string, autoPause: AutoPause | null = null): RunTransition<boolean> {
  if (!isActiveRun(run.status)) return { result: false, update: null };
  return { result: true, update: { status: "paused", pausedReason: reason, autoPause } };
}

/** Resumes a paused run; its auto-pause window starts afresh. */
export function resumeRun(run: Run, now: number): RunTransition<boolean> {
  if (run.status !== "paused") return { result: false, update: null };
  return {
    result: true,
    update: {
      status: run.startedAt !== null ? "running" : "pending",
      pausedReason: null,
      autoPause: null,
      windowSince: now,
    },
  };
}

/** Stops a run for good. */
export function cancelRun(run: Run, now: number): RunTransition<boolean> {
  if (!isActiveRun(run.status) && run.status !== "paused") return { result: false, update: null };
  return { result: true, update: { status: "cancelled", finishedAt: now, draining: true } };
}

/**
 * Reopens a run that ended, for a retry: back to its first phase. The caller has already given the
 * chunks their retry steps (they wait), so nothing can close the run or skip a phase in between.
 */
export function retryRun(run: Run, now: number): RunTransition<boolean> {
  if (run.status !== "failed" && run.status !== "completed") return { result: false, update: null };
  return {
    result: true,
    update: {
      status: "running",
      phase: run.phases[0] as Phase,
      retries: run.retries + 1,
      finishedAt: null,
      failureReason: null,
      windowSince: now,
      retryAdmittedAt: null,
    },
  };
}

/** What the run's bookkeeping needs of a chunk. */
export type ChunkSummary = Pick<Chunk, "id" | "status" | "step" | "total" | "processed" | "skipped" | "errors">;

const STILL_IN_PHASE: readonly ChunkStatus[] = ["pending", "running", "paused", "waiting"];

/** True while some chunk still has work in `phase`. */
export function phaseBlocked(chunks: readonly ChunkSummary[], phase: Phase): boolean {
  return chunks.some((c) => c.step.phase === phase && STILL_IN_PHASE.includes(c.status));
}

/**
 * Moves the run past every phase no chunk has work left in (a replay whose days have no open purchases
 * goes straight to its reversals). Only a pending or running run moves.
 */
export function openPhases(run: Run, chunks: readonly ChunkSummary[]): RunTransition<Phase> {
  if (!isActiveRun(run.status)) return { result: run.phase, update: null };
  let phase = run.phase;
  for (
    let following = nextPhase(phase, run.phases);
    following && !phaseBlocked(chunks, phase);
    following = nextPhase(phase, run.phases)
  ) {
    phase = following;
  }
  return { result: phase, update: phase === run.phase ? null : { phase } };
}

export interface RunProgress extends Counters {
  chunksTotal: number;
  chunksDone: number;
  chunksFailed: number;
  chunksPaused: number;
  chunksCancelled: number;
}

export function summarize(
  chunks: readonly Pick<Chunk, "status" | "total" | "processed" | "skipped" | "errors">[],
): RunProgress {
  let counters: Counters = ZERO_COUNTERS;
  const count = (s: ChunkStatus) => chunks.filter((c) => c.status === s).length;
  for (const c of chunks)
    counters = addCounters(counters, { total: c.total, processed: c.processed, skipped: c.skipped, errors: c.errors });
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

/**
 * Mirrors the chunks' counters onto the run and closes it once every chunk has finished: `failed` if a
 * chunk exhausted its retries, else `completed`. A run that already ended keeps its status; its counters
 * still follow a page its chunks commit late. The caller read the run before the chunks and writes only
 * if the run is unchanged, so a slower roll-up's older sum never overwrites a newer one.
 */
export function rollUp(
  run: Run,
  chunks: readonly ChunkSummary[],
  now: number,
): RunTransition<{ progress: RunProgress; closed: RunStatus | null }> {
  const progress = summarize(chunks);
  const finished = chunks.every((c) => isFinishedChunk(c.status));
  const update: Partial<Run> = {};
  for (const k of ["total", "processed", "skipped", "errors", "chunksDone", "chunksFailed"] as const) {
    if (run[k] !== progress[k]) update[k] = progress[k];
  }
  // A cancelled run is draining until every chunk has stopped (a page in doubt finished, then cancelled).
  if (run.status === "cancelled" && (run.draining ?? false) !== !finished) update.draining = !finished;
  let closed: RunStatus | null = null;
  if (finished && (isActiveRun(run.status) || run.status === "paused")) {
    closed = finalStatus(progress);
    Object.assign(update, {
      status: closed,
      finishedAt: now,
      startedAt: run.startedAt ?? now,
      pausedReason: null,
      failureReason:
        closed === "failed" ? `${progress.chunksFailed} chunk(s) failed after exhausting their retries` : null,
    });
  }
  return { result: { progress, closed }, update: Object.keys(update).length > 0 ? update : null };
}
