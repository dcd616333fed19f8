// A delivery's next move on its chunk, decided afresh at every page boundary from what it knows then.
import type { Chunk, Holder } from "./chunk";

// ───────────────────────────── a delivery's next move ─────────────────────────────

/** What a delivery knows at a page boundary. */
export interface DeliveryView {
  run: {
    status: "pending" | "running" | "paused" | "completed" | "failed" | "cancelled";
    pausedReason: string | null;
  } | null;
  killSwitchOn: boolean;
  chunk: Chunk | null;
  me: Holder;
  /** This delivery claimed the chunk. */
  holding: boolean;
  /** The task generation the delivery was queued for (null: any). */
  generation: number | null;
  /** This delivery claimed a stopped chunk to finish the page its vanished holder left in flight. */
  draining: boolean;
  /** …and has committed that page. */
  drained: boolean;
  /** Pages this delivery committed on the chunk. */
  pages: number;
  /** The delivery's time slice is used up. */
  sliceOver: boolean;
}

export type Move =
  | { kind: "exit"; why: "missing" | "run_finished" | "taken_over" | "inactive" | "superseded" }
  | { kind: "settle"; to: "paused" | "cancelled"; reason: string; drainAllowed: boolean }
  | { kind: "claim" }
  | { kind: "page" }
  | { kind: "handoff" };

/** The next thing a delivery does with its chunk, checked afresh at every page boundary. */
export function nextMove(v: DeliveryView): Move {
  const { run, chunk } = v;
  if (!run || !chunk) return { kind: "exit", why: "missing" };
  if (run.status === "completed" || run.status === "failed") return { kind: "exit", why: "run_finished" };
  if (v.holding && chunk.lease?.owner !== v.me.owner) return { kind: "exit", why: "taken_over" };
  if (run.status === "cancelled") {
    if (v.draining && !v.drained) return { kind: "page" };
    return { kind: "settle", to: "cancelled", reason: "run_cancelled", drainAllowed: v.killSwitchOn };
  }
  if (!v.killSwitchOn) return { kind: "settle", to: "paused", reason: "kill_switch", drainAllowed: false };
  if (run.status === "paused")
    return { kind: "settle", to: "paused", reason: run.pausedReason ?? "paused", drainAllowed: false };
  if (chunk.status !== "pending" && chunk.status !== "running") return { kind: "exit", why: "inactive" };
  if (!v.holding) {
    if (v.generation !== null && v.generation < chunk.generation) return { kind: "exit", why: "superseded" };
    return { kind: "claim" };
  }
  if (v.pages > 0 && v.sliceOver) return { kind: "handoff" };
  return { kind: "page" };
}
