// Cutting a range into chunks, checked against random event times: the chunks tile the range exactly, in
// time order; a day stays whole when it holds at most `shardEvents` events; a busy day's shards hold at
// most that many (unless their events share a millisecond); there are never more than `maxChunks`.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DAY_MS, daysInRange } from "../../../functions/src/core/dates";
import { CHUNK_ID_PATTERN, cutRange, dayOfChunk, wholeDayChunk } from "../../../functions/src/core/shards";

const START = Date.UTC(2025, 0, 1);

function counter(times: readonly number[]) {
  let queries = 0;
  const count = (from: number, to: number) => {
    queries++;
    return Promise.resolve(times.filter((t) => t >= from && t < to).length);
  };
  return { count, queries: () => queries };
}

const seed = Number(process.env.SHARD_SEED ?? 20_261_122);

describe("cutting a range into chunks", () => {
  it("bounds a whole-day chunk as a half-open UTC interval", () => {
    const { id, startMs, endMs } = wholeDayChunk("2025-03-30");
    expect(id).toBe("2025-03-30");
    expect(new Date(startMs).toISOString()).toBe("2025-03-30T00:00:00.000Z");
    expect(endMs - startMs).toBe(86_400_000);
  });

  it(`tiles the range with whole days and shards of busy days (fast-check seed ${seed})`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 12 }),
        // Events: some spread over the range, some bunched into bursts (a hot hour, one millisecond).
        fc.array(fc.tuple(fc.integer({ min: 0, max: 11 }), fc.integer({ min: 0, max: DAY_MS - 1 })), {
          maxLength: 300,
        }),
        fc.array(
          fc.tuple(
            fc.integer({ min: 0, max: 11 }),
            fc.integer({ min: 0, max: DAY_MS - 1 }),
            fc.integer({ min: 1, max: 120 }),
            fc.integer({ min: 0, max: 3_600_000 }),
          ),
          { maxLength: 3 },
        ),
        fc.integer({ min: 1, max: 60 }),
        fc.integer({ min: 12, max: 60 }),
        async (dayCount, spread, bursts, shardEvents, maxChunks) => {
          const days = daysInRange("2025-01-01", new Date(START + (dayCount - 1) * DAY_MS).toISOString().slice(0, 10));
          const times = [
            ...spread.filter(([d]) => d < dayCount).map(([d, ms]) => START + d * DAY_MS + ms),
            ...bursts
              .filter(([d]) => d < dayCount)
              .flatMap(([d, at, n, width]) =>
                Array.from(
                  { length: n },
                  (_, i) => START + d * DAY_MS + Math.min(DAY_MS - 1, at + Math.floor((i * width) / n)),
                ),
              ),
          ];
          const c = counter(times);
          const { chunks, queries } = await cutRange(days, shardEvents, maxChunks, c.count);
          expect(queries).toBe(c.queries());
          // Tiles the range in order, ids sorted like the chunks.
          expect(chunks[0]?.startMs).toBe(START);
          expect(chunks.at(-1)?.endMs).toBe(START + dayCount * DAY_MS);
          chunks.forEach((s, i) => {
            expect(s.id).toMatch(CHUNK_ID_PATTERN);
            expect(s.endMs).toBeGreaterThan(s.startMs);
            expect(dayOfChunk(s.id)).toBe(new Date(s.startMs).toISOString().slice(0, 10));
            if (i > 0) {
              expect(s.startMs).toBe(chunks[i - 1]?.endMs);
              expect(s.id > (chunks[i - 1]?.id as string)).toBe(true);
            }
          });
          expect(chunks.length).toBeLessThanOrEqual(maxChunks);
          const inChunk = (s: { startMs: number; endMs: number }) =>
            times.filter((t) => t >= s.startMs && t < s.endMs).length;
          for (const day of days) {
            const parts = chunks.filter((s) => dayOfChunk(s.id) === day);
            const whole = parts.length === 1 && parts[0]?.id === day;
            const n = inChunk({
              startMs: Date.parse(`${day}T00:00:00Z`),
              endMs: Date.parse(`${day}T00:00:00Z`) + DAY_MS,
            });
            // A small day is never cut; a cut day's ids are its shards in order.
            if (n <= shardEvents) expect(whole, `${day} holds ${n}`).toBe(true);
            if (!whole)
              expect(parts.map((p) => p.id)).toEqual(parts.map((_, k) => `${day}~${String(k).padStart(4, "0")}`));
          }
          // With room for them, shards hold at most shardEvents, unless their events share a millisecond.
          const grown = chunks.some((s) => s.id.includes("~") && inChunk(s) > shardEvents && s.endMs - s.startMs > 2);
          if (grown) expect(chunks.length).toBeGreaterThan(maxChunks / 2);
        },
      ),
      { seed, numRuns: 300 },
    );
  });

  it("counts once per split, so its cost follows the chunks, not the range", async () => {
    const days = daysInRange("2025-01-01", "2025-12-31");
    // 365 quiet days and one hot day of 20 000 events.
    const hot = Date.UTC(2025, 5, 1);
    const times = [
      ...days.map((_, i) => START + i * DAY_MS + 1000),
      ...Array.from({ length: 20_000 }, (_, i) => hot + i * 4000),
    ];
    const c = counter(times);
    const { chunks, queries } = await cutRange(days, 2000, 497, c.count);
    const shards = chunks.filter((s) => s.id.includes("~"));
    expect(shards.length).toBeGreaterThanOrEqual(10);
    expect(shards.length).toBeLessThanOrEqual(20);
    expect(chunks.length).toBe(364 + shards.length);
    expect(queries).toBeLessThan(60);
  });

  it("grows shards rather than exceed the chunks one batch may create", async () => {
    const days = daysInRange("2025-01-01", "2025-01-10");
    const times = Array.from({ length: 10_000 }, (_, i) => START + Math.floor((i * 10 * DAY_MS) / 10_000));
    const c = counter(times);
    const { chunks } = await cutRange(days, 10, 50, c.count);
    expect(chunks.length).toBeLessThanOrEqual(50);
    expect(chunks.length).toBeGreaterThan(25);
  });
});
