// Moves a run forward after any chunk changes state: opens the next phase once every chunk has finished
// the current one, queues chunks that are due, mirrors progress onto the run document and closes the run
// when every chunk has finished. Every step is idempotent, so any delivery may call it any number of times.
import { FieldValue, type Firestore } from "firebase-admin/firestore";
import { finalStatus, isFinishedRun, nextPhase, summarize, type ChunkSummaryInput, type RunProgress } from "../core/progress";
import type { Phase } from "../core/types";
import type { Deps } from "../deps";
import { refs, type ChunkDoc, type RunDoc } from "../platform/collections";
import { mapWithConcurrency } from "../platform/firestore";
import { chunkTaskId } from "../platform/tasks";
import { runFields } from "./runFields";

const ENQUEUE_CONCURRENCY = 16;

export async function advanceRun(deps: Deps, runId: string): Promise<void> {
  await queueDueWork(deps, runId);
  await rollUp(deps, runId);
}

/** Opens the next phase when the current one is finished everywhere, and queues every chunk that is due. */
export async function queueDueWork(deps: Deps, runId: string): Promise<void> {
  let run = (await refs(deps.db).run(runId).get()).data() as RunDoc | undefined;
  if (!run || isFinishedRun(run.status) || run.status === "paused") return;
  run = await openNextPhases(deps, runId, run);
  await wakeWaitingChunks(deps.db, runId, run.phase);
  await enqueueDueChunks(deps, runId, run.phase);
}

/** While no chunk has work left in the run's phase, the run moves to the next one. */
async function openNextPhases(deps: Deps, runId: string, run: RunDoc): Promise<RunDoc> {
  const r = refs(deps.db);
  let current = run;
  for (;;) {
    const following = nextPhase(current.phase, current.phases);
    if (!following) return current;
    const blocking = await r
      .chunks(runId)
      .where("phase", "==", current.phase)
      .where("status", "in", ["pending", "running", "paused", "waiting"])
      .count()
      .get();
    if (blocking.data().count > 0) return current;
    const from = current.phase;
    const moved = await deps.db.runTransaction(async (tx) => {
      const snap = await tx.get(r.run(runId));
      const fresh = snap.data() as RunDoc;
      if (fresh.phase !== from || isFinishedRun(fresh.status) || fresh.status === "paused") return fresh;
      tx.update(r.run(runId), { phase: following, updatedAt: FieldValue.serverTimestamp() });
      return { ...fresh, phase: following };
    });
    if (moved.phase === following && from !== following) {
      const waiting = await r.chunks(runId).where("phase", "==", following).count().get();
      deps.log.phaseStarted(runFields(runId, moved), following, waiting.data().count);
    }
    if (moved.phase === from) return moved;
    current = moved;
  }
}

/** Chunks that finished an earlier phase wait for the run to reach theirs; then they become due. */
async function wakeWaitingChunks(db: Firestore, runId: string, phase: Phase): Promise<void> {
  const waiting = await refs(db).chunks(runId).where("status", "==", "waiting").where("phase", "==", phase).get();
  await mapWithConcurrency(waiting.docs, ENQUEUE_CONCURRENCY, async (doc) => {
    try {
      // Conditional on the version we read, so a stale waker never rewinds a chunk that already started.
      await doc.ref.update(
        { status: "pending", enqueued: false, updatedAt: FieldValue.serverTimestamp() },
        { lastUpdateTime: doc.updateTime },
      );
    } catch (error) {
      if (!isPreconditionFailure(error)) throw error;
    }
  });
}

export function isPreconditionFailure(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 9 || code === "failed-precondition";
}

/** Queues a named task for every due chunk that has none yet. Cloud Tasks refuses a name it has seen. */
export async function enqueueDueChunks(deps: Deps, runId: string, phase: Phase): Promise<number> {
  const r = refs(deps.db);
  const due = await r
    .chunks(runId)
    .where("phase", "==", phase)
    .where("status", "==", "pending")
    .where("enqueued", "==", false)
    .get();
  await mapWithConcurrency(due.docs, ENQUEUE_CONCURRENCY, async (doc) => {
    const chunk = doc.data() as ChunkDoc;
    const taskId = chunkTaskId({ migrationId: runId, chunkId: doc.id, phase: chunk.phase, generation: chunk.generation });
    await deps.queue.enqueue({ migrationId: runId, chunkId: doc.id }, taskId);
    await doc.ref.update({ enqueued: true, updatedAt: FieldValue.serverTimestamp() });
  });
  return due.size;
}

/**
 * Sums the chunks' counters onto the run document and closes the run once every chunk has finished. The
 * chunks are read in one query, so counters and statuses come from the same moment: a roll-up can never
 * see a chunk finished without also seeing its last page's counters.
 */
export async function rollUp(deps: Deps, runId: string): Promise<RunProgress> {
  const r = refs(deps.db);
  const snapshot = await r.chunks(runId).select("status", "phase", "total", "processed", "skipped", "errors").get();
  const progress = summarize(snapshot.docs.map((d) => d.data() as ChunkSummaryInput));
  const finished = progress.chunksDone + progress.chunksFailed + progress.chunksCancelled === progress.chunksTotal;
  await deps.faults?.at("before-run-close", { migrationId: runId });

  const closed = await deps.db.runTransaction(async (tx) => {
    const snap = await tx.get(r.run(runId));
    const run = snap.data() as RunDoc | undefined;
    // A cancelled run still mirrors the pages its chunks finish after the cancel; other ended runs are final.
    if (!run || (isFinishedRun(run.status) && run.status !== "cancelled")) return null;
    // Counters only move forward: a slower delivery's older sum never overwrites a newer one.
    if (progress.total < run.total || progress.chunksDone < run.chunksDone) return null;
    const update: Record<string, unknown> = {
      total: progress.total,
      processed: progress.processed,
      skipped: progress.skipped,
      errors: progress.errors,
      chunksDone: progress.chunksDone,
      chunksFailed: progress.chunksFailed,
      updatedAt: FieldValue.serverTimestamp(),
    };
    if (finished && run.status !== "cancelled") {
      update.status = finalStatus(progress);
      update.finishedAt = FieldValue.serverTimestamp();
      if (!run.startedAt) update.startedAt = FieldValue.serverTimestamp();
      if (update.status === "failed") update.failureReason = `${progress.chunksFailed} chunk(s) failed after exhausting their retries`;
    }
    tx.update(r.run(runId), update);
    return update.status ? { run, status: update.status as string } : null;
  });
  if (closed) {
    const started = (closed.run.startedAt ?? closed.run.createdAt).toMillis();
    deps.log.runFinished(runFields(runId, closed.run), closed.status, progress, {
      durationMs: deps.now().getTime() - started,
      chunksFailed: progress.chunksFailed,
      capReached: closed.run.capReached,
    });
  }
  return progress;
}

/** Pauses a pending or running run (kill switch, operator, or its own error rate); true if this call did. */
export async function pauseRun(
  deps: Deps,
  runId: string,
  reason: string,
  autoPause: RunDoc["autoPause"] = null,
): Promise<boolean> {
  const ref = refs(deps.db).run(runId);
  const paused = await deps.db.runTransaction(async (tx) => {
    const current = (await tx.get(ref)).data() as RunDoc | undefined;
    if (!current || (current.status !== "running" && current.status !== "pending")) return null;
    tx.update(ref, { status: "paused", pausedReason: reason, autoPause, updatedAt: FieldValue.serverTimestamp() });
    return current;
  });
  if (paused) {
    deps.log.runPaused(
      runFields(runId, paused),
      reason,
      autoPause ? { error_rate: autoPause.errorRate, window: autoPause.window, threshold: autoPause.threshold } : {},
    );
  }
  return paused !== null;
}
