// The New run form (#/new): always a dry run; the API's own per-field messages appear beside the fields.
import { ApiError, formatDuration, type StartRunBody } from "../functions/src/http/client";
import { describeError, el, say, show } from "./dom";
import { goKeepingBanner } from "./navigation";
import { client, READ_ONLY, whoAmI } from "./session";

export async function showNew(): Promise<void> {
  const at = location.hash;
  // A token the API refuses is reported by the router (401/403: set a token), not shown as read-only.
  const { permissions } = await whoAmI();
  const mayStart = permissions.includes("start") && permissions.includes("control");
  if (location.hash !== at) return;
  const today = new Date().toISOString().slice(0, 10);
  const field = (name: string, label: string, input: HTMLElement, hint?: string) =>
    el(
      "div",
      { class: "field" },
      el("label", { for: `f-${name}` }, label),
      input,
      hint ? el("small", {}, hint) : null,
      el("span", { class: "field-error", "data-testid": `error-${name}`, id: `e-${name}` }),
    );
  const input = (name: string, attrs: Record<string, string>) =>
    el("input", { id: `f-${name}`, name, "aria-describedby": `e-${name}`, disabled: !mayStart, ...attrs });
  const form = el(
    "form",
    { "data-testid": "new-run", novalidate: true },
    field(
      "type",
      "Type",
      el(
        "select",
        { id: "f-type", name: "type", disabled: !mayStart },
        el("option", { value: "webhook_replay" }, "webhook_replay — replay events nobody processed"),
        el("option", { value: "reversal_backfill" }, "reversal_backfill — re-apply refunds and chargebacks"),
      ),
    ),
    field("startDate", "From (UTC day)", input("startDate", { type: "date", value: today })),
    field("endDate", "To (UTC day, inclusive)", input("endDate", { type: "date", value: today })),
    field("maxEvents", "Max events", input("maxEvents", { type: "number", min: "1", value: "1000" })),
    field(
      "userIds",
      "Only these wallets (optional canary)",
      el("textarea", {
        id: "f-userIds",
        name: "userIds",
        rows: "2",
        disabled: !mayStart,
        "aria-describedby": "e-userIds",
      }),
      "Wallet ids (PayNow customer ids, or the field WALLET_FIELD names) separated by commas or new lines, up to 100: only events moving those wallets alone. Repair one customer first, check the report, then the whole range.",
    ),
    el(
      "div",
      { class: "actions" },
      el(
        "button",
        {
          type: "submit",
          class: "primary",
          "data-testid": "start-dry-run",
          disabled: !mayStart,
          title: mayStart ? undefined : READ_ONLY,
        },
        "Start dry run",
      ),
    ),
    mayStart
      ? el(
          "p",
          { class: "note" },
          "A new run is always a dry run: it writes no ledger entry and no wallet, only its own records and, on each event it examines, the marks dryRunProcessed, dryRunMigrationId, dryRunAt and countedIn.{run id}. When it has completed, its page offers Execute this plan.",
        )
      : el("p", { class: "note", "data-testid": "read-only" }, READ_ONLY),
  ) as HTMLFormElement;
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
async function digest(value: unknown): Promise<string> {
  const bytes = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(JSON.stringify(value))));
  return [...bytes.slice(0, 12)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function startFromForm(form: HTMLFormElement, formKey: string): Promise<void> {
  const data = new FormData(form);
  for (const node of form.querySelectorAll(".field-error")) node.textContent = "";
  const text = (name: string) => {
    const value = data.get(name);
    return typeof value === "string" ? value : "";
  };
  const body: Record<string, unknown> = {
    type: text("type"),
    startDate: text("startDate"),
    endDate: text("endDate"),
    dryRun: true,
  };
  const max = text("maxEvents").trim();
  if (max !== "") body.maxEvents = Number(max);
  const users = text("userIds")
    .split(/[\s,]+/)
    .filter(Boolean);
  if (users.length > 0) body.userIds = users;
  try {
    // Sent as the form has it: the API checks every field and names each one it refuses.
    const run = await client.start(body as StartRunBody, {
      idempotencyKey: `console-${formKey}-${await digest(body)}`,
    });
    say(
      `Started dry run ${run.migrationId}: ${run.plannedEvents} events planned, about ${formatDuration(run.estimatedSeconds)}.`,
    );
    goKeepingBanner(`#/runs/${run.migrationId}`);
  } catch (error) {
    if (error instanceof ApiError && error.fields.length > 0) {
      for (const problem of error.fields) {
        const node = form.querySelector(`#e-${CSS.escape(problem.field.split(".")[0] ?? "")}`);
        if (node) node.textContent = problem.message;
      }
    }
    say(`Not started: ${describeError(error)}`, "error");
  }
}
