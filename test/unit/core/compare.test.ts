// The dry-run comparison (core/compare.ts): which events differ between a dry run and its execution, and
// each reason it gives, written from the README's rules.
import { describe, expect, it } from "vitest";
import { describeOutcome, differingEvents, explain, type Outcome } from "../../../functions/src/core/compare";

describe("the dry-run comparison", () => {
  const p: Outcome = { outcome: "processed" };
  const skip = (reason: string): Outcome => ({ outcome: "skipped", reason });
  const err = (code: string): Outcome => ({ outcome: "error", code });
  const dry = { id: "dry", createdAt: 1000, capReached: false };
  const real = { id: "real", createdAt: 5000, capReached: false };
  const now = (
    over: Partial<{ exists: boolean; processed: boolean; processedBy: string | null; arrivedAt: number | null }> = {},
  ) => ({ exists: true, processed: false, processedBy: null, arrivedAt: 500, ...over });

  it("lists events whose outcome differs or that only one run examined", () => {
    const d = new Map<string, Outcome>([
      ["a", p],
      ["b", p],
      ["c", err("PRODUCT_NOT_FOUND")],
      ["e", skip("PURCHASE_EXISTS")],
    ]);
    const r = new Map<string, Outcome>([
      ["a", p],
      ["c", p],
      ["d", p],
      ["e", skip("ALREADY_REVERSED")],
    ]);
    expect(differingEvents(d, r)).toEqual(["b", "c", "d", "e"]);
    expect(differingEvents(d, d)).toEqual([]);
    expect([
      describeOutcome(p),
      describeOutcome(skip("X")),
      describeOutcome(err("Y")),
      describeOutcome(undefined),
    ]).toEqual(["processed", "skipped (X)", "error (Y)", "not examined"]);
  });

  it("says why, from what the event is now and what each run planned", () => {
    expect(explain(p, undefined, now({ processed: true, processedBy: null }), dry, real)).toMatch(
      /processed by live traffic/,
    );
    expect(explain(p, undefined, now({ exists: false }), dry, real)).toMatch(/deleted/);
    expect(explain(p, undefined, now(), dry, { ...real, capReached: true })).toMatch(/real run's event cap/);
    expect(explain(undefined, p, now({ arrivedAt: 2000 }), dry, real)).toMatch(/arrived after the dry run was planned/);
    expect(explain(undefined, p, now(), { ...dry, capReached: true }, real)).toMatch(/dry run's event cap/);
    expect(explain(err("PRODUCT_NOT_FOUND"), p, now(), dry, real)).toMatch(/product was added/);
    expect(explain(err("ORIGINAL_PURCHASE_NOT_FOUND"), p, now(), dry, real)).toMatch(/purchase was credited/);
    expect(explain(p, skip("PURCHASE_EXISTS"), now({ processed: true, processedBy: "real" }), dry, real)).toMatch(
      /ledger entry already existed/,
    );
    expect(explain(p, err("PRODUCT_INVALID"), now(), dry, real)).toMatch(/real run failed on it \(PRODUCT_INVALID\)/);
  });
});
