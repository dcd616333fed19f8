// The watchdog's repair plan (core/watchdog.ts) for each chunk state in a running, paused and cancelled
// run, with the kill switch on and off, from tables written from the rules, not from the code.
import { describe, expect, it } from "vitest";
import { planRepairs, type WatchSettings } from "../../../functions/src/core/watchdog";
import type { Chunk } from "../../../functions/src/core/chunk";
import { type Phase } from "../../../functions/src/core/types";
import { RUN_NOW, run, head } from "../../support/fixtures";

describe("the watchdog's repairs", () => {
  const settings = (over: Partial<WatchSettings> = {}): WatchSettings => ({
    now: RUN_NOW,
    stallMs: 60_000,
    killSwitchOn: true,
    maxCrashes: 3,
    ...over,
  });
  const expired = { owner: "x", task: "t", attempt: 0, expiresAt: RUN_NOW };
  const live = { owner: "x", task: "t", attempt: 0, expiresAt: RUN_NOW + 1 };

  it("leaves an ended run alone", () => {
    for (const status of ["completed", "failed"] as const)
      expect(planRepairs(run({ status }), [head("a", "running", "purchases", { lease: expired })], settings())).toEqual(
        [],
      );
  });

  it.each([
    // chunk, in a running run → repair
    [
      "running, lease expired",
      head("a", "running", "purchases", { lease: expired }),
      [{ kind: "requeue", chunkId: "a", why: "lease_expired" }],
    ],
    [
      "running, lease expired after 2 crash re-queues",
      head("a", "running", "purchases", { lease: expired, crashes: 2 }),
      [{ kind: "requeue", chunkId: "a", why: "lease_expired" }],
    ],
    // Issue 18 item 3: a poison chunk (every delivery dies holding it) fails instead of being re-queued forever.
    [
      "running, lease expired after 3 crash re-queues",
      head("a", "running", "purchases", { lease: expired, crashes: 3 }),
      [{ kind: "fail_chunk", chunkId: "a", why: "kept_crashing" }],
    ],
    ["running, lease live after 3 crash re-queues", head("a", "running", "purchases", { lease: live, crashes: 3 }), []],
    [
      "running, handed over long ago after 3 crash re-queues",
      head("a", "running", "purchases", { lease: null, queuedAt: RUN_NOW - 60_000, crashes: 3 }),
      [{ kind: "requeue", chunkId: "a", why: "task_stalled" }],
    ],
    ["running, lease live", head("a", "running", "purchases", { lease: live }), []],
    [
      "running, handed over long ago",
      head("a", "running", "purchases", { lease: null, queuedAt: RUN_NOW - 60_000 }),
      [{ kind: "requeue", chunkId: "a", why: "task_stalled" }],
    ],
    [
      "running, handed over just now",
      head("a", "running", "purchases", { lease: null, queuedAt: RUN_NOW - 59_999 }),
      [],
    ],
    [
      "pending, never queued",
      head("a", "pending", "purchases", { queued: null, queuedAt: null }),
      [{ kind: "enqueue", chunkId: "a", why: "not_queued" }],
    ],
    [
      "pending, an older generation queued",
      head("a", "pending", "purchases", { generation: 2, queued: 1, queuedAt: RUN_NOW }),
      [{ kind: "enqueue", chunkId: "a", why: "not_queued" }],
    ],
    [
      "pending, queued long ago",
      head("a", "pending", "purchases", { queued: 0, queuedAt: RUN_NOW - 60_000 }),
      [{ kind: "requeue", chunkId: "a", why: "task_stalled" }],
    ],
    ["pending, queued", head("a", "pending"), []],
    ["paused", head("a", "paused"), [{ kind: "resume_chunk", chunkId: "a", why: "paused_in_running_run" }]],
    ["waiting", head("a", "waiting", "reversals"), []],
    ["done", head("a", "done"), []],
  ] as const)("in a running run, a chunk %s", (_name, chunk, repairs) => {
    expect(planRepairs(run(), [chunk], settings())).toEqual(repairs);
    expect(planRepairs(run({ status: "pending" }), [chunk], settings())).toEqual(repairs);
  });

  it.each([
    [
      "running, lease expired",
      head("a", "running", "purchases", { lease: expired }),
      [{ kind: "settle", chunkId: "a", to: "paused", why: "run_paused" }],
    ],
    [
      "running, handed over",
      head("a", "running", "purchases", { lease: null }),
      [{ kind: "settle", chunkId: "a", to: "paused", why: "run_paused" }],
    ],
    ["running, lease live", head("a", "running", "purchases", { lease: live }), []],
    [
      "pending, queued long ago",
      head("a", "pending", "purchases", { queuedAt: RUN_NOW - 60_000 }),
      [{ kind: "settle", chunkId: "a", to: "paused", why: "run_paused" }],
    ],
    ["pending, queued", head("a", "pending"), []],
    ["paused", head("a", "paused"), []],
  ] as const)("in a paused run, a chunk %s", (_name, chunk, repairs) => {
    expect(planRepairs(run({ status: "paused" }), [chunk], settings())).toEqual(repairs);
  });

  it.each([
    ["pending", head("a", "pending"), [{ kind: "settle", chunkId: "a", to: "cancelled", why: "run_cancelled" }]],
    [
      "waiting",
      head("a", "waiting", "reversals"),
      [{ kind: "settle", chunkId: "a", to: "cancelled", why: "run_cancelled" }],
    ],
    ["paused", head("a", "paused"), [{ kind: "settle", chunkId: "a", to: "cancelled", why: "run_cancelled" }]],
    [
      "running, handed over",
      head("a", "running", "purchases", { lease: null }),
      [{ kind: "settle", chunkId: "a", to: "cancelled", why: "run_cancelled" }],
    ],
    ["running, lease live", head("a", "running", "purchases", { lease: live }), []],
    [
      "running, lease expired",
      head("a", "running", "purchases", { lease: expired }),
      [{ kind: "requeue", chunkId: "a", why: "drain" }],
    ],
    ["done", head("a", "done"), []],
  ] as const)("in a cancelled run, a chunk %s", (_name, chunk, repairs) => {
    expect(planRepairs(run({ status: "cancelled" }), [chunk], settings())).toEqual(repairs);
  });

  it("with the kill switch off, pauses a going run and treats its chunks as a paused run's, and drains nothing", () => {
    expect(
      planRepairs(
        run(),
        [head("a", "running", "purchases", { lease: expired }), head("b", "paused")],
        settings({ killSwitchOn: false }),
      ),
    ).toEqual([
      { kind: "pause_run", reason: "kill_switch" },
      { kind: "settle", chunkId: "a", to: "paused", why: "run_paused" },
    ]);
    expect(
      planRepairs(
        run({ status: "cancelled" }),
        [head("a", "running", "purchases", { lease: expired })],
        settings({ killSwitchOn: false }),
      ),
    ).toEqual([]);
    expect(planRepairs(run({ status: "paused" }), [], settings({ killSwitchOn: false }))).toEqual([]);
  });
});

describe("more of the watchdog's plan", () => {
  const s: WatchSettings = { now: RUN_NOW, stallMs: 60_000, killSwitchOn: true, maxCrashes: 3 };
  it("in a sequential phase queues only the chunk whose turn it is; in purchases every due chunk", () => {
    // README: refunds, chargebacks and closings are decided one day after another, in time order. A
    // reversal backfill's chunks all start due in its first phase, reversals; the watchdog (which every
    // control call also runs) queued every one of them, so later days ran alongside earlier ones (model
    // seed 11000254: a later refund of an order took the line an earlier one had reversed in the dry run).
    const day = (id: string, n: number, phase: Phase, over: Partial<Chunk> = {}) =>
      head(id, "pending", phase, {
        startMs: n * 86_400_000,
        endMs: (n + 1) * 86_400_000,
        queued: null,
        queuedAt: null,
        ...over,
      });
    for (const phase of ["reversals", "closings"] as const) {
      const backfill = run({ type: "reversal_backfill", phase, phases: ["reversals", "closings"] });
      expect(planRepairs(backfill, [day("c", 3, phase), day("a", 1, phase), day("b", 2, phase)], s)).toEqual([
        { kind: "enqueue", chunkId: "a", why: "not_queued" },
      ]);
      // The earliest is at work (queued, or running): nobody else is queued meanwhile.
      expect(
        planRepairs(backfill, [day("a", 1, phase, { queued: 0, queuedAt: RUN_NOW }), day("b", 2, phase)], s),
      ).toEqual([]);
      expect(planRepairs(backfill, [day("a", 1, phase, { status: "done" }), day("b", 2, phase)], s)).toEqual([
        { kind: "enqueue", chunkId: "b", why: "not_queued" },
      ]);
    }
    expect(
      planRepairs(run(), [day("a", 1, "purchases"), day("b", 2, "purchases")], s).map(
        (r) => "chunkId" in r && r.chunkId,
      ),
    ).toEqual(["a", "b"]);
  });

  it("looks at every unfinished chunk of a run, and at none of a finished one", () => {
    const chunks = [
      head("a", "paused"),
      head("b", "done"),
      head("c", "failed"),
      head("d", "cancelled"),
      head("e", "paused"),
    ];
    expect(planRepairs(run(), chunks, s).map((r) => ("chunkId" in r ? r.chunkId : r.kind))).toEqual(["a", "e"]);
    expect(planRepairs(run({ status: "completed" }), [head("a", "paused")], s)).toEqual([]);
    expect(planRepairs(run({ status: "failed" }), [head("a", "pending", "purchases", { queued: null })], s)).toEqual(
      [],
    );
  });

  it("a handed-over chunk whose continuation was never recorded is left to its queue", () => {
    expect(planRepairs(run(), [head("a", "running", "purchases", { lease: null, queuedAt: null })], s)).toEqual([]);
    expect(planRepairs(run({ status: "paused" }), [head("a", "pending", "purchases", { queuedAt: null })], s)).toEqual(
      [],
    );
    // A live lease is never stalled, however old its task.
    expect(
      planRepairs(
        run(),
        [
          head("a", "running", "purchases", {
            lease: { owner: "x", task: "t", attempt: 0, expiresAt: RUN_NOW + 5 },
            queuedAt: 0,
          }),
        ],
        s,
      ),
    ).toEqual([]);
  });

  it("a cancelled run's waiting or paused chunks have no lease to drain", () => {
    expect(planRepairs(run({ status: "cancelled" }), [head("a", "waiting", "purchases", { lease: null })], s)).toEqual([
      { kind: "settle", chunkId: "a", to: "cancelled", why: "run_cancelled" },
    ]);
  });
});
