// Working a page: its events applied to the ledger (ledger/apply.ts), then its outcome committed in one
// batch with the chunk's transition, its error records and its page record; and the auto-pause check on
// the error rate that follows.
import { positionKey, type Chunk, type Holder } from "../core/chunk";
import { commitPage, type CommitResult, type PageResult } from "../core/chunkTransitions";
import type { Run } from "../core/run";
import { busiestWallet, type BusiestWallet, type MoneyContext, type MoneyOutcome } from "../core/outcomes";
import { errorRateOverWindow, AUTO_PAUSE_WINDOW } from "../core/window";
import { countOutcomes } from "../core/types";
import type { Deps } from "../deps";
import { applyPage } from "../ledger/apply";
import { ProductCatalog } from "../ledger/reads";
import { errorStore } from "../store/errors";
import { encodeOutcomes, pageStore, type PageOutcome } from "../store/pages";
import { pauseRun } from "../runs/advance";
import { runFields } from "../runs/runFields";
import { chunkStore } from "../store/chunks";
import { nextPageId, planErrorsPage, planScanPage, type ReadBuffer } from "./pagePlan";

/** How long a delivery owns its chunk without committing a page before another may take over. */
export const LEASE_SECONDS = 120;
/** Documents read at every page boundary: the run, the chunk and the kill switch. */
const PAGE_BOUNDARY_READS = 3;

export async function processPage(
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
  const plan =
    chunk.step.step === "errors"
      ? await planErrorsPage(deps, run, chunk)
      : await planScanPage(deps, run, chunk, buffer);

  const ctx: MoneyContext = {
    runId: run.id,
    mode: run.type,
    dryRun: run.dryRun,
    walletField: config.walletField,
    userIds: run.userIds,
    page: nextPageId(chunk),
  };
  const applied = await applyPage(
    db,
    ctx,
    plan.docs,
    catalog,
    {
      groupSize: config.groupSize,
      walletGroupSize: config.walletGroupSize,
      parallelGroups: config.parallelGroups,
      beforeGroup: async (index, groups) => {
        if (index === Math.floor(groups / 2) && index > 0) await deps.faults?.at("page-half-applied", probe);
      },
    },
    deps.faults,
  );
  const outcomes = applied.outcomes;
  await deps.faults?.at(plan.page.stepDone ? "before-chunk-finish" : "before-page-commit", probe);

  const counted = countOutcomes(outcomes);
  const page: PageResult = { ...plan.page, from, outcomes: counted };
  // Documents the page read: its planning, its groups, the chunk its commit re-reads, and the run, chunk
  // and kill switch read before it (PAGE_BOUNDARY_READS).
  const reads = plan.reads + applied.reads + 1 + PAGE_BOUNDARY_READS;
  const committed = await commitPageWithRecords(deps, run, chunk.id, me, page, outcomes, {
    writes: applied.writes,
    reads,
    busiestWallet: busiestWallet(outcomes, applied.walletWrites),
  });
  if (committed.kind === "conflict") {
    buffer.current = null;
    return { ...committed, examined: 0 };
  }
  const fields = runFields(run.id, run);
  for (const o of outcomes) {
    if (o.result === "error")
      deps.log.eventFailed(fields, chunk.id, { eventId: o.eventId, code: o.code, message: o.message });
  }
  deps.log.pageCommitted(
    fields,
    { id: chunk.id, phase: chunk.step.phase, page: committed.page, step: chunk.step.step },
    counted,
    deps.now().getTime() - pageStarted,
  );
  if (counted.errors > 0 && run.maxErrorRate < 1) await checkErrorRate(deps, run);
  return { ...committed, examined: counted.total };
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
  const errorWrites = errorStore(deps.db).recordOutcomes(batch, run.id, chunkId, step, outcomes);
  if (outcomes.length > 0) {
    pageStore(deps.db).create(batch, run.id, `${chunkId}-${transition.result.page}`, {
      chunkId,
      phase: step.phase,
      step: step.step,
      ...countOutcomes(outcomes),
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
    if (code === 9 || code === "failed-precondition" || code === 6 /* page record exists */)
      return { kind: "conflict" };
    throw error;
  }
  return transition.result;
}

/**
 * Pauses the run when the error rate over its last AUTO_PAUSE_WINDOW examined events (pages committed since
 * the run started or was last resumed) exceeds its maxErrorRate.
 */
async function checkErrorRate(deps: Deps, run: Run): Promise<void> {
  const recent = await pageStore(deps.db).recentBits(run.id, run.windowSince, AUTO_PAUSE_WINDOW);
  const rate = errorRateOverWindow(recent);
  if (rate === null || rate <= run.maxErrorRate) return;
  await pauseRun(deps, run.id, "error_rate", {
    errorRate: rate,
    window: AUTO_PAUSE_WINDOW,
    threshold: run.maxErrorRate,
    at: deps.now().getTime(),
  });
}
