// An oracle for the model-based test, written from the README's rules alone. It imports nothing from
// functions/src: it keeps its own picture of the store (PayNow events, products, ledger) and says, for a
// run over that store (or for live processing), which events are examined and what each one becomes, and
// how the store changes.
//
// The rules, as the README states them:
// - Money events are ON_ORDER_COMPLETED, ON_REFUND, ON_CHARGEBACK and ON_CHARGEBACK_CLOSED; no other type
//   is ever examined or counted. A run examines, across its range (UTC days of createdAt, both ends
//   included), orders first, then refunds and chargebacks, then closings, each phase in
//   (createdAt, event_id) order. A webhook_replay takes events not processed; a reversal_backfill every
//   refund, chargeback and closing, processed or not. maxEvents caps it: the first maxEvents of that order.
// - A canary (userIds) examines, of those, only the events whose every wallet is one of its userIds: an
//   order's line recipients; for a refund, chargeback or closing the wallets of its order's purchase entries
//   (none: not examined). Its cap counts everyone's events.
// - A wallet is the customer's field named by WALLET_FIELD (`id`, `steam.id`, `minecraft.id`, `profile.id`)
//   of the line's gift_to_customer when set, else of the order's customer.
// - An event without what its type needs is INVALID_EVENT: an order needs body.id, body.customer, integer
//   body.total_amount ≥ 0, non-empty body.lines, each with a unique id, product_id, integer quantity ≥ 1,
//   integer total_amount ≥ 0 and a usable wallet; a refund body.order_id and integer
//   body.store_refund_amount ≥ 0; a chargeback body.order_id; a closing body.order_id and
//   body.chargeback_status won or lost.
// - A replay skips an event processed by someone else (ALREADY_PROCESSED).
// - An order one of whose lines has its purchase entry already is skipped (PURCHASE_EXISTS: PayNow's line
//   ids are the order's, a redelivery carries the same); else a missing product is
//   PRODUCT_NOT_FOUND, one without integer points above 0 PRODUCT_INVALID; else one purchase entry per line,
//   points × quantity, to the line's wallet.
// - A refund or chargeback: no purchase entries, ORIGINAL_PURCHASE_NOT_FOUND; entries it wrote already,
//   ALREADY_REVERSED; every line reversed, ALREADY_REVERSED; a refund of the order's total or of the open
//   lines' sum reverses every open line, else the first open line of exactly that amount, else
//   REFUND_UNMATCHED; a chargeback reverses every open line.
// - A closing: lost is skipped (CHARGEBACK_LOST); no purchase entries, ORIGINAL_PURCHASE_NOT_FOUND; entries
//   it wrote already, ALREADY_REINSTATED; no line reversed by a chargeback, CHARGEBACK_NOT_REVERSED; all of
//   those reinstated, ALREADY_REINSTATED; else one reinstatement per such line.
// - What a real replay processes or skips it marks processed; a reversal backfill marks only what it
//   processes; errors stay unmarked. A dry run decides the same against the ledger plus its own would-be
//   entries, and writes nothing. Live processing decides like a replay with no run.
// - Every wallet equals the sum of its entries.
// - A retry re-examines the run's failed events, by phase and time, and replaces each error by its outcome.

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
  kind: "purchase" | "reversal" | "reinstatement";
  orderId: string;
  lineId: string;
  lineIndex: number;
  userId: string;
  points: number;
  lineTotal: number;
  orderTotal: number;
  reason: "refund" | "chargeback" | null;
  sourceEventId: string;
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
  /** A canary's wallets; null or absent for everyone's. */
  userIds?: string[] | null;
}

export interface Prediction {
  outcomes: Map<string, Outcome>;
  counters: Counters;
  errorIds: string[];
}

type Phase = "purchases" | "reversals" | "closings";
const PHASE_OF: Record<string, Phase> = {
  ON_ORDER_COMPLETED: "purchases",
  ON_REFUND: "reversals",
  ON_CHARGEBACK: "reversals",
  ON_CHARGEBACK_CLOSED: "closings",
};
const PHASES: Phase[] = ["purchases", "reversals", "closings"];
const DAY_MS = 86_400_000;

type Json = Record<string, unknown>;
const obj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const usableId = (v: unknown): v is string =>
  typeof v === "string" &&
  v.length > 0 &&
  v.length <= 200 &&
  !v.includes("/") &&
  v !== "." &&
  v !== ".." &&
  !/^__.*__$/.test(v);
const amount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const byTime = (a: OracleEvent, b: OracleEvent) =>
  a.createdAtMs - b.createdAtMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
const dayMs = (day: string) => Date.parse(`${day}T00:00:00.000Z`);
const phaseOf = (e: OracleEvent): Phase | undefined => PHASE_OF[e.data.event_type as string];

interface Line {
  id: string;
  productId: string;
  quantity: number;
  total: number;
  wallet: string;
}

export class Oracle {
  readonly events = new Map<string, OracleEvent>();
  /** Product documents as stored (absent: not in the catalog). */
  readonly products = new Map<string, Record<string, unknown>>();
  readonly ledger = new Map<string, Entry>();
  private readonly shadows = new Map<string, Map<string, Entry>>();
  private readonly decided = new Map<string, Map<string, Outcome>>();

  constructor(readonly walletField: string = "id") {}

  wallets(): Map<string, number> {
    const sums = new Map<string, number>();
    for (const entry of this.ledger.values()) sums.set(entry.userId, (sums.get(entry.userId) ?? 0) + entry.points);
    return sums;
  }

  private wallet(customer: unknown): string | null {
    let v: unknown = customer;
    for (const key of this.walletField.split(".")) v = obj(v) ? v[key] : undefined;
    return usableId(v) ? v : null;
  }

  /** An order's lines with their wallets, or null when the order is not valid. */
  private lines(e: OracleEvent): { orderId: string; total: number; lines: Line[] } | null {
    const b = e.data.body;
    if (
      !obj(b) ||
      !usableId(b.id) ||
      !obj(b.customer) ||
      !amount(b.total_amount) ||
      !Array.isArray(b.lines) ||
      b.lines.length === 0
    )
      return null;
    const lines: Line[] = [];
    for (const l of b.lines as unknown[]) {
      if (!obj(l) || !usableId(l.id) || lines.some((x) => x.id === l.id) || !usableId(l.product_id)) return null;
      if (
        typeof l.quantity !== "number" ||
        !Number.isSafeInteger(l.quantity) ||
        l.quantity < 1 ||
        !amount(l.total_amount)
      )
        return null;
      const wallet = this.wallet(
        l.gift_to_customer === null || l.gift_to_customer === undefined ? b.customer : l.gift_to_customer,
      );
      if (wallet === null) return null;
      lines.push({ id: l.id, productId: l.product_id, quantity: l.quantity, total: l.total_amount, wallet });
    }
    return { orderId: b.id, total: b.total_amount, lines };
  }

  private valid(e: OracleEvent): boolean {
    const b = e.data.body;
    switch (e.data.event_type) {
      case "ON_ORDER_COMPLETED":
        return this.lines(e) !== null;
      case "ON_REFUND":
        return obj(b) && usableId(b.order_id) && amount(b.store_refund_amount);
      case "ON_CHARGEBACK":
        return obj(b) && usableId(b.order_id);
      case "ON_CHARGEBACK_CLOSED":
        return obj(b) && usableId(b.order_id) && (b.chargeback_status === "won" || b.chargeback_status === "lost");
      default:
        return false;
    }
  }

  private orderOf(e: OracleEvent): string {
    const b = e.data.body as Json;
    return (e.data.event_type === "ON_ORDER_COMPLETED" ? b.id : b.order_id) as string;
  }

  /** The wallets an event would move, by the canary's rule; null when it names none. */
  private walletsOf(e: OracleEvent, view: ReadonlyMap<string, Entry>): string[] | null {
    if (!this.valid(e)) return null;
    if (e.data.event_type === "ON_ORDER_COMPLETED")
      return (this.lines(e) as { lines: Line[] }).lines.map((l) => l.wallet);
    const orderId = this.orderOf(e);
    const wallets = [...view.values()]
      .filter((x) => x.kind === "purchase" && x.orderId === orderId)
      .map((x) => x.userId);
    return wallets.length > 0 ? wallets : null;
  }

  /** The events a run would examine were it not a canary, in the order the rules examine them, capped. */
  selection(run: RunSpec): OracleEvent[] {
    const from = dayMs(run.startDate);
    const to = dayMs(run.endDate) + DAY_MS;
    const phases = run.type === "webhook_replay" ? PHASES : PHASES.slice(1);
    const inRange = [...this.events.values()].filter((e) => e.createdAtMs >= from && e.createdAtMs < to).sort(byTime);
    const open = (e: OracleEvent) => run.type === "reversal_backfill" || e.data.processed !== true;
    return phases.flatMap((p) => inRange.filter((e) => phaseOf(e) === p && open(e))).slice(0, run.maxEvents);
  }

  /** Decides one event against `view` (a dry run's: the ledger and its shadow), writing there through `write`. */
  private decide(
    run: { id: string | null; type: RunSpec["type"]; dryRun: boolean },
    e: OracleEvent,
    view: Map<string, Entry>,
    write: (id: string, entry: Entry) => void,
  ): Outcome {
    if (!this.valid(e)) return { result: "error", detail: "INVALID_EVENT" };
    const processed = e.data.processed === true;
    if (run.type === "webhook_replay" && processed && (run.id === null || e.data.processedBy !== run.id))
      return { result: "skipped", detail: "ALREADY_PROCESSED" };
    const mark = () => {
      if (!run.dryRun && !processed) Object.assign(e.data, { processed: true, processedBy: run.id });
    };
    const skip = (detail: string) => {
      if (run.type === "webhook_replay") mark();
      return { result: "skipped" as const, detail };
    };
    const error = (detail: string) => ({ result: "error" as const, detail });
    const done = (entries: Array<[string, Entry]>) => {
      for (const [id, entry] of entries) write(id, entry);
      mark();
      return { result: "processed" as const, detail: null };
    };
    const orderId = this.orderOf(e);
    const entries = [...view].filter(([, x]) => x.orderId === orderId);
    const purchases = entries
      .filter(([, x]) => x.kind === "purchase")
      .map(([, x]) => x)
      .sort((a, b) => a.lineIndex - b.lineIndex);
    const has = (kind: Entry["kind"], lineId: string) => view.get(`${kind}_${orderId}_${lineId}`);

    if (e.data.event_type === "ON_ORDER_COMPLETED") {
      const order = this.lines(e) as { total: number; lines: Line[] };
      if (order.lines.some((l) => has("purchase", l.id))) return skip("PURCHASE_EXISTS");
      const made: Array<[string, Entry]> = [];
      for (const [index, line] of order.lines.entries()) {
        const product = this.products.get(line.productId);
        if (!product) return error("PRODUCT_NOT_FOUND");
        const points = product.points;
        if (typeof points !== "number" || !Number.isInteger(points) || points <= 0) return error("PRODUCT_INVALID");
        made.push([
          `purchase_${orderId}_${line.id}`,
          {
            kind: "purchase",
            orderId,
            lineId: line.id,
            lineIndex: index,
            userId: line.wallet,
            points: points * line.quantity,
            lineTotal: line.total,
            orderTotal: order.total,
            reason: null,
            sourceEventId: e.id,
          },
        ]);
      }
      return done(made);
    }
    const follow = (kind: "reversal" | "reinstatement", p: Entry, reason: Entry["reason"]): [string, Entry] => [
      `${kind}_${orderId}_${p.lineId}`,
      { ...p, kind, points: kind === "reversal" ? -p.points : p.points, reason, sourceEventId: e.id },
    ];
    const body = e.data.body as Json;
    if (e.data.event_type === "ON_CHARGEBACK_CLOSED") {
      if (body.chargeback_status === "lost") return skip("CHARGEBACK_LOST");
      if (purchases.length === 0) return error("ORIGINAL_PURCHASE_NOT_FOUND");
      if (entries.some(([, x]) => x.kind === "reinstatement" && x.sourceEventId === e.id))
        return skip("ALREADY_REINSTATED");
      const charged = purchases.filter((p) => has("reversal", p.lineId)?.reason === "chargeback");
      if (charged.length === 0) return error("CHARGEBACK_NOT_REVERSED");
      const todo = charged.filter((p) => !has("reinstatement", p.lineId));
      if (todo.length === 0) return skip("ALREADY_REINSTATED");
      return done(todo.map((p) => follow("reinstatement", p, "chargeback")));
    }
    if (purchases.length === 0) return error("ORIGINAL_PURCHASE_NOT_FOUND");
    if (entries.some(([, x]) => x.kind === "reversal" && x.sourceEventId === e.id)) return skip("ALREADY_REVERSED");
    const open = purchases.filter((p) => !has("reversal", p.lineId));
    if (open.length === 0) return skip("ALREADY_REVERSED");
    if (e.data.event_type === "ON_CHARGEBACK") return done(open.map((p) => follow("reversal", p, "chargeback")));
    const refund = body.store_refund_amount as number;
    const orderTotal = (purchases[0] as Entry).orderTotal;
    const openSum = open.reduce((n, p) => n + p.lineTotal, 0);
    if (refund === orderTotal || refund === openSum) return done(open.map((p) => follow("reversal", p, "refund")));
    const line = open.find((p) => p.lineTotal === refund);
    if (!line) return error("REFUND_UNMATCHED");
    return done([follow("reversal", line, "refund")]);
  }

  /** The store's ledger as a run sees it, and where its writes go. */
  private viewFor(run: { id: string | null; dryRun: boolean }) {
    if (!run.dryRun || run.id === null)
      return { view: this.ledger, write: (id: string, entry: Entry) => void this.ledger.set(id, entry) };
    const shadow = this.shadows.get(run.id) ?? new Map<string, Entry>();
    this.shadows.set(run.id, shadow);
    const view = new Map([...this.ledger, ...shadow]);
    return { view, write: (id: string, entry: Entry) => void (shadow.set(id, entry), view.set(id, entry)) };
  }

  /** Live processing of these events, in the order given (as they arrived). */
  live(ids: readonly string[]): Map<string, Outcome> {
    const { view, write } = this.viewFor({ id: null, dryRun: false });
    const out = new Map<string, Outcome>();
    for (const id of ids) {
      const e = this.events.get(id) as OracleEvent;
      if (phaseOf(e)) out.set(id, this.decide({ id: null, type: "webhook_replay", dryRun: false }, e, view, write));
    }
    return out;
  }

  /** Runs `run` over the store the oracle holds, changing it as the rules say; returns what the run must report. */
  run(run: RunSpec): Prediction {
    const { view, write } = this.viewFor(run);
    const outcomes = new Map<string, Outcome>();
    const canary = run.userIds ? new Set(run.userIds) : null;
    for (const e of this.selection(run)) {
      if (canary) {
        const wallets = this.walletsOf(e, view);
        if (wallets === null || !wallets.every((w) => canary.has(w))) continue;
      }
      outcomes.set(e.id, this.decide(run, e, view, write));
    }
    this.decided.set(run.id, new Map(outcomes));
    return summarize(outcomes);
  }

  /** A retry of `run`: its failed events again, by phase and time, each error replaced by its new outcome. */
  retry(run: RunSpec): Prediction {
    const all = this.decided.get(run.id) ?? new Map<string, Outcome>();
    const failed = [...all.entries()]
      .filter(([, o]) => o.result === "error")
      .map(([id]) => this.events.get(id) as OracleEvent);
    const ordered = PHASES.flatMap((p) => failed.filter((e) => phaseOf(e) === p).sort(byTime));
    const { view, write } = this.viewFor(run);
    for (const e of ordered) all.set(e.id, this.decide(run, e, view, write));
    this.decided.set(run.id, all);
    return summarize(all);
  }

  /**
   * Takes in what a run that was stopped part way (cancelled) says it did, checking each claim against the
   * rules as it is applied, phase by phase. Refunds, chargebacks and closings are decided one day after
   * another in time order (README, "three phases"), so their claims are applied in time order; a day's
   * orders are decided with every day at once, so there what the run processed goes first, then what it
   * skipped, then its errors, each in time order (an order PayNow sent twice on two days may have been
   * credited from either). Returns the claims the rules disagree with (none, if the run kept the rules).
   */
  absorb(run: RunSpec, claims: ReadonlyMap<string, Result>): string[] {
    const { view, write } = this.viewFor(run);
    const rank: Record<Result, number> = { processed: 0, skipped: 1, error: 2 };
    const events = [...claims.keys()].map((id) => this.events.get(id) as OracleEvent);
    const disagreements: string[] = [];
    const outcomes = new Map<string, Outcome>();
    for (const p of PHASES) {
      const mine = events
        .filter((e) => phaseOf(e) === p)
        .sort(
          (a, b) =>
            (p === "purchases" ? rank[claims.get(a.id) as Result] - rank[claims.get(b.id) as Result] : 0) ||
            byTime(a, b),
        );
      for (const e of mine) {
        const outcome = this.decide(run, e, view, write);
        outcomes.set(e.id, outcome);
        if (outcome.result !== claims.get(e.id))
          disagreements.push(
            `${e.id}: the run says ${claims.get(e.id) ?? "?"}, the rules say ${outcome.result} (${outcome.detail ?? ""})`,
          );
      }
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
