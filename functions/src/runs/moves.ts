// A finished run's effect on wallets (core/moves.ts), from the entries it wrote: the ledger entries
// carrying its id, or a dry run's shadow ledger. Computed once the run has finished and kept in
// `dataMigrations/{id}/report/money` while its outcome is the same (a retry or a late page recomputes it).
import { moneyMoved, type EntryMovement, type MoneyMoved } from "../core/moves";
import { isFinishedRun, type Run } from "../core/run";
import type { Deps } from "../deps";
import { refs } from "../platform/collections";
import type { ReadTally } from "../platform/firestore";
import { keptWhileSame } from "../store/reportCache";

export async function runMoney(deps: Deps, run: Run, tally?: ReadTally): Promise<MoneyMoved | null> {
  if (!isFinishedRun(run.status)) return null;
  const outcome = ["money-v1", run.status, run.retries, run.finishedAt, run.total, run.processed];
  return keptWhileSame(deps, run.id, "money", outcome, tally, async () => {
    const r = refs(deps.db);
    const query = run.dryRun ? r.shadow(run.id) : r.ledger.where("migrationId", "==", run.id);
    const snap = await query.select("kind", "userId", "points").get();
    tally?.docs(snap.size);
    return moneyMoved(snap.docs.map((d) => d.data() as EntryMovement));
  });
}
