// What the watchdog repairs when a run could make no progress, as a pure plan: runs/watchdog.ts reads the
// run and its chunks, asks planRepairs, and applies each repair through the chunk and run stores.
import { isFinishedChunk, mayWorkNow, type Chunk } from "./chunk";
import { settle } from "./chunkTransitions";
import { requeue } from "./chunkControl";
import { isActiveRun, type Run } from "./run";

export type Repair =
  /** The kill switch is off but the run is still going: pause it, so nothing waits on a task that will not run. */
  | { kind: "pause_run"; reason: "kill_switch" }
  /** Queue the chunk's task under a new generation. */
  | { kind: "requeue"; chunkId: string; why: "lease_expired" | "task_stalled" | "drain" }
  /** Its deliveries keep vanishing holding it (a poison chunk): fail it with its last error, so the run ends. */
  | { kind: "fail_chunk"; chunkId: string; why: "kept_crashing" }
  /** Queue the chunk's current generation, which was never queued. */
  | { kind: "enqueue"; chunkId: string; why: "not_queued" }
  /** A paused chunk in a running run: resume it. */
  | { kind: "resume_chunk"; chunkId: string; why: "paused_in_running_run" }
  /** Stop a chunk nobody is working on, to match its run. */
  | { kind: "settle"; chunkId: string; to: "paused" | "cancelled"; why: "run_paused" | "run_cancelled" };

export interface WatchSettings {
  now: number;
  /** A queued task (or a continuation) that has not started for this long is queued again. */
  stallMs: number;
  killSwitchOn: boolean;
  /** Crash re-queues a chunk gets (WATCHDOG_MAX_CRASHES) before the next expired lease fails it. */
  maxCrashes: number;
}

/**
 * What a run needs so that it can make progress again: chunks whose lease expired with no delivery
 * renewing it, chunks due with no task (never queued, or queued so long ago that the task must be gone),
 * paused chunks in a running run, and unfinished chunks of a stopped run that nobody will stop. Phase
 * moves and closing the run follow from the roll-up the watchdog runs after these repairs.
 */
export function planRepairs(run: Run, chunks: readonly Chunk[], s: WatchSettings): Repair[] {
  if (run.status === "completed" || run.status === "failed") return [];
  const repairs: Repair[] = [];
  let status = run.status;
  if (!s.killSwitchOn && isActiveRun(status)) {
    repairs.push({ kind: "pause_run", reason: "kill_switch" });
    status = "paused";
  }
  const expired = (c: Chunk) => c.lease !== null && c.lease.expiresAt <= s.now;
  const stalled = (c: Chunk) => c.lease === null && c.queuedAt !== null && s.now - c.queuedAt >= s.stallMs;
  const mayWork = new Set(mayWorkNow(chunks, run.phase).map((c) => c.id));
  for (const c of chunks) {
    if (isFinishedChunk(c.status)) continue;
    if (isActiveRun(status)) {
      if (c.status === "paused") repairs.push({ kind: "resume_chunk", chunkId: c.id, why: "paused_in_running_run" });
      else if (c.status === "running" && expired(c)) {
        repairs.push(
          c.crashes >= s.maxCrashes
            ? { kind: "fail_chunk", chunkId: c.id, why: "kept_crashing" }
            : { kind: "requeue", chunkId: c.id, why: "lease_expired" },
        );
      } else if ((c.status === "running" || c.status === "pending") && stalled(c))
        repairs.push({ kind: "requeue", chunkId: c.id, why: "task_stalled" });
      // In a sequential phase only the chunk whose turn it is is queued: the others wait their turn.
      else if (c.status === "pending" && c.queued !== c.generation && mayWork.has(c.id))
        repairs.push({ kind: "enqueue", chunkId: c.id, why: "not_queued" });
    } else if (status === "paused") {
      if ((c.status === "running" && (expired(c) || c.lease === null)) || (c.status === "pending" && stalled(c))) {
        repairs.push({ kind: "settle", chunkId: c.id, to: "paused", why: "run_paused" });
      }
    } else if (status === "cancelled") {
      const stop = settle(c, "cancelled", null, null, s.now).result;
      if (stop === "settled") repairs.push({ kind: "settle", chunkId: c.id, to: "cancelled", why: "run_cancelled" });
      else if (stop === "drain" && s.killSwitchOn && requeue(c).update)
        repairs.push({ kind: "requeue", chunkId: c.id, why: "drain" });
    }
  }
  return repairs;
}
