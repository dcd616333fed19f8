// Moves a run forward after any chunk changes state: opens the next phase once every chunk has finished
// the current one, queues chunks that are due, mirrors progress onto the run document and closes the run
// when every chunk has finished. Every step is idempotent, so any delivery may call it any number of times.
//
// Each call reads the run and all its chunks once (one query is one consistent snapshot) and decides from
// that: a roll-up can never see a chunk finished without its last page's counters, and a finishing chunk
// costs a handful of requests however many days the run has.
import { FieldValue, type QueryDocumentSnapshot, type Timestamp } from "firebase-admin/firestore";
import { finalStatus, isFinishedRun, nextPhase, summarize, type RunProgress } from "../core/progress";
import type { Phase } from "../core/types";
import type { Deps } from "../deps";
import { refs, type ChunkDoc, type RunDoc } from "../platform/collections";
import { isPreconditionFailure, mapWithConcurrency, optimistically } from "../platform/firestore";
import { chunkTaskId } from "../platform/tasks";
import { runFields } from "./runFields";

const ENQUEUE_CONCURRENCY = 16;
/** Chunk fields the run's bookkeeping needs (never the remembered event ids). */
const CHUNK_FIELDS = ["status", "phase", "generation", "enqueued", "total", "processed", "skipped", "errors"] as const;
/** A chunk as the bookkeeping sees it: its fields, and the snapshot its conditional writes refer to. */
interface ChunkRow {
  id: string;
  doc: QueryDocumentSnapshot;
  chunk: Pick<ChunkDoc, (typeof CHUNK_FIELDS)[number]>;
}

async function readChunks(deps: Deps, runId: string): Promise<ChunkRow[]> {
  const snap = await refs(deps.db).chunks(runId).select(...CHUNK_FIELDS).get();
  return snap.docs.map((doc) => ({ id: doc.id, doc, chunk: doc.data() as ChunkRow["chunk"] }));
}

export async function advanceRun(deps: Deps, runId: string): Promise<void> {
  const chunks = await readChunks(deps, runId);
  await queueDueWork(deps, runId, chunks);
  await rollUp(deps, runId, chunks);
}

/** Opens the next phase when the current one is finished everywhere, and queues every chunk that is due. */
export async function queueDueWork(deps: Deps, runId: string, snapshot?: ChunkRow[]): Promise<void> {
  const run = (await refs(deps.db).run(runId).get()).data() as RunDoc | undefined;
  if (!run || isFinishedRun(run.status) || run.status === "paused") return;
  const chunks = snapshot ?? (await readChunks(deps, runId));
  const phase = await openNextPhases(deps, runId, run, chunks);
  await wakeWaitingChunks(chunks, phase);
  await enqueueDueChunks(deps, runId, chunks, phase);
}

const blocks = (c: ChunkRow, phase: Phase) =>
  c.chunk.phase === phase && ["pending", "running", "paused", "waiting"].includes(c.chunk.status);

/** While no chunk has work left in the run's phase, the run moves to the next one. Returns the run's phase. */
async function openNextPhases(deps: Deps, runId: string, run: RunDoc, chunks: readonly ChunkRow[]): Promise<Phase> {
  const r = refs(deps.db);
  let phase = run.phase;
  for (;;) {
    const following = nextPhase(phase, run.phases);
    if (!following || chunks.some((c) => blocks(c, phase))) return phase;
    const from = phase;
    // Every chunk that finishes the phase gets here at about the same moment: a conditional write, not a
    // transaction, so they do not queue behind each other's read locks.
    const moved = await optimistically<RunDoc, boolean>(r.run(runId), (fresh) =>
      !fresh || fresh.phase !== from || isFinishedRun(fresh.status) || fresh.status === "paused"
        ? { result: false }
        : { result: true, update: { phase: following, updatedAt: FieldValue.serverTimestamp() } },
    );
    if (!moved) return ((await r.run(runId).get()).data() as RunDoc).phase;
    deps.log.phaseStarted(runFields(runId, run), following, chunks.filter((c) => c.chunk.phase === following).length);
    phase = following;
  }
}

/** Chunks that finished an earlier phase wait for the run to reach theirs; then they become due. */
async function wakeWaitingChunks(chunks: readonly ChunkRow[], phase: Phase): Promise<void> {
  const waiting = chunks.filter((c) => c.chunk.status === "waiting" && c.chunk.phase === phase);
  await mapWithConcurrency(waiting, ENQUEUE_CONCURRENCY, async (row) => {
    // Conditional on the version we read, so a stale waker never rewinds a chunk that already started.
    if (await updateIfUnchanged(row.doc, { status: "pending", enqueued: false, updatedAt: FieldValue.serverTimestamp() })) {
      row.chunk = { ...row.chunk, status: "pending", enqueued: false };
    }
  });
}

async function updateIfUnchanged(doc: QueryDocumentSnapshot, data: Record<string, unknown>): Promise<boolean> {
  try {
    await doc.ref.update(data, { lastUpdateTime: doc.updateTime });
    return true;
  } catch (error) {
    if (isPreconditionFailure(error)) return false;
    throw error;
  }
}

/** Queues a named task for every due chunk that has none yet. Cloud Tasks refuses a name it has seen. */
async function enqueueDueChunks(deps: Deps, runId: string, chunks: readonly ChunkRow[], phase: Phase): Promise<void> {
  const due = chunks.filter((c) => c.chunk.phase === phase && c.chunk.status === "pending" && !c.chunk.enqueued);
  await mapWithConcurrency(due, ENQUEUE_CONCURRENCY, async (row) => {
    const taskId = chunkTaskId({ migrationId: runId, chunkId: row.id, phase: row.chunk.phase, generation: row.chunk.generation });
    await deps.queue.enqueue({ migrationId: runId, chunkId: row.id }, taskId);
    await row.doc.ref.update({ enqueued: true, updatedAt: FieldValue.serverTimestamp() });
  });
}

/**
 * Sums the chunks' counters onto the run document and closes the run once every chunk has finished.
 * Every finishing chunk rolls up at about the same time, so the run document is written optimistically
 * (conditional on the version read) rather than in a transaction, whose read locks would make the roll-ups
 * queue behind one another.
 */
export async function rollUp(deps: Deps, runId: string, snapshot?: ChunkRow[]): Promise<RunProgress> {
  const r = refs(deps.db);
  const chunks = snapshot ?? (await readChunks(deps, runId));
  const progress = summarize(chunks.map((c) => c.chunk));
  const finished = progress.chunksDone + progress.chunksFailed + progress.chunksCancelled === progress.chunksTotal;
  await deps.faults?.at("before-run-close", { migrationId: runId });

  let closed: { run: RunDoc; status: string } | null = null;
  for (let attempt = 0; ; attempt++) {
    const snap = await r.run(runId).get();
    const run = snap.data() as RunDoc | undefined;
    // A cancelled run still mirrors the pages its chunks finish after the cancel; other ended runs are final.
    if (!run || (isFinishedRun(run.status) && run.status !== "cancelled")) break;
    // Counters only move forward: a slower delivery's older sum never overwrites a newer one.
    if (progress.total < run.total || progress.chunksDone < run.chunksDone) break;
    const unchanged =
      progress.total === run.total &&
      progress.processed === run.processed &&
      progress.skipped === run.skipped &&
      progress.errors === run.errors &&
      progress.chunksDone === run.chunksDone &&
      progress.chunksFailed === run.chunksFailed;
    if (unchanged && !finished) break;
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
    try {
      await r.run(runId).update(update, { lastUpdateTime: snap.updateTime as Timestamp });
      if (update.status) closed = { run, status: update.status as string };
      break;
    } catch (error) {
      if (!isPreconditionFailure(error)) throw error;
      // Someone else wrote the run meanwhile. A mere mirror can give way; the close must land.
      if (!finished && attempt >= 2) break;
      if (attempt >= 20) throw error;
    }
  }
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
  const paused = await optimistically<RunDoc, RunDoc | null>(ref, (current) =>
    !current || (current.status !== "running" && current.status !== "pending")
      ? { result: null }
      : { result: current, update: { status: "paused", pausedReason: reason, autoPause, updatedAt: FieldValue.serverTimestamp() } },
  );
  if (paused) {
    deps.log.runPaused(
      runFields(runId, paused),
      reason,
      autoPause ? { error_rate: autoPause.errorRate, window: autoPause.window, threshold: autoPause.threshold } : {},
    );
  }
  return paused !== null;
}
