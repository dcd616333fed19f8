// Wiring only: initialise the Admin SDK once and export the triggers. Each trigger hands its request to a
// named handler module, the same function the tests call.
import { initializeApp } from "firebase-admin/app";
import { setGlobalOptions } from "firebase-functions/v2";
import { onRequest } from "firebase-functions/v2/https";
import { onSchedule } from "firebase-functions/v2/scheduler";
import { onTaskDispatched } from "firebase-functions/v2/tasks";
import { replaySchedule, runScheduledReplay } from "./start/scheduled";
import { watchRuns } from "./runs/watchdog";
import { handleChunkTask } from "./chunks/worker";
import { REGION } from "./config";
import { buildDeps } from "./runtime";
import { handleApi } from "./http/api";
import { handlePaynowWebhook } from "./webhooks/receiver";
import {
  API_MAX_INSTANCES,
  FUNCTIONS_SERVICE_ACCOUNT,
  PAYNOW_WEBHOOK_SECRETS,
  TASK_MAX_ATTEMPTS,
  TASK_MAX_CONCURRENT,
  TASK_MAX_PER_SECOND,
  TASK_MIN_BACKOFF_SECONDS,
} from "./params";

// Every function runs as one dedicated service account with only the roles it needs (docs/deploy.md).
setGlobalOptions({ serviceAccount: FUNCTIONS_SERVICE_ACCOUNT });

// In the emulator there is no metadata server to name the service account that signs task OIDC tokens;
// without one, firebase-admin would ask the network for it on every enqueue.
initializeApp(
  process.env.FUNCTIONS_EMULATOR === "true"
    ? { serviceAccountId: `backfill@${process.env.GCLOUD_PROJECT}.iam.gserviceaccount.com` }
    : undefined,
);

/** The HTTP API behind Hosting's /api/** rewrite. Public at the network edge; every call must carry an OIDC token. */
export const api = onRequest(
  // A few operators and one scheduler call it: a handful of instances, each serving many light requests.
  {
    region: REGION,
    invoker: "public",
    timeoutSeconds: 120,
    memory: "512MiB",
    cpu: 1,
    concurrency: 40,
    maxInstances: API_MAX_INSTANCES,
  },
  (req, res) => handleApi(buildDeps(), req, res),
);

/**
 * PayNow's webhooks, behind Hosting's /webhooks/paynow rewrite. Public: PayNow signs every request with
 * the subscription's secret, and nothing is stored unless the signature holds.
 */
export const paynowWebhook = onRequest(
  {
    region: REGION,
    invoker: "public",
    secrets: [PAYNOW_WEBHOOK_SECRETS],
    timeoutSeconds: 60,
    memory: "512MiB",
    cpu: 1,
    concurrency: 40,
    maxInstances: 10,
  },
  (req, res) => handlePaynowWebhook(buildDeps(), req, res),
);

/** One delivery of one chunk task from the backfill queue. */
export const backfillChunk = onTaskDispatched(
  {
    region: REGION,
    retryConfig: {
      maxAttempts: TASK_MAX_ATTEMPTS,
      minBackoffSeconds: TASK_MIN_BACKOFF_SECONDS,
      maxBackoffSeconds: 600,
      maxDoublings: 4,
    },
    rateLimits: { maxConcurrentDispatches: TASK_MAX_CONCURRENT, maxDispatchesPerSecond: TASK_MAX_PER_SECOND },
    timeoutSeconds: 1800,
    memory: "1GiB",
    // One delivery per instance, with a core of its own: what docs/capacity.md assumes (Firebase's default
    // would put 80 on one instance's vCPU, and every delivery's pace would fall with the crowd).
    cpu: 1,
    concurrency: 1,
  },
  (request) => handleChunkTask(buildDeps(), request.data, { retryCount: request.retryCount, taskName: request.id }),
);

/** The recurring replay (a Cloud Scheduler job): a webhook_replay over the trailing REPLAY_LOOKBACK_DAYS. */
export const scheduledReplay = onSchedule(
  { schedule: replaySchedule(process.env), timeZone: "Etc/UTC", region: REGION, retryCount: 3, timeoutSeconds: 300 },
  async (event) => {
    await runScheduledReplay(buildDeps(), event.scheduleTime ? new Date(event.scheduleTime) : new Date());
  },
);

/** The watchdog: every few minutes, repairs runs that could make no progress (see runs/watchdog.ts). */
export const runWatchdog = onSchedule(
  { schedule: "every 5 minutes", timeZone: "Etc/UTC", region: REGION, retryCount: 0, timeoutSeconds: 300 },
  async () => {
    await watchRuns(buildDeps());
  },
);
