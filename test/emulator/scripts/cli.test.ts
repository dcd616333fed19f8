// The CLI against the running local stack: the same main() the `backfill` bin runs, with its output
// captured, plus one run of the real bin.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { cli } from "../../support/cli";
import { controlRun } from "../../../functions/src/runs/control";
import { api, requireStack, testDeps, type RecordingQueue, TEST_CALLER } from "../../support/emulator";
import { deliverAll, startInProcess } from "../../support/deliver";
import { Store } from "../../support/scenario";

describe("the backfill CLI against the local stack", () => {
  it("starts a run, watches it to the end, lists it and writes its report", async () => {
    const s = await Store.create("cli");
    const gems = s.product("gems", 7);
    for (let i = 0; i < 12; i++) s.purchase({ user: `u${i % 2}`, product: gems, day: 1 + (i % 3), minute: i });
    s.purchase({ user: "u1", product: s.id("nope"), day: 2 });
    await s.write();

    const started = await cli("start", "--type", "webhook_replay", "--from", s.day(1), "--to", s.day(3), "--execute");
    expect(started.code).toBe(0);
    expect(started.out[0]).toMatch(
      /^Started webhook_replay_\d+: .* 3 chunks, 13 events planned, about \d+ s\.\nFollow it with: npm run backfill -- status webhook_replay_\d+ --watch$/,
    );
    const id = /webhook_replay_\d+/.exec(started.out[0]!)![0];

    const watched = await cli("status", id, "--watch", "--interval", "300");
    expect(watched.code).toBe(0);
    expect(watched.out.length).toBeGreaterThan(0);
    expect(watched.out.at(-2)).toMatch(new RegExp(`^${id} completed · *webhook_replay|^${id} completed`));
    expect(watched.out.at(-2)).toMatch(/examined 13\/13 · processed 12 · skipped 0 · errors 1 · chunks 3\/3/);
    // What it did to wallets, once it has ended.
    expect(watched.out.at(-1)).toMatch(
      /^Moved: \+[\d,]+ credited, (−[\d,]+|0) reversed, 0 reinstated \(net [+−]?[\d,]+\) across \d+ wallets?; largest: /,
    );

    const status = await cli("status", id);
    expect(status.out.join("\n")).toMatch(/\n  \S+ PRODUCT_NOT_FOUND: Product not found/);

    const list = await cli("list", "--limit", "5");
    expect(list.out.join("\n")).toContain(id);

    const file = join(mkdtempSync(join(tmpdir(), "report-")), "report.json");
    const report = await cli("report", id, "--out", file);
    expect(report.code).toBe(0);
    expect(report.out[0]).toMatch(
      /total 13 = processed 12 \+ skipped 0 \+ errors 1; reconciled with the run: yes; verification: ok/,
    );
    const json = JSON.parse(readFileSync(file, "utf8"));
    expect(json).toMatchObject({ reconciled: true, totals: { total: 13 }, verification: { ok: true } });

    const pause = await cli("pause", id);
    expect(pause.code).toBe(1);
    expect(pause.err[0]).toBe(`Error: Run ${id} is completed; there is nothing to pause. (invalid_transition)`);
  });

  it("prints data with control characters escaped, so a crafted id cannot rewrite the terminal", async () => {
    const s = await Store.create("clictl");
    const crafted = `${s.id("x")}\u001b[2J\u001b[31mOK\r\u202eevil`;
    s.purchase({ user: "u1", product: crafted, day: 1 });
    await s.write();
    const started = await cli(
      "start",
      "--type",
      "webhook_replay",
      "--from",
      s.day(1),
      "--to",
      s.day(1),
      "--execute",
      "--watch",
      "--interval",
      "300",
    );
    const id = /webhook_replay_\d+/.exec(started.out[0] ?? "")?.[0] ?? "";
    const status = await cli("status", id);
    const printed = [...started.out, ...started.err, ...status.out, ...status.err].join("\n");
    expect(printed).toContain("PRODUCT_NOT_FOUND: Product not found: ");
    expect(printed).toContain("\\u001b[2J\\u001b[31mOK\\u000d\\u202eevil");
    expect(printed).not.toMatch(/[\u001b\r\u202e]/);
  });

  it("keeps watching through a pause, says how to resume, and ends with the run", async () => {
    const s = await Store.create("cliwatch");
    s.purchase({ user: "u1", product: s.product("gems", 3), day: 1 });
    await s.write();
    // Queued in-process, so nothing runs until the resume below queues the chunk on the emulator.
    const { deps, queue } = testDeps();
    const id = await startInProcess(deps, { type: "webhook_replay", ...s.range(1, 1), dryRun: false });
    await controlRun(deps, id, "pause", TEST_CALLER);
    await deliverAll(deps, queue as RecordingQueue, id); // the queued task arrives and parks its chunk
    const watching = cli("status", id, "--watch", "--interval", "200");
    await new Promise((r) => setTimeout(r, 800));
    expect((await api("POST", `/api/admin/dataMigrations/${id}/resume`)).status).toBe(200);
    const watched = await watching;
    expect(watched.code).toBe(0);
    expect(watched.err[0]).toBe(
      `Run ${id} is paused (paused by tests@backfill.local); continue it with: npm run backfill -- resume ${id}`,
    );
    expect(watched.out[0]).toMatch(/ paused \(paused by tests@backfill.local\)/);
    expect(watched.out.at(-2)).toMatch(/ completed .*processed 1 /);
  });

  it("runs a canary dry run, executes its plan and says it matched", async () => {
    const s = await Store.create("clicanary");
    const gems = s.product("gems", 5);
    for (let i = 0; i < 6; i++) s.purchase({ user: `u${i % 3}`, product: gems, day: 1 + (i % 2), minute: i });
    await s.write();
    const dry = await cli(
      "start",
      "--type",
      "webhook_replay",
      "--from",
      s.day(1),
      "--to",
      s.day(2),
      "--user",
      s.user("u0"),
      "--user",
      s.user("u1"),
      "--watch",
      "--interval",
      "300",
    );
    expect(dry.code).toBe(0);
    expect(dry.out[0]).toMatch(
      /^Started webhook_replay_\d+ \(dry run: no ledger entry or wallet is written; each examined event gets dryRun marks\) over 2 users only \(canary\): .* 6 events planned, about \d+ s\.$/,
    );
    // A canary is planned from everyone's events (6); it examines its own (4).
    expect(dry.out.join("\n")).toMatch(
      /completed \[dry run\] \[canary: 2 users\] closings · examined 4\/6 · processed 4/,
    );
    const dryId = /webhook_replay_\d+/.exec(dry.out[0]!)![0];
    expect(dry.out.at(-1)).toBe(
      `Check its report (npm run backfill -- report ${dryId}), then run it for real with: npm run backfill -- execute ${dryId}`,
    );
    // u0 and u1 bought two 5-point gems each.
    const moves = `+20 credited, 0 reversed, 0 reinstated (net +20) across 2 wallets; largest: ${s.user("u0")} +10, ${s.user("u1")} +10.`;
    expect(dry.out.at(-2)).toBe(`Would move: ${moves}`);

    const real = await cli("execute", dryId, "--watch", "--interval", "300");
    expect(real.code).toBe(0);
    expect(real.out[0]).toMatch(
      new RegExp(
        `^Started webhook_replay_\\d+ executing dry run ${dryId} over 2 users only \\(canary\\): .* 6 events planned`,
      ),
    );
    expect(real.out.at(-2)).toBe(`Matches its dry run ${dryId}.`);
    expect(real.out.at(-1)).toBe(`Moved: ${moves}`);
    expect(Object.values(await s.balances()).reduce((a, b) => a + b, 0)).toBe(20);

    const again = await cli("execute", "webhook_replay_1");
    expect(again.code).toBe(1);
    expect(again.err[0]).toMatch(/^Error: No run webhook_replay_1 to execute; .*\(plan_not_found\)$/);
  });

  it("makes a dry run unless told to execute, and says so", async () => {
    const started = await cli("start", "--type", "reversal_backfill", "--lookback-days", "1");
    expect(started.code).toBe(0);
    expect(started.out[0]).toMatch(
      /\(dry run: no ledger entry or wallet is written; each examined event gets dryRun marks\)/,
    );
  });

  it.each([
    [
      ["start", "--type", "webhook_replay", "--from", "2025-02-30", "--to", "2025-03-01"],
      1,
      /^Error: The request is invalid: startDate must be a real calendar date.*\(invalid_request\)$/,
    ],
    [["status", "webhook_replay_1"], 1, /^Error: No run webhook_replay_1; .*\(not_found\)$/],
    [["start", "--from", "2025-01-01"], 2, /^Error: start needs --type/],
    [["start", "--type", "webhook_replay", "--dry-run", "--execute"], 2, /Choose one of --dry-run and --execute/],
    [["status"], 2, /status needs a run id/],
    [["frobnicate"], 2, /Unknown command "frobnicate"/],
    [
      ["--api", "http://127.0.0.1:9", "list"],
      1,
      /Cannot reach http:\/\/127\.0\.0\.1:9 .*Is the local stack running \(npm start\)\?/,
    ],
  ])("fails clearly: %j → exit %i", async (args, code, message) => {
    const result = await cli(...args);
    expect(result.code).toBe(code);
    expect(result.err[0]).toMatch(message);
  });

  it("runs as the backfill bin, with an exit code the shell can use", async () => {
    const run = promisify(execFile);
    const { stdout } = await run(process.execPath, [
      "bin/backfill.mjs",
      "list",
      "--limit",
      "1",
      "--json",
      "--api",
      requireStack().api,
    ]);
    expect(JSON.parse(stdout)).toHaveLength(1);
    await expect(
      run(process.execPath, ["bin/backfill.mjs", "status", "nope_1", "--api", requireStack().api]),
    ).rejects.toMatchObject({ code: 1 });
  });
});
