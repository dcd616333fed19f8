// `npm run backfill -- <command>` (also the `backfill` bin): drive backfills from a terminal.
//
// Against the local stack it signs a local token; against a deployed URL it asks google-auth-library for
// an ID token whose audience is that URL (Application Default Credentials, e.g. a service account or
// `gcloud auth application-default login` with impersonation). Exit codes: 0 success, 1 the API or the
// network said no, 2 usage error, 3 the watched run failed or was cancelled (or a report did not verify).
import { describeLargest, describeMoney, type MoneyMoved } from "../functions/src/core/moves";
import { open } from "node:fs/promises";
import { parseArgs } from "node:util";
import cliProgress from "cli-progress";
import { GoogleAuth } from "google-auth-library";
import {
  ApiError,
  BackfillClient,
  formatDuration,
  type RunDetail,
  type RunView,
  type StartedRun,
  type StartRunBody,
} from "../functions/src/http/client";
import type { KillSwitchView, Report } from "../functions/src/http/schemas";
import { checkAnswer } from "../functions/src/http/validate";
import { mintLocalToken } from "./localToken";

const USAGE = `Usage: npm run backfill -- <command> [options]

Commands
  start --type <webhook_replay|reversal_backfill> (--from YYYY-MM-DD --to YYYY-MM-DD | --lookback-days N)
        [--dry-run | --execute] [--max-events N] [--max-error-rate R] [--max-events-per-second N] [--user ID]... [--idempotency-key KEY] [--watch]
  execute <dry-run-id> [--idempotency-key KEY] [--watch]
                 start the real run of a completed dry run, with exactly its parameters
  status <id> [--watch]
  list [--limit N]
  pause <id> | resume <id> | cancel <id> | retry <id>
  report <id> [--out file.json]  the run's report; --out writes it with every event, fetched slice by slice
  killswitch on|off|status    the runtime kill switch, through the API (operators; recorded with who)

Options
  --api URL      the API's base URL (default: $BACKFILL_API_URL or http://127.0.0.1:5000)
  --token TOKEN  a bearer token to use as is (default: $BACKFILL_TOKEN, else a local or Google ID token)
  --email EMAIL  identity of the local token (local stack only)
  --json         print the API's JSON answer instead of a summary

A start is a dry run unless you pass --execute. --max-events-per-second keeps the whole run below that pace
(to spare production's Firestore, or to give you time to stop it). --user (repeatable, up to 100) makes a canary run over only
the events that move those wallets alone (wallet ids by WALLET_FIELD: PayNow customer ids by default). Where a command takes <id>, "last" means the newest run.`;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

export interface Options {
  api: string;
  token?: string;
  email?: string;
  json: boolean;
}

export interface Output {
  out: (line: string) => void;
  err: (line: string) => void;
  isTTY: boolean;
}

const isLocal = (api: string) => /^https?:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?(\/|$)/.test(api);

export async function authorization(opts: Options): Promise<string> {
  const token = opts.token ?? process.env.BACKFILL_TOKEN;
  if (token) return `Bearer ${token}`;
  if (isLocal(opts.api)) return `Bearer ${await mintLocalToken({ email: opts.email })}`;
  try {
    const client = await new GoogleAuth().getIdTokenClient(opts.api);
    const headers = await client.getRequestHeaders();
    const value = headers.get("authorization");
    if (!value) throw new Error("no Authorization header was produced");
    return value;
  } catch (error) {
    throw new CliError(
      `Could not get an ID token for ${opts.api} (${(error as Error).message}). Use Application Default Credentials of an allowlisted service account, or pass --token.`,
      1,
    );
  }
}

/** The API client, authorised as the options say; a 4xx/5xx or no answer becomes one sentence with its code. */
function client(opts: Options): BackfillClient {
  return new BackfillClient({ baseUrl: opts.api, authorization: () => authorization(opts), validate: checkAnswer });
}

async function call<T>(opts: Options, request: (c: BackfillClient) => Promise<T>): Promise<T> {
  try {
    return await request(client(opts));
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.code === "unreachable")
      throw new CliError(`${error.message}${isLocal(opts.api) ? " Is the local stack running (npm start)?" : ""}`, 1);
    const fields = error.fields.length > 1 ? ` ${error.fields.map((f) => `[${f.field}] ${f.message}`).join("; ")}` : "";
    throw new CliError(`${error.message}${fields} (${error.code})`, 1);
  }
}

const FINISHED = new Set(["completed", "failed", "cancelled"]);
/** How many times less often `--watch` looks at a paused run. */
const PAUSED_SLOWDOWN = 5;

function startedLines(run: StartedRun, watching: boolean | undefined): string[] {
  const canary = run.userIds
    ? ` over ${run.userIds.length} user${run.userIds.length === 1 ? "" : "s"} only (canary)`
    : "";
  const plan = run.planOf ? ` executing dry run ${run.planOf}` : "";
  return [
    `Started ${run.migrationId}${run.dryRun ? " (dry run: no ledger entry or wallet is written; each examined event gets dryRun marks)" : ""}${plan}${canary}: ${run.startDate} to ${run.endDate}, ${run.chunks} chunks, ${run.plannedEvents} events planned` +
      (run.capReached ? ` (capped: ${run.selectedEvents} selected; run again for the rest)` : "") +
      `, about ${formatDuration(run.estimatedSeconds)}.`,
    ...(watching ? [] : [`Follow it with: npm run backfill -- status ${run.migrationId} --watch`]),
    ...(run.dryRun && !watching
      ? [`When it has completed, run it for real with: npm run backfill -- execute ${run.migrationId}`]
      : []),
  ];
}

export function summaryLine(m: RunView & { etaSeconds?: number | null }, openErrors?: number): string {
  const errors = openErrors ?? m.errors;
  const pause = m.status === "paused" && m.pausedReason ? ` (${m.pausedReason})` : "";
  const eta = m.etaSeconds !== null && m.etaSeconds !== undefined ? ` · ETA ${formatDuration(m.etaSeconds)}` : "";
  const canary = m.userIds ? ` [canary: ${m.userIds.length} user${m.userIds.length === 1 ? "" : "s"}]` : "";
  return (
    `${m.id} ${m.status}${pause}${m.dryRun ? " [dry run]" : ""}${canary} ${m.phase} · examined ${m.total}/${m.plannedEvents} · ` +
    `processed ${m.processed} · skipped ${m.skipped} · errors ${errors} · chunks ${m.chunksDone}/${m.chunksTotal}` +
    (m.chunksFailed > 0 ? ` (${m.chunksFailed} failed)` : "") +
    eta
  );
}

/** The comparison of a finished real run with its dry run, in a few lines. */
export function comparisonLines(detail: RunDetail): string[] {
  const c = detail.planComparison;
  if (!c) return [];
  if (c.matches) return [`Matches its dry run ${c.dryRunId}.`];
  const counters = c.dry
    ? c.counterDifferences
        .map((k) => `${k} ${(c.dry as Record<string, number>)[k]} → ${(c.real as Record<string, number>)[k]}`)
        .join(", ")
    : "";
  return [
    `Differs from its dry run ${c.dryRunId}${counters ? `: ${counters}` : ""}${c.note ? ` (${c.note})` : ""}; ${c.differenceCount} event${c.differenceCount === 1 ? "" : "s"} differ:`,
    ...c.differences.slice(0, 10).map((d) => `  ${d.eventId}: dry run ${d.dry}, real run ${d.real} — ${d.why}`),
  ];
}

/** What a finished run did (a dry run: would do) to wallets, and its dry run's figures where they differ. */
export function moneyLines(
  money: MoneyMoved | null,
  dryRun: boolean,
  comparison: RunDetail["planComparison"] = null,
): string[] {
  if (!money) return [];
  const largest = describeLargest(money);
  const lines = [
    `${dryRun ? "Would move" : "Moved"}: ${describeMoney(money)}${largest ? `; largest: ${largest}` : ""}.`,
  ];
  const dry = comparison?.money.dry;
  if (dry && JSON.stringify(dry) !== JSON.stringify(money)) lines.push(`Its dry run said: ${describeMoney(dry)}.`);
  return lines;
}

/** The kill switch for people: which half is off, and who flipped the runtime flag. */
export function killSwitchLine(k: KillSwitchView): string {
  const flag = k.flag ? JSON.stringify(k.flag) : "missing (enabled)";
  return `backfill ${k.enabled ? "enabled" : `DISABLED by ${k.disabledBy ?? "?"}`} (featureFlags/backfill ${flag}; BACKFILL_ENABLED=${k.param})`;
}

function watchExit(m: RunView, io: Output, id: string): number {
  if (m.status === "completed") {
    if (m.dryRun)
      io.out(
        `Check its report (npm run backfill -- report ${id}), then run it for real with: npm run backfill -- execute ${id}`,
      );
    return 0;
  }
  io.err(
    `Run ${id} ${m.status}${m.failureReason ? `: ${m.failureReason}` : ""}. Retry its failures with: npm run backfill -- retry ${id}`,
  );
  return 3;
}

async function watch(opts: Options, id: string, io: Output, intervalMs: number): Promise<number> {
  let last = "";
  const bar = io.isTTY
    ? new cliProgress.SingleBar(
        {
          format:
            "{bar} {value}/{total} examined · processed {processed} · skipped {skipped} · errors {errors} · chunks {chunks} · ETA {eta} · {status}",
          hideCursor: true,
        },
        cliProgress.Presets.shades_classic,
      )
    : null;
  let started = false;
  let pauseNoted = false;
  for (;;) {
    const detail = await call(opts, (c) => c.get(id));
    const { migration: m, errorCount } = detail;
    const payload = {
      eta: formatDuration(m.etaSeconds),
      processed: m.processed,
      skipped: m.skipped,
      errors: errorCount,
      chunks: `${m.chunksDone}/${m.chunksTotal}`,
      status: printable(m.status === "paused" ? `paused (${m.pausedReason})` : `${m.status} ${m.phase}`),
    };
    if (bar) {
      if (!started) bar.start(Math.max(m.plannedEvents, 1), m.total, payload);
      else {
        bar.setTotal(Math.max(m.plannedEvents, m.total, 1));
        bar.update(m.total, payload);
      }
      started = true;
    } else {
      const line = summaryLine(m, errorCount);
      if (line !== last) io.out(line);
      last = line;
    }
    if (FINISHED.has(m.status)) {
      bar?.stop();
      if (bar) io.out(summaryLine(m, errorCount));
      for (const line of [...comparisonLines(detail), ...moneyLines(detail.money, m.dryRun, detail.planComparison)])
        io.out(line);
      return watchExit(m, io, id);
    }
    // A paused run has not ended: keep watching (it may be resumed elsewhere), but say how to go on.
    if (m.status === "paused" && !pauseNoted) {
      io.err(
        `Run ${id} is paused (${m.pausedReason ?? "no reason given"}); continue it with: npm run backfill -- resume ${id}`,
      );
    }
    pauseNoted = m.status === "paused";
    // A paused run changes only when someone resumes or cancels it: look at it five times less often.
    await new Promise((r) => setTimeout(r, m.status === "paused" ? intervalMs * PAUSED_SLOWDOWN : intervalMs));
  }
}

/**
 * Makes text that came from data safe to print: control characters (ESC and the rest of C0 and C1, except
 * newline and tab) and Unicode direction overrides are shown as \uXXXX escapes, so a crafted event id,
 * product id or error message cannot move the cursor, clear the screen or reorder what an operator reads.
 */
export function printable(text: string): string {
  return text.replace(
    /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

export async function main(argv: string[], rawIo: Output, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  // Everything this command prints goes through printable(): much of it comes from data.
  const io: Output = { out: (l) => rawIo.out(printable(l)), err: (l) => rawIo.err(printable(l)), isTTY: rawIo.isTTY };
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        api: { type: "string" },
        token: { type: "string" },
        email: { type: "string" },
        json: { type: "boolean", default: false },
        type: { type: "string" },
        from: { type: "string" },
        to: { type: "string" },
        "lookback-days": { type: "string" },
        "dry-run": { type: "boolean" },
        execute: { type: "boolean" },
        "max-events": { type: "string" },
        "max-error-rate": { type: "string" },
        "max-events-per-second": { type: "string" },
        "idempotency-key": { type: "string" },
        user: { type: "string", multiple: true },
        watch: { type: "boolean", default: false },
        limit: { type: "string" },
        out: { type: "string" },
        interval: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    io.err(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  const [command, id] = positionals;
  if (v.help || !command) {
    (v.help ? io.out : io.err)(USAGE);
    return v.help ? 0 : 2;
  }
  const opts: Options = {
    api: v.api ?? env.BACKFILL_API_URL ?? "http://127.0.0.1:5000",
    token: v.token,
    email: v.email,
    json: v.json,
  };
  const number = (name: string, raw: string | undefined) => {
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isFinite(n)) throw new CliError(`--${name} must be a number, got "${raw}"`, 2);
    return n;
  };
  const needId = async () => {
    if (!id) throw new CliError(`${command} needs a run id (or "last"): npm run backfill -- ${command} <id>`, 2);
    if (id !== "last") return id;
    const { migrations } = await call(opts, (c) => c.list(1));
    if (!migrations[0]) throw new CliError("There are no runs yet.", 1);
    return migrations[0].id;
  };
  const print = (json: unknown, summary: string) => io.out(opts.json ? JSON.stringify(json, null, 2) : summary);

  try {
    switch (command) {
      case "start": {
        if (v["dry-run"] && v.execute) throw new CliError("Choose one of --dry-run and --execute.", 2);
        if (!v.type) throw new CliError("start needs --type webhook_replay or --type reversal_backfill", 2);
        const body: Record<string, unknown> = { type: v.type, dryRun: !v.execute };
        if (v.from !== undefined) body.startDate = v.from;
        if (v.to !== undefined) body.endDate = v.to;
        const lookback = number("lookback-days", v["lookback-days"]);
        if (lookback !== undefined) body.lookbackDays = lookback;
        const maxEvents = number("max-events", v["max-events"]);
        if (maxEvents !== undefined) body.maxEvents = maxEvents;
        const maxErrorRate = number("max-error-rate", v["max-error-rate"]);
        if (maxErrorRate !== undefined) body.maxErrorRate = maxErrorRate;
        const perSecond = number("max-events-per-second", v["max-events-per-second"]);
        if (perSecond !== undefined) body.maxEventsPerSecond = perSecond;
        if (v.user !== undefined) body.userIds = v.user;
        // The API names what is wrong with the body; the CLI passes it on as given.
        const run = await call(opts, (c) => c.start(body as StartRunBody, { idempotencyKey: v["idempotency-key"] }));
        print(run, startedLines(run, v.watch).join("\n"));
        return v.watch ? await watch(opts, run.migrationId, io, number("interval", v.interval) ?? 1000) : 0;
      }
      case "execute": {
        if (!id)
          throw new CliError(
            "execute needs the id of a completed dry run: npm run backfill -- execute <dry-run-id>",
            2,
          );
        const dryRunId = id === "last" ? await needId() : id;
        const run = await call(opts, (c) => c.execute(dryRunId, { idempotencyKey: v["idempotency-key"] }));
        print(run, startedLines(run, v.watch).join("\n"));
        return v.watch ? await watch(opts, run.migrationId, io, number("interval", v.interval) ?? 1000) : 0;
      }
      case "status": {
        const runId = await needId();
        if (v.watch) return await watch(opts, runId, io, number("interval", v.interval) ?? 1000);
        const detail = await call(opts, (c) => c.get(runId));
        const sample = detail.errorSample.slice(0, 5).map((e) => `  ${e.eventId} ${e.code}: ${e.message}`);
        const money = moneyLines(detail.money, detail.migration.dryRun, detail.planComparison);
        print(
          detail,
          [summaryLine(detail.migration, detail.errorCount), ...comparisonLines(detail), ...money, ...sample].join(
            "\n",
          ),
        );
        return 0;
      }
      case "list": {
        const limit = number("limit", v.limit) ?? 20;
        const { migrations } = await call(opts, (c) => c.list(limit));
        print(migrations, migrations.length ? migrations.map((m) => summaryLine(m)).join("\n") : "No runs yet.");
        return 0;
      }
      case "pause":
      case "resume":
      case "cancel":
      case "retry": {
        const runId = await needId();
        const result = await call(opts, (c) => c.control(runId, command));
        print(
          result,
          `${result.changed ? `${command}: done` : `${command}: nothing to change`} — ${summaryLine(result.migration, result.errorCount)}`,
        );
        return 0;
      }
      case "report": {
        const runId = await needId();
        const report = await call(opts, (c) => c.report(runId));
        const line = `total ${report.totals.total} = processed ${report.totals.processed} + skipped ${report.totals.skipped} + errors ${report.totals.errors}; reconciled with the run: ${report.reconciled ? "yes" : "NO"}; verification: ${report.verification.ok ? "ok" : "PROBLEMS FOUND"}`;
        const money = moneyLines(report.money, report.migration.dryRun);
        const slices = (c: BackfillClient) => c.allReportEvents(report);
        if (v.out) {
          // Streamed: the summary, then the per-event list slice after slice, so no side holds all of it.
          const { events: _first, nextPageToken: _next, ...summary } = report;
          const file = await open(v.out, "w");
          let listed = 0;
          try {
            await file.write(`${JSON.stringify(summary, null, 2).replace(/\n}$/, "")},\n  "events": [`);
            await call(opts, async (c) => {
              for await (const events of slices(c)) {
                for (const e of events) await file.write(`${listed++ === 0 ? "" : ","}\n    ${JSON.stringify(e)}`);
              }
            });
            await file.write(`${listed === 0 ? "" : "\n  "}]\n}\n`);
          } finally {
            await file.close();
          }
          io.out(
            [
              `Wrote ${v.out}: ${line}`,
              ...(listed === report.totals.total ? [] : [`The file lists ${listed} events.`]),
              ...money,
            ].join("\n"),
          );
        } else if (opts.json) {
          const events: Report["events"] = [];
          await call(opts, async (c) => {
            for await (const slice of slices(c)) events.push(...slice);
          });
          print({ ...report, events, nextPageToken: null }, "");
        } else {
          print(report, [line, ...money].join("\n"));
        }
        return report.reconciled && report.verification.ok ? 0 : 3;
      }
      case "killswitch": {
        if (id !== "on" && id !== "off" && id !== "status")
          throw new CliError("killswitch needs on, off or status: npm run -s killswitch -- off", 2);
        const state = await call(opts, (c) => (id === "status" ? c.killSwitch() : c.setKillSwitch(id === "on")));
        print(state, killSwitchLine(state));
        return 0;
      }
      default:
        throw new CliError(`Unknown command "${command}".\n\n${USAGE}`, 2);
    }
  } catch (error) {
    if (error instanceof CliError) {
      io.err(`Error: ${error.message}`);
      return error.exitCode;
    }
    throw error;
  }
}

const invokedDirectly = process.argv[1] && /(cli\.ts|backfill(\.mjs)?)$/.test(process.argv[1]);
if (invokedDirectly) {
  const io: Output = {
    out: (l) => process.stdout.write(`${l}\n`),
    err: (l) => process.stderr.write(`${l}\n`),
    isTTY: Boolean(process.stdout.isTTY),
  };
  process.exitCode = await main(process.argv.slice(2), io);
}
