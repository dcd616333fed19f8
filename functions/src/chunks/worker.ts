// The chunk task handler: what Cloud Tasks calls for one chunk task, and what happens when a delivery
// fails. The work on each chunk is chunks/work.ts (its moves at every page boundary), the chunks a
// delivery takes on besides its own are chunks/help.ts, a page is planned by chunks/pagePlan.ts and
// applied and committed by chunks/page.ts.
//
// A delivery works only while it holds the chunk's lease. A duplicate delivery of the same task waits for
// the holder to finish (or to stop renewing); a retry of the task takes over at once, because Cloud Tasks
// only retries an attempt it has given up on. The lease keeps deliveries from contending for the same
// documents; correctness never depends on it.
import { z } from "zod";
import { fail, noteError } from "../core/chunkControl";
import { CHUNK_ID_PATTERN } from "../core/shards";
import type { Deps } from "../deps";
import { ProductCatalog } from "../ledger/reads";
import { describe } from "../log";
import type { ChunkTaskPayload } from "../platform/tasks";
import { advanceRun } from "../runs/advance";
import { runFields } from "../runs/runFields";
import { runStore } from "../store/runs";
import { chunkStore } from "../store/chunks";
import { chunksToHelp } from "./help";
import { ChunkBusyError, workOnChunk, type ChunkTask, type Delivery } from "./work";

export { LEASE_SECONDS } from "./page";
export type { Delivery };

const payloadSchema = z.strictObject({
  migrationId: z.string().regex(/^[A-Za-z0-9_-]{1,200}$/),
  chunkId: z.string().regex(CHUNK_ID_PATTERN),
  generation: z.number().int().min(0).optional(),
});

/**
 * Entry point of the `backfillChunk` task function. Returns when the chunk needs nothing more from this
 * delivery; throws on transient failures so that Cloud Tasks retries, except on the last attempt, where
 * the chunk is recorded as failed instead.
 *
 * Once its own chunk needs nothing more, a delivery helps: it takes on chunks that are due but untouched
 * (their own tasks, arriving later, find them taken and return), so many small days cost a few
 * invocations instead of one each. A chunk it takes on carries this task's name in its lease; if the
 * delivery dies, Cloud Tasks retries this task, and the retry finishes what the lease names.
 */
export async function handleChunkTask(deps: Deps, payload: unknown, delivery: Delivery): Promise<void> {
  const parsed = payloadSchema.safeParse(payload);
  if (!parsed.success) {
    deps.log.internalError(
      "chunk_payload",
      new Error(`ignoring malformed chunk task payload: ${JSON.stringify(payload)}`),
    );
    return;
  }
  const runId = parsed.data.migrationId;
  const chunks = chunkStore(deps.db);
  const startedAt = deps.now().getTime();
  const catalog = new ProductCatalog(deps.db);
  const handled = new Set<string>();
  const own: ChunkTask = { runId, chunkId: parsed.data.chunkId, generation: parsed.data.generation ?? null };
  for (let batch = [own]; batch.length > 0; batch = await chunksToHelp(deps, runId, delivery, handled, startedAt)) {
    for (const task of batch) handled.add(task.chunkId);
    const outcomes = await Promise.allSettled(batch.map((task) => workOnChunk(deps, task, delivery, catalog)));
    const failures = outcomes.flatMap((o, i) =>
      o.status === "rejected" ? [{ chunkId: (batch[i] as ChunkTask).chunkId, error: o.reason as unknown }] : [],
    );
    const first = failures[0];
    if (!first) continue;
    const lastAttempt = delivery.retryCount + 1 >= deps.config.taskMaxAttempts;
    const run = await runStore(deps.db).get(runId);
    if (!run) throw first.error;
    const fields = runFields(runId, run.data);
    if (!lastAttempt || failures.some((f) => f.error instanceof ChunkBusyError)) {
      for (const { chunkId, error } of failures) {
        deps.log.chunkRetrying(fields, { id: chunkId, attempt: delivery.retryCount + 1 }, error);
        await chunks
          .apply(runId, chunkId, (c) => (c ? noteError(c, describe(error)) : { result: false, update: null }))
          // Only a note for operators; the delivery fails and is retried whatever happens here.
          .catch((noteFailure: unknown) => deps.log.internalError("chunk_last_error", noteFailure, fields));
      }
      throw first.error;
    }
    // Out of attempts: these chunks, and any other this task had taken on, end failed.
    const held = await chunks.heldBy(runId, delivery.taskName);
    for (const id of new Set([...failures.map((f) => f.chunkId), ...held.map((h) => h.data.id)])) {
      const now = deps.now().getTime();
      // Its own chunk as the generation its task was queued for; a chunk it helped with, as the task holding it.
      const by = { task: delivery.taskName, generation: id === own.chunkId ? own.generation : null };
      const { written, chunk } = await chunks.apply(runId, id, (c) =>
        c ? fail(c, describe(first.error), now, by) : { result: false, update: null },
      );
      if (written && chunk) {
        deps.log.chunkStopped(
          fields,
          { id, phase: chunk.step.phase, status: "failed", reason: describe(first.error) },
          chunk,
          0,
        );
      }
    }
    break;
  }
  await advanceRun(deps, runId);
}

export type { ChunkTaskPayload };
