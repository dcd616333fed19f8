// The HTTP API behind Hosting's `/api/**` rewrite. Routing, authentication and the error envelope live
// here; each route calls a handler module that does the work.
import type { Request } from "firebase-functions/v2/https";
import type { Response } from "express";
import { requirePermission, type Caller } from "../auth/oidc";
import { honoursSchedulerHeaders, permissionsOf, schedulerRefusal, type Permission } from "../core/access";
import { problemsFromZod } from "../core/request";
import type { Deps } from "../deps";
import { AppError, invalidRequest } from "../errors";
import { startRun } from "../start/start";
import { CONTROL_ACTIONS, type ControlAction } from "../core/control";
import { controlRun } from "../runs/control";
import { buildReport, MAX_REPORT_EVENTS_LIMIT, REPORT_EVENTS_LIMIT, reportEvents } from "../runs/report";
import { getRun, killSwitchView, listRuns, MAX_LIST_LIMIT, setKillSwitch } from "../runs/views";
import { z } from "zod";
import { killSwitchBodySchema, type Me } from "./schemas";

/** Largest request body accepted; a start request is a few hundred bytes. */
export const MAX_BODY_BYTES = 64 * 1024;

interface Route {
  method: "GET" | "POST";
  pattern: RegExp;
  /** What the caller must be allowed (core/access.ts). */
  needs: Permission;
  handle: (
    deps: Deps,
    req: Request,
    caller: Caller,
    params: string[],
  ) => Promise<{ status: number; body: unknown; headers?: Record<string, string> }>;
}

const listQuery = z.object({
  limit: z.coerce
    .number({ error: `limit must be an integer from 1 to ${MAX_LIST_LIMIT}` })
    .int({ error: `limit must be an integer from 1 to ${MAX_LIST_LIMIT}` })
    .min(1, { error: `limit must be an integer from 1 to ${MAX_LIST_LIMIT}` })
    .max(MAX_LIST_LIMIT, { error: `limit must be an integer from 1 to ${MAX_LIST_LIMIT}` })
    .default(20),
});

const eventsLimit = z.coerce
  .number({ error: `limit must be an integer from 1 to ${MAX_REPORT_EVENTS_LIMIT}` })
  .int({ error: `limit must be an integer from 1 to ${MAX_REPORT_EVENTS_LIMIT}` })
  .min(1, { error: `limit must be an integer from 1 to ${MAX_REPORT_EVENTS_LIMIT}` })
  .max(MAX_REPORT_EVENTS_LIMIT, { error: `limit must be an integer from 1 to ${MAX_REPORT_EVENTS_LIMIT}` })
  .default(REPORT_EVENTS_LIMIT);
const reportQuery = z.strictObject({ limit: eventsLimit }, { error: "the report takes only limit" });
const reportEventsQuery = z.strictObject(
  {
    limit: eventsLimit,
    pageToken: z
      .string({ error: "pageToken is required: the nextPageToken of the report or of the previous slice" })
      .min(1, { error: "pageToken is required: the nextPageToken of the report or of the previous slice" })
      .max(2000, { error: "pageToken is not one this API gave" }),
  },
  { error: "the event list takes limit and pageToken" },
);

const RUN_ID = "([A-Za-z0-9_-]{1,200})";
/** Document ids Firestore reserves: no run has one, and asking Firestore for one is an error, not a miss. */
const RESERVED_ID = /^__.*__$/;

const ROUTES: Route[] = [
  {
    method: "POST",
    pattern: /^\/api\/jobs\/backfill$/,
    needs: "start",
    handle: async (deps, req, caller) => {
      const body = jsonBody(req);
      const refused = schedulerRefusal(caller.email, deps.config.roles, body, deps.config.replay);
      if (refused) throw new AppError(403, "forbidden", refused);
      const { run, replayed } = await startRun(deps, body, { caller, ...startOptions(req, caller, deps) });
      const headers: Record<string, string> = replayed ? { "Idempotency-Replayed": "true" } : {};
      return { status: 202, body: run, headers };
    },
  },
  {
    method: "GET",
    pattern: /^\/api\/admin\/dataMigrations$/,
    needs: "read",
    handle: async (deps, req) => {
      const query = listQuery.safeParse(req.query);
      if (!query.success) throw invalidRequest(problemsFromZod(query.error));
      return { status: 200, body: await listRuns(deps, query.data.limit) };
    },
  },
  {
    method: "GET",
    pattern: new RegExp(`^/api/admin/dataMigrations/${RUN_ID}$`),
    needs: "read",
    handle: async (deps, _req, _caller, [id]) => ({ status: 200, body: await getRun(deps, id as string) }),
  },
  {
    method: "GET",
    pattern: new RegExp(`^/api/admin/dataMigrations/${RUN_ID}/report$`),
    needs: "read",
    handle: async (deps, req, _caller, [id]) => {
      const query = reportQuery.safeParse(req.query);
      if (!query.success) throw invalidRequest(problemsFromZod(query.error));
      return { status: 200, body: await buildReport(deps, id as string, { limit: query.data.limit }) };
    },
  },
  {
    method: "GET",
    pattern: new RegExp(`^/api/admin/dataMigrations/${RUN_ID}/report/events$`),
    needs: "read",
    handle: async (deps, req, _caller, [id]) => {
      const query = reportEventsQuery.safeParse(req.query);
      if (!query.success) throw invalidRequest(problemsFromZod(query.error));
      return { status: 200, body: await reportEvents(deps, id as string, query.data.pageToken, query.data.limit) };
    },
  },
  {
    method: "POST",
    pattern: new RegExp(`^/api/admin/dataMigrations/${RUN_ID}/(${CONTROL_ACTIONS.join("|")})$`),
    needs: "control",
    handle: async (deps, _req, caller, [id, action]) => ({
      status: 200,
      body: await controlRun(deps, id as string, action as ControlAction, caller),
    }),
  },
  {
    method: "GET",
    pattern: /^\/api\/admin\/me$/,
    needs: "read",
    // What the console may offer this caller (a viewer's buttons are disabled, with the reason).
    handle: (deps, _req, caller) => {
      const me: Me = {
        email: caller.email,
        sub: caller.sub,
        permissions: [...permissionsOf(caller.email, deps.config.roles)].sort(),
      };
      return Promise.resolve({ status: 200, body: me });
    },
  },
  {
    method: "GET",
    pattern: /^\/api\/admin\/killSwitch$/,
    needs: "read",
    handle: async (deps) => ({ status: 200, body: await killSwitchView(deps) }),
  },
  {
    method: "POST",
    pattern: /^\/api\/admin\/killSwitch$/,
    needs: "control",
    handle: async (deps, req, caller) => {
      const body = killSwitchBodySchema.safeParse(jsonBody(req));
      if (!body.success) throw invalidRequest(problemsFromZod(body.error, ["enabled"]));
      return { status: 200, body: await setKillSwitch(deps, body.data.enabled, caller) };
    },
  },
];

/** Any path that looks like a run but cannot be one still deserves a 404 rather than a 405. */
const KNOWN_PREFIXES = [/^\/api\/jobs\/backfill$/, /^\/api\/admin\/dataMigrations(\/[^/]+(\/[a-z]+)?)?$/];

/**
 * Idempotency for a start request: the caller's Idempotency-Key, or, for a Cloud Scheduler HTTP job, one
 * derived from the job and the day it was scheduled for, so that the scheduler's retries of one firing
 * return the run that firing started. A lookback window then ends on the scheduled day, not the retry's.
 */
function startOptions(req: Request, caller: Caller, deps: Deps): { idempotencyKey: string | null; asOf?: Date } {
  const key = req.get("idempotency-key");
  if (key !== undefined) return { idempotencyKey: key };
  // Only a scheduler's headers say which firing this is; anyone else's are ignored.
  if (!honoursSchedulerHeaders(caller.email, deps.config.roles)) return { idempotencyKey: null };
  const job = req.get("x-cloudscheduler-jobname");
  const scheduled = Date.parse(req.get("x-cloudscheduler-scheduletime") ?? "");
  if (!job || Number.isNaN(scheduled)) return { idempotencyKey: null };
  const asOf = new Date(scheduled);
  const name = job.split("/").pop()?.slice(0, 100) ?? "job";
  return { idempotencyKey: `scheduler-http:${name}:${asOf.toISOString().slice(0, 10)}`, asOf };
}

/** The body of a JSON request, after the checks the runtime's parser leaves to us. */
function refuseOversized(req: Request): void {
  const declared = Number(req.get("content-length") ?? 0);
  const size = Math.max(Number.isFinite(declared) ? declared : 0, req.rawBody?.length ?? 0);
  if (size > MAX_BODY_BYTES)
    throw new AppError(413, "payload_too_large", `The body is ${size} bytes; the limit is ${MAX_BODY_BYTES}.`);
}

function jsonBody(req: Request): unknown {
  const type = (req.get("content-type") ?? "").split(";")[0]?.trim().toLowerCase();
  if (type !== "application/json") {
    throw new AppError(
      400,
      "invalid_content_type",
      "Send the body as JSON with the header Content-Type: application/json.",
      {
        contentType: type || null,
      },
    );
  }
  // Its size was checked before the caller's token (refuseOversized).
  return req.body;
}

export async function handleApi(deps: Deps, req: Request, res: Response): Promise<void> {
  const path = req.path.length > 1 ? req.path.replace(/\/+$/, "") : req.path;
  let caller: Caller | null = null;
  try {
    const matching = ROUTES.map((route) => ({ route, match: route.pattern.exec(path) })).filter((m) => m.match);
    const hit = matching.find((m) => m.route.method === req.method);
    if (!hit?.match) {
      if (matching.length > 0) {
        const allow = [...new Set(matching.map((m) => m.route.method))].join(", ");
        throw new AppError(
          405,
          "method_not_allowed",
          `${req.method} is not supported on ${path}; use ${allow}.`,
          undefined,
          { Allow: allow },
        );
      }
      const known = KNOWN_PREFIXES.some((p) => p.test(path));
      throw new AppError(
        404,
        "not_found",
        known
          ? `No run or action at ${path}.`
          : `No endpoint at ${path}. The API serves POST /api/jobs/backfill, GET /api/admin/dataMigrations[/{id}[/report[/events]]], POST /api/admin/dataMigrations/{id}/{pause|resume|cancel|retry}, GET and POST /api/admin/killSwitch and GET /api/admin/me.`,
      );
    }
    if (hit.match.slice(1).some((p) => RESERVED_ID.test(p ?? "")))
      throw new AppError(404, "not_found", `No run or action at ${path}.`);
    // Oversized bodies are refused before the token is checked (the runtime has parsed them already: it
    // takes up to 32 MB before any code of ours runs; docs/deploy.md says what can stand in front).
    refuseOversized(req);
    caller = await deps.verifier.verify(req.get("authorization"));
    requirePermission(caller, hit.route.needs, deps.config.roles);
    const { status, body, headers } = await hit.route.handle(deps, req, caller, hit.match.slice(1));
    res
      .status(status)
      .set({ "Cache-Control": "no-store", ...headers })
      .json(body);
  } catch (error) {
    const appError =
      error instanceof AppError
        ? error
        : new AppError(
            500,
            "internal",
            "Unexpected server error. Check the function logs (event internal_error) and try again.",
          );
    if (!(error instanceof AppError)) deps.log.internalError(`${req.method} ${path}`, error);
    deps.log.requestRejected({
      method: req.method,
      path,
      status: appError.status,
      code: appError.code,
      caller: caller?.email,
    });
    res
      .status(appError.status)
      .set({ "Cache-Control": "no-store", ...appError.headers })
      .json(appError.toJSON());
  }
}
