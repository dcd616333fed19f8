// The run page's panels that draw what a run did: its throughput, its comparison with the dry run it
// executed, and what it did (a dry run: would do) to wallets.
import type { PlanComparison, RunDetail } from "../functions/src/http/client";
import { el, row, table } from "./dom";

type Detail = RunDetail["migration"];
type Money = NonNullable<RunDetail["money"]>;

/** A small bar chart of events per second over time, drawn as SVG attributes (no inline styles: CSP). */
export function throughputChart(throughput: RunDetail["throughput"]): Element {
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

export function comparisonView(c: PlanComparison | null): HTMLElement | null {
  if (!c) return null;
  const headline = c.matches
    ? el(
        "p",
        { class: "verdict ok", "data-testid": "comparison-verdict" },
        "Matches its dry run ",
        el("a", { href: `#/runs/${c.dryRunId}` }, c.dryRunId),
        ".",
      )
    : el(
        "p",
        { class: "verdict bad", "data-testid": "comparison-verdict" },
        "Differs from its dry run ",
        el("a", { href: `#/runs/${c.dryRunId}` }, c.dryRunId),
        c.note ? ` — ${c.note}` : ": see below.",
      );
  const dry = c.dry;
  const counters = dry
    ? table(
        "comparison-counters",
        ["", "dry run", "real run"],
        (Object.keys(c.real) as Array<keyof typeof c.real>).map((k) =>
          el(
            "tr",
            { class: c.counterDifferences.includes(k) ? "differs" : "" },
            el("td", {}, k),
            el("td", { class: "num" }, dry[k]),
            el("td", { class: "num" }, c.real[k]),
          ),
        ),
      )
    : null;
  const events = c.differences.length
    ? table(
        "comparison-events",
        ["Event", "Dry run", "Real run", "Why"],
        c.differences.map((d) => row(el("code", {}, d.eventId), d.dry, d.real, d.why)),
      )
    : null;
  const more =
    c.differenceCount > c.differences.length
      ? el("p", { class: "note" }, `${c.differenceCount - c.differences.length} more differing events are not listed.`)
      : null;
  return el(
    "section",
    { "data-testid": "comparison" },
    el("h2", {}, "Compared with its dry run"),
    headline,
    counters,
    events,
    more,
  );
}

/** A signed count of points, with a true minus sign. */
export const signed = (n: number) => `${n < 0 ? "−" : n > 0 ? "+" : ""}${Math.abs(n).toLocaleString("en-US")}`;

/** What a finished run did (a dry run: would do) to wallets, beside its dry run's figures when it executed one. */
export function moneyView(m: Detail, money: Money | null, comparison: PlanComparison | null): HTMLElement | null {
  if (!money) return null;
  const dry = comparison?.money.dry ?? null;
  const rows: Array<[string, number, number | null]> = [
    ["points credited", money.credited, dry && dry.credited],
    ["points reversed", -money.reversed, dry && -dry.reversed],
    ["points reinstated", money.reinstated, dry && dry.reinstated],
    ["net", money.net, dry && dry.net],
    ["wallets touched", money.wallets, dry && dry.wallets],
  ];
  const heads = dry ? ["", "dry run", "real run"] : ["", m.dryRun ? "would move" : "moved"];
  const cell = (v: number | null, count: boolean) => el("td", { class: "num" }, count ? String(v) : signed(v ?? 0));
  const moved = table(
    "money",
    heads,
    rows.map(([label, value, before], i) =>
      el(
        "tr",
        { class: dry && before !== value ? "differs" : "" },
        el("td", {}, label),
        dry ? cell(before, i === 4) : null,
        cell(value, i === 4),
      ),
    ),
  );
  const largest = money.largest.length
    ? table(
        "money-largest",
        ["Wallet", "Change"],
        money.largest.map((w) =>
          el("tr", {}, el("td", {}, el("code", {}, w.userId)), el("td", { class: "num" }, signed(w.points))),
        ),
      )
    : null;
  return el(
    "section",
    {},
    el("h2", {}, m.dryRun ? "What it would do to wallets" : "What it did to wallets"),
    moved,
    largest ? el("h3", {}, "Largest changes") : null,
    largest,
  );
}
