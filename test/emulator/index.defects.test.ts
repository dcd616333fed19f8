// The three defects a new user found against the local stack (issue "Runs that never lose an event…"), each
// reproduced the way they found it: through Hosting, the API function, the Cloud Tasks emulator and the
// chunk functions. Each test failed before the fix.
import { describe, expect, it } from "vitest";
import { controlRun } from "../../functions/src/runs/control";
import { api, db, postRun, testDeps, waitForRun, type RecordingQueue, TEST_CALLER } from "../support/emulator";
import { deliverAll, deliverWithRetries, startInProcess } from "../support/deliver";
import { Store } from "../support/scenario";

const runOf = async (id: string) =>
  (await api("GET", `/api/admin/dataMigrations/${id}`)).body.migration as Record<string, unknown>;

describe("refunds in the daily replay's ordinary state", () => {
  it("a replay over a range whose purchases live processing already credited reverses the open refunds and chargebacks, dry and real alike", async () => {
    const s = await Store.create("openrefunds");
    const gems = s.product("gems", 40);
    const reversed: string[] = [];
    for (let i = 0; i < 6; i++) {
      const { orderId } = s.purchase({ user: `u${i % 2}`, product: gems, day: 1 + (i % 2), minute: i, live: true });
      if (i % 2 === 0) {
        s.reversal(orderId, {
          user: `u${i % 2}`,
          product: gems,
          day: 2,
          minute: 100 + i,
          type: i === 4 ? "chargeback" : "refund",
        });
        reversed.push(orderId);
      }
    }
    await s.write();

    const dry = await waitForRun(await postRun({ type: "webhook_replay", ...s.range(1, 2), dryRun: true }));
    expect(dry).toMatchObject({ status: "completed", total: 3, processed: 3, skipped: 0, errors: 0 });
    const realId = await postRun({ type: "webhook_replay", ...s.range(1, 2), dryRun: false });
    const real = await waitForRun(realId);
    expect(real).toMatchObject({ status: "completed", total: 3, processed: 3, skipped: 0, errors: 0 });

    const ledger = await s.ledgerPoints();
    for (const orderId of reversed) expect(ledger[s.entryId("reversal", orderId)], orderId).toBe(-40);
    await s.expectWalletsMatchLedger();
    const report = await api("GET", `/api/admin/dataMigrations/${realId}/report`);
    expect(report.body).toMatchObject({
      reconciled: true,
      verification: { ok: true },
      totals: { total: 3, processed: 3 },
    });
  });

  it("after a run over a range is cancelled once its purchases are done, a new run writes the reversals", async () => {
    const s = await Store.create("aftercancel");
    const gems = s.product("gems", 15);
    const orders: string[] = [];
    for (let day = 1; day <= 3; day++) {
      for (let i = 0; i < 4; i++) {
        const { orderId } = s.purchase({ user: `u${i}`, product: gems, day, minute: i + 10 });
        orders.push(orderId);
        // Refunds that arrived on day 1, before their purchases (days 2 and 3): the purchases pass reaches
        // them before their purchase is credited, so they wait for the reversals phase.
        if (i === 0 && day > 1) s.reversal(orderId, { user: `u${i}`, product: gems, day: 1, minute: day });
      }
    }
    await s.write();

    // Deliver the purchases phase in-process (no helping: each delivery works its own day only), then
    // cancel the run before any reversal is applied: every purchase is credited, not one reversal.
    const { deps, queue } = testDeps({ config: { pageSize: 5, sliceSeconds: 0 } });
    const cancelledId = await startInProcess(deps, { type: "webhook_replay", ...s.range(1, 3), dryRun: false });
    for (const task of (queue as RecordingQueue).drain()) await deliverWithRetries(deps, task.payload, task.taskId);
    expect((await db().collection("dataMigrations").doc(cancelledId).get()).get("phase")).toBe("reversals");
    await controlRun(deps, cancelledId, "cancel", TEST_CALLER);
    await deliverAll(deps, queue as RecordingQueue, cancelledId);
    expect((await db().collection("dataMigrations").doc(cancelledId).get()).get("status")).toBe("cancelled");
    expect(Object.keys(await s.ledgerPoints()).filter((k) => k.startsWith("reversal_"))).toEqual([]);
    expect(Object.keys(await s.ledgerPoints()).filter((k) => k.startsWith("purchase_"))).toHaveLength(12);

    const next = await postRun({ type: "webhook_replay", ...s.range(1, 3), dryRun: false });
    expect(await waitForRun(next)).toMatchObject({ status: "completed", total: 2, processed: 2, errors: 0 });
    const ledger = await s.ledgerPoints();
    expect(
      Object.keys(ledger)
        .filter((k) => k.startsWith("reversal_"))
        .sort(),
    ).toEqual([orders[4], orders[8]].map((o) => s.entryId("reversal", o as string)).sort());
    await s.expectWalletsMatchLedger();
    const report = await api("GET", `/api/admin/dataMigrations/${next}/report`);
    expect(report.body).toMatchObject({ reconciled: true, verification: { ok: true } });
  });
});

describe("a dry run and the real run decide alike", () => {
  it("a redelivered purchase whose order is credited and whose product left the catalog is skipped by both, and nothing fails later", async () => {
    const s = await Store.create("gone");
    const promo = s.product("promo", 70);
    const { orderId } = s.purchase({ user: "u1", product: promo, day: 1, minute: 1, live: true });
    const again = s.duplicatePurchase(orderId, { user: "u1", product: promo, day: 1, minute: 2 });
    s.purchase({ user: "u2", product: s.product("gems", 5), day: 1, minute: 3 });
    await s.write();
    await db().collection("products").doc(promo).delete();

    const dryId = await postRun({ type: "webhook_replay", ...s.range(1, 1), dryRun: true });
    const dry = await waitForRun(dryId);
    const realId = await postRun({ type: "webhook_replay", ...s.range(1, 1), dryRun: false });
    const real = await waitForRun(realId);
    expect(dry).toMatchObject({ status: "completed", total: 2, processed: 1, skipped: 1, errors: 0 });
    expect({ total: real.total, processed: real.processed, skipped: real.skipped, errors: real.errors }).toEqual({
      total: 2,
      processed: 1,
      skipped: 1,
      errors: 0,
    });
    expect((await s.event(again)).processed).toBe(true);
    // Nothing is left for a later run to fail on.
    const later = await waitForRun(await postRun({ type: "webhook_replay", ...s.range(1, 1), dryRun: false }));
    expect(later).toMatchObject({ status: "completed", total: 0, errors: 0 });
  });
});

describe("every run ends", () => {
  it("a chunk that settles paused after resume has looked for paused chunks is picked up again, and the run completes", async () => {
    const s = await Store.create("strand");
    const gems = s.product("gems", 2);
    for (let day = 1; day <= 2; day++)
      for (let i = 0; i < 12; i++) s.purchase({ user: `u${i % 3}`, product: gems, day, minute: i });
    await s.write();

    let id = "";
    let paused = false;
    let resumed = false;
    const { deps, queue } = testDeps({
      config: { pageSize: 5, groupSize: 5 },
      faults: {
        async at(point, info) {
          if (point === "before-page-commit" && info.chunkId === s.day(1) && !paused) {
            paused = true;
            await controlRun(plain, id, "pause", TEST_CALLER);
          }
        },
      },
    });
    const plain = { ...deps };
    // The delivery reads the run (paused), and before it parks its chunk, an operator resumes the run.
    const firestore = deps.db;
    deps.db = new Proxy(firestore, {
      get(target, prop, receiver) {
        if (prop !== "getAll") return Reflect.get(target, prop, receiver) as unknown;
        return async (...refs: Parameters<typeof firestore.getAll>) => {
          const snaps = await target.getAll(...refs);
          if (!resumed && snaps[0]?.ref.path === `dataMigrations/${id}` && snaps[0].get("status") === "paused") {
            resumed = true;
            await controlRun(plain, id, "resume", TEST_CALLER);
          }
          return snaps;
        };
      },
    });
    id = await startInProcess(plain, { type: "webhook_replay", ...s.range(1, 2), dryRun: false });
    const tasks = (queue as RecordingQueue).drain();
    const day1 = tasks.find((t) => t.payload.chunkId === s.day(1));
    await deliverWithRetries(deps, day1?.payload, day1?.taskId ?? "");
    expect(resumed).toBe(true);
    for (const t of tasks.filter((t) => t !== day1)) await deliverWithRetries(plain, t.payload, t.taskId);
    const run = await deliverAll(plain, queue as RecordingQueue, id);
    expect(run).toMatchObject({ status: "completed", total: 24, processed: 24 });
    expect((await s.ledger()).size).toBe(24);
  });

  it("a 28-day real run paused at once and resumed once it is paused completes, three times in a row", async () => {
    for (let attempt = 1; attempt <= 3; attempt++) {
      const s = await Store.create(`pauseresume${attempt}`);
      const gems = s.product("gems", 3);
      for (let day = 1; day <= 28; day++)
        for (let i = 0; i < 40; i++) s.purchase({ user: `u${i % 7}`, product: gems, day, minute: i });
      await s.write();
      const id = await postRun({ type: "webhook_replay", ...s.range(1, 28), dryRun: false, maxEvents: 5000 });
      const paused = await api("POST", `/api/admin/dataMigrations/${id}/pause`);
      expect(paused.status).toBe(200);
      await expect.poll(async () => (await runOf(id)).status, { timeout: 60_000 }).toBe("paused");
      // Wait until no chunk is still running: every delivery has noticed the pause.
      await expect
        .poll(
          async () =>
            ((await api("GET", `/api/admin/dataMigrations/${id}`)).body.chunks as Array<{ status: string }>).filter(
              (c) => c.status === "running",
            ).length,
          { timeout: 60_000 },
        )
        .toBe(0);
      expect((await api("POST", `/api/admin/dataMigrations/${id}/resume`)).status).toBe(200);
      const run = await waitForRun(id, ["completed", "failed", "cancelled"], 120_000);
      expect(run, `attempt ${attempt}`).toMatchObject({ status: "completed", total: 1120, processed: 1120 });
      expect((await s.ledger()).size).toBe(1120);
    }
  }, 600_000);
});
