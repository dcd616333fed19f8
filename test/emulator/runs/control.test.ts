// Run control: pause, resume, cancel, retry and auto-pause. The run's tasks are delivered in-process
// (RecordingQueue) so each step is deterministic; the control calls go through the HTTP API unless a test
// needs the in-process queue to see what gets (re)queued.
import { describe, expect, it } from "vitest";
import { controlRun } from "../../../functions/src/runs/control";
import type { ChunkDoc } from "../../../functions/src/store/chunkDoc";
import { api, db, testDeps, type RecordingQueue, TEST_CALLER } from "../../support/emulator";
import { deliverAll, startInProcess } from "../../support/deliver";
import { Store } from "../../support/scenario";

async function chunks(id: string): Promise<Record<string, ChunkDoc>> {
  const snap = await db().collection("dataMigrations").doc(id).collection("chunks").get();
  return Object.fromEntries(snap.docs.map((d) => [d.id, d.data() as ChunkDoc]));
}

const cursorKey = (c: ChunkDoc) => {
  const cursor = c.progress.purchases?.cursor;
  return cursor ? `${cursor.createdAt.seconds}.${cursor.createdAt.nanoseconds}/${cursor.id}` : null;
};

describe("pause and resume", () => {
  it("pause stops every chunk at its next page; resume continues from each checkpoint without re-reading a page", async () => {
    const s = await Store.create("pause");
    const gems = s.product("gems", 5);
    for (let day = 1; day <= 3; day++)
      for (let i = 0; i < 30; i++) s.purchase({ user: `u${i % 5}`, product: gems, day, minute: i });
    await s.write();

    const reads: Array<{ chunkId?: string; cursor?: string | null; at: number }> = [];
    let paused = false;
    let id = "";
    const { deps, queue } = testDeps({
      config: { pageSize: 10, groupSize: 5 },
      faults: {
        async at(point, info) {
          if (point === "page-read") reads.push({ chunkId: info.chunkId, cursor: info.cursor, at: Date.now() });
          if (point === "before-page-commit" && !paused) {
            paused = true;
            const res = await api("POST", `/api/admin/dataMigrations/${id}/pause`);
            expect(res.status).toBe(200);
            expect(res.body).toMatchObject({ action: "pause", changed: true });
          }
        },
      },
    });
    id = await startInProcess(deps, { type: "webhook_replay", ...s.range(1, 3), dryRun: false });
    const run = await deliverAll(deps, queue as RecordingQueue, id);
    expect(run).toMatchObject({ status: "paused", pausedReason: "paused by operator@backfill.local" });
    const atPause = await chunks(id);
    // Every chunk stopped at a page boundary; one fast enough may have finished its day before noticing.
    const statuses = Object.values(atPause).map((c) => c.status);
    expect(statuses.every((status) => status === "paused" || status === "done")).toBe(true);
    expect(statuses).toContain("paused");
    const examined = Object.values(atPause).reduce((n, c) => n + c.total, 0);
    expect(examined).toBeGreaterThan(0);
    expect(examined).toBeLessThan(90);
    expect((await s.ledger()).size).toBe(examined);

    const again = await api("POST", `/api/admin/dataMigrations/${id}/pause`);
    expect(again.status).toBe(200);
    expect(again.body.changed).toBe(false);

    const resumedAt = Date.now();
    const resumed = await controlRun(deps, id, "resume", TEST_CALLER);
    expect(resumed).toMatchObject({ action: "resume", changed: true });
    const done = await deliverAll(deps, queue as RecordingQueue, id);
    expect(done).toMatchObject({ status: "completed", total: 90, processed: 90 });

    // The first page each chunk read after the resume started at the checkpoint it paused with.
    for (const [day, chunk] of Object.entries(atPause)) {
      const first = reads.find((r) => r.chunkId === day && r.at >= resumedAt);
      if (chunk.status === "paused") expect(first?.cursor, day).toBe(cursorKey(chunk));
    }
    expect((await s.ledger()).size).toBe(90);
    await s.expectWalletsMatchLedger();
  });
});

describe("cancel", () => {
  it("stops the run for good, deletes its queued tasks, and leaves nothing written", async () => {
    const s = await Store.create("cancel");
    const gems = s.product("gems", 5);
    for (let day = 1; day <= 2; day++)
      for (let i = 0; i < 5; i++) s.purchase({ user: "u1", product: gems, day, minute: i });
    await s.write();
    const { deps, queue } = testDeps();
    const id = await startInProcess(deps, { type: "webhook_replay", ...s.range(1, 2), dryRun: false });
    expect((queue as RecordingQueue).names.size).toBe(2);

    const result = await controlRun(deps, id, "cancel", TEST_CALLER);
    expect(result).toMatchObject({ changed: true, migration: { status: "cancelled" } });
    expect((queue as RecordingQueue).drain()).toEqual([]); // both tasks deleted
    expect(Object.values(await chunks(id)).map((c) => c.status)).toEqual(["cancelled", "cancelled"]);
    expect((await s.ledger()).size).toBe(0);
  });

  it("in the emulator, where queued tasks cannot be deleted, their handlers see the cancel and exit", async () => {
    const s = await Store.create("cancel2");
    const gems = s.product("gems", 5);
    s.purchase({ user: "u1", product: gems, day: 1 });
    await s.write();
    const { deps, queue } = testDeps();
    const id = await startInProcess(deps, { type: "webhook_replay", ...s.range(1, 1), dryRun: false });
    const res = await api("POST", `/api/admin/dataMigrations/${id}/cancel`);
    expect(res.status).toBe(200);
    const run = await deliverAll(deps, queue as RecordingQueue, id);
    expect(run.status).toBe("cancelled");
    expect((await s.ledger()).size).toBe(0);
    expect((await api("POST", `/api/admin/dataMigrations/${id}/cancel`)).body.changed).toBe(false);
  });
});

describe("transitions that make no sense", () => {
  it.each([
    ["resume", /is completed; there is nothing to resume/],
    ["pause", /is completed; there is nothing to pause/],
    ["cancel", /already completed/],
    ["retry", /completed without errors; there is nothing to retry/],
  ])("%s on a completed run is a 409 that says what to do", async (action, message) => {
    const res = await api("POST", "/api/jobs/backfill", {
      body: { type: "webhook_replay", startDate: "1997-01-01", endDate: "1997-01-01", dryRun: false },
    });
    const id = res.body.migrationId as string;
    await expect
      .poll(async () => (await api("GET", `/api/admin/dataMigrations/${id}`)).body.migration.status)
      .toBe("completed");
    const refused = await api("POST", `/api/admin/dataMigrations/${id}/${action}`);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe("invalid_transition");
    expect(refused.body.error.message).toMatch(message);
  });

  it("a cancelled run cannot be resumed, retried or paused", async () => {
    const s = await Store.create("cancel3");
    s.purchase({ user: "u1", product: s.product("gems", 5), day: 2 });
    await s.write();
    const { deps } = testDeps();
    const id = await startInProcess(deps, { type: "webhook_replay", ...s.range(1, 3), dryRun: true });
    await controlRun(deps, id, "cancel", TEST_CALLER);
    for (const action of ["resume", "retry", "pause"]) {
      const res = await api("POST", `/api/admin/dataMigrations/${id}/${action}`);
      expect(res.status, action).toBe(409);
    }
  });

  it.each(["pause", "cancel"] as const)(
    "%s that lands just after the run's last page ended it says it changed nothing",
    async (action) => {
      const s = await Store.create(`late${action}`);
      s.purchase({ user: "u1", product: s.product("gems", 5), day: 1 });
      await s.write();
      const plain = testDeps();
      const id = await startInProcess(plain.deps, { type: "webhook_replay", ...s.range(1, 1), dryRun: false });
      // The call reads the run while it is pending; before it writes, the run's task is delivered and the run
      // completes (its last page lands).
      let fired = 0;
      const { deps } = testDeps({
        queue: plain.queue,
        faults: {
          async at(point) {
            if (point !== "control-decided") return;
            fired++;
            await deliverAll(plain.deps, plain.queue as RecordingQueue, id);
          },
        },
      });
      const result = await controlRun(deps, id, action, TEST_CALLER);
      expect(fired).toBe(1);
      expect(result).toMatchObject({ action, changed: false, migration: { status: "completed", processed: 1 } });
      const actions = await db().collection("dataMigrations").doc(id).collection("actions").get();
      expect(actions.docs.map((d) => [d.get("action"), d.get("outcome"), d.get("statusBefore")])).toEqual([
        [action, "noop", "pending"],
      ]);
    },
  );

  it("answers 404 for an unknown run or action and 405 for the wrong method", async () => {
    expect((await api("POST", "/api/admin/dataMigrations/webhook_replay_1/pause")).status).toBe(404);
    expect((await api("POST", "/api/admin/dataMigrations/webhook_replay_1/explode")).status).toBe(404);
    const wrong = await api("GET", "/api/admin/dataMigrations/webhook_replay_1/pause");
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("POST");
  });
});

describe("retry", () => {
  it("re-runs only the failed chunk and the errored events, inside the same run, with counters that stay true", async () => {
    const s = await Store.create("retry");
    const gems = s.product("gems", 100);
    const missing = s.id("missing");
    const day1 = [];
    for (let i = 0; i < 10; i++)
      day1.push(s.purchase({ user: `u${i % 3}`, product: i === 4 ? missing : gems, day: 1, minute: i }));
    for (let i = 0; i < 10; i++) s.purchase({ user: `u${i % 3}`, product: gems, day: 2, minute: i });
    s.reversal(day1[0]!.orderId, { user: "u0", product: gems, day: 3 });
    s.reversal(day1[1]!.orderId, { user: "u1", product: gems, day: 3, minute: 1 });
    s.reversal(day1[4]!.orderId, { user: "u1", product: missing, day: 3, minute: 2 }); // its purchase fails first
    await s.write();

    let broken = true;
    const { deps, queue } = testDeps({
      config: { taskMaxAttempts: 3 },
      faults: {
        at(point, info) {
          if (broken && point === "page-read" && info.chunkId === s.day(2))
            throw new Error("Firestore is having a bad day");
        },
      },
    });
    const id = await startInProcess(deps, { type: "webhook_replay", ...s.range(1, 3), dryRun: false });
    const failed = await deliverAll(deps, queue as RecordingQueue, id);
    expect(failed).toMatchObject({ status: "failed", chunksFailed: 1, total: 13, processed: 11, errors: 2 });
    expect((await chunks(id))[s.day(2)]).toMatchObject({
      status: "failed",
      lastError: expect.stringMatching(/bad day/),
    });

    const before = await api("GET", `/api/admin/dataMigrations/${id}/report`);
    expect(before.body).toMatchObject({ reconciled: true, totals: { total: 13, processed: 11, errors: 2 } });
    expect(
      before.body.events
        .filter((e: { outcome: string }) => e.outcome === "error")
        .map((e: { code: string }) => e.code)
        .sort(),
    ).toEqual(["ORIGINAL_PURCHASE_NOT_FOUND", "PRODUCT_NOT_FOUND"]);

    // The cause is fixed: the product exists and Firestore is fine again.
    broken = false;
    await db().collection("products").doc(missing).set({ name: "missing", points: 40 });
    const retried = await controlRun(deps, id, "retry", TEST_CALLER);
    expect(retried).toMatchObject({ changed: true, migration: { status: "running", retries: 1 } });
    const twice = await controlRun(deps, id, "retry", TEST_CALLER);
    expect(twice.changed).toBe(false);

    const done = await deliverAll(deps, queue as RecordingQueue, id);
    expect(done).toMatchObject({
      status: "completed",
      total: 23,
      processed: 23,
      skipped: 0,
      errors: 0,
      chunksFailed: 0,
    });
    expect((await s.ledger()).size).toBe(23);
    await s.expectWalletsMatchLedger();
    const openErrors = await db()
      .collection("dataMigrations")
      .doc(id)
      .collection("errors")
      .where("status", "==", "open")
      .count()
      .get();
    expect(openErrors.data().count).toBe(0);

    const report = await api("GET", `/api/admin/dataMigrations/${id}/report`);
    expect(report.status).toBe(200);
    expect(report.body).toMatchObject({
      reconciled: true,
      totals: { total: 23, processed: 23, skipped: 0, errors: 0 },
      verification: { ok: true, processedEvents: 23, entriesFound: 23, walletMismatches: [] },
    });
    expect(report.body.verification.walletsChecked).toBe(3);
    expect(report.body.events).toHaveLength(23);

    const nothingLeft = await api("POST", `/api/admin/dataMigrations/${id}/retry`);
    expect(nothingLeft.status).toBe(409);
  });
});

describe("auto-pause", () => {
  it("pauses a run whose error rate over its last 200 examined events exceeds maxErrorRate, and records why", async () => {
    const s = await Store.create("auto");
    const gems = s.product("gems", 1);
    for (let i = 0; i < 400; i++)
      s.purchase({ user: `u${i % 7}`, product: i % 5 === 0 ? s.id("nope") : gems, day: 1, minute: i });
    await s.write();
    const { deps, queue } = testDeps({ config: { pageSize: 50, groupSize: 25 } });
    const id = await startInProcess(deps, {
      type: "webhook_replay",
      ...s.range(1, 1),
      dryRun: false,
      maxEvents: 1000,
      maxErrorRate: 0.05,
    });
    const run = await deliverAll(deps, queue as RecordingQueue, id);
    expect(run).toMatchObject({ status: "paused", pausedReason: "error_rate" });
    expect(run.autoPause).toMatchObject({ window: 200, threshold: 0.05 });
    expect(run.autoPause?.errorRate).toBeCloseTo(0.2, 1);
    const chunk = (await chunks(id))[s.day(1)] as ChunkDoc;
    expect(chunk.total).toBeGreaterThanOrEqual(200);
    expect(chunk.total).toBeLessThan(400);

    // With maxErrorRate 1 the same data never pauses a run.
    const { deps: deps2, queue: queue2 } = testDeps({ config: { pageSize: 50, groupSize: 25 } });
    const id2 = await startInProcess(deps2, {
      type: "webhook_replay",
      ...s.range(1, 1),
      dryRun: true,
      maxErrorRate: 1,
    });
    expect(await deliverAll(deps2, queue2 as RecordingQueue, id2)).toMatchObject({ status: "completed" });
  });
});
