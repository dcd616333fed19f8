// Checks the API's answers against the server's schemas, for clients that can afford zod (the CLI, the
// tests, the bench): `new BackfillClient({ ..., validate: checkAnswer })`.
import type { AnswerName } from "./client";
import {
  controlResultSchema,
  killSwitchSchema,
  meSchema,
  reportEventsSchema,
  reportSchema,
  runDetailSchema,
  runListSchema,
  startedRunSchema,
} from "./schemas";

const SCHEMAS = {
  startedRun: startedRunSchema,
  runList: runListSchema,
  runDetail: runDetailSchema,
  report: reportSchema,
  reportEvents: reportEventsSchema,
  controlResult: controlResultSchema,
  killSwitch: killSwitchSchema,
  me: meSchema,
} as const;

/** Null when `body` is a valid answer of its kind; else the problems, one per field. */
export function checkAnswer(answer: AnswerName, body: unknown): string | null {
  const result = SCHEMAS[answer].safeParse(body);
  return result.success
    ? null
    : result.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ");
}
