// A chunk's transitions (core/chunk.ts says what a chunk is): what its deliveries do (claim, commit a
// page, release, settle, fail) and what its run's operators and bookkeeping do (resume, wake, mark queued,
// requeue, retry, cancel). Each takes the chunk as read and returns what to write, or nothing.
import { addThroughput } from "./estimate";
import { addCounters, type ChunkStatus, type Counters, type Phase } from "./types";
import { afterStep, isFinishedChunk, leaseLive, pageDelta, progressOf, positionKey, retrySteps, type Chunk, type ChunkHead, type ChunkPosition, type ChunkTransition, type Holder, type Step, type Cursor } from "./chunk";

// ───────────────────────────── deliveries ─────────────────────────────

export type ClaimResult =
  /** `inherited`: the chunk had a lease before (its holder may have left a page half applied). */
  | { kind: "claimed"; inherited: boolean }
  /** A live lease of an earlier or concurrent delivery of the same task: wait for it. */
  | { kind: "busy" }
  /** A live lease of another task's delivery: that task answers for the chunk. */
  | { kind: "taken" }
  /** Nothing to work on. */
  | { kind: "inactive" };

/**
 * Takes the chunk's lease for a delivery. A live lease of another delivery means "busy" (same task) or
 * "taken" (another task), unless it belongs to an earlier attempt of the same task: Cloud Tasks retries
 * only an attempt it has given up on, so the retry takes over at once.
 */
export function claim(c: ChunkHead, me: Holder, now: number, leaseMs: number): ChunkTransition<ClaimResult> {
  if (c.status !== "pending" && c.status !== "running") return { result: { kind: "inactive" }, update: null };
  const lease = c.lease;
  if (leaseLive(lease, now) && lease.owner !== me.owner) {
    if (lease.task !== me.task) return { result: { kind: "taken" }, update: null };
    if (lease.attempt >= me.attempt) return { result: { kind: "busy" }, update: null };
  }
  return {
    result: { kind: "claimed", inherited: lease !== null && lease.owner !== me.owner },
    update: {
      status: "running",
      lease: { ...me, expiresAt: now + leaseMs },
      attempts: c.attempts + 1,
      startedAt: c.startedAt ?? now,
      pausedReason: null,
      pageInDoubt: false,
    },
  };
}

/** What one page examined and where the step stands after it. */
export interface PageResult {
  /** `positionKey` of the chunk the page was planned from. */
  from: string;
  /** The page's outcomes, counted. */
  outcomes: Counters;
  /** Events a scan examined (what its budget is charged); 0 for an errors step. */
  examined: number;
  /** The scan's position after the page. */
  cursor: Cursor | null;
  /** The errors step's position after the page. */
  errorCursor: string | null;
  /** The step has nothing after this page. */
  stepDone: boolean;
  /** The scan stopped because its budget ran out, not at the end of the day. */
  stoppedAtBudget: boolean;
}

export type CommitResult =
  | { kind: "conflict" }
  | { kind: "committed"; page: number; status: ChunkStatus; counters: Counters; stoppedAtBudget: boolean; stepDone: boolean };

/**
 * Records a page: counters, position, and where the chunk goes when the page ends its step. Accepted only
 * from the position the page was planned from (else someone else committed it: a conflict), whoever
 * applied it: a page its holder finished after losing its lease or after the chunk was stopped still
 * counts, exactly once, so every entry a run writes is counted by that run.
 */
export function commitPage(c: Chunk, page: PageResult, me: Holder, now: number, leaseMs: number): ChunkTransition<CommitResult> {
  if (positionKey(c) !== page.from) return { result: { kind: "conflict" }, update: null };
  const phase = c.step.phase;
  const delta = pageDelta(c.step.step, page.outcomes);
  const before = progressOf(c, phase);
  const scanning = c.step.step === "scan";
  const progress: Chunk["progress"] = {
    ...c.progress,
    [phase]: scanning ? { cursor: page.cursor, examined: before.examined + page.examined } : before,
  };
  const update: Partial<Chunk> = {
    ...addCounters(c, delta),
    pages: c.pages + 1,
    progress,
    ...(page.outcomes.total > 0 ? { throughput: addThroughput(c.throughput, now, page.outcomes.total) } : {}),
    errorCursor: scanning ? c.errorCursor : page.errorCursor,
  };
  if (c.lease?.owner === me.owner) update.lease = { ...me, expiresAt: now + leaseMs };

  let status = c.status;
  const stoppedAtBudget = c.stoppedAtBudget || page.stoppedAtBudget;
  if (page.stepDone) {
    const next = afterStep(c.step, c.upcoming);
    status = statusAfterStep(c.status, next.status);
    Object.assign(update, { stoppedAtBudget, step: next.current, upcoming: next.upcoming, errorCursor: null });
    if (status === "done" || status === "waiting") update.lease = null;
    if (status === "waiting") update.queued = null;
    if (status === "done" && c.status !== "done") update.finishedAt = now;
    if (status !== c.status) update.status = status;
  }
  const counters = addCounters(c, delta);
  return { result: { kind: "committed", page: c.pages + 1, status, counters, stoppedAtBudget, stepDone: page.stepDone }, update };
}

/** The status a chunk takes when a step ends: a working chunk moves on; a stopped one stays stopped unless nothing is left. */
function statusAfterStep(current: ChunkStatus, next: ChunkPosition["status"]): ChunkStatus {
  if (current === "cancelled") return "cancelled";
  if (next === "done") return "done";
  if (current === "running") return next;
  if (current === "pending") return next === "running" ? "pending" : next;
  return current;
}

/** Lets go of the chunk so a continuation task can take it; true when this delivery held it. */
export function release(c: ChunkHead, me: Holder, now: number): ChunkTransition<boolean> {
  if (c.lease?.owner !== me.owner) return { result: false, update: null };
  return { result: true, update: { lease: null, queued: c.generation, queuedAt: now } };
}

export type SettleResult =
  /** The chunk stopped. */
  | "settled"
  /** Another delivery is working on it and stops it at its next page boundary. */
  | "held"
  /** A delivery that stopped renewing its lease may have left a page half applied: finish that page first. */
  | "drain"
  /** Nothing to stop. */
  | "unchanged";

/**
 * Stops a chunk that is due or being worked on: paused (the run is paused or the kill switch is off) or
 * cancelled. A chunk that another live delivery holds is left to that delivery. A cancelled chunk is
 * final, so one whose last holder vanished mid-page is drained first (its page finished and counted); a
 * paused one is not, because resume repeats that page and counts it then.
 */
export function settle(c: ChunkHead, to: "paused" | "cancelled", reason: string | null, me: Holder | null, now: number): ChunkTransition<SettleResult> {
  const from: readonly ChunkStatus[] = to === "paused" ? ["pending", "running"] : ["pending", "running", "waiting", "paused"];
  if (!from.includes(c.status)) return { result: "unchanged", update: null };
  // This delivery's own lease (it stops between pages), or one an earlier attempt of its task left (Cloud
  // Tasks gave up on that one, which may have stopped mid-page).
  const own = me !== null && c.lease !== null && c.lease.owner === me.owner;
  const inherited = me !== null && c.lease !== null && !own && c.lease.task === me.task && c.lease.attempt < me.attempt;
  if (!own && !inherited && leaseLive(c.lease, now)) return { result: "held", update: null };
  // Any lease but this delivery's own may have been left mid-page by a delivery that vanished.
  const inDoubt = c.pageInDoubt || (c.lease !== null && !own);
  if (to === "cancelled" && inDoubt) return { result: "drain", update: null };
  return {
    result: "settled",
    update: {
      status: to,
      lease: null,
      queued: null,
      pausedReason: to === "paused" ? reason : c.pausedReason,
      ...(to === "cancelled" ? { finishedAt: now } : { pageInDoubt: inDoubt }),
    },
  };
}

/** A paused chunk continues from its checkpoints under a new task generation: due now, or when its phase opens. */
export function resumeChunk(c: ChunkHead, runPhase: Phase): ChunkTransition<boolean> {
  if (c.status !== "paused") return { result: false, update: null };
  return {
    result: true,
    update: {
      status: c.step.phase === runPhase ? "pending" : "waiting",
      pausedReason: null,
      generation: c.generation + 1,
      queued: null,
      queuedAt: null,
    },
  };
}

/** A chunk that finished an earlier phase becomes due when the run reaches its phase. */
export function wake(c: ChunkHead, runPhase: Phase): ChunkTransition<boolean> {
  if (c.status !== "waiting" || c.step.phase !== runPhase) return { result: false, update: null };
  return { result: true, update: { status: "pending", queued: null, queuedAt: null } };
}

/** Records that the task of `generation` is queued; a chunk that moved on to a newer generation keeps its own. */
export function markQueued(c: Pick<ChunkHead, "generation" | "queued" | "status">, generation: number, now: number): ChunkTransition<boolean> {
  if (c.generation !== generation || c.queued === generation || isFinishedChunk(c.status)) return { result: false, update: null };
  return { result: true, update: { queued: generation, queuedAt: now } };
}

/**
 * Gives a stalled chunk a new task generation (its lease expired with nobody renewing it, or its queued
 * task never started). Its status and lease stay: the new task's delivery claims the expired lease and
 * carries on from the checkpoint. Deliveries of older generations then leave the chunk alone.
 */
export function requeue(c: ChunkHead, crashed = false): ChunkTransition<boolean> {
  if (isFinishedChunk(c.status) || c.status === "waiting" || c.status === "paused") return { result: false, update: null };
  return { result: true, update: { generation: c.generation + 1, queued: null, queuedAt: null, ...(crashed ? { crashes: c.crashes + 1 } : {}) } };
}

/** Keeps a delivery's failure on an unfinished chunk, for operators; the delivery is retried anyway. */
export function noteError(c: ChunkHead, error: string): ChunkTransition<boolean> {
  if (isFinishedChunk(c.status) || c.lastError === error) return { result: false, update: null };
  return { result: true, update: { lastError: error } };
}

/**
 * The chunk ran out of delivery attempts — unless the delivery that says so is stale: its task was queued
 * for an older generation (the watchdog has queued a newer task since), or another task's delivery holds a
 * live lease on the chunk. Either way a live delivery is working on the chunk, and answers for it.
 */
export function fail(c: ChunkHead, error: string, now: number, by: { task: string; generation: number | null }): ChunkTransition<boolean> {
  if (c.status !== "pending" && c.status !== "running") return { result: false, update: null };
  if (by.generation !== null && by.generation < c.generation) return { result: false, update: null };
  if (leaseLive(c.lease, now) && c.lease.task !== by.task) return { result: false, update: null };
  return { result: true, update: { status: "failed", lastError: error, lease: null, queued: null, finishedAt: now } };
}

/**
 * A retry of the run: a failed chunk continues its unfinished steps from where each phase stopped, and
 * every chunk with open errors gets an errors step per phase. The chunk waits until the run's phase
 * reaches its first step.
 */
export function retryChunk(c: ChunkHead, errorPhases: readonly Phase[], phases: readonly Phase[]): ChunkTransition<boolean> {
  if (c.status !== "failed" && c.status !== "done") return { result: false, update: null };
  const remaining: Step[] = c.status === "failed" ? [c.step, ...c.upcoming] : [];
  const [first, ...upcoming] = retrySteps(remaining, errorPhases, phases);
  if (!first) return { result: false, update: null };
  const samePosition = c.status === "failed" && first.phase === c.step.phase && first.step === c.step.step;
  return {
    result: true,
    update: {
      status: "waiting",
      step: first,
      upcoming,
      errorCursor: samePosition ? c.errorCursor : null,
      generation: c.generation + 1,
      crashes: 0,
      queued: null,
      queuedAt: null,
      lease: null,
      lastError: null,
      finishedAt: null,
    },
  };
}

export type CancelResult = "cancelled" | "held" | "drain" | "unchanged";

/**
 * Cancels a chunk that is not finished. One being worked on is left to its holder, which stops at its
 * next page boundary; one whose holder vanished gets a new task generation that finishes the page in
 * flight and then cancels it (see `settle`).
 */
export function cancelChunk(c: ChunkHead, now: number): ChunkTransition<CancelResult> {
  const settled = settle(c, "cancelled", null, null, now);
  if (settled.result === "drain") {
    // A paused chunk in doubt becomes due again, under a new task generation, only to be drained.
    const fresh = c.status === "paused" ? { update: { status: "pending" as const, pausedReason: null, generation: c.generation + 1, queued: null, queuedAt: null } } : requeue(c);
    return { result: "drain", update: fresh.update };
  }
  if (settled.result === "settled") return { result: "cancelled", update: settled.update };
  return { result: settled.result, update: null };
}
