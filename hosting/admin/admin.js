// The operator's console: a static page that drives the API with the caller's bearer token, through the
// same typed client the CLI uses (client.js, bundled from functions/src/http/client.ts). The token comes
// from the URL fragment (#token=..., never sent to the server) or the "Set token" dialog, and lives in
// sessionStorage for this tab only. Every run starts as a dry run; a completed dry run's page offers to
// execute its plan; a real run that executed a plan shows how it compared.
import { ApiError, BackfillClient, formatDuration } from "/admin/client.js";

const TOKEN_KEY = "backfill.token";
const FINISHED = new Set(["completed", "failed", "cancelled"]);
const STATUSES = ["pending", "running", "waiting", "paused", "done", "failed", "cancelled"];
const view = document.getElementById("view");
const banner = document.getElementById("banner");
let timer = null;

// Links may carry a token in the fragment: #token=... or #/runs/<id>&token=...
function takeTokenFromFragment() {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (match) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    const route = location.hash.replace(match[0], "").replace(/^#?&?/, "");
    history.replaceState(null, "", `${location.pathname}#${route.startsWith("/") ? route : "/"}`);
  }
}

const token = () => sessionStorage.getItem(TOKEN_KEY);

const client = new BackfillClient({ baseUrl: "", authorization: () => (token() ? `Bearer ${token()}` : null) });
const READ_ONLY = "Read only: your token may view runs but not change them. An operator (OPERATOR_EMAILS) can.";

/** Set when a message should survive the navigation that follows it (a started run's page). */
let keepBanner = false;

function say(message, kind = "info") {
  if (!message) {
    banner.hidden = true;
    return;
  }
  banner.hidden = false;
  banner.className = kind;
  banner.textContent = message;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const badge = (status, testid) => el("span", { class: `badge ${status}`, "data-testid": testid }, status);

function progress(done, planned) {
  const pct = planned > 0 ? Math.min(100, Math.round((done / planned) * 100)) : 100;
  const bar = el("span");
  // Through the CSS object model: the page's Content-Security-Policy allows no inline style attribute.
  bar.style.width = `${pct}%`;
  return el("div", { class: "progress", title: `${done}/${planned} examined` }, bar);
}

/** What the caller may do (GET /api/admin/me), asked once per token. */
let me = null;
async function whoAmI() {
  if (!me) me = await client.me();
  return me;
}
/** Asks before an action that changes money or stops work; resolves true on Confirm. */
function confirmAction(title, text, okLabel) {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = okLabel;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true }));
}

const HALVES = {
  BACKFILL_ENABLED: "by the deploy setting BACKFILL_ENABLED (only a redeploy with it true turns backfill back on)",
  "featureFlags/backfill": "by the runtime flag featureFlags/backfill",
};

let killState = null;
async function refreshKillSwitch() {
  const node = document.getElementById("kill-switch");
  const button = document.getElementById("kill-switch-button");
  try {
    const state = await client.killSwitch();
    killState = state;
    node.className = `badge ${state.enabled ? "enabled" : "disabled"}`;
    node.textContent = state.enabled ? "backfill enabled" : `backfill DISABLED ${HALVES[state.disabledBy] ?? ""}`;
    node.dataset.enabled = String(state.enabled);
    node.dataset.disabledBy = state.disabledBy ?? "";
    const operator = (await whoAmI()).permissions.includes("control");
    // The button flips the runtime flag; the deploy setting is not the dashboard's to change.
    const flagOn = state.flag?.enabled !== false;
    button.hidden = false;
    button.textContent = flagOn ? "Turn backfill off" : "Turn backfill on";
    button.disabled = !operator || (!flagOn && !state.param);
    button.title = !operator
      ? READ_ONLY
      : !flagOn && !state.param
        ? "The deploy setting BACKFILL_ENABLED is false: turning the runtime flag on would not enable backfill; redeploy with BACKFILL_ENABLED=true."
        : "";
  } catch {
    node.className = "badge";
    node.textContent = "kill switch: unknown";
    button.hidden = true;
  }
}

async function toggleKillSwitch() {
  const turnOff = killState?.flag?.enabled !== false;
  const ok = await confirmAction(
    turnOff ? "Turn backfill off?" : "Turn backfill on?",
    turnOff
      ? "Sets the runtime flag featureFlags/backfill to false: new jobs are refused (503 backfill_disabled), and running chunks stop at their next page and are parked as paused. Nothing already written is undone."
      : `Sets the runtime flag featureFlags/backfill to true: new jobs are accepted again${killState?.param ? "" : " (but the deploy setting BACKFILL_ENABLED is still false)"}. Paused runs stay paused until someone resumes them.`,
    turnOff ? "Turn off" : "Turn on",
  );
  if (!ok) return;
  try {
    await client.setKillSwitch(!turnOff);
    say(turnOff ? "Backfill turned off (runtime flag)." : "Runtime flag turned on.");
  } catch (error) {
    say(`Kill switch refused: ${error.message} (${error.code})`, "error");
  }
  await refreshKillSwitch();
}

async function showList() {
  const at = location.hash;
  const { migrations } = await client.list(50);
  // The operator may have moved on while the list was loading: a late answer must not replace their page.
  if (location.hash !== at) return;
  const rows = migrations.map((m) =>
    el(
      "tr",
      { "data-testid": "run-row", "data-id": m.id },
      el("td", {}, el("a", { href: `#/runs/${m.id}` }, m.id)),
      el("td", {}, m.type),
      el("td", {}, `${m.startDate} → ${m.endDate}`),
      el("td", {}, m.dryRun ? "dry run" : "real", m.userIds ? ` · canary (${m.userIds.length})` : ""),
      el("td", {}, badge(m.status)),
      el("td", {}, progress(m.total, m.plannedEvents)),
      el("td", { class: "num" }, m.processed),
      el("td", { class: "num" }, m.skipped),
      el("td", { class: "num" }, m.errors),
      el("td", { class: "num" }, `${m.chunksDone}/${m.chunksTotal}`),
      el("td", {}, m.createdAt ? new Date(m.createdAt).toLocaleString() : ""),
    ),
  );
  view.replaceChildren(
    el("h1", {}, "Runs"),
    migrations.length === 0
      ? el("p", {}, "No runs yet. Start one with New run (a dry run first), npm run backfill -- start, or POST /api/jobs/backfill.")
      : el(
          "table",
          { "data-testid": "runs" },
          el("thead", {}, el("tr", {}, ["Run", "Type", "Range", "Mode", "Status", "Progress", "Processed", "Skipped", "Errors", "Chunks", "Created"].map((h) => el("th", {}, h)))),
          el("tbody", {}, rows),
        ),
  );
  schedule(showList, 5000);
}

const ACTIONS = {
  pause: (s) => s === "pending" || s === "running",
  resume: (s) => s === "paused",
  cancel: (s) => s === "pending" || s === "running" || s === "paused",
  retry: (s, run) => s === "failed" || (s === "completed" && run.errors > 0),
};

async function control(id, action) {
  try {
    const result = await client.control(id, action);
    say(result.changed ? `${action}: done.` : `${action}: nothing to change.`);
  } catch (error) {
    say(`${action} refused: ${error.message} (${error.code})`, "error");
  }
  await showRun(id);
}

/** A small bar chart of events per second over time, drawn as SVG attributes (no inline styles: CSP). */
function throughputChart(throughput) {
  const NS = "http://www.w3.org/2000/svg";
  const points = throughput.points;
  if (points.length === 0) return el("p", { class: "note", "data-testid": "throughput" }, "No pages committed yet.");
  const width = 640;
  const height = 120;
  const peak = Math.max(...points.map((p) => p.perSecond), 1);
  const barWidth = width / points.length;
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height + 18}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("data-testid", "throughput");
  svg.setAttribute("role", "img");
  const unit = throughput.bucketSeconds === 60 ? "minute" : `${throughput.bucketSeconds} s`;
  svg.setAttribute("aria-label", `Events per second, per ${unit}; peak ${peak}`);
  points.forEach((p, i) => {
    const h = Math.max(1, (p.perSecond / peak) * height);
    const rect = document.createElementNS(NS, "rect");
    rect.setAttribute("x", String(i * barWidth + 1));
    rect.setAttribute("y", String(height - h));
    rect.setAttribute("width", String(Math.max(1, barWidth - 2)));
    rect.setAttribute("height", String(h));
    rect.setAttribute("class", "bar");
    const title = document.createElementNS(NS, "title");
    title.textContent = `${new Date(p.at).toLocaleTimeString()}: ${p.perSecond} events/s (${p.events} events)`;
    rect.append(title);
    svg.append(rect);
  });
  const label = document.createElementNS(NS, "text");
  label.setAttribute("x", "0");
  label.setAttribute("y", String(height + 14));
  label.setAttribute("class", "axis");
  label.textContent = `peak ${peak} events/s · one bar per ${unit}`;
  svg.append(label);
  return svg;
}

/** What the day was planned to examine: its share of the cap, or all it holds when the cap covers the range. */
/** A day, or a shard of a busy day with its slice of time. */
function chunkName(c) {
  return c.id === c.day ? c.day : `${c.day} shard ${Number(c.id.slice(11))} (${c.from.slice(11, 23)}–${c.to.slice(11, 23)} UTC)`;
}

function plannedOfDay(c, m) {
  const budget = Object.values(c.budgets).reduce((a, b) => a + b, 0);
  return m.capReached ? `planned up to ${budget} (its share of maxEvents)` : `planned: every selected event of the ${c.id === c.day ? "day" : "shard"}`;
}

function timing(m) {
  if (m.status === "completed" || m.status === "failed" || m.status === "cancelled") {
    return `took ${formatDuration(m.elapsedSeconds)} (estimated ${formatDuration(m.estimatedSeconds)})`;
  }
  if (m.status === "paused") return `paused after ${formatDuration(m.elapsedSeconds)} (estimated ${formatDuration(m.estimatedSeconds)} in all)`;
  return `ETA ${formatDuration(m.etaSeconds)} · running ${formatDuration(m.elapsedSeconds)} of an estimated ${formatDuration(m.estimatedSeconds)}`;
}

function comparisonView(c) {
  if (!c) return null;
  const headline = c.matches
    ? el("p", { class: "verdict ok", "data-testid": "comparison-verdict" }, "Matches its dry run ", el("a", { href: `#/runs/${c.dryRunId}` }, c.dryRunId), ".")
    : el("p", { class: "verdict bad", "data-testid": "comparison-verdict" }, "Differs from its dry run ", el("a", { href: `#/runs/${c.dryRunId}` }, c.dryRunId), c.note ? ` — ${c.note}` : ": see below.");
  const counters = c.dry
    ? el(
        "table",
        { "data-testid": "comparison-counters" },
        el("thead", {}, el("tr", {}, ["", "dry run", "real run"].map((h) => el("th", {}, h)))),
        el(
          "tbody",
          {},
          Object.keys(c.real).map((k) =>
            el("tr", { class: c.counterDifferences.includes(k) ? "differs" : "" }, el("td", {}, k), el("td", { class: "num" }, c.dry[k]), el("td", { class: "num" }, c.real[k])),
          ),
        ),
      )
    : null;
  const events = c.differences.length
    ? el(
        "table",
        { "data-testid": "comparison-events" },
        el("thead", {}, el("tr", {}, ["Event", "Dry run", "Real run", "Why"].map((h) => el("th", {}, h)))),
        el("tbody", {}, c.differences.map((d) => el("tr", {}, el("td", {}, el("code", {}, d.eventId)), el("td", {}, d.dry), el("td", {}, d.real), el("td", {}, d.why)))),
      )
    : null;
  const more = c.differenceCount > c.differences.length ? el("p", { class: "note" }, `${c.differenceCount - c.differences.length} more differing events are not listed.`) : null;
  return el("section", { "data-testid": "comparison" }, el("h2", {}, "Compared with its dry run"), headline, counters, events, more);

}

const signed = (n) => `${n < 0 ? "−" : n > 0 ? "+" : ""}${Math.abs(n).toLocaleString("en-US")}`;

/** What a finished run did (a dry run: would do) to wallets, beside its dry run's figures when it executed one. */
function moneyView(m, money, comparison) {
  if (!money) return null;
  const dry = comparison && comparison.money ? comparison.money.dry : null;
  const rows = [
    ["points credited", money.credited, dry && dry.credited],
    ["points reversed", -money.reversed, dry && -dry.reversed],
    ["points reinstated", money.reinstated, dry && dry.reinstated],
    ["net", money.net, dry && dry.net],
    ["wallets touched", money.wallets, dry && dry.wallets],
  ];
  const heads = dry ? ["", "dry run", "real run"] : ["", m.dryRun ? "would move" : "moved"];
  const cell = (v, count) => el("td", { class: "num" }, count ? String(v) : signed(v));
  const table = el(
    "table",
    { "data-testid": "money" },
    el("thead", {}, el("tr", {}, heads.map((h) => el("th", {}, h)))),
    el(
      "tbody",
      {},
      rows.map(([label, value, before], i) =>
        el("tr", { class: dry && before !== value ? "differs" : "" }, el("td", {}, label), dry ? cell(before, i === 4) : null, cell(value, i === 4)),
      ),
    ),
  );
  const largest = money.largest.length
    ? el(
        "table",
        { "data-testid": "money-largest" },
        el("thead", {}, el("tr", {}, ["Wallet", "Change"].map((h) => el("th", {}, h)))),
        el("tbody", {}, money.largest.map((w) => el("tr", {}, el("td", {}, el("code", {}, w.userId)), el("td", { class: "num" }, signed(w.points))))),
      )
    : null;
  return el("section", {}, el("h2", {}, m.dryRun ? "What it would do to wallets" : "What it did to wallets"), table, largest ? el("h3", {}, "Largest changes") : null, largest);
}

async function executePlan(m, money) {
  const who = m.userIds ? `the events of ${m.userIds.length} user${m.userIds.length === 1 ? "" : "s"} (canary)` : "every selected event";
  const ok = await confirmAction(
    "Execute this plan?",
    `Starts the real run of ${m.id}: ${m.type} over ${m.startDate} → ${m.endDate}, ${who}, at most ${m.maxEvents} events. It writes ledger entries and wallet balances. The dry run examined ${m.total} events (${m.processed} would be processed)${
      money ? `; it would credit ${signed(money.credited)}, reverse ${signed(-money.reversed)} and reinstate ${signed(money.reinstated)} points across ${money.wallets} wallets` : ""
    }.`,
    "Start the real run",
  );
  if (!ok) return;
  try {
    const run = await client.execute(m.id);
    say(`Started ${run.migrationId}, the real run of ${m.id}; about ${formatDuration(run.estimatedSeconds)}.`);
    keepBanner = true;
    location.hash = `#/runs/${run.migrationId}`;
  } catch (error) {
    say(`Execute refused: ${error.message} (${error.code})`, "error");
  }
}

async function showRun(id) {
  const at = location.hash;
  const [detail, caller] = await Promise.all([client.get(id), whoAmI()]);
  if (location.hash !== at) return;
  const { migration: m, chunks, errorSample, errorCount, throughput, planComparison, money } = detail;
  const mayControl = caller.permissions.includes("control");
  const mayStart = caller.permissions.includes("start") && mayControl;
  const cards = [
    ["examined", `${m.total}/${m.plannedEvents}`],
    ["processed", m.processed],
    ["skipped", m.skipped],
    ["errors", errorCount],
    ["chunks", `${m.chunksDone}/${m.chunksTotal}`],
  ].map(([label, value]) => el("div", { class: "card", "data-testid": `count-${label}` }, el("b", {}, value), label));
  const buttons = Object.entries(ACTIONS).map(([action, allowed]) =>
    el(
      "button",
      {
        type: "button",
        "data-testid": `btn-${action}`,
        disabled: !mayControl || !allowed(m.status, m),
        title: mayControl ? undefined : READ_ONLY,
        onclick: () => control(id, action),
      },
      action[0].toUpperCase() + action.slice(1),
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
          title: !mayStart ? READ_ONLY : done ? "Start the real run with exactly this dry run's parameters" : "Only a completed dry run can be executed",
          onclick: () => executePlan(m, money),
        },
        "Execute this plan",
      ),
    );
  }
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
  const legend = el("div", { class: "legend" }, STATUSES.map((s) => el("span", {}, el("i", { class: "cell", dataset: { status: s } }), s)));
  const errors = errorSample.length
    ? el(
        "table",
        { "data-testid": "errors" },
        el("thead", {}, el("tr", {}, ["Event", "Code", "Message", "Day"].map((h) => el("th", {}, h)))),
        el("tbody", {}, errorSample.map((e) => el("tr", {}, el("td", {}, el("code", {}, e.eventId)), el("td", {}, e.code), el("td", {}, e.message), el("td", {}, e.chunkId)))),
      )
    : el("p", {}, "No errors.");
  const reason = m.status === "paused" && m.pausedReason ? ` — ${m.pausedReason}` : m.failureReason ? ` — ${m.failureReason}` : "";
  const origin = m.planOf ? el("p", { "data-testid": "plan-of" }, "Executes the plan of dry run ", el("a", { href: `#/runs/${m.planOf}` }, m.planOf), ".") : null;
  const canary = m.userIds ? el("p", { "data-testid": "canary" }, `Canary: only the events of ${m.userIds.join(", ")}.`) : null;
  show(
    el("p", {}, el("a", { href: "#/" }, "← all runs")),
    el("h1", {}, m.id, " ", badge(m.status, "run-status")),
    el("p", {}, `${m.type} · ${m.startDate} → ${m.endDate} · ${m.dryRun ? "dry run" : "real run"} · phase ${m.phase} · max ${m.maxEvents} events${m.capReached ? " (cap reached)" : ""}${reason}`),
    origin,
    canary,
    el("div", { class: "progress-row" }, progress(m.total, m.plannedEvents), el("span", { class: "eta", "data-testid": "eta" }, timing(m))),
    el("div", { class: "cards" }, cards),
    el("div", { class: "actions" }, buttons),
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
  if (!FINISHED.has(m.status)) schedule(() => showRun(id), m.status === "paused" ? PAUSED_REFRESH_MS : REFRESH_MS);
}

const REFRESH_MS = 2000;
const PAUSED_REFRESH_MS = 10000;

/** The New run form: always a dry run; the API's own per-field messages appear beside the fields. */
async function showNew() {
  const at = location.hash;
  // A token the API refuses is reported by route() (401/403: set a token), not shown as read-only.
  const { permissions } = await whoAmI();
  const mayStart = permissions.includes("start") && permissions.includes("control");
  if (location.hash !== at) return;
  const today = new Date().toISOString().slice(0, 10);
  const field = (name, label, input, hint) =>
    el("div", { class: "field" }, el("label", { for: `f-${name}` }, label), input, hint ? el("small", {}, hint) : null, el("span", { class: "field-error", "data-testid": `error-${name}`, id: `e-${name}` }));
  const input = (name, attrs) => el("input", { id: `f-${name}`, name, "aria-describedby": `e-${name}`, disabled: !mayStart, ...attrs });
  const form = el(
    "form",
    { "data-testid": "new-run", novalidate: true },
    field(
      "type",
      "Type",
      el("select", { id: "f-type", name: "type", disabled: !mayStart }, el("option", { value: "webhook_replay" }, "webhook_replay — replay events nobody processed"), el("option", { value: "reversal_backfill" }, "reversal_backfill — re-apply refunds and chargebacks")),
    ),
    field("startDate", "From (UTC day)", input("startDate", { type: "date", value: today })),
    field("endDate", "To (UTC day, inclusive)", input("endDate", { type: "date", value: today })),
    field("maxEvents", "Max events", input("maxEvents", { type: "number", min: "1", value: "1000" })),
    field("userIds", "Only these wallets (optional canary)", el("textarea", { id: "f-userIds", name: "userIds", rows: "2", disabled: !mayStart, "aria-describedby": "e-userIds" }), "Wallet ids (PayNow customer ids, or the field WALLET_FIELD names) separated by commas or new lines, up to 100: only events moving those wallets alone. Repair one customer first, check the report, then the whole range."),
    el("div", { class: "actions" }, el("button", { type: "submit", class: "primary", "data-testid": "start-dry-run", disabled: !mayStart, title: mayStart ? undefined : READ_ONLY }, "Start dry run")),
    mayStart ? el("p", { class: "note" }, "A new run is always a dry run: it writes no ledger entry and no wallet, only its own records and, on each event it examines, the marks dryRunProcessed, dryRunMigrationId, dryRunAt and countedIn.{run id}. When it has completed, its page offers Execute this plan.") : el("p", { class: "note", "data-testid": "read-only" }, READ_ONLY),
  );
  // One Idempotency-Key per form and body: a second click, or a resubmission after a start that timed out
  // (Hosting gives up after 60 s while the run is still created), returns the same run instead of a second.
  const formKey = crypto.randomUUID();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void startFromForm(form, formKey);
  });
  show(el("p", {}, el("a", { href: "#/" }, "← all runs")), el("h1", {}, "New run"), form);
}

/** A short stable digest of a start body, so that a changed form gets a key of its own. */
async function digest(value) {
  const bytes = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(JSON.stringify(value))));
  return [...bytes.slice(0, 12)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function startFromForm(form, formKey) {
  const data = new FormData(form);
  for (const node of form.querySelectorAll(".field-error")) node.textContent = "";
  const body = { type: data.get("type"), startDate: data.get("startDate"), endDate: data.get("endDate"), dryRun: true };
  const max = String(data.get("maxEvents") ?? "").trim();
  if (max !== "") body.maxEvents = Number(max);
  const users = String(data.get("userIds") ?? "").split(/[\s,]+/).filter(Boolean);
  if (users.length > 0) body.userIds = users;
  try {
    const run = await client.start(body, { idempotencyKey: `console-${formKey}-${await digest(body)}` });
    say(`Started dry run ${run.migrationId}: ${run.plannedEvents} events planned, about ${formatDuration(run.estimatedSeconds)}.`);
    keepBanner = true;
    location.hash = `#/runs/${run.migrationId}`;
  } catch (error) {
    if (error instanceof ApiError && error.fields.length > 0) {
      for (const problem of error.fields) {
        const node = form.querySelector(`#e-${CSS.escape(problem.field.split(".")[0])}`);
        if (node) node.textContent = problem.message;
      }
    }
    say(`Not started: ${error.message} (${error.code})`, "error");
  }
}

/** Replaces the page's content; a null stands for "nothing here". */
function show(...nodes) {
  view.replaceChildren(...nodes.filter((n) => n !== null && n !== undefined));
}

function schedule(fn, ms) {
  clearTimeout(timer);
  timer = setTimeout(() => void route(fn), ms);
}

async function route(fn) {
  try {
    if (fn) await fn();
    else {
      const match = /^#\/runs\/([A-Za-z0-9_-]+)/.exec(location.hash);
      clearTimeout(timer);
      await (match ? showRun(match[1]) : location.hash.startsWith("#/new") ? showNew() : showList());
    }
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
      say(`${error.message} (${error.code}). Set a token with the button above.`, "error");
      view.replaceChildren();
    } else {
      say(`Could not load: ${error.message}`, "error");
    }
  }
}

function setupTokenDialog() {
  const dialog = document.getElementById("token-dialog");
  const input = document.getElementById("token-input");
  document.getElementById("token-button").addEventListener("click", () => {
    input.value = token() ?? "";
    dialog.showModal();
  });
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "save" && input.value.trim()) {
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      me = null;
      say("");
      void refreshKillSwitch();
      void route();
    }
  });
}

takeTokenFromFragment();
setupTokenDialog();
document.getElementById("kill-switch-button").addEventListener("click", () => void toggleKillSwitch());
window.addEventListener("hashchange", () => {
  if (keepBanner) keepBanner = false;
  else say("");
  void route();
});
void refreshKillSwitch();
setInterval(() => void refreshKillSwitch(), 10000);
void route();
