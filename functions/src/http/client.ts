// The one client of the backfill API. The CLI (scripts/cli.ts), the console (bundled into
// hosting/admin/admin.js by scripts/build-console.ts), the tests and the bench all call the API through it;
// its request and response types are the server's own schemas (http/schemas.ts). Runs in Node and in the
// browser: it needs only fetch.
import type { ControlAction } from "../core/control";
import type {
  ControlResult,
  KillSwitchView,
  Me,
  Report,
  ReportEvents,
  RunDetail,
  RunList,
  StartedRun,
  StartRunBody,
} from "./schemas";

export type * from "./schemas";

/** An answer that was not a success: the API's error code and message, or why there was no answer. */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    readonly retryAfter?: string | null,
  ) {
    super(message);
  }

  /** Per-field problems of a 400 invalid_request, as the server named them. */
  get fields(): Array<{ field: string; message: string }> {
    const fields = (this.details as { fields?: unknown } | undefined)?.fields;
    return Array.isArray(fields) ? (fields as Array<{ field: string; message: string }>) : [];
  }
}

export interface ClientOptions {
  /** The API's base URL (the Hosting site); "" in the browser for the page's own origin. */
  baseUrl: string;
  /** The Authorization header to send ("Bearer …"), or null for none; asked before every request. */
  authorization: () => Promise<string | null> | string | null;
  /**
   * Checks an answer against its schema (http/validate.ts's `checkAnswer`); a problem becomes
   * `ApiError("invalid_response")`. Left out in the browser, which then needs no zod.
   */
  validate?: (answer: AnswerName, body: unknown) => string | null;
  fetch?: typeof fetch;
}

export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  body: unknown;
}

/** Which answer a call expects; http/validate.ts maps each to its schema. */
export type AnswerName =
  "startedRun" | "runList" | "runDetail" | "report" | "reportEvents" | "controlResult" | "killSwitch" | "me";

export class BackfillClient {
  constructor(private readonly options: ClientOptions) {}

  /** Any request, answered as it came (status, headers, body): what tests of malformed input need. */
  async raw(
    method: string,
    path: string,
    init: { body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
  ): Promise<RawResponse> {
    const headers: Record<string, string> = {};
    const auth = await this.options.authorization();
    if (auth) headers.authorization = auth;
    let payload = init.rawBody;
    if (init.body !== undefined) {
      payload = JSON.stringify(init.body);
      headers["content-type"] = "application/json";
    }
    Object.assign(headers, init.headers);
    const doFetch = this.options.fetch ?? fetch;
    let res: Response;
    try {
      res = await doFetch(`${this.options.baseUrl.replace(/\/+$/, "")}${path}`, { method, headers, body: payload });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
      throw new ApiError(0, "unreachable", `Cannot reach ${this.options.baseUrl || "the API"} (${cause}).`);
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: res.status, headers: res.headers, text, body };
  }

  private async call<T>(
    answer: AnswerName,
    method: string,
    path: string,
    init: { body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<T> {
    const res = await this.raw(method, path, init);
    if (res.status < 200 || res.status >= 300) {
      const error = (res.body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)
        ?.error;
      if (error && typeof error.code === "string" && typeof error.message === "string") {
        throw new ApiError(res.status, error.code, error.message, error.details, res.headers.get("retry-after"));
      }
      // Not our envelope (a proxy, or the runtime's own parser): the first line of what came back.
      throw new ApiError(res.status, `http_${res.status}`, res.text.trim().split("\n")[0] || `HTTP ${res.status}`);
    }
    const problem = this.options.validate?.(answer, res.body) ?? null;
    if (problem !== null)
      throw new ApiError(
        res.status,
        "invalid_response",
        `${method} ${path} answered in a shape this client does not know: ${problem}`,
      );
    // The body as sent (fields this client does not know yet are kept).
    return res.body as T;
  }

  /** Starts a run (a dry run unless `dryRun: false`). */
  start(body: StartRunBody, options: { idempotencyKey?: string } = {}): Promise<StartedRun> {
    const headers = options.idempotencyKey ? { "idempotency-key": options.idempotencyKey } : undefined;
    return this.call<StartedRun>("startedRun", "POST", "/api/jobs/backfill", { body, headers });
  }

  /** Starts the real run of a completed dry run's plan. */
  execute(dryRunId: string, options: { idempotencyKey?: string } = {}): Promise<StartedRun> {
    const headers = options.idempotencyKey ? { "idempotency-key": options.idempotencyKey } : undefined;
    return this.call<StartedRun>("startedRun", "POST", "/api/jobs/backfill", { body: { planOf: dryRunId }, headers });
  }

  list(limit = 20): Promise<RunList> {
    return this.call<RunList>("runList", "GET", `/api/admin/dataMigrations?limit=${limit}`);
  }

  get(id: string): Promise<RunDetail> {
    return this.call<RunDetail>("runDetail", "GET", `/api/admin/dataMigrations/${encodeURIComponent(id)}`);
  }

  /** The report with the first `limit` events of its per-event list. */
  report(id: string, limit?: number): Promise<Report> {
    const query = limit === undefined ? "" : `?limit=${limit}`;
    return this.call<Report>("report", "GET", `/api/admin/dataMigrations/${encodeURIComponent(id)}/report${query}`);
  }

  /** The next slice of a report's per-event list, from the `nextPageToken` of the report or of the slice before. */
  reportEvents(id: string, pageToken: string, limit?: number): Promise<ReportEvents> {
    const query = new URLSearchParams({ pageToken, ...(limit === undefined ? {} : { limit: String(limit) }) });
    return this.call<ReportEvents>(
      "reportEvents",
      "GET",
      `/api/admin/dataMigrations/${encodeURIComponent(id)}/report/events?${query.toString()}`,
    );
  }

  /** Every event of a report, slice after slice, as they come. */
  async *allReportEvents(report: Report, limit?: number): AsyncGenerator<Report["events"]> {
    yield report.events;
    let token = report.nextPageToken;
    while (token !== null) {
      const slice = await this.reportEvents(report.migration.id, token, limit);
      yield slice.events;
      token = slice.nextPageToken;
    }
  }

  control(id: string, action: ControlAction): Promise<ControlResult> {
    return this.call<ControlResult>(
      "controlResult",
      "POST",
      `/api/admin/dataMigrations/${encodeURIComponent(id)}/${action}`,
    );
  }

  killSwitch(): Promise<KillSwitchView> {
    return this.call<KillSwitchView>("killSwitch", "GET", "/api/admin/killSwitch");
  }

  setKillSwitch(enabled: boolean): Promise<KillSwitchView> {
    return this.call<KillSwitchView>("killSwitch", "POST", "/api/admin/killSwitch", { body: { enabled } });
  }

  me(): Promise<Me> {
    return this.call<Me>("me", "GET", "/api/admin/me");
  }
}

/** Seconds as the CLI and the console show them: "45 s", "3 min 20 s", "1 h 05 min". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}
