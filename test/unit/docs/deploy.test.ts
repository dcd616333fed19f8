// What a deploy does to a paused task queue (issue 18 item 15), checked against the pinned firebase-tools
// itself: its deploy writes the backfillChunk queue's whole configuration, `state: "RUNNING"` included, so a
// deploy while the queue is paused for an emergency releases every queued task. docs/operations.md says
// what to do about it (kill switch off first, pause again after the deploy).
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";

const require = createRequire(import.meta.url);
const tasks = require("firebase-tools/lib/gcp/cloudtasks.js") as {
  queueFromEndpoint(endpoint: unknown): { name: string; state: string; rateLimits: unknown; retryConfig: unknown };
  upsertQueue(queue: unknown): Promise<boolean>;
  getQueue: (name: string) => Promise<unknown>;
  updateQueue: (queue: unknown) => Promise<unknown>;
  purgeQueue: (name: string) => Promise<void>;
};
const proto = require("firebase-tools/lib/gcp/proto.js") as { fieldMasks(o: unknown): string[] };
const pinned = (require("firebase-tools/package.json") as { version: string }).version;

describe(`a functions deploy and a paused queue (firebase-tools ${pinned})`, () => {
  it("sets the paused backfillChunk queue back to RUNNING, whatever else changed", async () => {
    // The queue as functions/src/index.ts declares it (production's defaults).
    const endpoint = {
      id: "backfillChunk",
      project: "store-prod",
      region: "us-central1",
      taskQueueTrigger: {
        rateLimits: { maxConcurrentDispatches: 6, maxDispatchesPerSecond: 20 },
        retryConfig: { maxAttempts: 5, minBackoffSeconds: 10, maxBackoffSeconds: 600, maxDoublings: 4 },
      },
    };
    const wanted = tasks.queueFromEndpoint(endpoint);
    const paused = { ...JSON.parse(JSON.stringify(wanted)), state: "PAUSED" };
    const updates: unknown[] = [];
    const saved = { getQueue: tasks.getQueue, updateQueue: tasks.updateQueue, purgeQueue: tasks.purgeQueue };
    tasks.getQueue = () => Promise.resolve(paused);
    tasks.updateQueue = (queue) => {
      updates.push(queue);
      return Promise.resolve(queue);
    };
    tasks.purgeQueue = () => Promise.reject(new Error("a paused queue is not purged"));
    try {
      await tasks.upsertQueue(wanted);
    } finally {
      Object.assign(tasks, saved);
    }
    expect(updates).toHaveLength(1);
    expect(updates[0]).toMatchObject({ name: wanted.name, state: "RUNNING" });
    expect(proto.fieldMasks(updates[0])).toContain("state");
  });
});
