// A run's page (#/runs/{id}): its counters and progress, the controls an operator may use (the server's
// own control rules decide which are enabled), its comparison and money panels, throughput, chunks and
// errors. It refreshes every 2 s while moving, every 10 s while paused, and stops once the run has ended.
import type { RunDetail } from "../functions/src/http/client";
import { formatDuration } from "../functions/src/http/client";
import { CONTROL_ACTIONS, decideControl, type ControlAction } from "../functions/src/core/control";
import { isFinishedRun } from "../functions/src/core/run";
import { CHUNK_STATUSES } from "../functions/src/core/types";
import { badge, confirmAction, describeError, el, progress, say, show, row, table } from "./dom";
import { goKeepingBanner, schedule } from "./navigation";
import { comparisonView, moneyView, signed, throughputChart } from "./panels";
import { client, READ_ONLY, whoAmI } from "./session";

type Detail = RunDetail["migration"];
type ChunkView = RunDetail["chunks"][number];

const REFRESH_MS = 2000;
const PAUSED_REFRESH_MS = 10000;

async function control(id: string, action: ControlAction): Promise<void> {
  try {
    const result = await client.control(id, action);
    say(result.changed ? `${action}: done.` : `${action}: nothing to change.`);
  } catch (error) {
    say(`${action} refused: ${describeError(error)}`, "error");
  }
  await showRun(id);
}

/** A day, or a shard of a busy day with its slice of time. */
function chunkName(c: ChunkView): string {
  return c.id === c.day
    ? c.day
    : `${c.day} shard ${Number(c.id.slice(11))} (${c.from.slice(11, 23)}–${c.to.slice(11, 23)} UTC)`;
}

/** What the day was planned to examine: its share of the cap, or all it holds when the cap covers the range. */
function plannedOfDay(c: ChunkView, m: Detail): string {
  const budget = Object.values(c.budgets).reduce((a, b) => a + b, 0);
  return m.capReached
    ? `planned up to ${budget} (its share of maxEvents)`
    : `planned: every selected event of the ${c.id === c.day ? "day" : "shard"}`;
}

function timing(m: Detail): string {
  if (isFinishedRun(m.status))
    return `took ${formatDuration(m.elapsedSeconds)} (estimated ${formatDuration(m.estimatedSeconds)})`;
  if (m.status === "paused")
    return `paused after ${formatDuration(m.elapsedSeconds)} (estimated ${formatDuration(m.estimatedSeconds)} in all)`;
  return `ETA ${formatDuration(m.etaSeconds)} · running ${formatDuration(m.elapsedSeconds)} of an estimated ${formatDuration(m.estimatedSeconds)}`;
}

async function executePlan(m: Detail, money: RunDetail["money"]): Promise<void> {
  const who = m.userIds
    ? `the events of ${m.userIds.length} user${m.userIds.length === 1 ? "" : "s"} (canary)`
    : "every selected event";
  const ok = await confirmAction(
    "Execute this plan?",
    `Starts the real run of ${m.id}: ${m.type} over ${m.startDate} → ${m.endDate}, ${who}, at most ${m.maxEvents} events. It writes ledger entries and wallet balances. The dry run examined ${m.total} events (${m.processed} would be processed)${
      money
        ? `; it would credit ${signed(money.credited)}, reverse ${signed(-money.reversed)} and reinstate ${signed(money.reinstated)} points across ${money.wallets} wallets`
        : ""
    }.`,
    "Start the real run",
  );
  if (!ok) return;
  try {
    const run = await client.execute(m.id);
    say(`Started ${run.migrationId}, the real run of ${m.id}; about ${formatDuration(run.estimatedSeconds)}.`);
    goKeepingBanner(`#/runs/${run.migrationId}`);
  } catch (error) {
    say(`Execute refused: ${describeError(error)}`, "error");
  }
}

/** The buttons: one per control action, enabled where the server would change the run; a dry run's Execute. */
function controls(
  id: string,
  m: Detail,
  errorCount: number,
  money: RunDetail["money"],
  mayControl: boolean,
  mayStart: boolean,
): HTMLElement[] {
  const buttons = CONTROL_ACTIONS.map((action) =>
    el(
      "button",
      {
        type: "button",
        "data-testid": `btn-${action}`,
        disabled:
          !mayControl ||
          decideControl(action, { status: m.status, openErrors: errorCount, retries: m.retries }, id).kind !== "change",
        title: mayControl ? undefined : READ_ONLY,
        onclick: () => void control(id, action),
      },
      action[0]?.toUpperCase() + action.slice(1),
    ),
  );
  if (m.dryRun) {
    const done = m.status === "completed";
    buttons.push(
      el(
        "button",
        {
          type: "button",
          class: "primary",
          "data-testid": "btn-execute",
          disabled: !mayStart || !done,
          title: !mayStart
            ? READ_ONLY
            : done
              ? "Start the real run with exactly this dry run's parameters"
              : "Only a completed dry run can be executed",
          onclick: () => void executePlan(m, money),
        },
        "Execute this plan",
      ),
    );
  }
  return buttons;
}

export async function showRun(id: string): Promise<void> {
  const at = location.hash;
  const [detail, caller] = await Promise.all([client.get(id), whoAmI()]);
  if (location.hash !== at) return;
  const { migration: m, chunks, errorSample, errorCount, throughput, planComparison, money } = detail;
  const mayControl = caller.permissions.includes("control");
  const mayStart = caller.permissions.includes("start") && mayControl;
  const cards = (
    [
      ["examined", `${m.total}/${m.plannedEvents}`],
      ["processed", m.processed],
      ["skipped", m.skipped],
      ["errors", errorCount],
      ["chunks", `${m.chunksDone}/${m.chunksTotal}`],
    ] as const
  ).map(([label, value]) => el("div", { class: "card", "data-testid": `count-${label}` }, el("b", {}, value), label));
  const cells = chunks.map((c) =>
    el(
      "div",
      {
        class: "cell",
        "data-testid": "chunk-cell",
        dataset: { status: c.status, day: c.day, chunk: c.id },
        title: `${chunkName(c)}: ${c.status} (${c.phase} ${c.step}) · examined ${c.total} · ${plannedOfDay(c, m)} · processed ${c.processed} · skipped ${c.skipped} · errors ${c.errors}${c.lastError ? ` · last error: ${c.lastError}` : ""}`,
      },
      c.id === c.day ? c.day.slice(8) : `${c.day.slice(8)}·${Number(c.id.slice(11))}`,
    ),
  );
  const legend = el(
    "div",
    { class: "legend" },
    CHUNK_STATUSES.map((s) => el("span", {}, el("i", { class: "cell", dataset: { status: s } }), s)),
  );
  const errors = errorSample.length
    ? table(
        "errors",
        ["Event", "Code", "Message", "Day"],
        errorSample.map((e) => row(el("code", {}, e.eventId), e.code, e.message, e.chunkId)),
      )
    : el("p", {}, "No errors.");
  const reason =
    m.status === "paused" && m.pausedReason ? ` — ${m.pausedReason}` : m.failureReason ? ` — ${m.failureReason}` : "";
  const origin = m.planOf
    ? el(
        "p",
        { "data-testid": "plan-of" },
        "Executes the plan of dry run ",
        el("a", { href: `#/runs/${m.planOf}` }, m.planOf),
        ".",
      )
    : null;
  const canary = m.userIds
    ? el("p", { "data-testid": "canary" }, `Canary: only the events of ${m.userIds.join(", ")}.`)
    : null;
  show(
    el("p", {}, el("a", { href: "#/" }, "← all runs")),
    el("h1", {}, m.id, " ", badge(m.status, "run-status")),
    el(
      "p",
      {},
      `${m.type} · ${m.startDate} → ${m.endDate} · ${m.dryRun ? "dry run" : "real run"} · phase ${m.phase} · max ${m.maxEvents} events${m.capReached ? " (cap reached)" : ""}${reason}`,
    ),
    origin,
    canary,
    el(
      "div",
      { class: "progress-row" },
      progress(m.total, m.plannedEvents),
      el("span", { class: "eta", "data-testid": "eta" }, timing(m)),
    ),
    el("div", { class: "cards" }, cards),
    el("div", { class: "actions" }, controls(id, m, errorCount, money, mayControl, mayStart)),
    mayControl ? null : el("p", { class: "note", "data-testid": "read-only" }, READ_ONLY),
    comparisonView(planComparison),
    moneyView(m, money, planComparison),
    el("h2", {}, "Throughput"),
    throughputChart(throughput),
    el("h2", {}, "Day chunks"),
    legend,
    el("div", { class: "grid", "data-testid": "chunks" }, cells),
    el("h2", {}, `Errors (${errorCount})`),
    errors,
  );
  // A moving run refreshes every 2 s; a paused one, which changes only when someone resumes or cancels it,
  // every 10 s; a finished one not at all.
  if (!isFinishedRun(m.status)) schedule(() => showRun(id), m.status === "paused" ? PAUSED_REFRESH_MS : REFRESH_MS);
}
