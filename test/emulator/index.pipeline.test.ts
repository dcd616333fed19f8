// The whole pipeline on the emulators: HTTP through Hosting → API function → Cloud Tasks → chunk handlers
// → Firestore. Nothing here is faked.
import { beforeAll, describe, expect, it } from "vitest";
import { api, db, runLogs, postRun, waitForRun } from "../support/emulator";
import { Store } from "../support/scenario";

/**
 * A store where live processing missed things:
 *  day 1  o1 u1 gems (missed)            o2 u2 pass (processed live)
 *  day 2  o3 u3 gems ×2 (missed)         o4 u1 unknown product (missed)     refund of o6 (missed; its purchase is later!)
 *  day 3  refund o1 (missed)             chargeback o2 (missed)             refund o9 (never purchased)
 *  day 4  malformed (no customer)        o3 sent again (another event id)   o5 u1 gems, o6 u4 gems (missed)
 */
async function outageStore() {
  const s = await Store.create("pipe");
  const gems = s.product("gems", 250);
  const pass = s.product("pass", 800);
  const o1 = s.purchase({ user: "u1", product: gems, day: 1 });
  const o2 = s.purchase({ user: "u2", product: pass, day: 1, live: true });
  const o3 = s.purchase({ user: "u3", product: gems, day: 2, quantity: 2 });
  const o4 = s.purchase({ user: "u1", product: s.id("legacy"), day: 2 });
  const o6 = s.purchase({ user: "u4", product: gems, day: 4, minute: 30 });
  const r6 = s.reversal(o6.orderId, { day: 2 });
  const r1 = s.reversal(o1.orderId, { day: 3 });
  const c2 = s.reversal(o2.orderId, { day: 3, type: "chargeback" });
  const r9 = s.reversal(s.id("o99"), { user: "u1", day: 3 });
  const bad = s.malformed({ product: gems, day: 4, minute: 1 });
  const dup = s.duplicatePurchase(o3.orderId, { day: 4 });
  const o5 = s.purchase({ user: "u1", product: gems, day: 4 });
  await s.write();
  return { s, ids: { o1, o2, o3, o4, o5, r6, r1, c2, r9, bad, dup, o6 } };
}

describe("webhook replay of an outage", () => {
  let s: Store;
  let ids: Awaited<ReturnType<typeof outageStore>>["ids"];
  let dryRunId: string;
  let before: Record<string, number>;

  beforeAll(async () => {
    ({ s, ids } = await outageStore());
    before = await s.ledgerPoints();
  });

  it("a dry run reports what the real run will do and leaves the ledger and wallets untouched", async () => {
    const balancesBefore = await s.balances();
    dryRunId = await postRun({ type: "webhook_replay", ...s.range(1, 4) }); // dryRun defaults to true
    const run = await waitForRun(dryRunId);
    expect(run).toMatchObject({ status: "completed", dryRun: true, total: 11, processed: 7, skipped: 1, errors: 3 });
    expect(await s.ledgerPoints()).toEqual(before);
    expect(await s.balances()).toEqual(balancesBefore);
    const marked = [];
    for (const e of s.events) if ((await s.event(e.id)).dryRunProcessed === true) marked.push(e.id);
    // o3 arrived twice; whichever of its two events is decided first is the one the run credits.
    const o3Marks = marked.filter((e) => e === ids.o3.eventId || e === ids.dup);
    expect(o3Marks).toHaveLength(1);
    expect(marked.filter((e) => !o3Marks.includes(e)).sort()).toEqual(
      [ids.o1.eventId, ids.o5.eventId, ids.r6, ids.r1, ids.c2, ids.o6.eventId].sort(),
    );
  });

  it("the real run completes with exactly the expected ledger and balances, purchases before reversals", async () => {
    const id = await postRun({ type: "webhook_replay", ...s.range(1, 4), dryRun: false });
    const run = await waitForRun(id);
    const dry = await waitForRun(dryRunId);
    expect(run).toMatchObject({
      status: "completed",
      total: dry.total,
      processed: dry.processed,
      skipped: dry.skipped,
      errors: dry.errors,
    });
    expect(run.chunksDone).toBe(4);

    const u = (n: string) => s.id(n);
    expect(await s.ledgerPoints()).toEqual({
      [s.entryId("purchase", ids.o2.orderId)]: 800, // live, untouched
      [s.entryId("purchase", ids.o1.orderId)]: 250,
      [s.entryId("purchase", ids.o3.orderId)]: 500,
      [s.entryId("purchase", ids.o5.orderId)]: 250,
      [s.entryId("purchase", ids.o6.orderId)]: 250,
      [s.entryId("reversal", ids.o1.orderId)]: -250,
      [s.entryId("reversal", ids.o2.orderId)]: -800,
      [s.entryId("reversal", ids.o6.orderId)]: -250, // its refund is dated before its purchase
    });
    expect(await s.balances()).toEqual({ [u("u1")]: 250, [u("u2")]: 0, [u("u3")]: 500, [u("u4")]: 0 });
    await s.expectWalletsMatchLedger();

    const ledger = await s.ledger();
    expect(ledger.get(s.entryId("reversal", ids.o2.orderId))).toMatchObject({
      kind: "reversal",
      reason: "chargeback",
      sourceEventId: ids.c2,
      migrationId: id,
      userId: u("u2"),
    });
    expect(ledger.get(s.entryId("purchase", ids.o2.orderId))?.migrationId).toBeNull();

    // Processed events are marked in the same transaction; failed ones stay open for a later run.
    const event = await s.event(ids.r1);
    expect(event).toMatchObject({ processed: true, processedBy: id });
    for (const failed of [ids.o4.eventId, ids.r9, ids.bad]) expect((await s.event(failed)).processed).toBe(false);
    expect((await s.event(ids.dup)).processed).toBe(true);
    expect((await s.event(ids.o3.eventId)).processed).toBe(true);

    // Every per-event failure is recorded with its code.
    const errors = await db().collection("dataMigrations").doc(id).collection("errors").get();
    expect(Object.fromEntries(errors.docs.map((d) => [d.id, d.get("code")]))).toEqual({
      [ids.o4.eventId]: "PRODUCT_NOT_FOUND",
      [ids.r9]: "ORIGINAL_PURCHASE_NOT_FOUND",
      [ids.bad]: "INVALID_EVENT",
    });

    const view = await api("GET", `/api/admin/dataMigrations/${id}`);
    expect(view.status).toBe(200);
    expect(view.body.migration).toMatchObject({ id, status: "completed", processed: 7 });
    expect(view.body.chunks).toHaveLength(4);
    expect(view.body.errorCount).toBe(3);
    expect(view.body.errorSample.map((e: { code: string }) => e.code).sort()).toEqual([
      "INVALID_EVENT",
      "ORIGINAL_PURCHASE_NOT_FOUND",
      "PRODUCT_NOT_FOUND",
    ]);

    const lines = await runLogs(id, (l) => l.some((x) => x.event === "run_completed"));
    const completed = lines.find((l) => l.event === "run_completed");
    expect(completed).toMatchObject({
      component: "backfill",
      migration_id: id,
      start_date: s.day(1),
      end_date: s.day(4),
      dry_run: false,
      event_count: 11,
      total: 11,
      processed: 7,
      errors: 3,
    });
    expect(lines.find((l) => l.event === "event_failed" && l.event_id === ids.r9)).toMatchObject({
      severity: "ERROR",
      error_code: "ORIGINAL_PURCHASE_NOT_FOUND",
      migration_id: id,
    });
    for (const line of lines.filter((l) => String(l.event).startsWith("chunk_"))) {
      expect(line).toMatchObject({ component: "backfill", migration_id: id, dry_run: false });
      expect(line).toHaveProperty("chunk_id");
    }
  });

  it("running the same job again changes nothing and finds only the still-broken events", async () => {
    const ledgerBefore = await s.ledgerPoints();
    const id = await postRun({ type: "webhook_replay", ...s.range(1, 4), dryRun: false });
    const run = await waitForRun(id);
    expect(run).toMatchObject({ status: "completed", total: 3, processed: 0, skipped: 0, errors: 3 });
    expect(await s.ledgerPoints()).toEqual(ledgerBefore);
  });

  it("once the cause is fixed, a later run picks up a failed event", async () => {
    await db().collection("products").doc(s.id("legacy")).set({ name: "legacy", points: 40 });
    const id = await postRun({ type: "webhook_replay", ...s.range(2, 2), dryRun: false });
    expect(await waitForRun(id)).toMatchObject({ status: "completed", total: 1, processed: 1 });
    expect((await s.ledgerPoints())[s.entryId("purchase", ids.o4.orderId)]).toBe(40);
    await s.expectWalletsMatchLedger();
  });
});

describe("reversal backfill", () => {
  it("reverses processed refunds and chargebacks that never got their reversal, once per line", async () => {
    const s = await Store.create("rev");
    const gems = s.product("gems", 300);
    const a = s.purchase({ user: "u1", product: gems, day: 1, live: true });
    const b = s.purchase({ user: "u2", product: gems, day: 1, live: true });
    const c = s.purchase({ user: "u3", product: gems, day: 1, live: true });
    const bugged = s.reversal(a.orderId, { day: 2, markedOnly: true });
    const fine = s.reversal(b.orderId, { day: 2, live: true });
    const twice1 = s.reversal(c.orderId, { day: 2, markedOnly: true });
    const twice2 = s.reversal(c.orderId, { day: 3, type: "chargeback", markedOnly: true });
    const orphan = s.reversal(s.id("o99"), { user: "u1", day: 3, markedOnly: true });
    await s.write();
    expect(await s.balances()).toEqual({ [s.id("u1")]: 300, [s.id("u2")]: 0, [s.id("u3")]: 300 });

    const dry = await waitForRun(await postRun({ type: "reversal_backfill", ...s.range(1, 3), dryRun: true }));
    const id = await postRun({ type: "reversal_backfill", ...s.range(1, 3), dryRun: false });
    const run = await waitForRun(id);
    expect(run).toMatchObject({ status: "completed", total: 5, processed: 2, skipped: 2, errors: 1 });
    expect({ total: dry.total, processed: dry.processed, skipped: dry.skipped, errors: dry.errors }).toEqual({
      total: 5,
      processed: 2,
      skipped: 2,
      errors: 1,
    });
    expect(await s.balances()).toEqual({ [s.id("u1")]: 0, [s.id("u2")]: 0, [s.id("u3")]: 0 });
    const ledger = await s.ledger();
    expect(ledger.get(s.entryId("reversal", a.orderId))).toMatchObject({
      points: -300,
      sourceEventId: bugged,
      migrationId: id,
      reason: "refund",
    });
    // The refund came first: it reverses the order; the chargeback after it finds nothing left.
    expect(ledger.get(s.entryId("reversal", c.orderId))).toMatchObject({ sourceEventId: twice1, reason: "refund" });
    expect(twice2).not.toBe(twice1);
    expect(ledger.get(s.entryId("reversal", b.orderId))?.sourceEventId).toBe(fine);
    const errors = await db().collection("dataMigrations").doc(id).collection("errors").get();
    expect(errors.docs.map((d) => [d.id, d.get("code")])).toEqual([[orphan, "ORIGINAL_PURCHASE_NOT_FOUND"]]);
    await s.expectWalletsMatchLedger();

    const again = await waitForRun(await postRun({ type: "reversal_backfill", ...s.range(1, 3), dryRun: false }));
    expect(again).toMatchObject({ total: 5, processed: 0, skipped: 4, errors: 1 });
    expect(await s.balances()).toEqual({ [s.id("u1")]: 0, [s.id("u2")]: 0, [s.id("u3")]: 0 });
  });
});

describe("maxEvents", () => {
  it("caps what the whole run examines: the earliest events, the same in the dry run and the real run", async () => {
    const s = await Store.create("cap");
    const gems = s.product("gems", 10);
    const purchases = [];
    for (let day = 1; day <= 3; day++)
      for (let i = 0; i < 4; i++) purchases.push(s.purchase({ user: `u${i}`, product: gems, day, minute: i }));
    await s.write();

    const dryId = await postRun({ type: "webhook_replay", ...s.range(1, 3), dryRun: true, maxEvents: 5 });
    const dry = await waitForRun(dryId);
    expect(dry).toMatchObject({
      status: "completed",
      total: 5,
      processed: 5,
      capReached: true,
      selectedEvents: 12,
      plannedEvents: 5,
    });

    const id = await postRun({ type: "webhook_replay", ...s.range(1, 3), dryRun: false, maxEvents: 5 });
    expect(await waitForRun(id)).toMatchObject({ status: "completed", total: 5, processed: 5, capReached: true });
    const expected = purchases
      .slice(0, 5)
      .map((p) => p.eventId)
      .sort();
    expect(await s.processedIds()).toEqual(expected);

    const rest = await waitForRun(
      await postRun({ type: "webhook_replay", ...s.range(1, 3), dryRun: false, maxEvents: 100 }),
    );
    expect(rest).toMatchObject({ total: 7, processed: 7, capReached: false });
    expect(Object.keys(await s.ledgerPoints())).toHaveLength(12);
    await s.expectWalletsMatchLedger();
  });

  it("an empty range completes at once without queueing anything", async () => {
    const s = await Store.create("empty");
    const days = new Date(Date.UTC(s.year, 1, 29)).getUTCDate() === 29 ? 366 : 365;
    const res = await api("POST", "/api/jobs/backfill", {
      body: { type: "webhook_replay", startDate: `${s.year}-01-01`, endDate: `${s.year}-12-31`, dryRun: false },
    });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ status: "pending", chunks: days, plannedEvents: 0 });
    const run = await waitForRun(res.body.migrationId, ["completed"], 10_000);
    expect(run).toMatchObject({ total: 0, chunksDone: days });
  });
});
