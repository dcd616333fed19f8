import { Timestamp } from "firebase-admin/firestore";

/** Firestore data with top-level Timestamps turned into Dates, the form the pure core validates. */
export function plainData(data: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!data) return data;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(data)) out[key] = value instanceof Timestamp ? value.toDate() : value;
  return out;
}

/**
 * Runs `fn` over `items` with at most `limit` calls in flight; results keep the input order. On a failure
 * no new call starts, and the first error is thrown only after every call in flight has settled, so no
 * write is left running behind the caller's back.
 */
export async function mapWithConcurrency<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const index = next++;
      try {
        results[index] = await fn(items[index] as T, index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
  return results;
}
