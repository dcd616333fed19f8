// The chunk task handler: works through one UTC day of a run, page by page. Each page's outcome (counters
// and the cursor after it) is committed in one conditional write on the chunk document, so a delivery that
// repeats a page, runs alongside another delivery, or restarts after a crash never counts an event twice.
//
// A delivery works only while it holds the chunk's lease. A duplicate delivery of the same task waits for
// the holder to finish (or to stop renewing); a retry of the task takes over at once, because Cloud Tasks
// only retries an attempt it has given up on. Correctness never depends on the lease; it keeps duplicates
// from contending for the same documents.
import { randomUUID } from "node:crypto";
import { FieldPath, FieldValue, Timestamp, type DocumentSnapshot, type Query } from "firebase-admin/firestore";
import { z } from "zod";
import { dayBounds } from "../core/dates";
import { isFinishedRun, isSelected, positionAfterPhase } from "../core/progress";
import { countOutcomes, REVERSAL_EVENT_TYPES, ZERO_COUNTERS, type Counters, type EventOutcome } from "../core/types";
import type { Deps } from "../deps";
import { applyGroup, ProductCatalog } from "../ledger/apply";
import { describe } from "../log";
import { refs, type ChunkDoc, type Cursor, type RunDoc } from "../platform/collections";
import { mapWithConcurrency } from "../platform/firestore";
import { killSwitch } from "../platform/flags";
import { chunkTaskId, type ChunkTaskPayload } from "../platform/tasks";
import { advanceRun, isPreconditionFailure } from "../runs/advance";
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
      await settleChunk(deps, migrationId, chunkId, ["pending", "running", "paused", "waiting"], { status: "cancelled" });
      return;
    }
    if (isFinishedRun(run.status) || (chunk.status !== "pending" && chunk.status !== "running")) return;

    const switchState = killSwitch(config, flagSnap);
    if (!switchState.enabled || run.status === "paused") {
      const reason = !switchState.enabled ? "kill_switch" : (run.pausedReason ?? "paused");
      if (await settleChunk(deps, migrationId, chunkId, ["pending", "running"], { status: "paused", pausedReason: reason })) {
        deps.log.chunkStopped(fields, { id: chunkId, phase: chunk.phase, status: "paused", reason }, chunk, deps.now().getTime() - startedAt);
      }
      if (!switchState.enabled) await pauseRun(deps, migrationId, run, "kill_switch");
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
    if (result === "phase-finished") {
      const after = (await r.chunk(migrationId, chunkId).get()).data() as ChunkDoc;
      deps.log.chunkStopped(
        fields,
        { id: chunkId, phase: chunk.phase, status: after.status, reason: after.stoppedAtBudget ? "budget_reached" : "end_of_day" },
        after,
        deps.now().getTime() - startedAt,
      );
    }
  }
}

type PageResult = "page-committed" | "phase-finished" | "conflict";

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
  const room = (chunk.budgets[chunk.phase] ?? 0) - chunk.phaseExamined;
  const probe = { migrationId, chunkId };

  let docs: FirebaseFirestore.QueryDocumentSnapshot[] = [];
  if (room > 0) {
    docs = (await pageQuery(deps, chunk).get()).docs;
    await deps.faults?.at("page-read", probe);
  }
  const selection = { runId: migrationId, type: run.type, dryRun: run.dryRun };
  const selected = docs.filter((d) => isSelected(d.data(), selection, chunk.phase));
  const taken = selected.slice(0, Math.max(0, room));
  const budgetSpent = room <= 0 || selected.length >= room;
  const reachedEnd = docs.length < config.pageSize;
  // The cursor stops at the last examined event when the budget runs out mid-page, else at the page's end.
  const last = budgetSpent && selected.length > room ? taken[taken.length - 1] : docs[docs.length - 1];
  const cursor: Cursor | null = last ? { createdAt: last.get("createdAt") as Timestamp, id: last.id } : chunk.cursor;

  const ids = taken.map((d) => d.id);
  const groups: string[][] = [];
  for (let i = 0; i < ids.length; i += config.groupSize) groups.push(ids.slice(i, i + config.groupSize));
  const ctx = { runId: migrationId, mode: run.type, dryRun: run.dryRun } as const;
  const half = Math.floor(groups.length / 2);
  const outcomes = (
    await mapWithConcurrency(groups, config.parallelGroups, async (group, index) => {
      if (index === half && index > 0) await deps.faults?.at("page-half-applied", probe);
      return applyGroup(db, ctx, group, catalog, deps.faults);
    })
  ).flat();

  await recordErrors(deps, migrationId, run, chunkId, chunk, outcomes);
  const counters = countOutcomes(outcomes);
  const phaseDone = reachedEnd || budgetSpent;
  await deps.faults?.at(phaseDone ? "before-chunk-finish" : "before-page-commit", probe);

  const committed = await commitPage(deps, migrationId, run, chunkId, chunk, me, {
    counters,
    cursor,
    examined: taken.length,
    phaseDone,
    stoppedAtBudget: budgetSpent && !reachedEnd,
  });
  if (!committed) return "conflict";
  deps.log.pageCommitted(
    runFields(migrationId, run),
    { id: chunkId, phase: chunk.phase, page: chunk.pages + 1 },
    counters,
    deps.now().getTime() - pageStarted,
  );
  return phaseDone ? "phase-finished" : "page-committed";
}

/** The chunk's events after its cursor: a whole day for purchases, refunds and chargebacks for reversals. */
function pageQuery(deps: Deps, chunk: ChunkDoc): Query {
  const { startMs, endMs } = dayBounds(chunk.day);
  let query: Query = refs(deps.db)
    .events.where("createdAt", ">=", Timestamp.fromMillis(startMs))
    .where("createdAt", "<", Timestamp.fromMillis(endMs));
  if (chunk.phase === "reversals") query = query.where("type", "in", REVERSAL_EVENT_TYPES);
  query = query.orderBy("createdAt").orderBy(FieldPath.documentId());
  if (chunk.cursor) query = query.startAfter(chunk.cursor.createdAt, chunk.cursor.id);
  return query.select("type", "processed", "processedBy", "createdAt").limit(deps.config.pageSize);
}

/** Per-event errors, keyed by event id so a repeated page rewrites the same documents. */
async function recordErrors(
  deps: Deps,
  migrationId: string,
  run: RunDoc,
  chunkId: string,
  chunk: ChunkDoc,
  outcomes: readonly EventOutcome[],
): Promise<void> {
  const failures = outcomes.filter((o): o is Extract<EventOutcome, { result: "error" }> => o.result === "error");
  if (failures.length === 0) return;
  const errors = refs(deps.db).errors(migrationId);
  const batch = deps.db.batch();
  for (const f of failures) {
    batch.set(errors.doc(f.eventId), {
      eventId: f.eventId,
      code: f.code,
      message: f.message,
      chunkId,
      phase: chunk.phase,
      at: FieldValue.serverTimestamp(),
    });
    deps.log.eventFailed(runFields(migrationId, run), chunkId, { eventId: f.eventId, code: f.code, message: f.message });
  }
  await batch.commit();
}

const cursorKey = (c: Cursor | null) => (c ? `${c.createdAt.seconds}.${c.createdAt.nanoseconds}/${c.id}` : "start");

/**
 * Adds a page's counters and moves the cursor, only if the chunk is still where this delivery read it.
 * Otherwise another delivery already committed this page and the caller reloads.
 */
async function commitPage(
  deps: Deps,
  migrationId: string,
  run: RunDoc,
  chunkId: string,
  seen: ChunkDoc,
  me: Holder,
  page: { counters: Counters; cursor: Cursor | null; examined: number; phaseDone: boolean; stoppedAtBudget: boolean },
): Promise<boolean> {
  const ref = refs(deps.db).chunk(migrationId, chunkId);
  return deps.db.runTransaction(async (tx) => {
    const current = (await tx.get(ref)).data() as ChunkDoc | undefined;
    if (
      !current ||
      current.status !== "running" ||
      current.lease?.owner !== me.owner ||
      current.phase !== seen.phase ||
      current.phaseExamined !== seen.phaseExamined ||
      cursorKey(current.cursor) !== cursorKey(seen.cursor)
    ) {
      return false;
    }
    const update: Record<string, unknown> = {
      total: FieldValue.increment(page.counters.total),
      processed: FieldValue.increment(page.counters.processed),
      skipped: FieldValue.increment(page.counters.skipped),
      errors: FieldValue.increment(page.counters.errors),
      pages: FieldValue.increment(1),
      phaseExamined: FieldValue.increment(page.examined),
      cursor: page.cursor,
      lease: { ...me, expiresAt: leaseExpiry(deps) },
      updatedAt: FieldValue.serverTimestamp(),
    };
    if (page.phaseDone) {
      update.lease = null;
      const next = positionAfterPhase(current.phase, current.budgets, run.phases);
      update.status = next.status;
      update.stoppedAtBudget = current.stoppedAtBudget || page.stoppedAtBudget;
      if (next.status === "waiting") {
        Object.assign(update, { phase: next.phase, cursor: null, phaseExamined: 0, enqueued: false });
      } else {
        update.finishedAt = FieldValue.serverTimestamp();
      }
    }
    tx.update(ref, update);
    return true;
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
async function settleChunk(
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

async function pauseRun(deps: Deps, migrationId: string, run: RunDoc, reason: string): Promise<void> {
  const ref = refs(deps.db).run(migrationId);
  const paused = await deps.db.runTransaction(async (tx) => {
    const current = (await tx.get(ref)).data() as RunDoc | undefined;
    if (!current || (current.status !== "running" && current.status !== "pending")) return false;
    tx.update(ref, { status: "paused", pausedReason: reason, updatedAt: FieldValue.serverTimestamp() });
    return true;
  });
  if (paused) deps.log.runPaused(runFields(migrationId, run), reason);
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
