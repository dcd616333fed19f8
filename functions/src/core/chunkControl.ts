// What a chunk's run, its operators, the watchdog and a failing delivery do to it (its deliveries' own
// transitions are core/chunkTransitions.ts): resume, wake, mark queued, requeue, note an error, fail,
// retry, cancel. Each takes the chunk as read and returns what to write, or nothing.
import type { Phase } from "./types";
import { settle } from "./chunkTransitions";
import { isFinishedChunk, leaseLive, retrySteps, type Chunk, type ChunkTransition, type Step } from "./chunk";

/** A paused chunk continues from its checkpoints under a new task generation: due now, or when its phase opens. */
export function resumeChunk(c: Chunk, runPhase: Phase): ChunkTransition<boolean> {
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
export function wake(c: Chunk, runPhase: Phase): ChunkTransition<boolean> {
  if (c.status !== "waiting" || c.step.phase !== runPhase) return { result: false, update: null };
  return { result: true, update: { status: "pending", queued: null, queuedAt: null } };
}

/** Records that the task of `generation` is queued; a chunk that moved on to a newer generation keeps its own. */
export function markQueued(
  c: Pick<Chunk, "generation" | "queued" | "status">,
  generation: number,
  now: number,
): ChunkTransition<boolean> {
  if (c.generation !== generation || c.queued === generation || isFinishedChunk(c.status))
    return { result: false, update: null };
  return { result: true, update: { queued: generation, queuedAt: now } };
}

/**
 * Gives a stalled chunk a new task generation (its lease expired with nobody renewing it, or its queued
 * task never started). Its status and lease stay: the new task's delivery claims the expired lease and
 * carries on from the checkpoint. Deliveries of older generations then leave the chunk alone.
 */
export function requeue(c: Chunk, crashed = false): ChunkTransition<boolean> {
  if (isFinishedChunk(c.status) || c.status === "waiting" || c.status === "paused")
    return { result: false, update: null };
  return {
    result: true,
    update: {
      generation: c.generation + 1,
      queued: null,
      queuedAt: null,
      ...(crashed ? { crashes: c.crashes + 1 } : {}),
    },
  };
}

/** Keeps a delivery's failure on an unfinished chunk, for operators; the delivery is retried anyway. */
export function noteError(c: Chunk, error: string): ChunkTransition<boolean> {
  if (isFinishedChunk(c.status) || c.lastError === error) return { result: false, update: null };
  return { result: true, update: { lastError: error } };
}

/**
 * The chunk ran out of delivery attempts — unless the delivery that says so is stale: its task was queued
 * for an older generation (the watchdog has queued a newer task since), or another task's delivery holds a
 * live lease on the chunk. Either way a live delivery is working on the chunk, and answers for it.
 */
export function fail(
  c: Chunk,
  error: string,
  now: number,
  by: { task: string; generation: number | null },
): ChunkTransition<boolean> {
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
export function retryChunk(
  c: Chunk,
  errorPhases: readonly Phase[],
  phases: readonly Phase[],
): ChunkTransition<boolean> {
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
export function cancelChunk(c: Chunk, now: number): ChunkTransition<CancelResult> {
  const settled = settle(c, "cancelled", null, null, now);
  if (settled.result === "drain") {
    // A paused chunk in doubt becomes due again, under a new task generation, only to be drained.
    const fresh =
      c.status === "paused"
        ? {
            update: {
              status: "pending" as const,
              pausedReason: null,
              generation: c.generation + 1,
              queued: null,
              queuedAt: null,
            },
          }
        : requeue(c);
    return { result: "drain", update: fresh.update };
  }
  if (settled.result === "settled") return { result: "cancelled", update: settled.update };
  return { result: settled.result, update: null };
}
