// Operator control of a run: pause, resume, cancel, retry. Each call is idempotent; a transition that
// makes no sense is refused with 409 and a message saying what to do instead.
import { FieldValue, Timestamp } from "firebase-admin/firestore";
import { decideControl, type ControlAction } from "../core/control";
import { retrySteps, type Step } from "../core/progress";
import type { Phase } from "../core/types";
import type { Deps } from "../deps";
import { AppError } from "../errors";
import { assertBackfillEnabled } from "../jobs/start";
import { refs, type ChunkDoc, type RunDoc } from "../platform/collections";
import { isPreconditionFailure, mapWithConcurrency } from "../platform/firestore";
import { chunkTaskId } from "../platform/tasks";
import { pauseRun, queueDueWork, rollUp } from "./advance";
import { runFields } from "./runFields";
import { getRun } from "./views";

const CHUNK_WRITE_CONCURRENCY = 16;

export async function controlRun(deps: Deps, id: string, action: ControlAction, by: string) {
  const r = refs(deps.db);
  const run = (await r.run(id).get()).data() as RunDoc | undefined;
  if (!run) throw new AppError(404, "not_found", `No run ${id}; list runs with GET /api/admin/dataMigrations.`);
  const openErrors = (await r.errors(id).where("status", "==", "open").count().get()).data().count;
  const decision = decideControl(action, { status: run.status, openErrors, failedChunks: run.chunksFailed, retries: run.retries }, id);
  if (decision.kind === "conflict") throw new AppError(409, "invalid_transition", decision.message, { status: run.status });
  if ((action === "resume" || action === "retry") && decision.kind === "change") await assertBackfillEnabled(deps);

  if (decision.kind === "change") {
    if (action === "pause") await pauseRun(deps, id, `paused by ${by}`);
    if (action === "resume") await resume(deps, id, run);
    if (action === "cancel") await cancel(deps, id);
    if (action === "retry") await retry(deps, id, run);
  } else if (action === "resume" && run.status === "pending") {
    // A run whose chunks could not all be queued stays pending; resuming it queues them again.
    await queueDueWork(deps, id);
  }
  deps.log.runControlled(runFields(id, run), action, decision.kind === "change" ? "changed" : "noop", by, run.status);
  return { action, changed: decision.kind === "change", ...(await getRun(deps, id)) };
}

/** Paused chunks continue from their checkpoints under a new generation of task names. */
async function resume(deps: Deps, id: string, run: RunDoc): Promise<void> {
  const r = refs(deps.db);
  await deps.db.runTransaction(async (tx) => {
    const current = (await tx.get(r.run(id))).data() as RunDoc;
    if (current.status !== "paused") return;
    tx.update(r.run(id), {
      status: current.startedAt ? "running" : "pending",
      pausedReason: null,
      autoPause: null,
      windowSince: Timestamp.fromDate(deps.now()),
      updatedAt: FieldValue.serverTimestamp(),
    });
  });
  const paused = await r.chunks(id).where("status", "==", "paused").get();
  await mapWithConcurrency(paused.docs, CHUNK_WRITE_CONCURRENCY, async (doc) => {
    const chunk = doc.data() as ChunkDoc;
    await updateIfUnchanged(doc, {
      status: chunk.phase === run.phase ? "pending" : "waiting",
      pausedReason: null,
      generation: FieldValue.increment(1),
      enqueued: false,
      updatedAt: FieldValue.serverTimestamp(),
    });
  });
  await queueDueWork(deps, id);
}

/**
 * Stops the run for good. Chunks that are not being worked on are cancelled here, and their queued tasks
 * deleted; a chunk in the middle of a page finishes that page and cancels itself at the boundary.
 */
async function cancel(deps: Deps, id: string): Promise<void> {
  const r = refs(deps.db);
  await deps.db.runTransaction(async (tx) => {
    const current = (await tx.get(r.run(id))).data() as RunDoc;
    if (current.status !== "pending" && current.status !== "running" && current.status !== "paused") return;
    tx.update(r.run(id), { status: "cancelled", finishedAt: FieldValue.serverTimestamp(), updatedAt: FieldValue.serverTimestamp() });
  });
  const open = await r.chunks(id).where("status", "in", ["pending", "waiting", "paused", "running"]).get();
  const now = deps.now().getTime();
  await mapWithConcurrency(open.docs, CHUNK_WRITE_CONCURRENCY, async (doc) => {
    const chunk = doc.data() as ChunkDoc;
    const worked = chunk.status === "running" && chunk.lease !== null && chunk.lease.expiresAt.toMillis() > now;
    if (worked) return;
    if (chunk.status === "pending" || chunk.status === "running") {
      // Its queued task: the first of its generation, or the continuation a long day handed over to.
      const base = { migrationId: id, chunkId: doc.id, phase: chunk.phase, generation: chunk.generation };
      await deps.queue.delete(chunkTaskId(base));
      if (chunk.pages > 0) await deps.queue.delete(chunkTaskId({ ...base, continuation: chunk.pages }));
    }
    await updateIfUnchanged(doc, {
      status: "cancelled",
      lease: null,
      enqueued: false,
      finishedAt: FieldValue.serverTimestamp(),
      updatedAt: FieldValue.serverTimestamp(),
    });
  });
  await rollUp(deps, id);
}

/**
 * Runs again, inside the same run, only what did not succeed: failed chunks continue from their
 * checkpoints, and every chunk with open errors re-examines those events (purchases before reversals).
 * Counters stay true because an errors pass replaces each re-examined event's error by its new outcome.
 */
async function retry(deps: Deps, id: string, run: RunDoc): Promise<void> {
  const r = refs(deps.db);
  const errorDocs = await r.errors(id).where("status", "==", "open").select("chunkId", "phase").get();
  const errorPhases = new Map<string, Set<Phase>>();
  for (const doc of errorDocs.docs) {
    const chunkId = doc.get("chunkId") as string;
    const set = errorPhases.get(chunkId) ?? new Set<Phase>();
    set.add(doc.get("phase") as Phase);
    errorPhases.set(chunkId, set);
  }
  const failed = await r.chunks(id).where("status", "==", "failed").get();
  const targets = new Map(failed.docs.map((d) => [d.id, d]));
  const withErrors = await Promise.all(
    [...errorPhases.keys()].filter((c) => !targets.has(c)).map((c) => r.chunk(id, c).get()),
  );
  for (const doc of withErrors) if (doc.exists && doc.get("status") === "done") targets.set(doc.id, doc as FirebaseFirestore.QueryDocumentSnapshot);

  const firstPhase = run.phases[0] as Phase;
  const changed = await deps.db.runTransaction(async (tx) => {
    const current = (await tx.get(r.run(id))).data() as RunDoc;
    if (current.status !== "failed" && current.status !== "completed") return false;
    tx.update(r.run(id), {
      status: "running",
      phase: firstPhase,
      retries: FieldValue.increment(1),
      finishedAt: null,
      failureReason: null,
      windowSince: Timestamp.fromDate(deps.now()),
      updatedAt: FieldValue.serverTimestamp(),
    });
    return true;
  });
  if (!changed) return;

  await mapWithConcurrency([...targets.values()], CHUNK_WRITE_CONCURRENCY, async (doc) => {
    const chunk = doc.data() as ChunkDoc;
    const remaining: Step[] = chunk.status === "failed" ? [{ phase: chunk.phase, step: chunk.step }, ...chunk.upcoming] : [];
    const steps = retrySteps(remaining, [...(errorPhases.get(doc.id) ?? [])], run.phases);
    const [first, ...upcoming] = steps;
    if (!first) return;
    const samePosition = chunk.status === "failed" && first.phase === chunk.phase && first.step === chunk.step;
    await updateIfUnchanged(doc, {
      status: "waiting",
      phase: first.phase,
      step: first.step,
      upcoming,
      errorCursor: samePosition ? chunk.errorCursor : null,
      ...(first.phase !== chunk.phase ? { cursor: null, phaseExamined: 0 } : {}),
      generation: FieldValue.increment(1),
      enqueued: false,
      lease: null,
      lastError: null,
      finishedAt: null,
      updatedAt: FieldValue.serverTimestamp(),
    });
  });
  await queueDueWork(deps, id);
}

/** Writes only if nobody changed the document since it was read (a chunk may be settling meanwhile). */
async function updateIfUnchanged(doc: FirebaseFirestore.DocumentSnapshot, data: Record<string, unknown>): Promise<boolean> {
  try {
    await doc.ref.update(data, { lastUpdateTime: doc.updateTime as Timestamp });
    return true;
  } catch (error) {
    if (isPreconditionFailure(error)) return false;
    throw error;
  }
}
