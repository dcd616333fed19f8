// An oracle for the model-based test, written from the README's rules alone. It imports nothing from
// functions/src: it keeps its own picture of the store (events, products, ledger) and says, for a run over
// that store, which events the run examines and what each one becomes, and how the store changes.
//
// The rules, as the README states them:
// - A webhook_replay examines the events in its range (UTC days of createdAt, both ends included) that are
//   not processed, purchases (every event that is not a refund or chargeback) before refunds and
//   chargebacks, the earliest first; a reversal_backfill examines every refund and chargeback in its range,
//   processed or not. A run examines at most maxEvents of them, the earliest ones, purchases first.
// - An invalid event is an error (INVALID_EVENT). A purchase whose order has its entry already is skipped
//   (and, in a real replay, marked processed); otherwise an unknown product is PRODUCT_NOT_FOUND, a product
//   without integer points above 0 is PRODUCT_INVALID; otherwise it creates purchase_{orderId} worth
//   points × quantity for the event's user, credits the wallet and marks the event processed.
// - A refund or chargeback whose order is reversed already is skipped (a replay marks it processed; a
//   reversal backfill leaves marks alone); without its order's purchase entry it is
//   ORIGINAL_PURCHASE_NOT_FOUND; otherwise it creates reversal_{orderId}, minus the purchase's points, for
//   the purchase's user, and marks the event processed.
// - A canary (userIds) examines, by the same rules, only the events whose userId is one of its users.
// - A dry run decides the same against the ledger plus its own would-be entries, and writes nothing.
// - Every wallet equals the sum of its user's entries.
// - A retry re-examines the run's failed events, purchases first, and replaces each error by its outcome.

export type Result = "processed" | "skipped" | "error";
export interface Outcome {
  result: Result;
  /** The error code, or the skip reason. */
  detail: string | null;
}

export interface OracleEvent {
  id: string;
  createdAtMs: number;
  /** The document's fields besides createdAt, as written. */
  data: Record<string, unknown>;
}

export interface Entry {
  userId: string;
  points: number;
}

export interface Counters {
  total: number;
  processed: number;
  skipped: number;
  errors: number;
}

export interface RunSpec {
  id: string;
  type: "webhook_replay" | "reversal_backfill";
  startDate: string;
  endDate: string;
  dryRun: boolean;
  maxEvents: number;
  /** A canary: only these users' events (by the event's own userId); null or absent for everyone's. */
  userIds?: string[] | null;
}

export interface Prediction {
  /** Examined events in the order the rules examine them, with their outcomes. */
  outcomes: Map<string, Outcome>;
  counters: Counters;
  errorIds: string[];
}

const REVERSALS = new Set(["order.refunded", "order.chargeback"]);
const TYPES = new Set(["order.completed", "order.refunded", "order.chargeback"]);
const DAY_MS = 86_400_000;

const isReversal = (e: OracleEvent) => REVERSALS.has(e.data.type as string);
const usableId = (v: unknown) => typeof v === "string" && v.length > 0 && v.length <= 700 && !v.includes("/") && v !== "." && v !== ".." && !/^__.*__$/.test(v);

/** Whether an event's fields are what the README says a valid event has. */
export function isValidEvent(e: OracleEvent): boolean {
  const d = e.data;
  const q = d.quantity;
  const quantityOk = q === undefined || q === null || (typeof q === "number" && Number.isInteger(q) && q >= 1);
  const processedOk = d.processed === undefined || d.processed === null || typeof d.processed === "boolean";
  return d.provider === "paynow" && TYPES.has(d.type as string) && usableId(d.orderId) && usableId(d.userId) && usableId(d.productId) && quantityOk && processedOk;
}

const quantityOf = (e: OracleEvent) => (typeof e.data.quantity === "number" ? e.data.quantity : 1);
const purchaseId = (e: OracleEvent) => `purchase_${e.data.orderId as string}`;
const reversalId = (e: OracleEvent) => `reversal_${e.data.orderId as string}`;
const byTime = (a: OracleEvent, b: OracleEvent) => a.createdAtMs - b.createdAtMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
const dayMs = (day: string) => Date.parse(`${day}T00:00:00.000Z`);

export class Oracle {
  readonly events = new Map<string, OracleEvent>();
  /** Product documents as stored (absent: not in the catalog). */
  readonly products = new Map<string, Record<string, unknown>>();
  readonly ledger = new Map<string, Entry>();
  /** Each dry run's would-be entries, by run. */
  private readonly shadows = new Map<string, Map<string, Entry>>();
  /** What each run's last examination of an event decided (for retries). */
  private readonly decided = new Map<string, Map<string, Outcome>>();

  processed(e: OracleEvent): boolean {
    return e.data.processed === true;
  }

  wallets(): Map<string, number> {
    const sums = new Map<string, number>();
    for (const entry of this.ledger.values()) sums.set(entry.userId, (sums.get(entry.userId) ?? 0) + entry.points);
    return sums;
  }

  /** The events a run examines, in the order the rules examine them. */
  selection(run: RunSpec): OracleEvent[] {
    const from = dayMs(run.startDate);
    const to = dayMs(run.endDate) + DAY_MS;
    const users = run.userIds ? new Set(run.userIds) : null;
    const inRange = [...this.events.values()]
      .filter((e) => e.createdAtMs >= from && e.createdAtMs < to && (!users || users.has(e.data.userId as string)))
      .sort(byTime);
    const purchases = run.type === "webhook_replay" ? inRange.filter((e) => !isReversal(e) && !this.processed(e)) : [];
    const reversals = inRange.filter((e) => isReversal(e) && (run.type === "reversal_backfill" || !this.processed(e)));
    return [...purchases, ...reversals].slice(0, run.maxEvents);
  }

  /** Decides one event for a run, against `ledger` (a dry run's view: the ledger and its shadow), and applies it there. */
  private decide(run: RunSpec, e: OracleEvent, view: Map<string, Entry>, write: (id: string, entry: Entry, e: OracleEvent) => void): Outcome {
    if (!isValidEvent(e)) return { result: "error", detail: "INVALID_EVENT" };
    if (run.type === "webhook_replay" && this.processed(e) && e.data.processedBy !== run.id) return { result: "skipped", detail: "ALREADY_PROCESSED" };
    const mark = () => {
      if (!run.dryRun && !this.processed(e)) Object.assign(e.data, { processed: true, processedBy: run.id });
    };
    if (!isReversal(e)) {
      if (view.has(purchaseId(e))) {
        mark();
        return { result: "skipped", detail: "PURCHASE_EXISTS" };
      }
      const product = this.products.get(e.data.productId as string);
      if (!product) return { result: "error", detail: "PRODUCT_NOT_FOUND" };
      const points = product.points;
      if (typeof points !== "number" || !Number.isInteger(points) || points <= 0) return { result: "error", detail: "PRODUCT_INVALID" };
      write(purchaseId(e), { userId: e.data.userId as string, points: points * quantityOf(e) }, e);
      mark();
      return { result: "processed", detail: null };
    }
    if (view.has(reversalId(e))) {
      if (run.type === "webhook_replay") mark();
      return { result: "skipped", detail: "ALREADY_REVERSED" };
    }
    const purchase = view.get(purchaseId(e));
    if (!purchase) return { result: "error", detail: "ORIGINAL_PURCHASE_NOT_FOUND" };
    write(reversalId(e), { userId: purchase.userId, points: -purchase.points }, e);
    mark();
    return { result: "processed", detail: null };
  }

  /** The store's ledger as a run sees it, and where its writes go. */
  private viewFor(run: RunSpec) {
    if (!run.dryRun) return { view: this.ledger, write: (id: string, entry: Entry) => void this.ledger.set(id, entry) };
    const shadow = this.shadows.get(run.id) ?? new Map<string, Entry>();
    this.shadows.set(run.id, shadow);
    const view = new Map([...this.ledger, ...shadow]);
    return { view, write: (id: string, entry: Entry) => void (shadow.set(id, entry), view.set(id, entry)) };
  }

  /** Runs `run` over the store the oracle holds, changing it as the rules say; returns what the run must report. */
  run(run: RunSpec): Prediction {
    const selected = this.selection(run);
    const { view, write } = this.viewFor(run);
    const outcomes = new Map<string, Outcome>();
    for (const e of selected) outcomes.set(e.id, this.decide(run, e, view, write));
    this.decided.set(run.id, new Map(outcomes));
    return summarize(outcomes);
  }

  /** A retry of `run`: its failed events again, purchases first, each error replaced by its new outcome. */
  retry(run: RunSpec): Prediction {
    const all = this.decided.get(run.id) ?? new Map<string, Outcome>();
    const failed = [...all.entries()].filter(([, o]) => o.result === "error").map(([id]) => this.events.get(id) as OracleEvent);
    const ordered = [...failed.filter((e) => !isReversal(e)).sort(byTime), ...failed.filter(isReversal).sort(byTime)];
    const { view, write } = this.viewFor(run);
    for (const e of ordered) all.set(e.id, this.decide(run, e, view, write));
    this.decided.set(run.id, all);
    return summarize(all);
  }

  /**
   * Takes in what a run that was stopped part way (cancelled) says it did, checking each claim against the
   * rules as it is applied: what it processed first, then what it skipped, purchases before reversals.
   * Returns the claims the rules disagree with (none, if the run kept the rules).
   */
  absorb(run: RunSpec, claims: ReadonlyMap<string, Result>): string[] {
    const { view, write } = this.viewFor(run);
    const rank: Record<Result, number> = { processed: 0, skipped: 1, error: 2 };
    const events = [...claims.keys()].map((id) => this.events.get(id) as OracleEvent);
    const order = (list: OracleEvent[]) => list.sort((a, b) => rank[claims.get(a.id) as Result] - rank[claims.get(b.id) as Result] || byTime(a, b));
    const disagreements: string[] = [];
    const outcomes = new Map<string, Outcome>();
    for (const e of [...order(events.filter((x) => !isReversal(x))), ...order(events.filter(isReversal))]) {
      const outcome = this.decide(run, e, view, write);
      outcomes.set(e.id, outcome);
      if (outcome.result !== claims.get(e.id)) disagreements.push(`${e.id}: the run says ${claims.get(e.id) ?? "?"}, the rules say ${outcome.result}`);
    }
    this.decided.set(run.id, outcomes);
    return disagreements;
  }
}

function summarize(outcomes: ReadonlyMap<string, Outcome>): Prediction {
  const counters = { total: outcomes.size, processed: 0, skipped: 0, errors: 0 };
  const errorIds: string[] = [];
  for (const [id, o] of outcomes) {
    if (o.result === "processed") counters.processed++;
    else if (o.result === "skipped") counters.skipped++;
    else {
      counters.errors++;
      errorIds.push(id);
    }
  }
  return { outcomes: new Map(outcomes), counters, errorIds: errorIds.sort() };
}
