// Admission control: two operators cannot race the same repair, and only so many runs are active at once.
import { beforeAll, describe, expect, it } from "vitest";
import { startRun } from "../../../functions/src/start/start";
import { controlRun } from "../../../functions/src/runs/control";
import { api, clearFirestore, db, testDeps, TEST_CALLER, type RecordingQueue } from "../../support/emulator";
import { deliverAll } from "../../support/deliver";
import { Store } from "../../support/scenario";

beforeAll(async () => {
  // Counts of active runs are global: start from an empty database.
  await clearFirestore();
});

describe("overlapping runs", () => {
  it("a real run over days an active real run of its type covers is refused with 409 naming it; dry runs and other types may overlap", async () => {
    const s = await Store.create("overlap");
    s.purchase({ user: "u1", product: s.product("gems", 5), day: 2 });
    await s.write();
    const { deps } = testDeps(); // in-process: its tasks stay queued, so the run stays active
    const first = (
      await startRun(deps, { type: "webhook_replay", ...s.range(1, 3), dryRun: false }, { caller: TEST_CALLER })
    ).run.migrationId;

    const second = await api("POST", "/api/jobs/backfill", {
      body: { type: "webhook_replay", ...s.range(3, 5), dryRun: false },
    });
    expect(second.status).toBe(409);
    expect(second.body.error).toMatchObject({ code: "run_overlaps", details: { activeRunId: first } });
    expect(second.body.error.message).toContain(first);
    for (const allowed of [
      { type: "webhook_replay", ...s.range(2, 2), dryRun: true },
      { type: "reversal_backfill", ...s.range(1, 3), dryRun: false },
      { type: "webhook_replay", ...s.range(4, 6), dryRun: false },
    ]) {
      expect((await api("POST", "/api/jobs/backfill", { body: allowed })).status, JSON.stringify(allowed)).toBe(202);
    }
    // Once the first run has ended, the same request is admitted.
    await controlRun(deps, first, "cancel", TEST_CALLER);
    expect(
      (await api("POST", "/api/jobs/backfill", { body: { type: "webhook_replay", ...s.range(3, 5), dryRun: false } }))
        .status,
    ).toBe(202);
  });

  it("a retry that would make an ended run race a newer one is refused the same way", async () => {
    const s = await Store.create("overlapretry");
    s.purchase({ user: "u1", product: s.id("ghost"), day: 1 });
    await s.write();
    const { deps, queue } = testDeps();
    const old = (
      await startRun(
        deps,
        { type: "webhook_replay", ...s.range(1, 1), dryRun: false, maxErrorRate: 1 },
        { caller: TEST_CALLER },
      )
    ).run.migrationId;
    expect(await deliverAll(deps, queue as RecordingQueue, old)).toMatchObject({ status: "completed", errors: 1 });
    const newer = (
      await startRun(deps, { type: "webhook_replay", ...s.range(1, 2), dryRun: false }, { caller: TEST_CALLER })
    ).run.migrationId;
    const retry = await api("POST", `/api/admin/dataMigrations/${old}/retry`);
    expect(retry.status).toBe(409);
    expect(retry.body.error).toMatchObject({ code: "run_overlaps", details: { activeRunId: newer } });
    expect((await db().collection("dataMigrations").doc(old).get()).get("status")).toBe("completed");
  });
});

describe("a retry and a start at the same moment (issue 18 item 7)", () => {
  it("a start landing after a retry was admitted and before it reopened its run is refused as an overlap", async () => {
    const s = await Store.create("retryrace");
    s.purchase({ user: "u1", product: s.id("ghost"), day: 1 });
    await s.write();
    const plain = testDeps();
    const old = (
      await startRun(
        plain.deps,
        { type: "webhook_replay", ...s.range(1, 1), dryRun: false, maxErrorRate: 1 },
        { caller: TEST_CALLER },
      )
    ).run.migrationId;
    expect(await deliverAll(plain.deps, plain.queue as RecordingQueue, old)).toMatchObject({
      status: "completed",
      errors: 1,
    });
    let between: unknown = null;
    const { deps } = testDeps({
      faults: {
        async at(point) {
          if (point !== "retry-admitted" || between !== null) return;
          // The retry is admitted; its run still reads completed. An operator starts the same days now.
          between = await startRun(
            plain.deps,
            { type: "webhook_replay", ...s.range(1, 1), dryRun: false },
            { caller: TEST_CALLER },
          ).catch((e: unknown) => e);
        },
      },
    });
    expect((await controlRun(deps, old, "retry", TEST_CALLER)).changed).toBe(true);
    expect(between, "the start landed between admission and reopening").not.toBeNull();
    expect(between).toMatchObject({ status: 409, code: "run_overlaps", details: { activeRunId: old } });
    expect((await db().collection("dataMigrations").doc(old).get()).data()).toMatchObject({
      status: "running",
      retries: 1,
      retryAdmittedAt: null,
    });
  });
});

describe("active runs", () => {
  it("eleven starts against a limit of ten: the eleventh gets 429 too_many_runs with Retry-After", async () => {
    await clearFirestore();
    const { deps } = testDeps({ config: { maxActiveRuns: 10 } });
    const s = await Store.create("limit");
    const body = { type: "webhook_replay", ...s.range(1, 1), dryRun: true };
    s.purchase({ user: "u1", product: s.product("gems", 1), day: 1 });
    await s.write();
    // Runs that have something to do stay active: their tasks are queued in-process and not delivered.
    for (let i = 0; i < 10; i++) await startRun(deps, body, { caller: TEST_CALLER });
    const eleventh = await startRun(deps, body, { caller: TEST_CALLER }).catch((e: unknown) => e);
    expect(eleventh).toMatchObject({ status: 429, code: "too_many_runs", headers: { "Retry-After": "60" } });
    expect((eleventh as Error).message).toMatch(/10 runs are active and at most 10 may be \(MAX_ACTIVE_RUNS\)/);
    // The limit is checked before a run is recorded: even one with nothing to do waits for a place.
    await expect(
      startRun(
        deps,
        { type: "webhook_replay", startDate: "2499-01-01", endDate: "2499-01-01", dryRun: true },
        { caller: TEST_CALLER },
      ),
    ).rejects.toMatchObject({ status: 429 });
  });

  it("the local stack admits what production does (issue 18 item 8): ten active runs, and the eleventh start through Hosting gets 429", async () => {
    await clearFirestore();
    const { deps } = testDeps();
    const s = await Store.create("localimit");
    s.purchase({ user: "u1", product: s.product("gems", 1), day: 1 });
    await s.write();
    const body = { type: "webhook_replay", ...s.range(1, 1), dryRun: true };
    // In-process starts whose tasks are never delivered stay active.
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push((await startRun(deps, body, { caller: TEST_CALLER })).run.migrationId);
    const eleventh = await api("POST", "/api/jobs/backfill", { body });
    expect(eleventh.status, eleventh.text).toBe(429);
    expect(eleventh.body.error).toMatchObject({ code: "too_many_runs" });
    expect(eleventh.body.error.message).toMatch(/10 runs are active and at most 10 may be/);
    for (const id of ids) await controlRun(deps, id, "cancel", TEST_CALLER);
    expect((await api("POST", "/api/jobs/backfill", { body })).status).toBe(202);
  });
});
