// A chunk's throughput buckets (core/estimate.ts), which the run page sums instead of reading every page
// record. The oracle is what the README promises of the chart: every examined event is drawn once, in the
// interval it was committed in (intervals of 1 s while a chunk has worked under two minutes, widening
// after), and no chunk keeps more than 120 intervals.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { addThroughput, throughputPoints, type ThroughputBuckets } from "../../../functions/src/core/estimate";

const seed = Number(process.env.THROUGHPUT_SEED ?? 20261201);
const START = Date.UTC(2026, 11, 1, 19, 0, 0);

function fold(pages: ReadonlyArray<{ at: number; events: number }>): ThroughputBuckets | null {
  let b: ThroughputBuckets | null = null;
  for (const p of pages) b = addThroughput(b, p.at, p.events);
  return b;
}

// Pages a chunk commits: times that mostly move forward (deliveries' clocks may disagree by a little).
const pagesArb = fc.array(
  fc.record({
    gap: fc.oneof(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 0, max: 4_000_000 })),
    skew: fc.integer({ min: -500, max: 0 }),
    events: fc.integer({ min: 1, max: 500 }),
  }),
  {
    minLength: 1,
    maxLength: 300,
  },
);

describe(`a chunk's throughput buckets (fast-check seed ${seed}, THROUGHPUT_SEED)`, () => {
  it("draw every examined event once, in at most 120 intervals, none after the page that examined it", () => {
    fc.assert(
      fc.property(pagesArb, (raw) => {
        let t = START;
        const pages = raw.map((p) => {
          t += p.gap;
          return { at: t + p.skew, events: p.events };
        });
        const b = fold(pages) as ThroughputBuckets;
        const points = throughputPoints([{ throughput: b }]);
        expect(points.reduce((n, p) => n + p.total, 0)).toBe(pages.reduce((n, p) => n + p.events, 0));
        expect(b.events.length).toBeLessThanOrEqual(120);
        expect(b.since % (b.seconds * 1000)).toBe(0);
        // Every point is the start of an interval that holds events examined at or after it.
        const last = Math.max(...pages.map((p) => p.at));
        for (const p of points) expect(p.at).toBeLessThanOrEqual(last);
      }),
      { seed, numRuns: 300 },
    );
  });

  it("keep 1-second intervals for a chunk that works under two minutes", () => {
    const b = fold([
      { at: START + 200, events: 250 },
      { at: START + 900, events: 250 },
      { at: START + 1_100, events: 100 },
      { at: START + 65_000, events: 7 },
    ]) as ThroughputBuckets;
    expect(throughputPoints([{ throughput: b }])).toEqual([
      { at: START, total: 500 },
      { at: START + 1000, total: 100 },
      { at: START + 65_000, total: 7 },
    ]);
  });

  it("widen to 10-second intervals past two minutes, merging what they held", () => {
    const b = fold([
      { at: START + 3_000, events: 10 },
      { at: START + 9_000, events: 5 },
      { at: START + 12_000, events: 1 },
      { at: START + 130_000, events: 2 },
    ]) as ThroughputBuckets;
    expect(b.seconds).toBe(10);
    expect(throughputPoints([{ throughput: b }])).toEqual([
      { at: START, total: 15 },
      { at: START + 10_000, total: 1 },
      { at: START + 130_000, total: 2 },
    ]);
  });

  it("sum several chunks' buckets, and a chunk with none draws nothing", () => {
    const a = fold([{ at: START + 1_500, events: 3 }]);
    const c = fold([{ at: START + 1_700, events: 4 }]);
    expect(throughputPoints([{ throughput: a }, { throughput: null }, { throughput: c }])).toEqual([
      { at: START + 1000, total: 3 },
      { at: START + 1000, total: 4 },
    ]);
  });
});
