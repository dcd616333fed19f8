// A run report's verification, read back from Firestore: each processed event has its one ledger entry,
// every entry the run wrote is claimed by one of its events, and each wallet the run touched equals the
// sum of its user's ledger entries. A finished run's is computed once and kept (store/reportCache.ts).
import { AggregateField } from "firebase-admin/firestore";
import { isFinishedRun, type Run } from "../core/run";
import { WALLET_SAMPLE, walletSample } from "../core/sample";
import type { Counters } from "../core/types";
import type { Deps } from "../deps";
import { refs } from "../platform/collections";
import { keptWhileSame } from "../store/reportCache";
import { mapWithConcurrency, ReadTally } from "../platform/firestore";
import type { ReportEvent } from "./report";

const READ_BATCH = 300;
const WALLET_CONCURRENCY = 16;

type Verification = Awaited<ReturnType<typeof verify>>;

/**
 * The verification reads every entry the run wrote and checks the wallets it touched. A finished run's is
 * computed once and kept (`dataMigrations/{id}/report/verification`), and served again while the run's
 * outcome is the same: same status, retries, finish time and totals (a retry or a late page recomputes it).
 */
export async function storedVerification(
  deps: Deps,
  id: string,
  run: Run,
  totals: Counters,
  tally: ReadTally,
  compute: () => Promise<Verification>,
): Promise<Verification & { computedAt: string }> {
  const stamped = async () => ({ ...(await compute()), computedAt: new Date(deps.now().getTime()).toISOString() });
  if (!isFinishedRun(run.status)) return stamped();
  return keptWhileSame(
    deps,
    id,
    "verification",
    ["v2", run.status, run.retries, run.finishedAt, totals],
    tally,
    stamped,
  );
}

/** Problems a verification lists at most; `problemCount` counts them all. */
export const MAX_PROBLEMS_LISTED = 100;

/**
 * Re-checks the run's effects from Firestore: every entry its events claim exists and is theirs, every
 * entry carrying the run's id is claimed by one of its events (one query over the entries the run wrote),
 * and each touched wallet equals the sum of its user's entries (an aggregation, not a read of the ledger),
 * all of them up to WALLET_SAMPLE and a seeded sample past that.
 */
export async function verify(deps: Deps, id: string, run: Run, events: readonly ReportEvent[], tally: ReadTally) {
  const r = refs(deps.db);
  const processed = events.filter((e) => e.outcome === "processed");
  const collection = run.dryRun ? r.shadow(id) : r.ledger;
  const writtenSnap = await (run.dryRun ? r.shadow(id) : r.ledger.where("migrationId", "==", id))
    .select("sourceEventId", "userId")
    .get();
  tally.docs(writtenSnap.size);
  const written = new Map(
    writtenSnap.docs.map((d) => [
      d.id,
      { sourceEventId: d.get("sourceEventId") as string, userId: d.get("userId") as string },
    ]),
  );

  const claimed = new Map<string, number>();
  for (const e of processed)
    for (const entryId of e.entryIds ?? []) claimed.set(entryId, (claimed.get(entryId) ?? 0) + 1);
  // A claimed entry the run's query did not return is missing, or carries another run's id: read those.
  const absent = [...claimed.keys()].filter((entryId) => !written.has(entryId));
  const elsewhere = new Set<string>();
  for (let i = 0; i < absent.length; i += READ_BATCH) {
    const snaps = await deps.db.getAll(...absent.slice(i, i + READ_BATCH).map((entryId) => collection.doc(entryId)));
    tally.docs(snaps.length);
    for (const s of snaps) if (s.exists) elsewhere.add(s.id);
  }
  const entryProblems: Array<{ eventId: string; entryId: string; problem: string }> = processed.flatMap((e) =>
    (e.entryIds ?? []).flatMap((entryId) => {
      const entry = written.get(entryId);
      if (!entry)
        return [
          {
            eventId: e.eventId,
            entryId,
            problem: elsewhere.has(entryId) ? "ledger entry belongs to another event or run" : "ledger entry missing",
          },
        ];
      if (entry.sourceEventId !== e.eventId)
        return [{ eventId: e.eventId, entryId, problem: "ledger entry belongs to another event or run" }];
      if ((claimed.get(entryId) ?? 0) > 1)
        return [{ eventId: e.eventId, entryId, problem: "entry claimed by several events" }];
      return [];
    }),
  );
  for (const [entryId, entry] of written) {
    if (!claimed.has(entryId))
      entryProblems.push({
        eventId: entry.sourceEventId,
        entryId,
        problem: "entry carries the run's id but no event the run examined claims it",
      });
  }
  const entriesClaimed = processed.reduce((n, e) => n + (e.entryIds?.length ?? 0), 0);

  const touched = [...new Set([...written.values()].map((e) => e.userId))];
  const checked = run.dryRun ? [] : walletSample(touched, id);
  const walletMismatches: Array<{ userId: string; balance: number; ledgerSum: number }> = [];
  await mapWithConcurrency(checked, WALLET_CONCURRENCY, async (userId) => {
    const [wallet, sum] = await Promise.all([
      r.wallets.doc(userId).get(),
      r.ledger
        .where("userId", "==", userId)
        .aggregate({ points: AggregateField.sum("points"), entries: AggregateField.count() })
        .get(),
    ]);
    tally.docs(1);
    tally.aggregation(sum.data().entries);
    const ledgerSum = sum.data().points;
    const balance = (wallet.get("balance") as number | undefined) ?? 0;
    if (balance !== ledgerSum) walletMismatches.push({ userId, balance, ledgerSum });
  });
  walletMismatches.sort((a, b) => (a.userId < b.userId ? -1 : 1));
  const sampled = !run.dryRun && checked.length < touched.length;
  return {
    ledger: run.dryRun ? "shadowLedger (dry run)" : "ledgerEntries",
    processedEvents: processed.length,
    entriesClaimed,
    entriesWritten: written.size,
    entriesFound: entriesClaimed - entryProblems.filter((p) => p.problem === "ledger entry missing").length,
    problemCount: entryProblems.length,
    entryProblems: entryProblems.slice(0, MAX_PROBLEMS_LISTED),
    walletsTouched: run.dryRun ? 0 : touched.length,
    walletsChecked: checked.length,
    walletSample: sampled
      ? {
          size: WALLET_SAMPLE,
          seed: id,
          rule: `the ${WALLET_SAMPLE} wallets whose sha256("${id}/" + userId) is smallest`,
        }
      : null,
    walletMismatches,
    wallets: run.dryRun
      ? "not applicable: a dry run writes no wallets"
      : sampled
        ? `a seeded random sample of ${checked.length} of the ${touched.length} wallets the run touched, each against the sum of its user's ledger entries`
        : "each wallet the run touched, against the sum of its user's ledger entries",
    ok: entryProblems.length === 0 && walletMismatches.length === 0,
  };
}
