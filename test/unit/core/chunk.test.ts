// The chunk state machine (core/chunk.ts): every transition in every status, from a table written from the
// rules in the module's header, not from its code.
import { describe, expect, it } from "vitest";
import {
  afterStep,
  isFinishedChunk,
  newChunk,
  nextPhase,
  positionKey,
  type Chunk,
  type Holder,
} from "../../../functions/src/core/chunk";
import { claim, commitPage, release, settle, type PageResult } from "../../../functions/src/core/chunkTransitions";
import {
  cancelChunk,
  fail,
  markQueued,
  noteError,
  requeue,
  resumeChunk,
  retryChunk,
  wake,
} from "../../../functions/src/core/chunkControl";
import { nextMove, type DeliveryView } from "../../../functions/src/core/nextMove";
import { CHUNK_STATUSES, type ChunkStatus } from "../../../functions/src/core/types";

const NOW = 1_000_000;
const D = { id: "2025-01-02", startMs: Date.UTC(2025, 0, 2), endMs: Date.UTC(2025, 0, 3) };
const LEASE = 120_000;
const me: Holder = { owner: "me", task: "task-a", attempt: 1 };

function chunk(over: Partial<Chunk> = {}): Chunk {
  return {
    id: "2025-01-02",
    startMs: Date.UTC(2025, 0, 2),
    endMs: Date.UTC(2025, 0, 3),
    status: "running",
    step: { phase: "purchases", step: "scan" },
    upcoming: [{ phase: "reversals", step: "scan" }],
    budgets: { purchases: 10, reversals: 5 },
    progress: {},
    errorCursor: null,
    pages: 0,
    generation: 0,
    crashes: 0,
    queued: null,
    queuedAt: null,
    attempts: 0,
    lease: null,
    stoppedAtBudget: false,
    pausedReason: null,
    lastError: null,
    total: 0,
    processed: 0,
    skipped: 0,
    errors: 0,
    startedAt: null,
    finishedAt: null,
    throughput: null,
    pageInDoubt: false,
    ...over,
  };
}

const leases = {
  none: null,
  mine: { ...me, expiresAt: NOW + 1 },
  otherTaskLive: { owner: "x", task: "task-b", attempt: 0, expiresAt: NOW + 1 },
  sameTaskEarlierLive: { owner: "x", task: "task-a", attempt: 0, expiresAt: NOW + 1 },
  sameTaskSameAttemptLive: { owner: "x", task: "task-a", attempt: 1, expiresAt: NOW + 1 },
  sameTaskLaterLive: { owner: "x", task: "task-a", attempt: 2, expiresAt: NOW + 1 },
  otherTaskExpired: { owner: "x", task: "task-b", attempt: 0, expiresAt: NOW },
} as const;
type LeaseName = keyof typeof leases;
const LEASE_NAMES = Object.keys(leases) as LeaseName[];

describe("claim", () => {
  // Expected result by lease, for a chunk that is due or being worked on.
  const byLease: Record<LeaseName, string> = {
    none: "claimed",
    mine: "claimed",
    otherTaskLive: "taken",
    sameTaskEarlierLive: "claimed", // a retry takes over from the attempt Cloud Tasks gave up on
    sameTaskSameAttemptLive: "busy", // a duplicate delivery of the same attempt waits
    sameTaskLaterLive: "busy",
    otherTaskExpired: "claimed",
  };
  const table = CHUNK_STATUSES.flatMap((status) =>
    LEASE_NAMES.map(
      (lease) => [status, lease, status === "pending" || status === "running" ? byLease[lease] : "inactive"] as const,
    ),
  );
  it.each(table)("a %s chunk with lease %s: %s", (status, lease, expected) => {
    const c = chunk({
      status,
      lease: leases[lease],
      attempts: 2,
      startedAt: status === "running" ? 5 : null,
      pausedReason: "x",
    });
    const t = claim(c, me, NOW, LEASE);
    expect(t.result.kind).toBe(expected);
    if (expected === "claimed") {
      expect(t.update).toEqual({
        status: "running",
        lease: { ...me, expiresAt: NOW + LEASE },
        attempts: 3,
        startedAt: status === "running" ? 5 : NOW,
        pausedReason: null,
        // Whatever an earlier holder left, this delivery's lease now answers for the chunk.
        pageInDoubt: false,
      });
      expect(t.result).toEqual({ kind: "claimed", inherited: lease !== "none" && lease !== "mine" });
    } else {
      expect(t.update).toBeNull();
    }
  });
});

function page(c: Chunk, over: Partial<PageResult> = {}): PageResult {
  return {
    from: positionKey(c),
    outcomes: { total: 3, processed: 2, skipped: 1, errors: 0 },
    examined: 3,
    cursor: { seconds: 10, nanos: 5, id: "e3" },
    errorCursor: null,
    stepDone: false,
    stoppedAtBudget: false,
    ...over,
  };
}

describe("commitPage", () => {
  it("adds a scan page's counters, moves that phase's position and renews the holder's lease", () => {
    const c = chunk({
      lease: leases.mine,
      total: 4,
      processed: 1,
      skipped: 2,
      errors: 1,
      pages: 2,
      progress: { purchases: { cursor: null, examined: 4 } },
    });
    const t = commitPage(c, page(c), me, NOW, LEASE);
    expect(t.result).toEqual({
      kind: "committed",
      page: 3,
      status: "running",
      counters: { total: 7, processed: 3, skipped: 3, errors: 1 },
      stoppedAtBudget: false,
      stepDone: false,
    });
    expect(t.update).toEqual({
      total: 7,
      processed: 3,
      skipped: 3,
      errors: 1,
      pages: 3,
      progress: { purchases: { cursor: { seconds: 10, nanos: 5, id: "e3" }, examined: 7 } },
      errorCursor: null,
      lease: { ...me, expiresAt: NOW + LEASE },
      // The page's three events, drawn in the second it was committed in.
      throughput: { seconds: 1, since: NOW, events: [3] },
    });
  });

  it("is a conflict from any other position, so a page is counted once whoever applied it", () => {
    const c = chunk({ lease: leases.mine });
    const planned = page(c);
    for (const moved of [
      { pages: 1 },
      { step: { phase: "reversals", step: "scan" } },
      { step: { phase: "purchases", step: "errors" } },
      { errorCursor: "e9" },
      { progress: { purchases: { cursor: { seconds: 1, nanos: 0, id: "a" }, examined: 0 } } },
      { progress: { purchases: { cursor: null, examined: 1 } } },
    ] as Array<Partial<Chunk>>) {
      expect(commitPage({ ...c, ...moved }, planned, me, NOW, LEASE), JSON.stringify(moved)).toEqual({
        result: { kind: "conflict" },
        update: null,
      });
    }
  });

  it("counts a page whose holder lost its lease (or whose chunk was stopped) without touching the lease or the status", () => {
    for (const status of ["running", "paused", "cancelled", "failed"] as const) {
      const c = chunk({ status, lease: status === "running" ? leases.otherTaskLive : null });
      const t = commitPage(c, page(c), me, NOW, LEASE);
      expect(t.result).toMatchObject({ kind: "committed", status });
      expect(t.update).not.toHaveProperty("lease");
      expect(t.update).not.toHaveProperty("status");
      expect(t.update).toMatchObject({ total: 3, pages: 1 });
    }
  });

  it("replaces an errors step's old errors by their new outcomes, keeping the total and the scan position", () => {
    const scanned = { cursor: { seconds: 3, nanos: 0, id: "z" }, examined: 9 };
    const c = chunk({
      step: { phase: "purchases", step: "errors" },
      lease: leases.mine,
      total: 9,
      processed: 5,
      errors: 4,
      progress: { purchases: scanned },
    });
    const t = commitPage(
      c,
      page(c, { outcomes: { total: 3, processed: 2, skipped: 0, errors: 1 }, examined: 0, errorCursor: "e7" }),
      me,
      NOW,
      LEASE,
    );
    expect(t.update).toMatchObject({
      total: 9,
      processed: 7,
      skipped: 0,
      errors: 2,
      errorCursor: "e7",
      progress: { purchases: scanned },
    });
  });

  describe("at the end of a step", () => {
    const done = (c: Chunk, over: Partial<PageResult> = {}) =>
      commitPage(c, page(c, { stepDone: true, ...over }), me, NOW, LEASE);

    it("a running chunk moves to the next step of the same phase at once", () => {
      const c = chunk({
        lease: leases.mine,
        upcoming: [
          { phase: "purchases", step: "errors" },
          { phase: "reversals", step: "scan" },
        ],
      });
      const t = done(c);
      expect(t.result).toMatchObject({ status: "running", stepDone: true });
      expect(t.update).toMatchObject({
        step: { phase: "purchases", step: "errors" },
        upcoming: [{ phase: "reversals", step: "scan" }],
        errorCursor: null,
      });
      expect(t.update?.lease).toEqual({ ...me, expiresAt: NOW + LEASE });
    });

    it("waits for a later phase, letting go of its lease and its task", () => {
      const c = chunk({ lease: leases.mine, queued: 0 });
      const t = done(c);
      expect(t.update).toMatchObject({
        status: "waiting",
        step: { phase: "reversals", step: "scan" },
        upcoming: [],
        lease: null,
        queued: null,
      });
    });

    it("is done when nothing is left", () => {
      const c = chunk({ lease: leases.mine, step: { phase: "reversals", step: "scan" }, upcoming: [] });
      expect(done(c).update).toMatchObject({ status: "done", lease: null, finishedAt: NOW });
    });

    it.each([
      // status, next step kind → status after
      ["pending", "same phase", "pending"],
      ["pending", "later phase", "waiting"],
      ["pending", "none", "done"],
      ["paused", "same phase", "paused"],
      ["paused", "later phase", "paused"],
      ["paused", "none", "done"],
      ["failed", "later phase", "failed"],
      ["failed", "none", "done"],
      ["cancelled", "later phase", "cancelled"],
      ["cancelled", "none", "cancelled"],
      ["running", "none", "done"],
    ] as const)("a %s chunk whose step ends with %s next is %s", (status, next, expected) => {
      const upcoming =
        next === "none"
          ? []
          : next === "same phase"
            ? [{ phase: "purchases" as const, step: "errors" as const }]
            : [{ phase: "reversals" as const, step: "scan" as const }];
      const c = chunk({ status, upcoming });
      const t = done(c);
      expect(t.result).toMatchObject({ status: expected });
      if (expected === status) expect(t.update).not.toHaveProperty("status");
      else expect(t.update?.status).toBe(expected);
      if (expected === "done") expect(t.update?.finishedAt).toBe(NOW);
    });
  });
});

describe("settle", () => {
  // paused: from pending or running; cancelled: from any unfinished status.
  const canPause: ChunkStatus[] = ["pending", "running"];
  const canCancel: ChunkStatus[] = ["pending", "running", "waiting", "paused"];
  // A lease other than the stopping delivery's own may have been left mid-page by a delivery that vanished
  // (issue 18 item 1): a pause keeps that doubt on the chunk, a cancel drains the page first.
  const inDoubt = (lease: LeaseName, withMe: boolean, doubted: boolean) =>
    doubted || (lease !== "none" && !(withMe && lease === "mine"));
  const byLease = (to: "paused" | "cancelled", lease: LeaseName, withMe: boolean, doubted: boolean): string => {
    const stoppable =
      lease === "none" ||
      lease === "otherTaskExpired" ||
      (withMe && (lease === "mine" || lease === "sameTaskEarlierLive"));
    if (!stoppable) return "held";
    return to === "cancelled" && inDoubt(lease, withMe, doubted) ? "drain" : "settled";
  };
  const table = (["paused", "cancelled"] as const).flatMap((to) =>
    CHUNK_STATUSES.flatMap((status) =>
      LEASE_NAMES.flatMap((lease) =>
        [true, false].flatMap((withMe) =>
          [false, true].map(
            (doubted) =>
              [
                to,
                status,
                lease,
                withMe,
                doubted,
                (to === "paused" ? canPause : canCancel).includes(status)
                  ? byLease(to, lease, withMe, doubted)
                  : "unchanged",
              ] as const,
          ),
        ),
      ),
    ),
  );
  it.each(table)(
    "to %s from %s with lease %s (by its holder: %s, page in doubt: %s): %s",
    (to, status, lease, withMe, doubted, expected) => {
      const c = chunk({ status, lease: leases[lease], pausedReason: "earlier", queued: 3, pageInDoubt: doubted });
      const t = settle(c, to, "why", withMe ? me : null, NOW);
      expect(t.result).toBe(expected);
      if (expected !== "settled") {
        expect(t.update).toBeNull();
        return;
      }
      expect(t.update).toEqual({
        status: to,
        lease: null,
        queued: null,
        pausedReason: to === "paused" ? "why" : "earlier",
        ...(to === "cancelled" ? { finishedAt: NOW } : { pageInDoubt: inDoubt(lease, withMe, doubted) }),
      });
    },
  );
});

describe("cancel", () => {
  it.each(
    CHUNK_STATUSES.flatMap((status) =>
      LEASE_NAMES.flatMap((lease) => [false, true].map((doubted) => [status, lease, doubted] as const)),
    ),
  )("a %s chunk with lease %s (page in doubt: %s)", (status, lease, doubted) => {
    const c = chunk({ status, lease: leases[lease], generation: 4, queued: 4, pageInDoubt: doubted });
    const t = cancelChunk(c, NOW);
    const unfinished = !isFinishedChunk(status);
    if (!unfinished) return expect(t).toEqual({ result: "unchanged", update: null });
    const stoppable = lease === "none" || leases[lease].expiresAt <= NOW;
    if (!stoppable) return expect(t).toEqual({ result: "held", update: null });
    if (lease === "none" && !doubted)
      return expect(t).toEqual({
        result: "cancelled",
        update: { status: "cancelled", lease: null, queued: null, pausedReason: null, finishedAt: NOW },
      });
    // A holder vanished mid-page: a fresh task finishes that page, then cancels the chunk. A paused chunk
    // becomes due again for it, under a new generation.
    if (status === "paused")
      return expect(t).toEqual({
        result: "drain",
        update: { status: "pending", pausedReason: null, generation: 5, queued: null, queuedAt: null },
      });
    if (status === "waiting") return expect(t).toEqual({ result: "drain", update: null });
    return expect(t).toEqual({ result: "drain", update: { generation: 5, queued: null, queuedAt: null } });
  });
});

describe("the other transitions, in every status", () => {
  const statuses = CHUNK_STATUSES;

  it.each(statuses)("resume of a %s chunk", (status) => {
    const c = chunk({ status, generation: 2, queued: 2, queuedAt: 9, pausedReason: "operator" });
    if (status !== "paused") return expect(resumeChunk(c, "purchases")).toEqual({ result: false, update: null });
    expect(resumeChunk(c, "purchases")).toEqual({
      result: true,
      update: { status: "pending", pausedReason: null, generation: 3, queued: null, queuedAt: null },
    });
    expect(resumeChunk(c, "reversals").update?.status).toBe("waiting");
  });

  it.each(statuses)("wake of a %s chunk", (status) => {
    const c = chunk({ status, step: { phase: "reversals", step: "scan" }, queued: 1, queuedAt: 3 });
    if (status !== "waiting") return expect(wake(c, "reversals")).toEqual({ result: false, update: null });
    expect(wake(c, "reversals")).toEqual({ result: true, update: { status: "pending", queued: null, queuedAt: null } });
    expect(wake(c, "purchases")).toEqual({ result: false, update: null });
  });

  it.each(statuses)("markQueued of a %s chunk", (status) => {
    const c = chunk({ status, generation: 2 });
    if (isFinishedChunk(status)) return expect(markQueued(c, 2, NOW)).toEqual({ result: false, update: null });
    expect(markQueued(c, 2, NOW)).toEqual({ result: true, update: { queued: 2, queuedAt: NOW } });
    // An older generation's task never hides the current one; a queued generation is recorded once.
    expect(markQueued(c, 1, NOW)).toEqual({ result: false, update: null });
    expect(markQueued({ ...c, queued: 2 }, 2, NOW)).toEqual({ result: false, update: null });
  });

  it.each(statuses)("requeue of a %s chunk", (status) => {
    const c = chunk({ status, generation: 7, queued: 7, queuedAt: 1, lease: leases.otherTaskExpired });
    const can = status === "pending" || status === "running";
    expect(requeue(c)).toEqual(
      can ? { result: true, update: { generation: 8, queued: null, queuedAt: null } } : { result: false, update: null },
    );
    // A re-queue after a delivery vanished holding the chunk counts as a crash; a stalled task does not.
    expect(requeue({ ...c, crashes: 2 }, true)).toEqual(
      can
        ? { result: true, update: { generation: 8, queued: null, queuedAt: null, crashes: 3 } }
        : { result: false, update: null },
    );
  });

  const failed = {
    result: true,
    update: { status: "failed", lastError: "boom", lease: null, queued: null, finishedAt: NOW },
  };
  it.each(statuses)("fail of a %s chunk", (status) => {
    const c = chunk({ status, lease: leases.mine, queued: 1 });
    const can = status === "pending" || status === "running";
    expect(fail(c, "boom", NOW, { task: me.task, generation: null })).toEqual(
      can ? failed : { result: false, update: null },
    );
  });

  // Issue 18 item 4: an old generation's last attempt must not fail a chunk a newer task is working.
  it.each(LEASE_NAMES)("fail by a task's last attempt, with the chunk's lease %s", (name) => {
    const c = chunk({ status: "running", generation: 2, lease: leases[name] });
    const anotherTaskWorks = name === "otherTaskLive";
    expect(fail(c, "boom", NOW, { task: me.task, generation: 2 })).toEqual(
      anotherTaskWorks ? { result: false, update: null } : failed,
    );
    expect(fail(c, "boom", NOW, { task: me.task, generation: null })).toEqual(
      anotherTaskWorks ? { result: false, update: null } : failed,
    );
    // Queued for generation 1, superseded by the watchdog's generation 2: never its to fail.
    expect(fail(c, "boom", NOW, { task: me.task, generation: 1 })).toEqual({ result: false, update: null });
  });

  it.each(statuses)("noteError on a %s chunk", (status) => {
    const c = chunk({ status, lastError: "old" });
    expect(noteError(c, "new")).toEqual(
      isFinishedChunk(status) ? { result: false, update: null } : { result: true, update: { lastError: "new" } },
    );
    expect(noteError(c, "old")).toEqual({ result: false, update: null });
  });

  it.each(statuses)("release of a %s chunk", (status) => {
    const c = chunk({ status, lease: leases.mine, generation: 3 });
    expect(release(c, me, NOW)).toEqual({ result: true, update: { lease: null, queued: 3, queuedAt: NOW } });
    expect(release({ ...c, lease: leases.otherTaskLive }, me, NOW)).toEqual({ result: false, update: null });
    expect(release({ ...c, lease: null }, me, NOW)).toEqual({ result: false, update: null });
  });

  it.each(statuses)("retry of a %s chunk", (status) => {
    const phases = ["purchases", "reversals"] as const;
    const c = chunk({
      status,
      step: { phase: "reversals", step: "scan" },
      upcoming: [],
      errorCursor: "e5",
      generation: 1,
      crashes: 3,
      lease: leases.mine,
      lastError: "x",
      finishedAt: 4,
    });
    const t = retryChunk(c, ["purchases"], phases);
    if (status === "failed") {
      // What it had left (the reversals scan, resumed where it stopped) after the purchases errors step.
      expect(t).toEqual({
        result: true,
        update: {
          status: "waiting",
          step: { phase: "purchases", step: "errors" },
          upcoming: [{ phase: "reversals", step: "scan" }],
          errorCursor: null,
          generation: 2,
          crashes: 0,
          queued: null,
          queuedAt: null,
          lease: null,
          lastError: null,
          finishedAt: null,
        },
      });
      // Failed in the step it resumes: its errors position is kept.
      expect(retryChunk(c, [], phases).update).toMatchObject({
        step: { phase: "reversals", step: "scan" },
        errorCursor: "e5",
      });
    } else if (status === "done") {
      expect(t.update).toMatchObject({ status: "waiting", step: { phase: "purchases", step: "errors" }, upcoming: [] });
      // A done chunk without errors has nothing to retry.
      expect(retryChunk(c, [], phases)).toEqual({ result: false, update: null });
    } else {
      expect(t).toEqual({ result: false, update: null });
    }
  });
});

describe("a new chunk", () => {
  const replay = { phases: ["purchases", "reversals", "closings"] as const };
  it("starts at its first phase with budget, with a scan step for every phase it has budget in", () => {
    expect(newChunk(D, { purchases: 2, reversals: 1, closings: 1 }, { phases: [...replay.phases] }, NOW)).toMatchObject(
      {
        status: "pending",
        step: { phase: "purchases", step: "scan" },
        upcoming: [
          { phase: "reversals", step: "scan" },
          { phase: "closings", step: "scan" },
        ],
        finishedAt: null,
        generation: 0,
        queued: null,
      },
    );
    // Only reversals: it waits for the reversals phase.
    expect(newChunk(D, { purchases: 0, reversals: 3 }, { phases: [...replay.phases] }, NOW)).toMatchObject({
      status: "waiting",
      step: { phase: "reversals", step: "scan" },
      upcoming: [],
    });
    expect(newChunk(D, {}, { phases: [...replay.phases] }, NOW)).toMatchObject({ status: "done", finishedAt: NOW });
    expect(newChunk(D, { reversals: 3 }, { phases: ["reversals", "closings"] }, NOW)).toMatchObject({
      status: "pending",
    });
  });
});

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

describe("steps", () => {
  it("knows the phase after each", () => {
    expect(nextPhase("purchases", ["purchases", "reversals"])).toBe("reversals");
    expect(nextPhase("reversals", ["purchases", "reversals"])).toBeUndefined();
    expect(nextPhase("purchases", ["reversals"])).toBeUndefined();
  });

  it("the position key changes with every part of a position", () => {
    const c = chunk({
      progress: { purchases: { cursor: { seconds: 1, nanos: 2, id: "a" }, examined: 3 } },
      pages: 5,
      errorCursor: "e",
    });
    const keys = new Set(
      [
        c,
        { ...c, pages: 6 },
        { ...c, errorCursor: null },
        { ...c, step: { phase: "purchases" as const, step: "errors" as const } },
        { ...c, step: { phase: "reversals" as const, step: "scan" as const } },
        { ...c, progress: { purchases: { cursor: { seconds: 1, nanos: 3, id: "a" }, examined: 3 } } },
        { ...c, progress: { purchases: { cursor: { seconds: 2, nanos: 2, id: "a" }, examined: 3 } } },
        { ...c, progress: { purchases: { cursor: { seconds: 1, nanos: 2, id: "b" }, examined: 3 } } },
        { ...c, progress: { purchases: { cursor: null, examined: 3 } } },
        { ...c, progress: { purchases: { cursor: { seconds: 1, nanos: 2, id: "a" }, examined: 4 } } },
      ].map(positionKey),
    );
    expect(keys.size).toBe(10);
    // Another phase's progress is not part of this phase's position.
    expect(positionKey({ ...c, progress: { ...c.progress, reversals: { cursor: null, examined: 9 } } })).toBe(
      positionKey(c),
    );
  });

  it("after a step", () => {
    expect(afterStep({ phase: "purchases", step: "scan" }, [])).toEqual({
      status: "done",
      current: { phase: "purchases", step: "scan" },
      upcoming: [],
    });
  });
});

describe("edges of the rules", () => {
  it("a chunk with nothing to do is done at the run's last phase", () => {
    expect(newChunk(D, {}, { phases: ["reversals", "closings"] }, NOW)).toMatchObject({
      status: "done",
      step: { phase: "closings", step: "scan" },
      upcoming: [],
      stoppedAtBudget: false,
    });
    expect(newChunk(D, { purchases: 0 }, { phases: ["purchases", "reversals", "closings"] }, NOW).step).toEqual({
      phase: "closings",
      step: "scan",
    });
  });

  it("an errors step is added once per phase, even when a failed chunk already had one left", () => {
    const phases = ["purchases", "reversals"] as const;
    const c = chunk({
      status: "failed",
      step: { phase: "purchases", step: "errors" },
      upcoming: [{ phase: "reversals", step: "scan" }],
      errorCursor: "e3",
    });
    expect(retryChunk(c, ["purchases", "reversals"], phases).update).toMatchObject({
      step: { phase: "purchases", step: "errors" },
      upcoming: [
        { phase: "reversals", step: "scan" },
        { phase: "reversals", step: "errors" },
      ],
      errorCursor: "e3",
    });
    // A done chunk starts its errors step from the beginning; so does a failed one resuming another step.
    expect(retryChunk({ ...c, status: "done" }, ["purchases"], phases).update).toMatchObject({
      step: { phase: "purchases", step: "errors" },
      errorCursor: null,
    });
    const inScan = chunk({
      status: "failed",
      step: { phase: "purchases", step: "scan" },
      upcoming: [],
      errorCursor: "e3",
    });
    expect(retryChunk(inScan, ["purchases"], phases).update).toMatchObject({
      step: { phase: "purchases", step: "scan" },
      upcoming: [{ phase: "purchases", step: "errors" }],
      errorCursor: "e3",
    });
    const inReversals = chunk({
      status: "failed",
      step: { phase: "reversals", step: "errors" },
      upcoming: [],
      errorCursor: "e3",
    });
    expect(retryChunk(inReversals, ["purchases"], phases).update).toMatchObject({
      step: { phase: "purchases", step: "errors" },
      errorCursor: null,
    });
    expect(retryChunk({ ...inReversals, step: { phase: "reversals", step: "scan" } }, [], phases).update).toMatchObject(
      { step: { phase: "reversals", step: "scan" }, errorCursor: "e3" },
    );
  });

  it("a step's end moves to the next step as planned: no step is dropped", () => {
    const upcoming = [
      { phase: "purchases" as const, step: "errors" as const },
      { phase: "reversals" as const, step: "errors" as const },
      { phase: "reversals" as const, step: "scan" as const },
    ];
    const scan = chunk({ lease: leases.mine, upcoming });
    expect(commitPage(scan, page(scan, { stepDone: true }), me, NOW, LEASE).update).toMatchObject({
      step: upcoming[0],
      upcoming: upcoming.slice(1),
    });
    const errors = chunk({
      lease: leases.mine,
      step: { phase: "purchases", step: "errors" },
      upcoming: [{ phase: "reversals", step: "scan" }],
    });
    expect(
      commitPage(errors, page(errors, { stepDone: true, stoppedAtBudget: true }), me, NOW, LEASE).update,
    ).toMatchObject({ status: "waiting", step: { phase: "reversals", step: "scan" } });
  });

  it("keeps an errors step's and a waiting chunk's bookkeeping exact", () => {
    const c = chunk({
      lease: leases.mine,
      status: "running",
      queued: 2,
      upcoming: [{ phase: "purchases", step: "errors" }],
    });
    const same = commitPage(c, page(c, { stepDone: true }), me, NOW, LEASE).update;
    expect(same).not.toHaveProperty("queued");
    expect(same).not.toHaveProperty("finishedAt");
    expect(same).not.toHaveProperty("status");
  });

  it("a late page that finishes an already done chunk does not move its finish time", () => {
    const c = chunk({ status: "done", upcoming: [], finishedAt: 7 });
    expect(commitPage(c, page(c, { stepDone: true }), me, NOW, LEASE).update).not.toHaveProperty("finishedAt");
  });

  it("a delivery that never held a lease is not taken over", () => {
    const v = {
      run: { status: "running" as const, pausedReason: null },
      killSwitchOn: true,
      me,
      holding: true,
      generation: null,
      draining: false,
      drained: false,
      pages: 1,
      sliceOver: false,
    };
    expect(nextMove({ ...v, chunk: chunk({ lease: null }) })).toEqual({ kind: "exit", why: "taken_over" });
    expect(
      nextMove({
        ...v,
        holding: false,
        generation: 0,
        chunk: chunk({ status: "pending", lease: null, generation: 0 }),
      }),
    ).toEqual({ kind: "claim" });
  });
});
