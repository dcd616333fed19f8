// What the admin API shows of runs: JSON-friendly (ISO timestamps), with live counters summed from the
// chunks while a run is still going.
import { Timestamp } from "firebase-admin/firestore";
import type { Caller } from "../auth/oidc";
import { dayOfChunk } from "../core/shards";
import type { Chunk } from "../core/chunk";
import { etaSeconds, throughputPoints, throughputSeries } from "../core/estimate";
import { isFinishedRun, summarize, type Run } from "../core/run";
import type { Deps } from "../deps";
import { AppError } from "../errors";
import { chunkStore } from "../store/chunks";
import { refs } from "../platform/collections";
import { errorStore } from "../store/errors";
import { killSwitch, writeKillSwitch } from "../store/killSwitch";
import { ReadTally } from "../platform/firestore";
import type { ChunkView, KillSwitchView, RunDetail, RunList, RunView } from "../http/schemas";
import { planComparison } from "./compare";
import { runMoney } from "./moves";
import { runStore } from "../store/runs";

const iso = (t: unknown) =>
  t instanceof Timestamp ? t.toDate().toISOString() : typeof t === "number" ? new Date(t).toISOString() : null;

function runView(id: string, run: Run): RunView {
  return {
    id,
    type: run.type,
    startDate: run.startDate,
    endDate: run.endDate,
    dryRun: run.dryRun,
    maxEvents: run.maxEvents,
    status: run.status,
    phase: run.phase,
    total: run.total,
    processed: run.processed,
    skipped: run.skipped,
    errors: run.errors,
    chunksTotal: run.chunksTotal,
    chunksDone: run.chunksDone,
    chunksFailed: run.chunksFailed,
    plannedEvents: run.plannedEvents,
    selectedEvents: run.selectedEvents,
    capReached: run.capReached,
    maxErrorRate: run.maxErrorRate,
    maxEventsPerSecond: run.maxEventsPerSecond,
    autoPause: run.autoPause ? { ...run.autoPause, at: iso(run.autoPause.at) } : null,
    retries: run.retries,
    lookbackDays: run.lookbackDays,
    userIds: run.userIds,
    planOf: run.planOf,
    estimatedSeconds: run.estimatedSeconds,
    requestedBy: run.requestedBy,
    requestedBySub: run.requestedBySub,
    pausedReason: run.pausedReason,
    failureReason: run.failureReason,
    createdAt: iso(run.createdAt),
    startedAt: iso(run.startedAt),
    finishedAt: iso(run.finishedAt),
  };
}

function chunkView(chunk: Chunk): ChunkView {
  return {
    id: chunk.id,
    day: dayOfChunk(chunk.id),
    from: new Date(chunk.startMs).toISOString(),
    to: new Date(chunk.endMs).toISOString(),
    status: chunk.status,
    phase: chunk.step.phase,
    step: chunk.step.step,
    upcoming: chunk.upcoming,
    total: chunk.total,
    processed: chunk.processed,
    skipped: chunk.skipped,
    errors: chunk.errors,
    budgets: chunk.budgets,
    pages: chunk.pages,
    attempts: chunk.attempts,
    stoppedAtBudget: chunk.stoppedAtBudget,
    pausedReason: chunk.pausedReason,
    lastError: chunk.lastError,
    startedAt: iso(chunk.startedAt),
    finishedAt: iso(chunk.finishedAt),
  };
}

export const MAX_LIST_LIMIT = 100;
export const ERROR_SAMPLE_SIZE = 50;

export async function listRuns(deps: Deps, limit: number): Promise<RunList> {
  const snap = await runStore(deps.db).collection().orderBy("createdAt", "desc").limit(limit).get();
  return { migrations: snap.docs.map((d) => runView(d.id, d.data())) };
}

/**
 * A run's page. What it reads does not grow with the run's history: the run, its chunks (their counters
 * and their throughput buckets give the live totals, the chart and the ETA), a sample of open errors and
 * their count, and what a finished run keeps of its money and comparison (computed once, on the first
 * view after it ends). `docsRead` says how many documents this view read.
 */
export async function getRun(deps: Deps, id: string): Promise<RunDetail> {
  const tally = new ReadTally();
  const errors = errorStore(deps.db);
  const [read, chunks, errorSample, errorCount] = await Promise.all([
    runStore(deps.db).get(id),
    chunkStore(deps.db).heads(id),
    errors.openSample(id, ERROR_SAMPLE_SIZE),
    errors.openCount(id),
  ]);
  tally.docs(1);
  tally.docs(chunks.length);
  tally.docs(errorSample.length);
  tally.aggregation(errorCount);
  if (!read) {
    throw new AppError(404, "not_found", `No run ${id}; list runs with GET /api/admin/dataMigrations.`);
  }
  const run = read.data;
  const view = runView(id, run);
  if (!isFinishedRun(run.status)) {
    // The run document is refreshed when chunks finish; in between, the chunks hold the current truth.
    const live = summarize(chunks.map((c) => c.data));
    Object.assign(view, {
      total: live.total,
      processed: live.processed,
      skipped: live.skipped,
      errors: live.errors,
      chunksDone: live.chunksDone,
      chunksFailed: live.chunksFailed,
    });
  }
  const now = deps.now().getTime();
  const points = throughputPoints(chunks.map((c) => c.data));
  const [comparison, money] = await Promise.all([planComparison(deps, run, tally), runMoney(deps, run, tally)]);
  return {
    migration: {
      ...view,
      etaSeconds: etaSeconds({ ...run, total: view.total }, now, points),
      elapsedSeconds: run.startedAt === null ? 0 : Math.round(((run.finishedAt ?? now) - run.startedAt) / 1000),
    },
    throughput: throughputSeries(points, run.startedAt, run.finishedAt ?? now),
    planComparison: comparison,
    money,
    chunks: chunks.map((c) => chunkView(c.data)),
    errorSample: errorSample.map((e) => ({
      eventId: e.eventId,
      code: e.code,
      message: e.message,
      chunkId: e.chunkId,
      phase: e.phase,
      attempts: e.attempts,
      at: iso(e.at),
    })),
    errorCount,
    docsRead: tally.count,
  };
}

/** Flips the runtime half of the kill switch (`featureFlags/backfill`), recording who did. */
export async function setKillSwitch(deps: Deps, enabled: boolean, caller: Caller): Promise<KillSwitchView> {
  await writeKillSwitch(deps.db, enabled, { email: caller.email, sub: caller.sub, via: "api" });
  deps.log.killSwitchSet(enabled, caller);
  return killSwitchView(deps);
}

/** The kill switch as the console shows it. */
export async function killSwitchView(deps: Deps): Promise<KillSwitchView> {
  const flag = await refs(deps.db).killSwitch.get();
  const state = killSwitch(deps.config, flag);
  return {
    enabled: state.enabled,
    disabledBy: state.enabled ? null : state.source === "param" ? "BACKFILL_ENABLED" : "featureFlags/backfill",
    param: deps.config.backfillEnabled,
    flag: flag.exists
      ? {
          enabled: flag.get("enabled") as unknown,
          updatedBy: (flag.get("updatedBy") ?? null) as string | null,
          updatedVia: (flag.get("updatedVia") ?? null) as string | null,
        }
      : null,
  };
}
