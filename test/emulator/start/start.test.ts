// Ways of starting a run beyond a plain POST: the scheduled replay, lookbackDays and Idempotency-Key.
import { describe, expect, it } from "vitest";
import { runScheduledReplay } from "../../../functions/src/start/scheduled";
import { formatDay } from "../../../functions/src/core/dates";
import { startRun } from "../../../functions/src/start/start";
import { controlRun } from "../../../functions/src/runs/control";
import {
  api,
  clearFirestore,
  countDocs,
  db,
  setKillSwitch,
  testDeps,
  TEST_CALLER,
  token,
  type RecordingQueue,
} from "../../support/emulator";
import { deliverAll } from "../../support/deliver";
import { Store } from "../../support/scenario";

describe("the scheduled replay (invoked directly)", () => {
  it("replays the trailing window as requestedBy scheduler, and a retry or double fire of that window returns the same run", async () => {
    const s = await Store.create("sched");
    const gems = s.product("gems", 10);
    const old = s.purchase({ user: "u1", product: gems, day: 3 });
    const inWindow = [
      s.purchase({ user: "u1", product: gems, day: 4 }),
      s.purchase({ user: "u2", product: gems, day: 5, minute: 10 }),
    ];
    await s.write();

    const { deps, queue } = testDeps({ config: { replay: { lookbackDays: 2, dryRun: false, maxEvents: 1000 } } });
    const fireTime = new Date(Date.UTC(s.year, 0, 5, 3, 0));
    const first = await runScheduledReplay(deps, fireTime);
    expect(first).toMatchObject({ replayed: false, run: { startDate: s.day(4), endDate: s.day(5), dryRun: false } });
    const id = first!.run.migrationId;
    expect((await db().collection("dataMigrations").doc(id).get()).data()).toMatchObject({
      requestedBy: "scheduler",
      type: "webhook_replay",
    });

    // Cloud Scheduler retries the same fire, and a second fire lands for the same window, at once.
    const runsBefore = await countDocs("dataMigrations");
    const again = await Promise.all([
      runScheduledReplay(deps, fireTime),
      runScheduledReplay(deps, new Date(fireTime.getTime() + 60_000)),
    ]);
    expect(again.map((r) => r?.run.migrationId)).toEqual([id, id]);
    expect(again.every((r) => r?.replayed)).toBe(true);
    expect(await countDocs("dataMigrations")).toBe(runsBefore);

    expect(await deliverAll(deps, queue as RecordingQueue, id)).toMatchObject({
      status: "completed",
      total: 2,
      processed: 2,
    });
    expect((await s.processedIds()).sort()).toEqual(inWindow.map((p) => p.eventId).sort());
    expect((await s.event(old.eventId)).processed).toBe(false);
  });

  it("two fires for the same new window at the same moment start exactly one run", async () => {
    const s = await Store.create("sched2");
    s.purchase({ user: "u1", product: s.product("gems", 1), day: 9 });
    await s.write();
    const { deps } = testDeps({ config: { replay: { lookbackDays: 1, dryRun: true, maxEvents: 100 } } });
    const before = await countDocs("dataMigrations");
    const fire = new Date(Date.UTC(s.year, 0, 9, 3, 0));
    const results = await Promise.all(Array.from({ length: 5 }, () => runScheduledReplay(deps, fire)));
    expect(new Set(results.map((r) => r?.run.migrationId)).size).toBe(1);
    expect(await countDocs("dataMigrations")).toBe(before + 1);
  });

  it("does nothing while the kill switch is off, and says so in its log", async () => {
    await setKillSwitch(false);
    try {
      const { deps, memory } = testDeps();
      const before = await countDocs("dataMigrations");
      expect(await runScheduledReplay(deps, new Date(Date.UTC(2321, 0, 1, 3)))).toBeNull();
      expect(await countDocs("dataMigrations")).toBe(before);
      expect(memory.lines.find((l) => l.event === "scheduled_replay_skipped")).toMatchObject({
        component: "backfill",
        severity: "WARNING",
      });
    } finally {
      await setKillSwitch(null);
    }
  });
});

describe("the scheduled replay with every admission place taken (issue 18 item 10)", () => {
  it("logs that it skipped and starts nothing, then starts at its next tick once a place is free", async () => {
    await clearFirestore(); // admission counts every active run
    const s = await Store.create("schedfull");
    s.purchase({ user: "u1", product: s.product("gems", 2), day: 6 });
    await s.write();
    const { deps, memory } = testDeps({
      config: { maxActiveRuns: 1, replay: { lookbackDays: 1, dryRun: false, maxEvents: 100 } },
    });
    // An operator's run holds the only place (its tasks are queued in-process and never delivered).
    const holder = (
      await startRun(deps, { type: "webhook_replay", ...s.range(6, 6), dryRun: true }, { caller: TEST_CALLER })
    ).run.migrationId;
    const before = await countDocs("dataMigrations");
    expect(await runScheduledReplay(deps, new Date(Date.UTC(s.year, 0, 6, 3)))).toBeNull();
    expect(await countDocs("dataMigrations")).toBe(before);
    expect(memory.lines.find((l) => l.event === "scheduled_replay_skipped")).toMatchObject({
      severity: "WARNING",
      reason: expect.stringMatching(/MAX_ACTIVE_RUNS/),
    });
    await controlRun(deps, holder, "cancel", TEST_CALLER);
    expect(await runScheduledReplay(deps, new Date(Date.UTC(s.year, 0, 7, 3)))).toMatchObject({
      replayed: false,
      run: { startDate: s.day(7), endDate: s.day(7) },
    });
  });
});

describe("lookbackDays", () => {
  it("starts a run over the trailing window ending today (UTC), for plain Cloud Scheduler HTTP jobs", async () => {
    const res = await api("POST", "/api/jobs/backfill", { body: { type: "webhook_replay", lookbackDays: 2 } });
    expect(res.status).toBe(202);
    const today = formatDay(Date.now());
    const yesterday = formatDay(Date.now() - 86_400_000);
    expect(res.body).toMatchObject({ startDate: yesterday, endDate: today, chunks: 2, dryRun: true });
    expect((await db().collection("dataMigrations").doc(res.body.migrationId).get()).get("lookbackDays")).toBe(2);
  });

  it("a Cloud Scheduler HTTP job's retry of one firing returns that firing's run, whose window ends on the scheduled day", async () => {
    const scheduler = await token({ email: "scheduler@backfill.local" });
    const headers = {
      "x-cloudscheduler": "true",
      "x-cloudscheduler-jobname": "backfill-replay-daily",
      "x-cloudscheduler-scheduletime": "2318-06-10T03:00:00Z",
    };
    // The recurring replay the local stack configures (a scheduler may start nothing else).
    const body = { type: "webhook_replay", lookbackDays: 2, dryRun: false, maxEvents: 100 };
    const first = await api("POST", "/api/jobs/backfill", { body, headers, token: scheduler });
    expect(first.status).toBe(202);
    expect(first.body).toMatchObject({ startDate: "2318-06-09", endDate: "2318-06-10" });
    const retry = await api("POST", "/api/jobs/backfill", { body, headers, token: scheduler });
    expect(retry.body.migrationId).toBe(first.body.migrationId);
    expect(retry.headers.get("idempotency-replayed")).toBe("true");
    const later = await api("POST", "/api/jobs/backfill", {
      body,
      headers: { ...headers, "x-cloudscheduler-scheduletime": "2318-06-20T03:00:00Z" },
      token: scheduler,
    });
    expect(later.status, later.text).toBe(202);
    expect(later.body.migrationId).not.toBe(first.body.migrationId);
  });

  it("honours Cloud Scheduler headers only from SCHEDULER_EMAILS: an operator sending them starts its own run, over today's window", async () => {
    const headers = {
      "x-cloudscheduler": "true",
      "x-cloudscheduler-jobname": "backfill-replay-daily",
      "x-cloudscheduler-scheduletime": "2319-06-10T03:00:00Z",
    };
    const body = { type: "webhook_replay", lookbackDays: 2, dryRun: false, maxEvents: 100 };
    const scheduled = await api("POST", "/api/jobs/backfill", {
      body,
      headers,
      token: await token({ email: "scheduler@backfill.local" }),
    });
    expect(scheduled.status, scheduled.text).toBe(202);
    const spoofed = await api("POST", "/api/jobs/backfill", { body, headers });
    expect(spoofed.status).toBe(202);
    expect(spoofed.body.migrationId).not.toBe(scheduled.body.migrationId);
    expect(spoofed.headers.get("idempotency-replayed")).toBeNull();
    expect(spoofed.body.endDate).toBe(formatDay(Date.now()));
  });

  it("scopes an Idempotency-Key to its caller: the same key from two callers is two runs", async () => {
    const key = `shared-${Date.now()}`;
    const body = { type: "webhook_replay", startDate: "2320-01-01", endDate: "2320-01-01", dryRun: true };
    const mine = await api("POST", "/api/jobs/backfill", { body, headers: { "idempotency-key": key } });
    const theirs = await api("POST", "/api/jobs/backfill", {
      body: { ...body, maxEvents: 5 },
      headers: { "idempotency-key": key },
      token: await token({ email: "oncall@backfill.local" }),
    });
    expect([mine.status, theirs.status]).toEqual([202, 202]);
    expect(theirs.body.migrationId).not.toBe(mine.body.migrationId);
    expect(theirs.headers.get("idempotency-replayed")).toBeNull();
  });

  it("refuses lookbackDays together with dates", async () => {
    const res = await api("POST", "/api/jobs/backfill", {
      body: { type: "webhook_replay", lookbackDays: 2, startDate: "2025-01-01", endDate: "2025-01-02" },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.details.fields[0]).toMatchObject({
      field: "lookbackDays",
      message: expect.stringMatching(/not both/),
    });
  });
});

describe("Idempotency-Key", () => {
  const body = { type: "webhook_replay", startDate: "1995-03-01", endDate: "1995-03-02", dryRun: true };

  it("returns the same run for the same key and body, and 409 for the same key with another body", async () => {
    const key = `test-${Date.now()}`;
    const first = await api("POST", "/api/jobs/backfill", { body, headers: { "idempotency-key": key } });
    expect(first.status).toBe(202);
    expect(first.headers.get("idempotency-replayed")).toBeNull();
    const second = await api("POST", "/api/jobs/backfill", { body, headers: { "idempotency-key": key } });
    expect(second.status).toBe(202);
    expect(second.body).toEqual(first.body);
    expect(second.headers.get("idempotency-replayed")).toBe("true");
    const other = await api("POST", "/api/jobs/backfill", {
      body: { ...body, dryRun: false },
      headers: { "idempotency-key": key },
    });
    expect(other.status).toBe(409);
    expect(other.body.error).toMatchObject({
      code: "idempotency_key_reused",
      details: { migrationId: first.body.migrationId },
    });
  });

  it("starts exactly one run when many requests with one key arrive at once", async () => {
    const key = `burst-${Date.now()}`;
    const before = await countDocs("dataMigrations");
    const answers = await Promise.all(
      Array.from({ length: 12 }, () =>
        api("POST", "/api/jobs/backfill", { body, headers: { "idempotency-key": key } }),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(12).fill(202));
    expect(new Set(answers.map((a) => a.body.migrationId)).size).toBe(1);
    expect(await countDocs("dataMigrations")).toBe(before + 1);
  });

  it("rejects an unusable key", async () => {
    const res = await api("POST", "/api/jobs/backfill", { body, headers: { "idempotency-key": "x".repeat(300) } });
    expect(res.status).toBe(400);
    expect(res.body.error.details.fields[0].field).toBe("Idempotency-Key");
  });
});
