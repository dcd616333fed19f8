// Executing a dry run's plan (`{"planOf": id}`): the real run takes the dry run's parameters, if the dry
// run may still be trusted.
import type { StartRequest } from "../core/request";
import type { Deps } from "../deps";
import { AppError } from "../errors";
import { runStore } from "../store/runs";

/**
 * The parameters of a real run that executes a dry run's plan: the dry run must exist, be a dry run, have
 * completed, and have finished at most PLAN_MAX_AGE_MINUTES ago (after that the data it saw may have moved
 * too far for its answer to be a promise).
 */
export async function requestFromPlan(deps: Deps, planOf: string): Promise<StartRequest> {
  const read = await runStore(deps.db).get(planOf);
  const newDryRun = "Start a new dry run (POST /api/jobs/backfill with dryRun true) and execute that one.";
  if (!read)
    throw new AppError(
      404,
      "plan_not_found",
      `No run ${planOf} to execute; list runs with GET /api/admin/dataMigrations.`,
      { planOf },
    );
  const dry = read.data;
  if (!dry.dryRun) {
    throw new AppError(
      409,
      "plan_invalid",
      `Run ${planOf} is a real run, not a dry run; only a dry run's plan can be executed.`,
      { planOf },
    );
  }
  if (dry.status !== "completed") {
    throw new AppError(
      409,
      "plan_not_completed",
      `Dry run ${planOf} is ${dry.status}; only a completed dry run can be executed. ${dry.status === "pending" || dry.status === "running" || dry.status === "paused" ? "Wait for it to complete, or s" : "S"}${newDryRun.slice(1)}`,
      { planOf, status: dry.status },
    );
  }
  const maxAge = deps.config.planMaxAgeMinutes;
  const ageMinutes = dry.finishedAt === null ? Infinity : (deps.now().getTime() - dry.finishedAt) / 60_000;
  if (ageMinutes > maxAge) {
    throw new AppError(
      409,
      "plan_expired",
      `Dry run ${planOf} finished ${Math.floor(ageMinutes)} minutes ago; a plan may be executed for ${maxAge} minutes (PLAN_MAX_AGE_MINUTES), after which the events it saw may have changed. ${newDryRun}`,
      {
        planOf,
        finishedAt: dry.finishedAt === null ? null : new Date(dry.finishedAt).toISOString(),
        maxAgeMinutes: maxAge,
      },
    );
  }
  return {
    type: dry.type,
    startDate: dry.startDate,
    endDate: dry.endDate,
    lookbackDays: null,
    dryRun: false,
    maxEvents: dry.maxEvents,
    maxErrorRate: dry.maxErrorRate,
    maxEventsPerSecond: dry.maxEventsPerSecond,
    userIds: dry.userIds,
  };
}
