import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { allocateBudgets, bucketTimes, countPerChunk } from "../../../functions/src/core/plan";
import { afterStep, initialSteps, pageDelta, positionFor, retrySteps } from "../../../functions/src/core/chunk";
import { finalStatus, summarize } from "../../../functions/src/core/run";

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
    expect(positionFor(both, "purchases", phases)).toMatchObject({
      status: "pending",
      current: { phase: "purchases", step: "scan" },
    });
    expect(positionFor(initialSteps({ purchases: 0, reversals: 1 }, phases), "purchases", phases)).toMatchObject({
      status: "waiting",
      current: { phase: "reversals" },
    });
    expect(positionFor(initialSteps({ purchases: 0, reversals: 0 }, phases), "purchases", phases).status).toBe("done");
  });

  it("runs a same-phase step on at once, waits for a later phase, and is done when nothing is left", () => {
    expect(afterStep({ phase: "purchases", step: "scan" }, [{ phase: "purchases", step: "errors" }])).toMatchObject({
      status: "running",
    });
    expect(afterStep({ phase: "purchases", step: "scan" }, [{ phase: "reversals", step: "scan" }])).toMatchObject({
      status: "waiting",
    });
    expect(afterStep({ phase: "reversals", step: "scan" }, []).status).toBe("done");
  });

  it("gives a retried chunk its unfinished steps plus an errors step per phase with open errors, in phase order", () => {
    const failedInPurchases = [
      { phase: "purchases" as const, step: "scan" as const },
      { phase: "reversals" as const, step: "scan" as const },
    ];
    expect(retrySteps(failedInPurchases, ["reversals", "purchases"], phases)).toEqual([
      { phase: "purchases", step: "scan" },
      { phase: "purchases", step: "errors" },
      { phase: "reversals", step: "scan" },
      { phase: "reversals", step: "errors" },
    ]);
    expect(retrySteps([], ["reversals"], phases)).toEqual([{ phase: "reversals", step: "errors" }]);
  });

  it("counts an errors step as a replacement, keeping the total", () => {
    expect(pageDelta("errors", { total: 3, processed: 2, skipped: 0, errors: 1 })).toEqual({
      total: 0,
      processed: 2,
      skipped: 0,
      errors: -2,
    });
    expect(pageDelta("scan", { total: 3, processed: 2, skipped: 0, errors: 1 })).toEqual({
      total: 3,
      processed: 2,
      skipped: 0,
      errors: 1,
    });
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
    const { encodeOutcomes, decodeOutcomes } = await import("../../../functions/src/store/pages");
    const outcomes = [
      { e: "evt_1", r: "p" as const, x: "purchase_o1" },
      { e: "weird\tid\nwith\\stuff", r: "e" as const, x: "INVALID_EVENT" },
      { e: "evt_3", r: "s" as const, x: "ALREADY_PROCESSED" },
      { e: '"quoted', r: "p" as const, x: 'purchase_"q' },
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

describe("counting each chunk's events", () => {
  const seed = Number(process.env.PLAN_SEED ?? 20261201);

  it(`finds every chunk's count up to the cap, and counts only where events are (fast-check seed ${seed}, PLAN_SEED)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.constant(0), fc.constant(0), fc.nat(9)), { minLength: 1, maxLength: 400 }),
        fc.nat(3000),
        async (held, cap) => {
          let calls = 0;
          const sum = (from: number, to: number) => held.slice(from, to).reduce((a, b) => a + b, 0);
          const total = sum(0, held.length);
          const got = await countPerChunk(held.length, total, cap, (from, to) => {
            calls++;
            return Promise.resolve(sum(from, to));
          });
          // Exact for every chunk the cap reaches; the chunks after it read 0.
          let before = 0;
          held.forEach((n, i) => {
            expect(got[i], `chunk ${i}`).toBe(before < cap ? n : 0);
            before += n;
          });
          // One count per split of a part holding events: at most one per chunk holding events, per level.
          const nonEmpty = held.filter((n) => n > 0).length;
          expect(calls).toBeLessThanOrEqual(
            Math.max(0, Math.min(held.length - 1, nonEmpty * Math.ceil(Math.log2(held.length)))),
          );
        },
      ),
      { seed, numRuns: 300 },
    );
  });

  it("takes no count for a range with nothing, or a cap of 0", async () => {
    const never = () => Promise.reject(new Error("counted"));
    expect(await countPerChunk(5, 0, 10, never)).toEqual([0, 0, 0, 0, 0]);
    expect(await countPerChunk(5, 7, 0, never)).toEqual([0, 0, 0, 0, 0]);
    expect(await countPerChunk(1, 7, 3, never)).toEqual([7]);
  });

  it("puts each time in the chunk that holds it", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.nat(2000)),
        (widths, times) => {
          const chunks: Array<{ startMs: number; endMs: number }> = [];
          let at = 100;
          for (const w of widths) chunks.push({ startMs: at, endMs: (at += w) });
          const expected = chunks.map((s) => times.filter((t) => t >= s.startMs && t < s.endMs).length);
          expect(bucketTimes(times, chunks)).toEqual(expected);
        },
      ),
      { seed, numRuns: 300 },
    );
  });
});
