// Proof under faults and duplicates. Every scenario is generated from a seed (printed with any failure),
// delivered in-process the way Cloud Tasks would (at least once, retried after a throw), and checked against
// an oracle computed from the scenario alone: ledger, balances, counters, and the fate of every event.
//
// Reproduce one seed:  CRASH_SEED=<seed> CRASH_SEEDS=1 npm run emulators:exec -- "vitest run test/emulator/chunks/worker.faults.test.ts"
// More seeds:          CRASH_SEEDS=1000 npm run emulators:exec -- "vitest run test/emulator/chunks/worker.faults.test.ts"
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Config } from "../../../functions/src/config";
import type { FaultInjector, FaultPoint } from "../../../functions/src/deps";
import type { ChunkDoc } from "../../../functions/src/store/chunkDoc";
import { applyEvent } from "../../../functions/src/ledger/apply";
import { ProductCatalog } from "../../../functions/src/ledger/reads";
import { controlRun } from "../../../functions/src/runs/control";
import { buildReport } from "../../../functions/src/runs/report";
import {
  bankFromSeed,
  expectBankInvariants,
  expectedBalances,
  recount,
  seededStream,
  writeBank,
  type BankStore,
} from "../../support/bank";
import { db, RecordingQueue, setKillSwitch, testDeps, TEST_CALLER } from "../../support/emulator";
import { currentDelivery, deliverAll, deliverWithRetries, startInProcess } from "../../support/deliver";
import { runDoc } from "../../support/runs";

const SEEDS = Number(process.env.CRASH_SEEDS ?? 100);
const FIRST_SEED = Number(process.env.CRASH_SEED ?? 4_000_001);
/** Seeds run side by side; each has its own year, store and queue. */
const SEED_CONCURRENCY = 3;

/** A fault the way the client library reports a transient gRPC failure. */
class TransientError extends Error {
  constructor(
    readonly code: number,
    where: string,
  ) {
    super(`injected ${CODE_NAMES[code]} at ${where}`);
  }
}
const CODE_NAMES: Record<number, string> = { 4: "DEADLINE_EXCEEDED", 10: "ABORTED", 14: "UNAVAILABLE" };
const TRANSIENT_CODES = [10, 14, 4];

const CRASH_POINTS: FaultPoint[] = [
  "after-claim",
  "page-read",
  "page-half-applied",
  "before-page-commit",
  "before-chunk-finish",
  "before-run-close",
];
const WRITE_POINTS: FaultPoint[] = ["group-transaction", "group-committed"];

/** Totals across the file, written to the log at the end for test/README.md. */
const tally = {
  seeds: 0,
  deliveries: 0,
  crashes: 0,
  transientBeforeCommit: 0,
  transientAfterCommit: 0,
  duplicateEntries: 0,
  byPoint: {} as Record<string, number>,
};

afterEach(async () => {
  await setKillSwitch(null);
});

afterAll(() => {
  console.log(`fault suite totals: ${JSON.stringify(tally)}`);
});

interface Fault {
  point: FaultPoint;
  /** Fires at the nth time any delivery of this run reaches the point. */
  nth: number;
  code?: number;
}

/**
 * A fault schedule from a seed: one early fault at a point that takes turns from seed to seed (so every
 * point is hit across the suite), and up to three more anywhere in the run.
 */
function scheduleFromSeed(seed: number): Fault[] {
  const next = seededStream(seed * 31 + 7);
  const points = [...CRASH_POINTS, ...WRITE_POINTS];
  const fault = (point: FaultPoint, nth: number): Fault =>
    WRITE_POINTS.includes(point) ? { point, nth, code: TRANSIENT_CODES[Math.floor(next() * 3)] } : { point, nth };
  const first = fault(points[seed % points.length] as FaultPoint, 1);
  const more = Math.floor(next() * 4);
  return [
    first,
    ...Array.from({ length: more }, () =>
      fault(points[Math.floor(next() * points.length)] as FaultPoint, 1 + Math.floor(next() * 4)),
    ),
  ];
}

/**
 * Throws the scheduled faults, and counts what it threw. A fault fires only inside a chunk delivery (which
 * Cloud Tasks retries): a point reached while a run is being started or controlled is not counted, so
 * every fault in the tally really hit a delivery.
 */
function injector(schedule: Fault[], fired: Fault[]): FaultInjector {
  const seen = new Map<FaultPoint, number>();
  return {
    at(point) {
      if (!currentDelivery()) return;
      const n = (seen.get(point) ?? 0) + 1;
      seen.set(point, n);
      const fault = schedule.find((f) => f.point === point && f.nth === n);
      if (!fault) return;
      fired.push(fault);
      throw fault.code ? new TransientError(fault.code, point) : new Error(`injected crash at ${point}`);
    },
  };
}

/** Plays Cloud Tasks one task at a time (so a seed replays the same way), retrying throws; counts deliveries. */
async function deliverInOrder(deps: Parameters<typeof deliverWithRetries>[0], queue: RecordingQueue): Promise<number> {
  let deliveries = 0;
  for (let round = 0; round < 200; round++) {
    const tasks = queue.drain();
    if (tasks.length === 0) return deliveries;
    for (const task of tasks) deliveries += await deliverWithRetries(deps, task.payload, task.taskId);
  }
  throw new Error("the run kept enqueueing tasks for 200 rounds");
}

/** Entry ids of orders whose purchase live processing already handled. */
function liveLedger(bank: BankStore): Record<string, number> {
  const out: Record<string, number> = {};
  bank.spec.orders.forEach((o, i) => {
    const orderId = bank.s.id(`o${i + 1}`);
    if (!o.live) return;
    for (let line = 0; line < o.lines; line++) {
      const id = bank.s.entryId("purchase", orderId, line);
      out[id] = bank.afterReplay.ledger[id] as number;
    }
  });
  return out;
}

/** Everything a finished full-range replay must leave behind, whatever was injected along the way. */
async function expectReplayResult(bank: BankStore, id: string, dryRun: boolean, note: string): Promise<void> {
  const run = await runDoc(id);
  const want = bank.afterReplay.replay;
  if (run.status !== "completed") {
    const chunks = await db().collection("dataMigrations").doc(id).collection("chunks").get();
    const why = chunks.docs
      .filter((c) => c.get("status") !== "done")
      .map((c) => `${c.id} ${c.get("status")} ${c.get("lastError") ?? ""}`);
    expect.fail(`${note}: run ${id} is ${run.status}, not completed (${why.join("; ")})`);
  }
  expect(
    { total: run.total, processed: run.processed, skipped: run.skipped, errors: run.errors },
    `${note}: run counters`,
  ).toEqual({
    total: want.total,
    processed: want.processed,
    skipped: want.skipped,
    errors: want.errors,
  });
  const counted = await recount(id);
  expect(counted.chunks, `${note}: counters equal a recount of the chunks`).toEqual({
    total: want.total,
    processed: want.processed,
    skipped: want.skipped,
    errors: want.errors,
  });
  expect(counted.errorIds, `${note}: recorded errors`).toEqual(want.errorIds);

  const ledgerWanted = dryRun ? liveLedger(bank) : bank.afterReplay.ledger;
  const ledger = await expectBankInvariants(bank, note);
  const extra = Object.keys(ledger).filter((k) => !(k in ledgerWanted));
  tally.duplicateEntries += extra.length;
  expect(ledger, `${note}: ledger equals the oracle`).toEqual(ledgerWanted);
  expect(await bank.s.balances(), `${note}: balances equal the oracle`).toEqual(expectedBalances(bank, ledgerWanted));

  // No event is lost: the run's own record has exactly one outcome for every selected event, its report
  // reconciles and verifies, and Firestore shows each outcome (a real run marks what it processed or
  // skipped; a dry run flags what it would process; an error leaves the event for a later run).
  const report = await buildReport(testDeps().deps, id);
  expect(report.events.map((e) => e.eventId).sort(), `${note}: one outcome per selected event`).toEqual(
    want.selectedIds,
  );
  expect(report.reconciled, `${note}: report reconciles`).toBe(true);
  expect(report.verification.ok, `${note}: report verification ${JSON.stringify(report.verification)}`).toBe(true);
  const outcome = new Map(report.events.map((e) => [e.eventId, e.outcome]));
  const snaps = await db().getAll(...want.selectedIds.map((e) => db().collection("webhookEvents").doc(e)));
  for (const snap of snaps) {
    const o = outcome.get(snap.id);
    const shown =
      o === "error"
        ? snap.get("processed") !== true
        : dryRun
          ? snap.get("processed") !== true && (o === "skipped" || snap.get("dryRunProcessed") === true)
          : snap.get("processed") === true;
    expect(shown, `${note}: event ${snap.id} (${o}) shows its outcome in Firestore`).toBe(true);
  }
}

async function pool<T>(items: T[], size: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: size }, async () => {
      while (next < items.length) await work(items[next++] as T);
    }),
  );
}

const SMALL = { maxDays: 3, maxUsers: 4, minOrders: 3, maxOrders: 12, markedOnly: false };

describe("crash and resume, seeded", () => {
  it(
    `${SEEDS} seeds from ${FIRST_SEED}: crashes and transient errors at every step boundary end with the oracle's ledger and counters`,
    async () => {
      const seeds = Array.from({ length: SEEDS }, (_, i) => FIRST_SEED + i);
      const failures: string[] = [];
      await pool(seeds, SEED_CONCURRENCY, async (seed) => {
        const schedule = scheduleFromSeed(seed);
        const note = `seed ${seed} (faults ${JSON.stringify(schedule)})`;
        try {
          // A fault in the middle of a page, or before a page that does not end its day, needs days of
          // several pages of several groups: those seeds get more orders on fewer days and small pages.
          const midPage = schedule[0]?.point === "page-half-applied" || schedule[0]?.point === "before-page-commit";
          const spec = bankFromSeed(seed, midPage ? { ...SMALL, maxDays: 1, minOrders: 10 } : SMALL);
          const bank = await writeBank(`crash${seed}`, spec);
          const knobs = seededStream(seed);
          const dryRun = knobs() < 0.2;
          const pageSize = midPage ? 3 : 3 + Math.floor(knobs() * 6);
          const groupSize = midPage ? 1 : 1 + Math.floor(knobs() * 4);
          // A customer's orders share one group (the default) or are cut like everyone's; a mid-page fault
          // needs several groups in a page, so those seeds cut them.
          const walletGroupSize = midPage ? 1 : knobs() < 0.5 ? groupSize : 150;
          const config: Partial<Config> = {
            pageSize,
            readSize: pageSize * 2,
            groupSize,
            walletGroupSize,
            parallelGroups: 1,
            taskMaxAttempts: 10,
          };
          const fired: Fault[] = [];
          const { deps, queue } = testDeps({ config, faults: injector(schedule, fired) });
          const id = await startInProcess(deps, {
            type: "webhook_replay",
            ...bank.s.range(1, spec.days),
            dryRun,
            maxErrorRate: 1,
          });
          tally.deliveries += await deliverInOrder(deps, queue as RecordingQueue);
          // The seed's first fault, at the point this seed rotates to, must have hit a chunk delivery.
          const first = schedule[0] as Fault;
          if (!fired.some((f) => f.point === first.point))
            throw new Error(`its first fault (${first.point}) never fired inside a delivery`);
          await expectReplayResult(bank, id, dryRun, note);
          tally.seeds++;
          for (const f of fired) {
            tally.byPoint[f.point] = (tally.byPoint[f.point] ?? 0) + 1;
            if (f.point === "group-transaction") tally.transientBeforeCommit++;
            else if (f.point === "group-committed") tally.transientAfterCommit++;
            else tally.crashes++;
          }
        } catch (error) {
          failures.push(`${note}: ${(error as Error).message.split("\n")[0]}`);
        }
      });
      expect(failures, "seeds that failed (rerun one with CRASH_SEED=<seed> CRASH_SEEDS=1)").toEqual([]);
      // The schedules must actually have hit the run, or this suite proves nothing: every fault point fired
      // inside a delivery, many times over.
      expect(tally.crashes).toBeGreaterThan(SEEDS / 2);
      expect(tally.transientBeforeCommit + tally.transientAfterCommit).toBeGreaterThan(SEEDS / 10);
      if (SEEDS >= 2 * (CRASH_POINTS.length + WRITE_POINTS.length)) {
        for (const point of [...CRASH_POINTS, ...WRITE_POINTS])
          expect(tally.byPoint[point] ?? 0, `faults fired at ${point}`).toBeGreaterThan(0);
      }
    },
    Math.max(900_000, SEEDS * 2_000),
  );
});

describe("transient Firestore errors on writes", () => {
  it.each(
    TRANSIENT_CODES.flatMap((code) => WRITE_POINTS.map((point) => [CODE_NAMES[code] as string, point, code] as const)),
  )(
    "%s at %s, on the first write and one in six after (at most 12 per run), is retried and nothing is applied twice",
    async (_name, point, code) => {
      const seed = 5_000_000 + code * 10 + WRITE_POINTS.indexOf(point);
      const spec = bankFromSeed(seed, { maxDays: 2, maxUsers: 3, minOrders: 15, maxOrders: 20, markedOnly: false });
      const bank = await writeBank(`transient${code}${point.length}`, spec);
      const next = seededStream(seed);
      let injected = 0;
      const { deps, queue } = testDeps({
        config: { pageSize: 6, groupSize: 2, parallelGroups: 3, taskMaxAttempts: 30 },
        faults: {
          at(where) {
            if (where === point && injected < 12 && (injected === 0 || next() < 1 / 6)) {
              injected++;
              throw new TransientError(code, where);
            }
          },
        },
      });
      const id = await startInProcess(deps, {
        type: "webhook_replay",
        ...bank.s.range(1, spec.days),
        dryRun: false,
        maxErrorRate: 1,
      });
      tally.deliveries += await deliverInOrder(deps, queue as RecordingQueue);
      expect(injected).toBeGreaterThan(0);
      if (point === "group-transaction") tally.transientBeforeCommit += injected;
      else tally.transientAfterCommit += injected;
      await expectReplayResult(bank, id, false, `seed ${seed}`);
    },
  );
});

describe("duplicate delivery", () => {
  it.each([
    [2, false],
    [2, true],
    [3, false],
    [3, true],
    [5, false],
    [5, true],
  ] as const)(
    "every chunk task delivered %i times (concurrently: %s) leaves one clean delivery's ledger and counters",
    async (times, concurrent) => {
      const seed = 6_000_000 + times * 2 + (concurrent ? 1 : 0);
      const spec = bankFromSeed(seed, { maxDays: 3, maxUsers: 5, minOrders: 25, maxOrders: 35, markedOnly: false });
      const bank = await writeBank(`dup${times}${concurrent ? "c" : "s"}`, spec);
      const { deps, queue } = testDeps({ config: { pageSize: 5, groupSize: 2, parallelGroups: 3 } });
      const id = await startInProcess(deps, {
        type: "webhook_replay",
        ...bank.s.range(1, spec.days),
        dryRun: false,
        maxErrorRate: 1,
      });
      // Count the deliveries the plan makes: every task that was ever enqueued, `times` times.
      const before = (queue as RecordingQueue).names.size;
      await deliverAll(deps, queue as RecordingQueue, id, { times, concurrent });
      tally.deliveries += Math.max(before, (queue as RecordingQueue).names.size) * times;
      await expectReplayResult(bank, id, false, `seed ${seed}`);
      // And every chunk delivered yet again, late, after the run closed, changes nothing.
      const ledger = await bank.s.ledgerPoints();
      const run = await runDoc(id);
      const chunks = await db().collection("dataMigrations").doc(id).collection("chunks").get();
      await Promise.all(
        chunks.docs.map((c) => deliverWithRetries(deps, { migrationId: id, chunkId: c.id }, `late-${c.id}`)),
      );
      expect(await bank.s.ledgerPoints()).toEqual(ledger);
      expect(await runDoc(id)).toMatchObject({
        status: run.status,
        total: run.total,
        processed: run.processed,
        skipped: run.skipped,
        errors: run.errors,
      });
    },
  );
});

describe("bank invariant under overlapping runs", () => {
  it.each([7_000_001, 7_000_002, 7_000_003, 7_000_004])(
    "seed %i: a replay, a reversal backfill, dry runs and live processing over overlapping ranges, at once",
    async (seed) => {
      const spec = bankFromSeed(seed, { maxDays: 6, maxUsers: 6, minOrders: 40, maxOrders: 70, markedOnly: true });
      const bank = await writeBank(`bank${seed}`, spec);
      const d = spec.days;
      const half = Math.max(1, Math.ceil(d / 2));
      // Admission control lets real runs of one type never overlap; what may overlap does, all at once: a
      // replay, a reversal backfill, dry runs of both, and live processing handling events as they come.
      const runs = [
        { type: "webhook_replay", ...bank.s.range(1, Math.min(d, half + 1)), dryRun: false },
        { type: "reversal_backfill", ...bank.s.range(half, d), dryRun: false },
        { type: "webhook_replay", ...bank.s.range(1, d), dryRun: true },
        { type: "reversal_backfill", ...bank.s.range(1, d), dryRun: true },
      ];
      const next = seededStream(seed);
      const live = bank.eventIds.filter(() => next() < 0.3);
      const catalog = new ProductCatalog(db());
      await Promise.all([
        ...runs.map(async (body) => {
          const { deps, queue } = testDeps({ config: { pageSize: 5, groupSize: 3, parallelGroups: 2 } });
          const id = await startInProcess(deps, { ...body, maxErrorRate: 1 });
          const run = await deliverAll(deps, queue as RecordingQueue, id, { times: 2, concurrent: true });
          expect(run.status, `seed ${seed}: ${body.type} ${body.startDate}..${body.endDate}`).toBe("completed");
          expect(run.total).toBe(run.processed + run.skipped + run.errors);
        }),
        (async () => {
          // Live processing fails now and then under this contention (the emulator gives up on a transaction
          // waiting for a lock); the provider redelivers a webhook that failed, so it is tried again.
          for (const eventId of live) {
            for (let attempt = 1; ; attempt++) {
              try {
                await applyEvent(db(), eventId, { walletField: "id" }, catalog);
                break;
              } catch (error) {
                if (attempt >= 5) throw error;
              }
            }
          }
        })(),
      ]);
      await expectBankInvariants(bank, `seed ${seed}, after the overlapping runs`);

      // Whatever the interleaving, a full replay then a full reversal backfill reach the oracle's ledger.
      for (const type of ["webhook_replay", "reversal_backfill"]) {
        const { deps, queue } = testDeps({ config: { pageSize: 5, groupSize: 3, parallelGroups: 2 } });
        const id = await startInProcess(deps, { type, ...bank.s.range(1, d), dryRun: false, maxErrorRate: 1 });
        expect((await deliverAll(deps, queue as RecordingQueue, id)).status).toBe("completed");
      }
      const ledger = await expectBankInvariants(bank, `seed ${seed}, after the final runs`);
      expect(ledger).toEqual(bank.afterBoth);
      expect(await bank.s.balances()).toEqual(expectedBalances(bank, bank.afterBoth));
    },
  );
});

describe("kill switch at a random moment", () => {
  it.each([8_000_001, 8_000_002, 8_000_003])(
    "seed %i: chunks stop after the page in flight, and a resume completes with the oracle's result",
    async (seed) => {
      const spec = bankFromSeed(seed, { maxDays: 3, maxUsers: 4, minOrders: 40, maxOrders: 60, markedOnly: false });
      const bank = await writeBank(`killrand${seed}`, spec);
      const next = seededStream(seed);
      const flipAt = 1 + Math.floor(next() * 6);
      let calls = 0;
      let pagesAtFlip: Map<string, number> | null = null;
      const { deps, queue } = testDeps({
        config: { pageSize: 4, groupSize: 2, parallelGroups: 2 },
        faults: {
          async at(point, info) {
            if (pagesAtFlip || !info.chunkId || (point !== "page-read" && point !== "before-page-commit")) return;
            if (++calls !== flipAt) return;
            await setKillSwitch(false);
            const chunks = await db()
              .collection("dataMigrations")
              .doc(info.runId as string)
              .collection("chunks")
              .get();
            pagesAtFlip = new Map(chunks.docs.map((c) => [c.id, (c.get("pages") as number | undefined) ?? 0]));
          },
        },
      });
      const id = await startInProcess(deps, {
        type: "webhook_replay",
        ...bank.s.range(1, spec.days),
        dryRun: false,
        maxErrorRate: 1,
      });
      const stopped = await deliverAll(deps, queue as RecordingQueue, id, { concurrent: true });
      expect(pagesAtFlip, `seed ${seed}: the switch was flipped (at call ${flipAt})`).not.toBeNull();
      expect(stopped).toMatchObject({ status: "paused", pausedReason: "kill_switch" });
      const chunks = await db().collection("dataMigrations").doc(id).collection("chunks").get();
      for (const c of chunks.docs) {
        const chunk = c.data() as ChunkDoc;
        // At most the page that was in flight when the switch flipped.
        expect(chunk.pages ?? 0, `seed ${seed}: chunk ${c.id} pages`).toBeLessThanOrEqual(
          ((pagesAtFlip as Map<string, number> | null)?.get(c.id) ?? 0) + 1,
        );
      }
      await expectBankInvariants(bank, `seed ${seed}, while stopped`);
      const ledgerWhileOff = await bank.s.ledgerPoints();
      // Deliveries while the switch is off (Cloud Tasks retrying, say) write nothing.
      const again = new RecordingQueue();
      for (const c of chunks.docs) await again.enqueue({ migrationId: id, chunkId: c.id }, `again-${c.id}`);
      const late = testDeps({ config: { pageSize: 4, groupSize: 2, parallelGroups: 2 }, queue: again });
      await deliverAll(late.deps, again, id);
      expect(await bank.s.ledgerPoints()).toEqual(ledgerWhileOff);

      await setKillSwitch(true);
      await controlRun(deps, id, "resume", TEST_CALLER);
      await deliverAll(deps, queue as RecordingQueue, id);
      await expectReplayResult(bank, id, false, `seed ${seed}, after resume`);
    },
  );
});
