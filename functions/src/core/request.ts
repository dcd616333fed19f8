import { z } from "zod";
import { dayCount, trailingWindow } from "./dates";
import { RUN_TYPES, type RunType } from "./types";

/** One problem with one field of a request, as shown to the caller. */
export interface FieldProblem {
  field: string;
  message: string;
}

export const MAX_EVENTS_LIMIT = 100_000;
export const DEFAULT_MAX_EVENTS = 1000;

const day = (field: string) => z.iso.date({ error: `${field} must be a real calendar date written YYYY-MM-DD (UTC)` });

const rate = "maxErrorRate must be a number from 0 to 1 (0.05 means 5%; 1 never pauses)";

export const MAX_EVENTS_PER_SECOND_LIMIT = 10_000;
const perSecond = `maxEventsPerSecond must be an integer from 1 to ${MAX_EVENTS_PER_SECOND_LIMIT} (events the whole run examines per second, at most)`;

export const MAX_USER_IDS = 100;
const userIdsMessage = `userIds must be a list of 1 to ${MAX_USER_IDS} user ids (non-empty strings without "/")`;
const userId = z
  .string({ error: userIdsMessage })
  .min(1, { error: userIdsMessage })
  .max(700, { error: userIdsMessage })
  .refine((v) => !v.includes("/") && !/^__.*__$/.test(v), { error: userIdsMessage });

/** A run id as the API names one (`{type}_{epochMillis}`, or any document id of that shape). */
const RUN_ID_PATTERN = /^[A-Za-z0-9_-]{1,200}$/;
const runIdMessage = "planOf must be the id of a completed dry run, e.g. webhook_replay_1767225600000";

const startRunSchema = z.strictObject(
  {
    type: z.enum(RUN_TYPES, { error: `type must be one of ${RUN_TYPES.map((t) => `"${t}"`).join(", ")}` }),
    startDate: day("startDate").optional(),
    endDate: day("endDate").optional(),
    lookbackDays: z
      .number({ error: "lookbackDays must be a whole number of days of at least 1" })
      .int({ error: "lookbackDays must be a whole number of days of at least 1" })
      .min(1, { error: "lookbackDays must be a whole number of days of at least 1" })
      .optional(),
    dryRun: z.boolean({ error: "dryRun must be true or false" }).default(true),
    maxEvents: z
      .number({ error: `maxEvents must be an integer from 1 to ${MAX_EVENTS_LIMIT}` })
      .int({ error: `maxEvents must be an integer from 1 to ${MAX_EVENTS_LIMIT}` })
      .min(1, { error: `maxEvents must be an integer from 1 to ${MAX_EVENTS_LIMIT}` })
      .max(MAX_EVENTS_LIMIT, { error: `maxEvents must be an integer from 1 to ${MAX_EVENTS_LIMIT}` })
      .default(DEFAULT_MAX_EVENTS),
    maxErrorRate: z.number({ error: rate }).min(0, { error: rate }).max(1, { error: rate }).optional(),
    maxEventsPerSecond: z
      .number({ error: perSecond })
      .int({ error: perSecond })
      .min(1, { error: perSecond })
      .max(MAX_EVENTS_PER_SECOND_LIMIT, { error: perSecond })
      .optional(),
    userIds: z
      .array(userId, { error: userIdsMessage })
      .min(1, { error: userIdsMessage })
      .max(MAX_USER_IDS, { error: userIdsMessage })
      .optional(),
  },
  { error: (issue) => (issue.code === "unrecognized_keys" ? undefined : "the body must be a JSON object") },
);

/** Executing a finished dry run: `{"planOf": "<dry run id>"}` and nothing else. */
const executePlanSchema = z.strictObject(
  {
    planOf: z
      .string({ error: runIdMessage })
      .regex(RUN_ID_PATTERN, { error: runIdMessage })
      .refine((v) => !/^__.*__$/.test(v), { error: runIdMessage }),
  },
  { error: (issue) => (issue.code === "unrecognized_keys" ? undefined : "the body must be a JSON object") },
);

/** The body of `POST /api/jobs/backfill` as a client writes it (see http/schemas.ts). */
export type StartRunBody = z.input<typeof startRunSchema>;
export type ExecutePlanBody = z.input<typeof executePlanSchema>;

/** A validated request to start a run, with its date range resolved. */
export interface StartRequest {
  type: RunType;
  startDate: string;
  endDate: string;
  /** Set when the range was given as a trailing window ending today (UTC). */
  lookbackDays: number | null;
  dryRun: boolean;
  maxEvents: number;
  maxErrorRate: number;
  /** A pace the run keeps below (events examined per second, the whole run), or null for full speed. */
  maxEventsPerSecond: number | null;
  /** A canary: only these users' events (sorted, unique), or null for everyone's. */
  userIds: string[] | null;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; problems: FieldProblem[] };

/** Turns zod issues into one message per field, in the order the fields were declared. */
export function problemsFromZod(error: z.ZodError, knownFields: readonly string[] = []): FieldProblem[] {
  const problems: FieldProblem[] = [];
  for (const issue of error.issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        const known = knownFields.length > 0 ? ` (known fields: ${knownFields.join(", ")})` : "";
        problems.push({ field: key, message: `${key} is not a known field${known}` });
      }
      continue;
    }
    const field = issue.path.length > 0 ? issue.path.map(String).join(".") : "body";
    if (!problems.some((p) => p.field === field)) problems.push({ field, message: issue.message });
  }
  return problems;
}

/**
 * Validates the body of `POST /api/jobs/backfill`. The range is either `startDate`/`endDate` or
 * `lookbackDays` (a trailing window ending on `now`'s UTC day). `maxRangeDays` bounds how many day chunks
 * one run may have, so a typo in a year cannot fan out thousands of tasks.
 */
export function parseStartRun(
  body: unknown,
  options: { maxRangeDays: number; defaultMaxErrorRate: number; now: Date },
): Parsed<StartRequest> {
  const result = startRunSchema.safeParse(body);
  if (!result.success) {
    const problems = problemsFromZod(result.error, Object.keys(startRunSchema.shape));
    // Report a missing range together with the other problems, so one correction fixes everything.
    if (body !== null && typeof body === "object" && !Array.isArray(body) && !("lookbackDays" in body)) {
      for (const field of ["startDate", "endDate"] as const) {
        if (!(field in body) && !problems.some((p) => p.field === field)) {
          problems.push({ field, message: `${field} is required (YYYY-MM-DD), unless you give lookbackDays` });
        }
      }
    }
    return { ok: false, problems };
  }
  const input = result.data;
  let startDate: string;
  let endDate: string;
  if (input.lookbackDays !== undefined) {
    if (input.startDate !== undefined || input.endDate !== undefined) {
      return {
        ok: false,
        problems: [{ field: "lookbackDays", message: "give either startDate and endDate, or lookbackDays, not both" }],
      };
    }
    if (input.lookbackDays > options.maxRangeDays) {
      return {
        ok: false,
        problems: [{ field: "lookbackDays", message: `lookbackDays may be at most ${options.maxRangeDays}` }],
      };
    }
    ({ startDate, endDate } = trailingWindow(options.now, input.lookbackDays));
  } else {
    const missing = (["startDate", "endDate"] as const).filter((f) => input[f] === undefined);
    if (missing.length > 0) {
      return {
        ok: false,
        problems: missing.map((field) => ({
          field,
          message: `${field} is required (YYYY-MM-DD), unless you give lookbackDays`,
        })),
      };
    }
    startDate = input.startDate as string;
    endDate = input.endDate as string;
  }
  if (endDate < startDate) {
    return { ok: false, problems: [{ field: "endDate", message: "endDate must not be before startDate" }] };
  }
  const days = dayCount(startDate, endDate);
  if (days > options.maxRangeDays) {
    return {
      ok: false,
      problems: [
        {
          field: "endDate",
          message: `the range covers ${days} days; one run may cover at most ${options.maxRangeDays}; split it into several runs`,
        },
      ],
    };
  }
  return {
    ok: true,
    value: {
      type: input.type,
      startDate,
      endDate,
      lookbackDays: input.lookbackDays ?? null,
      dryRun: input.dryRun,
      maxEvents: input.maxEvents,
      maxErrorRate: input.maxErrorRate ?? options.defaultMaxErrorRate,
      maxEventsPerSecond: input.maxEventsPerSecond ?? null,
      userIds: input.userIds ? [...new Set(input.userIds)].sort() : null,
    },
  };
}

/**
 * Tells a plan execution (`{"planOf": id}`) from a new run's parameters. A body that names `planOf` may name
 * nothing else: the real run takes every parameter from its dry run.
 */
export function parseExecutePlan(body: unknown): Parsed<{ planOf: string }> | null {
  if (body === null || typeof body !== "object" || Array.isArray(body) || !("planOf" in body)) return null;
  const result = executePlanSchema.safeParse(body);
  if (result.success) return { ok: true, value: result.data };
  const problems = problemsFromZod(result.error, ["planOf"]).map((p) =>
    p.field === "planOf" || p.field === "body"
      ? p
      : {
          field: p.field,
          message: `${p.field} cannot be combined with planOf: the real run takes every parameter from its dry run`,
        },
  );
  return { ok: false, problems };
}
