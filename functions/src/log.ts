// Named log events. Every line is one JSON object with fixed snake_case fields and `component: "backfill"`,
// written through @google-cloud/logging's stdout transport so Cloud Logging files it as jsonPayload:
//   gcloud logging read 'jsonPayload.component="backfill"'
import { memoryFields } from "./memory";
import { Logging } from "@google-cloud/logging";
import type { Counters, Phase, RunType } from "./core/types";

export type Severity = "DEBUG" | "INFO" | "NOTICE" | "WARNING" | "ERROR";
export type LogWriter = (severity: Severity, payload: Record<string, unknown>) => void;

/** The fields that identify a run on every run and chunk line. */
export interface RunFields {
  id: string;
  type: RunType;
  startDate: string;
  endDate: string;
  dryRun: boolean;
}

export function stdoutWriter(projectId: string): LogWriter {
  const log = new Logging({ projectId }).logSync("backfill", undefined, { useMessageField: false });
  return (severity, payload) => log.write(log.entry({ severity }, payload));
}

const runLogFields = (run: RunFields) => ({
  component: "backfill",
  migration_id: run.id,
  type: run.type,
  start_date: run.startDate,
  end_date: run.endDate,
  dry_run: run.dryRun,
});

const counterFields = (c: Counters) => ({
  event_count: c.total,
  total: c.total,
  processed: c.processed,
  skipped: c.skipped,
  errors: c.errors,
});

/** The product's log events; one method per thing worth finding later. */
export class BackfillLog {
  constructor(private readonly write: LogWriter) {}

  requestRejected(fields: { method: string; path: string; status: number; code: string; caller?: string | null }) {
    this.write(fields.status >= 500 ? "ERROR" : "WARNING", {
      component: "backfill",
      event: "request_rejected",
      method: fields.method,
      path: fields.path,
      status: fields.status,
      error_code: fields.code,
      caller: fields.caller ?? null,
    });
  }

  runCreated(
    run: RunFields,
    fields: {
      chunks: number;
      planned: number;
      selected: number;
      maxEvents: number;
      requestedBy: string;
      requestedBySub?: string;
      planQueries?: number;
      estimatedSeconds?: number;
      userIds?: number;
      planOf?: string | null;
    },
  ) {
    this.write("NOTICE", {
      ...runLogFields(run),
      event: "run_created",
      chunks: fields.chunks,
      planned_events: fields.planned,
      selected_events: fields.selected,
      max_events: fields.maxEvents,
      requested_by: fields.requestedBy,
      requested_by_sub: fields.requestedBySub ?? null,
      plan_queries: fields.planQueries ?? null,
      estimated_seconds: fields.estimatedSeconds ?? null,
      canary_users: fields.userIds ?? 0,
      plan_of: fields.planOf ?? null,
    });
  }

  chunkStarted(run: RunFields, chunk: { id: string; phase: Phase; attempt: number }) {
    this.write("INFO", {
      ...runLogFields(run),
      event: "chunk_started",
      chunk_id: chunk.id,
      phase: chunk.phase,
      attempt: chunk.attempt,
    });
  }

  pageCommitted(
    run: RunFields,
    chunk: { id: string; phase: Phase; page: number; step: string },
    page: Counters,
    durationMs: number,
  ) {
    this.write("DEBUG", {
      ...runLogFields(run),
      ...counterFields(page),
      event: "page_committed",
      chunk_id: chunk.id,
      phase: chunk.phase,
      step: chunk.step,
      page: chunk.page,
      error_rate: page.total > 0 ? page.errors / page.total : 0,
      duration_ms: durationMs,
      ...memoryFields(),
    });
  }

  eventFailed(run: RunFields, chunkId: string, failure: { eventId: string; code: string; message: string }) {
    this.write("ERROR", {
      ...runLogFields(run),
      event: "event_failed",
      chunk_id: chunkId,
      event_id: failure.eventId,
      error_code: failure.code,
      error: failure.message,
    });
  }

  chunkStopped(
    run: RunFields,
    chunk: { id: string; phase: Phase; status: string; reason: string },
    counters: Counters,
    durationMs: number,
  ) {
    const events: Record<string, string> = {
      failed: "chunk_failed",
      paused: "chunk_paused",
      cancelled: "chunk_cancelled",
      done: "chunk_finished",
    };
    this.write(chunk.status === "failed" ? "ERROR" : "INFO", {
      ...runLogFields(run),
      ...counterFields(counters),
      event: events[chunk.status] ?? "chunk_step_finished",
      chunk_id: chunk.id,
      phase: chunk.phase,
      status: chunk.status,
      reason: chunk.reason,
      duration_ms: durationMs,
    });
  }

  chunkRetrying(run: RunFields, chunk: { id: string; attempt: number }, error: unknown) {
    this.write("WARNING", {
      ...runLogFields(run),
      event: "chunk_retrying",
      chunk_id: chunk.id,
      attempt: chunk.attempt,
      error: describe(error),
    });
  }

  phaseStarted(run: RunFields, phase: Phase, chunks: number) {
    this.write("INFO", { ...runLogFields(run), event: "phase_started", phase, chunks });
  }

  runPaused(run: RunFields, reason: string, details: Record<string, unknown> = {}) {
    this.write("WARNING", { ...runLogFields(run), event: "run_paused", reason, ...details });
  }

  runRepaired(run: RunFields, repair: { kind: string; chunkId?: string; why?: string; reason?: string; to?: string }) {
    this.write("WARNING", {
      ...runLogFields(run),
      event: "run_repaired",
      repair: repair.kind,
      chunk_id: repair.chunkId ?? null,
      reason: repair.why ?? repair.reason ?? null,
      ...(repair.to ? { status: repair.to } : {}),
    });
  }

  runControlled(
    run: RunFields,
    action: string,
    outcome: "changed" | "noop",
    by: { email: string; sub: string },
    status: string,
  ) {
    this.write("NOTICE", {
      ...runLogFields(run),
      event: "run_control",
      action,
      outcome,
      requested_by: by.email,
      requested_by_sub: by.sub,
      status,
    });
  }

  killSwitchSet(enabled: boolean, by: { email: string; sub: string }) {
    this.write("WARNING", {
      component: "backfill",
      event: "kill_switch_set",
      enabled,
      requested_by: by.email,
      requested_by_sub: by.sub,
    });
  }

  runFinished(
    run: RunFields,
    status: string,
    counters: Counters,
    fields: { durationMs: number; chunksFailed: number; capReached: boolean },
  ) {
    this.write(status === "completed" ? "NOTICE" : "ERROR", {
      ...runLogFields(run),
      ...counterFields(counters),
      event: status === "completed" ? "run_completed" : "run_failed",
      status,
      error_rate: counters.total > 0 ? counters.errors / counters.total : 0,
      chunks_failed: fields.chunksFailed,
      cap_reached: fields.capReached,
      duration_ms: fields.durationMs,
    });
  }

  scheduledReplay(fields: { runId: string; startDate: string; endDate: string; dryRun: boolean; existing: boolean }) {
    this.write("NOTICE", {
      component: "backfill",
      event: fields.existing ? "scheduled_replay_existing" : "scheduled_replay_started",
      migration_id: fields.runId,
      type: "webhook_replay",
      start_date: fields.startDate,
      end_date: fields.endDate,
      dry_run: fields.dryRun,
    });
  }

  scheduledReplaySkipped(fields: { startDate: string; endDate: string; reason: string }) {
    this.write("WARNING", {
      component: "backfill",
      event: "scheduled_replay_skipped",
      type: "webhook_replay",
      start_date: fields.startDate,
      end_date: fields.endDate,
      reason: fields.reason,
    });
  }

  webhookReceived(fields: {
    eventId: string;
    eventType: string;
    stored: "created" | "duplicate";
    outcome: string | null;
    code: string | null;
  }) {
    this.write(fields.code ? "ERROR" : "INFO", {
      component: "backfill",
      event: "webhook_received",
      event_id: fields.eventId,
      event_type: fields.eventType,
      stored: fields.stored,
      outcome: fields.outcome,
      error_code: fields.code,
    });
  }

  webhookRefused(fields: { status: number; code: string; bytes: number }) {
    this.write("WARNING", {
      component: "backfill",
      event: "webhook_refused",
      status: fields.status,
      error_code: fields.code,
      bytes: fields.bytes,
    });
  }

  internalError(where: string, error: unknown, run?: RunFields) {
    this.write("ERROR", {
      ...(run ? runLogFields(run) : { component: "backfill" }),
      event: "internal_error",
      where,
      error: describe(error),
    });
  }
}

export function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
