// The operator's procedure through the API: dry run → execute its plan (`planOf`) → the comparison; canary
// runs over a few users; estimates, live ETA and throughput. Expectations come from the README's rules:
// a canary selects only its users' events, by the same rules; a real run executing a fresh dry run does
// what the dry run said; where the data moved in between, the comparison names the events and why.
import { beforeAll, describe, expect, it } from "vitest";
import { applyEvent } from "../../../functions/src/ledger/apply";
import { ProductCatalog } from "../../../functions/src/ledger/reads";
import { startRun } from "../../../functions/src/start/start";
import { api, db, postRun, TEST_CALLER, testDeps, waitForRun, type RecordingQueue } from "../../support/emulator";
import { deliverAll, startInProcess } from "../../support/deliver";
import { Store } from "../../support/scenario";

async function getRun(id: string) {
  const res = await api("GET", `/api/admin/dataMigrations/${id}`);
  expect(res.status).toBe(200);
  return res.body;
}

describe("a canary over two users, then its plan executed", () => {
  let s: Store;
  let users: { u1: string; u2: string; u3: string };
  let events: { mine: string[]; others: string[] };

  beforeAll(async () => {
    s = await Store.create("canary");
    const gems = s.product("gems", 100);
    const a = s.purchase({ user: "u1", product: gems, day: 1 });
    const b = s.purchase({ user: "u2", product: gems, day: 2, quantity: 3 });
    const c = s.purchase({ user: "u3", product: gems, day: 1 });
    const d = s.purchase({ user: "u3", product: gems, day: 2 });
    const r1 = s.reversal(a.orderId, { user: "u1", product: gems, day: 3 });
    const r3 = s.reversal(c.orderId, { user: "u3", product: gems, day: 3 });
    await s.write();
    users = { u1: s.user("u1"), u2: s.user("u2"), u3: s.user("u3") };
    events = { mine: [a.eventId, b.eventId, r1].sort(), others: [c.eventId, d.eventId, r3].sort() };
  });

  it("dry run and real run select only the canary's events, and the real run matches its dry run", async () => {
    const started = await api("POST", "/api/jobs/backfill", {
      body: { type: "webhook_replay", ...s.range(1, 3), dryRun: true, userIds: [users.u2, users.u1, users.u1] },
    });
    expect(started.status).toBe(202);
    // A canary is planned from everyone's counts (which events are its own is known only once each is read).
    expect(started.body).toMatchObject({
      userIds: [users.u1, users.u2].sort(),
      selectedEvents: 6,
      plannedEvents: 6,
      planOf: null,
    });
    expect(started.body.estimatedSeconds).toBeGreaterThan(0);
    const dryId = started.body.migrationId as string;
    expect(await waitForRun(dryId)).toMatchObject({ status: "completed", total: 3, processed: 3 });

    // What the operator signs off on: u1 buys 100 and is refunded 100, u2 buys 3 × 100.
    const wouldMove = {
      entries: 3,
      credited: 400,
      reversed: 100,
      reinstated: 0,
      net: 300,
      wallets: 2,
      largest: [{ userId: users.u2, points: 300 }],
    };
    expect((await getRun(dryId)).money).toEqual(wouldMove);
    expect((await api("GET", `/api/admin/dataMigrations/${dryId}/report`)).body.money).toEqual(wouldMove);

    const executed = await api("POST", "/api/jobs/backfill", { body: { planOf: dryId } });
    expect(executed.status).toBe(202);
    expect(executed.body).toMatchObject({
      dryRun: false,
      planOf: dryId,
      userIds: [users.u1, users.u2].sort(),
      startDate: s.day(1),
      endDate: s.day(3),
      plannedEvents: 6,
    });
    const realId = executed.body.migrationId as string;
    expect(await waitForRun(realId)).toMatchObject({ status: "completed", total: 3, processed: 3, errors: 0 });

    // Only the canary's users moved: u1 bought and was refunded, u2 bought three.
    expect(await s.balances()).toEqual({ [users.u1]: 0, [users.u2]: 300 });
    expect(await s.processedIds()).toEqual(events.mine);
    const report = await api("GET", `/api/admin/dataMigrations/${realId}/report`);
    expect(report.body.events.map((e: { eventId: string }) => e.eventId).sort()).toEqual(events.mine);
    expect(report.body.verification.ok).toBe(true);

    const view = await getRun(realId);
    expect(view.migration).toMatchObject({ planOf: dryId, etaSeconds: null });
    expect(view.planComparison).toMatchObject({
      dryRunId: dryId,
      matches: true,
      differenceCount: 0,
      differences: [],
      counterDifferences: [],
    });
    expect(view.planComparison.dry).toEqual(view.planComparison.real);
    expect(view.money).toEqual(wouldMove);
    expect(view.planComparison.money).toEqual({ dry: wouldMove, real: wouldMove });
    expect(view.throughput.points.reduce((n: number, p: { events: number }) => n + p.events, 0)).toBe(3);
  });

  it("the rest of the range afterwards finds only the other users' events", async () => {
    const id = await postRun({ type: "webhook_replay", ...s.range(1, 3), dryRun: false });
    expect(await waitForRun(id)).toMatchObject({ status: "completed", total: 3, processed: 3 });
    expect(await s.processedIds()).toEqual([...events.mine, ...events.others].sort());
    await s.expectWalletsMatchLedger();
  });
});

describe("the comparison explains what moved between the dry run and the real run", () => {
  it("says a run that moved other points than its dry run differs, even when every event had the same outcome", async () => {
    const s = await Store.create("repriced");
    const gems = s.product("gems", 100);
    s.purchase({ user: "u1", product: gems, day: 1, quantity: 2 });
    await s.write();
    const dryId = await postRun({ type: "webhook_replay", ...s.range(1, 1), dryRun: true });
    expect(await waitForRun(dryId)).toMatchObject({ status: "completed", processed: 1 });
    // The catalog changes between the dry run and its execution.
    await db().collection("products").doc(gems).set({ name: "gems", points: 150 });
    const executed = await api("POST", "/api/jobs/backfill", { body: { planOf: dryId } });
    expect(await waitForRun(executed.body.migrationId as string)).toMatchObject({ status: "completed", processed: 1 });
    const view = await getRun(executed.body.migrationId as string);
    expect(view.planComparison).toMatchObject({
      matches: false,
      differenceCount: 0,
      note: expect.stringContaining("a product's points changed"),
    });
    expect(view.planComparison.money.dry).toMatchObject({ credited: 200 });
    expect(view.planComparison.money.real).toMatchObject({
      credited: 300,
      largest: [{ userId: s.user("u1"), points: 300 }],
    });
  });

  it("names the event live traffic processed and the one whose product was added", async () => {
    const s = await Store.create("compare");
    const gems = s.product("gems", 10);
    const kept = s.purchase({ user: "u1", product: gems, day: 1 });
    const taken = s.purchase({ user: "u2", product: gems, day: 1, minute: 5 });
    const legacy = s.purchase({ user: "u3", product: s.id("legacy"), day: 2 });
    await s.write();

    const dryId = await postRun({ type: "webhook_replay", ...s.range(1, 2), dryRun: true });
    expect(await waitForRun(dryId)).toMatchObject({ status: "completed", total: 3, processed: 2, errors: 1 });

    // In between: live processing handles one purchase, and the missing product is added to the catalog.
    await applyEvent(db(), taken.eventId, { walletField: "id" }, new ProductCatalog(db()));
    await db().collection("products").doc(s.id("legacy")).set({ name: "legacy", points: 7 });

    const realId = await postRun({ planOf: dryId });
    expect(await waitForRun(realId)).toMatchObject({ status: "completed", total: 2, processed: 2, errors: 0 });
    const { planComparison: c } = await getRun(realId);
    expect(c.matches).toBe(false);
    expect(c.dry).toMatchObject({ selectedEvents: 3, total: 3, processed: 2, errors: 1 });
    expect(c.real).toMatchObject({ selectedEvents: 2, total: 2, processed: 2, errors: 0 });
    expect(c.counterDifferences).toEqual(expect.arrayContaining(["selectedEvents", "total", "errors"]));
    expect(c.differenceCount).toBe(2);
    const byEvent = Object.fromEntries(c.differences.map((d: { eventId: string }) => [d.eventId, d]));
    expect(byEvent[taken.eventId]).toMatchObject({
      dry: "processed",
      real: "not examined",
      why: expect.stringMatching(/live traffic/),
    });
    expect(byEvent[legacy.eventId]).toMatchObject({
      dry: "error (PRODUCT_NOT_FOUND)",
      real: "processed",
      why: expect.stringMatching(/product was added/),
    });
    expect(byEvent[kept.eventId]).toBeUndefined();
  });
});

describe("executing a plan is refused unless the plan is a fresh, completed dry run", () => {
  let s: Store;
  beforeAll(async () => {
    s = await Store.create("plans");
    const gems = s.product("gems", 1);
    s.purchase({ user: "u1", product: gems, day: 1 });
    s.purchase({ user: "u2", product: gems, day: 2 });
    await s.write();
  });

  it("refuses an unknown run, a real run, an unfinished dry run and extra fields, writing nothing", async () => {
    const before = (await db().collection("dataMigrations").count().get()).data().count;
    const unknown = await api("POST", "/api/jobs/backfill", { body: { planOf: "webhook_replay_1" } });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({ code: "plan_not_found" });
    const extra = await api("POST", "/api/jobs/backfill", { body: { planOf: "webhook_replay_1", maxEvents: 5 } });
    expect(extra.status).toBe(400);
    expect(extra.body.error.details.fields).toEqual([
      { field: "maxEvents", message: expect.stringMatching(/cannot be combined with planOf/) },
    ]);
    const badId = await api("POST", "/api/jobs/backfill", { body: { planOf: "../x" } });
    expect(badId.status).toBe(400);
    expect(badId.body.error.details.fields[0].field).toBe("planOf");
    expect((await db().collection("dataMigrations").count().get()).data().count).toBe(before);

    const realId = await postRun({ type: "webhook_replay", ...s.range(1, 1), dryRun: false });
    await waitForRun(realId);
    const real = await api("POST", "/api/jobs/backfill", { body: { planOf: realId } });
    expect(real.status).toBe(409);
    expect(real.body.error).toMatchObject({
      code: "plan_invalid",
      message: expect.stringMatching(/real run, not a dry run/),
    });

    // A dry run held pending (its tasks queued in-process, never delivered), then paused.
    const held = testDeps();
    const dryId = await startInProcess(held.deps, { type: "webhook_replay", ...s.range(2, 3), dryRun: true });
    expect((await api("POST", `/api/admin/dataMigrations/${dryId}/pause`)).body).toMatchObject({
      changed: true,
      migration: { status: "paused" },
    });
    const unfinished = await api("POST", "/api/jobs/backfill", { body: { planOf: dryId } });
    expect(unfinished.status).toBe(409);
    expect(unfinished.body.error).toMatchObject({
      code: "plan_not_completed",
      message: expect.stringMatching(/is paused; only a completed dry run/),
    });
  });

  it("refuses a plan older than PLAN_MAX_AGE_MINUTES", async () => {
    const dryId = await postRun({ type: "webhook_replay", ...s.range(5, 5), dryRun: true });
    await waitForRun(dryId);
    const { deps } = testDeps({ config: { planMaxAgeMinutes: 60 } });
    const later = Date.now() + 61 * 60_000;
    deps.now = () => new Date(later);
    await expect(startRun(deps, { planOf: dryId }, { caller: TEST_CALLER })).rejects.toMatchObject({
      status: 409,
      code: "plan_expired",
      message: expect.stringMatching(/may be executed for 60 minutes \(PLAN_MAX_AGE_MINUTES\)/),
    });
    deps.now = () => new Date(later - 2 * 60_000);
    const { run } = await startRun(deps, { planOf: dryId }, { caller: TEST_CALLER });
    expect(run).toMatchObject({ planOf: dryId, dryRun: false });
  });
});

describe("canary ids are validated", () => {
  it.each([
    ["an empty list", []],
    ["more than 100", Array.from({ length: 101 }, (_, i) => `u${i}`)],
    ["an id with a slash", ["a/b"]],
    ["an empty id", [""]],
    ["not a list", "u1"],
  ])("%s → 400 naming userIds", async (_, userIds) => {
    const res = await api("POST", "/api/jobs/backfill", {
      body: { type: "webhook_replay", startDate: "2030-01-01", endDate: "2030-01-01", userIds },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.details.fields.map((f: { field: string }) => f.field.split(".")[0])).toEqual(["userIds"]);
  });
});

describe("estimates", () => {
  it("a running run has an ETA, a finished one none; the estimate is recorded on the run", async () => {
    const s = await Store.create("eta");
    const gems = s.product("gems", 1);
    for (let i = 0; i < 40; i++) s.purchase({ user: `u${i % 4}`, product: gems, day: 1 + (i % 3), minute: i });
    await s.write();
    // Held pending (tasks queued in-process): nothing examined yet, so the ETA is the whole estimate.
    const held = testDeps();
    const id = await startInProcess(held.deps, { type: "webhook_replay", ...s.range(1, 3), dryRun: true });
    const early = await getRun(id);
    expect(early.migration.status).toBe("pending");
    expect(early.migration.estimatedSeconds).toBeGreaterThanOrEqual(2);
    expect(early.migration.etaSeconds).toBe(early.migration.estimatedSeconds);
    await deliverAll(held.deps, held.queue as RecordingQueue, id);
    await waitForRun(id);
    const done = await getRun(id);
    expect(done.migration).toMatchObject({
      status: "completed",
      etaSeconds: null,
      estimatedSeconds: early.migration.estimatedSeconds,
    });
    expect(done.migration.elapsedSeconds).toBeGreaterThanOrEqual(0);
  });
});
