// The recurring replay Cloud Scheduler runs: a webhook_replay over a trailing window, through the same
// start-run code as the HTTP API. Its idempotency key is the window, so a scheduler retry or a double fire
// for the same window returns the run that window already has.
import { trailingWindow } from "../core/dates";
import type { Deps } from "../deps";
import { AppError } from "../errors";
import { startRun, type StartedRun } from "./start";

/** Who the scheduled replay's runs are recorded as having been started by. */
export const SCHEDULED_REPLAY = { email: "scheduler", sub: "scheduledReplay" } as const;

/** Cron (UTC) of the scheduled replay; read when the functions are deployed. */
export const DEFAULT_REPLAY_SCHEDULE = "0 3 * * *";

export function replaySchedule(env: Record<string, string | undefined>): string {
  const schedule = env.REPLAY_SCHEDULE?.trim() || DEFAULT_REPLAY_SCHEDULE;
  if (!/^(\S+\s+){4}\S+$/.test(schedule) && !/^every /.test(schedule)) {
    throw new Error(
      `REPLAY_SCHEDULE must be a cron expression with five fields or an App Engine "every ..." schedule, got "${schedule}"`,
    );
  }
  return schedule;
}

/** Starts (or finds) the replay of the window that ends on `scheduleTime`'s UTC day. */
export async function runScheduledReplay(
  deps: Deps,
  scheduleTime: Date,
): Promise<{ run: StartedRun; replayed: boolean } | null> {
  const { lookbackDays, dryRun, maxEvents } = deps.config.replay;
  const { startDate, endDate } = trailingWindow(scheduleTime, lookbackDays);
  const body = { type: "webhook_replay", startDate, endDate, dryRun, maxEvents };
  const key = `scheduler:webhook_replay:${startDate}:${endDate}:${dryRun ? "dry" : "real"}`;
  try {
    const result = await startRun(deps, body, { caller: SCHEDULED_REPLAY, idempotencyKey: key });
    deps.log.scheduledReplay({ runId: result.run.migrationId, startDate, endDate, dryRun, existing: result.replayed });
    return result;
  } catch (error) {
    // With the kill switch off there is nothing to retry; the next scheduled run tries again.
    // Nor while the previous window's real replay is still active over these days (paused on errors, say):
    // a second one would race it. The next firing covers the window again.
    // Nor while MAX_ACTIVE_RUNS runs are active: the next firing tries again.
    if (
      error instanceof AppError &&
      (error.code === "backfill_disabled" || error.code === "run_overlaps" || error.code === "too_many_runs")
    ) {
      deps.log.scheduledReplaySkipped({ startDate, endDate, reason: error.message });
      return null;
    }
    throw error;
  }
}
