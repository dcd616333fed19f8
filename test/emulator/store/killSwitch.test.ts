import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { startRun } from "../../../functions/src/start/start";
import type { ChunkDoc } from "../../../functions/src/store/chunkDoc";
import {
  api,
  countDocs,
  db,
  readLogs,
  requireStack,
  setKillSwitch,
  testDeps,
  type RecordingQueue,
} from "../../support/emulator";
import { deliverAll, startInProcess } from "../../support/deliver";
import { Store } from "../../support/scenario";

afterEach(async () => {
  await setKillSwitch(null);
});

describe("kill switch", () => {
  it.each([
    ["switched off", { enabled: false }],
    ["set to something that is not a boolean", { enabled: "no" }],
  ])(
    "when featureFlags/backfill is %s, a new job gets 503 backfill_disabled and nothing is written",
    async (_name, flag) => {
      await db().collection("featureFlags").doc("backfill").set(flag);
      const before = await countDocs("dataMigrations");
      const res = await api("POST", "/api/jobs/backfill", {
        body: { type: "webhook_replay", startDate: "2025-01-01", endDate: "2025-01-02" },
      });
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe("backfill_disabled");
      expect(res.body.error.message).toMatch(/featureFlags\/backfill\.enabled/);
      expect(await countDocs("dataMigrations")).toBe(before);
    },
  );

  it("when the BACKFILL_ENABLED param is false, a new job gets 503 naming the param", async () => {
    const { deps } = testDeps({ config: { backfillEnabled: false } });
    await expect(
      startRun(
        deps,
        { type: "webhook_replay", startDate: "2025-01-01", endDate: "2025-01-02" },
        { caller: { email: "t@x", sub: "t" } },
      ),
    ).rejects.toMatchObject({
      status: 503,
      code: "backfill_disabled",
      message: expect.stringMatching(/BACKFILL_ENABLED/),
    });
  });

  it("a missing document means enabled", async () => {
    await setKillSwitch(null);
    const res = await api("POST", "/api/jobs/backfill", {
      body: { type: "webhook_replay", startDate: "1999-01-01", endDate: "1999-01-01" },
    });
    expect(res.status).toBe(202);
  });

  it("flipped during a run, chunks stop at their next page boundary and keep their checkpoint", async () => {
    const s = await Store.create("kill");
    const gems = s.product("gems", 10);
    for (let i = 0; i < 30; i++) s.purchase({ user: `u${i % 3}`, product: gems, day: 1, minute: i });
    await s.write();

    let pages = 0;
    const { deps, queue } = testDeps({
      config: { pageSize: 10, groupSize: 5 },
      faults: {
        async at(point) {
          // Flip the switch while the first page is being applied; that page still completes.
          if (point === "before-page-commit" && ++pages === 1) await setKillSwitch(false);
        },
      },
    });
    const id = await startInProcess(deps, { type: "webhook_replay", ...s.range(1, 1), dryRun: false });
    const run = await deliverAll(deps, queue as RecordingQueue, id);

    expect(run).toMatchObject({ status: "paused", pausedReason: "kill_switch" });
    const chunk = (
      await db().collection("dataMigrations").doc(id).collection("chunks").doc(s.day(1)).get()
    ).data() as ChunkDoc;
    expect(chunk).toMatchObject({ status: "paused", pausedReason: "kill_switch", total: 10, processed: 10, pages: 1 });
    expect(chunk.progress.purchases?.cursor).not.toBeNull();
    expect((await s.ledger()).size).toBe(10);
    await s.expectWalletsMatchLedger();

    // A later delivery while the switch is still off writes nothing more.
    await deliverAll(deps, queue as RecordingQueue, id);
    expect((await s.ledger()).size).toBe(10);
  });

  // Issue 18 item 12: the script wrote the flag with the Admin SDK, with no role check, no log and no name.
  it("npm run killswitch goes through the API: the role check, a kill_switch_set line and who flipped it", async () => {
    const script = (...args: string[]) =>
      promisify(execFile)("npx", ["tsx", "scripts/killswitch.ts", ...args], {
        env: { ...process.env, BACKFILL_API_URL: requireStack().api },
      });
    const off = await script("off");
    expect(off.stdout).toMatch(/^backfill DISABLED by featureFlags\/backfill/);
    const flag = (await db().collection("featureFlags").doc("backfill").get()).data();
    expect(flag).toMatchObject({ enabled: false, updatedBy: "operator@backfill.local", updatedVia: "api" });
    await expect
      .poll(() => readLogs((l) => l.event === "kill_switch_set" && l.enabled === false).length)
      .toBeGreaterThan(0);
    // A viewer may not flip it, through the script either.
    await expect(script("on", "--email", "viewer@backfill.local")).rejects.toMatchObject({
      stderr: expect.stringMatching(/not allowed.*\(forbidden\)/),
    });
    expect((await script("on")).stdout).toMatch(/^backfill enabled/);
    // Break glass (the API down) writes the flag directly and records who used it.
    expect((await script("off", "--break-glass", "--by", "oncall@backfill.local")).stdout).toMatch(
      /DISABLED by break glass/,
    );
    expect((await db().collection("featureFlags").doc("backfill").get()).data()).toMatchObject({
      enabled: false,
      updatedBy: "oncall@backfill.local",
      updatedVia: "break-glass",
    });
    await expect(script("off", "--break-glass")).rejects.toMatchObject({ code: 2 });
  });
});
