// What each run-control call does in each status: change it, do nothing (calls are idempotent), or refuse
// with a message that says what to do instead.
import type { RunStatus } from "./types";

export const CONTROL_ACTIONS = ["pause", "resume", "cancel", "retry"] as const;
export type ControlAction = (typeof CONTROL_ACTIONS)[number];

export type ControlDecision =
  | { kind: "change"; to: RunStatus }
  | { kind: "noop"; reason: string }
  | { kind: "conflict"; message: string };

export interface RunFacts {
  status: RunStatus;
  /** Open (unresolved) per-event errors. */
  openErrors: number;
  /** Chunks that exhausted their retries. */
  failedChunks: number;
  /** Retries requested so far. */
  retries: number;
}

export function decideControl(action: ControlAction, run: RunFacts, id: string): ControlDecision {
  const { status } = run;
  switch (action) {
    case "pause":
      if (status === "pending" || status === "running") return { kind: "change", to: "paused" };
      if (status === "paused") return { kind: "noop", reason: "the run is already paused" };
      return { kind: "conflict", message: `Run ${id} is ${status}; there is nothing to pause.` };
    case "resume":
      if (status === "paused") return { kind: "change", to: "running" };
      if (status === "pending" || status === "running") return { kind: "noop", reason: `the run is already ${status}` };
      if (status === "failed") return { kind: "conflict", message: `Run ${id} failed; use retry to run its failed chunks and errored events again.` };
      if (status === "completed") return { kind: "conflict", message: `Run ${id} is completed; there is nothing to resume. Use retry to re-examine its errored events, or start a new run.` };
      return { kind: "conflict", message: `Run ${id} was cancelled and cannot be resumed; start a new run.` };
    case "cancel":
      if (status === "pending" || status === "running" || status === "paused") return { kind: "change", to: "cancelled" };
      if (status === "cancelled") return { kind: "noop", reason: "the run is already cancelled" };
      return { kind: "conflict", message: `Run ${id} is already ${status}; there is nothing to cancel.` };
    case "retry":
      if (status === "failed" || (status === "completed" && run.openErrors > 0)) return { kind: "change", to: "running" };
      if (status === "completed") return { kind: "conflict", message: `Run ${id} completed without errors; there is nothing to retry.` };
      if ((status === "running" || status === "pending") && run.retries > 0) return { kind: "noop", reason: "a retry of this run is already under way" };
      if (status === "cancelled") return { kind: "conflict", message: `Run ${id} was cancelled and cannot be retried; start a new run.` };
      return { kind: "conflict", message: `Run ${id} is still ${status}; retry applies once it has ended (pause and resume control a run in progress).` };
  }
}
