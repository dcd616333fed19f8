// The run report: every event the run examined with its final outcome, totals that must equal the run's
// counters, and a verification read back from Firestore — each processed event has its one ledger entry,
// and each wallet the run touched equals the sum of its user's ledger entries.
import { Timestamp } from "firebase-admin/firestore";
import { isFinishedRun, summarize } from "../core/run";
import type { Counters } from "../core/types";
import type { Deps } from "../deps";
import { AppError } from "../errors";
import { chunkStore } from "../store/chunks";
import { errorStore } from "../store/errors";
import { decodeOutcomes, pageStore, type PageDoc, type PageOutcome } from "../store/pages";
import { ReadTally } from "../platform/firestore";
import { runMoney } from "./moves";
import { storedVerification, verify } from "./verify";
import { runStore } from "../store/runs";

export interface ReportEvent {
  eventId: string;
  chunkId: string;
  phase: string;
  outcome: "processed" | "skipped" | "error";
  /** Ledger entries it wrote (processed), skip reason (skipped) or error code (error). */
  entryIds?: string[];
  reason?: string;
  code?: string;
  message?: string;
}

/** Every event a run examined with its final outcome: pages in commit order, a retry's errors step overriding an earlier error. */
export async function readOutcomes(deps: Deps, id: string, tally?: ReadTally): Promise<Map<string, ReportEvent>> {
  const pages = await pageStore(deps.db).all(id);
  tally?.docs(pages.length);
  return outcomesOf(pages);
}

/** Each event's last outcome over pages in commit order. */
function outcomesOf(pages: readonly PageDoc[]): Map<string, ReportEvent> {
  const byEvent = new Map<string, ReportEvent>();
  for (const page of pages) for (const o of decodeOutcomes(page.outcomes)) byEvent.set(o.e, eventOf(o, page));
  return byEvent;
}

/** Events a report answer lists at most, unless the caller asks for fewer (`limit`). */
export const REPORT_EVENTS_LIMIT = 1000;
export const MAX_REPORT_EVENTS_LIMIT = 10_000;

const pageTime = (p: PageDoc) => (p.at instanceof Timestamp ? p.at.toMillis() : 0);

/** The events one chunk's pages examined, each with its last outcome there, by event id. */
function chunkEvents(pages: readonly PageDoc[]): ReportEvent[] {
  const byEvent = outcomesOf([...pages].sort((a, b) => pageTime(a) - pageTime(b)));
  return [...byEvent.values()].sort((a, b) => (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0));
}

function eventOf(o: PageOutcome, page: PageDoc): ReportEvent {
  const base = { eventId: o.e, chunkId: page.chunkId, phase: page.phase };
  return o.r === "p"
    ? { ...base, outcome: "processed", entryIds: o.x ? o.x.split(",") : [] }
    : o.r === "s"
      ? { ...base, outcome: "skipped", reason: o.x }
      : { ...base, outcome: "error", code: o.x };
}

/** Where the next answer of a report's event list starts: after this event of this chunk. */
interface EventCursor {
  chunkId: string;
  eventId: string;
}

const encodeCursor = (c: EventCursor) => Buffer.from(JSON.stringify([c.chunkId, c.eventId])).toString("base64url");

function decodeCursor(token: string, runId: string): EventCursor {
  try {
    const value = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as unknown;
    if (Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === "string"))
      return { chunkId: value[0] as string, eventId: value[1] as string };
  } catch {
    // answered below
  }
  throw new AppError(
    400,
    "invalid_page_token",
    `pageToken ${JSON.stringify(token.slice(0, 80))} is not one this API gave; start again from GET /api/admin/dataMigrations/${runId}/report and follow its nextPageToken.`,
  );
}

/**
 * A slice of a run's per-event list, in chunk order then event id: the events after `after`, at most
 * `limit`, and where the next slice starts (null when nothing is left). Only the chunks it lists are read.
 */
async function eventSlice(
  deps: Deps,
  runId: string,
  chunkIds: readonly string[],
  pagesOf: (chunkId: string) => Promise<PageDoc[]>,
  after: EventCursor | null,
  limit: number,
  tally: ReadTally,
): Promise<{ events: ReportEvent[]; nextPageToken: string | null }> {
  const events: ReportEvent[] = [];
  let nextPageToken: string | null = null;
  const ordered = [...chunkIds].sort().filter((chunkId) => !after || chunkId >= after.chunkId);
  for (const [i, chunkId] of ordered.entries()) {
    let listed = chunkEvents(await pagesOf(chunkId));
    if (after && chunkId === after.chunkId) listed = listed.filter((e) => e.eventId > after.eventId);
    const room = limit - events.length;
    events.push(...listed.slice(0, room));
    if (listed.length > room) {
      const last = events[events.length - 1] as ReportEvent;
      nextPageToken = encodeCursor({ chunkId: last.chunkId, eventId: last.eventId });
      break;
    }
    // Full at the end of a chunk: the next slice starts with the next chunk (event ids are never empty).
    const next = ordered[i + 1];
    if (events.length === limit && next !== undefined) {
      nextPageToken = encodeCursor({ chunkId: next, eventId: "" });
      break;
    }
  }
  // The messages of the errors listed, by id: at most one read per event listed.
  const failed = events.filter((e) => e.outcome === "error");
  if (failed.length > 0) {
    const messages = await errorStore(deps.db).messages(
      runId,
      failed.map((e) => e.eventId),
    );
    tally.docs(failed.length);
    for (const e of failed) e.message = messages.get(e.eventId);
  }
  return { events, nextPageToken };
}

const groupByChunk = (pages: readonly PageDoc[]) => {
  const byChunk = new Map<string, PageDoc[]>();
  for (const p of pages) {
    const list = byChunk.get(p.chunkId);
    if (list) list.push(p);
    else byChunk.set(p.chunkId, [p]);
  }
  return byChunk;
};

/**
 * The run's report: totals over every event it examined (from its page records, one read per page of
 * events), the counters they must equal, the verification, the money, and the first `limit` events of its
 * per-event list with the token of the next slice (`GET …/report/events?pageToken=`).
 */
export async function buildReport(deps: Deps, id: string, options: { limit?: number } = {}) {
  const tally = new ReadTally();
  const [read, pages, chunks] = await Promise.all([
    runStore(deps.db).get(id),
    pageStore(deps.db).all(id),
    chunkStore(deps.db).heads(id),
  ]);
  tally.docs(1);
  tally.docs(pages.length);
  tally.docs(chunks.length);
  if (!read) throw new AppError(404, "not_found", `No run ${id}; list runs with GET /api/admin/dataMigrations.`);
  const run = read.data;
  const byEvent = outcomesOf(pages);

  const totals: Counters = { total: byEvent.size, processed: 0, skipped: 0, errors: 0 };
  for (const e of byEvent.values()) totals[e.outcome === "error" ? "errors" : e.outcome]++;
  const live = summarize(chunks.map((c) => c.data));
  const counters: Counters = {
    total: live.total,
    processed: live.processed,
    skipped: live.skipped,
    errors: live.errors,
  };
  const reconciled =
    totals.total === totals.processed + totals.skipped + totals.errors &&
    (["total", "processed", "skipped", "errors"] as const).every((k) => totals[k] === counters[k]);

  const byChunk = groupByChunk(pages);
  const [verification, money, slice] = await Promise.all([
    storedVerification(deps, id, run, totals, tally, () => verify(deps, id, run, [...byEvent.values()], tally)),
    runMoney(deps, run, tally),
    eventSlice(
      deps,
      id,
      [...byChunk.keys()],
      (chunkId) => Promise.resolve(byChunk.get(chunkId) ?? []),
      null,
      options.limit ?? REPORT_EVENTS_LIMIT,
      tally,
    ),
  ]);

  return {
    migration: {
      id,
      type: run.type,
      status: run.status,
      dryRun: run.dryRun,
      startDate: run.startDate,
      endDate: run.endDate,
      maxEvents: run.maxEvents,
      selectedEvents: run.selectedEvents,
      plannedEvents: run.plannedEvents,
      capReached: run.capReached,
      finished: isFinishedRun(run.status),
    },
    selection:
      run.type === "webhook_replay"
        ? "events in the range that were not processed (purchases first, then refunds and chargebacks)"
        : "refunds and chargebacks in the range, processed or not",
    totals,
    counters,
    reconciled,
    verification,
    // What the run did (a dry run: would do) to wallets, once it has finished.
    money,
    events: slice.events,
    nextPageToken: slice.nextPageToken,
    docsRead: tally.count,
  };
}

/** The next slice of a report's per-event list: reads the run's chunks and the pages of the chunks it lists. */
export async function reportEvents(deps: Deps, id: string, pageToken: string, limit = REPORT_EVENTS_LIMIT) {
  const after = decodeCursor(pageToken, id);
  const tally = new ReadTally();
  const [read, chunks] = await Promise.all([runStore(deps.db).get(id), chunkStore(deps.db).heads(id)]);
  tally.docs(1);
  tally.docs(chunks.length);
  if (!read) throw new AppError(404, "not_found", `No run ${id}; list runs with GET /api/admin/dataMigrations.`);
  const pagesOf = async (chunkId: string) => {
    const pages = await pageStore(deps.db).ofChunk(id, chunkId);
    tally.docs(pages.length);
    return pages;
  };
  const slice = await eventSlice(
    deps,
    id,
    chunks.map((c) => c.data.id),
    pagesOf,
    after,
    limit,
    tally,
  );
  return { migrationId: id, ...slice, docsRead: tally.count };
}
