// Every setting the functions read, validated once. Values come from firebase-functions params (which
// reach the runtime as environment variables) and are parsed here from an environment passed in, so tests
// can hand in their own.
import { z } from "zod";
import type { Roles } from "./core/access";
import { DEFAULT_WALLET_FIELD, WALLET_FIELDS, type WalletField } from "./core/paynow";

/** The default operator of the local stack; allowed everywhere, but only in the emulator. */
export const LOCAL_OPERATOR_EMAIL = "operator@backfill.local";
/** Issuer of the tokens `npm run token` mints; trusted only in the emulator. */
export const LOCAL_ISSUER = "https://local-oidc.backfill.invalid";
/** Region of every function; the Hosting rewrite in firebase.json names it too. */
export const REGION = "us-central1";

const list = z
  .string()
  .optional()
  .transform((raw, ctx): string[] => {
    const text = (raw ?? "").trim();
    if (text === "") return [];
    if (text.startsWith("[")) {
      try {
        const parsed: unknown = JSON.parse(text);
        if (Array.isArray(parsed) && parsed.every((v) => typeof v === "string")) {
          return parsed.map((v) => v.trim()).filter(Boolean);
        }
      } catch {
        // reported below
      }
      ctx.addIssue({ code: "custom", message: "must be a JSON array of strings or a comma-separated list" });
      return z.NEVER;
    }
    return text
      .split(",")
      .map((v) => v.trim())
      .filter(Boolean);
  });

const bool = (fallback: boolean) =>
  z
    .enum(["true", "false", "1", "0", ""], { error: "must be true or false" })
    .optional()
    .transform((v) => (v === undefined || v === "" ? fallback : v === "true" || v === "1"));

const int = (fallback: number, min: number, max: number) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === "") return fallback;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max) {
        ctx.addIssue({ code: "custom", message: `must be an integer from ${min} to ${max}` });
        return z.NEVER;
      }
      return n;
    });

const envSchema = z.object({
  GCLOUD_PROJECT: z.string().min(1, { error: "must name the Firebase project" }),
  FUNCTIONS_EMULATOR: z.string().optional(),
  BACKFILL_ENABLED: bool(true),
  OIDC_AUDIENCES: list,
  VIEWER_EMAILS: list,
  OPERATOR_EMAILS: list,
  SCHEDULER_EMAILS: list,
  // The two lists before roles; a leftover value is an error that says what replaced it.
  JOBS_ALLOWED_EMAILS: z.string().optional(),
  ADMIN_ALLOWED_EMAILS: z.string().optional(),
  MAX_ACTIVE_RUNS: int(10, 1, 1000),
  LOCAL_OIDC_PUBLIC_KEY_FILE: z.string().optional(),
  // A run, its chunk documents, its idempotency record and the admission record are written in one
  // transaction of at most 500 writes.
  MAX_RANGE_DAYS: int(366, 1, 497),
  // A page's error records are committed in the page's transaction, which allows 500 writes.
  CHUNK_PAGE_SIZE: int(400, 10, 400),
  CHUNK_READ_SIZE: int(5000, 10, 10_000),
  // A group's batch writes up to three documents per event; a batch allows 500.
  CHUNK_GROUP_SIZE: int(50, 1, 150),
  // One customer's orders in a page share one transaction (their wallet written once) up to this many events.
  CHUNK_WALLET_GROUP_SIZE: int(150, 1, 150),
  CHUNK_PARALLEL_GROUPS: int(8, 1, 64),
  CHUNK_SLICE_SECONDS: int(240, 5, 1500),
  // A day with more events than this is cut into shards of about this many, each its own chunk and task.
  SHARD_EVENTS: int(5000, 100, 1_000_000),
  TASK_MAX_ATTEMPTS: int(5, 1, 100),
  // The queue's rate limits (params.ts sets them on the queue); the time estimate models them.
  TASK_MAX_CONCURRENT: int(6, 1, 5000),
  TASK_MAX_PER_SECOND: int(20, 1, 500),
  // A queued chunk task that has not started after this long is taken for lost and queued again.
  WATCHDOG_STALL_SECONDS: int(1800, 60, 86_400),
  // A chunk whose deliveries vanish holding it this many times in a row (each a new task) fails instead.
  WATCHDOG_MAX_CRASHES: int(3, 0, 100),
  PLAN_MAX_AGE_MINUTES: int(60, 1, 10_080),
  AUTO_PAUSE_ERROR_RATE: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === "") return 0.05;
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0 || n > 1) {
        ctx.addIssue({ code: "custom", message: "must be a number from 0 to 1 (0.05 = 5%)" });
        return z.NEVER;
      }
      return n;
    }),
  // Which PayNow customer field is the wallet id; applies to the order's customer and a line's gift recipient.
  WALLET_FIELD: z
    .enum(["", ...WALLET_FIELDS], { error: `must be one of ${WALLET_FIELDS.join(", ")}` })
    .optional()
    .transform((v): WalletField => (v === undefined || v === "" ? DEFAULT_WALLET_FIELD : v)),
  // The webhook receiver's signing secrets (a Secret Manager secret; one per PayNow subscription).
  PAYNOW_WEBHOOK_SECRETS: list,
  REPLAY_LOOKBACK_DAYS: int(2, 1, 31),
  REPLAY_DRY_RUN: bool(false),
  REPLAY_MAX_EVENTS: int(10_000, 1, 100_000),
});

/** The validated settings. */
export interface Config {
  projectId: string;
  /** True only inside the Functions emulator under a demo- project: enables local tokens. */
  emulator: boolean;
  /** The deploy-time half of the kill switch (the other half is `featureFlags/backfill`). */
  backfillEnabled: boolean;
  /** Accepted `aud` values of ID tokens. */
  oidcAudiences: string[];
  /** Who may read, start and control runs (see core/access.ts). Emails are lower-case. */
  roles: Roles;
  /** Most runs active (pending, running or paused) at once; the next start is refused with 429. */
  maxActiveRuns: number;
  /** Public key of local tokens (emulator only). */
  localOidcPublicKeyFile: string | null;
  /** Most days one run may cover. */
  maxRangeDays: number;
  /** Events examined and committed per page inside a chunk. */
  pageSize: number;
  /** Event documents one query reads (several pages' worth; bounds a delivery's memory). */
  readSize: number;
  /** Events applied per Firestore transaction. */
  groupSize: number;
  /** Events of one customer's orders one transaction may take (ledger/apply.ts groupByOrder). */
  walletGroupSize: number;
  /** Transactions in flight at once inside a chunk. */
  parallelGroups: number;
  /** Events above which a day is cut into time slices (shards) of about this many, each its own chunk. */
  shardEvents: number;
  /** How long one task delivery works before it hands the rest of its chunk to a continuation task. */
  sliceSeconds: number;
  /** Delivery attempts Cloud Tasks makes per task (the queue's retryConfig.maxAttempts). */
  taskMaxAttempts: number;
  /** The queue's rate limits: deliveries at once and dispatches per second. */
  queue: { concurrency: number; dispatchesPerSecond: number };
  /** How long the watchdog lets a queued chunk task (or a continuation) wait to start before queueing it again. */
  stallSeconds: number;
  /** Crash re-queues before a chunk whose deliveries keep vanishing fails (WATCHDOG_MAX_CRASHES). */
  maxCrashes: number;
  /** How long after a dry run finished its plan may be executed (`{"planOf": id}`). */
  planMaxAgeMinutes: number;
  /** Default maxErrorRate of new runs. */
  autoPauseErrorRate: number;
  /** The scheduled replay: trailing window, dry run, event cap. */
  replay: { lookbackDays: number; dryRun: boolean; maxEvents: number };
  /** Which PayNow customer field names the wallet (`WALLET_FIELD`). */
  walletField: WalletField;
  /** The receiver's PayNow signing secrets; empty where the secret is not mounted (every function but the receiver). */
  webhookSecrets: string[];
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Parses the environment; a bad setting fails with its name and the accepted values. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const result = envSchema.safeParse(env);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `${i.path.join(".")} ${i.message}`);
    throw new ConfigError(`Invalid backfill configuration: ${lines.join("; ")}`);
  }
  const e = result.data;
  const emulator = e.FUNCTIONS_EMULATOR === "true" && e.GCLOUD_PROJECT.startsWith("demo-");
  const withLocal = (emails: string[]) => (emulator ? [...new Set([LOCAL_OPERATOR_EMAIL, ...emails])] : emails);
  const lower = (emails: string[]) => emails.map((m) => m.toLowerCase());
  for (const [old, now] of [
    ["JOBS_ALLOWED_EMAILS", "OPERATOR_EMAILS and SCHEDULER_EMAILS"],
    ["ADMIN_ALLOWED_EMAILS", "VIEWER_EMAILS and OPERATOR_EMAILS"],
  ] as const) {
    if ((e[old] ?? "").trim() !== "") {
      throw new ConfigError(
        `Invalid backfill configuration: ${old} was replaced by ${now} (see docs/configuration.md); move its emails there and remove it`,
      );
    }
  }
  if (!emulator && e.OIDC_AUDIENCES.length === 0) {
    throw new ConfigError(
      "Invalid backfill configuration: OIDC_AUDIENCES must list at least one audience (for example the Hosting URL, https://<project>.web.app)",
    );
  }
  return {
    projectId: e.GCLOUD_PROJECT,
    emulator,
    backfillEnabled: e.BACKFILL_ENABLED,
    oidcAudiences: e.OIDC_AUDIENCES,
    roles: {
      viewers: lower(e.VIEWER_EMAILS),
      operators: lower(withLocal(e.OPERATOR_EMAILS)),
      schedulers: lower(e.SCHEDULER_EMAILS),
    },
    maxActiveRuns: e.MAX_ACTIVE_RUNS,
    localOidcPublicKeyFile: emulator ? (e.LOCAL_OIDC_PUBLIC_KEY_FILE ?? null) : null,
    maxRangeDays: e.MAX_RANGE_DAYS,
    pageSize: e.CHUNK_PAGE_SIZE,
    readSize: e.CHUNK_READ_SIZE,
    groupSize: e.CHUNK_GROUP_SIZE,
    walletGroupSize: e.CHUNK_WALLET_GROUP_SIZE,
    parallelGroups: e.CHUNK_PARALLEL_GROUPS,
    sliceSeconds: e.CHUNK_SLICE_SECONDS,
    shardEvents: e.SHARD_EVENTS,
    taskMaxAttempts: e.TASK_MAX_ATTEMPTS,
    queue: { concurrency: e.TASK_MAX_CONCURRENT, dispatchesPerSecond: e.TASK_MAX_PER_SECOND },
    stallSeconds: e.WATCHDOG_STALL_SECONDS,
    maxCrashes: e.WATCHDOG_MAX_CRASHES,
    planMaxAgeMinutes: e.PLAN_MAX_AGE_MINUTES,
    autoPauseErrorRate: e.AUTO_PAUSE_ERROR_RATE,
    replay: { lookbackDays: e.REPLAY_LOOKBACK_DAYS, dryRun: e.REPLAY_DRY_RUN, maxEvents: e.REPLAY_MAX_EVENTS },
    walletField: e.WALLET_FIELD,
    webhookSecrets: e.PAYNOW_WEBHOOK_SECRETS,
  };
}
