// The only code that writes chunk documents (`dataMigrations/{runId}/chunks/{chunkId}`). Every change is a
// transition of core/chunk.ts, written only if the document is still the version the transition was
// decided on; anyone who wants a chunk changed asks this module.
import {
  FieldValue,
  Timestamp,
  type DocumentData,
  type DocumentSnapshot,
  type Firestore,
  type FirestoreDataConverter,
  type QueryDocumentSnapshot,
  type WriteBatch,
} from "firebase-admin/firestore";
import type { ThroughputBuckets } from "../core/estimate";
import type { Chunk, ChunkHead, Cursor, Lease, PhaseProgress, Step } from "../core/chunk";
import { daySpan } from "../core/shards";
import type { ChunkStatus, Phase } from "../core/types";
import { COLLECTIONS, RUN_SUBCOLLECTIONS } from "../platform/collections";
import { Conflict, isPreconditionFailure, readDecideWrite, type Versioned } from "../platform/firestore";

/** A scan position as stored: the event's own `createdAt` Timestamp, so queries can start after it. */
export interface StoredCursor {
  createdAt: Timestamp;
  id: string;
}

/** `dataMigrations/{runId}/chunks/{chunkId}` as stored. */
export interface ChunkDoc {
  /** The chunk's id: its day, or a shard of it. */
  day: string;
  /** The span of event time the chunk covers, epoch milliseconds: [startMs, endMs). */
  startMs: number;
  endMs: number;
  status: ChunkStatus;
  /** The current step's phase and kind (top-level, so chunks can be queried by them). */
  phase: Phase;
  step: Step["step"];
  upcoming: Step[];
  budgets: Partial<Record<Phase, number>>;
  progress: Partial<Record<Phase, { cursor: StoredCursor | null; examined: number }>>;
  errorCursor: string | null;
  pages: number;
  generation: number;
  crashes: number;
  queued: number | null;
  queuedAt: Timestamp | null;
  attempts: number;
  lease: { owner: string; task: string; attempt: number; expiresAt: Timestamp } | null;
  stoppedAtBudget: boolean;
  pausedReason: string | null;
  lastError: string | null;
  total: number;
  processed: number;
  skipped: number;
  errors: number;
  startedAt: Timestamp | null;
  finishedAt: Timestamp | null;
  throughput: ThroughputBuckets | null;
  pageInDoubt: boolean;
  updatedAt: Timestamp;
}

const ts = (ms: number | null) => (ms === null ? null : Timestamp.fromMillis(ms));
const ms = (t: unknown) => (t instanceof Timestamp ? t.toMillis() : null);

export function toStoredCursor(c: Cursor | null): StoredCursor | null {
  return c ? { createdAt: new Timestamp(c.seconds, c.nanos), id: c.id } : null;
}

export function fromStoredCursor(c: StoredCursor | null | undefined): Cursor | null {
  return c ? { seconds: c.createdAt.seconds, nanos: c.createdAt.nanoseconds, id: c.id } : null;
}

const storedProgress = (p: Partial<Record<Phase, PhaseProgress>>) =>
  Object.fromEntries(Object.entries(p).map(([phase, v]) => [phase, { cursor: toStoredCursor(v.cursor), examined: v.examined }]));

const storedLease = (l: Lease | null) => (l ? { owner: l.owner, task: l.task, attempt: l.attempt, expiresAt: Timestamp.fromMillis(l.expiresAt) } : null);

/** The stored fields of a (partial) chunk. */
function toFields(c: Partial<Chunk>): DocumentData {
  const out: DocumentData = {};
  for (const [key, value] of Object.entries(c) as Array<[keyof Chunk, unknown]>) {
    switch (key) {
      case "id":
        out.day = value;
        break;
      case "step":
        out.phase = (value as Step).phase;
        out.step = (value as Step).step;
        break;
      case "progress":
        out.progress = storedProgress(value as Chunk["progress"]);
        break;
      case "lease":
        out.lease = storedLease(value as Lease | null);
        break;
      case "queuedAt":
      case "startedAt":
      case "finishedAt":
        out[key] = ts(value as number | null);
        break;
      default:
        out[key] = value;
    }
  }
  return out;
}

/** A chunk from its stored fields. */
function fromFields(id: string, d: DocumentData): Chunk {
  const progress: Chunk["progress"] = {};
  for (const [phase, p] of Object.entries((d.progress ?? {}) as ChunkDoc["progress"])) {
    progress[phase as Phase] = { cursor: fromStoredCursor(p.cursor), examined: p.examined };
  }
  const lease = d.lease as ChunkDoc["lease"] | undefined;
  const span = typeof d.startMs === "number" && typeof d.endMs === "number" ? { startMs: d.startMs, endMs: d.endMs } : daySpan(id.slice(0, 10));
  return {
    id,
    startMs: span.startMs,
    endMs: span.endMs,
    status: d.status as ChunkStatus,
    step: { phase: d.phase as Phase, step: d.step as Step["step"] },
    upcoming: (d.upcoming ?? []) as Step[],
    budgets: (d.budgets ?? {}) as Chunk["budgets"],
    progress,
    errorCursor: (d.errorCursor ?? null) as string | null,
    pages: (d.pages ?? 0) as number,
    generation: (d.generation ?? 0) as number,
    crashes: (d.crashes ?? 0) as number,
    queued: (d.queued ?? null) as number | null,
    queuedAt: ms(d.queuedAt),
    attempts: (d.attempts ?? 0) as number,
    lease: lease ? { owner: lease.owner, task: lease.task, attempt: lease.attempt, expiresAt: lease.expiresAt.toMillis() } : null,
    stoppedAtBudget: d.stoppedAtBudget === true,
    pausedReason: (d.pausedReason ?? null) as string | null,
    lastError: (d.lastError ?? null) as string | null,
    total: (d.total ?? 0) as number,
    processed: (d.processed ?? 0) as number,
    skipped: (d.skipped ?? 0) as number,
    errors: (d.errors ?? 0) as number,
    startedAt: ms(d.startedAt),
    finishedAt: ms(d.finishedAt),
    throughput: (d.throughput ?? null) as ThroughputBuckets | null,
    pageInDoubt: d.pageInDoubt === true,
  };
}

export const chunkConverter: FirestoreDataConverter<Chunk, DocumentData> = {
  toFirestore: (c) => ({ ...toFields(c as Chunk), updatedAt: FieldValue.serverTimestamp() }),
  fromFirestore: (snap: QueryDocumentSnapshot) => fromFields(snap.id, snap.data()),
};

/** Every stored field bookkeeping reads. */
const HEAD_FIELDS = [
  "day", "startMs", "endMs", "status", "phase", "step", "upcoming", "budgets", "progress", "errorCursor", "pages", "generation", "crashes", "queued", "queuedAt",
  "attempts", "lease", "stoppedAtBudget", "pausedReason", "lastError", "total", "processed", "skipped", "errors", "startedAt", "finishedAt", "throughput", "pageInDoubt",
] as const;

const headOf = (snap: QueryDocumentSnapshot): Versioned<ChunkHead> => {
  return { data: fromFields(snap.id, snap.data()), version: snap.updateTime };
};

/** How many times a read-decide-write is retried when someone else wrote the chunk meanwhile. */
const CONFLICT_ATTEMPTS = 21;

export function chunkStore(db: Firestore) {
  /** The chunks of a run, untyped: for field-level updates, preconditions and selected reads. */
  const raw = (runId: string) => db.collection(COLLECTIONS.runs).doc(runId).collection(RUN_SUBCOLLECTIONS.chunks);
  const collection = (runId: string) => raw(runId).withConverter(chunkConverter);
  const ref = (runId: string, chunkId: string) => collection(runId).doc(chunkId);
  const versioned = (snap: DocumentSnapshot<Chunk>): Versioned<Chunk> | null =>
    snap.exists ? { data: snap.data() as Chunk, version: snap.updateTime as Timestamp } : null;

  /** Writes `update` only if the chunk is still at `version`; false when it is not. */
  async function write(runId: string, chunkId: string, version: Timestamp, update: Partial<Chunk>): Promise<boolean> {
    try {
      await raw(runId)
        .doc(chunkId)
        .update({ ...toFields(update), updatedAt: FieldValue.serverTimestamp() }, { lastUpdateTime: version });
      return true;
    } catch (error) {
      if (isPreconditionFailure(error)) return false;
      throw error;
    }
  }

  const doc = (runId: string, chunkId: string) => raw(runId).doc(chunkId);

  return {
    ref,
    /** The chunk's plain reference, for reading it together with other documents in one getAll. */
    doc,
    collection,

    /** A chunk from a snapshot read elsewhere. */
    fromSnapshot(snap: DocumentSnapshot | undefined): Versioned<Chunk> | null {
      return snap?.exists ? { data: fromFields(snap.id, snap.data() as DocumentData), version: snap.updateTime as Timestamp } : null;
    },

    async get(runId: string, chunkId: string): Promise<Versioned<Chunk> | null> {
      return versioned(await ref(runId, chunkId).get());
    },

    /** Every chunk of a run, without remembered event ids: one query, one consistent snapshot. */
    async heads(runId: string): Promise<Array<Versioned<ChunkHead>>> {
      const snap = await raw(runId).select(...HEAD_FIELDS).get();
      return snap.docs.map(headOf);
    },

    /** Every chunk of a run, whole. */
    async all(runId: string): Promise<Chunk[]> {
      return (await collection(runId).get()).docs.map((d) => d.data());
    },

    /** Chunks whose lease names a task. */
    async heldBy(runId: string, task: string): Promise<Array<Versioned<ChunkHead>>> {
      const snap = await raw(runId)
        .where("lease.task", "==", task)
        .select(...HEAD_FIELDS)
        .get();
      return snap.docs.map(headOf);
    },

    /** Due chunks of a phase (pending), with what a helper needs to judge their size. */
    async due(runId: string, phase: Phase, limit: number): Promise<Array<Versioned<Chunk>>> {
      const snap = await collection(runId).where("phase", "==", phase).where("status", "==", "pending").limit(limit).get();
      return snap.docs.map((d) => ({ data: d.data(), version: d.updateTime }));
    },

    /** Adds a new chunk to a batch (a run and its chunks are created together). */
    create(batch: WriteBatch, runId: string, chunk: Chunk): void {
      batch.create(ref(runId, chunk.id), chunk);
    },

    write,

    /** Adds to `batch` an update of the chunk conditional on `version` (a page commits with its records). */
    updateInBatch(batch: WriteBatch, runId: string, chunkId: string, version: Timestamp, update: Partial<Chunk>): void {
      batch.update(doc(runId, chunkId), { ...toFields(update), updatedAt: FieldValue.serverTimestamp() }, { lastUpdateTime: version });
    },

    /** Applies `transition` to the chunk as read at `read`; false when the chunk changed since. */
    async applyTo<R>(runId: string, read: Versioned<ChunkHead>, transition: { result: R; update: Partial<Chunk> | null }): Promise<boolean> {
      if (!transition.update) return false;
      return write(runId, read.data.id, read.version, transition.update);
    },

    /**
     * Reads the chunk, decides, and writes the decision if the chunk is still the version read; on a
     * conflict it reads and decides again. Returns the decision that was written (or needed no write).
     */
    async apply<R>(
      runId: string,
      chunkId: string,
      decide: (chunk: Chunk | null) => { result: R; update: Partial<Chunk> | null },
    ): Promise<{ result: R; chunk: Chunk | null; written: boolean }> {
      return readDecideWrite(`chunk ${runId}/${chunkId}`, async () => {
        const read = versioned(await ref(runId, chunkId).get());
        const { result, update } = decide(read?.data ?? null);
        if (!update || !read) return { result, chunk: read?.data ?? null, written: false };
        if (await write(runId, chunkId, read.version, update)) return { result, chunk: { ...read.data, ...update }, written: true };
        return new Conflict(CONFLICT_ATTEMPTS);
      });
    },
  };
}

export type ChunkStore = ReturnType<typeof chunkStore>;
