// The life of one chunk (a UTC day of a run, or a shard of a busy day), as a pure state machine. Every change to a chunk is one of
// the transitions below: it takes the chunk as read and returns what to write, or nothing. The store
// (chunks/store.ts) writes that update only if the chunk is still the version the decision was made on,
// so a decision is never applied to a chunk it was not made for.
//
//   pending ──claim──▶ running ──page committed──▶ running … ──step finished──▶ running | waiting | done
//      ▲                  │  ╲
//      │ resume      settle│   ╲ fail (out of attempts)
//      │                  ▼    ▼
//   paused ◀── settle ── (pending|running)        failed ──retry──▶ waiting ──phase opened──▶ pending
//   waiting ──phase opened──▶ pending            done (open errors) ──retry──▶ waiting
//   any unfinished ──cancel──▶ cancelled   (a chunk whose holder may be mid-page is drained first)
import { addThroughput, type ThroughputBuckets } from "./estimate";
import type { Span } from "./shards";
import { addCounters, type ChunkStatus, type Counters, type Phase } from "./types";

/**
 * One piece of a chunk's work: `scan` reads the day's events of a phase from that phase's cursor; `errors`
 * re-examines the events of that phase that ended in an error (a retry).
 */
export interface Step {
  phase: Phase;
  step: "scan" | "errors";
}

/** Position after the last event a scan has committed: the event's `createdAt` and document id. */
export interface Cursor {
  seconds: number;
  nanos: number;
  id: string;
}

/** Where a phase's scan stands. Each phase has its own, so going back to an earlier phase loses nothing. */
export interface PhaseProgress {
  /** After the last event the scan committed. */
  cursor: Cursor | null;
  /** Events the phase's scans have examined: what its budget is measured against. */
  examined: number;
}

export const NO_PROGRESS: PhaseProgress = Object.freeze({ cursor: null, examined: 0 });

/** Identity of one delivery. */
export interface Holder {
  /** A random id per delivery. */
  owner: string;
  /** The Cloud Tasks task the delivery belongs to. */
  task: string;
  /** The delivery's retry count; a higher attempt of the same task takes over at once. */
  attempt: number;
}

/** The delivery working on a chunk now; others leave it alone until it finishes or stops renewing. */
export interface Lease extends Holder {
  /** Epoch milliseconds. */
  expiresAt: number;
}

/** A chunk as the rules see it (`dataMigrations/{id}/chunks/{id}`). Times are epoch milliseconds. */
export interface Chunk extends Counters {
  /** The day (`YYYY-MM-DD`), or a shard of it (`YYYY-MM-DD~NNNN`). */
  id: string;
  /** The span of event time the chunk covers: [startMs, endMs). */
  startMs: number;
  endMs: number;
  status: ChunkStatus;
  /** The current step. */
  step: Step;
  /** Steps after the current one. */
  upcoming: Step[];
  /** Events the chunk may examine in each phase. */
  budgets: Partial<Record<Phase, number>>;
  /** Each phase's scan position. */
  progress: Partial<Record<Phase, PhaseProgress>>;
  /** Position of an errors step: the last event id it re-examined. */
  errorCursor: string | null;
  /** Pages committed so far; every commit adds one, so it also versions the chunk's position. */
  pages: number;
  /** Bumped whenever the chunk needs a fresh task (resume, retry, a stalled task); part of task names. */
  generation: number;
  /**
   * How many times in a row the watchdog queued a new task because a delivery vanished holding the chunk
   * (its lease expired: a crash, an out-of-memory kill). Reset by a retry. Past WATCHDOG_MAX_CRASHES the
   * chunk fails instead of being queued forever.
   */
  crashes: number;
  /** The generation whose task has been queued, if any. */
  queued: number | null;
  /** When that task was queued, or the chunk handed over to a continuation task. */
  queuedAt: number | null;
  /** Deliveries that claimed the chunk. */
  attempts: number;
  lease: Lease | null;
  /** True when a scan stopped at its budget rather than at the end of its day. */
  stoppedAtBudget: boolean;
  pausedReason: string | null;
  lastError: string | null;
  startedAt: number | null;
  finishedAt: number | null;
  /** Events examined over time, for the run page's chart and ETA (core/estimate.ts). */
  throughput: ThroughputBuckets | null;
  /**
   * The chunk was stopped while a delivery other than the one stopping it held it: that delivery may have
   * committed part of a page and vanished. A resume repeats the page (and counts it); a cancel drains it
   * first. Cleared when a delivery claims the chunk.
   */
  pageInDoubt: boolean;
}

/** What bookkeeping reads when it looks at every chunk of a run. */
export type ChunkHead = Chunk;

/** What a transition decided, and what to write (null: nothing). */
export interface ChunkTransition<R> {
  result: R;
  update: Partial<Chunk> | null;
}

const FINISHED: readonly ChunkStatus[] = ["done", "failed", "cancelled"];

export function isFinishedChunk(status: ChunkStatus): boolean {
  return FINISHED.includes(status);
}

const progressOf = (c: Pick<Chunk, "progress">, phase: Phase): PhaseProgress => c.progress[phase] ?? NO_PROGRESS;

const leaseLive = (lease: Lease | null, now: number): lease is Lease => lease !== null && lease.expiresAt > now;

// ───────────────────────────── steps ─────────────────────────────

/** The scan steps of a new chunk: every phase with budget, in phase order. */
export function initialSteps(budgets: Partial<Record<Phase, number>>, phases: readonly Phase[]): Step[] {
  return phases.filter((p) => (budgets[p] ?? 0) > 0).map((phase) => ({ phase, step: "scan" }));
}

/** A chunk's place after a step: its status, its current step and the steps after it. */
export interface ChunkPosition {
  status: "pending" | "running" | "waiting" | "done";
  current: Step;
  upcoming: Step[];
}

/** Where a chunk with `steps` to do stands while the run is in `runPhase`. */
export function positionFor(steps: readonly Step[], runPhase: Phase, phases: readonly Phase[]): ChunkPosition {
  const [current, ...upcoming] = steps;
  if (!current) return { status: "done", current: { phase: phases[phases.length - 1] as Phase, step: "scan" }, upcoming: [] };
  return { status: current.phase === runPhase ? "pending" : "waiting", current, upcoming };
}

/** After a step: the next step of the same phase runs on at once; a later phase waits; nothing left is done. */
export function afterStep(finished: Step, upcoming: readonly Step[]): ChunkPosition {
  const [next, ...rest] = upcoming;
  if (!next) return { status: "done", current: finished, upcoming: [] };
  return { status: next.phase === finished.phase ? "running" : "waiting", current: next, upcoming: rest };
}

/**
 * The steps a retry gives a chunk: what it had left (a failed chunk resumes its step where it stopped),
 * plus an errors pass for every phase where it has open errors, each phase's steps in phase order.
 */
export function retrySteps(remaining: readonly Step[], errorPhases: readonly Phase[], phases: readonly Phase[]): Step[] {
  const steps: Step[] = [];
  for (const phase of phases) {
    const own = remaining.filter((s) => s.phase === phase);
    steps.push(...own);
    if (errorPhases.includes(phase) && !own.some((s) => s.step === "errors")) steps.push({ phase, step: "errors" });
  }
  return steps;
}

/** The phase after `current`, if any. */
export function nextPhase(current: Phase, phases: readonly Phase[]): Phase | undefined {
  const i = phases.indexOf(current);
  return i < 0 ? undefined : phases[i + 1];
}

/** How a page changes a chunk's counters: a scan adds its events; an errors pass replaces their old error. */
export function pageDelta(step: Step["step"], outcomes: Counters): Counters {
  if (step === "scan") return outcomes;
  return { total: 0, processed: outcomes.processed, skipped: outcomes.skipped, errors: outcomes.errors - outcomes.total };
}

// ───────────────────────────── creation ─────────────────────────────

/** A new chunk: a scan step for every phase it has budget in. */
export function newChunk(span: Span, budgets: Partial<Record<Phase, number>>, run: { phases: readonly Phase[] }, now: number): Chunk {
  const position = positionFor(initialSteps(budgets, run.phases), run.phases[0] as Phase, run.phases);
  return {
    id: span.id,
    startMs: span.startMs,
    endMs: span.endMs,
    status: position.status,
    step: position.current,
    upcoming: position.upcoming,
    budgets,
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
    finishedAt: position.status === "done" ? now : null,
    throughput: null,
    pageInDoubt: false,
  };
}

/**
 * Everything a page's result depends on. A page is committed only if the chunk still has the position it
 * was planned from, so each page is counted once, whoever applied it.
 */
export function positionKey(c: Pick<Chunk, "step" | "pages" | "errorCursor" | "progress">): string {
  const p = progressOf(c, c.step.phase);
  const cursor = p.cursor ? `${p.cursor.seconds}.${p.cursor.nanos}/${p.cursor.id}` : "-";
  return [c.step.phase, c.step.step, c.pages, c.errorCursor ?? "-", cursor, p.examined].join("|");
}

// ───────────────────────────── deliveries ─────────────────────────────

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
export function claim(c: ChunkHead, me: Holder, now: number, leaseMs: number): ChunkTransition<ClaimResult> {
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
  /** Events a scan examined (what its budget is charged); 0 for an errors pass. */
  examined: number;
  /** The scan's position after the page. */
  cursor: Cursor | null;
  /** The errors pass's position after the page. */
  errorCursor: string | null;
  /** The step has nothing after this page. */
  stepDone: boolean;
  /** The scan stopped because its budget ran out, not at the end of the day. */
  stoppedAtBudget: boolean;
}

export type CommitResult =
  | { kind: "conflict" }
  | { kind: "committed"; page: number; status: ChunkStatus; counters: Counters; stoppedAtBudget: boolean; stepDone: boolean };

/**
 * Records a page: counters, position, and where the chunk goes when the page ends its step. Accepted only
 * from the position the page was planned from (else someone else committed it: a conflict), whoever
 * applied it: a page its holder finished after losing its lease or after the chunk was stopped still
 * counts, exactly once, so every entry a run writes is counted by that run.
 */
export function commitPage(c: Chunk, page: PageResult, me: Holder, now: number, leaseMs: number): ChunkTransition<CommitResult> {
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
  return { result: { kind: "committed", page: c.pages + 1, status, counters, stoppedAtBudget, stepDone: page.stepDone }, update };
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
export function release(c: ChunkHead, me: Holder, now: number): ChunkTransition<boolean> {
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
export function settle(c: ChunkHead, to: "paused" | "cancelled", reason: string | null, me: Holder | null, now: number): ChunkTransition<SettleResult> {
  const from: readonly ChunkStatus[] = to === "paused" ? ["pending", "running"] : ["pending", "running", "waiting", "paused"];
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

/** A paused chunk continues from its checkpoints under a new task generation: due now, or when its phase opens. */
export function resumeChunk(c: ChunkHead, runPhase: Phase): ChunkTransition<boolean> {
  if (c.status !== "paused") return { result: false, update: null };
  return {
    result: true,
    update: {
      status: c.step.phase === runPhase ? "pending" : "waiting",
      pausedReason: null,
      generation: c.generation + 1,
      queued: null,
      queuedAt: null,
    },
  };
}

/** A chunk that finished an earlier phase becomes due when the run reaches its phase. */
export function wake(c: ChunkHead, runPhase: Phase): ChunkTransition<boolean> {
  if (c.status !== "waiting" || c.step.phase !== runPhase) return { result: false, update: null };
  return { result: true, update: { status: "pending", queued: null, queuedAt: null } };
}

/** Records that the task of `generation` is queued; a chunk that moved on to a newer generation keeps its own. */
export function markQueued(c: Pick<ChunkHead, "generation" | "queued" | "status">, generation: number, now: number): ChunkTransition<boolean> {
  if (c.generation !== generation || c.queued === generation || isFinishedChunk(c.status)) return { result: false, update: null };
  return { result: true, update: { queued: generation, queuedAt: now } };
}

/**
 * Gives a stalled chunk a new task generation (its lease expired with nobody renewing it, or its queued
 * task never started). Its status and lease stay: the new task's delivery claims the expired lease and
 * carries on from the checkpoint. Deliveries of older generations then leave the chunk alone.
 */
export function requeue(c: ChunkHead, crashed = false): ChunkTransition<boolean> {
  if (isFinishedChunk(c.status) || c.status === "waiting" || c.status === "paused") return { result: false, update: null };
  return { result: true, update: { generation: c.generation + 1, queued: null, queuedAt: null, ...(crashed ? { crashes: c.crashes + 1 } : {}) } };
}

/** Keeps a delivery's failure on an unfinished chunk, for operators; the delivery is retried anyway. */
export function noteError(c: ChunkHead, error: string): ChunkTransition<boolean> {
  if (isFinishedChunk(c.status) || c.lastError === error) return { result: false, update: null };
  return { result: true, update: { lastError: error } };
}

/**
 * The chunk ran out of delivery attempts — unless the delivery that says so is stale: its task was queued
 * for an older generation (the watchdog has queued a newer task since), or another task's delivery holds a
 * live lease on the chunk. Either way a live delivery is working on the chunk, and answers for it.
 */
export function fail(c: ChunkHead, error: string, now: number, by: { task: string; generation: number | null }): ChunkTransition<boolean> {
  if (c.status !== "pending" && c.status !== "running") return { result: false, update: null };
  if (by.generation !== null && by.generation < c.generation) return { result: false, update: null };
  if (leaseLive(c.lease, now) && c.lease.task !== by.task) return { result: false, update: null };
  return { result: true, update: { status: "failed", lastError: error, lease: null, queued: null, finishedAt: now } };
}

/**
 * A retry of the run: a failed chunk continues its unfinished steps from where each phase stopped, and
 * every chunk with open errors gets an errors pass per phase. The chunk waits until the run's phase
 * reaches its first step.
 */
export function retryChunk(c: ChunkHead, errorPhases: readonly Phase[], phases: readonly Phase[]): ChunkTransition<boolean> {
  if (c.status !== "failed" && c.status !== "done") return { result: false, update: null };
  const remaining: Step[] = c.status === "failed" ? [c.step, ...c.upcoming] : [];
  const [first, ...upcoming] = retrySteps(remaining, errorPhases, phases);
  if (!first) return { result: false, update: null };
  const samePosition = c.status === "failed" && first.phase === c.step.phase && first.step === c.step.step;
  return {
    result: true,
    update: {
      status: "waiting",
      step: first,
      upcoming,
      errorCursor: samePosition ? c.errorCursor : null,
      generation: c.generation + 1,
      crashes: 0,
      queued: null,
      queuedAt: null,
      lease: null,
      lastError: null,
      finishedAt: null,
    },
  };
}

export type CancelResult = "cancelled" | "held" | "drain" | "unchanged";

/**
 * Cancels a chunk that is not finished. One being worked on is left to its holder, which stops at its
 * next page boundary; one whose holder vanished gets a new task generation that finishes the page in
 * flight and then cancels it (see `settle`).
 */
export function cancelChunk(c: ChunkHead, now: number): ChunkTransition<CancelResult> {
  const settled = settle(c, "cancelled", null, null, now);
  if (settled.result === "drain") {
    // A paused chunk in doubt becomes due again, under a new task generation, only to be drained.
    const fresh = c.status === "paused" ? { update: { status: "pending" as const, pausedReason: null, generation: c.generation + 1, queued: null, queuedAt: null } } : requeue(c);
    return { result: "drain", update: fresh.update };
  }
  if (settled.result === "settled") return { result: "cancelled", update: settled.update };
  return { result: settled.result, update: null };
}

// ───────────────────────────── a delivery's next move ─────────────────────────────

/** What a delivery knows at a page boundary. */
export interface DeliveryView {
  run: { status: "pending" | "running" | "paused" | "completed" | "failed" | "cancelled"; pausedReason: string | null } | null;
  killSwitchOn: boolean;
  chunk: Chunk | null;
  me: Holder;
  /** This delivery claimed the chunk. */
  holding: boolean;
  /** The task generation the delivery was queued for (null: any). */
  generation: number | null;
  /** This delivery claimed a stopped chunk to finish the page its vanished holder left in flight. */
  draining: boolean;
  /** …and has committed that page. */
  drained: boolean;
  /** Pages this delivery committed on the chunk. */
  pages: number;
  /** The delivery's time slice is used up. */
  sliceOver: boolean;
}

export type Move =
  | { kind: "exit"; why: "missing" | "run_finished" | "taken_over" | "inactive" | "superseded" }
  | { kind: "settle"; to: "paused" | "cancelled"; reason: string; drainAllowed: boolean }
  | { kind: "claim" }
  | { kind: "page" }
  | { kind: "handoff" };

/** The next thing a delivery does with its chunk, checked afresh at every page boundary. */
export function nextMove(v: DeliveryView): Move {
  const { run, chunk } = v;
  if (!run || !chunk) return { kind: "exit", why: "missing" };
  if (run.status === "completed" || run.status === "failed") return { kind: "exit", why: "run_finished" };
  if (v.holding && chunk.lease?.owner !== v.me.owner) return { kind: "exit", why: "taken_over" };
  if (run.status === "cancelled") {
    if (v.draining && !v.drained) return { kind: "page" };
    return { kind: "settle", to: "cancelled", reason: "run_cancelled", drainAllowed: v.killSwitchOn };
  }
  if (!v.killSwitchOn) return { kind: "settle", to: "paused", reason: "kill_switch", drainAllowed: false };
  if (run.status === "paused") return { kind: "settle", to: "paused", reason: run.pausedReason ?? "paused", drainAllowed: false };
  if (chunk.status !== "pending" && chunk.status !== "running") return { kind: "exit", why: "inactive" };
  if (!v.holding) {
    if (v.generation !== null && v.generation < chunk.generation) return { kind: "exit", why: "superseded" };
    return { kind: "claim" };
  }
  if (v.pages > 0 && v.sliceOver) return { kind: "handoff" };
  return { kind: "page" };
}
