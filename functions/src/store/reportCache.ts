// What a finished run's report keeps of its costly parts (`dataMigrations/{id}/report/{name}`): the
// verification, the comparison with its dry run, the money moved. This module is the collection's writer.
import type { Deps } from "../deps";
import { refs } from "../platform/collections";
import type { ReadTally } from "../platform/firestore";

/**
 * Something a finished run's report shows that is costly to compute: computed once and kept in
 * `dataMigrations/{id}/report/{name}` with the run outcome it was computed for (`key`), and served again
 * while that outcome is the same (a retry or a late page recomputes it).
 */
export async function keptWhileSame<T>(
  deps: Deps,
  runId: string,
  name: string,
  outcome: unknown,
  tally: ReadTally | undefined,
  compute: () => Promise<T>,
): Promise<T> {
  const ref = refs(deps.db).report(runId).doc(name);
  const key = JSON.stringify(outcome);
  const stored = await ref.get();
  tally?.docs(1);
  if (stored.exists && stored.get("key") === key) return stored.get(name) as T;
  const value = await compute();
  await ref.set({ key, [name]: value });
  return value;
}
