import { describe, expect, it } from "vitest";
import { allocateBudgets } from "../../functions/src/core/plan";
import { afterStep, initialSteps, pageDelta, positionFor, retrySteps } from "../../functions/src/core/chunk";
import { finalStatus, summarize } from "../../functions/src/core/run";

describe("sharing the event cap among chunks", () => {
  const counts = [
    { day: "2025-01-02", phase: "purchases" as const, selected: 5 },
    { day: "2025-01-01", phase: "purchases" as const, selected: 3 },
    { day: "2025-01-01", phase: "reversals" as const, selected: 4 },
    { day: "2025-01-02", phase: "reversals" as const, selected: 1 },
  ];

  it("gives every chunk its full count when the cap is not reached", () => {
    const a = allocateBudgets(counts, ["purchases", "reversals"], 1000);
    expect(a.planned).toBe(13);
    expect(a.capReached).toBe(false);
    expect(a.budgets.get("2025-01-01")).toEqual({ purchases: 3, reversals: 4 });
  });

  it("spends the cap on purchases first, earliest day first, then on reversals", () => {
    const a = allocateBudgets(counts, ["purchases", "reversals"], 10);
    expect(a.budgets.get("2025-01-01")).toEqual({ purchases: 3, reversals: 2 });
    expect(a.budgets.get("2025-01-02")).toEqual({ purchases: 5, reversals: 0 });
    expect(a.planned).toBe(10);
    expect(a.selected).toBe(13);
    expect(a.capReached).toBe(true);
  });
});

describe("chunk steps", () => {
  const phases = ["purchases", "reversals"] as const;
  it("starts at the first phase with work, waits for a later one, or is done at once", () => {
    const both = initialSteps({ purchases: 2, reversals: 1 }, phases);
    expect(positionFor(both, "purchases", phases)).toMatchObject({ status: "pending", current: { phase: "purchases", step: "scan" } });
    expect(positionFor(initialSteps({ purchases: 0, reversals: 1 }, phases), "purchases", phases)).toMatchObject({
      status: "waiting",
      current: { phase: "reversals" },
    });
    expect(positionFor(initialSteps({ purchases: 0, reversals: 0 }, phases), "purchases", phases).status).toBe("done");
  });

  it("runs a same-phase step on at once, waits for a later phase, and is done when nothing is left", () => {
    expect(afterStep({ phase: "purchases", step: "scan" }, [{ phase: "purchases", step: "errors" }])).toMatchObject({ status: "running" });
    expect(afterStep({ phase: "purchases", step: "scan" }, [{ phase: "reversals", step: "scan" }])).toMatchObject({ status: "waiting" });
    expect(afterStep({ phase: "reversals", step: "scan" }, []).status).toBe("done");
  });

  it("gives a retried chunk its unfinished steps plus an errors pass per phase with open errors, in phase order", () => {
    const failedInPurchases = [{ phase: "purchases" as const, step: "scan" as const }, { phase: "reversals" as const, step: "scan" as const }];
    expect(retrySteps(failedInPurchases, ["reversals", "purchases"], phases)).toEqual([
      { phase: "purchases", step: "scan" },
      { phase: "purchases", step: "errors" },
      { phase: "reversals", step: "scan" },
      { phase: "reversals", step: "errors" },
    ]);
    expect(retrySteps([], ["reversals"], phases)).toEqual([{ phase: "reversals", step: "errors" }]);
  });

  it("counts an errors pass as a replacement, keeping the total", () => {
    expect(pageDelta("errors", { total: 3, processed: 2, skipped: 0, errors: 1 })).toEqual({ total: 0, processed: 2, skipped: 0, errors: -2 });
    expect(pageDelta("scan", { total: 3, processed: 2, skipped: 0, errors: 1 })).toEqual({ total: 3, processed: 2, skipped: 0, errors: 1 });
  });
});

describe("run progress", () => {
  it("sums chunk counters and ends failed when any chunk failed", () => {
    const p = summarize([
      { status: "done", total: 3, processed: 2, skipped: 0, errors: 1 },
      { status: "failed", total: 1, processed: 1, skipped: 0, errors: 0 },
    ]);
    expect(p).toMatchObject({ total: 4, processed: 3, errors: 1, chunksDone: 1, chunksFailed: 1, chunksTotal: 2 });
    expect(finalStatus(p)).toBe("failed");
  });
});

describe("page outcome encoding", () => {
  it("round-trips ordinary and awkward ids", async () => {
    const { encodeOutcomes, decodeOutcomes } = await import("../../functions/src/platform/collections");
    const outcomes = [
      { e: "evt_1", r: "p" as const, x: "purchase_o1" },
      { e: "weird\tid\nwith\\stuff", r: "e" as const, x: "INVALID_EVENT" },
      { e: "evt_3", r: "s" as const, x: "ALREADY_PROCESSED" },
      { e: "\"quoted", r: "p" as const, x: "purchase_\"q" },
    ];
    expect(decodeOutcomes(encodeOutcomes(outcomes))).toEqual(outcomes);
    expect(decodeOutcomes("")).toEqual([]);
  });
});

describe("sharing the cap, whatever order the counts come in", () => {
  it("sorts by phase, then day, before spending the cap", () => {
    const shuffled = [
      { day: "2025-01-03", phase: "reversals" as const, selected: 2 },
      { day: "2025-01-02", phase: "purchases" as const, selected: 2 },
      { day: "2025-01-01", phase: "reversals" as const, selected: 2 },
      { day: "2025-01-03", phase: "purchases" as const, selected: 2 },
      { day: "2025-01-01", phase: "purchases" as const, selected: 2 },
    ];
    const a = allocateBudgets(shuffled, ["purchases", "reversals"], 7);
    expect(Object.fromEntries(a.budgets)).toEqual({
      "2025-01-01": { purchases: 2, reversals: 1 },
      "2025-01-02": { purchases: 2 },
      "2025-01-03": { purchases: 2, reversals: 0 },
    });
    // The input is left as it was.
    expect(shuffled[0]?.day).toBe("2025-01-03");
  });
});

describe("planning with a bounded number of counts", async () => {
  const { findCut, budgetsFromCut } = await import("../../functions/src/core/plan");
  const days = ["d1", "d2", "d3", "d4", "d5"];
  // Selected events per day (purchases), and the prefix sums a count query would return.
  const perDay = [3, 0, 4, 2, 5];
  const prefix = (i: number) => Promise.resolve(perDay.slice(0, i + 1).reduce((a, b) => a + b, 0));

  it.each([
    [1, { index: 0, before: 0 }],
    [3, { index: 0, before: 0 }],
    [4, { index: 2, before: 3 }],
    [7, { index: 2, before: 3 }],
    [8, { index: 3, before: 7 }],
    [9, { index: 3, before: 7 }],
    [10, { index: 4, before: 9 }],
    [14, { index: 4, before: 9 }],
  ])("finds the day a cap of %i runs out on", async (cap, cut) => {
    let calls = 0;
    const counted = (i: number) => {
      calls++;
      return prefix(i);
    };
    expect(await findCut(days.length, cap, counted)).toEqual(cut);
    expect(calls).toBeLessThanOrEqual(Math.ceil(Math.log2(days.length)) + 1);
  });

  it("searches 366 days in at most 10 counts", async () => {
    let calls = 0;
    const cut = await findCut(366, 1000, (i) => {
      calls++;
      return Promise.resolve((i + 1) * 7);
    });
    expect(cut).toEqual({ index: 142, before: 994 });
    expect(calls).toBeLessThanOrEqual(10);
  });

  it("gives the days before the cut everything, the cut's day the rest, and nothing after", () => {
    const a = budgetsFromCut(days, ["purchases", "reversals"], { purchases: 14, reversals: 6 }, 8, { phase: "purchases", cut: { index: 3, before: 7 } });
    expect(Object.fromEntries(a.budgets)).toEqual({
      d1: { purchases: 14, reversals: 0 },
      d2: { purchases: 14, reversals: 0 },
      d3: { purchases: 14, reversals: 0 },
      d4: { purchases: 1, reversals: 0 },
      d5: { purchases: 0, reversals: 0 },
    });
    expect(a).toMatchObject({ planned: 8, selected: 20, capReached: true });
  });

  it("spends what purchases leave on reversals, cutting there", () => {
    const a = budgetsFromCut(days, ["purchases", "reversals"], { purchases: 4, reversals: 9 }, 6, { phase: "reversals", cut: { index: 1, before: 1 } });
    expect(a.budgets.get("d1")).toEqual({ purchases: 4, reversals: 9 });
    expect(a.budgets.get("d2")).toEqual({ purchases: 4, reversals: 1 });
    expect(a.budgets.get("d3")).toEqual({ purchases: 4, reversals: 0 });
    expect(a).toMatchObject({ planned: 6, selected: 13, capReached: true });
  });

  it("without a cut, every day may examine its phase's range total, and a phase with nothing gets no budget", () => {
    const a = budgetsFromCut(days, ["purchases", "reversals"], { purchases: 5, reversals: 0 }, 1000, null);
    expect(a.budgets.get("d3")).toEqual({ purchases: 5 });
    expect(a).toMatchObject({ planned: 5, selected: 5, capReached: false });
    expect(budgetsFromCut(days, ["reversals"], {}, 10, null)).toMatchObject({ planned: 0, selected: 0, capReached: false });
    expect(budgetsFromCut(days, ["reversals"], {}, 10, null).budgets.size).toBe(0);
  });
});
