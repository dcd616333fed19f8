// The run state machine (core/run.ts): transitions in every status, phases, the roll-up and control
// decisions word for word, from tables written from the rules, not from the code.
import { describe, expect, it } from "vitest";
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
} from "../../../functions/src/core/run";
import { CHUNK_STATUSES, RUN_STATUSES, type ChunkStatus, type RunStatus } from "../../../functions/src/core/types";
import { RUN_NOW, run, head } from "../../support/fixtures";

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
        ? markStarted(r, RUN_NOW)
        : name === "pause"
          ? pause(r, "why")
          : name === "resume"
            ? resumeRun(r, RUN_NOW)
            : name === "cancel"
              ? cancelRun(r, RUN_NOW)
              : retryRun(r, RUN_NOW);
    expect(t.result).toBe(changes);
    expect(t.update === null).toBe(!changes);
  });

  it("writes what each transition means", () => {
    expect(markStarted(run({ status: "pending", startedAt: null }), RUN_NOW).update).toEqual({
      status: "running",
      startedAt: RUN_NOW,
    });
    expect(pause(run(), "paused by op", { errorRate: 0.5, window: 200, threshold: 0.05, at: 9 }).update).toEqual({
      status: "paused",
      pausedReason: "paused by op",
      autoPause: { errorRate: 0.5, window: 200, threshold: 0.05, at: 9 },
    });
    expect(pause(run(), "x").update).toEqual({ status: "paused", pausedReason: "x", autoPause: null });
    // Resume restarts the auto-pause window; a run that never started goes back to pending.
    expect(resumeRun(run({ status: "paused", pausedReason: "x" }), RUN_NOW).update).toEqual({
      status: "running",
      pausedReason: null,
      autoPause: null,
      windowSince: RUN_NOW,
    });
    expect(resumeRun(run({ status: "paused", startedAt: null }), RUN_NOW).update?.status).toBe("pending");
    // Draining until the roll-up sees every chunk stopped (issue 18 item 5: the watchdog keeps looking till then).
    expect(cancelRun(run({ status: "paused" }), RUN_NOW).update).toEqual({
      status: "cancelled",
      finishedAt: RUN_NOW,
      draining: true,
    });
    expect(
      retryRun(run({ status: "failed", phase: "reversals", retries: 2, finishedAt: 7, failureReason: "x" }), RUN_NOW)
        .update,
    ).toEqual({
      status: "running",
      phase: "purchases",
      retries: 3,
      finishedAt: null,
      failureReason: null,
      windowSince: RUN_NOW,
      // Reopened: the admission's mark that a retry is on its way has done its work.
      retryAdmittedAt: null,
    });
    expect(
      retryRun(
        run({ status: "completed", type: "reversal_backfill", phases: ["reversals"], phase: "reversals" }),
        RUN_NOW,
      ).update?.phase,
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
    const t = rollUp(run(), [counted("a", "running", [3, 2, 1, 0]), counted("b", "done", [4, 1, 1, 2])], RUN_NOW);
    expect(t.result.closed).toBeNull();
    expect(t.update).toEqual({ total: 7, processed: 3, skipped: 2, errors: 2, chunksDone: 1 });
    expect(
      rollUp(
        run({ total: 7, processed: 3, skipped: 2, errors: 2, chunksDone: 1 }),
        [counted("a", "running", [3, 2, 1, 0]), counted("b", "done", [4, 1, 1, 2])],
        RUN_NOW,
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
      RUN_NOW,
    );
    expect(t.result.closed).toBe(closed);
    if (closed) {
      expect(t.update).toMatchObject({ status: closed, finishedAt: RUN_NOW, startedAt: RUN_NOW, pausedReason: null });
      expect(t.update?.failureReason).toBe(
        closed === "failed" ? "1 chunk(s) failed after exhausting their retries" : null,
      );
    } else {
      expect(t.update?.status).toBeUndefined();
    }
  });

  it("keeps following late pages of an ended run, without reopening it", () => {
    const t = rollUp(
      run({ status: "failed", total: 1, chunksFailed: 1 }),
      [counted("a", "failed", [5, 5, 0, 0])],
      RUN_NOW,
    );
    expect(t.update).toEqual({ total: 5, processed: 5 });
  });

  it("keeps a cancelled run draining while a chunk has not stopped, and says when all have", () => {
    const cancelled = run({ status: "cancelled", draining: true, total: 1, processed: 1, chunksDone: 1 });
    expect(
      rollUp(cancelled, [counted("a", "done", [1, 1, 0, 0]), counted("b", "pending", [0, 0, 0, 0])], RUN_NOW).update,
    ).toBeNull();
    expect(
      rollUp(cancelled, [counted("a", "done", [1, 1, 0, 0]), counted("b", "cancelled", [0, 0, 0, 0])], RUN_NOW).update,
    ).toEqual({ draining: false });
    expect(
      rollUp(run({ status: "cancelled", draining: false }), [counted("b", "running", [0, 0, 0, 0])], RUN_NOW).update,
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
      RUN_NOW,
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
