// The chunk task handler: works through one UTC day of a run, page by page. What it does at each page
// boundary is decided by core/chunk.ts (`nextMove`), and every change to the chunk is one of that
// module's transitions, written by chunks/store.ts only if the chunk is still the version it was decided
// on. A page's outcome (counters, position, error records and the page record) is committed in one batch,
// only from the position the page was planned from, so a delivery that repeats a page, runs alongside
// another delivery, loses its lease mid-page or restarts after a crash never counts an event twice, and
// every entry it wrote is counted once.
//
// A delivery works only while it holds the chunk's lease. A duplicate delivery of the same task waits for
// the holder to finish (or to stop renewing); a retry of the task takes over at once, because Cloud Tasks
// only retries an attempt it has given up on. The lease keeps deliveries from contending for the same
// documents; correctness never depends on it.
import { randomUUID } from "node:crypto";
import { FieldPath, FieldValue, Filter, Timestamp, type DocumentSnapshot, type Query } from "firebase-admin/firestore";
import { z } from "zod";
import {
  cancel as cancelChunk,
  claim,
  commitPage,
  fail,
  nextMove,
  noteError,
  positionKey,
  release,
  resume,
  settle,
  wake,
  type Chunk,
  type CommitResult,
  type Holder,
  type PageResult,
} from "../core/chunk";
import { CHUNK_ID_PATTERN, daySpan } from "../core/shards";
import { markStarted, type Run } from "../core/run";
import { busiestWallet, countedIn, type BusiestWallet, type MoneyContext, type MoneyOutcome } from "../core/money";
import { orderIdOf } from "../core/paynow";
import { isSelected, type SelectingRun } from "../core/selection";
import { errorRateOverWindow, AUTO_PAUSE_WINDOW } from "../core/window";
import { pacedPageSize, paceRestMs } from "../core/estimate";
import { countOutcomes, PHASE_EVENT_TYPES, SEQUENTIAL_PHASES } from "../core/types";
import type { Deps } from "../deps";
import { applyPage, linesOfOrders, ProductCatalog } from "../ledger/apply";
import { describe } from "../log";
import { decodeOutcomes, encodeOutcomes, refs, type EventErrorDoc, type PageOutcome } from "../platform/collections";
import type { Versioned } from "../platform/firestore";
import { killSwitch } from "../platform/flags";
import { chunkTaskId, type ChunkTaskPayload } from "../platform/tasks";
import { advanceRun, enqueueChunk, mayWork, pauseRun } from "../runs/advance";
import { runFields } from "../runs/runFields";
import { runStore } from "../runs/store";
import { chunkStore, fromStoredCursor, toStoredCursor } from "./store";

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
/** How often a paced delivery resting between pages looks at its run again. */
const PACE_LOOK_MS = 1000;
/** An errors pass re-examines at most this many events per page (its writes share one batch). */
const ERRORS_PAGE_SIZE = 100;

/** Another delivery holds the chunk for longer than it should; Cloud Tasks' retry sorts it out. */
export class ChunkBusyError extends Error {
  override name = "ChunkBusyError";
}

const payloadSchema = z.strictObject({
  migrationId: z.string().regex(/^[A-Za-z0-9_-]{1,200}$/),
  chunkId: z.string().regex(CHUNK_ID_PATTERN),
  generation: z.number().int().min(0).optional(),
});

/** The chunk one piece of work is about, and the task generation it was queued for (null: any). */
interface ChunkTask {
  runId: string;
  chunkId: string;
  generation: number | null;
}

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
  const runId = parsed.data.migrationId;
  const chunks = chunkStore(deps.db);
  const startedAt = deps.now().getTime();
  const catalog = new ProductCatalog(deps.db);
  const handled = new Set<string>();
  const own: ChunkTask = { runId, chunkId: parsed.data.chunkId, generation: parsed.data.generation ?? null };
  for (let batch = [own]; batch.length > 0; batch = await chunksToHelp(deps, runId, delivery, handled, startedAt)) {
    for (const task of batch) handled.add(task.chunkId);
    const outcomes = await Promise.allSettled(batch.map((task) => workOnChunk(deps, task, delivery, catalog)));
    const failures = outcomes.flatMap((o, i) => (o.status === "rejected" ? [{ chunkId: (batch[i] as ChunkTask).chunkId, error: o.reason as unknown }] : []));
    const first = failures[0];
    if (!first) continue;
    const lastAttempt = delivery.retryCount + 1 >= deps.config.taskMaxAttempts;
    const run = await runStore(deps.db).get(runId);
    if (!run) throw first.error;
    const fields = runFields(runId, run.data);
    if (!lastAttempt || failures.some((f) => f.error instanceof ChunkBusyError)) {
      for (const { chunkId, error } of failures) {
        deps.log.chunkRetrying(fields, { id: chunkId, attempt: delivery.retryCount + 1 }, error);
        await chunks
          .apply(runId, chunkId, (c) => (c ? noteError(c, describe(error)) : { result: false, update: null }))
          // Only a note for operators; the delivery fails and is retried whatever happens here.
          .catch((noteFailure: unknown) => deps.log.internalError("chunk_last_error", noteFailure, fields));
      }
      throw first.error;
    }
    // Out of attempts: these chunks, and any other this task had taken on, end failed.
    const held = await chunks.heldBy(runId, delivery.taskName);
    for (const id of new Set([...failures.map((f) => f.chunkId), ...held.map((h) => h.data.id)])) {
      const now = deps.now().getTime();
      // Its own chunk as the generation its task was queued for; a chunk it helped with, as the task holding it.
      const by = { task: delivery.taskName, generation: id === own.chunkId ? own.generation : null };
      const { written, chunk } = await chunks.apply(runId, id, (c) => (c ? fail(c, describe(first.error), now, by) : { result: false, update: null }));
      if (written && chunk) {
        deps.log.chunkStopped(fields, { id, phase: chunk.step.phase, status: "failed", reason: describe(first.error) }, chunk, 0);
      }
    }
    break;
  }
  await advanceRun(deps, runId);
}

/** Documents read at every page boundary: the run, the chunk and the kill switch. */
const PAGE_BOUNDARY_READS = 3;

/** How many due chunks one look for help considers. */
const HELP_CANDIDATES = 10;
/** Chunks an earlier attempt of this task left, taken on at once. */
const HELP_ORPHANS = 4;

/**
 * The next chunks this delivery should take on: those its own task holds (left by an earlier attempt that
 * died), else the next due, untouched one in the run's phase.
 * Empty when there is none, or the delivery's time is up.
 */
async function chunksToHelp(deps: Deps, runId: string, delivery: Delivery, handled: Set<string>, startedAt: number): Promise<ChunkTask[]> {
  if (deps.now().getTime() - startedAt > deps.config.sliceSeconds * 1000) return [];
  const chunks = chunkStore(deps.db);
  // Only a retry can find chunks its task took on and left (a first attempt has taken none yet).
  const [run, held] = await Promise.all([runStore(deps.db).get(runId), delivery.retryCount > 0 ? chunks.heldBy(runId, delivery.taskName) : null]);
  if (!run) return [];
  const task = (chunkId: string): ChunkTask => ({ runId, chunkId, generation: null });
  // Chunks an earlier attempt of this task took on are this task's to finish, or to park if the run stopped.
  const orphans = (held ?? []).filter((h) => !handled.has(h.data.id) && (h.data.status === "running" || h.data.status === "pending"));
  if (orphans.length > 0) return orphans.slice(0, HELP_ORPHANS).map((h) => task(h.data.id));
  if (run.data.status !== "running") return [];
  const free = async (phase = run.data.phase) => {
    const due = await chunks.due(runId, phase, HELP_CANDIDATES);
    const now = deps.now().getTime();
    return due.map((d) => d.data).filter((c) => !handled.has(c.id) && (!c.lease || c.lease.expiresAt <= now));
  };
  const phase = run.data.phase;
  if (!SEQUENTIAL_PHASES.includes(phase)) {
    const first = (await free())[0];
    return first ? [task(first.id)] : [];
  }
  // In a sequential phase the next chunk is woken only once the one before it is done with the phase: this
  // delivery wakes it and carries on with it, without a task of its own (should this delivery die before
  // claiming it, the retry of its task finds it due; so does the watchdog). When the phase has nothing
  // left, advancing the run opens the next phase and queues its first chunk, which this delivery takes.
  const [next] = mayWork(await chunks.heads(runId), phase);
  const now = deps.now().getTime();
  if (next && !handled.has(next.data.id)) {
    if (next.data.status === "waiting" && (await chunks.applyTo(runId, next, wake(next.data, phase)))) return [task(next.data.id)];
    if (next.data.status === "pending" && (!next.data.lease || next.data.lease.expiresAt <= now)) return [task(next.data.id)];
    return [];
  }
  if (next) return [];
  await advanceRun(deps, runId);
  const advanced = await runStore(deps.db).get(runId);
  if (advanced?.data.status !== "running" || advanced.data.phase === phase) return [];
  const first = (await free(advanced.data.phase))[0];
  return first ? [task(first.id)] : [];
}

async function workOnChunk(deps: Deps, task: ChunkTask, delivery: Delivery, catalog: ProductCatalog): Promise<void> {
  const { db, config } = deps;
  const chunks = chunkStore(db);
  const runs = runStore(db);
  const { runId, chunkId } = task;
  const startedAt = deps.now().getTime();
  const me: Holder = { owner: randomUUID(), task: delivery.taskName, attempt: delivery.retryCount };
  const state = { holding: false, draining: false, drained: false, pages: 0, restUntil: 0 };
  const buffer: { current: ReadBuffer | null } = { current: null };

  for (;;) {
    const [runSnap, chunkSnap, flagSnap] = await db.getAll(runs.doc(runId), chunks.doc(runId, chunkId), refs(db).killSwitch);
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
      if (move.why === "missing") deps.log.internalError("chunk_lookup", new Error(`run ${runId} or its chunk ${chunkId} does not exist`));
      return;
    }
    const r = run as Versioned<Run>;
    let c = chunk as Versioned<Chunk>;
    const fields = runFields(runId, r.data);

    if (move.kind === "settle") {
      const { result, chunk: settled, written } = await chunks.apply(runId, chunkId, (fresh) =>
        fresh ? settle(fresh, move.to, move.reason, me, deps.now().getTime()) : { result: "unchanged" as const, update: null },
      );
      if (written && settled) {
        deps.log.chunkStopped(fields, { id: chunkId, phase: settled.step.phase, status: move.to, reason: move.reason }, settled, deps.now().getTime() - startedAt);
        if (move.reason === "kill_switch") await pauseRun(deps, runId, "kill_switch");
        if (move.to === "paused") await reconcileStopped(deps, runId, chunkId);
        return;
      }
      // A delivery that vanished mid-page left this chunk of a cancelled run: finish its page, then stop.
      if (result === "drain" && move.drainAllowed && !state.holding) {
        const claimed = await chunks.apply(runId, chunkId, (fresh) =>
          fresh ? claim(fresh, me, deps.now().getTime(), LEASE_SECONDS * 1000) : { result: { kind: "inactive" as const }, update: null },
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
        fresh ? claim(fresh, me, deps.now().getTime(), LEASE_SECONDS * 1000) : { result: { kind: "inactive" as const }, update: null },
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
      if (r.data.status === "pending") await runs.apply(runId, (fresh) => (fresh ? markStarted(fresh, deps.now().getTime()) : { result: false, update: null }));
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
      await chunks.apply(runId, chunkId, (fresh) => (fresh ? release(fresh, me, deps.now().getTime()) : { result: false, update: null }));
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
    const pageDeps = pace === null ? deps : { ...deps, config: { ...config, pageSize: pacedPageSize(config.pageSize, pace, config.queue) } };
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
          reason: c.data.step.step === "errors" ? "errors_retried" : result.stoppedAtBudget ? "budget_reached" : "end_of_day",
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
    const { written, chunk } = await chunks.apply(runId, chunkId, (c) => (c ? resume(c, phase) : { result: false, update: null }));
    if (written && chunk?.status === "pending") await enqueueChunk(deps, runId, chunk, deps.now().getTime());
  } else if (status === "cancelled") {
    await chunks.apply(runId, chunkId, (c) => (c ? cancelChunk(c, deps.now().getTime()) : { result: "unchanged" as const, update: null }));
  }
}

/** The events one page of the current step examines, and where the step stands after them. */
interface PagePlan {
  /** The events to examine, as read. */
  docs: DocumentSnapshot[];
  /** Documents this page's planning read (0 when a read ahead served it). */
  reads: number;
  page: Omit<PageResult, "from" | "outcomes">;
}

/**
 * Documents a delivery has read past its chunk's position but not yet committed. One read serves several
 * pages: the Firestore emulator answers a query in time proportional to the whole collection, so
 * reading in large batches keeps the number of queries per day small. In a sequential phase a read runs
 * on past the chunk's end to the end of the run's range, and what lies beyond the chunk serves the next
 * chunk, which this delivery takes on next: a day with no refund costs no query at all.
 */
interface ReadBuffer {
  /** `{chunkId}|{position}`: where the docs continue a chunk's scan; `from:{ms}`: a chunk starting there. */
  key: string;
  phase: Chunk["step"]["phase"];
  docs: FirebaseFirestore.QueryDocumentSnapshot[];
  /** The read reached the end of what it queried: nothing after the docs. */
  reachedEnd: boolean;
}

const cursorKey = (c: Chunk["progress"][keyof Chunk["progress"]]) => (c?.cursor ? `${c.cursor.seconds}.${c.cursor.nanos}/${c.cursor.id}` : "start");

const room = (chunk: Chunk) => (chunk.budgets[chunk.step.phase] ?? 0) - (chunk.progress[chunk.step.phase]?.examined ?? 0);

const selectingRun = (deps: Deps, run: Run): SelectingRun => ({ runId: run.id, type: run.type, dryRun: run.dryRun, userIds: run.userIds, walletField: deps.config.walletField });

/**
 * A canary's refunds, chargebacks and closings move the wallets of their orders' purchase entries: those
 * of the real ledger, and for a dry run the purchases it would have written. Purchase entries never
 * change once written, so what this read finds is what the decision will find.
 */
async function orderWalletsFor(deps: Deps, run: Run, docs: readonly DocumentSnapshot[], reads: { n: number }): Promise<(orderId: string) => readonly string[] | undefined> {
  const orderIds = [...new Set(docs.map((d) => orderIdOf(d.data())).filter((id): id is string => id !== null))];
  const lines = await linesOfOrders(deps.db, (...docs: FirebaseFirestore.DocumentReference[]) => deps.db.getAll(...docs), run.dryRun ? run.id : null, orderIds, reads);
  return (orderId) => {
    const found = lines.get(orderId);
    return found && found.length > 0 ? [...new Set(found.map((l) => l.userId))] : undefined;
  };
}

async function planScanPage(deps: Deps, run: Run, chunk: Chunk, buffer: { current: ReadBuffer | null }): Promise<PagePlan> {
  const phase = chunk.step.phase;
  const progress = chunk.progress[phase];
  const keep = { errorCursor: chunk.errorCursor };
  const left = room(chunk);
  if (left <= 0) return { docs: [], reads: 0, page: { ...keep, examined: 0, cursor: progress?.cursor ?? null, stepDone: true, stoppedAtBudget: true } };
  const after = cursorKey(progress);
  const sequential = SEQUENTIAL_PHASES.includes(phase);
  const keys = [`${chunk.id}|${after}`, ...(sequential && !progress?.cursor ? [`from:${chunk.startMs}`] : [])];
  let raw: FirebaseFirestore.QueryDocumentSnapshot[];
  let reachedEnd: boolean;
  const reads = { n: 0 };
  if (buffer.current && keys.includes(buffer.current.key) && buffer.current.phase === phase) {
    ({ docs: raw, reachedEnd } = buffer.current);
  } else {
    raw = (await scanQuery(deps, run, chunk).get()).docs;
    reachedEnd = raw.length < deps.config.readSize;
    // A query is billed one read even when it returns nothing.
    reads.n += Math.max(raw.length, 1);
    await deps.faults?.at("page-read", { runId: run.id, chunkId: chunk.id, cursor: progress?.cursor ? after : null, phase });
  }
  // What lies beyond the chunk's span (a sequential phase reads on) is the next chunk's.
  const split = raw.findIndex((d) => (d.get("createdAt") as Timestamp).toMillis() >= chunk.endMs);
  const inSpan = split < 0 ? raw : raw.slice(0, split);
  const beyond = split < 0 ? [] : raw.slice(split);
  /** Nothing of the span comes after `inSpan`. */
  const spanRead = split >= 0 || reachedEnd;

  // Take events until the page is full or the budget is spent; what is left stays in the buffer. A canary's
  // cap counts everyone's events (the counts it was planned from are everyone's): each event a full run
  // would examine spends budget, and the canary examines those of its own wallets.
  const selection = selectingRun(deps, run);
  const everyone = { ...selection, userIds: null };
  const canary = run.userIds !== null;
  // A canary looks the wallets of refunds, chargebacks and closings up for a window of the read at a time.
  const window = canary && phase !== "purchases" ? Math.min(inSpan.length, deps.config.pageSize * 4) : inSpan.length;
  const orderWallets = canary && phase !== "purchases" ? await orderWalletsFor(deps, run, inSpan.slice(0, window), reads) : undefined;
  const counted = await countedElsewhere(deps, run, chunk, inSpan.slice(0, window), reads);
  const limit = Math.min(deps.config.pageSize, left);
  const taken: FirebaseFirestore.QueryDocumentSnapshot[] = [];
  let charged = 0;
  let end = 0;
  for (; end < window; end++) {
    const doc = inSpan[end] as FirebaseFirestore.QueryDocumentSnapshot;
    if (!isSelected(doc.data(), everyone, phase) || counted.has(doc.id)) continue;
    if (charged >= limit) break;
    charged++;
    if (!canary || isSelected(doc.data(), selection, phase, orderWallets)) taken.push(doc);
  }
  const last = inSpan[end - 1];
  const cursor = last ? fromStoredCursor({ createdAt: last.get("createdAt") as Timestamp, id: last.id }) : (progress?.cursor ?? null);
  const rest = inSpan.slice(end);
  const budgetSpent = charged >= left;
  const endOfSpan = rest.length === 0 && spanRead;
  if (endOfSpan) {
    // The next chunk's, in a sequential phase: the docs read past this span, which are all of its events
    // when the read reached the end of the range.
    buffer.current = sequential && (beyond.length > 0 || reachedEnd) ? { key: `from:${chunk.endMs}`, phase, docs: beyond, reachedEnd } : null;
  } else {
    buffer.current = rest.length > 0 ? { key: `${chunk.id}|${cursorKey({ cursor, examined: 0 })}`, phase, docs: [...rest, ...beyond], reachedEnd } : null;
  }
  return {
    docs: taken,
    reads: reads.n,
    page: { ...keep, examined: charged, cursor, stepDone: endOfSpan || budgetSpent, stoppedAtBudget: budgetSpent && !endOfSpan },
  };
}

/** The page record id the next page of a chunk commits (commitPage numbers pages from 1). */
const nextPageId = (chunk: Chunk) => `${chunk.id}-${chunk.pages + 1}`;

/**
 * Events of a read that this run counted on a page already committed, met again because their `createdAt`
 * moved past the chunk's position (issue 18 item 2): their `countedIn` mark names another page of the run,
 * and that page's record lists them. A mark whose page did not commit, or committed without the event (a
 * crashed page retried after the event moved), counts the event here. Rare: one read per such page.
 */
async function countedElsewhere(deps: Deps, run: Run, chunk: Chunk, docs: readonly DocumentSnapshot[], reads: { n: number }): Promise<Set<string>> {
  const here = nextPageId(chunk);
  const byPage = new Map<string, string[]>();
  for (const doc of docs) {
    const page = countedIn(doc.data(), run.id);
    if (page !== undefined && page !== here) byPage.set(page, [...(byPage.get(page) ?? []), doc.id]);
  }
  const found = new Set<string>();
  if (byPage.size === 0) return found;
  const records = await deps.db.getAll(...[...byPage.keys()].map((id) => refs(deps.db).pages(run.id).doc(id)));
  reads.n += records.length;
  for (const record of records) {
    if (!record.exists) continue;
    const listed = new Set(decodeOutcomes(record.get("outcomes") as string).map((o) => o.e));
    for (const id of byPage.get(record.id) ?? []) if (listed.has(id)) found.add(id);
  }
  return found;
}

async function planErrorsPage(deps: Deps, run: Run, chunk: Chunk): Promise<PagePlan> {
  let query = refs(deps.db)
    .errors(run.id)
    .where("chunkId", "==", chunk.id)
    .where("phase", "==", chunk.step.phase)
    .where("status", "==", "open")
    .orderBy("eventId");
  if (chunk.errorCursor) query = query.startAfter(chunk.errorCursor);
  const docs = (await query.limit(ERRORS_PAGE_SIZE).get()).docs;
  const reads = Math.max(docs.length, 1) + docs.length;
  await deps.faults?.at("page-read", { runId: run.id, chunkId: chunk.id, cursor: chunk.errorCursor });
  const ids = docs.map((d) => d.get("eventId") as string);
  const read = ids.length > 0 ? await deps.db.getAll(...ids.map((id) => refs(deps.db).events.doc(id))) : [];
  // One order's events are decided in `(createdAt, event_id)` order, on a retry too.
  const createdMs = (d: DocumentSnapshot) => (d.get("createdAt") as Timestamp | undefined)?.toMillis?.() ?? 0;
  const events = [...read].sort((a, b) => createdMs(a) - createdMs(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const progress = chunk.progress[chunk.step.phase];
  return {
    docs: events,
    reads,
    page: {
      cursor: progress?.cursor ?? null,
      examined: 0,
      errorCursor: ids[ids.length - 1] ?? chunk.errorCursor,
      stepDone: docs.length < ERRORS_PAGE_SIZE,
      stoppedAtBudget: false,
    },
  };
}

async function processPage(
  deps: Deps,
  run: Run,
  chunk: Chunk,
  catalog: ProductCatalog,
  me: Holder,
  buffer: { current: ReadBuffer | null },
): Promise<CommitResult & { examined: number }> {
  const { db, config } = deps;
  const pageStarted = deps.now().getTime();
  const probe = { runId: run.id, chunkId: chunk.id };
  const from = positionKey(chunk);
  const plan = chunk.step.step === "errors" ? await planErrorsPage(deps, run, chunk) : await planScanPage(deps, run, chunk, buffer);

  const ctx: MoneyContext = { runId: run.id, mode: run.type, dryRun: run.dryRun, walletField: config.walletField, userIds: run.userIds, page: nextPageId(chunk) };
  const applied = await applyPage(db, ctx, plan.docs, catalog, {
    groupSize: config.groupSize,
    walletGroupSize: config.walletGroupSize,
    parallelGroups: config.parallelGroups,
    beforeGroup: async (index, groups) => {
      if (index === Math.floor(groups / 2) && index > 0) await deps.faults?.at("page-half-applied", probe);
    },
  }, deps.faults);
  const outcomes = applied.outcomes;
  await deps.faults?.at(plan.page.stepDone ? "before-chunk-finish" : "before-page-commit", probe);

  const counted = countOutcomes(outcomes);
  const page: PageResult = { ...plan.page, from, outcomes: counted };
  // Documents the page read: its planning, its groups, the chunk its commit re-reads, and the run, chunk
  // and kill switch read before it (PAGE_BOUNDARY_READS).
  const reads = plan.reads + applied.reads + 1 + PAGE_BOUNDARY_READS;
  const committed = await commitPageWithRecords(deps, run, chunk.id, me, page, outcomes, { writes: applied.writes, reads, busiestWallet: busiestWallet(outcomes, applied.walletWrites) });
  if (committed.kind === "conflict") {
    buffer.current = null;
    return { ...committed, examined: 0 };
  }
  const fields = runFields(run.id, run);
  for (const o of outcomes) {
    if (o.result === "error") deps.log.eventFailed(fields, chunk.id, { eventId: o.eventId, code: o.code, message: o.message });
  }
  deps.log.pageCommitted(fields, { id: chunk.id, phase: chunk.step.phase, page: committed.page, step: chunk.step.step }, counted, deps.now().getTime() - pageStarted);
  if (counted.errors > 0 && run.maxErrorRate < 1) await checkErrorRate(deps, run);
  return { ...committed, examined: counted.total };
}

/**
 * The scan of a chunk's phase from its position, in `(createdAt, id)` order, to the end of its span, or in
 * a sequential phase to the end of the run's range (the rest serves the chunks after it). A replay whose
 * events all carry `processed` (the plan found none without it) reads by index only what it may select:
 * events not processed, and those this run processed itself, so a page retried after a crash counts them
 * again. Any other run reads every money event of the phase and selects in the handler (core/selection.ts).
 */
function scanQuery(deps: Deps, run: Run, chunk: Chunk): Query {
  const phase = chunk.step.phase;
  const { startMs } = chunk;
  const endMs = SEQUENTIAL_PHASES.includes(phase) ? Math.max(chunk.endMs, daySpan(run.endDate).endMs) : chunk.endMs;
  const types = PHASE_EVENT_TYPES[phase];
  let query: Query = refs(deps.db)
    .events.where("createdAt", ">=", Timestamp.fromMillis(startMs))
    .where("createdAt", "<", Timestamp.fromMillis(endMs));
  const ofType = types.length === 1 ? Filter.where("event_type", "==", types[0]) : Filter.where("event_type", "in", types);
  if (run.type === "webhook_replay" && run.unmarkedEvents === 0) {
    const unprocessed = Filter.where("processed", "==", false);
    query = query.where(Filter.and(ofType, run.dryRun ? unprocessed : Filter.or(unprocessed, Filter.where("processedBy", "==", run.id))));
  } else query = query.where(ofType);
  query = query.orderBy("createdAt").orderBy(FieldPath.documentId());
  const cursor = toStoredCursor(chunk.progress[phase]?.cursor ?? null);
  if (cursor) query = query.startAfter(cursor.createdAt, cursor.id);
  // Whole documents: the page's events are decided from what the transaction reads, but selected from this.
  return query.limit(deps.config.readSize);
}

/** A page record's line for an event: the entries it wrote (comma-separated), its skip reason or its error code. */
function pageOutcome(o: MoneyOutcome): PageOutcome {
  if (o.result === "processed") return { e: o.eventId, r: "p", x: o.entries.map((m) => m.id).join(",") };
  if (o.result === "skipped") return { e: o.eventId, r: "s", x: o.reason };
  return { e: o.eventId, r: "e", x: o.code };
}

/**
 * Commits a page in one batch: the chunk's transition (counters, position, next step), its error records
 * and its page record, conditional on the chunk being the version the transition was decided on. A
 * conflict means another delivery committed this page already (or the chunk moved on); the caller reloads.
 */
async function commitPageWithRecords(
  deps: Deps,
  run: Run,
  chunkId: string,
  me: Holder,
  page: PageResult,
  outcomes: readonly MoneyOutcome[],
  money: { writes: number; reads: number; busiestWallet: BusiestWallet | null },
): Promise<CommitResult> {
  const ledgerWrites = money.writes;
  const chunks = chunkStore(deps.db);
  const r = refs(deps.db);
  // Decided on the chunk as it is now (another delivery may have renewed a lease or queued a task since
  // the page began); the position check inside the transition is what makes a page count once.
  const current = await chunks.get(run.id, chunkId);
  if (!current) return { kind: "conflict" };
  const transition = commitPage(current.data, page, me, deps.now().getTime(), LEASE_SECONDS * 1000);
  if (transition.result.kind === "conflict" || !transition.update) return { kind: "conflict" };
  const step = current.data.step;
  const batch = deps.db.batch();
  chunks.updateInBatch(batch, run.id, chunkId, current.version, transition.update);

  // Error records are written with the counters they explain, so a retried page cannot leave them apart.
  const now = FieldValue.serverTimestamp();
  for (const o of outcomes) {
    const errorRef = r.errors(run.id).doc(o.eventId);
    if (o.result === "error") {
      const record: Omit<EventErrorDoc, "at" | "attempts"> & Record<string, unknown> = {
        eventId: o.eventId,
        code: o.code,
        message: o.message,
        chunkId,
        phase: step.phase,
        status: "open",
        resolvedAs: null,
        attempts: FieldValue.increment(1),
        at: now,
      };
      batch.set(errorRef, record, { merge: true });
    } else if (step.step === "errors") {
      batch.update(errorRef, { status: "resolved", resolvedAs: o.result, at: now });
    }
  }
  if (outcomes.length > 0) {
    const counted = countOutcomes(outcomes);
    const errorWrites = outcomes.filter((o) => o.result === "error" || step.step === "errors").length;
    batch.create(r.pages(run.id).doc(`${chunkId}-${transition.result.page}`), {
      chunkId,
      phase: step.phase,
      step: step.step,
      at: now,
      ...counted,
      // Documents this page wrote: entries, wallets and event marks, error records, the chunk and itself.
      writes: ledgerWrites + errorWrites + 2,
      // Documents it read (see processPage).
      reads: money.reads,
      busiestWallet: money.busiestWallet,
      bits: outcomes.map((o) => o.result[0]).join(""),
      outcomes: encodeOutcomes(outcomes.map(pageOutcome)),
    });
  }
  try {
    await batch.commit();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 9 || code === "failed-precondition" || code === 6 /* page record exists */) return { kind: "conflict" };
    throw error;
  }
  return transition.result;
}

/**
 * Pauses the run when the error rate over its last AUTO_PAUSE_WINDOW examined events (pages committed since
 * the run started or was last resumed) exceeds its maxErrorRate.
 */
async function checkErrorRate(deps: Deps, run: Run): Promise<void> {
  let query = refs(deps.db).pages(run.id).orderBy("at", "desc");
  if (run.windowSince !== null) query = query.where("at", ">", Timestamp.fromMillis(run.windowSince));
  const recent = await query.select("bits").limit(AUTO_PAUSE_WINDOW).get();
  const rate = errorRateOverWindow(recent.docs.map((d) => d.get("bits") as string));
  if (rate === null || rate <= run.maxErrorRate) return;
  await pauseRun(deps, run.id, "error_rate", {
    errorRate: rate,
    window: AUTO_PAUSE_WINDOW,
    threshold: run.maxErrorRate,
    at: deps.now().getTime(),
  });
}

export type { ChunkTaskPayload };
