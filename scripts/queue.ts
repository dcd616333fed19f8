// `npm run -s queue -- pause|resume|status --project <id> [--location us-central1]`: the production hard
// stop. Pausing the backfill Cloud Tasks queue stops every dispatch at once, whatever the code does;
// tasks stay queued and run when the queue is resumed. (The kill switch, by contrast, lets chunks finish
// their current page and record a checkpoint.) Needs roles/cloudtasks.queueAdmin.
import { parseArgs } from "node:util";
import { CloudTasksClient } from "@google-cloud/tasks";
import { REGION } from "../functions/src/config";
import { CHUNK_FUNCTION } from "../functions/src/platform/tasks";

export interface QueueAdmin {
  queuePath(project: string, location: string, queue: string): string;
  pauseQueue(request: { name: string }): Promise<unknown>;
  resumeQueue(request: { name: string }): Promise<unknown>;
  getQueue(request: { name: string }): Promise<unknown>;
}

export async function queueCommand(argv: string[], client: QueueAdmin, out: (line: string) => void): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { project: { type: "string" }, location: { type: "string", default: REGION } },
  });
  const action = positionals[0];
  if (!action || !["pause", "resume", "status"].includes(action) || !values.project) {
    out("usage: npm run -s queue -- pause|resume|status --project <project-id> [--location us-central1]");
    return 2;
  }
  const name = client.queuePath(values.project, values.location, CHUNK_FUNCTION);
  if (action === "pause") await client.pauseQueue({ name });
  if (action === "resume") await client.resumeQueue({ name });
  const [queue] = (await client.getQueue({ name })) as [{ state?: unknown }];
  out(`${name}: ${String(queue.state)}`);
  // Say so when the queue is not in the state asked for (a deploy in between sets it RUNNING again).
  const wanted = action === "pause" ? "PAUSED" : action === "resume" ? "RUNNING" : null;
  if (wanted !== null && queue.state !== wanted) {
    out(
      `The queue is ${String(queue.state)}, not ${wanted}: run the command again, and check that no deploy is under way (a functions deploy sets the queue RUNNING).`,
    );
    return 1;
  }
  return 0;
}

if (process.argv[1]?.endsWith("queue.ts")) {
  process.exitCode = await queueCommand(process.argv.slice(2), new CloudTasksClient(), (l) => console.log(l));
}
