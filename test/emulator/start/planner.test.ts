// Planning a year-long range costs a bounded number of queries, and still shares the cap out exactly: the
// earliest selected events, purchases before reversals, each chunk no more than it holds.
import { describe, expect, it } from "vitest";
import { planRun, type QueryGate } from "../../../functions/src/start/planner";
import { db } from "../../support/emulator";
import { Store } from "../../support/scenario";

describe("planning a 366-day range", () => {
  it("takes at most 11 queries, and the budgets examine exactly the earliest events, each day no more than it holds", async () => {
    const s = await Store.create("plan366");
    // Day 366 of a common year is 1 January of the next: take that year too, so no other test uses it.
    await Store.create("plan366next");
    const gems = s.product("gems", 1);
    const perDay = new Map<number, number>();
    // About 300 open purchases spread unevenly over a year, and refunds for some.
    for (let k = 0; k < 300; k++) {
      const day = 1 + ((k * 37) % 366);
      perDay.set(day, (perDay.get(day) ?? 0) + 1);
      const { orderId } = s.purchase({ user: `u${k % 5}`, product: gems, day, minute: k % 1400 });
      if (k % 7 === 0)
        s.reversal(orderId, { user: `u${k % 5}`, product: gems, day: Math.min(366, day + 1), minute: k % 1400 });
    }
    await s.write();

    for (const cap of [1, 57, 150, 299, 300, 330, 10_000]) {
      const plan = await planRun(
        db(),
        { type: "webhook_replay", ...s.range(1, 366), maxEvents: cap },
        { shardEvents: 5000 },
      );
      // Per phase its events, those processed and those marked unprocessed; one read of the selected events'
      // times per phase with any.
      expect(plan.queries, `cap ${cap}: queries`).toBeLessThanOrEqual(3 * 3 + 2);
      // Replaying the budgets against the store's own days: what each day examines is a prefix in time.
      let examined = 0;
      let open = true;
      for (let day = 1; day <= 366; day++) {
        const has = perDay.get(day) ?? 0;
        const budget = plan.budgets.get(s.day(day))?.purchases ?? 0;
        const takes = Math.min(has, budget);
        expect(budget, `cap ${cap}: day ${day}'s budget`).toBeLessThanOrEqual(has);
        if (!open) expect(takes, `cap ${cap}: day ${day} after the cut`).toBe(0);
        if (takes < has) open = false;
        examined += takes;
      }
      expect(examined, `cap ${cap}: purchases examined`).toBe(Math.min(cap, 300));
      const reversals = [...plan.budgets.values()].reduce((n, b) => n + (b.reversals ?? 0), 0);
      if (cap <= 300) expect(reversals, `cap ${cap}: no reversals before every purchase`).toBe(0);
      expect(plan).toMatchObject({ planned: Math.min(cap, 343), selected: 343, capReached: cap < 343 });
    }
    // No closings: two reads of times, purchases' and refunds'.
    // Per phase its events and those processed, once those marked unprocessed; no closings: two reads of times.
    expect(
      (await planRun(db(), { type: "webhook_replay", ...s.range(1, 366), maxEvents: 100_000 }, { shardEvents: 5000 }))
        .queries,
    ).toBe(3 * 2 + 1 + 2);
    // A reversal backfill selects every refund: two counts, one read.
    const backfill = await planRun(
      db(),
      { type: "reversal_backfill", ...s.range(1, 366), maxEvents: 10 },
      { shardEvents: 5000 },
    );
    expect(backfill).toMatchObject({ queries: 2 + 1, planned: 10, selected: 43 });
  }, 300_000);
});

describe("planning a store whose receiver leaves `processed` out", () => {
  it("counts each day's events instead of reading their times, with the same budgets", async () => {
    const s = await Store.create("planunmarked");
    const gems = s.product("gems", 1);
    const perDay = new Map<number, number>();
    for (let k = 0; k < 40; k++) {
      const day = 1 + ((k * 11) % 30);
      perDay.set(day, (perDay.get(day) ?? 0) + 1);
      s.purchase({ user: `u${k % 3}`, product: gems, day, minute: k });
    }
    await s.write();
    // Absent means false: every other event has no `processed` at all.
    const { FieldValue } = await import("firebase-admin/firestore");
    await Promise.all(
      s.events
        .filter((_, i) => i % 2 === 0)
        .map((e) => db().collection("webhookEvents").doc(e.id).update({ processed: FieldValue.delete() })),
    );
    const days = [...perDay.keys()].length;
    for (const cap of [1, 13, 40, 100]) {
      const plan = await planRun(
        db(),
        { type: "webhook_replay", ...s.range(1, 30), maxEvents: cap },
        { shardEvents: 5000 },
      );
      let left = cap;
      for (let day = 1; day <= 30; day++) {
        const has = perDay.get(day) ?? 0;
        const budget = plan.budgets.get(s.day(day))?.purchases ?? 0;
        expect(budget, `cap ${cap}: day ${day}`).toBe(Math.min(has, Math.max(left, 0)));
        left -= has;
      }
      expect(plan).toMatchObject({ planned: Math.min(cap, 40), selected: 40 });
      // Two counts (events, processed) per split of a part holding events; no read of times.
      expect(plan).toMatchObject({ unmarkedEvents: 20 });
      expect(plan.queries, `cap ${cap}: queries`).toBeLessThanOrEqual(3 * 3 + 2 * days * Math.ceil(Math.log2(30)));
    }
  });
});

/**
 * A gate that sends a plan's queries in rounds: it holds what the plan asks for until every query it sent
 * has answered and the plan has asked for all it can without another answer, then sends those together.
 * The rounds are the plan's round trips, whatever the emulator's speed.
 */
function roundGate(): { gate: QueryGate; rounds: () => number } {
  let rounds = 0;
  let inFlight = 0;
  let waiting: Array<() => void> = [];
  let timer: NodeJS.Timeout | null = null;
  const release = () => {
    if (inFlight > 0 || waiting.length === 0 || timer) return;
    // Answers resolve the plan's awaits in microtasks; a timer runs after the plan has asked for what it can.
    timer = setTimeout(() => {
      timer = null;
      if (inFlight > 0) return;
      const batch = waiting;
      waiting = [];
      rounds++;
      for (const send of batch) send();
    }, 5);
  };
  const gate: QueryGate = <T>(send: () => Promise<T>) =>
    new Promise<T>((resolve, reject) => {
      waiting.push(() => {
        inFlight++;
        send()
          .then(resolve, reject)
          .finally(() => {
            inFlight--;
            release();
          });
      });
      release();
    });
  return { gate, rounds: () => rounds };
}

describe("a start's round trips", () => {
  // Issue 18 item 13: a start answers behind Hosting's 60 s, and planning ran each phase's counts after the
  // one before; past 60 s the caller got a 504 while the run was created. What bounds the start's time is
  // its round trips: with the phases planned side by side, a range's counts take one round, then the
  // deepest phase's halvings.
  it("are the deepest phase's, not the phases' added up", async () => {
    const s = await Store.create("planrounds");
    const gems = s.product("gems", 1);
    // Purchases and refunds over 32 days, half of them without `processed`: each phase's per-chunk counts
    // halve the range (no read of times can find an event without the field).
    for (let k = 0; k < 64; k++) {
      const day = 1 + (k % 32);
      const { orderId } = s.purchase({ user: `u${k % 4}`, product: gems, day, minute: k });
      s.reversal(orderId, { user: `u${k % 4}`, product: gems, day, minute: 600 + k });
    }
    await s.write();
    const { FieldValue } = await import("firebase-admin/firestore");
    // Events go purchase, refund, purchase, refund…: every other order's two lose the field.
    await Promise.all(
      s.events
        .filter((_, i) => i % 4 < 2)
        .map((e) => db().collection("webhookEvents").doc(e.id).update({ processed: FieldValue.delete() })),
    );
    const { gate, rounds } = roundGate();
    const plan = await planRun(
      db(),
      { type: "webhook_replay", ...s.range(1, 32), maxEvents: 10_000 },
      { shardEvents: 5000, gate },
    );
    expect(plan).toMatchObject({ selected: 128, planned: 128 });
    // One round for the range's counts, then log2(32) + 1 rounds of halvings, for both phases at once.
    const bound = 1 + Math.ceil(Math.log2(32)) + 1;
    expect(rounds(), `${plan.queries} queries in ${rounds()} rounds`).toBeLessThanOrEqual(bound);
  });
});

describe("the report of a finished run", () => {
  it("verifies the ledger once and serves that verification again, until a retry changes the run", async () => {
    const { buildReport } = await import("../../../functions/src/runs/report");
    const { controlRun } = await import("../../../functions/src/runs/control");
    const { testDeps, TEST_CALLER } = await import("../../support/emulator");
    const { deliverAll, startInProcess } = await import("../../support/deliver");
    const s = await Store.create("reportonce");
    s.purchase({ user: "u1", product: s.product("gems", 4), day: 1 });
    s.purchase({ user: "u2", product: s.id("ghost"), day: 1 });
    await s.write();
    const { deps, queue } = testDeps();
    const id = await startInProcess(deps, { type: "webhook_replay", ...s.range(1, 1), dryRun: false, maxErrorRate: 1 });
    await deliverAll(deps, queue as never, id);
    const first = await buildReport(deps, id);
    expect(first.totals, JSON.stringify(first.events)).toMatchObject({ processed: 1, errors: 1 });
    expect(first.verification).toMatchObject({ ok: true, walletsChecked: 1 });
    const stored = await db().collection("dataMigrations").doc(id).collection("report").doc("verification").get();
    expect(stored.exists).toBe(true);
    const again = await buildReport(deps, id);
    expect(again.verification.computedAt).toBe(first.verification.computedAt);

    await db().collection("products").doc(s.id("ghost")).set({ name: "ghost", points: 2 });
    await controlRun(deps, id, "retry", TEST_CALLER);
    await deliverAll(deps, queue as never, id);
    const retried = await buildReport(deps, id);
    expect(retried.verification).toMatchObject({ ok: true, walletsChecked: 2 });
    expect(retried.verification.computedAt).not.toBe(first.verification.computedAt);
  });
});

describe("the event cap while events arrive", () => {
  // The README: a run examines at most `maxEvents` events, the earliest first; events stored after it was
  // planned, on any day of its range, are left for the next run.
  const cases = [
    ["while the run is paused", "paused"],
    ["while the run is working on the day before", "working"],
  ] as const;
  it.each(cases)("holds with purchases added to a later day %s", async (_, when) => {
    const { controlRun } = await import("../../../functions/src/runs/control");
    const { RecordingQueue, testDeps, TEST_CALLER } = await import("../../support/emulator");
    const { deliverAll, deliverWithRetries, startInProcess } = await import("../../support/deliver");
    const s = await Store.create(`caparrive${when}`);
    const gems = s.product("gems", 10);
    const first = s.purchase({ user: "u1", product: gems, day: 1, minute: 600 });
    s.purchase({ user: "u2", product: gems, day: 2, minute: 600 });
    await s.write();
    const queue = new RecordingQueue();
    const { deps } = testDeps({ queue });
    const id = await startInProcess(deps, { type: "webhook_replay", ...s.range(1, 2), dryRun: false, maxEvents: 2 });
    const arrive = async () => {
      const from = s.events.length;
      // Three more open purchases on day 2, one of them earlier than the one the plan counted.
      for (const minute of [60, 700, 800]) s.purchase({ user: "u3", product: gems, day: 2, minute });
      await s.writeArrivals(from);
    };
    if (when === "paused") {
      await controlRun(deps, id, "pause", TEST_CALLER);
      // The tasks queued at the start arrive while it is paused, and park their chunks.
      for (const t of queue.drain()) await deliverWithRetries(deps, t.payload, t.taskId);
      await arrive();
      await controlRun(deps, id, "resume", TEST_CALLER);
    } else {
      // Day 1's chunk works first; the purchases land before day 2's chunk is delivered.
      const tasks = queue.drain();
      const day1 = tasks.find((t) => (t.payload as { chunkId: string }).chunkId === s.day(1));
      expect(day1, JSON.stringify(tasks)).toBeDefined();
      await arrive();
      for (const t of [day1, ...tasks.filter((x) => x !== day1)])
        if (t) await deliverWithRetries(deps, t.payload, t.taskId);
    }
    const run = await deliverAll(deps, queue, id);
    expect(run.status).toBe("completed");
    expect(run.total, JSON.stringify(run)).toBeLessThanOrEqual(2);
    expect(run.capReached).toBe(false);
    const purchases = [...(await s.ledger()).values()].filter((e) => e.kind === "purchase");
    expect(purchases.length, purchases.map((e) => e.orderId).join(", ")).toBe(2);
    // Day 1's purchase is among them: earliest first.
    expect(purchases.map((e) => e.orderId)).toContain(first.orderId);
  });
});

describe("an order's record of its lines", () => {
  it("is written with its purchase entries; an order credited without one is still found by its refund", async () => {
    const { RecordingQueue, testDeps } = await import("../../support/emulator");
    const { deliverAll, startInProcess } = await import("../../support/deliver");
    const s = await Store.create("orderrecord");
    const gems = s.product("gems", 10);
    const coins = s.product("coins", 3);
    const kept = s.purchase({
      user: "u1",
      day: 1,
      lines: [
        { product: gems, quantity: 2 },
        { product: coins, giftTo: "u2" },
      ],
    });
    const legacy = s.purchase({ user: "u3", product: gems, day: 1 });
    s.reversal(kept.orderId, { type: "chargeback", day: 2 });
    s.reversal(legacy.orderId, { day: 2 });
    await s.write();
    const queue = new RecordingQueue();
    const { deps } = testDeps({ queue });
    const replay = async (from: number, to: number) => {
      const id = await startInProcess(deps, { type: "webhook_replay", ...s.range(from, to), dryRun: false });
      expect((await deliverAll(deps, queue, id)).status).toBe("completed");
    };
    await replay(1, 1);
    const record = await db().collection("ledgerOrders").doc(kept.orderId).get();
    expect(record.data()).toEqual({
      orderId: kept.orderId,
      lines: [
        { lineId: kept.lineIds[0], userId: s.user("u1") },
        { lineId: kept.lineIds[1], userId: s.user("u2") },
      ],
    });
    // As if credited by a version that kept no record: the refund finds the lines by a query instead.
    await db().collection("ledgerOrders").doc(legacy.orderId).delete();
    await replay(2, 2);
    const reversed = [...(await s.ledger()).values()]
      .filter((e) => e.kind === "reversal")
      .map((e) => `${e.orderId}/${e.lineId}`)
      .sort();
    expect(reversed).toEqual(
      [
        `${kept.orderId}/${kept.lineIds[0]}`,
        `${kept.orderId}/${kept.lineIds[1]}`,
        `${legacy.orderId}/${legacy.lineIds[0]}`,
      ].sort(),
    );
    expect(await s.balances()).toEqual({ [s.user("u1")]: 0, [s.user("u2")]: 0, [s.user("u3")]: 0 });
  });
});
