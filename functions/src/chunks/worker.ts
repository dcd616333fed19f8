// The chunk task handler: works through one UTC day of a run, page by page. Each page's outcome (counters,
// the cursor after it, its error records and its page record) is committed in one conditional transaction
// on the chunk document, so a delivery that repeats a page, runs alongside another delivery, or restarts
// after a crash never counts an event twice.
//
// A delivery works only while it holds the chunk's lease. A duplicate delivery of the same task waits for
// the holder to finish (or to stop renewing); a retry of the task takes over at once, because Cloud Tasks
// only retries an attempt it has given up on. Correctness never depends on the lease; it keeps duplicates
// from contending for the same documents.
import { randomUUID } from "node:crypto";
import { FieldPath, FieldValue, Timestamp, type DocumentSnapshot, type Query } from "firebase-admin/firestore";
import { z } from "zod";
import { dayBounds } from "../core/dates";
import { afterStep, isFinishedRun, isSelected, pageDelta } from "../core/progress";
import { errorRateOverWindow, AUTO_PAUSE_WINDOW } from "../core/window";
import { countOutcomes, REVERSAL_EVENT_TYPES, ZERO_COUNTERS, type EventOutcome } from "../core/types";
import type { Deps } from "../deps";
import { applyGroup, ProductCatalog } from "../ledger/apply";
import { describe } from "../log";
import { refs, type ChunkDoc, type Cursor, type EventErrorDoc, type PageOutcome, type RunDoc } from "../platform/collections";
import { mapWithConcurrency } from "../platform/firestore";
import { killSwitch } from "../platform/flags";
import { chunkTaskId, type ChunkTaskPayload } from "../platform/tasks";
import { advanceRun, isPreconditionFailure, pauseRun } from "../runs/advance";
import { runFields } from "../runs/runFields";

/** What Cloud Tasks tells a delivery about itself. */
export interface Delivery {
  /** 0 on the first attempt. */
  retryCount: number;
  /** The task's name (X-CloudTasks-TaskName); identical for every delivery of one task. */
  taskName: string;
}

/** How long a delivery owns its chunk without committing a page before another may take over. */
export const LEASE_SECONDS = 120;
/** How often a delivery that found its chunk busy looks again. */
const BUSY_POLL_MS = 400;
/** An errors pass re-examines at most this many events per page (its writes share one transaction). */
const ERRORS_PAGE_SIZE = 100;

/** Another delivery holds the chunk for longer than it should; Cloud Tasks' retry sorts it out. */
export class ChunkBusyError extends Error {
  override name = "ChunkBusyError";
}

/** Identity of one delivery, for the chunk's lease. */
interface Holder {
  owner: string;
  task: string;
  attempt: number;
}

const payloadSchema = z.strictObject({
  migrationId: z.string().regex(/^[A-Za-z0-9_-]{1,200}$/),
  chunkId: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
});

/**
 * Entry point of the `backfillChunk` task function. Returns when the chunk needs nothing more from this
 * delivery; throws on transient failures so that Cloud Tasks retries, except on the last attempt, where
 * the chunk is recorded as failed instead.
 */
export async function handleChunkTask(deps: Deps, payload: unknown, delivery: Delivery): Promise<void> {
  const parsed = payloadSchema.safeParse(payload);
  if (!parsed.success) {
    deps.log.internalError("chunk_payload", new Error(`ignoring malformed chunk task payload: ${JSON.stringify(payload)}`));
    return;
  }
  const { migrationId, chunkId } = parsed.data;
  try {
    await workOnChunk(deps, parsed.data, delivery);
  } catch (error) {
    const lastAttempt = delivery.retryCount + 1 >= deps.config.taskMaxAttempts;
    const run = (await refs(deps.db).run(migrationId).get()).data() as RunDoc | undefined;
    if (!run) throw error;
    if (!lastAttempt || error instanceof ChunkBusyError) {
      deps.log.chunkRetrying(runFields(migrationId, run), { id: chunkId, attempt: delivery.retryCount + 1 }, error);
      await refs(deps.db)
        .chunk(migrationId, chunkId)
        .update({ lastError: describe(error), updatedAt: FieldValue.serverTimestamp() })
        .catch(() => undefined);
      throw error;
    }
    await failChunk(deps, migrationId, run, chunkId, error);
  }
  await advanceRun(deps, migrationId);
}

async function workOnChunk(deps: Deps, task: ChunkTaskPayload, delivery: Delivery): Promise<void> {
  const { db, config } = deps;
  const r = refs(db);
  const { migrationId, chunkId } = task;
  const startedAt = deps.now().getTime();
  const catalog = new ProductCatalog(db);
  const me: Holder = { owner: randomUUID(), task: delivery.taskName, attempt: delivery.retryCount };
  let holding = false;
  let pagesThisDelivery = 0;

  for (;;) {
    const [runSnap, chunkSnap, flagSnap] = await db.getAll(r.run(migrationId), r.chunk(migrationId, chunkId), r.killSwitch);
    const run = runSnap?.data() as RunDoc | undefined;
    const chunk = chunkSnap?.data() as ChunkDoc | undefined;
    if (!run || !chunk) {
      deps.log.internalError("chunk_lookup", new Error(`run ${migrationId} or its chunk ${chunkId} does not exist`));
      return;
    }
    const fields = runFields(migrationId, run);

    if (run.status === "cancelled") {
      if (await settleChunk(deps, migrationId, chunkId, ["pending", "running", "paused", "waiting"], { status: "cancelled" })) {
        deps.log.chunkStopped(fields, { id: chunkId, phase: chunk.phase, status: "cancelled", reason: "run_cancelled" }, chunk, deps.now().getTime() - startedAt);
      }
      return;
    }
    if (isFinishedRun(run.status) || (chunk.status !== "pending" && chunk.status !== "running")) return;

    const switchState = killSwitch(config, flagSnap);
    if (!switchState.enabled || run.status === "paused") {
      const reason = !switchState.enabled ? "kill_switch" : (run.pausedReason ?? "paused");
      if (await settleChunk(deps, migrationId, chunkId, ["pending", "running"], { status: "paused", pausedReason: reason })) {
        deps.log.chunkStopped(fields, { id: chunkId, phase: chunk.phase, status: "paused", reason }, chunk, deps.now().getTime() - startedAt);
      }
      if (!switchState.enabled) await pauseRun(deps, migrationId, "kill_switch");
      return;
    }

    if (!holding || chunk.lease?.owner !== me.owner) {
      if (holding) return; // another delivery took the chunk over; it carries on from the committed cursor
      const claim = await claimChunk(deps, migrationId, runSnap as DocumentSnapshot, chunkId, me);
      if (claim === "busy") {
        // The holder renews its lease every page and yields after a slice; waiting longer than that means
        // it is stuck, and a retry of this task (a higher attempt) will take the chunk over.
        if (deps.now().getTime() - startedAt > (config.sliceSeconds + LEASE_SECONDS) * 1000) {
          throw new ChunkBusyError(`chunk ${chunkId} is still held by another delivery`);
        }
        await new Promise((resolve) => setTimeout(resolve, BUSY_POLL_MS));
        continue;
      }
      if (claim === "claimed") {
        holding = true;
        deps.log.chunkStarted(fields, { id: chunkId, phase: chunk.phase, attempt: delivery.retryCount + 1 });
      }
      continue;
    }

    // Hand the rest of a long day to a continuation task well before Cloud Tasks' dispatch deadline. At
    // least one page per delivery, so every continuation has a new name.
    if (pagesThisDelivery > 0 && deps.now().getTime() - startedAt > config.sliceSeconds * 1000) {
      const taskId = chunkTaskId({ migrationId, chunkId, phase: chunk.phase, generation: chunk.generation, continuation: chunk.pages });
      await deps.queue.enqueue(task, taskId);
      await releaseLease(deps, migrationId, chunkId, me);
      return;
    }

    const result = await processPage(deps, migrationId, run, chunkId, chunk, catalog, me);
    pagesThisDelivery++;
    if (result === "step-finished") {
      const after = (await r.chunk(migrationId, chunkId).get()).data() as ChunkDoc;
      deps.log.chunkStopped(
        fields,
        {
          id: chunkId,
          phase: chunk.phase,
          status: after.status === "running" ? "next_step" : after.status,
          reason: chunk.step === "errors" ? "errors_retried" : after.stoppedAtBudget ? "budget_reached" : "end_of_day",
        },
        after,
        deps.now().getTime() - startedAt,
      );
    }
  }
}

type PageResult = "page-committed" | "step-finished" | "conflict";

/** The events one page of the current step examines, and where the step stands after them. */
interface PagePlan {
  ids: string[];
  cursor: Cursor | null;
  errorCursor: string | null;
  /** The step has nothing after this page. */
  stepDone: boolean;
  /** The scan stopped because its budget ran out, not at the end of the day. */
  stoppedAtBudget: boolean;
}

async function planScanPage(deps: Deps, migrationId: string, run: RunDoc, chunk: ChunkDoc): Promise<PagePlan> {
  const room = (chunk.budgets[chunk.phase] ?? 0) - chunk.phaseExamined;
  if (room <= 0) return { ids: [], cursor: chunk.cursor, errorCursor: chunk.errorCursor, stepDone: true, stoppedAtBudget: true };
  const docs = (await scanQuery(deps, chunk).get()).docs;
  await deps.faults?.at("page-read", { migrationId, chunkId: chunk.day, cursor: chunk.cursor ? cursorKey(chunk.cursor) : null });
  const selection = { runId: migrationId, type: run.type, dryRun: run.dryRun };
  const selected = docs.filter((d) => isSelected(d.data(), selection, chunk.phase));
  const taken = selected.slice(0, room);
  const budgetSpent = selected.length >= room;
  const reachedEnd = docs.length < deps.config.pageSize;
  // The cursor stops at the last examined event when the budget runs out mid-page, else at the page's end.
  const last = selected.length > room ? taken[taken.length - 1] : docs[docs.length - 1];
  return {
    ids: taken.map((d) => d.id),
    cursor: last ? { createdAt: last.get("createdAt") as Timestamp, id: last.id } : chunk.cursor,
    errorCursor: chunk.errorCursor,
    stepDone: reachedEnd || budgetSpent,
    stoppedAtBudget: budgetSpent && !reachedEnd,
  };
}

async function planErrorsPage(deps: Deps, migrationId: string, chunk: ChunkDoc): Promise<PagePlan> {
  let query = refs(deps.db)
    .errors(migrationId)
    .where("chunkId", "==", chunk.day)
    .where("phase", "==", chunk.phase)
    .where("status", "==", "open")
    .orderBy("eventId");
  if (chunk.errorCursor) query = query.startAfter(chunk.errorCursor);
  const docs = (await query.limit(ERRORS_PAGE_SIZE).get()).docs;
  await deps.faults?.at("page-read", { migrationId, chunkId: chunk.day, cursor: chunk.errorCursor });
  const ids = docs.map((d) => d.get("eventId") as string);
  return {
    ids,
    cursor: chunk.cursor,
    errorCursor: ids[ids.length - 1] ?? chunk.errorCursor,
    stepDone: docs.length < ERRORS_PAGE_SIZE,
    stoppedAtBudget: false,
  };
}

async function processPage(
  deps: Deps,
  migrationId: string,
  run: RunDoc,
  chunkId: string,
  chunk: ChunkDoc,
  catalog: ProductCatalog,
  me: Holder,
): Promise<PageResult> {
  const { db, config } = deps;
  const pageStarted = deps.now().getTime();
  const probe = { migrationId, chunkId };
  const plan = chunk.step === "errors" ? await planErrorsPage(deps, migrationId, chunk) : await planScanPage(deps, migrationId, run, chunk);

  const groups: string[][] = [];
  for (let i = 0; i < plan.ids.length; i += config.groupSize) groups.push(plan.ids.slice(i, i + config.groupSize));
  const ctx = { runId: migrationId, mode: run.type, dryRun: run.dryRun } as const;
  const half = Math.floor(groups.length / 2);
  const outcomes = (
    await mapWithConcurrency(groups, config.parallelGroups, async (group, index) => {
      if (index === half && index > 0) await deps.faults?.at("page-half-applied", probe);
      return applyGroup(db, ctx, group, catalog, deps.faults);
    })
  ).flat();
  await deps.faults?.at(plan.stepDone ? "before-chunk-finish" : "before-page-commit", probe);

  const counted = countOutcomes(outcomes);
  const committed = await commitPage(deps, migrationId, run, chunkId, chunk, me, plan, outcomes);
  if (!committed) return "conflict";
  const fields = runFields(migrationId, run);
  for (const o of outcomes) {
    if (o.result === "error") deps.log.eventFailed(fields, chunkId, { eventId: o.eventId, code: o.code, message: o.message });
  }
  deps.log.pageCommitted(fields, { id: chunkId, phase: chunk.phase, page: chunk.pages + 1, step: chunk.step }, counted, deps.now().getTime() - pageStarted);
  if (counted.errors > 0 && run.maxErrorRate < 1) await checkErrorRate(deps, migrationId, run);
  return plan.stepDone ? "step-finished" : "page-committed";
}

/** The chunk's events after its cursor: a whole day for purchases, refunds and chargebacks for reversals. */
function scanQuery(deps: Deps, chunk: ChunkDoc): Query {
  const { startMs, endMs } = dayBounds(chunk.day);
  let query: Query = refs(deps.db)
    .events.where("createdAt", ">=", Timestamp.fromMillis(startMs))
    .where("createdAt", "<", Timestamp.fromMillis(endMs));
  if (chunk.phase === "reversals") query = query.where("type", "in", REVERSAL_EVENT_TYPES);
  query = query.orderBy("createdAt").orderBy(FieldPath.documentId());
  if (chunk.cursor) query = query.startAfter(chunk.cursor.createdAt, chunk.cursor.id);
  return query.select("type", "processed", "processedBy", "createdAt").limit(deps.config.pageSize);
}

const cursorKey = (c: Cursor | null) => (c ? `${c.createdAt.seconds}.${c.createdAt.nanoseconds}/${c.id}` : "start");

function pageOutcome(o: EventOutcome): PageOutcome {
  if (o.result === "processed") return { e: o.eventId, r: "p", x: o.entryId };
  if (o.result === "skipped") return { e: o.eventId, r: "s", x: o.reason };
  return { e: o.eventId, r: "e", x: o.code };
}

/**
 * Commits a page: counters, cursor, error records and the page record, only if the chunk is still where
 * this delivery read it and this delivery still holds it. Otherwise another delivery already committed
 * this page and the caller reloads.
 */
async function commitPage(
  deps: Deps,
  migrationId: string,
  run: RunDoc,
  chunkId: string,
  seen: ChunkDoc,
  me: Holder,
  plan: PagePlan,
  outcomes: readonly EventOutcome[],
): Promise<boolean> {
  const r = refs(deps.db);
  const ref = r.chunk(migrationId, chunkId);
  const delta = pageDelta(seen.step, countOutcomes(outcomes));
  return deps.db.runTransaction(async (tx) => {
    const current = (await tx.get(ref)).data() as ChunkDoc | undefined;
    if (
      !current ||
      current.status !== "running" ||
      current.lease?.owner !== me.owner ||
      current.phase !== seen.phase ||
      current.step !== seen.step ||
      current.phaseExamined !== seen.phaseExamined ||
      current.errorCursor !== seen.errorCursor ||
      cursorKey(current.cursor) !== cursorKey(seen.cursor)
    ) {
      return false;
    }
    const now = FieldValue.serverTimestamp();
    const update: Record<string, unknown> = {
      total: FieldValue.increment(delta.total),
      processed: FieldValue.increment(delta.processed),
      skipped: FieldValue.increment(delta.skipped),
      errors: FieldValue.increment(delta.errors),
      pages: FieldValue.increment(1),
      phaseExamined: FieldValue.increment(seen.step === "scan" ? plan.ids.length : 0),
      cursor: plan.cursor,
      errorCursor: plan.errorCursor,
      lease: { ...me, expiresAt: leaseExpiry(deps) },
      updatedAt: now,
    };
    if (plan.stepDone) {
      const next = afterStep({ phase: current.phase, step: current.step }, current.upcoming);
      update.stoppedAtBudget = current.stoppedAtBudget || plan.stoppedAtBudget;
      if (next.status === "done") {
        Object.assign(update, { status: "done", lease: null, finishedAt: now });
      } else {
        Object.assign(update, {
          status: next.status,
          phase: next.current.phase,
          step: next.current.step,
          upcoming: next.upcoming,
          errorCursor: null,
          ...(next.current.phase !== current.phase ? { cursor: null, phaseExamined: 0 } : {}),
          ...(next.status === "waiting" ? { lease: null, enqueued: false } : {}),
        });
      }
    }
    tx.update(ref, update);

    // Error records are written with the counters they explain, so a retried page cannot leave them apart.
    for (const o of outcomes) {
      const errorRef = r.errors(migrationId).doc(o.eventId);
      if (o.result === "error") {
        const record: Omit<EventErrorDoc, "at" | "attempts"> & Record<string, unknown> = {
          eventId: o.eventId,
          code: o.code,
          message: o.message,
          chunkId,
          phase: seen.phase,
          status: "open",
          resolvedAs: null,
          attempts: FieldValue.increment(1),
          at: now,
        };
        tx.set(errorRef, record, { merge: true });
      } else if (seen.step === "errors") {
        tx.update(errorRef, { status: "resolved", resolvedAs: o.result, at: now });
      }
    }
    if (outcomes.length > 0) {
      const counted = countOutcomes(outcomes);
      tx.create(r.pages(migrationId).doc(`${chunkId}-${current.pages + 1}`), {
        chunkId,
        phase: seen.phase,
        step: seen.step,
        at: now,
        ...counted,
        bits: outcomes.map((o) => o.result[0]).join(""),
        outcomes: outcomes.map(pageOutcome),
      });
    }
    return true;
  });
}

/**
 * Pauses the run when the error rate over its last AUTO_PAUSE_WINDOW examined events (pages committed since
 * the run started or was last resumed) exceeds its maxErrorRate.
 */
async function checkErrorRate(deps: Deps, migrationId: string, run: RunDoc): Promise<void> {
  let query = refs(deps.db).pages(migrationId).orderBy("at", "desc");
  if (run.windowSince) query = query.where("at", ">", run.windowSince);
  const recent = await query.select("bits").limit(AUTO_PAUSE_WINDOW).get();
  const rate = errorRateOverWindow(recent.docs.map((d) => d.get("bits") as string));
  if (rate === null || rate <= run.maxErrorRate) return;
  await pauseRun(deps, migrationId, "error_rate", {
    errorRate: rate,
    window: AUTO_PAUSE_WINDOW,
    threshold: run.maxErrorRate,
    at: Timestamp.fromDate(deps.now()),
  });
}

const leaseExpiry = (deps: Deps) => Timestamp.fromMillis(deps.now().getTime() + LEASE_SECONDS * 1000);

/**
 * Takes the chunk's lease for this delivery and marks the chunk (and a pending run) running. A live lease
 * of another delivery means "busy", unless it belongs to an earlier attempt of this same task.
 */
async function claimChunk(
  deps: Deps,
  migrationId: string,
  runSnap: DocumentSnapshot,
  chunkId: string,
  me: Holder,
): Promise<"claimed" | "busy" | "inactive"> {
  const r = refs(deps.db);
  const ref = r.chunk(migrationId, chunkId);
  const claim = await deps.db.runTransaction(async (tx) => {
    const chunk = (await tx.get(ref)).data() as ChunkDoc | undefined;
    if (!chunk || (chunk.status !== "pending" && chunk.status !== "running")) return "inactive" as const;
    const lease = chunk.lease;
    const live = lease && lease.owner !== me.owner && lease.expiresAt.toMillis() > deps.now().getTime();
    const supersedes = lease && lease.task === me.task && lease.attempt < me.attempt;
    if (live && !supersedes) return "busy" as const;
    tx.update(ref, {
      status: "running",
      lease: { ...me, expiresAt: leaseExpiry(deps) },
      attempts: FieldValue.increment(1),
      startedAt: chunk.startedAt ?? FieldValue.serverTimestamp(),
      pausedReason: null,
      updatedAt: FieldValue.serverTimestamp(),
    });
    return "claimed" as const;
  });
  if (claim === "claimed" && runSnap.get("status") === "pending") {
    try {
      await r.run(migrationId).update(
        { status: "running", startedAt: FieldValue.serverTimestamp(), updatedAt: FieldValue.serverTimestamp() },
        { lastUpdateTime: runSnap.updateTime as Timestamp },
      );
    } catch (error) {
      if (!isPreconditionFailure(error)) throw error;
    }
  }
  return claim;
}

async function releaseLease(deps: Deps, migrationId: string, chunkId: string, me: Holder): Promise<void> {
  const ref = refs(deps.db).chunk(migrationId, chunkId);
  await deps.db.runTransaction(async (tx) => {
    const chunk = (await tx.get(ref)).data() as ChunkDoc | undefined;
    if (chunk?.lease?.owner === me.owner) tx.update(ref, { lease: null, updatedAt: FieldValue.serverTimestamp() });
  });
}

/** Moves the chunk to a settled state if it is in one of `from`; true when this call made the change. */
export async function settleChunk(
  deps: Deps,
  migrationId: string,
  chunkId: string,
  from: readonly ChunkDoc["status"][],
  change: Partial<Pick<ChunkDoc, "status" | "pausedReason" | "lastError">>,
): Promise<boolean> {
  const ref = refs(deps.db).chunk(migrationId, chunkId);
  return deps.db.runTransaction(async (tx) => {
    const chunk = (await tx.get(ref)).data() as ChunkDoc | undefined;
    if (!chunk || !from.includes(chunk.status)) return false;
    const finished = change.status === "failed" || change.status === "cancelled";
    tx.update(ref, {
      ...change,
      lease: null,
      enqueued: false,
      updatedAt: FieldValue.serverTimestamp(),
      ...(finished ? { finishedAt: FieldValue.serverTimestamp() } : {}),
    });
    return true;
  });
}

async function failChunk(deps: Deps, migrationId: string, run: RunDoc, chunkId: string, error: unknown): Promise<void> {
  const chunk = (await refs(deps.db).chunk(migrationId, chunkId).get()).data() as ChunkDoc | undefined;
  const changed = await settleChunk(deps, migrationId, chunkId, ["pending", "running"], {
    status: "failed",
    lastError: describe(error),
  });
  if (changed) {
    deps.log.chunkStopped(
      runFields(migrationId, run),
      { id: chunkId, phase: chunk?.phase ?? run.phase, status: "failed", reason: describe(error) },
      chunk ?? ZERO_COUNTERS,
      0,
    );
  }
}

