// How long a new run should take: its plan's events over this deployment's measured delivery rate
// (core/estimate.ts holds the arithmetic; this reads what it needs).
import { Timestamp } from "firebase-admin/firestore";
import { DEFAULT_DELIVERY_EVENTS_PER_SECOND, estimateSeconds, measuredDeliveryRate } from "../core/estimate";
import type { StartRequest } from "../core/request";
import { SEQUENTIAL_PHASES } from "../core/types";
import type { Deps } from "../deps";
import { COLLECTIONS } from "../platform/collections";
import type { RunPlan } from "./planner";

/** The run's estimated seconds, recorded on it and answered to the caller. */
export async function estimateRun(deps: Deps, request: StartRequest, plan: RunPlan): Promise<number> {
  // Chunks with work: a chunk with no budget is done from the start and costs nothing.
  const working = plan.chunks.filter((bounds) =>
    Object.values(plan.budgets.get(bounds.id) ?? {}).some((n) => n > 0),
  ).length;
  // Refunds, chargebacks and closings run one chunk at a time: each chunk with budget there is a turn.
  const sequential = { events: 0, turns: 0 };
  for (const budget of plan.budgets.values()) {
    for (const phase of SEQUENTIAL_PHASES) {
      const n = budget[phase] ?? 0;
      if (n > 0) Object.assign(sequential, { events: sequential.events + n, turns: sequential.turns + 1 });
    }
  }
  return estimateSeconds(
    plan.planned,
    working,
    deps.config.queue,
    await recentDeliveryRate(deps, request.dryRun),
    request.maxEventsPerSecond,
    sequential,
  );
}

const RECENT_RUNS = 50;

/** Events per second this deployment measured on its recent runs, or the default. */
async function recentDeliveryRate(deps: Deps, dryRun: boolean): Promise<number> {
  // Only the fields a sample needs: this runs on every start.
  const recent = await deps.db
    .collection(COLLECTIONS.runs)
    .orderBy("createdAt", "desc")
    .limit(RECENT_RUNS)
    .select("status", "dryRun", "total", "chunksTotal", "startedAt", "finishedAt", "maxEventsPerSecond")
    .get();
  const millis = (t: unknown) => (t instanceof Timestamp ? t.toMillis() : null);
  const samples = recent.docs.map((d) => ({
    status: String(d.get("status")),
    dryRun: d.get("dryRun") === true,
    total: Number(d.get("total") ?? 0),
    chunks: Number(d.get("chunksTotal") ?? 0),
    startedAt: millis(d.get("startedAt")),
    finishedAt: millis(d.get("finishedAt")),
    paced: typeof d.get("maxEventsPerSecond") === "number",
  }));
  return measuredDeliveryRate(samples, dryRun, deps.config.queue) ?? DEFAULT_DELIVERY_EVENTS_PER_SECOND;
}
