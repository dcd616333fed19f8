// A delivery's transitions of a chunk (core/chunkTransitions.ts): claim, commitPage and settle, for every
// status and lease, from tables written from the rules in core/chunk.ts's header, not from the code.
import { describe, expect, it } from "vitest";
import { type Chunk } from "../../../functions/src/core/chunk";
import { claim, commitPage, settle, type PageResult } from "../../../functions/src/core/chunkTransitions";
import { CHUNK_STATUSES, type ChunkStatus } from "../../../functions/src/core/types";
import { NOW, LEASE, me, chunk, leases, LEASE_NAMES, type LeaseName, page } from "../../support/fixtures";

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
