// Fixtures of the pure core's state machines: a chunk and a run with every field at its empty value, the
// leases a chunk can be found holding, and a page result. Shared by test/unit/core/chunk*.test.ts,
// nextMove.test.ts, run.test.ts and watchdog.test.ts; written from the documents' fields, not from the code.
import type { Chunk, Holder } from "../../functions/src/core/chunk";
import type { PageResult } from "../../functions/src/core/chunkTransitions";
import { positionKey } from "../../functions/src/core/chunk";
import type { Phase, ChunkStatus } from "../../functions/src/core/types";
import type { Run } from "../../functions/src/core/run";

/** The chunk state machine's clock. */
export const NOW = 1_000_000;
/** 2025-01-02 as a whole-day chunk. */
export const D = { id: "2025-01-02", startMs: Date.UTC(2025, 0, 2), endMs: Date.UTC(2025, 0, 3) };
export const LEASE = 120_000;
/** The delivery the transitions are asked for. */
export const me: Holder = { owner: "me", task: "task-a", attempt: 1 };

/** A running chunk in its purchases scan, reversals next, budgets 10 and 5, nothing done yet. */
export function chunk(over: Partial<Chunk> = {}): Chunk {
  return {
    id: "2025-01-02",
    startMs: Date.UTC(2025, 0, 2),
    endMs: Date.UTC(2025, 0, 3),
    status: "running",
    step: { phase: "purchases", step: "scan" },
    upcoming: [{ phase: "reversals", step: "scan" }],
    budgets: { purchases: 10, reversals: 5 },
    progress: {},
    errorCursor: null,
    pages: 0,
    generation: 0,
    crashes: 0,
    queued: null,
    queuedAt: null,
    attempts: 0,
    lease: null,
    stoppedAtBudget: false,
    pausedReason: null,
    lastError: null,
    total: 0,
    processed: 0,
    skipped: 0,
    errors: 0,
    startedAt: null,
    finishedAt: null,
    throughput: null,
    pageInDoubt: false,
    ...over,
  };
}

/** Every lease a chunk can be found holding, as seen by `me` at `NOW`. */
export const leases = {
  none: null,
  mine: { ...me, expiresAt: NOW + 1 },
  otherTaskLive: { owner: "x", task: "task-b", attempt: 0, expiresAt: NOW + 1 },
  sameTaskEarlierLive: { owner: "x", task: "task-a", attempt: 0, expiresAt: NOW + 1 },
  sameTaskSameAttemptLive: { owner: "x", task: "task-a", attempt: 1, expiresAt: NOW + 1 },
  sameTaskLaterLive: { owner: "x", task: "task-a", attempt: 2, expiresAt: NOW + 1 },
  otherTaskExpired: { owner: "x", task: "task-b", attempt: 0, expiresAt: NOW },
} as const;
export type LeaseName = keyof typeof leases;
export const LEASE_NAMES = Object.keys(leases) as LeaseName[];

/** What a delivery's page of `c` did: 3 events examined from its position, 2 processed and 1 skipped. */
export function page(c: Chunk, over: Partial<PageResult> = {}): PageResult {
  return {
    from: positionKey(c),
    outcomes: { total: 3, processed: 2, skipped: 1, errors: 0 },
    examined: 3,
    cursor: { seconds: 10, nanos: 5, id: "e3" },
    errorCursor: null,
    stepDone: false,
    stoppedAtBudget: false,
    ...over,
  };
}

/** The run state machine's and the watchdog's clock. */
export const RUN_NOW = 5_000_000;

/** A real replay of three days, running its purchases phase with two chunks, nothing counted yet. */
export function run(over: Partial<Run> = {}): Run {
  return {
    id: "webhook_replay_1",
    type: "webhook_replay",
    startDate: "2025-01-01",
    endDate: "2025-01-03",
    dryRun: false,
    maxEvents: 1000,
    unmarkedEvents: 0,
    status: "running",
    phase: "purchases",
    phases: ["purchases", "reversals"],
    total: 0,
    processed: 0,
    skipped: 0,
    errors: 0,
    chunksTotal: 2,
    chunksDone: 0,
    chunksFailed: 0,
    plannedEvents: 10,
    selectedEvents: 10,
    capReached: false,
    maxErrorRate: 0.05,
    maxEventsPerSecond: null,
    windowSince: null,
    autoPause: null,
    retries: 0,
    lookbackDays: null,
    userIds: null,
    planOf: null,
    estimatedSeconds: 0,
    requestedBy: "op@example.com",
    requestedBySub: "op",
    createdAt: 1,
    startedAt: 2,
    finishedAt: null,
    pausedReason: null,
    failureReason: null,
    ...over,
  };
}

/** A chunk of a run as bookkeeping sees it: its id, status and phase, queued at `RUN_NOW`. */
export function head(id: string, status: ChunkStatus, phase: Phase = "purchases", over: Partial<Chunk> = {}): Chunk {
  return chunk({
    id,
    startMs: 0,
    endMs: 86_400_000,
    status,
    step: { phase, step: "scan" },
    upcoming: [],
    budgets: {},
    queued: 0,
    queuedAt: RUN_NOW,
    ...over,
  });
}
