// The only code that writes run documents (`dataMigrations/{runId}`). Every change is a transition of
// core/run.ts, written only if the document is still the version the transition was decided on.
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
import type { AutoPause, Run } from "../core/run";
import type { Phase, RunStatus, RunType } from "../core/types";
import { COLLECTIONS, RUN_SUBCOLLECTIONS } from "../platform/collections";
import { Conflict, readDecideWrite, writtenIfUnchanged, type Versioned } from "../platform/firestore";

type TimeField = "windowSince" | "startedAt" | "finishedAt";

/** `dataMigrations/{runId}` as stored: the run without its id, its times as Timestamps (the wire name of a run is a data migration). */
export type RunDoc = Omit<Run, "id" | TimeField | "createdAt" | "autoPause" | "unmarkedEvents"> & {
  [K in TimeField]: Timestamp | null;
} & {
  createdAt: Timestamp;
  updatedAt: Timestamp;
  autoPause: (Omit<AutoPause, "at"> & { at: Timestamp }) | null;
  /** Absent on runs from before the field. */
  unmarkedEvents?: number | null;
};

const TIME_FIELDS = new Set(["windowSince", "startedAt", "finishedAt", "createdAt"]);
const ms = (t: unknown) => (t instanceof Timestamp ? t.toMillis() : null);

function toFields(run: Partial<Run>): DocumentData {
  const out: DocumentData = {};
  for (const [key, value] of Object.entries(run)) {
    if (key === "id") continue;
    if (TIME_FIELDS.has(key)) out[key] = value === null ? null : Timestamp.fromMillis(value as number);
    else if (key === "autoPause") {
      const a = value as AutoPause | null;
      out.autoPause = a ? { ...a, at: Timestamp.fromMillis(a.at) } : null;
    } else out[key] = value;
  }
  return out;
}

export function runFromFields(id: string, d: DocumentData): Run {
  const auto = d.autoPause as RunDoc["autoPause"] | undefined;
  return {
    id,
    type: d.type as RunType,
    startDate: d.startDate as string,
    endDate: d.endDate as string,
    dryRun: d.dryRun === true,
    maxEvents: d.maxEvents as number,
    status: d.status as RunStatus,
    phase: d.phase as Phase,
    phases: d.phases as Phase[],
    total: (d.total ?? 0) as number,
    processed: (d.processed ?? 0) as number,
    skipped: (d.skipped ?? 0) as number,
    errors: (d.errors ?? 0) as number,
    chunksTotal: (d.chunksTotal ?? 0) as number,
    chunksDone: (d.chunksDone ?? 0) as number,
    chunksFailed: (d.chunksFailed ?? 0) as number,
    plannedEvents: (d.plannedEvents ?? 0) as number,
    selectedEvents: (d.selectedEvents ?? 0) as number,
    capReached: d.capReached === true,
    unmarkedEvents: typeof d.unmarkedEvents === "number" ? d.unmarkedEvents : null,
    retryAdmittedAt: typeof d.retryAdmittedAt === "number" ? d.retryAdmittedAt : null,
    draining: d.draining === true,
    maxErrorRate: (d.maxErrorRate ?? 1) as number,
    maxEventsPerSecond: typeof d.maxEventsPerSecond === "number" ? d.maxEventsPerSecond : null,
    windowSince: ms(d.windowSince),
    autoPause: auto
      ? { errorRate: auto.errorRate, window: auto.window, threshold: auto.threshold, at: auto.at.toMillis() }
      : null,
    retries: (d.retries ?? 0) as number,
    lookbackDays: (d.lookbackDays ?? null) as number | null,
    userIds: Array.isArray(d.userIds) ? (d.userIds as string[]) : null,
    planOf: (d.planOf ?? null) as string | null,
    estimatedSeconds: (d.estimatedSeconds ?? 0) as number,
    requestedBy: (d.requestedBy ?? "") as string,
    requestedBySub: (d.requestedBySub ?? "") as string,
    createdAt: ms(d.createdAt),
    startedAt: ms(d.startedAt),
    finishedAt: ms(d.finishedAt),
    pausedReason: (d.pausedReason ?? null) as string | null,
    failureReason: (d.failureReason ?? null) as string | null,
  };
}

export const runConverter: FirestoreDataConverter<Run, DocumentData> = {
  // A new run's createdAt is the server's clock at the moment the batch that creates it commits.
  toFirestore: (run) => ({
    ...toFields(run as Run),
    createdAt: FieldValue.serverTimestamp(),
    updatedAt: FieldValue.serverTimestamp(),
  }),
  fromFirestore: (snap: QueryDocumentSnapshot) => runFromFields(snap.id, snap.data()),
};

const CONFLICT_ATTEMPTS = 21;

export function runStore(db: Firestore) {
  const collection = () => db.collection(COLLECTIONS.runs).withConverter(runConverter);
  const ref = (runId: string) => collection().doc(runId);
  const versioned = (snap: DocumentSnapshot<Run>): Versioned<Run> | null =>
    snap.exists ? { data: snap.data() as Run, version: snap.updateTime as Timestamp } : null;

  function write(runId: string, version: Timestamp, update: Partial<Run>): Promise<boolean> {
    const fields = { ...toFields(update), updatedAt: FieldValue.serverTimestamp() };
    return writtenIfUnchanged(() =>
      db.collection(COLLECTIONS.runs).doc(runId).update(fields, { lastUpdateTime: version }),
    );
  }

  return {
    ref,
    /** The run's plain reference, for reading it together with other documents in one getAll. */
    doc: (runId: string) => db.collection(COLLECTIONS.runs).doc(runId),
    collection,
    async get(runId: string): Promise<Versioned<Run> | null> {
      return versioned(await ref(runId).get());
    },
    /** A run from a snapshot read elsewhere (a getAll together with its chunk). */
    fromSnapshot(snap: DocumentSnapshot | undefined): Versioned<Run> | null {
      return snap?.exists
        ? { data: runFromFields(snap.id, snap.data() as DocumentData), version: snap.updateTime as Timestamp }
        : null;
    },
    create(batch: WriteBatch, run: Run): void {
      batch.create(ref(run.id), run);
    },
    /** Adds to the admission's batch the mark that a retry of the ended run was admitted at `at`. */
    markRetryAdmitted(batch: WriteBatch, runId: string, at: number): void {
      batch.update(db.collection(COLLECTIONS.runs).doc(runId), {
        retryAdmittedAt: at,
        updatedAt: FieldValue.serverTimestamp(),
      });
    },
    /** Records an operator's control call on the run (`dataMigrations/{id}/actions/{auto}`): who, what, and what came of it. */
    async recordAction(
      runId: string,
      action: { action: string; outcome: string; statusBefore: string; email: string; sub: string },
    ): Promise<void> {
      await db
        .collection(COLLECTIONS.runs)
        .doc(runId)
        .collection(RUN_SUBCOLLECTIONS.actions)
        .add({ ...action, at: FieldValue.serverTimestamp() });
    },
    /** Writes `update` only if the run is still at `version`. */
    write,
    /** Read, decide, write if unchanged; on a conflict read and decide again. */
    async apply<R>(
      runId: string,
      decide: (run: Run | null) => { result: R; update: Partial<Run> | null },
    ): Promise<{ result: R; run: Run | null; written: boolean }> {
      return readDecideWrite(`run ${runId}`, async () => {
        const read = versioned(await ref(runId).get());
        const { result, update } = decide(read?.data ?? null);
        if (!update || !read) return { result, run: read?.data ?? null, written: false };
        if (await write(runId, read.version, update))
          return { result, run: { ...read.data, ...update }, written: true };
        return new Conflict(CONFLICT_ATTEMPTS);
      });
    },
  };
}

export type RunStore = ReturnType<typeof runStore>;
