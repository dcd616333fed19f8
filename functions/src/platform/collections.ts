// Collection names and document shapes: the Firestore contract other tools and tests rely on.
import type { Firestore, Timestamp } from "firebase-admin/firestore";
import type { Step } from "../core/progress";
import type { ChunkStatus, Counters, Phase, RunStatus, RunType } from "../core/types";

export const COLLECTIONS = {
  products: "products",
  events: "webhookEvents",
  ledger: "ledgerEntries",
  wallets: "wallets",
  runs: "dataMigrations",
  flags: "featureFlags",
  idempotency: "idempotencyKeys",
} as const;

/** Subcollections of `dataMigrations/{id}`. */
export const RUN_SUBCOLLECTIONS = {
  chunks: "chunks",
  errors: "errors",
  /** A dry run's would-be ledger entries, so later events of the same dry run see them. */
  shadow: "shadowLedger",
  /** One record per committed page: what happened to each examined event (reports, auto-pause). */
  pages: "pages",
} as const;

export const KILL_SWITCH_DOC = "backfill";

/** `dataMigrations/{id}`. Counters mirror the sum of the chunks'. */
export interface RunDoc extends Counters {
  type: RunType;
  startDate: string;
  endDate: string;
  dryRun: boolean;
  maxEvents: number;
  status: RunStatus;
  /** The phase chunks are working on; a replay moves to `reversals` once every day's purchases are done. */
  phase: Phase;
  phases: Phase[];
  chunksTotal: number;
  chunksDone: number;
  chunksFailed: number;
  /** Events the run plans to examine (its progress denominator). */
  plannedEvents: number;
  /** Events in range that the run's selection matched when it was planned. */
  selectedEvents: number;
  /** True when maxEvents left selected events for a later run. */
  capReached: boolean;
  /** Error rate over the last 200 examined events above which the run pauses itself (1 = never). */
  maxErrorRate: number;
  /** Only pages committed after this moment count towards the auto-pause window (reset on resume). */
  windowSince: Timestamp | null;
  /** Set when the run paused itself: the rate it saw. */
  autoPause: { errorRate: number; window: number; threshold: number; at: Timestamp } | null;
  /** Retries requested (each re-runs failed chunks and errored events). */
  retries: number;
  /** When the run was started with lookbackDays, how many. */
  lookbackDays: number | null;
  requestedBy: string;
  createdAt: Timestamp;
  startedAt: Timestamp | null;
  finishedAt: Timestamp | null;
  updatedAt: Timestamp;
  pausedReason: string | null;
  failureReason: string | null;
}

/** Position after the last event a chunk has fully committed. */
export interface Cursor {
  createdAt: Timestamp;
  id: string;
}

/** `dataMigrations/{id}/chunks/{YYYY-MM-DD}`: one UTC day of the run. */
export interface ChunkDoc extends Counters {
  day: string;
  status: ChunkStatus;
  /** The current step's phase. */
  phase: Phase;
  /** The current step's kind. */
  step: Step["step"];
  /** Steps after the current one. */
  upcoming: Step[];
  /** Events this chunk may examine in each phase. */
  budgets: Partial<Record<Phase, number>>;
  /** Events examined so far in the current phase. */
  phaseExamined: number;
  cursor: Cursor | null;
  /** Position of an errors step: the last event id it re-examined. */
  errorCursor: string | null;
  /**
   * A replay's open refunds and chargebacks of the day, in scan order, remembered by its purchases scan so
   * the reversals step reads them directly; null when there were too many (the step queries instead).
   */
  reversalIds: string[] | null;
  /** Position of a reversals step working from `reversalIds`. */
  listCursor: number;
  pages: number;
  /** Bumped whenever the chunk is queued afresh (next phase, resume); part of its task names. */
  generation: number;
  /** Whether the task for the current phase and generation has been queued. */
  enqueued: boolean;
  /** Task deliveries that started work on this chunk. */
  attempts: number;
  /** The delivery working on the chunk now; others wait until it finishes or stops renewing. */
  lease: ChunkLease | null;
  /** True when the chunk stopped at its budget rather than at the end of its day. */
  stoppedAtBudget: boolean;
  pausedReason: string | null;
  lastError: string | null;
  startedAt: Timestamp | null;
  finishedAt: Timestamp | null;
  updatedAt: Timestamp;
}

export interface ChunkLease {
  /** A random id per delivery. */
  owner: string;
  /** The Cloud Tasks task name the delivery belongs to. */
  task: string;
  /** The delivery's retry count; a higher attempt of the same task takes over at once. */
  attempt: number;
  expiresAt: Timestamp;
}

/** `dataMigrations/{id}/errors/{eventId}`: an event that failed; `resolved` once a retry got past it. */
export interface EventErrorDoc {
  eventId: string;
  code: string;
  message: string;
  chunkId: string;
  phase: Phase;
  status: "open" | "resolved";
  /** How a retry settled it. */
  resolvedAs: "processed" | "skipped" | null;
  attempts: number;
  at: Timestamp;
}

/** One examined event in a page record: id, result (p/s/e) and the entry id, skip reason or error code. */
export interface PageOutcome {
  e: string;
  r: "p" | "s" | "e";
  x: string;
}

/**
 * Page outcomes travel as one string, a line per event ("eventId<TAB>p|s|e<TAB>detail"): one field is far
 * cheaper to store and index than an array of maps. A value holding a tab, newline or backslash is written
 * as a JSON string.
 */
export function encodeOutcomes(outcomes: readonly PageOutcome[]): string {
  return outcomes.map((o) => [o.e, o.r, o.x].map((v) => (/[\t\n\\]|^"/.test(v) ? JSON.stringify(v) : v)).join("\t")).join("\n");
}

export function decodeOutcomes(text: string): PageOutcome[] {
  if (!text) return [];
  return text.split("\n").map((line) => {
    const [e, r, x] = line.split("\t").map((v) => (v.startsWith('"') ? (JSON.parse(v) as string) : v));
    return { e: e as string, r: r as PageOutcome["r"], x: x as string };
  });
}

/** `dataMigrations/{id}/pages/{chunkId}-{n}`: the events one committed page examined. */
export interface PageDoc extends Counters {
  chunkId: string;
  phase: Phase;
  step: Step["step"];
  at: Timestamp;
  /** One letter per examined event, in page order: p(rocessed), s(kipped), e(rror). */
  bits: string;
  /** Documents the page wrote (ledger, wallets, event marks, error records, bookkeeping). */
  writes: number;
  /** Every examined event's outcome, encoded by `encodeOutcomes`. */
  outcomes: string;
}

export function refs(db: Firestore) {
  const runs = db.collection(COLLECTIONS.runs);
  return {
    run: (id: string) => runs.doc(id),
    runs,
    chunks: (runId: string) => runs.doc(runId).collection(RUN_SUBCOLLECTIONS.chunks),
    chunk: (runId: string, day: string) => runs.doc(runId).collection(RUN_SUBCOLLECTIONS.chunks).doc(day),
    errors: (runId: string) => runs.doc(runId).collection(RUN_SUBCOLLECTIONS.errors),
    shadow: (runId: string) => runs.doc(runId).collection(RUN_SUBCOLLECTIONS.shadow),
    pages: (runId: string) => runs.doc(runId).collection(RUN_SUBCOLLECTIONS.pages),
    events: db.collection(COLLECTIONS.events),
    ledger: db.collection(COLLECTIONS.ledger),
    wallets: db.collection(COLLECTIONS.wallets),
    products: db.collection(COLLECTIONS.products),
    killSwitch: db.collection(COLLECTIONS.flags).doc(KILL_SWITCH_DOC),
  };
}

export type Refs = ReturnType<typeof refs>;
