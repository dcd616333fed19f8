// What operators and bookkeeping do to a chunk (core/chunkControl.ts): cancel, and resume, wake, markQueued,
// requeue, fail, noteError, release and retry in every status, from tables written from the rules.
import { describe, expect, it } from "vitest";
import { isFinishedChunk } from "../../../functions/src/core/chunk";
import { release } from "../../../functions/src/core/chunkTransitions";
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
import { CHUNK_STATUSES } from "../../../functions/src/core/types";
import { NOW, me, chunk, leases, LEASE_NAMES } from "../../support/fixtures";

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
