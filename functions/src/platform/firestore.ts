import {
  Timestamp,
  type DocumentData,
  type DocumentReference,
  type FirestoreDataConverter,
  type PartialWithFieldValue,
  type Precondition,
  type SetOptions,
  type UpdateData,
} from "firebase-admin/firestore";

/** A document as read, with the version its conditional writes refer to. */
/**
 * A converter that types a collection's documents as `T` (`withConverter`): reads come back as `T`, and
 * writes must be `T` (with FieldValues where a field is set by the server or incremented).
 */
export function typed<T extends DocumentData>(): FirestoreDataConverter<T> {
  return {
    toFirestore: (data: PartialWithFieldValue<T>) => data,
    fromFirestore: (snap) => snap.data() as T,
  };
}

/** What a transaction and a batch have in common, for the writes below. */
export interface Writer {
  create(ref: DocumentReference, data: DocumentData): unknown;
  set(ref: DocumentReference, data: DocumentData, options: SetOptions): unknown;
  update(ref: DocumentReference, data: UpdateData<DocumentData>, precondition?: Precondition): unknown;
}

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

/** Runs a write conditional on the version read; false when the document changed since (its precondition failed). */
export async function writtenIfUnchanged(write: () => Promise<unknown>): Promise<boolean> {
  try {
    await write();
    return true;
  } catch (error) {
    if (isPreconditionFailure(error)) return false;
    throw error;
  }
}

/** True for the error a write with a failed precondition (document changed since read) throws. */
export function isPreconditionFailure(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 9 || code === "failed-precondition";
}

/**
 * What a read-decide-write attempt answers when its conditional write found a document changed since it
 * was read: how many attempts in all a decision of this kind deserves, and what to answer once they are
 * spent (by default, an error saying so).
 */
export class Conflict<R = never> {
  constructor(
    readonly attempts: number,
    readonly exhausted?: () => R,
  ) {}
}

/**
 * Read, decide, write conditional on what was read; on a conflict read and decide again. The one retry
 * loop of the stores and of every caller that writes on a version it read: `attempt` does one round and
 * answers its result or a Conflict; `pauseMs` spaces the rounds (none by default: a document with few
 * writers settles in a try or two, without the read locks of a transaction, which the emulator
 * serialises with multi-second waits).
 */
export async function readDecideWrite<R>(
  what: string,
  attempt: (n: number) => Promise<R | Conflict<R>>,
  pauseMs?: (n: number) => number,
): Promise<R> {
  for (let n = 0; ; n++) {
    const answer = await attempt(n);
    if (!(answer instanceof Conflict)) return answer;
    if (n + 1 >= answer.attempts) {
      if (answer.exhausted) return answer.exhausted();
      throw new Error(`${what} kept changing under ${answer.attempts} attempts to update it`);
    }
    if (pauseMs) await new Promise((resolve) => setTimeout(resolve, pauseMs(n)));
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
