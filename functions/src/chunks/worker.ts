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
import { addCounters, countOutcomes, REVERSAL_EVENT_TYPES, ZERO_COUNTERS, type Counters, type EventOutcome } from "../core/types";
import type { Deps } from "../deps";
import { applyPage, ProductCatalog } from "../ledger/apply";
import { describe } from "../log";
import { encodeOutcomes, refs, type ChunkDoc, type Cursor, type EventErrorDoc, type PageOutcome, type RunDoc } from "../platform/collections";
import { isPreconditionFailure, optimistically } from "../platform/firestore";
import { killSwitch } from "../platform/flags";
import { chunkTaskId, type ChunkTaskPayload } from "../platform/tasks";
import { advanceRun, pauseRun } from "../runs/advance";
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
 *
 * Once its own chunk needs nothing more, a delivery helps: it takes on chunks that are due but untouched
 * (their own tasks, arriving later, find them taken and return), so many small days cost a few
 * invocations instead of one each. A chunk it takes on carries this task's name in its lease; if the
 * delivery dies, Cloud Tasks retries this task, and the retry finishes what the lease names.
 */
export async function handleChunkTask(deps: Deps, payload: unknown, delivery: Delivery): Promise<void> {
  const parsed = payloadSchema.safeParse(payload);
  if (!parsed.success) {
    deps.log.internalError("chunk_payload", new Error(`ignoring malformed chunk task payload: ${JSON.stringify(payload)}`));
    return;
  }
  const { migrationId } = parsed.data;
  const startedAt = deps.now().getTime();
  const catalog = new ProductCatalog(deps.db);
  const handled = new Set<string>();
  for (let batch = [parsed.data.chunkId]; batch.length > 0; batch = await chunksToHelp(deps, migrationId, delivery, handled, startedAt)) {
    for (const id of batch) handled.add(id);
    const outcomes = await Promise.allSettled(batch.map((chunkId) => workOnChunk(deps, { migrationId, chunkId }, delivery, catalog)));
    const failures = outcomes.flatMap((o, i) => (o.status === "rejected" ? [{ chunkId: batch[i] as string, error: o.reason as unknown }] : []));
    const first = failures[0];
    if (!first) continue;
    const lastAttempt = delivery.retryCount + 1 >= deps.config.taskMaxAttempts;
    const run = (await refs(deps.db).run(migrationId).get()).data() as RunDoc | undefined;
    if (!run) throw first.error;
    if (!lastAttempt || failures.some((f) => f.error instanceof ChunkBusyError)) {
      for (const { chunkId, error } of failures) {
        deps.log.chunkRetrying(runFields(migrationId, run), { id: chunkId, attempt: delivery.retryCount + 1 }, error);
        await refs(deps.db)
          .chunk(migrationId, chunkId)
          .update({ lastError: describe(error), updatedAt: FieldValue.serverTimestamp() })
          // Only a note for operators; the delivery fails and is retried whatever happens here.
          .catch((noteError: unknown) => deps.log.internalError("chunk_last_error", noteError, runFields(migrationId, run)));
      }
      throw first.error;
    }
    // Out of attempts: these chunks, and any other this task had taken on, end failed.
    const held = await refs(deps.db).chunks(migrationId).where("lease.task", "==", delivery.taskName).get();
    for (const id of new Set([...failures.map((f) => f.chunkId), ...held.docs.map((d) => d.id)])) await failChunk(deps, migrationId, run, id, first.error);
    break;
  }
  await advanceRun(deps, migrationId);
}

/** How many due chunks one look for help considers. */
const HELP_CANDIDATES = 10;

/** Small chunks (one page or less) a delivery takes on at once: they wait on round trips, not on the CPU. */
const HELP_PARALLEL = 4;

/**
 * The next chunks this delivery should take on: those its own task holds (left by an earlier attempt that
 * died), else due, untouched ones in the run's phase: several at once when they are small, else one.
 * Empty when there is none, or the delivery's time is up.
 */
async function chunksToHelp(deps: Deps, migrationId: string, delivery: Delivery, handled: Set<string>, startedAt: number): Promise<string[]> {
  if (deps.now().getTime() - startedAt > deps.config.sliceSeconds * 1000) return [];
  const r = refs(deps.db);
  // Only a retry can find chunks its task took on and left (a first attempt has taken none yet).
  const [runSnap, held] = await Promise.all([
    r.run(migrationId).get(),
    delivery.retryCount > 0 ? r.chunks(migrationId).where("lease.task", "==", delivery.taskName).get() : null,
  ]);
  const run = runSnap.data() as RunDoc | undefined;
  if (!run || run.status !== "running") return [];
  const orphans = (held?.docs ?? []).filter((d) => !handled.has(d.id) && (d.get("status") === "running" || d.get("status") === "pending"));
  if (orphans.length > 0) return orphans.slice(0, HELP_PARALLEL).map((d) => d.id);
  const due = await r.chunks(migrationId).where("phase", "==", run.phase).where("status", "==", "pending").limit(HELP_CANDIDATES).get();
  const now = deps.now().getTime();
  const free = due.docs.filter((d) => {
    const lease = d.get("lease") as ChunkDoc["lease"];
    return !handled.has(d.id) && (!lease || lease.expiresAt.toMillis() <= now);
  });
  // A replay's reversals step knows its day's open reversals (remembered by the purchases scan).
  const small = (d: (typeof free)[number]) => {
    const ids = d.get("reversalIds") as ChunkDoc["reversalIds"] | undefined;
    return d.get("phase") === "reversals" && d.get("step") === "scan" && Array.isArray(ids) && ids.length <= deps.config.pageSize;
  };
  const first = free[0];
  if (!first) return [];
  return small(first) ? free.filter(small).slice(0, HELP_PARALLEL).map((d) => d.id) : [first.id];
}

async function workOnChunk(deps: Deps, task: ChunkTaskPayload, delivery: Delivery, catalog: ProductCatalog): Promise<void> {
  const { db, config } = deps;
  const r = refs(db);
  const { migrationId, chunkId } = task;
  const startedAt = deps.now().getTime();
  const me: Holder = { owner: randomUUID(), task: delivery.taskName, attempt: delivery.retryCount };
  let holding = false;
  let pagesThisDelivery = 0;
  const buffer: { current: ReadBuffer | null } = { current: null };

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
      if (claim === "taken") return; // another task's delivery is on it, and that task answers for it
      if (claim === "busy") {
        // The holder renews its lease every page and yields after a slice; waiting longer than that means
        // it is stuck, and a retry of this task (a higher attempt) will take the chunk over.
        if (deps.now().getTime() - startedAt > (config.sliceSeconds + LEASE_SECONDS) * 1000) {
          throw new ChunkBusyError(`chunk ${chunkId} is still held by another delivery`);
        }
        await new Promise((resolve) => setTimeout(resolve, BUSY_POLL_MS));
        continue;
      }
      if (claim !== "claimed") continue;
      holding = true;
      deps.log.chunkStarted(fields, { id: chunkId, phase: chunk.phase, attempt: delivery.retryCount + 1 });
      // The claim changed only the lease and status; the page commit checks the chunk afresh anyway.
    }

    // Hand the rest of a long day to a continuation task well before Cloud Tasks' dispatch deadline. At
    // least one page per delivery, so every continuation has a new name.
    if (pagesThisDelivery > 0 && deps.now().getTime() - startedAt > config.sliceSeconds * 1000) {
      // Let go first: the continuation is another task, and would otherwise find the chunk taken. Should
      // this delivery die in between, Cloud Tasks retries it, and the retry picks the chunk up again.
      const taskId = chunkTaskId({ migrationId, chunkId, phase: chunk.phase, generation: chunk.generation, continuation: chunk.pages });
      await releaseLease(deps, migrationId, chunkId, me);
      await deps.queue.enqueue(task, taskId);
      return;
    }

    const result = await processPage(deps, migrationId, run, chunkId, chunk, catalog, me, buffer);
    pagesThisDelivery++;
    if (result.kind === "step-finished") {
      deps.log.chunkStopped(
        fields,
        {
          id: chunkId,
          phase: chunk.phase,
          status: result.status === "running" ? "next_step" : result.status,
          reason: chunk.step === "errors" ? "errors_retried" : result.stoppedAtBudget ? "budget_reached" : "end_of_day",
        },
        result.counters,
        deps.now().getTime() - startedAt,
      );
      // Waiting for the next phase, or done: nothing more for this delivery here.
      if (result.status !== "running") return;
    }
  }
}

/** What committing a page did; for the page that ends a step, where the chunk went and its counters. */
type Committed = { status: ChunkDoc["status"]; stoppedAtBudget: boolean; counters: Counters };
type PageResult = { kind: "page-committed" } | ({ kind: "step-finished" } & Committed) | { kind: "conflict" };

/** The events one page of the current step examines, and where the step stands after them. */
interface PagePlan {
  /** The events to examine, as read (their versions make the writes conditional). */
  docs: DocumentSnapshot[];
  cursor: Cursor | null;
  errorCursor: string | null;
  listCursor: number;
  /** Refunds and chargebacks a replay's purchases scan passed on this page, for its reversals step. */
  reversalsSeen: string[];
  /** The step has nothing after this page. */
  stepDone: boolean;
  /** The scan stopped because its budget ran out, not at the end of the day. */
  stoppedAtBudget: boolean;
}

/**
 * Documents a delivery has read past its chunk's cursor but not yet committed. One read serves several
 * pages: the Firestore emulator answers a query in time proportional to the whole collection, so
 * reading in large batches keeps the number of queries per day small.
 */
interface ReadBuffer {
  after: string;
  phase: ChunkDoc["phase"];
  docs: FirebaseFirestore.QueryDocumentSnapshot[];
  reachedEnd: boolean;
}

/** Most refunds and chargebacks a replay's purchases scan remembers for its reversals step (else it queries). */
export const MAX_REMEMBERED_REVERSALS = 5000;

async function planScanPage(
  deps: Deps,
  migrationId: string,
  run: RunDoc,
  chunk: ChunkDoc,
  buffer: { current: ReadBuffer | null },
): Promise<PagePlan> {
  const keep = { errorCursor: chunk.errorCursor, listCursor: chunk.listCursor };
  const room = (chunk.budgets[chunk.phase] ?? 0) - chunk.phaseExamined;
  if (room <= 0) return { ...keep, docs: [], cursor: chunk.cursor, reversalsSeen: [], stepDone: true, stoppedAtBudget: true };
  const after = cursorKey(chunk.cursor);
  let raw: FirebaseFirestore.QueryDocumentSnapshot[];
  let reachedEnd: boolean;
  if (buffer.current && buffer.current.after === after && buffer.current.phase === chunk.phase) {
    ({ docs: raw, reachedEnd } = buffer.current);
  } else {
    raw = (await scanQuery(deps, chunk).get()).docs;
    reachedEnd = raw.length < deps.config.readSize;
    await deps.faults?.at("page-read", { migrationId, chunkId: chunk.day, cursor: chunk.cursor ? after : null });
  }

  // Take events until the page is full or the budget is spent; what is left stays in the buffer.
  const selection = { runId: migrationId, type: run.type, dryRun: run.dryRun };
  const limit = Math.min(deps.config.pageSize, room);
  const taken: FirebaseFirestore.QueryDocumentSnapshot[] = [];
  const reversalsSeen: string[] = [];
  let end = 0;
  for (; end < raw.length; end++) {
    const doc = raw[end] as FirebaseFirestore.QueryDocumentSnapshot;
    if (isSelected(doc.data(), selection, chunk.phase)) {
      if (taken.length >= limit) break;
      taken.push(doc);
    } else if (run.type === "webhook_replay" && chunk.phase === "purchases" && isSelected(doc.data(), selection, "reversals")) {
      reversalsSeen.push(doc.id);
    }
  }
  const last = raw[end - 1];
  const cursor = last ? { createdAt: last.get("createdAt") as Timestamp, id: last.id } : chunk.cursor;
  const rest = raw.slice(end);
  const budgetSpent = taken.length >= room;
  buffer.current = { after: cursorKey(cursor), phase: chunk.phase, docs: rest, reachedEnd };
  if (rest.length === 0 && !reachedEnd) buffer.current = null;
  return {
    ...keep,
    docs: taken,
    cursor,
    reversalsSeen,
    stepDone: (rest.length === 0 && reachedEnd) || budgetSpent,
    stoppedAtBudget: budgetSpent && !(rest.length === 0 && reachedEnd),
  };
}

/** A replay's reversals step works from the refunds and chargebacks its purchases scan remembered. */
async function planListPage(deps: Deps, migrationId: string, run: RunDoc, chunk: ChunkDoc): Promise<PagePlan> {
  const ids = chunk.reversalIds ?? [];
  const room = (chunk.budgets[chunk.phase] ?? 0) - chunk.phaseExamined;
  const slice = ids.slice(chunk.listCursor, chunk.listCursor + Math.max(0, Math.min(deps.config.pageSize, room)));
  const docs = slice.length > 0 ? await deps.db.getAll(...slice.map((id) => refs(deps.db).events.doc(id))) : [];
  await deps.faults?.at("page-read", { migrationId, chunkId: chunk.day, cursor: `list:${chunk.listCursor}` });
  const selection = { runId: migrationId, type: run.type, dryRun: run.dryRun };
  const listCursor = chunk.listCursor + slice.length;
  const budgetSpent = room - slice.length <= 0;
  return {
    docs: docs.filter((d) => d.exists && isSelected(d.data() ?? {}, selection, "reversals")),
    cursor: chunk.cursor,
    errorCursor: chunk.errorCursor,
    listCursor,
    reversalsSeen: [],
    stepDone: listCursor >= ids.length || budgetSpent,
    stoppedAtBudget: budgetSpent && listCursor < ids.length,
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
  const events = ids.length > 0 ? await deps.db.getAll(...ids.map((id) => refs(deps.db).events.doc(id))) : [];
  return {
    docs: events,
    cursor: chunk.cursor,
    errorCursor: ids[ids.length - 1] ?? chunk.errorCursor,
    listCursor: chunk.listCursor,
    reversalsSeen: [],
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
  buffer: { current: ReadBuffer | null },
): Promise<PageResult> {
  const { db, config } = deps;
  const pageStarted = deps.now().getTime();
  const probe = { migrationId, chunkId };
  const listMode = chunk.step === "scan" && chunk.phase === "reversals" && run.type === "webhook_replay" && chunk.reversalIds !== null;
  const plan =
    chunk.step === "errors"
      ? await planErrorsPage(deps, migrationId, chunk)
      : listMode
        ? await planListPage(deps, migrationId, run, chunk)
        : await planScanPage(deps, migrationId, run, chunk, buffer);

  const ctx = { runId: migrationId, mode: run.type, dryRun: run.dryRun } as const;
  const half = Math.floor(plan.docs.length / config.groupSize / 2);
  const { outcomes, writes: ledgerWrites } = await applyPage(db, ctx, plan.docs, catalog, {
    groupSize: config.groupSize,
    parallelGroups: config.parallelGroups,
    beforeCommit: async (index) => {
      if (index === half && index > 0) await deps.faults?.at("page-half-applied", probe);
    },
  }, deps.faults);
  await deps.faults?.at(plan.stepDone ? "before-chunk-finish" : "before-page-commit", probe);

  const counted = countOutcomes(outcomes);
  const committed = await commitPage(deps, migrationId, run, chunkId, chunk, me, plan, outcomes, ledgerWrites);
  if (!committed) {
    buffer.current = null;
    return { kind: "conflict" };
  }
  const fields = runFields(migrationId, run);
  for (const o of outcomes) {
    if (o.result === "error") deps.log.eventFailed(fields, chunkId, { eventId: o.eventId, code: o.code, message: o.message });
  }
  deps.log.pageCommitted(fields, { id: chunkId, phase: chunk.phase, page: chunk.pages + 1, step: chunk.step }, counted, deps.now().getTime() - pageStarted);
  if (counted.errors > 0 && run.maxErrorRate < 1) await checkErrorRate(deps, migrationId, run);
  return plan.stepDone ? { kind: "step-finished", ...committed } : { kind: "page-committed" };
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
  // Whole documents: the page's events are decided from what this read returns.
  return query.limit(deps.config.readSize);
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
  ledgerWrites: number,
): Promise<Committed | null> {
  const r = refs(deps.db);
  const ref = r.chunk(migrationId, chunkId);
  const delta = pageDelta(seen.step, countOutcomes(outcomes));
  // Optimistic, not a transaction: the page's writes go in one batch, conditional on the chunk document
  // being exactly the version read here. Transactions' read locks make two deliveries of one chunk wait on
  // each other (in the emulator, for seconds); a failed condition just means "reload".
  const snap = await ref.get();
  const current = snap.data() as ChunkDoc | undefined;
  const batch = deps.db.batch();
  if (
    !current ||
    current.status !== "running" ||
    current.lease?.owner !== me.owner ||
    current.phase !== seen.phase ||
    current.step !== seen.step ||
    current.phaseExamined !== seen.phaseExamined ||
    current.errorCursor !== seen.errorCursor ||
    current.listCursor !== seen.listCursor ||
    cursorKey(current.cursor) !== cursorKey(seen.cursor)
  ) {
    return null;
  }
  let status: ChunkDoc["status"] = current.status;
  const now = FieldValue.serverTimestamp();
  const update: Record<string, unknown> = {
    total: FieldValue.increment(delta.total),
    processed: FieldValue.increment(delta.processed),
    skipped: FieldValue.increment(delta.skipped),
    errors: FieldValue.increment(delta.errors),
    pages: FieldValue.increment(1),
    phaseExamined: FieldValue.increment(seen.step === "scan" ? plan.docs.length : 0),
    cursor: plan.cursor,
    errorCursor: plan.errorCursor,
    listCursor: plan.listCursor,
    lease: { ...me, expiresAt: leaseExpiry(deps) },
    updatedAt: now,
  };
  // Remember the refunds and chargebacks the purchases scan passes, so the reversals step need not query.
  let remembered = current.reversalIds;
  if (remembered !== null && plan.reversalsSeen.length > 0) {
    remembered = remembered.length + plan.reversalsSeen.length > MAX_REMEMBERED_REVERSALS ? null : [...remembered, ...plan.reversalsSeen];
    update.reversalIds = remembered;
  }
  // A purchases scan cut short by its budget did not see the whole day: the reversals step must query.
  if (remembered !== null && plan.stoppedAtBudget && current.phase === "purchases") {
    remembered = null;
    update.reversalIds = null;
  }
  if (plan.stepDone) {
    // A replay day whose purchases scan saw no open refund or chargeback has no reversals step to run.
    const upcoming =
      run.type === "webhook_replay" && current.phase === "purchases" && current.step === "scan" && remembered !== null && remembered.length === 0
        ? current.upcoming.filter((step) => !(step.phase === "reversals" && step.step === "scan"))
        : current.upcoming;
    const next = afterStep({ phase: current.phase, step: current.step }, upcoming);
    update.stoppedAtBudget = current.stoppedAtBudget || plan.stoppedAtBudget;
    status = next.status;
    if (next.status === "done") {
      Object.assign(update, { status: "done", lease: null, finishedAt: now });
    } else {
      Object.assign(update, {
        status: next.status,
        phase: next.current.phase,
        step: next.current.step,
        upcoming: next.upcoming,
        errorCursor: null,
        ...(next.current.phase !== current.phase ? { cursor: null, phaseExamined: 0, listCursor: 0 } : {}),
        ...(next.status === "waiting" ? { lease: null, enqueued: false } : {}),
      });
    }
  }
  batch.update(ref, update, { lastUpdateTime: snap.updateTime as Timestamp });

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
      batch.set(errorRef, record, { merge: true });
    } else if (seen.step === "errors") {
      batch.update(errorRef, { status: "resolved", resolvedAs: o.result, at: now });
    }
  }
  if (outcomes.length > 0) {
    const counted = countOutcomes(outcomes);
    const errorWrites = outcomes.filter((o) => o.result === "error" || seen.step === "errors").length;
    batch.create(r.pages(migrationId).doc(`${chunkId}-${current.pages + 1}`), {
      chunkId,
      phase: seen.phase,
      step: seen.step,
      at: now,
      ...counted,
      // Documents this page wrote: entries, wallets and event marks, error records, the chunk and itself.
      writes: ledgerWrites + errorWrites + 2,
      bits: outcomes.map((o) => o.result[0]).join(""),
      outcomes: encodeOutcomes(outcomes.map(pageOutcome)),
    });
  }
  try {
    await batch.commit();
  } catch (error) {
    if (isPreconditionFailure(error) || (error as { code?: unknown }).code === 6 /* page record exists */) return null;
    throw error;
  }
  return {
    status,
    stoppedAtBudget: current.stoppedAtBudget || plan.stoppedAtBudget,
    counters: addCounters(current, delta),
  };
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
): Promise<"claimed" | "busy" | "taken" | "inactive"> {
  const r = refs(deps.db);
  const ref = r.chunk(migrationId, chunkId);
  const claim = await optimisticChunk(ref, (chunk) => {
    if (!chunk || (chunk.status !== "pending" && chunk.status !== "running")) return { result: "inactive" as const };
    const lease = chunk.lease;
    const live = lease && lease.owner !== me.owner && lease.expiresAt.toMillis() > deps.now().getTime();
    const supersedes = lease && lease.task === me.task && lease.attempt < me.attempt;
    if (live && lease.task !== me.task) return { result: "taken" as const };
    if (live && !supersedes) return { result: "busy" as const };
    return {
      result: "claimed" as const,
      update: {
        status: "running",
        lease: { ...me, expiresAt: leaseExpiry(deps) },
        attempts: FieldValue.increment(1),
        startedAt: chunk.startedAt ?? FieldValue.serverTimestamp(),
        pausedReason: null,
        updatedAt: FieldValue.serverTimestamp(),
      },
    };
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
  await optimisticChunk(refs(deps.db).chunk(migrationId, chunkId), (chunk) =>
    chunk?.lease?.owner === me.owner ? { result: true, update: { lease: null, updatedAt: FieldValue.serverTimestamp() } } : { result: false },
  );
}

/** A chunk's read-decide-conditional-write (see `optimistically`). */
function optimisticChunk<T>(
  ref: FirebaseFirestore.DocumentReference,
  decide: (chunk: ChunkDoc | undefined) => { result: T; update?: Record<string, unknown> },
): Promise<T> {
  return optimistically<ChunkDoc, T>(ref, decide);
}

/** Moves the chunk to a settled state if it is in one of `from`; true when this call made the change. */
export async function settleChunk(
  deps: Deps,
  migrationId: string,
  chunkId: string,
  from: readonly ChunkDoc["status"][],
  change: Partial<Pick<ChunkDoc, "status" | "pausedReason" | "lastError">>,
): Promise<boolean> {
  return optimisticChunk(refs(deps.db).chunk(migrationId, chunkId), (chunk) => {
    if (!chunk || !from.includes(chunk.status)) return { result: false };
    const finished = change.status === "failed" || change.status === "cancelled";
    return {
      result: true,
      update: {
        ...change,
        lease: null,
        enqueued: false,
        updatedAt: FieldValue.serverTimestamp(),
        ...(finished ? { finishedAt: FieldValue.serverTimestamp() } : {}),
      },
    };
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

