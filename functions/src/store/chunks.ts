// The only code that writes chunk documents (`dataMigrations/{runId}/chunks/{chunkId}`). Every change is a
// transition of core/chunk.ts, written only if the document is still the version the transition was
// decided on; anyone who wants a chunk changed asks this module.
import {
  FieldValue,
  Timestamp,
  type DocumentData,
  type DocumentSnapshot,
  type Firestore,
  type WriteBatch,
} from "firebase-admin/firestore";
import type { Chunk } from "../core/chunk";
import type { Phase } from "../core/types";
import { COLLECTIONS, RUN_SUBCOLLECTIONS } from "../platform/collections";
import { Conflict, readDecideWrite, writtenIfUnchanged, type Versioned } from "../platform/firestore";
import { chunkConverter, fromFields, headOf, HEAD_FIELDS, toFields } from "./chunkDoc";

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
  function write(runId: string, chunkId: string, version: Timestamp, update: Partial<Chunk>): Promise<boolean> {
    const fields = { ...toFields(update), updatedAt: FieldValue.serverTimestamp() };
    return writtenIfUnchanged(() => raw(runId).doc(chunkId).update(fields, { lastUpdateTime: version }));
  }

  const doc = (runId: string, chunkId: string) => raw(runId).doc(chunkId);

  return {
    ref,
    /** The chunk's plain reference, for reading it together with other documents in one getAll. */
    doc,
    collection,

    /** A chunk from a snapshot read elsewhere. */
    fromSnapshot(snap: DocumentSnapshot | undefined): Versioned<Chunk> | null {
      return snap?.exists
        ? { data: fromFields(snap.id, snap.data() as DocumentData), version: snap.updateTime as Timestamp }
        : null;
    },

    async get(runId: string, chunkId: string): Promise<Versioned<Chunk> | null> {
      return versioned(await ref(runId, chunkId).get());
    },

    /** Every chunk of a run, without remembered event ids: one query, one consistent snapshot. */
    async heads(runId: string): Promise<Array<Versioned<Chunk>>> {
      const snap = await raw(runId)
        .select(...HEAD_FIELDS)
        .get();
      return snap.docs.map(headOf);
    },

    /** Every chunk of a run, whole. */
    async all(runId: string): Promise<Chunk[]> {
      return (await collection(runId).get()).docs.map((d) => d.data());
    },

    /** Chunks whose lease names a task. */
    async heldBy(runId: string, task: string): Promise<Array<Versioned<Chunk>>> {
      const snap = await raw(runId)
        .where("lease.task", "==", task)
        .select(...HEAD_FIELDS)
        .get();
      return snap.docs.map(headOf);
    },

    /** Due chunks of a phase (pending), with what a helper needs to judge their size. */
    async due(runId: string, phase: Phase, limit: number): Promise<Array<Versioned<Chunk>>> {
      const snap = await collection(runId)
        .where("phase", "==", phase)
        .where("status", "==", "pending")
        .limit(limit)
        .get();
      return snap.docs.map((d) => ({ data: d.data(), version: d.updateTime }));
    },

    /** Adds a new chunk to a batch (a run and its chunks are created together). */
    create(batch: WriteBatch, runId: string, chunk: Chunk): void {
      batch.create(ref(runId, chunk.id), chunk);
    },

    write,

    /** Adds to `batch` an update of the chunk conditional on `version` (a page commits with its records). */
    updateInBatch(batch: WriteBatch, runId: string, chunkId: string, version: Timestamp, update: Partial<Chunk>): void {
      batch.update(
        doc(runId, chunkId),
        { ...toFields(update), updatedAt: FieldValue.serverTimestamp() },
        { lastUpdateTime: version },
      );
    },

    /** Applies `transition` to the chunk as read at `read`; false when the chunk changed since. */
    async applyTo<R>(
      runId: string,
      read: Versioned<Chunk>,
      transition: { result: R; update: Partial<Chunk> | null },
    ): Promise<boolean> {
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
        if (await write(runId, chunkId, read.version, update))
          return { result, chunk: { ...read.data, ...update }, written: true };
        return new Conflict(CONFLICT_ATTEMPTS);
      });
    },
  };
}

export type ChunkStore = ReturnType<typeof chunkStore>;
