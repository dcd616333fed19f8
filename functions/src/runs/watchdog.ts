// The watchdog: finds runs that can make no progress and repairs them. It runs on a schedule (the
// `runWatchdog` function) and after every control call. A repair is one of core/run.ts's `planRepairs`:
// a chunk whose lease expired with no delivery renewing it, or whose task never started, gets a task of a
// new generation; a paused chunk in a running run is resumed; unfinished chunks of a stopped run that
// nobody will stop are stopped. Then the run is advanced, which opens phases, queues due chunks and closes
// a run whose chunks have all finished. Every repair is logged as `run_repaired`.
import { settle } from "../core/chunkTransitions";
import { fail, requeue, resumeChunk } from "../core/chunkControl";
import { planRepairs, type Repair } from "../core/watchdog";
import type { Deps } from "../deps";
import { chunkStore } from "../store/chunks";
import { refs } from "../platform/collections";
import { killSwitch } from "../store/killSwitch";
import { advanceRun, enqueueChunk, pauseRun } from "./advance";
import { runFields } from "./runFields";
import { runStore } from "../store/runs";

/** Cancelled runs are looked at for this long after they were cancelled, and longer while one is still draining. */
const CANCELLED_LOOKBACK_MS = 24 * 3600 * 1000;
const RUN_CONCURRENCY = 4;

/** Repairs one run; returns what it repaired. */
export async function repairRun(deps: Deps, runId: string): Promise<Repair[]> {
  const runs = runStore(deps.db);
  const chunks = chunkStore(deps.db);
  const [read, heads, flag] = await Promise.all([runs.get(runId), chunks.heads(runId), refs(deps.db).killSwitch.get()]);
  if (!read) return [];
  const now = deps.now().getTime();
  const repairs = planRepairs(
    read.data,
    heads.map((h) => h.data),
    {
      now,
      stallMs: deps.config.stallSeconds * 1000,
      killSwitchOn: killSwitch(deps.config, flag).enabled,
      maxCrashes: deps.config.maxCrashes,
    },
  );
  const byId = new Map(heads.map((h) => [h.data.id, h]));
  const done: Repair[] = [];
  for (const repair of repairs) {
    if (repair.kind === "pause_run") {
      if (await pauseRun(deps, runId, repair.reason)) done.push(repair);
      continue;
    }
    const head = byId.get(repair.chunkId);
    if (!head) continue;
    let applied = false;
    if (repair.kind === "fail_chunk") {
      const c = head.data;
      const why =
        `its deliveries stopped without finishing ${c.crashes + 1} times in a row (each task the watchdog queued for it crashed, ran out of memory or timed out); ` +
        `last error: ${c.lastError ?? "none recorded"}. Fix the cause, then retry the run`;
      const t = fail(c, why, now, { task: "watchdog", generation: null });
      applied = await chunks.applyTo(runId, head, t);
      if (applied)
        deps.log.chunkStopped(
          runFields(runId, read.data),
          { id: c.id, phase: c.step.phase, status: "failed", reason: "kept_crashing" },
          c,
          0,
        );
    } else if (repair.kind === "requeue") {
      const t = requeue(head.data, repair.why === "lease_expired");
      applied = await chunks.applyTo(runId, head, t);
      if (applied) await enqueueChunk(deps, runId, { ...head.data, ...t.update }, now);
    } else if (repair.kind === "enqueue") {
      await enqueueChunk(deps, runId, head.data, now);
      applied = true;
    } else if (repair.kind === "resume_chunk") {
      applied = await chunks.applyTo(runId, head, resumeChunk(head.data, read.data.phase));
    } else {
      applied = await chunks.applyTo(runId, head, settle(head.data, repair.to, repair.why, null, now));
    }
    // A chunk that changed since it was read is left for the next pass, which sees it as it is.
    if (applied) done.push(repair);
  }
  for (const repair of done) deps.log.runRepaired(runFields(runId, read.data), repair);
  await advanceRun(deps, runId);
  return done;
}

/**
 * One watchdog pass over every run that is not over, every cancelled run still draining (however long the
 * kill switch kept its drain waiting), and runs cancelled in the last day.
 */
export async function watchRuns(deps: Deps): Promise<{ runs: number; repairs: number }> {
  const runs = runStore(deps.db).collection();
  const since = deps.now().getTime() - CANCELLED_LOOKBACK_MS;
  const [going, cancelled, draining] = await Promise.all([
    runs.where("status", "in", ["pending", "running", "paused"]).select().get(),
    runs.where("status", "==", "cancelled").where("finishedAt", ">=", new Date(since)).select().get(),
    runs.where("status", "==", "cancelled").where("draining", "==", true).select().get(),
  ]);
  const ids = [...new Set([...going.docs, ...cancelled.docs, ...draining.docs].map((d) => d.id))];
  let repairs = 0;
  for (let i = 0; i < ids.length; i += RUN_CONCURRENCY) {
    const results = await Promise.allSettled(ids.slice(i, i + RUN_CONCURRENCY).map((id) => repairRun(deps, id)));
    results.forEach((result, k) => {
      if (result.status === "fulfilled") repairs += result.value.length;
      else deps.log.internalError(`watchdog ${ids[i + k] ?? ""}`, result.reason);
    });
  }
  return { runs: ids.length, repairs };
}
