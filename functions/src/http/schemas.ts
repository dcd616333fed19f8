// The API's wire format, as zod schemas: the request bodies the server validates (core/request.ts) and the
// answers it sends. The server's views are typed from these (runs/views.ts returns `RunView`, …), and the
// one client (http/client.ts) that the CLI, the console, the tests and the bench use takes its types from
// the same place, so a field cannot change on one side only.
import { z } from "zod";
import { CONTROL_ACTIONS } from "../core/control";
import { PHASES, RUN_STATUSES, RUN_TYPES, CHUNK_STATUSES } from "../core/types";

export { type ExecutePlanBody, type StartRunBody } from "../core/request";

const iso = z.string().nullable();
const counters = { total: z.number(), processed: z.number(), skipped: z.number(), errors: z.number() };

export const errorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
});
export type ApiErrorBody = z.infer<typeof errorSchema>;

/** The 202 answer to `POST /api/jobs/backfill`. */
export const startedRunSchema = z.object({
  migrationId: z.string(),
  status: z.literal("pending"),
  chunks: z.number(),
  type: z.enum(RUN_TYPES),
  startDate: z.string(),
  endDate: z.string(),
  dryRun: z.boolean(),
  plannedEvents: z.number(),
  selectedEvents: z.number(),
  capReached: z.boolean(),
  userIds: z.array(z.string()).nullable(),
  planOf: z.string().nullable(),
  estimatedSeconds: z.number(),
});
export type StartedRun = z.infer<typeof startedRunSchema>;

/** A run as `GET /api/admin/dataMigrations` lists it. */
/** When a run or a chunk started and finished, and why it is paused if it is. */
const lifetime = { pausedReason: z.string().nullable(), startedAt: iso, finishedAt: iso };

export const runViewSchema = z.object({
  id: z.string(),
  type: z.enum(RUN_TYPES),
  startDate: z.string(),
  endDate: z.string(),
  dryRun: z.boolean(),
  maxEvents: z.number(),
  status: z.enum(RUN_STATUSES),
  phase: z.enum(PHASES),
  ...counters,
  chunksTotal: z.number(),
  chunksDone: z.number(),
  chunksFailed: z.number(),
  plannedEvents: z.number(),
  selectedEvents: z.number(),
  capReached: z.boolean(),
  maxErrorRate: z.number(),
  maxEventsPerSecond: z.number().nullable(),
  autoPause: z.object({ errorRate: z.number(), window: z.number(), threshold: z.number(), at: iso }).nullable(),
  retries: z.number(),
  lookbackDays: z.number().nullable(),
  userIds: z.array(z.string()).nullable(),
  planOf: z.string().nullable(),
  estimatedSeconds: z.number(),
  requestedBy: z.string(),
  requestedBySub: z.string(),
  failureReason: z.string().nullable(),
  createdAt: iso,
  ...lifetime,
});
export type RunView = z.infer<typeof runViewSchema>;

export const runListSchema = z.object({ migrations: z.array(runViewSchema) });
export type RunList = z.infer<typeof runListSchema>;

const stepSchema = z.object({ phase: z.enum(PHASES), step: z.enum(["scan", "errors"]) });

export const chunkViewSchema = z.object({
  /** The day, or a shard of a busy day (`YYYY-MM-DD~NNNN`). */
  id: z.string(),
  day: z.string(),
  /** The span of event time the chunk covers: [from, to). */
  from: z.string(),
  to: z.string(),
  status: z.enum(CHUNK_STATUSES),
  ...stepSchema.shape,
  upcoming: z.array(stepSchema),
  ...counters,
  budgets: z.partialRecord(z.enum(PHASES), z.number()),
  pages: z.number(),
  attempts: z.number(),
  stoppedAtBudget: z.boolean(),
  lastError: z.string().nullable(),
  ...lifetime,
});
export type ChunkView = z.infer<typeof chunkViewSchema>;

const comparedCounters = z.object({
  selectedEvents: z.number(),
  plannedEvents: z.number(),
  total: z.number(),
  processed: z.number(),
  skipped: z.number(),
  errors: z.number(),
});

/** A finished real run against the dry run it executed (`planOf`). */
/** What a run does to wallets (core/moves.ts). */
export const moneyMovedSchema = z.object({
  entries: z.number(),
  credited: z.number(),
  reversed: z.number(),
  reinstated: z.number(),
  net: z.number(),
  wallets: z.number(),
  largest: z.array(z.object({ userId: z.string(), points: z.number() })),
});

export const planComparisonSchema = z.object({
  dryRunId: z.string(),
  matches: z.boolean(),
  dry: comparedCounters.nullable(),
  real: comparedCounters,
  counterDifferences: z.array(z.string()),
  differenceCount: z.number(),
  differences: z.array(z.object({ eventId: z.string(), dry: z.string(), real: z.string(), why: z.string() })),
  /** What each run did (would do) to wallets, side by side. */
  money: z.object({ dry: moneyMovedSchema.nullable(), real: moneyMovedSchema }),
  note: z.string().nullable(),
});
export type PlanComparison = z.infer<typeof planComparisonSchema>;

export const throughputSchema = z.object({
  bucketSeconds: z.number(),
  points: z.array(z.object({ at: z.string(), events: z.number(), perSecond: z.number() })),
});

/** `GET /api/admin/dataMigrations/{id}`. */
export const runDetailSchema = z.object({
  migration: runViewSchema.extend({ etaSeconds: z.number().nullable(), elapsedSeconds: z.number() }),
  throughput: throughputSchema,
  planComparison: planComparisonSchema.nullable(),
  /** What the run did (a dry run: would do) to wallets; null until it has finished. */
  money: moneyMovedSchema.nullable(),
  chunks: z.array(chunkViewSchema),
  errorSample: z.array(
    z.object({
      eventId: z.string(),
      code: z.string(),
      message: z.string(),
      chunkId: z.string(),
      phase: z.string(),
      attempts: z.number(),
      at: iso,
    }),
  ),
  errorCount: z.number(),
  /** Documents this view read from Firestore: constant plus one per chunk, except the first view after the run ends. */
  docsRead: z.number(),
});
export type RunDetail = z.infer<typeof runDetailSchema>;

/** `POST /api/admin/dataMigrations/{id}/{action}`: what changed, and the run after it. */
export const controlResultSchema = runDetailSchema.extend({ action: z.enum(CONTROL_ACTIONS), changed: z.boolean() });
export type ControlResult = z.infer<typeof controlResultSchema>;

const reportEvent = z.object({
  eventId: z.string(),
  chunkId: z.string(),
  phase: z.string(),
  outcome: z.enum(["processed", "skipped", "error"]),
  entryIds: z.array(z.string()).optional(),
  reason: z.string().optional(),
  code: z.string().optional(),
  message: z.string().optional(),
});

/** `GET /api/admin/dataMigrations/{id}/report`. */
/** A slice of a report's per-event list, with the documents its answer read. */
const eventSlice = {
  /** Up to `limit` events of the per-event list, in chunk order then event id. */
  events: z.array(reportEvent),
  /** Where the list goes on: GET …/report/events?pageToken=; null when `events` is all of it. */
  nextPageToken: z.string().nullable(),
  docsRead: z.number(),
};

export const reportSchema = z.object({
  migration: z.object({
    id: z.string(),
    type: z.enum(RUN_TYPES),
    status: z.enum(RUN_STATUSES),
    dryRun: z.boolean(),
    startDate: z.string(),
    endDate: z.string(),
    maxEvents: z.number(),
    selectedEvents: z.number(),
    plannedEvents: z.number(),
    capReached: z.boolean(),
    finished: z.boolean(),
  }),
  selection: z.string(),
  totals: z.object(counters),
  counters: z.object(counters),
  reconciled: z.boolean(),
  verification: z
    .object({
      ok: z.boolean(),
      ledger: z.string(),
      processedEvents: z.number(),
      entriesFound: z.number(),
      walletsChecked: z.number(),
      computedAt: z.string(),
    })
    .loose(),
  /** What the run did (a dry run: would do) to wallets; null until it has finished. */
  money: moneyMovedSchema.nullable(),
  ...eventSlice,
});
export type Report = z.infer<typeof reportSchema>;

/** `GET /api/admin/dataMigrations/{id}/report/events?pageToken=`: the next slice of a report's per-event list. */
export const reportEventsSchema = z.object({ migrationId: z.string(), ...eventSlice });
export type ReportEvents = z.infer<typeof reportEventsSchema>;

/** `GET` and `POST /api/admin/killSwitch`. */
export const killSwitchSchema = z.object({
  enabled: z.boolean(),
  disabledBy: z.enum(["BACKFILL_ENABLED", "featureFlags/backfill"]).nullable(),
  param: z.boolean(),
  /** The runtime flag as stored: its value, who set it last, and how (the API, or the break-glass script). */
  flag: z
    .object({ enabled: z.unknown(), updatedBy: z.string().nullable(), updatedVia: z.string().nullable() })
    .nullable(),
});
export type KillSwitchView = z.infer<typeof killSwitchSchema>;

export const killSwitchBodySchema = z.strictObject(
  { enabled: z.boolean({ error: "enabled must be true or false" }) },
  { error: "the body must be a JSON object" },
);

/** `GET /api/admin/me`. */
export const meSchema = z.object({
  email: z.string(),
  sub: z.string(),
  permissions: z.array(z.enum(["read", "start", "control"])),
});
export type Me = z.infer<typeof meSchema>;
