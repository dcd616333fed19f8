// The queue hard stop (scripts/queue.ts), against a recording stand-in for the Cloud Tasks admin API,
// which has no emulator.
import { describe, expect, it } from "vitest";
import { queueCommand, type QueueAdmin } from "../../../scripts/queue";

class RecordingAdmin implements QueueAdmin {
  readonly calls: string[] = [];
  state = "RUNNING";
  queuePath(project: string, location: string, queue: string) {
    return `projects/${project}/locations/${location}/queues/${queue}`;
  }
  pauseQueue({ name }: { name: string }) {
    this.calls.push(`pause ${name}`);
    this.state = "PAUSED";
    return Promise.resolve([{}]);
  }
  resumeQueue({ name }: { name: string }) {
    this.calls.push(`resume ${name}`);
    this.state = "RUNNING";
    return Promise.resolve([{}]);
  }
  getQueue() {
    return Promise.resolve([{ state: this.state }]);
  }
}

describe("queue hard stop", () => {
  it("pauses and resumes the backfillChunk queue of the given project", async () => {
    const admin = new RecordingAdmin();
    const out: string[] = [];
    expect(await queueCommand(["pause", "--project", "store-prod"], admin, (l) => out.push(l))).toBe(0);
    expect(
      await queueCommand(["resume", "--project", "store-prod", "--location", "europe-west1"], admin, (l) =>
        out.push(l),
      ),
    ).toBe(0);
    expect(admin.calls).toEqual([
      "pause projects/store-prod/locations/us-central1/queues/backfillChunk",
      "resume projects/store-prod/locations/europe-west1/queues/backfillChunk",
    ]);
    expect(out[0]).toBe("projects/store-prod/locations/us-central1/queues/backfillChunk: PAUSED");
    expect(await queueCommand(["pause"], admin, (l) => out.push(l))).toBe(2);
  });

  it("fails, saying why, when the queue is not in the state asked for (a deploy set it RUNNING in between)", async () => {
    const admin = new RecordingAdmin();
    admin.pauseQueue = ({ name }) => {
      admin.calls.push(`pause ${name}`);
      return Promise.resolve([{}]); // a deploy's update lands right after: the queue stays RUNNING
    };
    const out: string[] = [];
    expect(await queueCommand(["pause", "--project", "store-prod"], admin, (l) => out.push(l))).toBe(1);
    expect(out).toEqual([
      "projects/store-prod/locations/us-central1/queues/backfillChunk: RUNNING",
      "The queue is RUNNING, not PAUSED: run the command again, and check that no deploy is under way (a functions deploy sets the queue RUNNING).",
    ]);
    expect(await queueCommand(["status", "--project", "store-prod"], admin, () => undefined)).toBe(0);
  });
});
