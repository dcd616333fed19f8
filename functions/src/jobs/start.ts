// Starting a run: validate, check the kill switch, plan the event budget, record the run with one
// document per day chunk, then queue the chunks. A rejected request writes nothing.
import { FieldValue, type Firestore } from "firebase-admin/firestore";
import type { Allocation } from "../core/plan";
import { daysInRange } from "../core/dates";
import { initialChunkPosition } from "../core/progress";
import { parseStartJob, type StartJobRequest } from "../core/request";
import { phasesFor } from "../core/types";
import type { Deps } from "../deps";
import { AppError, invalidRequest } from "../errors";
import { describe } from "../log";
import { refs, type ChunkDoc, type RunDoc } from "../platform/collections";
import { killSwitch, killSwitchMessage } from "../platform/flags";
import { queueDueWork, rollUp } from "../runs/advance";
import { runFields } from "../runs/runFields";
import { planRun } from "./planner";

/** The 202 answer to a started job. */
export interface StartedRun {
  migrationId: string;
  status: "pending";
  chunks: number;
  dryRun: boolean;
  plannedEvents: number;
  selectedEvents: number;
  capReached: boolean;
}

export async function startJob(deps: Deps, body: unknown, requestedBy: string): Promise<StartedRun> {
  const parsed = parseStartJob(body, deps.config.maxRangeDays);
  if (!parsed.ok) throw invalidRequest(parsed.problems);
  await assertBackfillEnabled(deps);
  const request = parsed.value;
  const plan = await planRun(deps.db, request);
  const { id, run } = await createRun(deps, request, plan, requestedBy);
  deps.log.runCreated(runFields(id, run), {
    chunks: run.chunksTotal,
    planned: plan.planned,
    selected: plan.selected,
    maxEvents: request.maxEvents,
    requestedBy,
  });
  try {
    await queueDueWork(deps, id);
  } catch (error) {
    deps.log.internalError("enqueue_chunks", error, runFields(id, run));
    throw new AppError(
      503,
      "enqueue_failed",
      `Run ${id} was recorded but its chunk tasks could not all be queued (${describe(error)}). Check the backfill Cloud Tasks queue; chunks already queued will run.`,
      { migrationId: id },
    );
  }
  // Mirrors progress and closes a run that had nothing to do. The run is already recorded and queued, so a
  // failure here is only logged: every chunk that finishes rolls up again.
  await rollUp(deps, id).catch((error: unknown) => deps.log.internalError("roll_up", error, runFields(id, run)));
  return {
    migrationId: id,
    status: "pending",
    chunks: run.chunksTotal,
    dryRun: run.dryRun,
    plannedEvents: plan.planned,
    selectedEvents: plan.selected,
    capReached: plan.capReached,
  };
}

export async function assertBackfillEnabled(deps: Deps): Promise<void> {
  const state = killSwitch(deps.config, await refs(deps.db).killSwitch.get());
  if (!state.enabled) throw new AppError(503, "backfill_disabled", killSwitchMessage(state));
}

const ID_ATTEMPTS = 20;

/** Records the run and its chunks in one batch under `{type}_{epochMillis}`, moving on a millisecond if taken. */
async function createRun(
  deps: Deps,
  request: StartJobRequest,
  plan: Allocation,
  requestedBy: string,
): Promise<{ id: string; run: RunDoc }> {
  const phases = phasesFor(request.type);
  const days = daysInRange(request.startDate, request.endDate);
  const now = FieldValue.serverTimestamp() as unknown as FirebaseFirestore.Timestamp;
  const chunks = days.map((day): [string, ChunkDoc] => {
    const budgets = plan.budgets.get(day) ?? {};
    const position = initialChunkPosition(budgets, phases);
    return [
      day,
      {
        day,
        status: position.status,
        phase: position.phase,
        budgets,
        phaseExamined: 0,
        cursor: null,
        pages: 0,
        generation: 0,
        enqueued: false,
        attempts: 0,
        lease: null,
        stoppedAtBudget: false,
        pausedReason: null,
        lastError: null,
        total: 0,
        processed: 0,
        skipped: 0,
        errors: 0,
        startedAt: null,
        finishedAt: position.status === "done" ? now : null,
        updatedAt: now,
      },
    ];
  });
  const run: RunDoc = {
    type: request.type,
    startDate: request.startDate,
    endDate: request.endDate,
    dryRun: request.dryRun,
    maxEvents: request.maxEvents,
    status: "pending",
    phase: phases[0] as RunDoc["phase"],
    phases,
    total: 0,
    processed: 0,
    skipped: 0,
    errors: 0,
    chunksTotal: days.length,
    chunksDone: chunks.filter(([, c]) => c.status === "done").length,
    chunksFailed: 0,
    plannedEvents: plan.planned,
    selectedEvents: plan.selected,
    capReached: plan.capReached,
    requestedBy,
    createdAt: now,
    startedAt: null,
    finishedAt: null,
    updatedAt: now,
    pausedReason: null,
    failureReason: null,
  };

  let millis = deps.now().getTime();
  for (let attempt = 0; attempt < ID_ATTEMPTS; attempt++, millis++) {
    const id = `${request.type}_${millis}`;
    try {
      await writeRun(deps.db, id, run, chunks);
      return { id, run };
    } catch (error) {
      if ((error as { code?: unknown }).code !== 6 /* ALREADY_EXISTS */) throw error;
    }
  }
  throw new AppError(503, "busy", "Too many runs were started in the same instant; try again.");
}

async function writeRun(db: Firestore, id: string, run: RunDoc, chunks: Array<[string, ChunkDoc]>): Promise<void> {
  const r = refs(db);
  const batch = db.batch();
  batch.create(r.run(id), run);
  for (const [day, chunk] of chunks) batch.create(r.chunk(id, day), chunk);
  await batch.commit();
}
