// Deploy-time parameters. `firebase deploy` asks for the ones without defaults and stores the answers in
// functions/.env.<project>; at run time they arrive as environment variables, which config.ts validates.
import { defineBoolean, defineInt, defineList, defineSecret, defineString } from "firebase-functions/params";

/** A whole-number parameter with its default. */
const int = (name: string, value: number, description: string) => defineInt(name, { default: value, description });

export const BACKFILL_ENABLED = defineBoolean("BACKFILL_ENABLED", {
  default: true,
  description: "Kill switch: false makes new jobs answer 503 and running chunks stop at their next page",
});

export const OIDC_AUDIENCES = defineList("OIDC_AUDIENCES", {
  description: "Accepted audiences of callers' Google ID tokens, e.g. https://<project>.web.app",
});

export const VIEWER_EMAILS = defineList("VIEWER_EMAILS", {
  default: [],
  description: "Caller emails that may only read runs (GET /api/admin/**, the console's views)",
});

export const OPERATOR_EMAILS = defineList("OPERATOR_EMAILS", {
  description:
    "Caller emails (users or service accounts) that may start, pause, resume, cancel and retry runs and flip the kill switch",
});

export const SCHEDULER_EMAILS = defineList("SCHEDULER_EMAILS", {
  default: [],
  description:
    "Cloud Scheduler service accounts that may only start runs; only their X-CloudScheduler headers are honoured",
});

export const MAX_ACTIVE_RUNS = int(
  "MAX_ACTIVE_RUNS",
  10,
  "Most runs active (pending, running or paused) at once; the next start gets 429 too_many_runs",
);

export const TASK_MAX_ATTEMPTS = int(
  "TASK_MAX_ATTEMPTS",
  5,
  "Delivery attempts per chunk task before the chunk is marked failed",
);

export const TASK_MIN_BACKOFF_SECONDS = int(
  "TASK_MIN_BACKOFF_SECONDS",
  10,
  "Seconds Cloud Tasks waits before the first retry of a chunk (doubling after)",
);

export const TASK_MAX_CONCURRENT = int(
  "TASK_MAX_CONCURRENT",
  6,
  "Chunks processed at the same time across the whole backfill queue",
);

export const TASK_MAX_PER_SECOND = int(
  "TASK_MAX_PER_SECOND",
  20,
  "Chunk task dispatches per second on the backfill queue",
);

export const REPLAY_LOOKBACK_DAYS = int(
  "REPLAY_LOOKBACK_DAYS",
  2,
  "Days the scheduled replay covers, ending on the day it runs (UTC)",
);

export const REPLAY_DRY_RUN = defineBoolean("REPLAY_DRY_RUN", {
  default: false,
  description: "Whether the scheduled replay is only a dry run",
});

export const REPLAY_MAX_EVENTS = int("REPLAY_MAX_EVENTS", 10000, "Event cap of each scheduled replay");

export const FUNCTIONS_SERVICE_ACCOUNT = defineString("FUNCTIONS_SERVICE_ACCOUNT", {
  default: "backfill-functions@",
  description:
    "Service account every function runs as ('name@' means name@<project>.iam.gserviceaccount.com); see docs/deploy.md for its roles",
});

export const API_MAX_INSTANCES = int(
  "API_MAX_INSTANCES",
  5,
  "Most instances of the api function (each serves up to 40 requests at once)",
);

export const WALLET_FIELD = defineString("WALLET_FIELD", {
  default: "id",
  description:
    "Which PayNow customer field is the wallet id: id (PayNow's customer id), steam.id, minecraft.id or profile.id",
});

/**
 * The PayNow webhook signing secrets, comma-separated (PayNow gives each webhook subscription its own):
 * `firebase functions:secrets:set PAYNOW_WEBHOOK_SECRETS`. The local stack's is in functions/.secret.local.
 */
export const PAYNOW_WEBHOOK_SECRETS = defineSecret("PAYNOW_WEBHOOK_SECRETS");
