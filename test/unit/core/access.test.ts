import { describe, expect, it } from "vitest";
import { admit, overlaps } from "../../../functions/src/core/admission";
import {
  honoursSchedulerHeaders,
  permissionsOf,
  refusal,
  schedulerRefusal,
  type Permission,
} from "../../../functions/src/core/access";

const roles = { viewers: ["v@x", "vs@x"], operators: ["o@x"], schedulers: ["s@x", "vs@x"] };

describe("roles", () => {
  it.each([
    ["v@x", ["read"]],
    ["s@x", ["start"]],
    ["o@x", ["read", "start", "control"]],
    ["vs@x", ["read", "start"]],
    ["nobody@x", []],
  ])("%s may %j", (email, rights) => {
    expect([...permissionsOf(email, roles)].sort()).toEqual([...rights].sort());
    for (const p of ["read", "start", "control"] as Permission[])
      expect(refusal(email, p, roles) === null).toBe(rights.includes(p));
  });

  it("says what the caller may not do and which list would allow it", () => {
    expect(refusal("v@x", "start", roles)).toBe(
      "v@x is not allowed to start runs; add it to OPERATOR_EMAILS (or SCHEDULER_EMAILS for a Cloud Scheduler job) to grant it.",
    );
    expect(refusal("s@x", "read", roles)).toBe(
      "s@x is not allowed to read runs; add it to VIEWER_EMAILS (read only) or OPERATOR_EMAILS to grant it.",
    );
    expect(refusal("v@x", "control", roles)).toBe(
      "v@x is not allowed to change runs or the kill switch; add it to OPERATOR_EMAILS to grant it.",
    );
  });

  it("honours Cloud Scheduler headers from schedulers only", () => {
    expect(honoursSchedulerHeaders("s@x", roles)).toBe(true);
    expect(honoursSchedulerHeaders("o@x", roles)).toBe(false);
    expect(honoursSchedulerHeaders("v@x", roles)).toBe(false);
  });
});

describe("admission", () => {
  const run = (
    id: string,
    startDate: string,
    endDate: string,
    over: Partial<{ type: string; dryRun: boolean }> = {},
  ) => ({ id, type: "webhook_replay", startDate, endDate, dryRun: false, ...over });

  it("knows when two ranges share a day, both ends included", () => {
    expect(
      overlaps({ startDate: "2025-01-01", endDate: "2025-01-05" }, { startDate: "2025-01-05", endDate: "2025-01-09" }),
    ).toBe(true);
    expect(
      overlaps({ startDate: "2025-01-06", endDate: "2025-01-09" }, { startDate: "2025-01-01", endDate: "2025-01-05" }),
    ).toBe(false);
    expect(
      overlaps({ startDate: "2025-01-01", endDate: "2025-01-05" }, { startDate: "2025-01-06", endDate: "2025-01-09" }),
    ).toBe(false);
    expect(
      overlaps({ startDate: "2025-01-02", endDate: "2025-01-03" }, { startDate: "2025-01-01", endDate: "2025-01-09" }),
    ).toBe(true);
  });

  it("refuses a real run over an active real run's days of the same type, naming it", () => {
    const active = [run("a", "2025-01-01", "2025-01-05")];
    expect(admit(run("b", "2025-01-05", "2025-01-08"), active, 10)).toMatchObject({
      ok: false,
      status: 409,
      code: "run_overlaps",
      activeRunId: "a",
      message: expect.stringMatching(/^Run a \(webhook_replay, 2025-01-01 to 2025-01-05\) is still active/),
    });
    expect(admit(run("b", "2025-01-06", "2025-01-08"), active, 10)).toEqual({ ok: true });
    expect(admit(run("b", "2025-01-01", "2025-01-05", { dryRun: true }), active, 10)).toEqual({ ok: true });
    expect(admit(run("b", "2025-01-01", "2025-01-05", { type: "reversal_backfill" }), active, 10)).toEqual({
      ok: true,
    });
    expect(
      admit(run("b", "2025-01-01", "2025-01-05"), [run("a", "2025-01-01", "2025-01-05", { dryRun: true })], 10),
    ).toEqual({ ok: true });
  });

  it("refuses any run past the limit of active runs, counting dry ones", () => {
    const active = Array.from({ length: 3 }, (_, i) =>
      run(`r${i}`, `2030-01-0${i + 1}`, `2030-01-0${i + 1}`, { dryRun: i === 0 }),
    );
    expect(admit(run("n", "2031-01-01", "2031-01-01", { dryRun: true }), active, 3)).toEqual({
      ok: false,
      status: 429,
      code: "too_many_runs",
      message: "3 runs are active and at most 3 may be (MAX_ACTIVE_RUNS); try again when one has ended, or cancel one.",
    });
    expect(admit(run("n", "2031-01-01", "2031-01-01"), active, 4)).toEqual({ ok: true });
    // An overlap is the reason given before the count.
    expect(admit(run("n", "2030-01-02", "2030-01-02"), active, 3)).toMatchObject({
      code: "run_overlaps",
      activeRunId: "r1",
    });
  });
});

describe("what a scheduler may start (issue 18 item 10)", () => {
  const replay = { lookbackDays: 2, dryRun: false, maxEvents: 10000 };
  const body = { type: "webhook_replay", lookbackDays: 2, dryRun: false, maxEvents: 10000 };
  const both = { ...roles, operators: ["o@x", "so@x"], schedulers: ["s@x", "so@x"] };
  it.each([
    ["the recurring replay", body, true],
    ["with a lower cap", { ...body, maxEvents: 10 }, true],
    ["without a cap (the default applies)", { type: "webhook_replay", lookbackDays: 2, dryRun: false }, true],
    ["a higher cap", { ...body, maxEvents: 10001 }, false],
    ["another window", { ...body, lookbackDays: 3 }, false],
    [
      "dates instead of a window",
      { type: "webhook_replay", startDate: "2025-01-01", endDate: "2025-01-02", dryRun: false },
      false,
    ],
    ["a dry run when the replay is real", { ...body, dryRun: true }, false],
    ["no dryRun (a dry run) when the replay is real", { type: "webhook_replay", lookbackDays: 2, maxEvents: 5 }, false],
    ["another type", { ...body, type: "reversal_backfill" }, false],
    ["a canary", { ...body, userIds: ["u1"] }, false],
    ["a pace", { ...body, maxEventsPerSecond: 3 }, false],
    ["a plan execution", { planOf: "webhook_replay_1" }, false],
  ])("a scheduler's %s: allowed %s", (_what, b, allowed) => {
    expect(schedulerRefusal("s@x", both, b, replay) === null).toBe(allowed);
    // An operator (on both lists or not), and callers who are not schedulers at all, are not limited here.
    expect(schedulerRefusal("so@x", both, b, replay)).toBeNull();
    expect(schedulerRefusal("o@x", both, b, replay)).toBeNull();
    expect(schedulerRefusal("v@x", both, b, replay)).toBeNull();
  });
  it("says what the scheduler may start and what the body asked for", () => {
    expect(schedulerRefusal("s@x", both, { ...body, lookbackDays: 30 }, replay)).toBe(
      's@x is a scheduler (SCHEDULER_EMAILS): it may start only the recurring replay {"type": "webhook_replay", "lookbackDays": 2, "dryRun": false, "maxEvents": at most 10000}; this body asks for lookbackDays 30. Operators start other runs.',
    );
  });
});
