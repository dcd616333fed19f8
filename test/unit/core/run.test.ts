// The run state machine (core/run.ts): transitions in every status, phases, the roll-up and the watchdog's
// repair plan, from tables written from the rules, not from the code.
import { describe, expect, it } from "vitest";
import type { ChunkHead } from "../../../functions/src/core/chunk";
import {
  cancelRun,
  isFinishedRun,
  markStarted,
  openPhases,
  pause,
  phaseBlocked,
  resumeRun,
  retryRun,
  rollUp,
  type Run,
} from "../../../functions/src/core/run";
import { planRepairs, type WatchSettings } from "../../../functions/src/core/watchdog";
import {
  CHUNK_STATUSES,
  RUN_STATUSES,
  type ChunkStatus,
  type Phase,
  type RunStatus,
} from "../../../functions/src/core/types";

const NOW = 5_000_000;

function run(over: Partial<Run> = {}): Run {
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

function head(id: string, status: ChunkStatus, phase: Phase = "purchases", over: Partial<ChunkHead> = {}): ChunkHead {
  return {
    id,
    startMs: 0,
    endMs: 86_400_000,
    status,
    step: { phase, step: "scan" },
    upcoming: [],
    budgets: {},
    progress: {},
    errorCursor: null,
    pages: 0,
    generation: 0,
    crashes: 0,
    queued: 0,
    queuedAt: NOW,
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

describe("run transitions in every status", () => {
  const table: Record<string, Record<RunStatus, boolean>> = {
    markStarted: { pending: true, running: false, paused: false, completed: false, failed: false, cancelled: false },
    pause: { pending: true, running: true, paused: false, completed: false, failed: false, cancelled: false },
    resume: { pending: false, running: false, paused: true, completed: false, failed: false, cancelled: false },
    cancel: { pending: true, running: true, paused: true, completed: false, failed: false, cancelled: false },
    retry: { pending: false, running: false, paused: false, completed: true, failed: true, cancelled: false },
  };
  const cases = Object.entries(table).flatMap(([name, by]) =>
    RUN_STATUSES.map((status) => [name, status, by[status]] as const),
  );
  it.each(cases)("%s of a %s run changes it: %s", (name, status, changes) => {
    const r = run({ status, startedAt: status === "pending" ? null : 2, retries: 1 });
    const t =
      name === "markStarted"
        ? markStarted(r, NOW)
        : name === "pause"
          ? pause(r, "why")
          : name === "resume"
            ? resumeRun(r, NOW)
            : name === "cancel"
              ? cancelRun(r, NOW)
              : retryRun(r, NOW);
    expect(t.result).toBe(changes);
    expect(t.update === null).toBe(!changes);
  });

  it("writes what each transition means", () => {
    expect(markStarted(run({ status: "pending", startedAt: null }), NOW).update).toEqual({
      status: "running",
      startedAt: NOW,
    });
    expect(pause(run(), "paused by op", { errorRate: 0.5, window: 200, threshold: 0.05, at: 9 }).update).toEqual({
      status: "paused",
      pausedReason: "paused by op",
      autoPause: { errorRate: 0.5, window: 200, threshold: 0.05, at: 9 },
    });
    expect(pause(run(), "x").update).toEqual({ status: "paused", pausedReason: "x", autoPause: null });
    // Resume restarts the auto-pause window; a run that never started goes back to pending.
    expect(resumeRun(run({ status: "paused", pausedReason: "x" }), NOW).update).toEqual({
      status: "running",
      pausedReason: null,
      autoPause: null,
      windowSince: NOW,
    });
    expect(resumeRun(run({ status: "paused", startedAt: null }), NOW).update?.status).toBe("pending");
    // Draining until the roll-up sees every chunk stopped (issue 18 item 5: the watchdog keeps looking till then).
    expect(cancelRun(run({ status: "paused" }), NOW).update).toEqual({
      status: "cancelled",
      finishedAt: NOW,
      draining: true,
    });
    expect(
      retryRun(run({ status: "failed", phase: "reversals", retries: 2, finishedAt: 7, failureReason: "x" }), NOW)
        .update,
    ).toEqual({
      status: "running",
      phase: "purchases",
      retries: 3,
      finishedAt: null,
      failureReason: null,
      windowSince: NOW,
      // Reopened: the admission's mark that a retry is on its way has done its work.
      retryAdmittedAt: null,
    });
    expect(
      retryRun(run({ status: "completed", type: "reversal_backfill", phases: ["reversals"], phase: "reversals" }), NOW)
        .update?.phase,
    ).toBe("reversals");
  });

  it("knows which statuses are final", () => {
    expect(RUN_STATUSES.filter(isFinishedRun)).toEqual(["completed", "failed", "cancelled"]);
  });
});

describe("phases", () => {
  it("a phase is blocked while any chunk still has work in it", () => {
    for (const status of CHUNK_STATUSES) {
      const blocks = ["pending", "running", "paused", "waiting"].includes(status);
      expect(phaseBlocked([head("a", status, "purchases")], "purchases"), status).toBe(blocks);
      expect(phaseBlocked([head("a", status, "reversals")], "purchases"), status).toBe(false);
    }
  });

  it("moves past every phase nothing is left in, and only while the run is going", () => {
    const waitingForReversals = [head("a", "done"), head("b", "waiting", "reversals")];
    expect(openPhases(run(), waitingForReversals)).toEqual({ result: "reversals", update: { phase: "reversals" } });
    expect(openPhases(run({ status: "pending" }), waitingForReversals)).toEqual({
      result: "reversals",
      update: { phase: "reversals" },
    });
    expect(openPhases(run(), [head("a", "running"), head("b", "waiting", "reversals")])).toEqual({
      result: "purchases",
      update: null,
    });
    // The last phase has nowhere to go.
    expect(openPhases(run({ phase: "reversals" }), [head("a", "done", "reversals")])).toEqual({
      result: "reversals",
      update: null,
    });
    for (const status of ["paused", "completed", "failed", "cancelled"] as const) {
      expect(openPhases(run({ status }), waitingForReversals), status).toEqual({ result: "purchases", update: null });
    }
    // A replay with no purchases at all goes straight to its reversals.
    expect(openPhases(run(), [head("a", "waiting", "reversals"), head("b", "waiting", "reversals")]).result).toBe(
      "reversals",
    );
  });
});

describe("roll-up", () => {
  const counted = (id: string, status: ChunkStatus, c: [number, number, number, number]) =>
    head(id, status, "purchases", { total: c[0], processed: c[1], skipped: c[2], errors: c[3] });

  it("mirrors the chunks' counters while the run is going", () => {
    const t = rollUp(run(), [counted("a", "running", [3, 2, 1, 0]), counted("b", "done", [4, 1, 1, 2])], NOW);
    expect(t.result.closed).toBeNull();
    expect(t.update).toEqual({ total: 7, processed: 3, skipped: 2, errors: 2, chunksDone: 1 });
    expect(
      rollUp(
        run({ total: 7, processed: 3, skipped: 2, errors: 2, chunksDone: 1 }),
        [counted("a", "running", [3, 2, 1, 0]), counted("b", "done", [4, 1, 1, 2])],
        NOW,
      ).update,
    ).toBeNull();
  });

  it.each([
    ["running", ["done", "done"], "completed"],
    ["running", ["done", "failed"], "failed"],
    ["pending", ["done", "done"], "completed"],
    ["paused", ["done", "done"], "completed"],
    ["running", ["done", "waiting"], null],
    ["running", ["done", "paused"], null],
    ["cancelled", ["done", "cancelled"], null],
    ["completed", ["done", "done"], null],
    ["failed", ["failed", "done"], null],
  ] as const)("a %s run whose chunks are %j closes as %s", (status, chunks, closed) => {
    const t = rollUp(
      run({ status, startedAt: null }),
      chunks.map((s, i) => counted(`c${i}`, s, [1, 1, 0, 0])),
      NOW,
    );
    expect(t.result.closed).toBe(closed);
    if (closed) {
      expect(t.update).toMatchObject({ status: closed, finishedAt: NOW, startedAt: NOW, pausedReason: null });
      expect(t.update?.failureReason).toBe(
        closed === "failed" ? "1 chunk(s) failed after exhausting their retries" : null,
      );
    } else {
      expect(t.update?.status).toBeUndefined();
    }
  });

  it("keeps following late pages of an ended run, without reopening it", () => {
    const t = rollUp(run({ status: "failed", total: 1, chunksFailed: 1 }), [counted("a", "failed", [5, 5, 0, 0])], NOW);
    expect(t.update).toEqual({ total: 5, processed: 5 });
  });

  it("keeps a cancelled run draining while a chunk has not stopped, and says when all have", () => {
    const cancelled = run({ status: "cancelled", draining: true, total: 1, processed: 1, chunksDone: 1 });
    expect(
      rollUp(cancelled, [counted("a", "done", [1, 1, 0, 0]), counted("b", "pending", [0, 0, 0, 0])], NOW).update,
    ).toBeNull();
    expect(
      rollUp(cancelled, [counted("a", "done", [1, 1, 0, 0]), counted("b", "cancelled", [0, 0, 0, 0])], NOW).update,
    ).toEqual({ draining: false });
    expect(
      rollUp(run({ status: "cancelled", draining: false }), [counted("b", "running", [0, 0, 0, 0])], NOW).update,
    ).toEqual({ draining: true });
  });

  it("counts chunks by status", () => {
    const t = rollUp(
      run(),
      [
        counted("a", "done", [0, 0, 0, 0]),
        counted("b", "failed", [0, 0, 0, 0]),
        counted("c", "paused", [0, 0, 0, 0]),
        counted("d", "cancelled", [0, 0, 0, 0]),
      ],
      NOW,
    );
    expect(t.result.progress).toMatchObject({
      chunksTotal: 4,
      chunksDone: 1,
      chunksFailed: 1,
      chunksPaused: 1,
      chunksCancelled: 1,
    });
  });
});

describe("the watchdog's repairs", () => {
  const settings = (over: Partial<WatchSettings> = {}): WatchSettings => ({
    now: NOW,
    stallMs: 60_000,
    killSwitchOn: true,
    maxCrashes: 3,
    ...over,
  });
  const expired = { owner: "x", task: "t", attempt: 0, expiresAt: NOW };
  const live = { owner: "x", task: "t", attempt: 0, expiresAt: NOW + 1 };

  it("leaves an ended run alone", () => {
    for (const status of ["completed", "failed"] as const)
      expect(planRepairs(run({ status }), [head("a", "running", "purchases", { lease: expired })], settings())).toEqual(
        [],
      );
  });

  it.each([
    // chunk, in a running run → repair
    [
      "running, lease expired",
      head("a", "running", "purchases", { lease: expired }),
      [{ kind: "requeue", chunkId: "a", why: "lease_expired" }],
    ],
    [
      "running, lease expired after 2 crash re-queues",
      head("a", "running", "purchases", { lease: expired, crashes: 2 }),
      [{ kind: "requeue", chunkId: "a", why: "lease_expired" }],
    ],
    // Issue 18 item 3: a poison chunk (every delivery dies holding it) fails instead of being re-queued forever.
    [
      "running, lease expired after 3 crash re-queues",
      head("a", "running", "purchases", { lease: expired, crashes: 3 }),
      [{ kind: "fail_chunk", chunkId: "a", why: "kept_crashing" }],
    ],
    ["running, lease live after 3 crash re-queues", head("a", "running", "purchases", { lease: live, crashes: 3 }), []],
    [
      "running, handed over long ago after 3 crash re-queues",
      head("a", "running", "purchases", { lease: null, queuedAt: NOW - 60_000, crashes: 3 }),
      [{ kind: "requeue", chunkId: "a", why: "task_stalled" }],
    ],
    ["running, lease live", head("a", "running", "purchases", { lease: live }), []],
    [
      "running, handed over long ago",
      head("a", "running", "purchases", { lease: null, queuedAt: NOW - 60_000 }),
      [{ kind: "requeue", chunkId: "a", why: "task_stalled" }],
    ],
    ["running, handed over just now", head("a", "running", "purchases", { lease: null, queuedAt: NOW - 59_999 }), []],
    [
      "pending, never queued",
      head("a", "pending", "purchases", { queued: null, queuedAt: null }),
      [{ kind: "enqueue", chunkId: "a", why: "not_queued" }],
    ],
    [
      "pending, an older generation queued",
      head("a", "pending", "purchases", { generation: 2, queued: 1, queuedAt: NOW }),
      [{ kind: "enqueue", chunkId: "a", why: "not_queued" }],
    ],
    [
      "pending, queued long ago",
      head("a", "pending", "purchases", { queued: 0, queuedAt: NOW - 60_000 }),
      [{ kind: "requeue", chunkId: "a", why: "task_stalled" }],
    ],
    ["pending, queued", head("a", "pending"), []],
    ["paused", head("a", "paused"), [{ kind: "resume_chunk", chunkId: "a", why: "paused_in_running_run" }]],
    ["waiting", head("a", "waiting", "reversals"), []],
    ["done", head("a", "done"), []],
  ] as const)("in a running run, a chunk %s", (_name, chunk, repairs) => {
    expect(planRepairs(run(), [chunk], settings())).toEqual(repairs);
    expect(planRepairs(run({ status: "pending" }), [chunk], settings())).toEqual(repairs);
  });

  it.each([
    [
      "running, lease expired",
      head("a", "running", "purchases", { lease: expired }),
      [{ kind: "settle", chunkId: "a", to: "paused", why: "run_paused" }],
    ],
    [
      "running, handed over",
      head("a", "running", "purchases", { lease: null }),
      [{ kind: "settle", chunkId: "a", to: "paused", why: "run_paused" }],
    ],
    ["running, lease live", head("a", "running", "purchases", { lease: live }), []],
    [
      "pending, queued long ago",
      head("a", "pending", "purchases", { queuedAt: NOW - 60_000 }),
      [{ kind: "settle", chunkId: "a", to: "paused", why: "run_paused" }],
    ],
    ["pending, queued", head("a", "pending"), []],
    ["paused", head("a", "paused"), []],
  ] as const)("in a paused run, a chunk %s", (_name, chunk, repairs) => {
    expect(planRepairs(run({ status: "paused" }), [chunk], settings())).toEqual(repairs);
  });

  it.each([
    ["pending", head("a", "pending"), [{ kind: "settle", chunkId: "a", to: "cancelled", why: "run_cancelled" }]],
    [
      "waiting",
      head("a", "waiting", "reversals"),
      [{ kind: "settle", chunkId: "a", to: "cancelled", why: "run_cancelled" }],
    ],
    ["paused", head("a", "paused"), [{ kind: "settle", chunkId: "a", to: "cancelled", why: "run_cancelled" }]],
    [
      "running, handed over",
      head("a", "running", "purchases", { lease: null }),
      [{ kind: "settle", chunkId: "a", to: "cancelled", why: "run_cancelled" }],
    ],
    ["running, lease live", head("a", "running", "purchases", { lease: live }), []],
    [
      "running, lease expired",
      head("a", "running", "purchases", { lease: expired }),
      [{ kind: "requeue", chunkId: "a", why: "drain" }],
    ],
    ["done", head("a", "done"), []],
  ] as const)("in a cancelled run, a chunk %s", (_name, chunk, repairs) => {
    expect(planRepairs(run({ status: "cancelled" }), [chunk], settings())).toEqual(repairs);
  });

  it("with the kill switch off, pauses a going run and treats its chunks as a paused run's, and drains nothing", () => {
    expect(
      planRepairs(
        run(),
        [head("a", "running", "purchases", { lease: expired }), head("b", "paused")],
        settings({ killSwitchOn: false }),
      ),
    ).toEqual([
      { kind: "pause_run", reason: "kill_switch" },
      { kind: "settle", chunkId: "a", to: "paused", why: "run_paused" },
    ]);
    expect(
      planRepairs(
        run({ status: "cancelled" }),
        [head("a", "running", "purchases", { lease: expired })],
        settings({ killSwitchOn: false }),
      ),
    ).toEqual([]);
    expect(planRepairs(run({ status: "paused" }), [], settings({ killSwitchOn: false }))).toEqual([]);
  });
});

describe("control decisions say what they change to and why not", () => {
  it.each([
    ["pause", "running", { kind: "change", to: "paused" }],
    ["pause", "paused", { kind: "noop", reason: "the run is already paused" }],
    ["resume", "paused", { kind: "change", to: "running" }],
    ["resume", "pending", { kind: "noop", reason: "the run is already pending" }],
    [
      "resume",
      "cancelled",
      { kind: "conflict", message: "Run r was cancelled and cannot be resumed; start a new run." },
    ],
    [
      "resume",
      "failed",
      { kind: "conflict", message: "Run r failed; use retry to run its failed chunks and errored events again." },
    ],
    ["cancel", "paused", { kind: "change", to: "cancelled" }],
    ["cancel", "cancelled", { kind: "noop", reason: "the run is already cancelled" }],
    ["cancel", "failed", { kind: "conflict", message: "Run r is already failed; there is nothing to cancel." }],
    ["retry", "failed", { kind: "change", to: "running" }],
    ["retry", "completed", { kind: "conflict", message: "Run r completed without errors; there is nothing to retry." }],
    [
      "retry",
      "cancelled",
      { kind: "conflict", message: "Run r was cancelled and cannot be retried; start a new run." },
    ],
    [
      "retry",
      "paused",
      {
        kind: "conflict",
        message: "Run r is still paused; retry applies once it has ended (pause and resume control a run in progress).",
      },
    ],
    [
      "retry",
      "pending",
      {
        kind: "conflict",
        message:
          "Run r is still pending; retry applies once it has ended (pause and resume control a run in progress).",
      },
    ],
  ] as const)("%s on a %s run", async (action, status, decision) => {
    const { decideControl } = await import("../../../functions/src/core/control");
    expect(decideControl(action, { status, openErrors: 0, retries: 0 }, "r")).toEqual(decision);
  });

  it("a retry with a retry under way is a no-op that says so; a completed run with open errors can be retried", async () => {
    const { decideControl } = await import("../../../functions/src/core/control");
    expect(decideControl("retry", { status: "running", openErrors: 0, retries: 2 }, "r")).toEqual({
      kind: "noop",
      reason: "a retry of this run is already under way",
    });
    expect(decideControl("retry", { status: "pending", openErrors: 0, retries: 1 }, "r")).toEqual({
      kind: "noop",
      reason: "a retry of this run is already under way",
    });
    expect(decideControl("retry", { status: "completed", openErrors: 1, retries: 0 }, "r")).toEqual({
      kind: "change",
      to: "running",
    });
    expect(decideControl("retry", { status: "cancelled", openErrors: 4, retries: 1 }, "r").kind).toBe("conflict");
  });
});

describe("more of the watchdog's plan", () => {
  const s: WatchSettings = { now: NOW, stallMs: 60_000, killSwitchOn: true, maxCrashes: 3 };
  it("in a sequential phase queues only the chunk whose turn it is; in purchases every due chunk", () => {
    // README: refunds, chargebacks and closings are decided one day after another, in time order. A
    // reversal backfill's chunks all start due in its first phase, reversals; the watchdog (which every
    // control call also runs) queued every one of them, so later days ran alongside earlier ones (model
    // seed 11000254: a later refund of an order took the line an earlier one had reversed in the dry run).
    const day = (id: string, n: number, phase: Phase, over: Partial<ChunkHead> = {}) =>
      head(id, "pending", phase, {
        startMs: n * 86_400_000,
        endMs: (n + 1) * 86_400_000,
        queued: null,
        queuedAt: null,
        ...over,
      });
    for (const phase of ["reversals", "closings"] as const) {
      const backfill = run({ type: "reversal_backfill", phase, phases: ["reversals", "closings"] });
      expect(planRepairs(backfill, [day("c", 3, phase), day("a", 1, phase), day("b", 2, phase)], s)).toEqual([
        { kind: "enqueue", chunkId: "a", why: "not_queued" },
      ]);
      // The earliest is at work (queued, or running): nobody else is queued meanwhile.
      expect(planRepairs(backfill, [day("a", 1, phase, { queued: 0, queuedAt: NOW }), day("b", 2, phase)], s)).toEqual(
        [],
      );
      expect(planRepairs(backfill, [day("a", 1, phase, { status: "done" }), day("b", 2, phase)], s)).toEqual([
        { kind: "enqueue", chunkId: "b", why: "not_queued" },
      ]);
    }
    expect(
      planRepairs(run(), [day("a", 1, "purchases"), day("b", 2, "purchases")], s).map(
        (r) => "chunkId" in r && r.chunkId,
      ),
    ).toEqual(["a", "b"]);
  });

  it("looks at every unfinished chunk of a run, and at none of a finished one", () => {
    const chunks = [
      head("a", "paused"),
      head("b", "done"),
      head("c", "failed"),
      head("d", "cancelled"),
      head("e", "paused"),
    ];
    expect(planRepairs(run(), chunks, s).map((r) => ("chunkId" in r ? r.chunkId : r.kind))).toEqual(["a", "e"]);
    expect(planRepairs(run({ status: "completed" }), [head("a", "paused")], s)).toEqual([]);
    expect(planRepairs(run({ status: "failed" }), [head("a", "pending", "purchases", { queued: null })], s)).toEqual(
      [],
    );
  });

  it("a handed-over chunk whose continuation was never recorded is left to its queue", () => {
    expect(planRepairs(run(), [head("a", "running", "purchases", { lease: null, queuedAt: null })], s)).toEqual([]);
    expect(planRepairs(run({ status: "paused" }), [head("a", "pending", "purchases", { queuedAt: null })], s)).toEqual(
      [],
    );
    // A live lease is never stalled, however old its task.
    expect(
      planRepairs(
        run(),
        [
          head("a", "running", "purchases", {
            lease: { owner: "x", task: "t", attempt: 0, expiresAt: NOW + 5 },
            queuedAt: 0,
          }),
        ],
        s,
      ),
    ).toEqual([]);
  });

  it("a cancelled run's waiting or paused chunks have no lease to drain", () => {
    expect(planRepairs(run({ status: "cancelled" }), [head("a", "waiting", "purchases", { lease: null })], s)).toEqual([
      { kind: "settle", chunkId: "a", to: "cancelled", why: "run_cancelled" },
    ]);
  });
});
