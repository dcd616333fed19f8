// A delivery's next move (core/nextMove.ts) in every situation it can find its chunk in, from a table
// written from the rules, not from the code.
import { describe, expect, it } from "vitest";
import { nextMove, type DeliveryView } from "../../../functions/src/core/nextMove";
import { me, chunk, leases } from "../../support/fixtures";

describe("a delivery's next move", () => {
  const base = (over: Partial<DeliveryView> = {}): DeliveryView => ({
    run: { status: "running", pausedReason: null },
    killSwitchOn: true,
    chunk: chunk({ status: "pending" }),
    me,
    holding: false,
    generation: null,
    draining: false,
    drained: false,
    pages: 0,
    sliceOver: false,
    ...over,
  });
  const held = chunk({ lease: leases.mine });

  it.each([
    ["no run", base({ run: null }), { kind: "exit", why: "missing" }],
    ["no chunk", base({ chunk: null }), { kind: "exit", why: "missing" }],
    [
      "a completed run",
      base({ run: { status: "completed", pausedReason: null } }),
      { kind: "exit", why: "run_finished" },
    ],
    ["a failed run", base({ run: { status: "failed", pausedReason: null } }), { kind: "exit", why: "run_finished" }],
    [
      "its lease taken over",
      base({ holding: true, chunk: chunk({ lease: leases.otherTaskLive }) }),
      { kind: "exit", why: "taken_over" },
    ],
    [
      "a cancelled run",
      base({ run: { status: "cancelled", pausedReason: null } }),
      { kind: "settle", to: "cancelled", reason: "run_cancelled", drainAllowed: true },
    ],
    [
      "a cancelled run, switch off",
      base({ run: { status: "cancelled", pausedReason: null }, killSwitchOn: false }),
      { kind: "settle", to: "cancelled", reason: "run_cancelled", drainAllowed: false },
    ],
    [
      "a cancelled run, draining",
      base({ run: { status: "cancelled", pausedReason: null }, holding: true, chunk: held, draining: true }),
      { kind: "page" },
    ],
    [
      "a cancelled run, drained",
      base({
        run: { status: "cancelled", pausedReason: null },
        holding: true,
        chunk: held,
        draining: true,
        drained: true,
      }),
      { kind: "settle", to: "cancelled", reason: "run_cancelled", drainAllowed: true },
    ],
    [
      "the kill switch off",
      base({ killSwitchOn: false }),
      { kind: "settle", to: "paused", reason: "kill_switch", drainAllowed: false },
    ],
    [
      "a paused run",
      base({ run: { status: "paused", pausedReason: "error_rate" } }),
      { kind: "settle", to: "paused", reason: "error_rate", drainAllowed: false },
    ],
    [
      "a paused run without a reason",
      base({ run: { status: "paused", pausedReason: null } }),
      { kind: "settle", to: "paused", reason: "paused", drainAllowed: false },
    ],
    ["a waiting chunk", base({ chunk: chunk({ status: "waiting" }) }), { kind: "exit", why: "inactive" }],
    ["a done chunk", base({ chunk: chunk({ status: "done" }) }), { kind: "exit", why: "inactive" }],
    [
      "an older task generation",
      base({ generation: 1, chunk: chunk({ status: "pending", generation: 2 }) }),
      { kind: "exit", why: "superseded" },
    ],
    [
      "the current generation",
      base({ generation: 2, chunk: chunk({ status: "pending", generation: 2 }) }),
      { kind: "claim" },
    ],
    [
      "a newer generation than the chunk's",
      base({ generation: 3, chunk: chunk({ status: "pending", generation: 2 }) }),
      { kind: "claim" },
    ],
    ["any generation", base(), { kind: "claim" }],
    ["a pending run", base({ run: { status: "pending", pausedReason: null } }), { kind: "claim" }],
    [
      "held, slice over, pages done",
      base({ holding: true, chunk: held, pages: 1, sliceOver: true }),
      { kind: "handoff" },
    ],
    [
      "held, slice over, no page yet",
      base({ holding: true, chunk: held, pages: 0, sliceOver: true }),
      { kind: "page" },
    ],
    ["held, slice left", base({ holding: true, chunk: held, pages: 3 }), { kind: "page" }],
  ] as const)("with %s", (_name, view, expected) => {
    expect(nextMove(view)).toEqual(expected);
  });
});
