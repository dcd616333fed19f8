// The backfill queue: one named task per chunk and phase, so a retried request or a second enqueue of the
// same work is refused by Cloud Tasks instead of running twice.
import { getFunctions } from "firebase-admin/functions";
import { REGION } from "../config";

/** What a chunk task carries. */
export interface ChunkTaskPayload {
  migrationId: string;
  chunkId: string;
}

export type EnqueueResult = "enqueued" | "exists";

export interface ChunkQueue {
  enqueue(payload: ChunkTaskPayload, taskId: string): Promise<EnqueueResult>;
}

/** Name of the task-queue function; Cloud Tasks' queue is named after it. */
export const CHUNK_FUNCTION = "backfillChunk";
/** How long Cloud Tasks waits for one delivery before retrying it (the handler yields well before). */
export const DISPATCH_DEADLINE_SECONDS = 900;

export function firebaseChunkQueue(): ChunkQueue {
  const queue = getFunctions().taskQueue<ChunkTaskPayload>(`locations/${REGION}/functions/${CHUNK_FUNCTION}`);
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
  };
}

/** Task ids allow letters, digits, hyphens and underscores. */
export function chunkTaskId(parts: { migrationId: string; chunkId: string; phase: string; generation: number; continuation?: number }): string {
  const base = `${parts.migrationId}-${parts.chunkId}-${parts.phase}-g${parts.generation}`;
  return (parts.continuation === undefined ? base : `${base}-p${parts.continuation}`).replace(/[^A-Za-z0-9_-]/g, "_");
}
