import { Timestamp, type DocumentData, type DocumentReference } from "firebase-admin/firestore";

/** A document as read, with the version its conditional writes refer to. */
export interface Versioned<T> {
  data: T;
  version: Timestamp;
}

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

/** True for the error a write with a failed precondition (document changed since read) throws. */
export function isPreconditionFailure(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 9 || code === "failed-precondition";
}

/**
 * Reads a document, decides, and writes the decision conditional on the version read; on a conflict it
 * reads again and decides again. For documents with few writers at a time, this settles in a try or two
 * without the read locks of a transaction (which the emulator serialises with multi-second lock waits).
 */
export async function optimistically<D, T>(
  ref: DocumentReference,
  decide: (doc: D | undefined) => { result: T; update?: DocumentData },
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const snap = await ref.get();
    const { result, update } = decide(snap.data() as D | undefined);
    if (!update) return result;
    try {
      await ref.update(update, { lastUpdateTime: snap.updateTime as Timestamp });
      return result;
    } catch (error) {
      if (!isPreconditionFailure(error) || attempt >= 20) throw error;
    }
  }
}

/**
 * The documents a request read, as Firestore bills them: one per document returned (at least one per
 * query, even an empty one) and one per up to 1,000 index entries an aggregation counts. A view reports it
 * (`docsRead`) so its cost can be checked from outside.
 */
export class ReadTally {
  count = 0;
  /** A query's or getAll's result. */
  docs(n: number): void {
    this.count += Math.max(1, n);
  }
  /** An aggregation over `entries` index entries. */
  aggregation(entries: number): void {
    this.count += Math.max(1, Math.ceil(entries / 1000));
  }
}
