// The life of a run, as a pure state machine: what operators may do to it, how it moves from phase to
// phase, how its chunks' progress rolls up onto it and when it ends, and what the watchdog repairs when a
// run could make no progress. Like the chunk's (core/chunk.ts), every transition takes the run as read and
// returns what to write; the store applies it only to that same version.
import { isFinishedChunk, nextPhase, type ChunkHead } from "./chunk";
import { requeue, settle } from "./chunkTransitions";
import { addCounters, ZERO_COUNTERS, type ChunkStatus, type Counters, type Phase, type RunStatus, type RunType } from "./types";

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

const active = (status: RunStatus) => status === "pending" || status === "running";

// ───────────────────────────── operators ─────────────────────────────

export const CONTROL_ACTIONS = ["pause", "resume", "cancel", "retry"] as const;
export type ControlAction = (typeof CONTROL_ACTIONS)[number];

export type ControlDecision =
  | { kind: "change"; to: RunStatus }
  | { kind: "noop"; reason: string }
  | { kind: "conflict"; message: string };

export interface RunFacts {
  status: RunStatus;
  /** Open (unresolved) per-event errors. */
  openErrors: number;
  /** Retries requested so far. */
  retries: number;
}

/** What each control call does in each status: change it, nothing (calls are idempotent), or refuse with what to do instead. */
export function decideControl(action: ControlAction, run: RunFacts, id: string): ControlDecision {
  const { status } = run;
  switch (action) {
    case "pause":
      if (active(status)) return { kind: "change", to: "paused" };
      if (status === "paused") return { kind: "noop", reason: "the run is already paused" };
      return { kind: "conflict", message: `Run ${id} is ${status}; there is nothing to pause.` };
    case "resume":
      if (status === "paused") return { kind: "change", to: "running" };
      if (active(status)) return { kind: "noop", reason: `the run is already ${status}` };
      if (status === "failed") return { kind: "conflict", message: `Run ${id} failed; use retry to run its failed chunks and errored events again.` };
      if (status === "completed") return { kind: "conflict", message: `Run ${id} is completed; there is nothing to resume. Use retry to re-examine its errored events, or start a new run.` };
      return { kind: "conflict", message: `Run ${id} was cancelled and cannot be resumed; start a new run.` };
    case "cancel":
      if (active(status) || status === "paused") return { kind: "change", to: "cancelled" };
      if (status === "cancelled") return { kind: "noop", reason: "the run is already cancelled" };
      return { kind: "conflict", message: `Run ${id} is already ${status}; there is nothing to cancel.` };
    case "retry":
      if (status === "failed" || (status === "completed" && run.openErrors > 0)) return { kind: "change", to: "running" };
      if (status === "completed") return { kind: "conflict", message: `Run ${id} completed without errors; there is nothing to retry.` };
      if (active(status) && run.retries > 0) return { kind: "noop", reason: "a retry of this run is already under way" };
      if (status === "cancelled") return { kind: "conflict", message: `Run ${id} was cancelled and cannot be retried; start a new run.` };
      return { kind: "conflict", message: `Run ${id} is still ${status}; retry applies once it has ended (pause and resume control a run in progress).` };
  }
}

// ───────────────────────────── transitions ─────────────────────────────

/** The first delivery started work. */
export function markStarted(run: Run, now: number): RunTransition<boolean> {
  if (run.status !== "pending") return { result: false, update: null };
  return { result: true, update: { status: "running", startedAt: run.startedAt ?? now } };
}

/** Pauses a pending or running run (an operator, the kill switch, or its own error rate). */
export function pause(run: Run, reason: string, autoPause: AutoPause | null = null): RunTransition<boolean> {
  if (!active(run.status)) return { result: false, update: null };
  return { result: true, update: { status: "paused", pausedReason: reason, autoPause } };
}

/** Resumes a paused run; its auto-pause window starts afresh. */
export function resumeRun(run: Run, now: number): RunTransition<boolean> {
  if (run.status !== "paused") return { result: false, update: null };
  return {
    result: true,
    update: { status: run.startedAt !== null ? "running" : "pending", pausedReason: null, autoPause: null, windowSince: now },
  };
}

/** Stops a run for good. */
export function cancelRun(run: Run, now: number): RunTransition<boolean> {
  if (!active(run.status) && run.status !== "paused") return { result: false, update: null };
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
export type ChunkSummary = Pick<ChunkHead, "id" | "status" | "step" | "total" | "processed" | "skipped" | "errors">;

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
  if (!active(run.status)) return { result: run.phase, update: null };
  let phase = run.phase;
  for (let following = nextPhase(phase, run.phases); following && !phaseBlocked(chunks, phase); following = nextPhase(phase, run.phases)) {
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

export function summarize(chunks: readonly Pick<ChunkHead, "status" | "total" | "processed" | "skipped" | "errors">[]): RunProgress {
  let counters: Counters = ZERO_COUNTERS;
  const count = (s: ChunkStatus) => chunks.filter((c) => c.status === s).length;
  for (const c of chunks) counters = addCounters(counters, { total: c.total, processed: c.processed, skipped: c.skipped, errors: c.errors });
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
export function rollUp(run: Run, chunks: readonly ChunkSummary[], now: number): RunTransition<{ progress: RunProgress; closed: RunStatus | null }> {
  const progress = summarize(chunks);
  const finished = chunks.every((c) => isFinishedChunk(c.status));
  const update: Partial<Run> = {};
  for (const k of ["total", "processed", "skipped", "errors", "chunksDone", "chunksFailed"] as const) {
    if (run[k] !== progress[k]) update[k] = progress[k];
  }
  // A cancelled run is draining until every chunk has stopped (a page in doubt finished, then cancelled).
  if (run.status === "cancelled" && (run.draining ?? false) !== !finished) update.draining = !finished;
  let closed: RunStatus | null = null;
  if (finished && (active(run.status) || run.status === "paused")) {
    closed = finalStatus(progress);
    Object.assign(update, {
      status: closed,
      finishedAt: now,
      startedAt: run.startedAt ?? now,
      pausedReason: null,
      failureReason: closed === "failed" ? `${progress.chunksFailed} chunk(s) failed after exhausting their retries` : null,
    });
  }
  return { result: { progress, closed }, update: Object.keys(update).length > 0 ? update : null };
}

// ───────────────────────────── the watchdog ─────────────────────────────

export type Repair =
  /** The kill switch is off but the run is still going: pause it, so nothing waits on a task that will not run. */
  | { kind: "pause_run"; reason: "kill_switch" }
  /** Queue the chunk's task under a new generation. */
  | { kind: "requeue"; chunkId: string; why: "lease_expired" | "task_stalled" | "drain" }
  /** Its deliveries keep vanishing holding it (a poison chunk): fail it with its last error, so the run ends. */
  | { kind: "fail_chunk"; chunkId: string; why: "kept_crashing" }
  /** Queue the chunk's current generation, which was never queued. */
  | { kind: "enqueue"; chunkId: string; why: "not_queued" }
  /** A paused chunk in a running run: resume it. */
  | { kind: "resume_chunk"; chunkId: string; why: "paused_in_running_run" }
  /** Stop a chunk nobody is working on, to match its run. */
  | { kind: "settle"; chunkId: string; to: "paused" | "cancelled"; why: "run_paused" | "run_cancelled" };

export interface WatchSettings {
  now: number;
  /** A queued task (or a continuation) that has not started for this long is queued again. */
  stallMs: number;
  killSwitchOn: boolean;
  /** Crash re-queues a chunk gets (WATCHDOG_MAX_CRASHES) before the next expired lease fails it. */
  maxCrashes: number;
}

/**
 * What a run needs so that it can make progress again: chunks whose lease expired with no delivery
 * renewing it, chunks due with no task (never queued, or queued so long ago that the task must be gone),
 * paused chunks in a running run, and unfinished chunks of a stopped run that nobody will stop. Phase
 * moves and closing the run follow from the roll-up the watchdog runs after these repairs.
 */
export function planRepairs(run: Run, chunks: readonly ChunkHead[], s: WatchSettings): Repair[] {
  if (run.status === "completed" || run.status === "failed") return [];
  const repairs: Repair[] = [];
  let status = run.status;
  if (!s.killSwitchOn && active(status)) {
    repairs.push({ kind: "pause_run", reason: "kill_switch" });
    status = "paused";
  }
  const expired = (c: ChunkHead) => c.lease !== null && c.lease.expiresAt <= s.now;
  const stalled = (c: ChunkHead) => c.lease === null && c.queuedAt !== null && s.now - c.queuedAt >= s.stallMs;
  for (const c of chunks) {
    if (isFinishedChunk(c.status)) continue;
    if (active(status)) {
      if (c.status === "paused") repairs.push({ kind: "resume_chunk", chunkId: c.id, why: "paused_in_running_run" });
      else if (c.status === "running" && expired(c)) {
        repairs.push(c.crashes >= s.maxCrashes ? { kind: "fail_chunk", chunkId: c.id, why: "kept_crashing" } : { kind: "requeue", chunkId: c.id, why: "lease_expired" });
      }
      else if ((c.status === "running" || c.status === "pending") && stalled(c)) repairs.push({ kind: "requeue", chunkId: c.id, why: "task_stalled" });
      else if (c.status === "pending" && c.queued !== c.generation) repairs.push({ kind: "enqueue", chunkId: c.id, why: "not_queued" });
    } else if (status === "paused") {
      if ((c.status === "running" && (expired(c) || c.lease === null)) || (c.status === "pending" && stalled(c))) {
        repairs.push({ kind: "settle", chunkId: c.id, to: "paused", why: "run_paused" });
      }
    } else if (status === "cancelled") {
      const stop = settle(c, "cancelled", null, null, s.now).result;
      if (stop === "settled") repairs.push({ kind: "settle", chunkId: c.id, to: "cancelled", why: "run_cancelled" });
      else if (stop === "drain" && s.killSwitchOn && requeue(c).update) repairs.push({ kind: "requeue", chunkId: c.id, why: "drain" });
    }
  }
  return repairs;
}
