// The work on one chunk: at each page boundary a delivery reads its run, its chunk and the kill switch,
// and core/chunk.ts (`nextMove`) decides what it does (claim, settle, hand off, rest, or work a page);
// every change to the chunk is one of that module's transitions, written by chunks/store.ts only if the
// chunk is still the version it was decided on. A page's outcome (counters, position, error records and
// the page record) is committed in one batch, only from the position the page was planned from, so a
// delivery that repeats a page, runs alongside another delivery, loses its lease mid-page or restarts
// after a crash never counts an event twice, and every entry it wrote is counted once.
import { randomUUID } from "node:crypto";
import { type Chunk, type Holder } from "../core/chunk";
import { claim, release, settle } from "../core/chunkTransitions";
import { cancelChunk, resumeChunk } from "../core/chunkControl";
import { nextMove } from "../core/nextMove";
import { markStarted, type Run } from "../core/run";
import { pacedPageSize, paceRestMs } from "../core/estimate";
import type { Deps } from "../deps";
import { ProductCatalog } from "../ledger/reads";
import { refs } from "../platform/collections";
import type { Versioned } from "../platform/firestore";
import { killSwitch } from "../store/killSwitch";
import { chunkTaskId } from "../platform/tasks";
import { enqueueChunk, pauseRun } from "../runs/advance";
import { runFields } from "../runs/runFields";
import { runStore } from "../store/runs";
import { chunkStore } from "../store/chunks";
import type { ReadBuffer } from "./pagePlan";
import { LEASE_SECONDS, processPage } from "./page";

/** What Cloud Tasks tells a delivery about itself. */
export interface Delivery {
  /** 0 on the first attempt. */
  retryCount: number;
  /** The task's name (X-CloudTasks-TaskName); identical for every delivery of one task. */
  taskName: string;
}

/** How often a delivery that found its chunk busy looks again. */
const BUSY_POLL_MS = 400;
/** How often a paced delivery resting between pages looks at its run again. */
const PACE_LOOK_MS = 1000;
/** Another delivery holds the chunk for longer than it should; Cloud Tasks' retry sorts it out. */
export class ChunkBusyError extends Error {
  override name = "ChunkBusyError";
}

/** The chunk one piece of work is about, and the task generation it was queued for (null: any). */
export interface ChunkTask {
  runId: string;
  chunkId: string;
  generation: number | null;
}

export async function workOnChunk(
  deps: Deps,
  task: ChunkTask,
  delivery: Delivery,
  catalog: ProductCatalog,
): Promise<void> {
  const { db, config } = deps;
  const chunks = chunkStore(db);
  const runs = runStore(db);
  const { runId, chunkId } = task;
  const startedAt = deps.now().getTime();
  const me: Holder = { owner: randomUUID(), task: delivery.taskName, attempt: delivery.retryCount };
  const state = { holding: false, draining: false, drained: false, pages: 0, restUntil: 0 };
  const buffer: { current: ReadBuffer | null } = { current: null };

  for (;;) {
    const [runSnap, chunkSnap, flagSnap] = await db.getAll(
      runs.doc(runId),
      chunks.doc(runId, chunkId),
      refs(db).killSwitch,
    );
    const run = runs.fromSnapshot(runSnap);
    const chunk = chunks.fromSnapshot(chunkSnap);
    const now = deps.now().getTime();
    const move = nextMove({
      run: run?.data ?? null,
      killSwitchOn: killSwitch(config, flagSnap).enabled,
      chunk: chunk?.data ?? null,
      me,
      ...state,
      generation: task.generation,
      sliceOver: now - startedAt > config.sliceSeconds * 1000,
    });
    if (move.kind === "exit") {
      if (move.why === "missing")
        deps.log.internalError("chunk_lookup", new Error(`run ${runId} or its chunk ${chunkId} does not exist`));
      return;
    }
    const r = run as Versioned<Run>;
    let c = chunk as Versioned<Chunk>;
    const fields = runFields(runId, r.data);

    if (move.kind === "settle") {
      const {
        result,
        chunk: settled,
        written,
      } = await chunks.apply(runId, chunkId, (fresh) =>
        fresh
          ? settle(fresh, move.to, move.reason, me, deps.now().getTime())
          : { result: "unchanged" as const, update: null },
      );
      if (written && settled) {
        deps.log.chunkStopped(
          fields,
          { id: chunkId, phase: settled.step.phase, status: move.to, reason: move.reason },
          settled,
          deps.now().getTime() - startedAt,
        );
        if (move.reason === "kill_switch") await pauseRun(deps, runId, "kill_switch");
        if (move.to === "paused") await reconcileStopped(deps, runId, chunkId);
        return;
      }
      // A delivery that vanished mid-page left this chunk of a cancelled run: finish its page, then stop.
      if (result === "drain" && move.drainAllowed && !state.holding) {
        const claimed = await chunks.apply(runId, chunkId, (fresh) =>
          fresh
            ? claim(fresh, me, deps.now().getTime(), LEASE_SECONDS * 1000)
            : { result: { kind: "inactive" as const }, update: null },
        );
        if (claimed.result.kind !== "claimed") return;
        Object.assign(state, { holding: true, draining: true });
        deps.log.chunkStarted(fields, { id: chunkId, phase: c.data.step.phase, attempt: delivery.retryCount + 1 });
        continue;
      }
      return;
    }

    if (move.kind === "claim") {
      const claimed = await chunks.apply(runId, chunkId, (fresh) =>
        fresh
          ? claim(fresh, me, deps.now().getTime(), LEASE_SECONDS * 1000)
          : { result: { kind: "inactive" as const }, update: null },
      );
      const kind = claimed.result.kind;
      if (kind === "taken" || kind === "inactive") return; // another task's delivery is on it, and that task answers for it
      if (kind === "busy") {
        // The holder renews its lease every page and yields after a slice; waiting longer than that means
        // it is stuck, and a retry of this task (a higher attempt) will take the chunk over.
        if (deps.now().getTime() - startedAt > (config.sliceSeconds + LEASE_SECONDS) * 1000) {
          throw new ChunkBusyError(`chunk ${chunkId} is still held by another delivery`);
        }
        await new Promise((resolve) => setTimeout(resolve, BUSY_POLL_MS));
        continue;
      }
      state.holding = true;
      deps.log.chunkStarted(fields, { id: chunkId, phase: c.data.step.phase, attempt: delivery.retryCount + 1 });
      if (r.data.status === "pending")
        await runs.apply(runId, (fresh) =>
          fresh ? markStarted(fresh, deps.now().getTime()) : { result: false, update: null },
        );
      await deps.faults?.at("after-claim", { runId, chunkId });
      // The claim changed only the lease and the status: work the first page from the chunk as claimed.
      if (!claimed.chunk) continue;
      c = { data: claimed.chunk, version: c.version };
    }

    if (move.kind === "handoff") {
      // Hand the rest of a long day to a continuation task well before Cloud Tasks' dispatch deadline. Let
      // go first: the continuation is another task, and would otherwise find the chunk taken. Should this
      // delivery die in between, Cloud Tasks retries it, and the retry picks the chunk up again.
      const { generation, step, pages } = c.data;
      await chunks.apply(runId, chunkId, (fresh) =>
        fresh ? release(fresh, me, deps.now().getTime()) : { result: false, update: null },
      );
      await deps.queue.enqueue(
        { migrationId: runId, chunkId, generation },
        chunkTaskId({ runId, chunkId, phase: step.phase, generation, continuation: pages }),
      );
      return;
    }

    // A paced run (maxEventsPerSecond) rests between pages, looking at its run and chunk every second so
    // that a pause, cancel or kill switch still lands at the next page boundary.
    const resting = state.restUntil - deps.now().getTime();
    if (resting > 0) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(resting, PACE_LOOK_MS)));
      continue;
    }
    const pace = r.data.maxEventsPerSecond;
    const pageDeps =
      pace === null
        ? deps
        : { ...deps, config: { ...config, pageSize: pacedPageSize(config.pageSize, pace, config.queue) } };
    const pageStarted = deps.now().getTime();
    const result = await processPage(pageDeps, r.data, c.data, catalog, me, buffer);
    const worked = deps.now().getTime() - pageStarted;
    state.restUntil = deps.now().getTime() + paceRestMs(result.examined, worked, pace, config.queue);
    state.pages++;
    if (state.draining) state.drained = true;
    if (result.kind === "committed" && result.stepDone) {
      deps.log.chunkStopped(
        fields,
        {
          id: chunkId,
          phase: c.data.step.phase,
          status: result.status === "running" ? "next_step" : result.status,
          reason:
            c.data.step.step === "errors" ? "errors_retried" : result.stoppedAtBudget ? "budget_reached" : "end_of_day",
        },
        result.counters,
        deps.now().getTime() - startedAt,
      );
      // Waiting for the next phase, or done: nothing more for this delivery here.
      if (result.status !== "running") return;
    }
  }
}

/**
 * A delivery parked its chunk because the run was stopped, but the run may have been resumed or cancelled
 * between the delivery's read of the run and its write: look again, so the chunk follows its run.
 */
async function reconcileStopped(deps: Deps, runId: string, chunkId: string): Promise<void> {
  const run = await runStore(deps.db).get(runId);
  if (!run) return;
  const chunks = chunkStore(deps.db);
  const { status, phase } = run.data;
  if (status === "pending" || status === "running") {
    const { written, chunk } = await chunks.apply(runId, chunkId, (c) =>
      c ? resumeChunk(c, phase) : { result: false, update: null },
    );
    if (written && chunk?.status === "pending") await enqueueChunk(deps, runId, chunk, deps.now().getTime());
  } else if (status === "cancelled") {
    await chunks.apply(runId, chunkId, (c) =>
      c ? cancelChunk(c, deps.now().getTime()) : { result: "unchanged" as const, update: null },
    );
  }
}
