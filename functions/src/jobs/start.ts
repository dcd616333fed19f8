// Starting a run: validate, check the kill switch, plan the event budget, record the run with one
// document per day chunk, then queue the chunks. A rejected request writes nothing. With an idempotency
// key, the key's record is created in the same batch as the run, so two requests with one key can never
// both start a run.
import { createHash } from "node:crypto";
import { FieldValue, Timestamp } from "firebase-admin/firestore";
import { newChunk, type Chunk } from "../core/chunk";
import type { Allocation } from "../core/plan";
import { daysInRange } from "../core/dates";
import { parseStartJob, type StartJobRequest } from "../core/request";
import type { Run } from "../core/run";
import { phasesFor, type RunType } from "../core/types";
import type { Caller } from "../auth/oidc";
import type { Deps } from "../deps";
import { AppError, invalidRequest } from "../errors";
import { describe } from "../log";
import { chunkStore } from "../chunks/store";
import { COLLECTIONS, refs } from "../platform/collections";
import { killSwitch, killSwitchMessage } from "../platform/flags";
import { advanceRun } from "../runs/advance";
import { runFields } from "../runs/runFields";
import { runStore } from "../runs/store";
import { admitAndWrite } from "./admission";
import { planRun } from "./planner";

/** The 202 answer to a started job. */
export interface StartedRun {
  migrationId: string;
  status: "pending";
  chunks: number;
  type: RunType;
  startDate: string;
  endDate: string;
  dryRun: boolean;
  plannedEvents: number;
  selectedEvents: number;
  capReached: boolean;
}

export interface StartOptions {
  /** Who asks: recorded on the run; an idempotency key is theirs alone. */
  caller: Caller;
  /** Same caller, same key and same body: the same run. Same key, other body: 409. */
  idempotencyKey?: string | null;
  /** The moment a lookback window ends on (default: now); a scheduler passes its schedule time. */
  asOf?: Date;
}

/** `idempotencyKeys/{sha256(caller email, key)}`: a key is scoped to the caller who sent it. */
interface IdempotencyDoc {
  key: string;
  bodyHash: string;
  migrationId: string;
  response: StartedRun;
  requestedBy: string;
  createdAt: Timestamp;
  /** Firestore TTL removes the record after this (see firestore.indexes.json). */
  expiresAt: Timestamp;
}

const IDEMPOTENCY_TTL_DAYS = 30;
const KEY_PATTERN = /^[\x21-\x7e]{1,200}$/;

export async function startJob(deps: Deps, body: unknown, options: StartOptions): Promise<{ run: StartedRun; replayed: boolean }> {
  const key = options.idempotencyKey ?? null;
  if (key !== null && !KEY_PATTERN.test(key)) {
    throw invalidRequest([{ field: "Idempotency-Key", message: "Idempotency-Key must be 1 to 200 printable ASCII characters without spaces" }]);
  }
  const parsed = parseStartJob(body, {
    maxRangeDays: deps.config.maxRangeDays,
    defaultMaxErrorRate: deps.config.autoPauseErrorRate,
    now: options.asOf ?? deps.now(),
  });
  if (!parsed.ok) throw invalidRequest(parsed.problems);
  const request = parsed.value;
  const bodyHash = hashRequest(request);
  const keyRef = key === null ? null : deps.db.collection(COLLECTIONS.idempotency).doc(createHash("sha256").update(`${options.caller.email}\n${key}`).digest("hex"));

  if (keyRef) {
    const earlier = await replayFor(keyRef, bodyHash, key as string);
    if (earlier) return { run: earlier, replayed: true };
  }
  await assertBackfillEnabled(deps);
  const plan = await planRun(deps.db, request);
  const created = await createRun(deps, request, plan, options.caller, keyRef && { key: key as string, bodyHash, ref: keyRef });
  if ("replayed" in created) return { run: created.replayed, replayed: true };
  const { id, run, response } = created;
  deps.log.runCreated(runFields(id, run), {
    chunks: run.chunksTotal,
    planned: plan.planned,
    selected: plan.selected,
    maxEvents: request.maxEvents,
    requestedBy: options.caller.email,
    requestedBySub: options.caller.sub,
    planQueries: plan.queries ?? 0,
  });
  // Opens the first phase that has work, queues its chunks, and closes a run that had nothing to do.
  try {
    await advanceRun(deps, id);
  } catch (error) {
    deps.log.internalError("enqueue_chunks", error, runFields(id, run));
    throw new AppError(
      503,
      "enqueue_failed",
      `Run ${id} was recorded but its chunk tasks could not all be queued (${describe(error)}). Check the backfill Cloud Tasks queue; the watchdog queues them again within ${Math.ceil(deps.config.stallSeconds / 60)} minutes, or resume the run.`,
      { migrationId: id },
    );
  }
  return { run: response, replayed: false };
}

/** What makes two requests "the same body": the fields as given (a lookback window, not its dates). */
function hashRequest(r: StartJobRequest): string {
  const given = {
    type: r.type,
    startDate: r.lookbackDays === null ? r.startDate : null,
    endDate: r.lookbackDays === null ? r.endDate : null,
    lookbackDays: r.lookbackDays,
    dryRun: r.dryRun,
    maxEvents: r.maxEvents,
    maxErrorRate: r.maxErrorRate,
  };
  return createHash("sha256").update(JSON.stringify(given)).digest("hex");
}

async function replayFor(ref: FirebaseFirestore.DocumentReference, bodyHash: string, key: string): Promise<StartedRun | null> {
  const snap = await ref.get();
  return snap.exists ? checkReplay(snap.data() as IdempotencyDoc, bodyHash, key) : null;
}

/** The run an earlier request with this key started, if it asked for the same; else 409. */
function checkReplay(record: IdempotencyDoc, bodyHash: string, key: string): StartedRun {
  if (record.bodyHash !== bodyHash) {
    throw new AppError(
      409,
      "idempotency_key_reused",
      `Idempotency-Key ${key} was already used for a different request (run ${record.migrationId}); use a new key for a new request.`,
      { migrationId: record.migrationId },
    );
  }
  return record.response;
}

export async function assertBackfillEnabled(deps: Deps): Promise<void> {
  const state = killSwitch(deps.config, await refs(deps.db).killSwitch.get());
  if (!state.enabled) throw new AppError(503, "backfill_disabled", killSwitchMessage(state));
}

const ID_ATTEMPTS = 20;

/**
 * Records the run and its chunks in one batch under `{type}_{epochMillis}`, moving on a millisecond if the
 * id is taken. With an idempotency key, the key's record joins the batch; if another request created it
 * first, that request's run is the answer.
 */
async function createRun(
  deps: Deps,
  request: StartJobRequest,
  plan: Allocation,
  caller: Caller,
  idempotency: { key: string; bodyHash: string; ref: FirebaseFirestore.DocumentReference } | null,
): Promise<{ id: string; run: Run; response: StartedRun } | { replayed: StartedRun }> {
  const requestedBy = caller.email;
  const phases = phasesFor(request.type);
  const days = daysInRange(request.startDate, request.endDate);
  const now = deps.now().getTime();
  const chunks = days.map((day) => newChunk(day, plan.budgets.get(day) ?? {}, { type: request.type, phases }, now));
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
    chunksTotal: days.length,
    chunksDone: chunks.filter((c) => c.status === "done").length,
    chunksFailed: 0,
    plannedEvents: plan.planned,
    selectedEvents: plan.selected,
    capReached: plan.capReached,
    maxErrorRate: request.maxErrorRate,
    windowSince: null,
    autoPause: null,
    retries: 0,
    lookbackDays: request.lookbackDays,
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
    };
    const written = await writeRun(deps, run, chunks, idempotency && { ...idempotency, response, requestedBy, ttlFrom: deps.now() });
    if (written === "written") return { id, run, response };
    if (written !== "id_taken") return { replayed: written.replayed };
  }
  throw new AppError(503, "busy", "Too many runs were started in the same instant; try again.");
}

/**
 * Records the run, its chunks and its idempotency record in one batch, if admission control lets it in
 * (jobs/admission.ts). Returns "id_taken" when another run has this id, or the earlier run when another
 * request with the same key got there first.
 */
async function writeRun(
  deps: Deps,
  run: Run,
  chunks: readonly Chunk[],
  idempotency: {
    key: string;
    bodyHash: string;
    ref: FirebaseFirestore.DocumentReference;
    response: StartedRun;
    requestedBy: string;
    ttlFrom: Date;
  } | null,
): Promise<"written" | "id_taken" | { replayed: StartedRun }> {
  const db = deps.db;
  const runs = runStore(db);
  const candidate = { id: run.id, type: run.type, startDate: run.startDate, endDate: run.endDate, dryRun: run.dryRun };
  const replay = async () => (idempotency ? await replayFor(idempotency.ref, idempotency.bodyHash, idempotency.key) : null);
  return admitAndWrite(
    deps,
    candidate,
    (batch) => {
      if (idempotency) {
        const record: IdempotencyDoc = {
          key: idempotency.key,
          bodyHash: idempotency.bodyHash,
          migrationId: run.id,
          response: idempotency.response,
          requestedBy: idempotency.requestedBy,
          createdAt: FieldValue.serverTimestamp() as unknown as Timestamp,
          expiresAt: Timestamp.fromMillis(idempotency.ttlFrom.getTime() + IDEMPOTENCY_TTL_DAYS * 86_400_000),
        };
        batch.create(idempotency.ref, record);
      }
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
    const earlier = error instanceof AppError && (error.code === "run_overlaps" || error.code === "too_many_runs") ? await replay() : null;
    if (earlier) return { replayed: earlier };
    throw error;
  });
}
