// Starting a run, in order: validate the request, answer a repeated idempotency key with its run, take a
// dry run's parameters when executing its plan, check the kill switch, plan the event budget, then record
// the run with its chunks (admitted, and with the key's record, in one batch) and queue its first phase.
// A rejected request writes nothing.
import { parseExecutePlan, parseStartRun, type StartRequest } from "../core/request";
import type { Caller } from "../auth/oidc";
import type { Deps } from "../deps";
import { AppError, invalidRequest } from "../errors";
import { describe } from "../log";
import { assertRunsEnabled } from "../store/killSwitch";
import { advanceRun } from "../runs/advance";
import { runFields } from "../runs/runFields";
import type { StartedRun } from "../http/schemas";
import { createRun } from "./create";
import { estimateRun } from "./estimate";
import { requestFromPlan } from "./execute";
import { checkKeyShape, earlierAnswer, idempotencyKey } from "../store/idempotency";
import { planRun } from "./planner";

/** The 202 answer to a started run (its wire format is http/schemas.ts). */
export type { StartedRun } from "../http/schemas";

export interface StartOptions {
  /** Who asks: recorded on the run; an idempotency key is theirs alone. */
  caller: Caller;
  /** Same caller, same key and same body: the same run. Same key, other body: 409. */
  idempotencyKey?: string | null;
  /** The moment a lookback window ends on (default: now); a scheduler passes its schedule time. */
  asOf?: Date;
}

export async function startRun(
  deps: Deps,
  body: unknown,
  options: StartOptions,
): Promise<{ run: StartedRun; replayed: boolean }> {
  const key = options.idempotencyKey ?? null;
  checkKeyShape(key);
  const asked = parseBody(deps, body, options);
  const keyed = key === null ? null : idempotencyKey(deps, options.caller.email, key, asked);
  const earlier = keyed && (await earlierAnswer(keyed));
  if (earlier) return { run: earlier, replayed: true };

  const planOf = "planOf" in asked ? asked.planOf : null;
  const request = "request" in asked ? asked.request : await requestFromPlan(deps, asked.planOf);
  await assertRunsEnabled(deps);
  const plan = await planRun(deps.db, request, { shardEvents: deps.config.shardEvents });
  const estimatedSeconds = await estimateRun(deps, request, plan);
  const created = await createRun(deps, request, plan, { planOf, estimatedSeconds }, options.caller, keyed);
  if ("replayed" in created) return { run: created.replayed, replayed: true };

  const { id, run, response } = created;
  deps.log.runCreated(runFields(id, run), {
    chunks: run.chunksTotal,
    planned: plan.planned,
    selected: plan.selected,
    maxEvents: request.maxEvents,
    requestedBy: options.caller.email,
    requestedBySub: options.caller.sub,
    planQueries: plan.queries ?? 0,
    estimatedSeconds: run.estimatedSeconds,
    userIds: run.userIds?.length ?? 0,
    planOf: run.planOf,
  });
  await queueFirstPhase(deps, id, runFields(id, run));
  return { run: response, replayed: false };
}

/** Either a new run's parameters, or `{"planOf": id}`: the parameters of a completed dry run. 400 otherwise. */
function parseBody(deps: Deps, body: unknown, options: StartOptions): { request: StartRequest } | { planOf: string } {
  const execute = parseExecutePlan(body);
  if (execute) {
    if (!execute.ok) throw invalidRequest(execute.problems);
    return { planOf: execute.value.planOf };
  }
  const parsed = parseStartRun(body, {
    maxRangeDays: deps.config.maxRangeDays,
    defaultMaxErrorRate: deps.config.autoPauseErrorRate,
    now: options.asOf ?? deps.now(),
  });
  if (!parsed.ok) throw invalidRequest(parsed.problems);
  return { request: parsed.value };
}

/** Opens the first phase that has work, queues its chunks, and closes a run that had nothing to do. */
async function queueFirstPhase(deps: Deps, id: string, fields: ReturnType<typeof runFields>): Promise<void> {
  try {
    await advanceRun(deps, id);
  } catch (error) {
    deps.log.internalError("enqueue_chunks", error, fields);
    throw new AppError(
      503,
      "enqueue_failed",
      `Run ${id} was recorded but its chunk tasks could not all be queued (${describe(error)}). Check the backfill Cloud Tasks queue; the watchdog queues them again within ${Math.ceil(deps.config.stallSeconds / 60)} minutes, or resume the run.`,
      { migrationId: id },
    );
  }
}
