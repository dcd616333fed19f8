// What a run does to wallets: sums by kind, wallets touched and the largest changes, against a direct
// recount of random entries (the oracle adds them up one by one).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { describeLargest, describeMoney, moneyMoved } from "../../../functions/src/core/moves";

const seed = Number(process.env.MOVES_SEED ?? 20_261_201);
const entryArb = fc.record({
  kind: fc.constantFrom("purchase", "reversal", "reinstatement"),
  userId: fc.constantFrom("u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9", "u10", "u11", "u12"),
  magnitude: fc.integer({ min: 1, max: 5000 }),
});

describe("money moved", () => {
  it(`adds up what each kind of entry moves, per wallet and in all (fast-check seed ${seed})`, () => {
    fc.assert(
      fc.property(fc.array(entryArb, { maxLength: 60 }), (raw) => {
        const entries = raw.map((e) => ({
          kind: e.kind,
          userId: e.userId,
          points: e.kind === "reversal" ? -e.magnitude : e.magnitude,
        }));
        const m = moneyMoved(entries);
        let credited = 0;
        let reversed = 0;
        let reinstated = 0;
        const wallets = new Map<string, number>();
        for (const e of raw) {
          if (e.kind === "purchase") credited += e.magnitude;
          if (e.kind === "reversal") reversed += e.magnitude;
          if (e.kind === "reinstatement") reinstated += e.magnitude;
          wallets.set(e.userId, (wallets.get(e.userId) ?? 0) + (e.kind === "reversal" ? -e.magnitude : e.magnitude));
        }
        expect(m).toMatchObject({
          entries: raw.length,
          credited,
          reversed,
          reinstated,
          net: credited - reversed + reinstated,
          wallets: wallets.size,
        });
        const changes = [...wallets].filter(([, p]) => p !== 0);
        expect(m.largest).toHaveLength(Math.min(10, changes.length));
        for (const w of m.largest) expect(wallets.get(w.userId)).toBe(w.points);
        // Nothing left out is larger than anything listed.
        const smallest = Math.min(...m.largest.map((w) => Math.abs(w.points)));
        for (const [userId, p] of changes)
          if (!m.largest.some((w) => w.userId === userId)) expect(Math.abs(p)).toBeLessThanOrEqual(smallest);
      }),
      { seed, numRuns: 300 },
    );
  });

  it("says it in one line", () => {
    const m = moneyMoved([
      { kind: "purchase", userId: "user_006", points: 1200 },
      { kind: "purchase", userId: "user_010", points: 250 },
      { kind: "reversal", userId: "user_010", points: -500 },
      { kind: "reinstatement", userId: "user_011", points: 50 },
    ]);
    expect(describeMoney(m)).toBe("+1,450 credited, −500 reversed, +50 reinstated (net +1,000) across 3 wallets");
    expect(describeLargest(m)).toBe("user_006 +1,200, user_010 −250, user_011 +50");
  });
});
