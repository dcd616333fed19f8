// A chunk's transitions by its deliveries (core/chunk.ts says what a chunk is): claim, commit a page,
// release, settle. What its run, its operators and the watchdog do to it is core/chunkControl.ts. Each
// takes the chunk as read and returns what to write, or nothing.
import { addThroughput } from "./estimate";
import { addCounters, type ChunkStatus, type Counters } from "./types";
import {
  afterStep,
  leaseLive,
  pageDelta,
  progressOf,
  positionKey,
  type Chunk,
  type ChunkPosition,
  type ChunkTransition,
  type Holder,
  type Cursor,
} from "./chunk";

export type ClaimResult =
  /** `inherited`: the chunk had a lease before (its holder may have left a page half applied). */
  | { kind: "claimed"; inherited: boolean }
  /** A live lease of an earlier or concurrent delivery of the same task: wait for it. */
  | { kind: "busy" }
  /** A live lease of another task's delivery: that task answers for the chunk. */
  | { kind: "taken" }
  /** Nothing to work on. */
  | { kind: "inactive" };

/**
 * Takes the chunk's lease for a delivery. A live lease of another delivery means "busy" (same task) or
 * "taken" (another task), unless it belongs to an earlier attempt of the same task: Cloud Tasks retries
 * only an attempt it has given up on, so the retry takes over at once.
 */
export function claim(c: Chunk, me: Holder, now: number, leaseMs: number): ChunkTransition<ClaimResult> {
  if (c.status !== "pending" && c.status !== "running") return { result: { kind: "inactive" }, update: null };
  const lease = c.lease;
  if (leaseLive(lease, now) && lease.owner !== me.owner) {
    if (lease.task !== me.task) return { result: { kind: "taken" }, update: null };
    if (lease.attempt >= me.attempt) return { result: { kind: "busy" }, update: null };
  }
  return {
    result: { kind: "claimed", inherited: lease !== null && lease.owner !== me.owner },
    update: {
      status: "running",
      lease: { ...me, expiresAt: now + leaseMs },
      attempts: c.attempts + 1,
      startedAt: c.startedAt ?? now,
      pausedReason: null,
      pageInDoubt: false,
    },
  };
}

/** What one page examined and where the step stands after it. */
export interface PageResult {
  /** `positionKey` of the chunk the page was planned from. */
  from: string;
  /** The page's outcomes, counted. */
  outcomes: Counters;
  /** Events a scan examined (what its budget is charged); 0 for an errors step. */
  examined: number;
  /** The scan's position after the page. */
  cursor: Cursor | null;
  /** The errors step's position after the page. */
  errorCursor: string | null;
  /** The step has nothing after this page. */
  stepDone: boolean;
  /** The scan stopped because its budget ran out, not at the end of the day. */
  stoppedAtBudget: boolean;
}

export type CommitResult =
  | { kind: "conflict" }
  | {
      kind: "committed";
      page: number;
      status: ChunkStatus;
      counters: Counters;
      stoppedAtBudget: boolean;
      stepDone: boolean;
    };

/**
 * Records a page: counters, position, and where the chunk goes when the page ends its step. Accepted only
 * from the position the page was planned from (else someone else committed it: a conflict), whoever
 * applied it: a page its holder finished after losing its lease or after the chunk was stopped still
 * counts, exactly once, so every entry a run writes is counted by that run.
 */
export function commitPage(
  c: Chunk,
  page: PageResult,
  me: Holder,
  now: number,
  leaseMs: number,
): ChunkTransition<CommitResult> {
  if (positionKey(c) !== page.from) return { result: { kind: "conflict" }, update: null };
  const phase = c.step.phase;
  const delta = pageDelta(c.step.step, page.outcomes);
  const before = progressOf(c, phase);
  const scanning = c.step.step === "scan";
  const progress: Chunk["progress"] = {
    ...c.progress,
    [phase]: scanning ? { cursor: page.cursor, examined: before.examined + page.examined } : before,
  };
  const update: Partial<Chunk> = {
    ...addCounters(c, delta),
    pages: c.pages + 1,
    progress,
    ...(page.outcomes.total > 0 ? { throughput: addThroughput(c.throughput, now, page.outcomes.total) } : {}),
    errorCursor: scanning ? c.errorCursor : page.errorCursor,
  };
  if (c.lease?.owner === me.owner) update.lease = { ...me, expiresAt: now + leaseMs };

  let status = c.status;
  const stoppedAtBudget = c.stoppedAtBudget || page.stoppedAtBudget;
  if (page.stepDone) {
    const next = afterStep(c.step, c.upcoming);
    status = statusAfterStep(c.status, next.status);
    Object.assign(update, { stoppedAtBudget, step: next.current, upcoming: next.upcoming, errorCursor: null });
    if (status === "done" || status === "waiting") update.lease = null;
    if (status === "waiting") update.queued = null;
    if (status === "done" && c.status !== "done") update.finishedAt = now;
    if (status !== c.status) update.status = status;
  }
  const counters = addCounters(c, delta);
  return {
    result: { kind: "committed", page: c.pages + 1, status, counters, stoppedAtBudget, stepDone: page.stepDone },
    update,
  };
}

/** The status a chunk takes when a step ends: a working chunk moves on; a stopped one stays stopped unless nothing is left. */
function statusAfterStep(current: ChunkStatus, next: ChunkPosition["status"]): ChunkStatus {
  if (current === "cancelled") return "cancelled";
  if (next === "done") return "done";
  if (current === "running") return next;
  if (current === "pending") return next === "running" ? "pending" : next;
  return current;
}

/** Lets go of the chunk so a continuation task can take it; true when this delivery held it. */
export function release(c: Chunk, me: Holder, now: number): ChunkTransition<boolean> {
  if (c.lease?.owner !== me.owner) return { result: false, update: null };
  return { result: true, update: { lease: null, queued: c.generation, queuedAt: now } };
}

export type SettleResult =
  /** The chunk stopped. */
  | "settled"
  /** Another delivery is working on it and stops it at its next page boundary. */
  | "held"
  /** A delivery that stopped renewing its lease may have left a page half applied: finish that page first. */
  | "drain"
  /** Nothing to stop. */
  | "unchanged";

/**
 * Stops a chunk that is due or being worked on: paused (the run is paused or the kill switch is off) or
 * cancelled. A chunk that another live delivery holds is left to that delivery. A cancelled chunk is
 * final, so one whose last holder vanished mid-page is drained first (its page finished and counted); a
 * paused one is not, because resume repeats that page and counts it then.
 */
export function settle(
  c: Chunk,
  to: "paused" | "cancelled",
  reason: string | null,
  me: Holder | null,
  now: number,
): ChunkTransition<SettleResult> {
  const from: readonly ChunkStatus[] =
    to === "paused" ? ["pending", "running"] : ["pending", "running", "waiting", "paused"];
  if (!from.includes(c.status)) return { result: "unchanged", update: null };
  // This delivery's own lease (it stops between pages), or one an earlier attempt of its task left (Cloud
  // Tasks gave up on that one, which may have stopped mid-page).
  const own = me !== null && c.lease !== null && c.lease.owner === me.owner;
  const inherited = me !== null && c.lease !== null && !own && c.lease.task === me.task && c.lease.attempt < me.attempt;
  if (!own && !inherited && leaseLive(c.lease, now)) return { result: "held", update: null };
  // Any lease but this delivery's own may have been left mid-page by a delivery that vanished.
  const inDoubt = c.pageInDoubt || (c.lease !== null && !own);
  if (to === "cancelled" && inDoubt) return { result: "drain", update: null };
  return {
    result: "settled",
    update: {
      status: to,
      lease: null,
      queued: null,
      pausedReason: to === "paused" ? reason : c.pausedReason,
      ...(to === "cancelled" ? { finishedAt: now } : { pageInDoubt: inDoubt }),
    },
  };
}
