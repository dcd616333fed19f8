// A real run against the dry run whose plan it executed: each counter side by side, and every event whose
// outcome differed, with the most likely reason. Pure: the caller reads both runs' page records and the
// differing events as they are now.

export type Outcome =
  { outcome: "processed" } | { outcome: "skipped"; reason: string } | { outcome: "error"; code: string };

export const COMPARED_COUNTERS = [
  "selectedEvents",
  "plannedEvents",
  "total",
  "processed",
  "skipped",
  "errors",
] as const;
export type ComparedCounters = Record<(typeof COMPARED_COUNTERS)[number], number>;

export interface Difference {
  eventId: string;
  /** "processed", "skipped (REASON)", "error (CODE)" or "not examined". */
  dry: string;
  real: string;
  why: string;
}

/** The event as it is now, as far as explaining a difference needs it. */
export interface EventNow {
  exists: boolean;
  processed: boolean;
  processedBy: string | null;
  /** When the event document was written (its create time), epoch ms. */
  arrivedAt: number | null;
}

export interface ComparedRun {
  id: string;
  /** When the run was planned (created), epoch ms. */
  createdAt: number | null;
  capReached: boolean;
}

export const describeOutcome = (o: Outcome | undefined): string =>
  !o
    ? "not examined"
    : o.outcome === "processed"
      ? "processed"
      : o.outcome === "skipped"
        ? `skipped (${o.reason})`
        : `error (${o.code})`;

/** Events examined by either run whose outcome differs (or that only one of them examined), by event id. */
export function differingEvents(dry: ReadonlyMap<string, Outcome>, real: ReadonlyMap<string, Outcome>): string[] {
  const ids = new Set([...dry.keys(), ...real.keys()]);
  return [...ids].filter((id) => describeOutcome(dry.get(id)) !== describeOutcome(real.get(id))).sort();
}

const PRODUCT_CODES = new Set(["PRODUCT_NOT_FOUND", "PRODUCT_INVALID"]);
const ALREADY = new Set(["ALREADY_PROCESSED", "PURCHASE_EXISTS", "ALREADY_REVERSED"]);

/** Why one event's outcome differed between the dry run and the real run. */
export function explain(
  d: Outcome | undefined,
  r: Outcome | undefined,
  now: EventNow | undefined,
  dryRun: ComparedRun,
  realRun: ComparedRun,
): string {
  const byOther = now?.processed === true && now.processedBy !== realRun.id;
  if (d && !r) {
    if (now && !now.exists) return "the event was deleted after the dry run";
    if (byOther)
      return "processed by live traffic (or another run) between the dry run and the real run, so the real run no longer selected it";
    if (realRun.capReached)
      return "the real run's event cap ran out before it (more events were selected ahead of it when the real run was planned)";
    return "the real run did not select it";
  }
  if (!d && r) {
    if (now?.arrivedAt != null && dryRun.createdAt !== null && now.arrivedAt > dryRun.createdAt)
      return "the event arrived after the dry run was planned";
    if (dryRun.capReached) return "the dry run's event cap ran out before it";
    return "the event became selectable after the dry run (for example, marked unprocessed again)";
  }
  if (d && r) {
    if (d.outcome === "error" && PRODUCT_CODES.has(d.code) && r.outcome === "processed")
      return "the product was added to (or fixed in) the catalog between the dry run and the real run";
    if (d.outcome === "error" && d.code === "ORIGINAL_PURCHASE_NOT_FOUND" && r.outcome === "processed")
      return "its purchase was credited between the dry run and the real run";
    if (d.outcome === "processed" && r.outcome === "skipped" && ALREADY.has(r.reason))
      return "processed by live traffic between the dry run and the real run: its ledger entry already existed when the real run reached it";
    if (r.outcome === "error") return `the real run failed on it (${r.code}); the dry run did not`;
    if (r.outcome === "processed" && d.outcome === "error")
      return `the dry run failed on it (${d.code}); what it depended on changed before the real run`;
  }
  return "the data the event depends on changed between the dry run and the real run";
}

/** The counters of both runs, and whether they and every event agree. */
export function counterDifferences(dry: ComparedCounters, real: ComparedCounters): string[] {
  return COMPARED_COUNTERS.filter((k) => dry[k] !== real[k]);
}
