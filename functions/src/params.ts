// Deploy-time parameters. `firebase deploy` asks for the ones without defaults and stores the answers in
// functions/.env.<project>; at run time they arrive as environment variables, which config.ts validates.
import { defineBoolean, defineInt, defineList } from "firebase-functions/params";

export const BACKFILL_ENABLED = defineBoolean("BACKFILL_ENABLED", {
  default: true,
  description: "Kill switch: false makes new jobs answer 503 and running chunks stop at their next page",
});

export const OIDC_AUDIENCES = defineList("OIDC_AUDIENCES", {
  description: "Accepted audiences of callers' Google ID tokens, e.g. https://<project>.web.app",
});

export const JOBS_ALLOWED_EMAILS = defineList("JOBS_ALLOWED_EMAILS", {
  description: "Caller emails (users or service accounts) allowed to start backfill jobs",
});

export const ADMIN_ALLOWED_EMAILS = defineList("ADMIN_ALLOWED_EMAILS", {
  description: "Caller emails allowed on /api/admin (run status and control)",
});

export const TASK_MAX_ATTEMPTS = defineInt("TASK_MAX_ATTEMPTS", {
  default: 5,
  description: "Delivery attempts per chunk task before the chunk is marked failed",
});

export const TASK_MIN_BACKOFF_SECONDS = defineInt("TASK_MIN_BACKOFF_SECONDS", {
  default: 10,
  description: "Seconds Cloud Tasks waits before the first retry of a chunk (doubling after)",
});

export const TASK_MAX_CONCURRENT = defineInt("TASK_MAX_CONCURRENT", {
  default: 6,
  description: "Chunks processed at the same time across the whole backfill queue",
});

export const TASK_MAX_PER_SECOND = defineInt("TASK_MAX_PER_SECOND", {
  default: 20,
  description: "Chunk task dispatches per second on the backfill queue",
});

export const REPLAY_LOOKBACK_DAYS = defineInt("REPLAY_LOOKBACK_DAYS", {
  default: 2,
  description: "Days the scheduled replay covers, ending on the day it runs (UTC)",
});

export const REPLAY_DRY_RUN = defineBoolean("REPLAY_DRY_RUN", {
  default: false,
  description: "Whether the scheduled replay is only a dry run",
});

export const REPLAY_MAX_EVENTS = defineInt("REPLAY_MAX_EVENTS", {
  default: 10000,
  description: "Event cap of each scheduled replay",
});
