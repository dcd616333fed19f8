// Planning a page: which events the current step of a chunk examines next, from a read of the chunk's
// scan (or its open error records), and where the step stands after them. Nothing here writes.
import { FieldPath, Filter, Timestamp, type DocumentSnapshot, type Query } from "firebase-admin/firestore";
import type { Chunk } from "../core/chunk";
import type { PageResult } from "../core/chunkTransitions";
import { wholeDayChunk } from "../core/shards";
import type { Run } from "../core/run";
import { countedIn } from "../core/outcomes";
import { orderIdOf } from "../core/paynow";
import { isSelected, type SelectingRun } from "../core/selection";
import { PHASE_EVENT_TYPES, SEQUENTIAL_PHASES } from "../core/types";
import type { Deps } from "../deps";
import { linesOfOrders } from "../ledger/reads";
import { refs } from "../platform/collections";
import { decodeOutcomes, pageStore } from "../store/pages";
import { errorStore } from "../store/errors";
import { fromStoredCursor, toStoredCursor } from "../store/chunkDoc";

/** An errors step re-examines at most this many events per page (its writes share one batch). */
const ERRORS_PAGE_SIZE = 100;

/** The events one page of the current step examines, and where the step stands after them. */
export interface PagePlan {
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
export interface ReadBuffer {
  /** `{chunkId}|{position}`: where the docs continue a chunk's scan; `from:{ms}`: a chunk starting there. */
  key: string;
  phase: Chunk["step"]["phase"];
  docs: FirebaseFirestore.QueryDocumentSnapshot[];
  /** The read reached the end of what it queried: nothing after the docs. */
  reachedEnd: boolean;
}

const cursorKey = (c: Chunk["progress"][keyof Chunk["progress"]]) =>
  c?.cursor ? `${c.cursor.seconds}.${c.cursor.nanos}/${c.cursor.id}` : "start";

const room = (chunk: Chunk) =>
  (chunk.budgets[chunk.step.phase] ?? 0) - (chunk.progress[chunk.step.phase]?.examined ?? 0);

const selectingRun = (deps: Deps, run: Run): SelectingRun => ({
  runId: run.id,
  type: run.type,
  dryRun: run.dryRun,
  userIds: run.userIds,
  walletField: deps.config.walletField,
});

/**
 * A canary's refunds, chargebacks and closings move the wallets of their orders' purchase entries: those
 * of the real ledger, and for a dry run the purchases it would have written. Purchase entries never
 * change once written, so what this read finds is what the decision will find.
 */
async function orderWalletsFor(
  deps: Deps,
  run: Run,
  docs: readonly DocumentSnapshot[],
  reads: { n: number },
): Promise<(orderId: string) => readonly string[] | undefined> {
  const orderIds = [...new Set(docs.map((d) => orderIdOf(d.data())).filter((id): id is string => id !== null))];
  const lines = await linesOfOrders(
    deps.db,
    (...docs: FirebaseFirestore.DocumentReference[]) => deps.db.getAll(...docs),
    run.dryRun ? run.id : null,
    orderIds,
    reads,
  );
  return (orderId) => {
    const found = lines.get(orderId);
    return found && found.length > 0 ? [...new Set(found.map((l) => l.userId))] : undefined;
  };
}

export async function planScanPage(
  deps: Deps,
  run: Run,
  chunk: Chunk,
  buffer: { current: ReadBuffer | null },
): Promise<PagePlan> {
  const phase = chunk.step.phase;
  const progress = chunk.progress[phase];
  const keep = { errorCursor: chunk.errorCursor };
  const left = room(chunk);
  if (left <= 0)
    return {
      docs: [],
      reads: 0,
      page: { ...keep, examined: 0, cursor: progress?.cursor ?? null, stepDone: true, stoppedAtBudget: true },
    };
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
    await deps.faults?.at("page-read", {
      runId: run.id,
      chunkId: chunk.id,
      cursor: progress?.cursor ? after : null,
      phase,
    });
  }
  // What lies beyond the chunk's bounds (a sequential phase reads on) is the next chunk's.
  const split = raw.findIndex((d) => (d.get("createdAt") as Timestamp).toMillis() >= chunk.endMs);
  const inChunk = split < 0 ? raw : raw.slice(0, split);
  const beyond = split < 0 ? [] : raw.slice(split);
  /** Nothing of the chunk comes after `inChunk`. */
  const spanRead = split >= 0 || reachedEnd;

  // Take events until the page is full or the budget is spent; what is left stays in the buffer. A canary's
  // cap counts everyone's events (the counts it was planned from are everyone's): each event a full run
  // would examine spends budget, and the canary examines those of its own wallets.
  const selection = selectingRun(deps, run);
  const everyone = { ...selection, userIds: null };
  const canary = run.userIds !== null;
  // A canary looks the wallets of refunds, chargebacks and closings up for a window of the read at a time.
  const window = canary && phase !== "purchases" ? Math.min(inChunk.length, deps.config.pageSize * 4) : inChunk.length;
  const orderWallets =
    canary && phase !== "purchases" ? await orderWalletsFor(deps, run, inChunk.slice(0, window), reads) : undefined;
  const counted = await countedElsewhere(deps, run, chunk, inChunk.slice(0, window), reads);
  const limit = Math.min(deps.config.pageSize, left);
  const taken: FirebaseFirestore.QueryDocumentSnapshot[] = [];
  let charged = 0;
  let end = 0;
  for (; end < window; end++) {
    const doc = inChunk[end] as FirebaseFirestore.QueryDocumentSnapshot;
    if (!isSelected(doc.data(), everyone, phase) || counted.has(doc.id)) continue;
    if (charged >= limit) break;
    charged++;
    if (!canary || isSelected(doc.data(), selection, phase, orderWallets)) taken.push(doc);
  }
  const last = inChunk[end - 1];
  const cursor = last
    ? fromStoredCursor({ createdAt: last.get("createdAt") as Timestamp, id: last.id })
    : (progress?.cursor ?? null);
  const rest = inChunk.slice(end);
  const budgetSpent = charged >= left;
  const endOfSpan = rest.length === 0 && spanRead;
  if (endOfSpan) {
    // The next chunk's, in a sequential phase: the docs read past this chunk, which are all of its events
    // when the read reached the end of the range.
    buffer.current =
      sequential && (beyond.length > 0 || reachedEnd)
        ? { key: `from:${chunk.endMs}`, phase, docs: beyond, reachedEnd }
        : null;
  } else {
    buffer.current =
      rest.length > 0
        ? { key: `${chunk.id}|${cursorKey({ cursor, examined: 0 })}`, phase, docs: [...rest, ...beyond], reachedEnd }
        : null;
  }
  return {
    docs: taken,
    reads: reads.n,
    page: {
      ...keep,
      examined: charged,
      cursor,
      stepDone: endOfSpan || budgetSpent,
      stoppedAtBudget: budgetSpent && !endOfSpan,
    },
  };
}

/** The page record id the next page of a chunk commits (commitPage numbers pages from 1). */
export const nextPageId = (chunk: Chunk) => `${chunk.id}-${chunk.pages + 1}`;

/**
 * Events of a read that this run counted on a page already committed, met again because their `createdAt`
 * moved past the chunk's position (issue 18 item 2): their `countedIn` mark names another page of the run,
 * and that page's record lists them. A mark whose page did not commit, or committed without the event (a
 * crashed page retried after the event moved), counts the event here. Rare: one read per such page.
 */
async function countedElsewhere(
  deps: Deps,
  run: Run,
  chunk: Chunk,
  docs: readonly DocumentSnapshot[],
  reads: { n: number },
): Promise<Set<string>> {
  const here = nextPageId(chunk);
  const byPage = new Map<string, string[]>();
  for (const doc of docs) {
    const page = countedIn(doc.data(), run.id);
    if (page !== undefined && page !== here) byPage.set(page, [...(byPage.get(page) ?? []), doc.id]);
  }
  const found = new Set<string>();
  if (byPage.size === 0) return found;
  const records = await pageStore(deps.db).getMany(run.id, [...byPage.keys()]);
  reads.n += byPage.size;
  for (const [pageId, record] of records) {
    const listed = new Set(decodeOutcomes(record.outcomes).map((o) => o.e));
    for (const id of byPage.get(pageId) ?? []) if (listed.has(id)) found.add(id);
  }
  return found;
}

export async function planErrorsPage(deps: Deps, run: Run, chunk: Chunk): Promise<PagePlan> {
  const ids = await errorStore(deps.db).openOfChunk(
    run.id,
    chunk.id,
    chunk.step.phase,
    chunk.errorCursor,
    ERRORS_PAGE_SIZE,
  );
  const reads = Math.max(ids.length, 1) + ids.length;
  await deps.faults?.at("page-read", { runId: run.id, chunkId: chunk.id, cursor: chunk.errorCursor });
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
      stepDone: ids.length < ERRORS_PAGE_SIZE,
      stoppedAtBudget: false,
    },
  };
}

/**
 * The scan of a chunk's phase from its position, in `(createdAt, id)` order, to the end of its bounds, or in
 * a sequential phase to the end of the run's range (the rest serves the chunks after it). A replay whose
 * events all carry `processed` (the plan found none without it) reads by index only what it may select:
 * events not processed, and those this run processed itself, so a page retried after a crash counts them
 * again. Any other run reads every money event of the phase and selects in the handler (core/selection.ts).
 */
function scanQuery(deps: Deps, run: Run, chunk: Chunk): Query {
  const phase = chunk.step.phase;
  const { startMs } = chunk;
  const endMs = SEQUENTIAL_PHASES.includes(phase)
    ? Math.max(chunk.endMs, wholeDayChunk(run.endDate).endMs)
    : chunk.endMs;
  const types = PHASE_EVENT_TYPES[phase];
  let query: Query = refs(deps.db)
    .events.where("createdAt", ">=", Timestamp.fromMillis(startMs))
    .where("createdAt", "<", Timestamp.fromMillis(endMs));
  const ofType =
    types.length === 1 ? Filter.where("event_type", "==", types[0]) : Filter.where("event_type", "in", types);
  if (run.type === "webhook_replay" && run.unmarkedEvents === 0) {
    const unprocessed = Filter.where("processed", "==", false);
    query = query.where(
      Filter.and(ofType, run.dryRun ? unprocessed : Filter.or(unprocessed, Filter.where("processedBy", "==", run.id))),
    );
  } else query = query.where(ofType);
  query = query.orderBy("createdAt").orderBy(FieldPath.documentId());
  const cursor = toStoredCursor(chunk.progress[phase]?.cursor ?? null);
  if (cursor) query = query.startAfter(cursor.createdAt, cursor.id);
  // Whole documents: the page's events are decided from what the transaction reads, but selected from this.
  return query.limit(deps.config.readSize);
}
