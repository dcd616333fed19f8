// The chunks a delivery takes on once its own chunk needs nothing more: those an earlier attempt of its
// task left, else the next due, untouched one in the run's phase (in a sequential phase, the next chunk in
// order, woken by this delivery).
import { wake } from "../core/chunkControl";
import { SEQUENTIAL_PHASES } from "../core/types";
import type { Deps } from "../deps";
import { advanceRun, mayWork } from "../runs/advance";
import { runStore } from "../store/runs";
import { chunkStore } from "../store/chunks";
import type { ChunkTask, Delivery } from "./work";

/** How many due chunks one look for help considers. */
const HELP_CANDIDATES = 10;
/** Chunks an earlier attempt of this task left, taken on at once. */
const HELP_ORPHANS = 4;

/**
 * The next chunks this delivery should take on: those its own task holds (left by an earlier attempt that
 * died), else the next due, untouched one in the run's phase.
 * Empty when there is none, or the delivery's time is up.
 */
export async function chunksToHelp(
  deps: Deps,
  runId: string,
  delivery: Delivery,
  handled: Set<string>,
  startedAt: number,
): Promise<ChunkTask[]> {
  if (deps.now().getTime() - startedAt > deps.config.sliceSeconds * 1000) return [];
  const chunks = chunkStore(deps.db);
  // Only a retry can find chunks its task took on and left (a first attempt has taken none yet).
  const [run, held] = await Promise.all([
    runStore(deps.db).get(runId),
    delivery.retryCount > 0 ? chunks.heldBy(runId, delivery.taskName) : null,
  ]);
  if (!run) return [];
  const task = (chunkId: string): ChunkTask => ({ runId, chunkId, generation: null });
  // Chunks an earlier attempt of this task took on are this task's to finish, or to park if the run stopped.
  const orphans = (held ?? []).filter(
    (h) => !handled.has(h.data.id) && (h.data.status === "running" || h.data.status === "pending"),
  );
  if (orphans.length > 0) return orphans.slice(0, HELP_ORPHANS).map((h) => task(h.data.id));
  if (run.data.status !== "running") return [];
  const free = async (phase = run.data.phase) => {
    const due = await chunks.due(runId, phase, HELP_CANDIDATES);
    const now = deps.now().getTime();
    return due.map((d) => d.data).filter((c) => !handled.has(c.id) && (!c.lease || c.lease.expiresAt <= now));
  };
  const phase = run.data.phase;
  if (!SEQUENTIAL_PHASES.includes(phase)) {
    const first = (await free())[0];
    return first ? [task(first.id)] : [];
  }
  // In a sequential phase the next chunk is woken only once the one before it is done with the phase: this
  // delivery wakes it and carries on with it, without a task of its own (should this delivery die before
  // claiming it, the retry of its task finds it due; so does the watchdog). When the phase has nothing
  // left, advancing the run opens the next phase and queues its first chunk, which this delivery takes.
  const [next] = mayWork(await chunks.heads(runId), phase);
  const now = deps.now().getTime();
  if (next && !handled.has(next.data.id)) {
    if (next.data.status === "waiting" && (await chunks.applyTo(runId, next, wake(next.data, phase))))
      return [task(next.data.id)];
    if (next.data.status === "pending" && (!next.data.lease || next.data.lease.expiresAt <= now))
      return [task(next.data.id)];
    return [];
  }
  if (next) return [];
  await advanceRun(deps, runId);
  const advanced = await runStore(deps.db).get(runId);
  if (advanced?.data.status !== "running" || advanced.data.phase === phase) return [];
  const first = (await free(advanced.data.phase))[0];
  return first ? [task(first.id)] : [];
}
