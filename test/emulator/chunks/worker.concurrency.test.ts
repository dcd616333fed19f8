// Two deliveries working on one chunk at the same time, for real: one is stopped in the middle of a page
// while the other works the same page, then resumes. Whatever the order, each event is written once and
// counted once. The test proves the contention happened: each delivery found entries the other had written
// for the same events (fault point `group-found-written`).
import { describe, expect, it } from "vitest";
import { LEASE_SECONDS } from "../../../functions/src/chunks/worker";
import type { FaultInjector, FaultPoint } from "../../../functions/src/deps";
import { controlRun } from "../../../functions/src/runs/control";
import { buildReport } from "../../../functions/src/runs/report";
import { repairRun } from "../../../functions/src/runs/watchdog";
import { db, manualClock, testDeps, type RecordingQueue, TEST_CALLER } from "../../support/emulator";
import { currentDelivery, deliverAll, deliverOnce, startInProcess } from "../../support/deliver";
import { Store } from "../../support/scenario";

async function store(name: string) {
  const s = await Store.create(name);
  const gems = s.product("gems", 4);
  for (let i = 0; i < 8; i++) s.purchase({ user: `u${i % 3}`, product: gems, day: 1, minute: i });
  await s.write();
  return s;
}

/** Counts each fault point per delivery (task name and attempt), and runs `pause` once at a point. */
function recorder(pause: { point: FaultPoint; run: () => Promise<void> }) {
  const seen = new Map<string, number>();
  let paused = false;
  const faults: FaultInjector = {
    async at(point) {
      const d = currentDelivery();
      const key = `${d ? `${d.taskName}#${d.retryCount}` : "outside"}:${point}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
      if (!paused && point === pause.point && d) {
        paused = true;
        await pause.run();
      }
    },
  };
  return {
    faults,
    count: (delivery: string, point: FaultPoint) => seen.get(`${delivery}:${point}`) ?? 0,
    paused: () => paused,
  };
}

async function expectOnce(s: Store, id: string) {
  const run = (await db().collection("dataMigrations").doc(id).get()).data();
  expect(run).toMatchObject({ status: "completed", total: 8, processed: 8, skipped: 0, errors: 0 });
  const ledger = await s.ledger();
  expect(ledger.size, "one entry per order").toBe(8);
  expect([...ledger.values()].every((e) => e.migrationId === id)).toBe(true);
  await s.expectWalletsMatchLedger();
  const pages = await db().collection("dataMigrations").doc(id).collection("pages").get();
  expect(pages.size, "one page record: the page was committed once").toBe(1);
  expect((await buildReport(testDeps().deps, id)).reconciled).toBe(true);
}

// Groups of two events, whoever's they are, so that a page holds several transactions to contend in.
const config = { pageSize: 8, groupSize: 2, walletGroupSize: 2, parallelGroups: 1 };

describe("two deliveries of one chunk at the same time", () => {
  it("a retry of the task takes over while the first attempt is still applying a page: written once, counted once", async () => {
    const s = await store("conc_retry");
    let id = "";
    let task = { payload: undefined as unknown, taskId: "" };
    const rec = recorder({
      point: "page-half-applied",
      // The first attempt has applied half its page; Cloud Tasks gave up on it and delivers attempt 1.
      run: () => deliverOnce(deps, task.payload, task.taskId, 1),
    });
    const { deps, queue } = testDeps({ config, faults: rec.faults });
    id = await startInProcess(deps, { type: "webhook_replay", ...s.range(1, 1), dryRun: false });
    const [queued] = (queue as RecordingQueue).drain();
    task = { payload: queued?.payload, taskId: queued?.taskId ?? "" };
    await deliverOnce(deps, task.payload, task.taskId, 0);
    expect(rec.paused()).toBe(true);
    // Attempt 1 ran the whole page while attempt 0 was stopped half way: it found the groups attempt 0 had
    // written; attempt 0 then found attempt 1's entries for the rest.
    expect(
      rec.count(`${task.taskId}#1`, "group-found-written"),
      "the retry met the first attempt's writes",
    ).toBeGreaterThanOrEqual(1);
    expect(
      rec.count(`${task.taskId}#0`, "group-found-written"),
      "the first attempt met the retry's writes",
    ).toBeGreaterThanOrEqual(2);
    await deliverAll(deps, queue as RecordingQueue, id);
    await expectOnce(s, id);
  });

  it("a lease that expires mid-page lets the watchdog's new task take over: written once, counted once", async () => {
    const s = await store("conc_lease");
    let id = "";
    const rec = recorder({
      point: "page-half-applied",
      run: async () => {
        // The holder is slow: its lease runs out, the watchdog queues a new generation, which is delivered.
        clock.advance(LEASE_SECONDS * 1000);
        expect(await repairRun(deps, id)).toEqual([{ kind: "requeue", chunkId: s.day(1), why: "lease_expired" }]);
        const [next] = (queue as RecordingQueue).drain();
        expect(next?.taskId).toMatch(/-g1$/);
        await deliverOnce(deps, next?.payload, next?.taskId ?? "");
      },
    });
    const { deps, queue } = testDeps({ config, faults: rec.faults });
    const clock = manualClock(deps);
    id = await startInProcess(deps, { type: "webhook_replay", ...s.range(1, 1), dryRun: false });
    const [first] = (queue as RecordingQueue).drain();
    await deliverOnce(deps, first?.payload, first?.taskId ?? "");
    expect(rec.paused()).toBe(true);
    expect(rec.count(`${first?.taskId ?? ""}#0`, "group-found-written")).toBeGreaterThanOrEqual(2);
    await deliverAll(deps, queue as RecordingQueue, id);
    await expectOnce(s, id);
  });
});

describe("a page in flight meets a change", () => {
  it("an event edited after its page was read is decided on the version its transaction reads", async () => {
    const s = await store("conc_edit");
    const edited = s.events[7]?.id ?? "";
    let id = "";
    const rec = recorder({
      point: "page-half-applied",
      // The stored order's line quantity changes after the page was read, before its group is applied.
      run: async () => {
        const ref = db().collection("webhookEvents").doc(edited);
        const body = (await ref.get()).get("body") as { lines: Array<{ quantity: number }> };
        (body.lines[0] as { quantity: number }).quantity = 3;
        await ref.update({ body });
      },
    });
    const { deps, queue } = testDeps({ config, faults: rec.faults });
    id = await startInProcess(deps, { type: "webhook_replay", ...s.range(1, 1), dryRun: false });
    await deliverAll(deps, queue as RecordingQueue, id);
    expect(rec.paused()).toBe(true);
    const orderId = ((await s.event(edited)).body as { id: string }).id;
    expect(
      (await s.ledgerPoints())[s.entryId("purchase", orderId)],
      "credited for the quantity the event has when it is written",
    ).toBe(12);
    await expectOnce(s, id);
  });

  it("a cancel while a slow holder is mid-page: the watchdog drains that page, the holder's late copy is not counted again", async () => {
    const s = await store("conc_drain");
    let id = "";
    const small = { ...config, pageSize: 4 };
    const plain = testDeps({ config: small });
    const rec = recorder({
      point: "page-half-applied",
      run: async () => {
        await controlRun(plain.deps, id, "cancel", TEST_CALLER);
        // The holder is slow: its lease runs out and the watchdog hands the page in flight to a new task.
        clock.advance(LEASE_SECONDS * 1000);
        expect(await repairRun(plain.deps, id)).toEqual([{ kind: "requeue", chunkId: s.day(1), why: "drain" }]);
        const [drain] = (plain.queue as RecordingQueue).drain();
        await deliverOnce(plain.deps, drain?.payload, drain?.taskId ?? "");
      },
    });
    const { deps, queue } = testDeps({ config: small, faults: rec.faults, queue: plain.queue });
    const clock = manualClock(deps, plain.deps);
    id = await startInProcess(deps, { type: "webhook_replay", ...s.range(1, 1), dryRun: false });
    const [first] = (queue as RecordingQueue).drain();
    await deliverOnce(deps, first?.payload, first?.taskId ?? "");
    expect(rec.paused()).toBe(true);
    const run = (await db().collection("dataMigrations").doc(id).get()).data();
    // The page in flight (4 of the day's 8 events) was finished once and counted once; nothing after it.
    expect(run).toMatchObject({ status: "cancelled", total: 4, processed: 4 });
    expect((await s.ledger()).size).toBe(4);
    const chunk = (await db().collection("dataMigrations").doc(id).collection("chunks").doc(s.day(1)).get()).data();
    expect(chunk).toMatchObject({ status: "cancelled", total: 4, processed: 4, pages: 1 });
    expect((await buildReport(testDeps().deps, id)).reconciled).toBe(true);
  });
});
