// The run report: every event the run examined with its final outcome, totals that must equal the run's
// counters, and a verification read back from Firestore — each processed event has its one ledger entry,
// and each wallet the run touched equals the sum of its user's ledger entries.
import type { MoneyEntry } from "../core/money";
import { isFinishedRun, summarize, type Run } from "../core/run";
import type { Counters } from "../core/types";
import type { Deps } from "../deps";
import { AppError } from "../errors";
import { chunkStore } from "../chunks/store";
import { decodeOutcomes, refs, type EventErrorDoc, type PageDoc } from "../platform/collections";
import { mapWithConcurrency } from "../platform/firestore";
import { runMoney } from "./moves";
import { runStore } from "./store";

const READ_BATCH = 300;
const WALLET_CONCURRENCY = 16;

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

/** Every event a run examined with its final outcome: pages in commit order, a retry's pass overriding an earlier error. */
export async function readOutcomes(deps: Deps, id: string): Promise<Map<string, ReportEvent>> {
  const pageSnap = await refs(deps.db).pages(id).orderBy("at").get();
  const byEvent = new Map<string, ReportEvent>();
  for (const doc of pageSnap.docs) {
    const page = doc.data() as PageDoc;
    for (const o of decodeOutcomes(page.outcomes)) {
      const base = { eventId: o.e, chunkId: page.chunkId, phase: page.phase };
      byEvent.set(
        o.e,
        o.r === "p"
          ? { ...base, outcome: "processed", entryIds: o.x ? o.x.split(",") : [] }
          : o.r === "s"
            ? { ...base, outcome: "skipped", reason: o.x }
            : { ...base, outcome: "error", code: o.x },
      );
    }
  }
  return byEvent;
}

export async function buildReport(deps: Deps, id: string) {
  const r = refs(deps.db);
  const [read, byEvent, chunks, errorSnap] = await Promise.all([
    runStore(deps.db).get(id),
    readOutcomes(deps, id),
    chunkStore(deps.db).heads(id),
    r.errors(id).get(),
  ]);
  if (!read) throw new AppError(404, "not_found", `No run ${id}; list runs with GET /api/admin/dataMigrations.`);
  const run = read.data;
  const messages = new Map(errorSnap.docs.map((d) => [d.id, (d.data() as EventErrorDoc).message]));
  const events = [...byEvent.values()].sort((a, b) => a.chunkId.localeCompare(b.chunkId) || a.eventId.localeCompare(b.eventId));
  for (const e of events) if (e.outcome === "error") e.message = messages.get(e.eventId);

  const totals: Counters = { total: events.length, processed: 0, skipped: 0, errors: 0 };
  for (const e of events) totals[e.outcome === "error" ? "errors" : e.outcome]++;
  const live = summarize(chunks.map((c) => c.data));
  const counters: Counters = { total: live.total, processed: live.processed, skipped: live.skipped, errors: live.errors };
  const reconciled =
    totals.total === totals.processed + totals.skipped + totals.errors &&
    (["total", "processed", "skipped", "errors"] as const).every((k) => totals[k] === counters[k]);

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
    verification: await storedVerification(deps, id, run, totals, () => verify(deps, id, run, events)),
    // What the run did (a dry run: would do) to wallets, once it has finished.
    money: await runMoney(deps, run),
    events,
  };
}

type Verification = Awaited<ReturnType<typeof verify>>;

/**
 * The verification reads every entry the run wrote and every wallet it touched. A finished run's is
 * computed once and kept (`dataMigrations/{id}/report/verification`), and served again while the run's
 * outcome is the same: same status, retries, finish time and totals (a retry or a late page recomputes it).
 */
async function storedVerification(deps: Deps, id: string, run: Run, totals: Counters, compute: () => Promise<Verification>): Promise<Verification & { computedAt: string }> {
  const stamped = async () => ({ ...(await compute()), computedAt: new Date(deps.now().getTime()).toISOString() });
  if (!isFinishedRun(run.status)) return stamped();
  return keptWhileSame(deps, id, "verification", [run.status, run.retries, run.finishedAt, totals], stamped);
}

/**
 * Something a finished run's report shows that is costly to compute: computed once and kept in
 * `dataMigrations/{id}/report/{name}` with the run outcome it was computed for (`key`), and served again
 * while that outcome is the same (a retry or a late page recomputes it).
 */
export async function keptWhileSame<T>(deps: Deps, runId: string, name: string, outcome: unknown, compute: () => Promise<T>): Promise<T> {
  const ref = refs(deps.db).report(runId).doc(name);
  const key = JSON.stringify(outcome);
  const stored = await ref.get();
  if (stored.exists && stored.get("key") === key) return stored.get(name) as T;
  const value = await compute();
  await ref.set({ key, [name]: value });
  return value;
}

/** Re-checks the run's effects from Firestore. */
async function verify(deps: Deps, id: string, run: Run, events: readonly ReportEvent[]) {
  const r = refs(deps.db);
  const processed = events.filter((e) => e.outcome === "processed");
  const collection = run.dryRun ? r.shadow(id) : r.ledger;
  const entries = new Map<string, MoneyEntry>();
  const ids = [...new Set(processed.flatMap((e) => e.entryIds ?? []))];
  for (let i = 0; i < ids.length; i += READ_BATCH) {
    const snaps = await deps.db.getAll(...ids.slice(i, i + READ_BATCH).map((entryId) => collection.doc(entryId)));
    for (const s of snaps) if (s.exists) entries.set(s.id, s.data() as MoneyEntry);
  }
  const claimed = new Map<string, number>();
  for (const e of processed) for (const entryId of e.entryIds ?? []) claimed.set(entryId, (claimed.get(entryId) ?? 0) + 1);
  const entryProblems = processed.flatMap((e) =>
    (e.entryIds ?? []).flatMap((entryId) => {
      const entry = entries.get(entryId);
      if (!entry) return [{ eventId: e.eventId, entryId, problem: "ledger entry missing" }];
      if (entry.sourceEventId !== e.eventId || entry.migrationId !== id) {
        return [{ eventId: e.eventId, entryId, problem: "ledger entry belongs to another event or run" }];
      }
      if ((claimed.get(entryId) ?? 0) > 1) return [{ eventId: e.eventId, entryId, problem: "entry claimed by several events" }];
      return [];
    }),
  );
  const entriesClaimed = processed.reduce((n, e) => n + (e.entryIds?.length ?? 0), 0);

  let walletsChecked = 0;
  const walletMismatches: Array<{ userId: string; balance: number; ledgerSum: number }> = [];
  if (!run.dryRun) {
    const users = [...new Set([...entries.values()].map((e) => e.userId))];
    await mapWithConcurrency(users, WALLET_CONCURRENCY, async (userId) => {
      const [wallet, ledger] = await Promise.all([r.wallets.doc(userId).get(), r.ledger.where("userId", "==", userId).select("points").get()]);
      const ledgerSum = ledger.docs.reduce((sum, d) => sum + (d.get("points") as number), 0);
      const balance = (wallet.get("balance") as number | undefined) ?? 0;
      walletsChecked++;
      if (balance !== ledgerSum) walletMismatches.push({ userId, balance, ledgerSum });
    });
  }
  return {
    ledger: run.dryRun ? "shadowLedger (dry run)" : "ledgerEntries",
    processedEvents: processed.length,
    entriesClaimed,
    entriesFound: entriesClaimed - entryProblems.filter((p) => p.problem === "ledger entry missing").length,
    entryProblems,
    walletsChecked,
    walletMismatches,
    wallets: run.dryRun ? "not applicable: a dry run writes no wallets" : "each wallet the run touched, against the sum of its user's ledger entries",
    ok: entryProblems.length === 0 && walletMismatches.length === 0,
  };
}
