// A paced run (maxEventsPerSecond): the README says the whole run keeps below its pace. Its deliveries
// share the pace, at most TASK_MAX_CONCURRENT of them at once, each resting after a page for as long as
// its share of the pace needs; pages stay small enough that a pause still lands within seconds.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  estimateSeconds,
  measuredDeliveryRate,
  PACE_PAGE_SECONDS,
  pacedPageSize,
  paceRestMs,
} from "../../../functions/src/core/estimate";

const seed = Number(process.env.PACE_SEED ?? 20_261_201);

describe("a paced run", () => {
  it(`keeps every page's time at or above its events at its share of the pace, with short rests (fast-check seed ${seed})`, () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 0, max: 20_000 }),
        (pace, concurrency, pageSize, fill, worked) => {
          const queue = { concurrency, dispatchesPerSecond: 500 };
          const size = pacedPageSize(pageSize, pace, queue);
          expect(size).toBeGreaterThanOrEqual(1);
          expect(size).toBeLessThanOrEqual(pageSize);
          const examined = Math.max(1, Math.round(size * fill));
          const rest = paceRestMs(examined, worked, pace, queue);
          // At most `concurrency` deliveries at once, each this slow: together no faster than the pace.
          const perDelivery = examined / ((worked + rest) / 1000);
          expect(perDelivery * concurrency).toBeLessThanOrEqual(pace * 1.0001);
          // A page of its share never makes a delivery rest longer than PACE_PAGE_SECONDS (or one event's time).
          expect(rest).toBeLessThanOrEqual(Math.max(PACE_PAGE_SECONDS * 1000, Math.ceil((concurrency / pace) * 1000)));
          expect(rest).toBeGreaterThanOrEqual(0);
        },
      ),
      { seed, numRuns: 500 },
    );
  });

  it("does not rest without a pace, or after a page that examined nothing", () => {
    const queue = { concurrency: 3, dispatchesPerSecond: 50 };
    expect(paceRestMs(400, 10, null, queue)).toBe(0);
    expect(paceRestMs(0, 10, 100, queue)).toBe(0);
    // 3 deliveries share 300/s: 100 each; 400 events take 4 s, of which the page itself took 1 s.
    expect(paceRestMs(400, 1000, 300, queue)).toBe(3000);
    expect(pacedPageSize(400, 300, queue)).toBe(400);
    expect(pacedPageSize(400, 30, queue)).toBe(50);
  });

  it("is estimated at its pace, and its time says nothing of the deployment's speed", () => {
    const queue = { concurrency: 3, dispatchesPerSecond: 50 };
    // 15,000 events on 7 chunks at 200/s: 75 s + 2 s, against 8 s at full speed.
    expect(estimateSeconds(15_000, 7, queue, 1000)).toBe(8);
    expect(estimateSeconds(15_000, 7, queue, 1000, 200)).toBe(77);
    // One chunk gets one share of the pace: three times as long.
    expect(estimateSeconds(3000, 1, queue, 1000, 300)).toBe(32);
    const paced = {
      status: "completed",
      dryRun: false,
      total: 15_000,
      chunks: 7,
      startedAt: 0,
      finishedAt: 77_000,
      paced: true,
    };
    expect(measuredDeliveryRate([paced], false, queue)).toBeNull();
  });
});
