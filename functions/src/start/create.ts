// Recording a run: its document and one per chunk, with the idempotency key's record, in one batch that
// admission control (core/admission.ts, store/admission.ts) lets in or refuses.
import { newChunk, type Chunk } from "../core/chunk";
import type { StartRequest } from "../core/request";
import type { Run } from "../core/run";
import { phasesFor } from "../core/types";
import type { Caller } from "../auth/oidc";
import type { Deps } from "../deps";
import { AppError } from "../errors";
import type { StartedRun } from "../http/schemas";
import { chunkStore } from "../store/chunks";
import { runStore } from "../store/runs";
import { admitAndWrite } from "../store/admission";
import { earlierAnswer, recordKey, type IdempotencyKey } from "../store/idempotency";
import type { RunPlan } from "./planner";

const ID_ATTEMPTS = 20;

/**
 * Records the run and its chunks in one batch under `{type}_{epochMillis}`, moving on a millisecond if the
 * id is taken. With an idempotency key, the key's record joins the batch; if another request created it
 * first, that request's run is the answer.
 */
export async function createRun(
  deps: Deps,
  request: StartRequest,
  plan: RunPlan,
  extra: { planOf: string | null; estimatedSeconds: number },
  caller: Caller,
  idempotency: IdempotencyKey | null,
): Promise<{ id: string; run: Run; response: StartedRun } | { replayed: StartedRun }> {
  const requestedBy = caller.email;
  const phases = phasesFor(request.type);
  const now = deps.now().getTime();
  const chunks = plan.chunks.map((bounds) => newChunk(bounds, plan.budgets.get(bounds.id) ?? {}, { phases }, now));
  const base: Omit<Run, "id"> = {
    type: request.type,
    startDate: request.startDate,
    endDate: request.endDate,
    dryRun: request.dryRun,
    maxEvents: request.maxEvents,
    status: "pending",
    phase: phases[0] as Run["phase"],
    phases,
    total: 0,
    processed: 0,
    skipped: 0,
    errors: 0,
    chunksTotal: chunks.length,
    chunksDone: chunks.filter((c) => c.status === "done").length,
    chunksFailed: 0,
    plannedEvents: plan.planned,
    selectedEvents: plan.selected,
    capReached: plan.capReached,
    unmarkedEvents: plan.unmarkedEvents,
    maxErrorRate: request.maxErrorRate,
    maxEventsPerSecond: request.maxEventsPerSecond,
    windowSince: null,
    autoPause: null,
    retries: 0,
    lookbackDays: request.lookbackDays,
    userIds: request.userIds,
    planOf: extra.planOf,
    estimatedSeconds: extra.estimatedSeconds,
    requestedBy,
    requestedBySub: caller.sub,
    createdAt: null,
    startedAt: null,
    finishedAt: null,
    pausedReason: null,
    failureReason: null,
  };

  let millis = now;
  for (let attempt = 0; attempt < ID_ATTEMPTS; attempt++, millis++) {
    const id = `${request.type}_${millis}`;
    const run: Run = { id, ...base };
    const response: StartedRun = {
      migrationId: id,
      status: "pending",
      chunks: run.chunksTotal,
      type: run.type,
      startDate: run.startDate,
      endDate: run.endDate,
      dryRun: run.dryRun,
      plannedEvents: plan.planned,
      selectedEvents: plan.selected,
      capReached: plan.capReached,
      userIds: run.userIds,
      planOf: run.planOf,
      estimatedSeconds: run.estimatedSeconds,
    };
    const written = await writeRun(deps, run, chunks, idempotency, response);
    if (written === "written") return { id, run, response };
    if (written !== "id_taken") return { replayed: written.replayed };
  }
  throw new AppError(503, "busy", "Too many runs were started in the same instant; try again.");
}

/**
 * Records the run, its chunks and its idempotency record in one batch, if admission control lets it in
 * (core/admission.ts, store/admission.ts). Returns "id_taken" when another run has this id, or the earlier run when another
 * request with the same key got there first.
 */
async function writeRun(
  deps: Deps,
  run: Run,
  chunks: readonly Chunk[],
  idempotency: IdempotencyKey | null,
  response: StartedRun,
): Promise<"written" | "id_taken" | { replayed: StartedRun }> {
  const db = deps.db;
  const runs = runStore(db);
  const candidate = { id: run.id, type: run.type, startDate: run.startDate, endDate: run.endDate, dryRun: run.dryRun };
  const replay = async () => (idempotency ? await earlierAnswer(idempotency) : null);
  return admitAndWrite(
    deps,
    candidate,
    (batch) => {
      if (idempotency) recordKey(batch, idempotency, response, run.requestedBy, deps.now());
      runs.create(batch, run);
      const store = chunkStore(db);
      for (const chunk of chunks) store.create(batch, run.id, chunk);
    },
    // Something this batch creates exists: the key (another request with it won), or the run id.
    async () => {
      const earlier = await replay();
      if (earlier) return { replayed: earlier };
      if ((await runs.doc(run.id).get()).exists) return "id_taken" as const;
      return "retry" as const;
    },
  ).catch(async (error: unknown) => {
    // Refused because the run this very key started is active (or fills the last place): that run is the answer.
    const earlier =
      error instanceof AppError && (error.code === "run_overlaps" || error.code === "too_many_runs")
        ? await replay()
        : null;
    if (earlier) return { replayed: earlier };
    throw error;
  });
}
