// A chunk document as stored (`dataMigrations/{runId}/chunks/{chunkId}`), and how store/chunks.ts maps it
// to and from core/chunk.ts's Chunk: times as Timestamps, cursors as their events' own `createdAt`.
import {
  FieldValue,
  Timestamp,
  type DocumentData,
  type FirestoreDataConverter,
  type QueryDocumentSnapshot,
} from "firebase-admin/firestore";
import type { ThroughputBuckets } from "../core/estimate";
import type { Chunk, Cursor, Lease, PhaseProgress, Step } from "../core/chunk";
import { wholeDayChunk } from "../core/shards";
import type { ChunkStatus, Phase } from "../core/types";
import { type Versioned } from "../platform/firestore";

/** A scan position as stored: the event's own `createdAt` Timestamp, so queries can start after it. */
export interface StoredCursor {
  createdAt: Timestamp;
  id: string;
}

/** `dataMigrations/{runId}/chunks/{chunkId}` as stored. */
export interface ChunkDoc {
  /** The chunk's id: its day, or a shard of it. */
  day: string;
  /** The event time the chunk covers, epoch milliseconds: [startMs, endMs). */
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
  Object.fromEntries(
    Object.entries(p).map(([phase, v]) => [phase, { cursor: toStoredCursor(v.cursor), examined: v.examined }]),
  );

const storedLease = (l: Lease | null) =>
  l ? { owner: l.owner, task: l.task, attempt: l.attempt, expiresAt: Timestamp.fromMillis(l.expiresAt) } : null;

/** The stored fields of a (partial) chunk. */
export function toFields(c: Partial<Chunk>): DocumentData {
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
export function fromFields(id: string, d: DocumentData): Chunk {
  const progress: Chunk["progress"] = {};
  for (const [phase, p] of Object.entries((d.progress ?? {}) as ChunkDoc["progress"])) {
    progress[phase as Phase] = { cursor: fromStoredCursor(p.cursor), examined: p.examined };
  }
  const lease = d.lease as ChunkDoc["lease"] | undefined;
  const bounds =
    typeof d.startMs === "number" && typeof d.endMs === "number"
      ? { startMs: d.startMs, endMs: d.endMs }
      : wholeDayChunk(id.slice(0, 10));
  return {
    id,
    startMs: bounds.startMs,
    endMs: bounds.endMs,
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
    lease: lease
      ? { owner: lease.owner, task: lease.task, attempt: lease.attempt, expiresAt: lease.expiresAt.toMillis() }
      : null,
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
export const HEAD_FIELDS = [
  "day",
  "startMs",
  "endMs",
  "status",
  "phase",
  "step",
  "upcoming",
  "budgets",
  "progress",
  "errorCursor",
  "pages",
  "generation",
  "crashes",
  "queued",
  "queuedAt",
  "attempts",
  "lease",
  "stoppedAtBudget",
  "pausedReason",
  "lastError",
  "total",
  "processed",
  "skipped",
  "errors",
  "startedAt",
  "finishedAt",
  "throughput",
  "pageInDoubt",
] as const;

export const headOf = (snap: QueryDocumentSnapshot): Versioned<Chunk> => {
  return { data: fromFields(snap.id, snap.data()), version: snap.updateTime };
};
