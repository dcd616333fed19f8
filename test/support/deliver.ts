// Plays Cloud Tasks in-process: takes the tasks a run enqueued and calls the chunk handler for them, as
// many times and as concurrently as a test asks, retrying a thrown delivery like Cloud Tasks would.
import { AsyncLocalStorage } from "node:async_hooks";
import { handleChunkTask } from "../../functions/src/chunks/worker";
import type { Deps } from "../../functions/src/deps";
import { startRun } from "../../functions/src/start/start";
import type { RunDoc } from "../../functions/src/store/runs";
import { db, type RecordingQueue, TEST_CALLER } from "./emulator";

export async function startInProcess(deps: Deps, body: Record<string, unknown>): Promise<string> {
  return (await startRun(deps, body, { caller: TEST_CALLER })).run.migrationId;
}

export interface DeliveryPlan {
  /** Deliveries of every task (at least 1). */
  times?: number;
  /** Deliver a task's copies at the same moment rather than one after another. */
  concurrent?: boolean;
  /** Stop after this many rounds of draining the queue (a round = every task enqueued so far). */
  maxRounds?: number;
}

/** Which delivery the code running now belongs to, if any. */
const delivering = new AsyncLocalStorage<{ taskName: string; retryCount: number }>();

/**
 * The delivery the current code runs inside, or undefined when it runs in a start or a control call. Fault
 * injectors use it so that a fault counts only where it hits a chunk delivery, which Cloud Tasks retries.
 */
export function currentDelivery(): { taskName: string; retryCount: number } | undefined {
  return delivering.getStore();
}

/** One delivery of a task, as Cloud Tasks makes it. */
export function deliverOnce(deps: Deps, payload: unknown, taskName: string, retryCount = 0): Promise<void> {
  return delivering.run({ taskName, retryCount }, () => handleChunkTask(deps, payload, { retryCount, taskName }));
}

/** Delivers one task, retrying on a throw up to the configured attempts; returns the attempts used. */
export async function deliverWithRetries(deps: Deps, payload: unknown, taskName: string): Promise<number> {
  for (let retryCount = 0; ; retryCount++) {
    try {
      await deliverOnce(deps, payload, taskName, retryCount);
      return retryCount + 1;
    } catch (error) {
      if (retryCount + 1 >= deps.config.taskMaxAttempts) throw error;
    }
  }
}

/** Delivers every task until the queue stays empty; returns the run as it ends up. */
export async function deliverAll(
  deps: Deps,
  queue: RecordingQueue,
  migrationId: string,
  plan: DeliveryPlan = {},
): Promise<RunDoc> {
  const times = plan.times ?? 1;
  for (let round = 0; round < (plan.maxRounds ?? 100); round++) {
    const tasks = queue.drain();
    if (tasks.length === 0) break;
    await Promise.all(
      tasks.map(async (task) => {
        if (plan.concurrent) {
          await Promise.all(Array.from({ length: times }, () => deliverWithRetries(deps, task.payload, task.taskId)));
        } else {
          for (let i = 0; i < times; i++) await deliverWithRetries(deps, task.payload, task.taskId);
        }
      }),
    );
  }
  return (await db().collection("dataMigrations").doc(migrationId).get()).data() as RunDoc;
}
