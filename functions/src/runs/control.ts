// Operator control of a run: pause, resume, cancel, retry. Each call is idempotent; a transition that
// makes no sense is refused with 409 and a message saying what to do instead. Every change is a
// transition of core/run.ts and core/chunk.ts; after each call the watchdog looks the run over, so a
// call never leaves it unable to make progress.
import { cancelChunk, resumeChunk, retryChunk } from "../core/chunkControl";
import { cancelRun, pause, resumeRun, retryRun, type Run, type RunTransition } from "../core/run";
import { decideControl, type ControlAction } from "../core/control";
import type { Caller } from "../auth/oidc";
import type { Deps } from "../deps";
import { AppError } from "../errors";
import { admitAndWrite } from "../store/admission";
import { assertRunsEnabled } from "../store/killSwitch";
import { chunkStore } from "../store/chunks";
import { errorStore } from "../store/errors";
import { mapWithConcurrency } from "../platform/firestore";
import { chunkTaskId } from "../platform/tasks";
import { advanceRun, enqueueChunk } from "./advance";
import { runFields } from "./runFields";
import { runStore } from "../store/runs";
import { getRun } from "./views";
import { repairRun } from "./watchdog";

const CHUNK_WRITE_CONCURRENCY = 16;

const notFound = (id: string) =>
  new AppError(404, "not_found", `No run ${id}; list runs with GET /api/admin/dataMigrations.`);

export async function controlRun(deps: Deps, id: string, action: ControlAction, caller: Caller) {
  const by = caller.email;
  const read = await runStore(deps.db).get(id);
  if (!read) throw notFound(id);
  const run = read.data;
  const openErrors = await errorStore(deps.db).openCount(id);
  const decision = decideControl(action, { status: run.status, openErrors, retries: run.retries }, id);
  if (decision.kind === "conflict") {
    await runStore(deps.db).recordAction(id, {
      action,
      outcome: "refused",
      statusBefore: run.status,
      email: caller.email,
      sub: caller.sub,
    });
    throw new AppError(409, "invalid_transition", decision.message, { status: run.status });
  }
  if ((action === "resume" || action === "retry") && decision.kind === "change") await assertRunsEnabled(deps);

  // The decision was made on the run as read; the transition is decided again on the run as it is when
  // written, so a run that ended in between (its last page landed) is reported unchanged, not "done".
  let changed = false;
  await deps.faults?.at("control-decided", { runId: id });
  if (decision.kind === "change") {
    if (action === "pause") changed = await changeRun(deps, id, (r) => pause(r, `paused by ${by}`));
    if (action === "resume") changed = await resume(deps, id);
    if (action === "cancel") changed = await cancel(deps, id);
    if (action === "retry") changed = await retry(deps, id);
  }
  const outcome = changed ? "changed" : "noop";
  deps.log.runControlled(runFields(id, run), action, outcome, caller, run.status);
  await runStore(deps.db).recordAction(id, {
    action,
    outcome,
    statusBefore: run.status,
    email: caller.email,
    sub: caller.sub,
  });
  // Whatever happened around this call (a delivery parking its chunk as the run resumed, a task lost while
  // it was queued), the run is left able to make progress.
  await repairRun(deps, id);
  return { action, changed, ...(await getRun(deps, id)) };
}

/** Applies a run transition; true when it changed the run. */
async function changeRun(deps: Deps, id: string, transition: (run: Run) => RunTransition<boolean>): Promise<boolean> {
  return (await runStore(deps.db).apply(id, (r) => (r ? transition(r) : { result: false, update: null }))).written;
}

/**
 * Paused chunks continue from their checkpoints under a new generation of task names. The run is
 * resumed first: a delivery that parks its chunk after this call looked for paused chunks sees the run
 * running again and resumes that chunk itself.
 */
async function resume(deps: Deps, id: string): Promise<boolean> {
  const now = deps.now().getTime();
  if (!(await changeRun(deps, id, (r) => resumeRun(r, now)))) return false;
  const run = await runStore(deps.db).get(id);
  if (!run) return true;
  const chunks = chunkStore(deps.db);
  const paused = (await chunks.heads(id)).filter((h) => h.data.status === "paused");
  await mapWithConcurrency(paused, CHUNK_WRITE_CONCURRENCY, (head) =>
    chunks.apply(id, head.data.id, (c) => (c ? resumeChunk(c, run.data.phase) : { result: false, update: null })),
  );
  await advanceRun(deps, id);
  return true;
}

/**
 * Stops the run for good. Chunks nobody is working on are cancelled here and their queued tasks deleted;
 * one in the middle of a page finishes that page and cancels itself at the boundary; one whose holder
 * vanished mid-page is drained by a fresh task (it finishes that page, so everything the run wrote is
 * counted, then cancels).
 */
async function cancel(deps: Deps, id: string): Promise<boolean> {
  const now = deps.now().getTime();
  if (!(await changeRun(deps, id, (r) => cancelRun(r, now)))) return false;
  const chunks = chunkStore(deps.db);
  const open = (await chunks.heads(id)).filter((h) => !["done", "failed", "cancelled"].includes(h.data.status));
  await mapWithConcurrency(open, CHUNK_WRITE_CONCURRENCY, async (head) => {
    const { result, chunk } = await chunks.apply(id, head.data.id, (c) =>
      c ? cancelChunk(c, now) : { result: "unchanged" as const, update: null },
    );
    if (result === "cancelled") {
      // Its queued task: the first of its generation, or the continuation a long day handed over to.
      const base = { runId: id, chunkId: head.data.id, phase: head.data.step.phase, generation: head.data.generation };
      await deps.queue.delete(chunkTaskId(base));
      if (head.data.pages > 0) await deps.queue.delete(chunkTaskId({ ...base, continuation: head.data.pages }));
    } else if (result === "drain" && chunk) {
      await enqueueChunk(deps, id, chunk, now);
    }
  });
  await advanceRun(deps, id);
  return true;
}

/**
 * Runs again, inside the same run, only what did not succeed: failed chunks continue from their
 * checkpoints, and every chunk with open errors re-examines those events (purchases before reversals).
 * Counters stay true because an errors step replaces each re-examined event's error by its new outcome.
 *
 * The chunks get their retry steps while the run is still ended, and only then is the run reopened at its
 * first phase: a roll-up in between sees an ended run and leaves it alone, so it can neither close the
 * run again nor move it past a phase whose errors step has not run.
 */
async function retry(deps: Deps, id: string): Promise<boolean> {
  const read = await runStore(deps.db).get(id);
  if (!read || (read.data.status !== "failed" && read.data.status !== "completed")) return false;
  // A retry makes an ended run active again: it is admitted like a new run (it may not race a real run
  // started over its days since it ended, nor exceed MAX_ACTIVE_RUNS).
  const { type, startDate, endDate, dryRun } = read.data;
  // Admitted together with a mark on the run, so that a start landing before the retry reopens it still
  // counts it as active (it would otherwise see an ended run, drop it from the list and be admitted over
  // the same days).
  await admitAndWrite(
    deps,
    { id, type, startDate, endDate, dryRun },
    (batch) => runStore(deps.db).markRetryAdmitted(batch, id, deps.now().getTime()),
    () => Promise.resolve("retry" as const),
  );
  await deps.faults?.at("retry-admitted", { runId: id });
  const errorPhases = await errorStore(deps.db).openPhases(id);
  const chunks = chunkStore(deps.db);
  const targets = (await chunks.heads(id)).filter(
    (h) => h.data.status === "failed" || (h.data.status === "done" && errorPhases.has(h.data.id)),
  );
  await mapWithConcurrency(targets, CHUNK_WRITE_CONCURRENCY, (head) =>
    chunks.apply(id, head.data.id, (c) =>
      c ? retryChunk(c, [...(errorPhases.get(c.id) ?? [])], read.data.phases) : { result: false, update: null },
    ),
  );
  const now = deps.now().getTime();
  const changed = await changeRun(deps, id, (run) => retryRun(run, now));
  await advanceRun(deps, id);
  return changed;
}
