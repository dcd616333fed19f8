// What each operator action (pause, resume, cancel, retry) does to a run in each status: change it, nothing
// (every call is idempotent), or refuse with what to do instead. runs/control.ts applies the decision.
import { isActiveRun } from "./run";
import type { RunStatus } from "./types";

export const CONTROL_ACTIONS = ["pause", "resume", "cancel", "retry"] as const;
export type ControlAction = (typeof CONTROL_ACTIONS)[number];

export type ControlDecision =
  { kind: "change"; to: RunStatus } | { kind: "noop"; reason: string } | { kind: "conflict"; message: string };

export interface RunFacts {
  status: RunStatus;
  /** Open (unresolved) per-event errors. */
  openErrors: number;
  /** Retries requested so far. */
  retries: number;
}

/** What each control call does in each status: change it, nothing (calls are idempotent), or refuse with what to do instead. */
export function decideControl(action: ControlAction, run: RunFacts, id: string): ControlDecision {
  const { status } = run;
  switch (action) {
    case "pause":
      if (isActiveRun(status)) return { kind: "change", to: "paused" };
      if (status === "paused") return { kind: "noop", reason: "the run is already paused" };
      return { kind: "conflict", message: `Run ${id} is ${status}; there is nothing to pause.` };
    case "resume":
      if (status === "paused") return { kind: "change", to: "running" };
      if (isActiveRun(status)) return { kind: "noop", reason: `the run is already ${status}` };
      if (status === "failed")
        return {
          kind: "conflict",
          message: `Run ${id} failed; use retry to run its failed chunks and errored events again.`,
        };
      if (status === "completed")
        return {
          kind: "conflict",
          message: `Run ${id} is completed; there is nothing to resume. Use retry to re-examine its errored events, or start a new run.`,
        };
      return { kind: "conflict", message: `Run ${id} was cancelled and cannot be resumed; start a new run.` };
    case "cancel":
      if (isActiveRun(status) || status === "paused") return { kind: "change", to: "cancelled" };
      if (status === "cancelled") return { kind: "noop", reason: "the run is already cancelled" };
      return { kind: "conflict", message: `Run ${id} is already ${status}; there is nothing to cancel.` };
    case "retry":
      if (status === "failed" || (status === "completed" && run.openErrors > 0))
        return { kind: "change", to: "running" };
      if (status === "completed")
        return { kind: "conflict", message: `Run ${id} completed without errors; there is nothing to retry.` };
      if (isActiveRun(status) && run.retries > 0)
        return { kind: "noop", reason: "a retry of this run is already under way" };
      if (status === "cancelled")
        return { kind: "conflict", message: `Run ${id} was cancelled and cannot be retried; start a new run.` };
      return {
        kind: "conflict",
        message: `Run ${id} is still ${status}; retry applies once it has ended (pause and resume control a run in progress).`,
      };
  }
}
