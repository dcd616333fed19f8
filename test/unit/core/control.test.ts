import { describe, expect, it } from "vitest";
import { decideControl, type ControlAction } from "../../../functions/src/core/control";
import type { RunStatus } from "../../../functions/src/core/types";
import { errorRateOverWindow } from "../../../functions/src/core/window";

const facts = (status: RunStatus, extra: Partial<{ openErrors: number; retries: number }> = {}) => ({
  status,
  openErrors: 0,
  failedChunks: 0,
  retries: 0,
  ...extra,
});

describe("run control decisions", () => {
  const table: Array<
    [ControlAction, RunStatus, "change" | "noop" | "conflict", Partial<{ openErrors: number; retries: number }>?]
  > = [
    ["pause", "pending", "change"],
    ["pause", "running", "change"],
    ["pause", "paused", "noop"],
    ["pause", "completed", "conflict"],
    ["pause", "failed", "conflict"],
    ["pause", "cancelled", "conflict"],
    ["resume", "paused", "change"],
    ["resume", "running", "noop"],
    ["resume", "pending", "noop"],
    ["resume", "completed", "conflict"],
    ["resume", "failed", "conflict"],
    ["resume", "cancelled", "conflict"],
    ["cancel", "pending", "change"],
    ["cancel", "running", "change"],
    ["cancel", "paused", "change"],
    ["cancel", "cancelled", "noop"],
    ["cancel", "completed", "conflict"],
    ["cancel", "failed", "conflict"],
    ["retry", "failed", "change"],
    ["retry", "completed", "change", { openErrors: 3 }],
    ["retry", "completed", "conflict"],
    ["retry", "running", "noop", { retries: 1 }],
    ["retry", "running", "conflict"],
    ["retry", "paused", "conflict"],
    ["retry", "cancelled", "conflict"],
  ];
  it.each(table)("%s on a %s run: %s", (action, status, kind, extra) => {
    const decision = decideControl(action, facts(status, extra), "run_1");
    expect(decision.kind).toBe(kind);
    if (decision.kind === "conflict") expect(decision.message).toMatch(/^Run run_1 /);
  });

  it("tells the operator what to do instead", () => {
    expect(decideControl("resume", facts("failed"), "r")).toMatchObject({
      message: expect.stringMatching(/use retry/),
    });
    expect(decideControl("resume", facts("completed"), "r")).toMatchObject({
      message: expect.stringMatching(/nothing to resume/),
    });
  });
});

describe("auto-pause window", () => {
  it("needs a full window before it judges", () => {
    expect(errorRateOverWindow(["pppe", "ppp"], 10)).toBeNull();
  });

  it("takes the most recent events, newest page first and newest event last within a page", () => {
    // Newest page: "ppee" → its last two are errors; the window of 4 covers only that page.
    expect(errorRateOverWindow(["ppee", "eeee"], 4)).toBe(0.5);
    // A window of 6 reaches two events into the older page, from its end.
    expect(errorRateOverWindow(["ppee", "eepp"], 6)).toBe(2 / 6);
    expect(errorRateOverWindow(["s".repeat(150), "e".repeat(100)])).toBe(0.25);
  });
});

describe("auto-pause window edges", () => {
  it("stops at the window even when a page holds more", () => {
    expect(errorRateOverWindow(["e".repeat(10)], 4)).toBe(1);
    expect(errorRateOverWindow(["pppp", "eeee"], 4)).toBe(0);
    expect(errorRateOverWindow(["ppp", "e", "eeee"], 4)).toBe(0.25);
  });
});
