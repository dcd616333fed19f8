// Cloud Tasks delivers at least once. These tests call the chunk handler directly (the same function the
// deployed trigger wraps) to deliver chunks twice, at once, and after crashes, against the emulator.
import { describe, expect, it } from "vitest";
import type { FaultPoint } from "../../../functions/src/deps";
import { db, testDeps, type RecordingQueue } from "../../support/emulator";
import { deliverAll, startInProcess } from "../../support/deliver";
import { Store } from "../../support/scenario";

/** Three days of purchases, a refund for every fifth order (dated after it), spread over four users. */
async function busyStore(name: string) {
  const s = await Store.create(name);
  const gems = s.product("gems", 100);
  const balances: Record<string, number> = {};
  let n = 0;
  for (let day = 1; day <= 3; day++) {
    for (let i = 0; i < 14; i++) {
      const user = `u${n % 4}`;
      const { orderId } = s.purchase({ user, product: gems, day, minute: i, quantity: 1 + (n % 3) });
      balances[s.id(user)] = (balances[s.id(user)] ?? 0) + 100 * (1 + (n % 3));
      if (n % 5 === 0) {
        s.reversal(orderId, { user, product: gems, day: Math.min(3, day + 1), minute: 100 + i });
        balances[s.id(user)] = (balances[s.id(user)] ?? 0) - 100 * (1 + (n % 3));
      }
      n++;
    }
  }
  await s.write();
  return { s, balances, events: s.events.length, reversals: s.events.length - 42 };
}

const small = { pageSize: 5, groupSize: 2, parallelGroups: 3 };

async function expectCleanResult(
  s: Store,
  migrationId: string,
  expected: { balances: Record<string, number>; events: number },
) {
  const run = (await db().collection("dataMigrations").doc(migrationId).get()).data();
  expect(run).toMatchObject({
    status: "completed",
    total: expected.events,
    processed: expected.events,
    skipped: 0,
    errors: 0,
  });
  const ledger = await s.ledger();
  expect(ledger.size).toBe(expected.events);
  expect(await s.balances()).toEqual(expected.balances);
  await s.expectWalletsMatchLedger();
  // Counters equal a recount from Firestore.
  const chunks = await db().collection("dataMigrations").doc(migrationId).collection("chunks").get();
  const sum = chunks.docs.reduce((acc, d) => acc + (d.get("total") as number), 0);
  expect(sum).toBe(expected.events);
  const processedByRun = (await s.processedIds()).length;
  expect(processedByRun).toBe(expected.events);
}

describe("at-least-once delivery", () => {
  it("when every chunk task is delivered twice in a row, each order gets one entry and counters match one clean delivery", async () => {
    const { s, balances, events } = await busyStore("dup");
    const { deps, queue } = testDeps({ config: small });
    const id = await startInProcess(deps, { type: "webhook_replay", ...s.range(1, 3), dryRun: false });
    await deliverAll(deps, queue as RecordingQueue, id, { times: 2 });
    await expectCleanResult(s, id, { balances, events });
  });

  it("when every chunk task is delivered three times at the same moment, nothing is credited twice", async () => {
    const { s, balances, events } = await busyStore("conc");
    const { deps, queue } = testDeps({ config: small });
    const id = await startInProcess(deps, { type: "webhook_replay", ...s.range(1, 3), dryRun: false });
    await deliverAll(deps, queue as RecordingQueue, id, { times: 3, concurrent: true });
    await expectCleanResult(s, id, { balances, events });
  });

  it("a dry run delivered twice at once still predicts exactly, and writes no ledger", async () => {
    const { s, events, reversals } = await busyStore("drydup");
    const { deps, queue } = testDeps({ config: small });
    const id = await startInProcess(deps, { type: "webhook_replay", ...s.range(1, 3), dryRun: true });
    const run = await deliverAll(deps, queue as RecordingQueue, id, { times: 2, concurrent: true });
    expect(run).toMatchObject({ status: "completed", total: events, processed: events, skipped: 0, errors: 0 });
    expect((await s.ledger()).size).toBe(0);
    expect(reversals).toBeGreaterThan(0);
  });

  const crashPoints: FaultPoint[] = [
    "page-read",
    "page-half-applied",
    "before-page-commit",
    "before-chunk-finish",
    "before-run-close",
  ];
  it.each(crashPoints)(
    "a delivery that crashes at %s is retried and ends with the same ledger and counters",
    async (point) => {
      const { s, balances, events } = await busyStore(`crash${point.replace(/-/g, "")}`);
      const crashed = new Set<string>();
      let armed = false;
      const { deps, queue } = testDeps({
        config: small,
        faults: {
          at(where, info) {
            // Crash the first time each chunk (or the run's close) reaches the point, once deliveries began.
            const key = `${info.chunkId ?? "run"}`;
            if (armed && where === point && !crashed.has(key)) {
              crashed.add(key);
              throw new Error(`injected crash at ${point}`);
            }
          },
        },
      });
      const id = await startInProcess(deps, { type: "webhook_replay", ...s.range(1, 3), dryRun: false });
      armed = true;
      await deliverAll(deps, queue as RecordingQueue, id);
      expect(crashed.size).toBeGreaterThan(0);
      await expectCleanResult(s, id, { balances, events });
    },
  );
});
