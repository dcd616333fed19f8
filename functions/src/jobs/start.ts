// Starting a run: validate, check the kill switch, plan the event budget, record the run with one
// document per day chunk, then queue the chunks. A rejected request writes nothing. With an idempotency
// key, the key's record is created in the same batch as the run, so two requests with one key can never
// both start a run.
import { createHash } from "node:crypto";
import { FieldValue, Timestamp } from "firebase-admin/firestore";
import { newChunk, type Chunk } from "../core/chunk";
import { DEFAULT_DELIVERY_EVENTS_PER_SECOND, estimateSeconds, measuredDeliveryRate } from "../core/estimate";
import { parseExecutePlan, parseStartJob, type StartJobRequest } from "../core/request";
import type { Run } from "../core/run";
import { phasesFor, SEQUENTIAL_PHASES } from "../core/types";
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
import type { StartedRun } from "../http/schemas";
import { admitAndWrite } from "./admission";
import { planRun, type RunPlan } from "./planner";

/** The 202 answer to a started job (its wire format is http/schemas.ts). */
export type { StartedRun } from "../http/schemas";

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
  // Either a new run's parameters, or `{"planOf": id}`: the parameters of a completed dry run.
  const execute = parseExecutePlan(body);
  let given: StartJobRequest | null = null;
  if (execute && !execute.ok) throw invalidRequest(execute.problems);
  if (!execute) {
    const parsed = parseStartJob(body, {
      maxRangeDays: deps.config.maxRangeDays,
      defaultMaxErrorRate: deps.config.autoPauseErrorRate,
      now: options.asOf ?? deps.now(),
    });
    if (!parsed.ok) throw invalidRequest(parsed.problems);
    given = parsed.value;
  }
  const planOf = execute?.ok ? execute.value.planOf : null;
  const bodyHash = given ? hashRequest(given) : createHash("sha256").update(JSON.stringify({ planOf })).digest("hex");
  const keyRef = key === null ? null : deps.db.collection(COLLECTIONS.idempotency).doc(createHash("sha256").update(`${options.caller.email}\n${key}`).digest("hex"));

  if (keyRef) {
    const earlier = await replayFor(keyRef, bodyHash, key as string);
    if (earlier) return { run: earlier, replayed: true };
  }
  const request = given ?? (await requestFromPlan(deps, planOf as string));
  await assertBackfillEnabled(deps);
  const plan = await planRun(deps.db, request, { shardEvents: deps.config.shardEvents });
  // Chunks with work: a chunk with no budget is done from the start and costs nothing.
  const working = plan.spans.filter((span) => Object.values(plan.budgets.get(span.id) ?? {}).some((n) => n > 0)).length;
  // Refunds, chargebacks and closings run one chunk at a time: each chunk with budget there is a turn.
  const sequential = { events: 0, turns: 0 };
  for (const budget of plan.budgets.values()) {
    for (const phase of SEQUENTIAL_PHASES) {
      const n = budget[phase] ?? 0;
      if (n > 0) Object.assign(sequential, { events: sequential.events + n, turns: sequential.turns + 1 });
    }
  }
  const estimated = estimateSeconds(plan.planned, working, deps.config.queue, await recentDeliveryRate(deps, request.dryRun), request.maxEventsPerSecond, sequential);
  const created = await createRun(deps, request, plan, { planOf, estimatedSeconds: estimated }, options.caller, keyRef && { key: key as string, bodyHash, ref: keyRef });
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
    estimatedSeconds: run.estimatedSeconds,
    userIds: run.userIds?.length ?? 0,
    planOf: run.planOf,
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

/**
 * The parameters of a real run that executes a dry run's plan: the dry run must exist, be a dry run, have
 * completed, and have finished at most PLAN_MAX_AGE_MINUTES ago (after that the data it saw may have moved
 * too far for its answer to be a promise).
 */
async function requestFromPlan(deps: Deps, planOf: string): Promise<StartJobRequest> {
  const read = await runStore(deps.db).get(planOf);
  const newDryRun = "Start a new dry run (POST /api/jobs/backfill with dryRun true) and execute that one.";
  if (!read) throw new AppError(404, "plan_not_found", `No run ${planOf} to execute; list runs with GET /api/admin/dataMigrations.`, { planOf });
  const dry = read.data;
  if (!dry.dryRun) {
    throw new AppError(409, "plan_invalid", `Run ${planOf} is a real run, not a dry run; only a dry run's plan can be executed.`, { planOf });
  }
  if (dry.status !== "completed") {
    throw new AppError(
      409,
      "plan_not_completed",
      `Dry run ${planOf} is ${dry.status}; only a completed dry run can be executed. ${dry.status === "pending" || dry.status === "running" || dry.status === "paused" ? "Wait for it to complete, or s" : "S"}${newDryRun.slice(1)}`,
      { planOf, status: dry.status },
    );
  }
  const maxAge = deps.config.planMaxAgeMinutes;
  const ageMinutes = dry.finishedAt === null ? Infinity : (deps.now().getTime() - dry.finishedAt) / 60_000;
  if (ageMinutes > maxAge) {
    throw new AppError(
      409,
      "plan_expired",
      `Dry run ${planOf} finished ${Math.floor(ageMinutes)} minutes ago; a plan may be executed for ${maxAge} minutes (PLAN_MAX_AGE_MINUTES), after which the events it saw may have changed. ${newDryRun}`,
      { planOf, finishedAt: dry.finishedAt === null ? null : new Date(dry.finishedAt).toISOString(), maxAgeMinutes: maxAge },
    );
  }
  return {
    type: dry.type,
    startDate: dry.startDate,
    endDate: dry.endDate,
    lookbackDays: null,
    dryRun: false,
    maxEvents: dry.maxEvents,
    maxErrorRate: dry.maxErrorRate,
    maxEventsPerSecond: dry.maxEventsPerSecond,
    userIds: dry.userIds,
  };
}

const RECENT_RUNS = 50;

/** Events per second this deployment measured on its recent runs, or the default. */
async function recentDeliveryRate(deps: Deps, dryRun: boolean): Promise<number> {
  // Only the fields a sample needs: this runs on every start.
  const recent = await deps.db
    .collection(COLLECTIONS.runs)
    .orderBy("createdAt", "desc")
    .limit(RECENT_RUNS)
    .select("status", "dryRun", "total", "chunksTotal", "startedAt", "finishedAt", "maxEventsPerSecond")
    .get();
  const millis = (t: unknown) => (t instanceof Timestamp ? t.toMillis() : null);
  const samples = recent.docs.map((d) => ({
    status: String(d.get("status")),
    dryRun: d.get("dryRun") === true,
    total: Number(d.get("total") ?? 0),
    chunks: Number(d.get("chunksTotal") ?? 0),
    startedAt: millis(d.get("startedAt")),
    finishedAt: millis(d.get("finishedAt")),
    paced: typeof d.get("maxEventsPerSecond") === "number",
  }));
  return measuredDeliveryRate(samples, dryRun, deps.config.queue) ?? DEFAULT_DELIVERY_EVENTS_PER_SECOND;
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
    maxEventsPerSecond: r.maxEventsPerSecond,
    userIds: r.userIds,
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
  plan: RunPlan,
  extra: { planOf: string | null; estimatedSeconds: number },
  caller: Caller,
  idempotency: { key: string; bodyHash: string; ref: FirebaseFirestore.DocumentReference } | null,
): Promise<{ id: string; run: Run; response: StartedRun } | { replayed: StartedRun }> {
  const requestedBy = caller.email;
  const phases = phasesFor(request.type);
  const now = deps.now().getTime();
  const chunks = plan.spans.map((span) =>
    newChunk(span, plan.budgets.get(span.id) ?? {}, { phases }, now),
  );
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
