// The time estimate and ETA the console shows, and the throughput series (core/estimate.ts), with the
// durations as the client prints them (http/client.ts). Expectations are arithmetic, not the code's.
import { describe, expect, it } from "vitest";
import {
  DEFAULT_DELIVERY_EVENTS_PER_SECOND,
  estimateSeconds,
  etaSeconds,
  measuredDeliveryRate,
  throughputSeries,
} from "../../../functions/src/core/estimate";
import { formatDuration } from "../../../functions/src/http/client";

describe("time estimates", () => {
  const queue = { concurrency: 3, dispatchesPerSecond: 20 };
  const sample = (over: Partial<Parameters<typeof measuredDeliveryRate>[0][number]> = {}) => ({
    status: "completed",
    dryRun: false,
    total: 9000,
    chunks: 3,
    startedAt: 0,
    finishedAt: 5150,
    ...over,
  });

  it("measures one delivery's pace: events over the running time less the fixed costs, per delivery at work", () => {
    // 9,000 events over 3 chunks in 5.15 s: 2 s fixed, one wave of 0.15 s, 3 s of work for 3 deliveries → 1,000/s each.
    expect(measuredDeliveryRate([sample()], false, queue)).toBeCloseTo(1000, 6);
    // One chunk: one delivery did it all (9,000 in 5.15 − 2.15 = 3 s).
    expect(measuredDeliveryRate([sample({ chunks: 1 })], false, queue)).toBeCloseTo(3000, 6);
    // Six chunks: two waves (0.3 s), 3 deliveries; 9,000 in 2.85 s.
    expect(measuredDeliveryRate([sample({ chunks: 6 })], false, queue)).toBeCloseTo(9000 / 2.85 / 3, 6);
    // Median of the runs of the same mode; the other mode stands in when there are none.
    expect(
      measuredDeliveryRate([sample(), sample({ finishedAt: 11_150 }), sample({ finishedAt: 3650 })], false, queue),
    ).toBeCloseTo(1000, 6);
    expect(measuredDeliveryRate([sample(), sample({ dryRun: true, finishedAt: 3650 })], true, queue)).toBeCloseTo(
      2000,
      6,
    );
    expect(measuredDeliveryRate([sample()], true, queue)).toBeCloseTo(1000, 6);
  });

  it("ignores runs that did not complete, are too small to measure or have no times", () => {
    const ignored = [
      sample({ status: "failed" }),
      sample({ total: 1999 }),
      sample({ startedAt: null }),
      sample({ finishedAt: null }),
      sample({ status: "cancelled" }),
    ];
    expect(measuredDeliveryRate(ignored, false, queue)).toBeNull();
  });

  it("estimates 2 s, a chunk cost per wave, and the events shared among the deliveries at work, rounded up", () => {
    expect(estimateSeconds(0, 30, queue, 1000)).toBe(2);
    // 30 chunks, 3 at once: 10 waves (1.5 s) + 30,000 / 3,000 (10 s) + 2 → 13.5 → 14.
    expect(estimateSeconds(30_000, 30, queue, 1000)).toBe(14);
    // One hot day of 20,000 in 5 shards: 2 waves (0.3 s) + 20,000 / (140 × 3) + 2 → 49.9 → 50.
    expect(estimateSeconds(20_000, 5, queue, DEFAULT_DELIVERY_EVENTS_PER_SECOND)).toBe(50);
    // The benchmark's 20,000 over 30 days, 2,400 of them refunds and chargebacks one day after another:
    // 10 waves (1.5 s) + 17,600 / 420 (41.9 s) + 2,400 / 140 (17.1 s) + 30 turns × 0.8 (24 s) + 2 → 86.5 → 87.
    expect(estimateSeconds(20_000, 30, queue, 140, null, { events: 2400, turns: 30 })).toBe(87);
    // The same events in one chunk: one delivery does them all.
    expect(estimateSeconds(20_000, 1, queue, 1000)).toBe(23);
    // Dispatching binds when the queue runs many at once and chunks are small: 400 chunks at 20/s is 20 s.
    expect(estimateSeconds(400, 400, { concurrency: 500, dispatchesPerSecond: 20 }, 100_000)).toBe(22);
  });

  it("gives an ETA from the pace so far, the estimate's remainder before any event, and none when not moving", () => {
    const base = { status: "running", total: 500, plannedEvents: 2000, startedAt: 0, estimatedSeconds: 10 };
    // 500 events in 5 s is 100/s; 1,500 left → 15 s.
    expect(etaSeconds(base, 5000)).toBe(15);
    expect(etaSeconds({ ...base, total: 0 }, 3000)).toBe(7);
    expect(etaSeconds({ ...base, total: 0, status: "pending", startedAt: null }, 3000)).toBe(10);
    expect(etaSeconds({ ...base, total: 0 }, 60_000)).toBe(0);
    for (const status of ["paused", "completed", "failed", "cancelled"])
      expect(etaSeconds({ ...base, status }, 5000)).toBeNull();
  });

  it("prefers the pace of the last 30 s over the whole run's average", () => {
    // 60 s in, 1,000 of 4,000 examined: 900 of them in pages of the last 30 s (30/s), 100 before.
    const run = { status: "running", total: 1000, plannedEvents: 4000, startedAt: 0, estimatedSeconds: 10 };
    const pages = [
      { at: 10_000, total: 100 },
      { at: 40_000, total: 450 },
      { at: 59_000, total: 450 },
    ];
    expect(etaSeconds(run, 60_000, pages)).toBe(100);
    // Nothing landed in the last 30 s: the average pace (1,000 in 60 s), 3,000 left → 180 s.
    expect(etaSeconds(run, 60_000, [{ at: 10_000, total: 1000 }])).toBe(180);
    // 10 s in, all 1,000 within the window, which is then 10 s long: 100/s → 30 s.
    expect(etaSeconds({ ...run, startedAt: 50_000 }, 60_000, [{ at: 55_000, total: 1000 }])).toBe(30);
  });

  it("draws throughput per second, per 10 s or per minute depending on the run's length", () => {
    const t0 = Date.UTC(2025, 0, 1);
    const short = throughputSeries(
      [
        { at: t0 + 500, total: 10 },
        { at: t0 + 2500, total: 30 },
      ],
      t0,
      t0 + 3000,
    );
    expect(short.bucketSeconds).toBe(1);
    expect(short.points.map((p) => p.events)).toEqual([10, 0, 30, 0]);
    expect(short.points[2]).toEqual({ at: new Date(t0 + 2000).toISOString(), events: 30, perSecond: 30 });
    const medium = throughputSeries([{ at: t0 + 95_000, total: 400 }], t0, t0 + 120_000);
    expect(medium.bucketSeconds).toBe(10);
    expect(medium.points[9]).toMatchObject({ events: 400, perSecond: 40 });
    const long = throughputSeries([{ at: t0 + 61_000, total: 600 }], t0, t0 + 3_600_000);
    expect(long.bucketSeconds).toBe(60);
    expect(long.points[1]).toMatchObject({ events: 600, perSecond: 10 });
    expect(throughputSeries([], t0, t0 + 1000).points).toEqual([]);
  });

  it("formats durations for people", () => {
    expect([
      formatDuration(0),
      formatDuration(59.4),
      formatDuration(200),
      formatDuration(3900),
      formatDuration(null),
    ]).toEqual(["0 s", "59 s", "3 min 20 s", "1 h 05 min", "—"]);
  });
});
