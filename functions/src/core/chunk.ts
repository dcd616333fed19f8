// The life of one chunk (a UTC day of a run, or a shard of a busy day), as a pure state machine: what a
// chunk is, its steps and its creation here; the transitions of its deliveries and its operators in
// core/chunkTransitions.ts; a delivery's next move in core/nextMove.ts. Every change to a chunk is one of
// those transitions: it takes the chunk as read and returns what to write, or nothing. The store
// (chunks/store.ts) writes that update only if the chunk is still the version the decision was made on,
// so a decision is never applied to a chunk it was not made for.
//
//   pending ──claim──▶ running ──page committed──▶ running … ──step finished──▶ running | waiting | done
//      ▲                  │  ╲
//      │ resume      settle│   ╲ fail (out of attempts)
//      │                  ▼    ▼
//   paused ◀── settle ── (pending|running)        failed ──retry──▶ waiting ──phase opened──▶ pending
//   waiting ──phase opened──▶ pending            done (open errors) ──retry──▶ waiting
//   any unfinished ──cancel──▶ cancelled   (a chunk whose holder may be mid-page is drained first)
import type { ThroughputBuckets } from "./estimate";
import type { ChunkBounds } from "./shards";
import { SEQUENTIAL_PHASES, type ChunkStatus, type Counters, type Phase } from "./types";

/**
 * One piece of a chunk's work: `scan` reads the day's events of a phase from that phase's cursor; `errors`
 * re-examines the events of that phase that ended in an error (a retry).
 */
export interface Step {
  phase: Phase;
  step: "scan" | "errors";
}

/** Position after the last event a scan has committed: the event's `createdAt` and document id. */
export interface Cursor {
  seconds: number;
  nanos: number;
  id: string;
}

/** Where a phase's scan stands. Each phase has its own, so going back to an earlier phase loses nothing. */
export interface PhaseProgress {
  /** After the last event the scan committed. */
  cursor: Cursor | null;
  /** Events the phase's scans have examined: what its budget is measured against. */
  examined: number;
}

export const NO_PROGRESS: PhaseProgress = Object.freeze({ cursor: null, examined: 0 });

/** Identity of one delivery. */
export interface Holder {
  /** A random id per delivery. */
  owner: string;
  /** The Cloud Tasks task the delivery belongs to. */
  task: string;
  /** The delivery's retry count; a higher attempt of the same task takes over at once. */
  attempt: number;
}

/** The delivery working on a chunk now; others leave it alone until it finishes or stops renewing. */
export interface Lease extends Holder {
  /** Epoch milliseconds. */
  expiresAt: number;
}

/** A chunk as the rules see it (`dataMigrations/{id}/chunks/{id}`). Times are epoch milliseconds. */
export interface Chunk extends Counters {
  /** The day (`YYYY-MM-DD`), or a shard of it (`YYYY-MM-DD~NNNN`). */
  id: string;
  /** The event time the chunk covers: [startMs, endMs). */
  startMs: number;
  endMs: number;
  status: ChunkStatus;
  /** The current step. */
  step: Step;
  /** Steps after the current one. */
  upcoming: Step[];
  /** Events the chunk may examine in each phase. */
  budgets: Partial<Record<Phase, number>>;
  /** Each phase's scan position. */
  progress: Partial<Record<Phase, PhaseProgress>>;
  /** Position of an errors step: the last event id it re-examined. */
  errorCursor: string | null;
  /** Pages committed so far; every commit adds one, so it also versions the chunk's position. */
  pages: number;
  /** Bumped whenever the chunk needs a fresh task (resume, retry, a stalled task); part of task names. */
  generation: number;
  /**
   * How many times in a row the watchdog queued a new task because a delivery vanished holding the chunk
   * (its lease expired: a crash, an out-of-memory kill). Reset by a retry. Past WATCHDOG_MAX_CRASHES the
   * chunk fails instead of being queued forever.
   */
  crashes: number;
  /** The generation whose task has been queued, if any. */
  queued: number | null;
  /** When that task was queued, or the chunk handed over to a continuation task. */
  queuedAt: number | null;
  /** Deliveries that claimed the chunk. */
  attempts: number;
  lease: Lease | null;
  /** True when a scan stopped at its budget rather than at the end of its day. */
  stoppedAtBudget: boolean;
  pausedReason: string | null;
  lastError: string | null;
  startedAt: number | null;
  finishedAt: number | null;
  /** Events examined over time, for the run page's chart and ETA (core/estimate.ts). */
  throughput: ThroughputBuckets | null;
  /**
   * The chunk was stopped while a delivery other than the one stopping it held it: that delivery may have
   * committed part of a page and vanished. A resume repeats the page (and counts it); a cancel drains it
   * first. Cleared when a delivery claims the chunk.
   */
  pageInDoubt: boolean;
}

/** What a transition decided, and what to write (null: nothing). */
export interface ChunkTransition<R> {
  result: R;
  update: Partial<Chunk> | null;
}

const FINISHED: readonly ChunkStatus[] = ["done", "failed", "cancelled"];

export function isFinishedChunk(status: ChunkStatus): boolean {
  return FINISHED.includes(status);
}

export const progressOf = (c: Pick<Chunk, "progress">, phase: Phase): PhaseProgress => c.progress[phase] ?? NO_PROGRESS;

export const leaseLive = (lease: Lease | null, now: number): lease is Lease => lease !== null && lease.expiresAt > now;

// ───────────────────────────── steps ─────────────────────────────

/** The scan steps of a new chunk: every phase with budget, in phase order. */
export function initialSteps(budgets: Partial<Record<Phase, number>>, phases: readonly Phase[]): Step[] {
  return phases.filter((p) => (budgets[p] ?? 0) > 0).map((phase) => ({ phase, step: "scan" }));
}

/** A chunk's place after a step: its status, its current step and the steps after it. */
export interface ChunkPosition {
  status: "pending" | "running" | "waiting" | "done";
  current: Step;
  upcoming: Step[];
}

/** Where a chunk with `steps` to do stands while the run is in `runPhase`. */
export function positionFor(steps: readonly Step[], runPhase: Phase, phases: readonly Phase[]): ChunkPosition {
  const [current, ...upcoming] = steps;
  if (!current)
    return { status: "done", current: { phase: phases[phases.length - 1] as Phase, step: "scan" }, upcoming: [] };
  return { status: current.phase === runPhase ? "pending" : "waiting", current, upcoming };
}

/** After a step: the next step of the same phase runs on at once; a later phase waits; nothing left is done. */
export function afterStep(finished: Step, upcoming: readonly Step[]): ChunkPosition {
  const [next, ...rest] = upcoming;
  if (!next) return { status: "done", current: finished, upcoming: [] };
  return { status: next.phase === finished.phase ? "running" : "waiting", current: next, upcoming: rest };
}

/**
 * The steps a retry gives a chunk: what it had left (a failed chunk resumes its step where it stopped),
 * plus an errors step for every phase where it has open errors, each phase's steps in phase order.
 */
export function retrySteps(
  remaining: readonly Step[],
  errorPhases: readonly Phase[],
  phases: readonly Phase[],
): Step[] {
  const steps: Step[] = [];
  for (const phase of phases) {
    const own = remaining.filter((s) => s.phase === phase);
    steps.push(...own);
    if (errorPhases.includes(phase) && !own.some((s) => s.step === "errors")) steps.push({ phase, step: "errors" });
  }
  return steps;
}

const UNFINISHED_IN_PHASE: readonly ChunkStatus[] = ["pending", "running", "paused", "waiting"];

/**
 * The chunks that may work in `phase` now: all of them, or in a sequential phase (refunds, chargebacks,
 * closings: decided one day after another, in time order) only the earliest one with work left in it.
 */
export function mayWorkNow<C extends Pick<Chunk, "id" | "startMs" | "status" | "step">>(
  chunks: readonly C[],
  phase: Phase,
): C[] {
  if (!SEQUENTIAL_PHASES.includes(phase)) return [...chunks];
  const left = chunks
    .filter((c) => c.step.phase === phase && UNFINISHED_IN_PHASE.includes(c.status))
    .sort((a, b) => a.startMs - b.startMs || a.id.localeCompare(b.id));
  return left.slice(0, 1);
}

/** The phase after `current`, if any. */
export function nextPhase(current: Phase, phases: readonly Phase[]): Phase | undefined {
  const i = phases.indexOf(current);
  return i < 0 ? undefined : phases[i + 1];
}

/** How a page changes a chunk's counters: a scan adds its events; an errors step replaces their old error. */
export function pageDelta(step: Step["step"], outcomes: Counters): Counters {
  if (step === "scan") return outcomes;
  return {
    total: 0,
    processed: outcomes.processed,
    skipped: outcomes.skipped,
    errors: outcomes.errors - outcomes.total,
  };
}

// ───────────────────────────── creation ─────────────────────────────

/** A new chunk: a scan step for every phase it has budget in. */
export function newChunk(
  bounds: ChunkBounds,
  budgets: Partial<Record<Phase, number>>,
  run: { phases: readonly Phase[] },
  now: number,
): Chunk {
  const position = positionFor(initialSteps(budgets, run.phases), run.phases[0] as Phase, run.phases);
  return {
    id: bounds.id,
    startMs: bounds.startMs,
    endMs: bounds.endMs,
    status: position.status,
    step: position.current,
    upcoming: position.upcoming,
    budgets,
    progress: {},
    errorCursor: null,
    pages: 0,
    generation: 0,
    crashes: 0,
    queued: null,
    queuedAt: null,
    attempts: 0,
    lease: null,
    stoppedAtBudget: false,
    pausedReason: null,
    lastError: null,
    total: 0,
    processed: 0,
    skipped: 0,
    errors: 0,
    startedAt: null,
    finishedAt: position.status === "done" ? now : null,
    throughput: null,
    pageInDoubt: false,
  };
}

/**
 * Everything a page's result depends on. A page is committed only if the chunk still has the position it
 * was planned from, so each page is counted once, whoever applied it.
 */
export function positionKey(c: Pick<Chunk, "step" | "pages" | "errorCursor" | "progress">): string {
  const p = progressOf(c, c.step.phase);
  const cursor = p.cursor ? `${p.cursor.seconds}.${p.cursor.nanos}/${p.cursor.id}` : "-";
  return [c.step.phase, c.step.step, c.pages, c.errorCursor ?? "-", cursor, p.examined].join("|");
}
