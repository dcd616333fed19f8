// The backfill queue: one named task per chunk and phase, so a retried request or a second enqueue of the
// same work is refused by Cloud Tasks instead of running twice.
import { CloudTasksClient } from "@google-cloud/tasks";
import { getFunctions } from "firebase-admin/functions";
import { REGION } from "../config";

/** What a chunk task carries (its wire names: a run travels as `migrationId`). */
export interface ChunkTaskPayload {
  migrationId: string;
  chunkId: string;
  /** The chunk's task generation the task was queued for; a delivery of an older one leaves the chunk alone. */
  generation?: number;
}

export type EnqueueResult = "enqueued" | "exists";

export interface ChunkQueue {
  enqueue(payload: ChunkTaskPayload, taskId: string): Promise<EnqueueResult>;
  /** Removes a queued task (a cancelled run's). "skipped" where deletion is not available (the emulator). */
  delete(taskId: string): Promise<"deleted" | "missing" | "skipped">;
}

/** Name of the task-queue function; Cloud Tasks' queue is named after it. */
export const CHUNK_FUNCTION = "backfillChunk";
/** How long Cloud Tasks waits for one delivery before retrying it (the handler yields well before). */
export const DISPATCH_DEADLINE_SECONDS = 900;

/**
 * Enqueues through firebase-admin (which targets the Cloud Tasks emulator when CLOUD_TASKS_EMULATOR_HOST is
 * set) and deletes through @google-cloud/tasks. The emulator has no way to delete a named task from
 * outside; there a cancelled run's handlers see its status and exit instead.
 */
export function firebaseChunkQueue(options: { projectId: string; emulator: boolean }): ChunkQueue {
  const queue = getFunctions().taskQueue<ChunkTaskPayload>(`locations/${REGION}/functions/${CHUNK_FUNCTION}`);
  let tasks: CloudTasksClient | undefined;
  return {
    async enqueue(payload, taskId) {
      try {
        await queue.enqueue(payload, { id: taskId, dispatchDeadlineSeconds: DISPATCH_DEADLINE_SECONDS });
        return "enqueued";
      } catch (error) {
        if ((error as { code?: string }).code === "functions/task-already-exists") return "exists";
        throw error;
      }
    },
    async delete(taskId) {
      if (options.emulator) return "skipped";
      tasks ??= new CloudTasksClient();
      try {
        await tasks.deleteTask({ name: tasks.taskPath(options.projectId, REGION, CHUNK_FUNCTION, taskId) });
        return "deleted";
      } catch (error) {
        if ((error as { code?: number }).code === 5 /* NOT_FOUND */) return "missing";
        throw error;
      }
    },
  };
}

/** Task ids allow letters, digits, hyphens and underscores. */
export function chunkTaskId(parts: {
  runId: string;
  chunkId: string;
  phase: string;
  generation: number;
  continuation?: number;
}): string {
  const base = `${parts.runId}-${parts.chunkId}-${parts.phase}-g${parts.generation}`;
  return (parts.continuation === undefined ? base : `${base}-p${parts.continuation}`).replace(/[^A-Za-z0-9_-]/g, "_");
}
