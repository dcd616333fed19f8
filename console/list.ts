// The runs list (#/): the latest 50 runs, refreshed every 5 s.
import { badge, el, progress, show, table } from "./dom";
import { schedule } from "./navigation";
import { client } from "./session";

const HEADINGS = [
  "Run",
  "Type",
  "Range",
  "Mode",
  "Status",
  "Progress",
  "Processed",
  "Skipped",
  "Errors",
  "Chunks",
  "Created",
];

export async function showList(): Promise<void> {
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
  show(
    el("h1", {}, "Runs"),
    migrations.length === 0
      ? el(
          "p",
          {},
          "No runs yet. Start one with New run (a dry run first), npm run backfill -- start, or POST /api/jobs/backfill.",
        )
      : table("runs", HEADINGS, rows),
  );
  schedule(showList, 5000);
}
