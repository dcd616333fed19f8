// Request bodies of plan execution and canaries (core/request.ts), as the console and the CLI send them.
// Expectations are written from the README's rules, not computed with the functions under test.
import { describe, expect, it } from "vitest";
import { parseExecutePlan, parseStartRun } from "../../../functions/src/core/request";

const options = { maxRangeDays: 366, defaultMaxErrorRate: 0.05, now: new Date("2025-03-01T12:00:00Z") };
const valid = { type: "webhook_replay", startDate: "2025-01-01", endDate: "2025-01-02" };

describe("request bodies", () => {
  it("a canary's user ids are de-duplicated and sorted; without them the run covers everyone", () => {
    expect(parseStartRun({ ...valid, userIds: ["b", "a", "b"] }, options)).toMatchObject({
      ok: true,
      value: { userIds: ["a", "b"] },
    });
    expect(parseStartRun(valid, options)).toMatchObject({ ok: true, value: { userIds: null } });
  });

  it("userIds must be 1 to 100 usable ids", () => {
    for (const bad of [[], Array.from({ length: 101 }, (_, i) => `u${i}`), ["a/b"], [""], ["__x__"], [7], "u1"]) {
      const r = parseStartRun({ ...valid, userIds: bad }, options);
      expect(r.ok, JSON.stringify(bad)).toBe(false);
      if (!r.ok) expect(r.problems[0]?.message).toMatch(/userIds must be a list of 1 to 100 user ids/);
    }
    expect(parseStartRun({ ...valid, userIds: Array.from({ length: 100 }, (_, i) => `u${i}`) }, options).ok).toBe(true);
  });

  it("a body with planOf is a plan execution and may hold nothing else", () => {
    expect(parseExecutePlan(valid)).toBeNull();
    expect(parseExecutePlan({ planOf: "webhook_replay_1700000000000" })).toEqual({
      ok: true,
      value: { planOf: "webhook_replay_1700000000000" },
    });
    const extra = parseExecutePlan({ planOf: "webhook_replay_1", dryRun: false, maxEvents: 3 });
    expect(extra).toMatchObject({ ok: false });
    if (extra && !extra.ok) {
      expect(extra.problems.map((p) => p.field).sort()).toEqual(["dryRun", "maxEvents"]);
      expect(extra.problems[0]?.message).toMatch(/cannot be combined with planOf/);
    }
    for (const bad of ["", "a/b", "__x__", 42, null]) {
      const r = parseExecutePlan({ planOf: bad });
      expect(r?.ok, String(bad)).toBe(false);
      if (r && !r.ok)
        expect(r.problems).toEqual([
          { field: "planOf", message: expect.stringMatching(/planOf must be the id of a completed dry run/) },
        ]);
    }
  });
});
