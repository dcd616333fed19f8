// The log-based metrics and the alert policy (ops/), checked against the log lines the code writes.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { BackfillLog } from "../../../functions/src/log";

describe("log-based metrics", () => {
  const lines: Array<Record<string, unknown>> = [];
  const log = new BackfillLog((severity, payload) => lines.push({ severity, ...payload }));
  const run = {
    id: "webhook_replay_1",
    type: "webhook_replay" as const,
    startDate: "2025-01-01",
    endDate: "2025-01-02",
    dryRun: false,
  };
  log.pageCommitted(
    run,
    { id: "2025-01-01", phase: "purchases", page: 1, step: "scan" },
    { total: 10, processed: 8, skipped: 1, errors: 1 },
    42,
  );
  log.runFinished(
    run,
    "completed",
    { total: 10, processed: 8, skipped: 1, errors: 1 },
    { durationMs: 900, chunksFailed: 0, capReached: false },
  );

  it.each(["backfill_processed_events", "backfill_error_rate", "backfill_operation_duration"])(
    "%s extracts fields the logs really carry",
    (name) => {
      const config = readFileSync(`ops/metrics/${name}.yaml`, "utf8");
      const fields = [...config.matchAll(/EXTRACT\(jsonPayload\.([a-z_]+)\)/g)].map((m) => m[1]);
      expect(fields.length).toBeGreaterThan(0);
      const page = lines.find((l) => l.event === "page_committed")!;
      for (const field of fields) expect(page, `${name}: ${field}`).toHaveProperty(field as string);
      expect(page).toMatchObject({ component: "backfill", processed: 8, error_rate: 0.1, duration_ms: 42 });
    },
  );

  it("the script creates the three metrics and the 1% alert policy", () => {
    const commands = execFileSync("bash", ["scripts/observability.sh", "--project", "store-prod", "--dry-run"], {
      encoding: "utf8",
    });
    expect(commands).toMatch(
      /gcloud logging metrics create backfill_processed_events --config-from-file=ops\/metrics\/backfill_processed_events.yaml --project store-prod/,
    );
    expect(commands).toMatch(/backfill_error_rate/);
    expect(commands).toMatch(/backfill_operation_duration/);
    expect(commands).toMatch(
      /gcloud alpha monitoring policies create --policy-from-file=ops\/alert-error-rate.yaml --project store-prod/,
    );
    expect(readFileSync("ops/alert-error-rate.yaml", "utf8")).toMatch(/thresholdValue: 0\.01/);
    // A poison chunk (issue 18 item 3) or any other failed chunk alerts at once.
    expect(commands).toMatch(
      /gcloud logging metrics create backfill_failed_chunks --config-from-file=ops\/metrics\/backfill_failed_chunks.yaml --project store-prod/,
    );
    expect(commands).toMatch(
      /gcloud alpha monitoring policies create --policy-from-file=ops\/alert-failed-chunks.yaml --project store-prod/,
    );
  });

  it("the failed-chunk metric matches the line a failed chunk writes, with its labels", () => {
    log.chunkStopped(
      run,
      { id: "2025-01-01", phase: "purchases", status: "failed", reason: "kept_crashing" },
      { total: 0, processed: 0, skipped: 0, errors: 0 },
      0,
    );
    const line = lines.find((l) => l.event === "chunk_failed")!;
    const config = readFileSync("ops/metrics/backfill_failed_chunks.yaml", "utf8");
    expect(config).toContain('jsonPayload.event="chunk_failed"');
    for (const field of [...config.matchAll(/EXTRACT\(jsonPayload\.([a-z_]+)\)/g)].map((m) => m[1]))
      expect(line).toHaveProperty(field as string);
    expect(line).toMatchObject({ severity: "ERROR", reason: "kept_crashing", type: "webhook_replay" });
  });
});
