// Planning a year-long range costs a bounded number of count queries, and still shares the cap out exactly:
// the earliest selected events, purchases before reversals.
import { describe, expect, it } from "vitest";
import { planRun } from "../../functions/src/jobs/planner";
import { db } from "../support/emulator";
import { Store } from "../support/scenario";

describe("planning a 366-day range", () => {
  it("takes at most 44 count queries when the cap binds, and the budgets examine exactly the earliest events", async () => {
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
      if (k % 7 === 0) s.reversal(orderId, { user: `u${k % 5}`, product: gems, day: Math.min(366, day + 1), minute: k % 1400 });
    }
    await s.write();

    for (const cap of [1, 57, 150, 299, 300, 330, 10_000]) {
      const plan = await planRun(db(), { type: "webhook_replay", ...s.range(1, 366), maxEvents: cap }, { shardEvents: 5000 });
      expect(plan.queries, `cap ${cap}: count queries`).toBeLessThanOrEqual(44);
      // Replaying the budgets against the store's own days: what each day examines is a prefix in time.
      let examined = 0;
      let open = true;
      for (let day = 1; day <= 366; day++) {
        const has = perDay.get(day) ?? 0;
        const budget = plan.budgets.get(s.day(day))?.purchases ?? 0;
        const takes = Math.min(has, budget);
        if (!open) expect(takes, `cap ${cap}: day ${day} after the cut`).toBe(0);
        if (takes < has) open = false;
        examined += takes;
      }
      expect(examined, `cap ${cap}: purchases examined`).toBe(Math.min(cap, 300));
      const reversals = [...plan.budgets.values()].reduce((n, b) => n + (b.reversals ?? 0), 0);
      if (cap <= 300) expect(reversals, `cap ${cap}: no reversals before every purchase`).toBe(0);
      expect(plan).toMatchObject({ planned: Math.min(cap, 343), selected: 343, capReached: cap < 343 });
    }
    // Uncapped, it is the range totals alone: for each of the three phases its events and those processed,
    // the range's size (for shards), and one read of the refunds' times (which days have any).
    expect((await planRun(db(), { type: "webhook_replay", ...s.range(1, 366), maxEvents: 100_000 }, { shardEvents: 5000 })).queries).toBe(8);
    expect((await planRun(db(), { type: "reversal_backfill", ...s.range(1, 366), maxEvents: 10 }, { shardEvents: 5000 })).queries).toBeLessThanOrEqual(3 + 10 + 1);
  }, 300_000);
});

describe("the report of a finished run", () => {
  it("verifies the ledger once and serves that verification again, until a retry changes the run", async () => {
    const { buildReport } = await import("../../functions/src/runs/report");
    const { controlRun } = await import("../../functions/src/runs/control");
    const { testDeps, TEST_CALLER } = await import("../support/emulator");
    const { deliverAll, startInProcess } = await import("../support/deliver");
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
