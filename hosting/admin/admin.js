// The runs dashboard: a static page that reads the admin API with the operator's bearer token. The token
// comes from the URL fragment (#token=..., never sent to the server) or the "Set token" dialog, and lives
// in sessionStorage for this tab only.

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

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path) {
  const res = await fetch(path, { method, headers: token() ? { authorization: `Bearer ${token()}` } : {} });
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    throw new ApiError(res.status, body?.error?.code ?? `http_${res.status}`, body?.error?.message ?? res.statusText);
  }
  return body;
}

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
  if (!me) me = await api("GET", "/api/admin/me");
  return me;
}

const READ_ONLY = "Read only: your token may view runs but not change them. An operator (OPERATOR_EMAILS) can.";

async function refreshKillSwitch() {
  const node = document.getElementById("kill-switch");
  try {
    const state = await api("GET", "/api/admin/killSwitch");
    node.className = `badge ${state.enabled ? "enabled" : "disabled"}`;
    node.textContent = state.enabled ? "backfill enabled" : `backfill DISABLED (${state.disabledBy})`;
    node.dataset.enabled = String(state.enabled);
  } catch {
    node.className = "badge";
    node.textContent = "kill switch: unknown";
  }
}

async function showList() {
  const { migrations } = await api("GET", "/api/admin/dataMigrations?limit=50");
  const rows = migrations.map((m) =>
    el(
      "tr",
      { "data-testid": "run-row", "data-id": m.id },
      el("td", {}, el("a", { href: `#/runs/${m.id}` }, m.id)),
      el("td", {}, m.type),
      el("td", {}, `${m.startDate} → ${m.endDate}`),
      el("td", {}, m.dryRun ? "dry run" : "real"),
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
      ? el("p", {}, "No runs yet. Start one with POST /api/jobs/backfill or npm run backfill -- start.")
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
    const result = await api("POST", `/api/admin/dataMigrations/${id}/${action}`);
    say(result.changed ? `${action}: done.` : `${action}: nothing to change.`);
  } catch (error) {
    say(`${action} refused: ${error.message} (${error.code})`, "error");
  }
  await showRun(id);
}

async function showRun(id) {
  const [{ migration: m, chunks, errorSample, errorCount }, caller] = await Promise.all([api("GET", `/api/admin/dataMigrations/${id}`), whoAmI()]);
  const mayControl = caller.permissions.includes("control");
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
  const cells = chunks.map((c) =>
    el(
      "div",
      {
        class: "cell",
        "data-testid": "chunk-cell",
        dataset: { status: c.status, day: c.day },
        title: `${c.day}: ${c.status} (${c.phase} ${c.step}) · examined ${c.total} · processed ${c.processed} · skipped ${c.skipped} · errors ${c.errors}${c.lastError ? ` · last error: ${c.lastError}` : ""}`,
      },
      c.day.slice(8),
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
  view.replaceChildren(
    el("p", {}, el("a", { href: "#/" }, "← all runs")),
    el("h1", {}, m.id, " ", badge(m.status, "run-status")),
    el("p", {}, `${m.type} · ${m.startDate} → ${m.endDate} · ${m.dryRun ? "dry run" : "real run"} · phase ${m.phase} · max ${m.maxEvents} events${m.capReached ? " (cap reached)" : ""}${reason}`),
    progress(m.total, m.plannedEvents),
    el("div", { class: "cards" }, cards),
    el("div", { class: "actions" }, buttons),
    mayControl ? null : el("p", { class: "note", "data-testid": "read-only" }, READ_ONLY),
    el("h2", {}, "Day chunks"),
    legend,
    el("div", { class: "grid", "data-testid": "chunks" }, cells),
    el("h2", {}, `Errors (${errorCount})`),
    errors,
  );
  if (!FINISHED.has(m.status)) schedule(() => showRun(id), 2000);
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
      await (match ? showRun(match[1]) : showList());
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
window.addEventListener("hashchange", () => {
  say("");
  void route();
});
void refreshKillSwitch();
setInterval(() => void refreshKillSwitch(), 10000);
void route();
