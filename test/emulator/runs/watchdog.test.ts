// The watchdog: runs that could make no progress, and the one pass that makes them end. Before it existed,
// each of these runs stayed `running` for good. The clock is the test's (leases expire on demand).
import { describe, expect, it } from "vitest";
import { LEASE_SECONDS } from "../../../functions/src/chunks/worker";
import { controlRun } from "../../../functions/src/runs/control";
import { repairRun, watchRuns } from "../../../functions/src/runs/watchdog";
import { db, manualClock, RecordingQueue, setKillSwitch, testDeps, TEST_CALLER } from "../../support/emulator";
import { deliverAll, deliverOnce, startInProcess } from "../../support/deliver";
import { Store } from "../../support/scenario";
import { entriesOf, runDoc } from "../../support/runs";

const BY = TEST_CALLER;
const LEASE_MS = LEASE_SECONDS * 1000;

async function chunkDoc(id: string, day: string) {
  return (await db().collection("dataMigrations").doc(id).collection("chunks").doc(day).get()).data() as Record<
    string,
    unknown
  >;
}

async function store(name: string, days: number, perDay: number) {
  const s = await Store.create(name);
  const gems = s.product("gems", 2);
  for (let day = 1; day <= days; day++)
    for (let i = 0; i < perDay; i++) s.purchase({ user: `u${i % 3}`, product: gems, day, minute: i });
  await s.write();
  return s;
}

describe("the watchdog", () => {
  it("finishes a chunk its helping task left running when the run was paused and resumed", async () => {
    const s = await store("wdhelp", 2, 6);
    let id = "";
    let helped = false;
    const { deps, queue } = testDeps({
      config: { pageSize: 3 },
      faults: {
        async at(point, info) {
          // The delivery of day 1 helps with day 2, which the watchdog must not lose: day 2's own task arrives
          // meanwhile and finds it taken, then the helping work fails.
          if (helped || point !== "page-read" || info.chunkId !== s.day(2)) return;
          helped = true;
          const day2 = tasks.find((t) => t.payload.chunkId === s.day(2));
          await deliverOnce(plain.deps, day2?.payload, day2?.taskId ?? "");
          throw new Error("injected: the helping work failed");
        },
      },
    });
    const plain = testDeps({ config: { pageSize: 3 }, queue });
    const clock = manualClock(deps, plain.deps);
    id = await startInProcess(deps, { type: "webhook_replay", ...s.range(1, 2), dryRun: false });
    const tasks = (queue as RecordingQueue).drain();
    const day1 = tasks.find((t) => t.payload.chunkId === s.day(1));
    await expect(deliverOnce(deps, day1?.payload, day1?.taskId ?? "")).rejects.toThrow(/helping work failed/);
    expect(helped).toBe(true);
    expect(await chunkDoc(id, s.day(2))).toMatchObject({ status: "running" });

    // The operator pauses; Cloud Tasks retries the day-1 task while the run is paused; then resumes.
    await controlRun(plain.deps, id, "pause", BY);
    await deliverOnce(plain.deps, day1?.payload, day1?.taskId ?? "", 1);
    await controlRun(plain.deps, id, "resume", BY);
    await deliverAll(plain.deps, queue as RecordingQueue, id);
    clock.advance(LEASE_MS + 1000);
    await watchRuns(plain.deps);
    const run = await deliverAll(plain.deps, queue as RecordingQueue, id);
    expect(run).toMatchObject({ status: "completed", total: 12, processed: 12 });
    expect((await s.ledger()).size).toBe(12);
  });

  it("picks up a chunk whose delivery crashed on its last attempt, counting what it wrote once", async () => {
    const s = await store("wdcrash", 1, 6);
    let crash = true;
    const { deps, queue } = testDeps({
      config: { pageSize: 4, groupSize: 2 },
      faults: {
        at(point) {
          if (crash && point === "before-page-commit") throw new Error("injected: the process died");
        },
      },
    });
    const clock = manualClock(deps);
    const id = await startInProcess(deps, { type: "webhook_replay", ...s.range(1, 1), dryRun: false });
    const [task] = (queue as RecordingQueue).drain();
    // The page was applied and the process died before committing it; every later attempt died the same
    // way before it could record anything, and Cloud Tasks has no attempt left: no task, a lease that runs out.
    await expect(deliverOnce(deps, task?.payload, task?.taskId ?? "")).rejects.toThrow(/process died/);
    crash = false;
    expect((await s.ledger()).size).toBe(4);
    expect(await chunkDoc(id, s.day(1))).toMatchObject({ status: "running", total: 0 });

    // Before the lease expires the watchdog leaves the chunk to its holder; after, it queues a new task.
    expect(await repairRun(deps, id)).toEqual([]);
    clock.advance(LEASE_MS);
    expect(await repairRun(deps, id)).toEqual([{ kind: "requeue", chunkId: s.day(1), why: "lease_expired" }]);
    const run = await deliverAll(deps, queue as RecordingQueue, id);
    expect(run).toMatchObject({ status: "completed", total: 6, processed: 6 });
    expect((await s.ledger()).size).toBe(6);
    expect(await chunkDoc(id, s.day(1))).toMatchObject({ generation: 1, pages: 2 });
  });

  it("closes a run whose last delivery finished every chunk but failed to close it on its last attempt", async () => {
    const s = await store("wdclose", 2, 2);
    const { deps, queue } = testDeps({
      config: { taskMaxAttempts: 1 },
      faults: {
        at(point) {
          if (point === "before-run-close") throw new Error("injected: the roll-up failed");
        },
      },
    });
    const id = await startInProcess(testDeps({ queue }).deps, {
      type: "webhook_replay",
      ...s.range(1, 2),
      dryRun: false,
    });
    for (const task of (queue as RecordingQueue).drain())
      await deliverOnce(deps, task.payload, task.taskId).catch(() => undefined);
    const chunks = await db().collection("dataMigrations").doc(id).collection("chunks").get();
    expect(chunks.docs.map((c) => c.get("status"))).toEqual(["done", "done"]);
    expect((await runDoc(id)).status).toBe("running");

    await watchRuns(testDeps({ queue }).deps);
    expect(await runDoc(id)).toMatchObject({ status: "completed", total: 4, processed: 4, chunksDone: 2 });
  });

  it("queues a resumed chunk whose task could not be queued, and an older generation's late record does not hide it", async () => {
    const s = await store("wdgen", 1, 6);
    let id = "";
    let paused = false;
    const refusing = new (class extends RecordingQueue {
      refuse = false;
      override enqueue(payload: Parameters<RecordingQueue["enqueue"]>[0], taskId: string) {
        return this.refuse
          ? Promise.reject(new Error("injected: Cloud Tasks refused"))
          : super.enqueue(payload, taskId);
      }
    })();
    const plain = testDeps({ config: { pageSize: 3 }, queue: refusing });
    const { deps } = testDeps({
      config: { pageSize: 3 },
      queue: refusing,
      faults: {
        async at(point) {
          if (paused || point !== "before-page-commit") return;
          paused = true;
          await controlRun(plain.deps, id, "pause", BY);
        },
      },
    });
    id = await startInProcess(plain.deps, { type: "webhook_replay", ...s.range(1, 1), dryRun: false });
    const [task] = refusing.drain();
    await deliverOnce(deps, task?.payload, task?.taskId ?? "");
    expect(await chunkDoc(id, s.day(1))).toMatchObject({ status: "paused", generation: 0 });

    // Resume creates generation 1, but its task cannot be queued.
    refusing.refuse = true;
    await expect(controlRun(plain.deps, id, "resume", BY)).rejects.toThrow(/refused/);
    expect(await chunkDoc(id, s.day(1))).toMatchObject({ status: "pending", generation: 1, queued: null });
    // A late record of generation 0's task (queued long ago) arrives now: it must not claim generation 1 is queued.
    const { enqueueChunk } = await import("../../../functions/src/runs/advance");
    refusing.refuse = false;
    await enqueueChunk(
      plain.deps,
      id,
      { id: s.day(1), step: { phase: "purchases", step: "scan" }, generation: 0 },
      Date.now(),
    );
    expect(await chunkDoc(id, s.day(1))).toMatchObject({ generation: 1, queued: null });

    await watchRuns(plain.deps);
    expect(await chunkDoc(id, s.day(1))).toMatchObject({ generation: 1, queued: 1 });
    const run = await deliverAll(plain.deps, refusing, id);
    expect(run).toMatchObject({ status: "completed", total: 6, processed: 6 });
    const repaired = plain.memory.lines.filter((l) => l.event === "run_repaired" && l.migration_id === id);
    expect(repaired).toEqual([
      expect.objectContaining({ repair: "enqueue", chunk_id: s.day(1), reason: "not_queued", severity: "WARNING" }),
    ]);
  });

  it("fails a poison chunk after WATCHDOG_MAX_CRASHES re-queues instead of re-queueing it forever, and a retry can still finish it", async () => {
    const s = await store("wdpoison", 1, 4);
    let poison = true;
    let crashes = 0;
    const { deps, queue, memory } = testDeps({
      config: { maxCrashes: 2 },
      faults: {
        at(point) {
          // Every delivery dies right after claiming: the process is killed (out of memory, say) before any
          // failure path can run, so each task's lease simply runs out.
          if (poison && point === "after-claim") {
            crashes++;
            throw new Error("injected: the process was killed");
          }
        },
      },
    });
    const clock = manualClock(deps);
    const id = await startInProcess(deps, { type: "webhook_replay", ...s.range(1, 1), dryRun: false });
    const repairs: string[] = [];
    for (let round = 0; round < 10; round++) {
      const tasks = (queue as RecordingQueue).drain();
      for (const task of tasks) await expect(deliverOnce(deps, task.payload, task.taskId)).rejects.toThrow(/killed/);
      clock.advance(LEASE_MS);
      const done = await repairRun(deps, id);
      repairs.push(...done.map((r) => r.kind));
      if ((await runDoc(id)).status === "failed") break;
    }
    // Two crash re-queues, then the third expired lease fails the chunk with its last error, and the run ends.
    expect(repairs).toEqual(["requeue", "requeue", "fail_chunk"]);
    expect(crashes).toBe(3);
    expect(await runDoc(id)).toMatchObject({ status: "failed", chunksFailed: 1 });
    expect(await chunkDoc(id, s.day(1))).toMatchObject({
      status: "failed",
      crashes: 2,
      lastError: expect.stringMatching(/stopped without finishing 3 times in a row.*Fix the cause, then retry the run/),
    });
    // What the alert is built on: the chunk's failure and the run's, at ERROR.
    expect(memory.lines).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          event: "chunk_failed",
          reason: "kept_crashing",
          severity: "ERROR",
          migration_id: id,
        }),
        expect.objectContaining({ event: "run_failed", severity: "ERROR", migration_id: id }),
      ]),
    );
    // The cause fixed, a retry starts the chunk's count afresh and finishes it.
    poison = false;
    await controlRun(deps, id, "retry", BY);
    const run = await deliverAll(deps, queue as RecordingQueue, id);
    expect(run).toMatchObject({ status: "completed", total: 4, processed: 4 });
    expect(await chunkDoc(id, s.day(1))).toMatchObject({ crashes: 0 });
  });

  it("drains a cancelled run's page in doubt after the kill switch stayed off for more than a day (issue 18 item 5)", async () => {
    const s = await store("wddrain", 1, 12);
    let crashed = false;
    const config = { pageSize: 6, groupSize: 2, walletGroupSize: 2, parallelGroups: 1 };
    const { deps, queue } = testDeps({
      config,
      faults: {
        at(point) {
          if (point !== "page-half-applied" || crashed) return;
          crashed = true;
          throw new Error("injected: the process died mid-page");
        },
      },
    });
    const clock = manualClock(deps);
    const id = await startInProcess(deps, { type: "webhook_replay", ...s.range(1, 1), dryRun: false });
    const [task] = (queue as RecordingQueue).drain();
    await expect(deliverOnce(deps, task?.payload, task?.taskId ?? "")).rejects.toThrow(/died mid-page/);
    const written = await entriesOf(id);
    expect(written, "part of the page was committed").toBeGreaterThan(0);
    // The operator turns the kill switch off and cancels; the drain's task finds the switch off and waits.
    await setKillSwitch(false);
    try {
      clock.advance(LEASE_MS);
      await controlRun(deps, id, "cancel", BY);
      await deliverAll(deps, queue as RecordingQueue, id);
      expect(await entriesOf(id)).toBe(written);
      expect(await runDoc(id)).toMatchObject({ status: "cancelled", draining: true });
      clock.advance(25 * 3600 * 1000);
    } finally {
      await setKillSwitch(null);
    }
    // A day and more later the switch is on again: the watchdog still looks at the run, and drains it.
    expect((await watchRuns(deps)).repairs).toBeGreaterThan(0);
    await deliverAll(deps, queue as RecordingQueue, id);
    const run = await runDoc(id);
    expect(run).toMatchObject({ status: "cancelled", draining: false });
    expect(await entriesOf(id), "the page in doubt was finished").toBe(6);
    expect(run.processed, "and counted").toBe(6);
  });
});
