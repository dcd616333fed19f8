import { z } from "zod";
import { dayCount } from "./dates";
import { RUN_TYPES, type RunType } from "./types";

/** One problem with one field of a request, as shown to the caller. */
export interface FieldProblem {
  field: string;
  message: string;
}

export const MAX_EVENTS_LIMIT = 100_000;
export const DEFAULT_MAX_EVENTS = 1000;

const day = (field: string) =>
  z.iso.date({ error: `${field} must be a real calendar date written YYYY-MM-DD (UTC)` });

const startJobSchema = z.strictObject(
  {
    type: z.enum(RUN_TYPES, { error: `type must be one of ${RUN_TYPES.map((t) => `"${t}"`).join(", ")}` }),
    startDate: day("startDate"),
    endDate: day("endDate"),
    dryRun: z.boolean({ error: "dryRun must be true or false" }).default(true),
    maxEvents: z
      .number({ error: `maxEvents must be an integer from 1 to ${MAX_EVENTS_LIMIT}` })
      .int({ error: `maxEvents must be an integer from 1 to ${MAX_EVENTS_LIMIT}` })
      .min(1, { error: `maxEvents must be an integer from 1 to ${MAX_EVENTS_LIMIT}` })
      .max(MAX_EVENTS_LIMIT, { error: `maxEvents must be an integer from 1 to ${MAX_EVENTS_LIMIT}` })
      .default(DEFAULT_MAX_EVENTS),
  },
  { error: (issue) => (issue.code === "unrecognized_keys" ? undefined : "the body must be a JSON object") },
);

/** A validated request to start a run. */
export interface StartJobRequest {
  type: RunType;
  startDate: string;
  endDate: string;
  dryRun: boolean;
  maxEvents: number;
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
 * Validates the body of `POST /api/jobs/backfill`. `maxRangeDays` bounds how many day chunks one run may
 * have, so a typo in a year cannot fan out thousands of tasks.
 */
export function parseStartJob(body: unknown, maxRangeDays: number): Parsed<StartJobRequest> {
  const result = startJobSchema.safeParse(body);
  if (!result.success) {
    return { ok: false, problems: problemsFromZod(result.error, Object.keys(startJobSchema.shape)) };
  }
  const value = result.data;
  if (value.endDate < value.startDate) {
    return { ok: false, problems: [{ field: "endDate", message: "endDate must not be before startDate" }] };
  }
  const days = dayCount(value.startDate, value.endDate);
  if (days > maxRangeDays) {
    return {
      ok: false,
      problems: [
        {
          field: "endDate",
          message: `the range covers ${days} days; one run may cover at most ${maxRangeDays}; split it into several runs`,
        },
      ],
    };
  }
  return { ok: true, value };
}
