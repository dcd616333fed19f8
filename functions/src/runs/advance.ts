// Moves a run forward after any of its chunks changed: opens the next phase once no chunk has work left
// in the current one, mirrors the chunks' progress onto the run, closes it when every chunk has finished,
// and queues every chunk that is due. Any delivery, control call or watchdog pass may call it any number
// of times; every write is a transition of core/run.ts or core/chunk.ts applied to the version it was
// decided on.
//
// The run is read before its chunks, and written only if it has not changed since: whatever this call
// writes was decided from a view of the chunks at least as new as the run it replaces, so an older
// roll-up can never overwrite a newer one, and a retry that reopens the run cannot be closed again by a
// roll-up that saw its chunks before the retry.
import { mayWorkNow, type Chunk } from "../core/chunk";
import { markQueued, wake } from "../core/chunkControl";
import { openPhases, pause, rollUp } from "../core/run";
import type { AutoPause } from "../core/run";
import type { Phase } from "../core/types";
import type { Deps } from "../deps";
import { chunkStore } from "../store/chunks";
import { Conflict, mapWithConcurrency, readDecideWrite, type Versioned } from "../platform/firestore";
import { chunkTaskId } from "../platform/tasks";
import { runFields } from "./runFields";
import { runStore } from "../store/runs";

const ENQUEUE_CONCURRENCY = 16;
/** Mirroring counters may give way to a concurrent writer; opening a phase or closing the run may not. */
const MIRROR_ATTEMPTS = 3;
const MUST_ATTEMPTS = 25;

export async function advanceRun(deps: Deps, runId: string): Promise<void> {
  const runs = runStore(deps.db);
  const chunks = chunkStore(deps.db);
  await readDecideWrite(`run ${runId} (advancing)`, async () => {
    const read = await runs.get(runId);
    if (!read) return;
    const heads = await chunks.heads(runId);
    await deps.faults?.at("before-run-close", { runId });
    const run = read.data;
    const opened = openPhases(
      run,
      heads.map((h) => h.data),
    );
    const moved = { ...run, ...opened.update };
    const rolled = rollUp(
      moved,
      heads.map((h) => h.data),
      deps.now().getTime(),
    );
    const update = { ...opened.update, ...rolled.update };
    if (Object.keys(update).length > 0) {
      if (!(await runs.write(runId, read.version, update))) {
        const must = opened.update !== null || rolled.result.closed !== null;
        return must ? new Conflict(MUST_ATTEMPTS) : new Conflict(MIRROR_ATTEMPTS, () => undefined);
      }
      if (opened.update)
        deps.log.phaseStarted(
          runFields(runId, run),
          opened.result,
          heads.filter((h) => h.data.step.phase === opened.result).length,
        );
      if (rolled.result.closed) {
        deps.log.runFinished(runFields(runId, run), rolled.result.closed, rolled.result.progress, {
          durationMs: deps.now().getTime() - (run.startedAt ?? run.createdAt ?? deps.now().getTime()),
          chunksFailed: rolled.result.progress.chunksFailed,
          capReached: run.capReached,
        });
      }
    }
    const status = update.status ?? run.status;
    if (status === "pending" || status === "running") await queueDue(deps, runId, heads, opened.result);
  });
}

/** The chunks that may work in `phase` now (core/chunk.ts's mayWorkNow; the next is woken once one is done with it). */
export function mayWork(heads: Array<Versioned<Chunk>>, phase: Phase): Array<Versioned<Chunk>> {
  const may = new Set(
    mayWorkNow(
      heads.map((h) => h.data),
      phase,
    ).map((c) => c.id),
  );
  return heads.filter((h) => may.has(h.data.id));
}

/** Wakes the chunks waiting for `phase` that may work and queues a task for every due chunk that has none. */
async function queueDue(deps: Deps, runId: string, heads: Array<Versioned<Chunk>>, phase: Phase): Promise<void> {
  const chunks = chunkStore(deps.db);
  const now = deps.now().getTime();
  const due: Chunk[] = [];
  await mapWithConcurrency(mayWork(heads, phase), ENQUEUE_CONCURRENCY, async (head) => {
    const c = head.data;
    if (c.status === "waiting" && c.step.phase === phase) {
      const woken = wake(c, phase);
      if (await chunks.applyTo(runId, head, woken)) due.push({ ...c, ...woken.update });
    } else if (c.status === "pending" && c.step.phase === phase && c.queued !== c.generation) {
      due.push(c);
    }
  });
  await mapWithConcurrency(due, ENQUEUE_CONCURRENCY, (c) => enqueueChunk(deps, runId, c, now));
}

/**
 * Queues the task of the chunk's current generation and records it, unless the chunk moved on to a newer
 * generation meanwhile (that generation's own task is queued by whoever created it). Cloud Tasks refuses a
 * name it has seen, so queueing the same generation twice runs it once.
 */
export async function enqueueChunk(
  deps: Deps,
  runId: string,
  c: Pick<Chunk, "id" | "step" | "generation">,
  now: number,
): Promise<void> {
  const taskId = chunkTaskId({ runId, chunkId: c.id, phase: c.step.phase, generation: c.generation });
  await deps.queue.enqueue({ migrationId: runId, chunkId: c.id, generation: c.generation }, taskId);
  await chunkStore(deps.db).apply(runId, c.id, (fresh) =>
    fresh ? markQueued(fresh, c.generation, now) : { result: false, update: null },
  );
}

/** Pauses a pending or running run (kill switch, operator, or its own error rate); true if this call did. */
export async function pauseRun(
  deps: Deps,
  runId: string,
  reason: string,
  autoPause: AutoPause | null = null,
): Promise<boolean> {
  const { result, run } = await runStore(deps.db).apply(runId, (r) =>
    r ? pause(r, reason, autoPause) : { result: false, update: null },
  );
  if (result && run) {
    deps.log.runPaused(
      runFields(runId, run),
      reason,
      autoPause ? { error_rate: autoPause.errorRate, window: autoPause.window, threshold: autoPause.threshold } : {},
    );
  }
  return result;
}
