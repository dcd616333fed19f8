// The chunk state machine as a whole (core/chunk.ts): a new chunk, where each step leads, and the edges of
// the rules across its transitions, from tables written from the rules in the module's header, not its code.
import { describe, expect, it } from "vitest";
import { afterStep, newChunk, nextPhase, positionKey } from "../../../functions/src/core/chunk";
import { commitPage } from "../../../functions/src/core/chunkTransitions";
import { retryChunk } from "../../../functions/src/core/chunkControl";
import { nextMove } from "../../../functions/src/core/nextMove";
import { NOW, D, LEASE, me, chunk, leases, page } from "../../support/fixtures";

describe("a new chunk", () => {
  const replay = { phases: ["purchases", "reversals", "closings"] as const };
  it("starts at its first phase with budget, with a scan step for every phase it has budget in", () => {
    expect(newChunk(D, { purchases: 2, reversals: 1, closings: 1 }, { phases: [...replay.phases] }, NOW)).toMatchObject(
      {
        status: "pending",
        step: { phase: "purchases", step: "scan" },
        upcoming: [
          { phase: "reversals", step: "scan" },
          { phase: "closings", step: "scan" },
        ],
        finishedAt: null,
        generation: 0,
        queued: null,
      },
    );
    // Only reversals: it waits for the reversals phase.
    expect(newChunk(D, { purchases: 0, reversals: 3 }, { phases: [...replay.phases] }, NOW)).toMatchObject({
      status: "waiting",
      step: { phase: "reversals", step: "scan" },
      upcoming: [],
    });
    expect(newChunk(D, {}, { phases: [...replay.phases] }, NOW)).toMatchObject({ status: "done", finishedAt: NOW });
    expect(newChunk(D, { reversals: 3 }, { phases: ["reversals", "closings"] }, NOW)).toMatchObject({
      status: "pending",
    });
  });
});

describe("steps", () => {
  it("knows the phase after each", () => {
    expect(nextPhase("purchases", ["purchases", "reversals"])).toBe("reversals");
    expect(nextPhase("reversals", ["purchases", "reversals"])).toBeUndefined();
    expect(nextPhase("purchases", ["reversals"])).toBeUndefined();
  });

  it("the position key changes with every part of a position", () => {
    const c = chunk({
      progress: { purchases: { cursor: { seconds: 1, nanos: 2, id: "a" }, examined: 3 } },
      pages: 5,
      errorCursor: "e",
    });
    const keys = new Set(
      [
        c,
        { ...c, pages: 6 },
        { ...c, errorCursor: null },
        { ...c, step: { phase: "purchases" as const, step: "errors" as const } },
        { ...c, step: { phase: "reversals" as const, step: "scan" as const } },
        { ...c, progress: { purchases: { cursor: { seconds: 1, nanos: 3, id: "a" }, examined: 3 } } },
        { ...c, progress: { purchases: { cursor: { seconds: 2, nanos: 2, id: "a" }, examined: 3 } } },
        { ...c, progress: { purchases: { cursor: { seconds: 1, nanos: 2, id: "b" }, examined: 3 } } },
        { ...c, progress: { purchases: { cursor: null, examined: 3 } } },
        { ...c, progress: { purchases: { cursor: { seconds: 1, nanos: 2, id: "a" }, examined: 4 } } },
      ].map(positionKey),
    );
    expect(keys.size).toBe(10);
    // Another phase's progress is not part of this phase's position.
    expect(positionKey({ ...c, progress: { ...c.progress, reversals: { cursor: null, examined: 9 } } })).toBe(
      positionKey(c),
    );
  });

  it("after a step", () => {
    expect(afterStep({ phase: "purchases", step: "scan" }, [])).toEqual({
      status: "done",
      current: { phase: "purchases", step: "scan" },
      upcoming: [],
    });
  });
});

describe("edges of the rules", () => {
  it("a chunk with nothing to do is done at the run's last phase", () => {
    expect(newChunk(D, {}, { phases: ["reversals", "closings"] }, NOW)).toMatchObject({
      status: "done",
      step: { phase: "closings", step: "scan" },
      upcoming: [],
      stoppedAtBudget: false,
    });
    expect(newChunk(D, { purchases: 0 }, { phases: ["purchases", "reversals", "closings"] }, NOW).step).toEqual({
      phase: "closings",
      step: "scan",
    });
  });

  it("an errors step is added once per phase, even when a failed chunk already had one left", () => {
    const phases = ["purchases", "reversals"] as const;
    const c = chunk({
      status: "failed",
      step: { phase: "purchases", step: "errors" },
      upcoming: [{ phase: "reversals", step: "scan" }],
      errorCursor: "e3",
    });
    expect(retryChunk(c, ["purchases", "reversals"], phases).update).toMatchObject({
      step: { phase: "purchases", step: "errors" },
      upcoming: [
        { phase: "reversals", step: "scan" },
        { phase: "reversals", step: "errors" },
      ],
      errorCursor: "e3",
    });
    // A done chunk starts its errors step from the beginning; so does a failed one resuming another step.
    expect(retryChunk({ ...c, status: "done" }, ["purchases"], phases).update).toMatchObject({
      step: { phase: "purchases", step: "errors" },
      errorCursor: null,
    });
    const inScan = chunk({
      status: "failed",
      step: { phase: "purchases", step: "scan" },
      upcoming: [],
      errorCursor: "e3",
    });
    expect(retryChunk(inScan, ["purchases"], phases).update).toMatchObject({
      step: { phase: "purchases", step: "scan" },
      upcoming: [{ phase: "purchases", step: "errors" }],
      errorCursor: "e3",
    });
    const inReversals = chunk({
      status: "failed",
      step: { phase: "reversals", step: "errors" },
      upcoming: [],
      errorCursor: "e3",
    });
    expect(retryChunk(inReversals, ["purchases"], phases).update).toMatchObject({
      step: { phase: "purchases", step: "errors" },
      errorCursor: null,
    });
    expect(retryChunk({ ...inReversals, step: { phase: "reversals", step: "scan" } }, [], phases).update).toMatchObject(
      { step: { phase: "reversals", step: "scan" }, errorCursor: "e3" },
    );
  });

  it("a step's end moves to the next step as planned: no step is dropped", () => {
    const upcoming = [
      { phase: "purchases" as const, step: "errors" as const },
      { phase: "reversals" as const, step: "errors" as const },
      { phase: "reversals" as const, step: "scan" as const },
    ];
    const scan = chunk({ lease: leases.mine, upcoming });
    expect(commitPage(scan, page(scan, { stepDone: true }), me, NOW, LEASE).update).toMatchObject({
      step: upcoming[0],
      upcoming: upcoming.slice(1),
    });
    const errors = chunk({
      lease: leases.mine,
      step: { phase: "purchases", step: "errors" },
      upcoming: [{ phase: "reversals", step: "scan" }],
    });
    expect(
      commitPage(errors, page(errors, { stepDone: true, stoppedAtBudget: true }), me, NOW, LEASE).update,
    ).toMatchObject({ status: "waiting", step: { phase: "reversals", step: "scan" } });
  });

  it("keeps an errors step's and a waiting chunk's bookkeeping exact", () => {
    const c = chunk({
      lease: leases.mine,
      status: "running",
      queued: 2,
      upcoming: [{ phase: "purchases", step: "errors" }],
    });
    const same = commitPage(c, page(c, { stepDone: true }), me, NOW, LEASE).update;
    expect(same).not.toHaveProperty("queued");
    expect(same).not.toHaveProperty("finishedAt");
    expect(same).not.toHaveProperty("status");
  });

  it("a late page that finishes an already done chunk does not move its finish time", () => {
    const c = chunk({ status: "done", upcoming: [], finishedAt: 7 });
    expect(commitPage(c, page(c, { stepDone: true }), me, NOW, LEASE).update).not.toHaveProperty("finishedAt");
  });

  it("a delivery that never held a lease is not taken over", () => {
    const v = {
      run: { status: "running" as const, pausedReason: null },
      killSwitchOn: true,
      me,
      holding: true,
      generation: null,
      draining: false,
      drained: false,
      pages: 1,
      sliceOver: false,
    };
    expect(nextMove({ ...v, chunk: chunk({ lease: null }) })).toEqual({ kind: "exit", why: "taken_over" });
    expect(
      nextMove({
        ...v,
        holding: false,
        generation: 0,
        chunk: chunk({ status: "pending", lease: null, generation: 0 }),
      }),
    ).toEqual({ kind: "claim" });
  });
});
