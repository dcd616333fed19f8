// The money rules over PayNow events, as a pure function: given some events and every ledger entry of the
// orders they are about, decide each event's outcome and the writes that apply it. Events are decided in
// the order given (a caller passes one order's events in `(createdAt, event_id)` order); later events
// see the entries earlier ones create. The Firestore edge reads the entries and commits the writes in one
// transaction, and every entry is created only if absent, so a decision is never applied twice.
//
// The rules (README, "The money rules"):
// - a purchase (ON_ORDER_COMPLETED) writes one `purchase` entry per line, crediting the product's points ×
//   quantity to the line's recipient; all of an event's lines or none; an order whose lines have their
//   entries is skipped;
// - a refund (ON_REFUND) reverses the whole order or one whole line, matched by `store_refund_amount`;
// - a chargeback (ON_CHARGEBACK) reverses every line not yet reversed;
// - a reversal entry exists at most once per line, whatever the events;
// - a closing (ON_CHARGEBACK_CLOSED) `won` reinstates every line a chargeback reversed, once; `lost` is skipped.
import { moneyEntryId, type EntryKind, type EntryMove, type MoneyEntry } from "./ledger";
import {
  countedIn,
  type MoneyContext,
  type MoneyErrorCode,
  type MoneyIntent,
  type MoneyOutcome,
  type MoneySkipReason,
  type MoneyState,
  type StoredEvent,
} from "./outcomes";
import { moneyFacts, type MoneyFacts } from "./paynow";

const moveOf = (id: string, e: MoneyEntry): EntryMove => ({ id, kind: e.kind, userId: e.userId, points: e.points });

/** Decides every event in order; each later event sees the entries the earlier ones create. */
export function decideMoney(
  ctx: MoneyContext,
  events: readonly StoredEvent[],
  state: MoneyState,
): { outcomes: MoneyOutcome[]; intents: MoneyIntent[] } {
  const created = new Map<string, MoneyEntry>();
  const intents: MoneyIntent[] = [];
  const credits = new Map<string, number>();

  /** The order's entries as this decision sees them: the ledger, a dry run's shadow, and this call's own. */
  const entriesOf = (orderId: string): Array<[string, MoneyEntry]> => {
    const all = new Map<string, MoneyEntry>();
    for (const source of ctx.dryRun ? [state.ledger, state.shadow, created] : [state.ledger, created]) {
      for (const [id, e] of source) if (e.orderId === orderId && !all.has(id)) all.set(id, e);
    }
    return [...all];
  };

  const isMine = (e: MoneyEntry, eventId: string) =>
    ctx.runId !== null && e.migrationId === ctx.runId && e.sourceEventId === eventId;
  const markDone = (event: StoredEvent, processed: boolean) => {
    if (!ctx.dryRun && !processed) intents.push({ kind: "markProcessed", eventId: event.id });
  };

  const write = (event: StoredEvent, processed: boolean, entries: Array<[string, MoneyEntry]>): MoneyOutcome => {
    const canary = ctx.userIds;
    if (canary && entries.some(([, e]) => !canary.includes(e.userId)))
      return { eventId: event.id, result: "skipped", reason: "OUTSIDE_CANARY" };
    for (const [id, entry] of entries) {
      created.set(id, entry);
      intents.push({ kind: "createEntry", target: ctx.dryRun ? "shadow" : "ledger", id, entry });
      if (!ctx.dryRun) credits.set(entry.userId, (credits.get(entry.userId) ?? 0) + entry.points);
    }
    if (ctx.dryRun) intents.push({ kind: "markDryRun", eventId: event.id });
    else markDone(event, processed);
    return { eventId: event.id, result: "processed", entries: entries.map(([id, e]) => moveOf(id, e)) };
  };

  /** Entries this event wrote already: ours from an earlier delivery (counted again), or someone else's. */
  const already = (
    event: StoredEvent,
    processed: boolean,
    own: Array<[string, MoneyEntry]>,
    reason: MoneySkipReason,
    markSkip: boolean,
  ): MoneyOutcome => {
    if (own.every(([, e]) => isMine(e, event.id)))
      return { eventId: event.id, result: "processed", entries: own.map(([id, e]) => moveOf(id, e)) };
    if (markSkip) markDone(event, processed);
    return { eventId: event.id, result: "skipped", reason };
  };

  const error = (event: StoredEvent, code: MoneyErrorCode, message: string): MoneyOutcome => ({
    eventId: event.id,
    result: "error",
    code,
    message,
  });
  const skip = (event: StoredEvent, processed: boolean, reason: MoneySkipReason, markSkip: boolean): MoneyOutcome => {
    if (markSkip) markDone(event, processed);
    return { eventId: event.id, result: "skipped", reason };
  };
  // A reversal backfill leaves the marks of what it only looked at alone; a replay marks what needs nothing.
  const marksSkips = ctx.mode !== "reversal_backfill";

  const purchase = (
    event: StoredEvent,
    processed: boolean,
    facts: Extract<MoneyFacts, { type: "ON_ORDER_COMPLETED" }>,
  ): MoneyOutcome => {
    // PayNow's line ids are the order's: a redelivery names the same lines.
    const lineIds = new Set(facts.lines.map((l) => l.lineId));
    const existing = entriesOf(facts.orderId).filter(([, e]) => e.kind === "purchase" && lineIds.has(e.lineId));
    if (existing.length > 0) return already(event, processed, existing, "PURCHASE_EXISTS", true);
    const entries: Array<[string, MoneyEntry]> = [];
    for (const [index, line] of facts.lines.entries()) {
      const product = state.products.get(line.productId);
      const where = `order ${facts.orderId}, line ${line.lineId}`;
      if (product === undefined)
        return error(event, "PRODUCT_NOT_FOUND", `Product not found: ${line.productId} (${where})`);
      if (product === null)
        return error(event, "PRODUCT_INVALID", `Product ${line.productId} has no valid points value (${where})`);
      const points = product.points * line.quantity;
      if (!Number.isSafeInteger(points))
        return error(event, "INVALID_EVENT", `Invalid event: quantity × points is too large (${where})`);
      entries.push([
        moneyEntryId("purchase", facts.orderId, line.lineId),
        {
          kind: "purchase",
          orderId: facts.orderId,
          lineId: line.lineId,
          lineIndex: index,
          userId: line.wallet,
          productId: line.productId,
          points,
          lineTotalAmount: line.amount,
          orderTotalAmount: facts.amount,
          sourceEventId: event.id,
          reason: null,
          migrationId: ctx.runId,
        },
      ]);
    }
    return write(event, processed, entries);
  };

  /** The order's purchase entries in line order, with the line's reversal and reinstatement if any. */
  const linesOf = (orderId: string) => {
    const all = entriesOf(orderId);
    const byId = new Map(all);
    return all
      .filter(([, e]) => e.kind === "purchase")
      .sort(([, a], [, b]) => a.lineIndex - b.lineIndex)
      .map(([, p]) => ({
        purchase: p,
        reversal: byId.get(moneyEntryId("reversal", orderId, p.lineId)) ?? null,
        reinstatement: byId.get(moneyEntryId("reinstatement", orderId, p.lineId)) ?? null,
      }));
  };
  const ownOf = (orderId: string, eventId: string, kind: EntryKind) =>
    entriesOf(orderId).filter(([, e]) => e.kind === kind && e.sourceEventId === eventId);
  const noPurchase = (event: StoredEvent, orderId: string) =>
    error(
      event,
      "ORIGINAL_PURCHASE_NOT_FOUND",
      `Original purchase entries not found for order ${orderId}: replay its ON_ORDER_COMPLETED first`,
    );

  const follow = (
    event: StoredEvent,
    kind: "reversal" | "reinstatement",
    p: MoneyEntry,
    reason: MoneyEntry["reason"],
  ): [string, MoneyEntry] => [
    moneyEntryId(kind, p.orderId, p.lineId),
    {
      ...p,
      kind,
      points: kind === "reversal" ? -p.points : p.points,
      sourceEventId: event.id,
      reason,
      migrationId: ctx.runId,
    },
  ];

  const reverse = (
    event: StoredEvent,
    processed: boolean,
    facts: Extract<MoneyFacts, { type: "ON_REFUND" | "ON_CHARGEBACK" }>,
  ): MoneyOutcome => {
    const lines = linesOf(facts.orderId);
    if (lines.length === 0) return noPurchase(event, facts.orderId);
    const own = ownOf(facts.orderId, event.id, "reversal");
    if (own.length > 0) return already(event, processed, own, "ALREADY_REVERSED", marksSkips);
    const open = lines.filter((l) => l.reversal === null);
    if (open.length === 0) return skip(event, processed, "ALREADY_REVERSED", marksSkips);
    const reason = facts.type === "ON_REFUND" ? "refund" : "chargeback";
    let targets = open;
    if (facts.type === "ON_REFUND") {
      const orderTotal = (lines[0] as (typeof lines)[number]).purchase.orderTotalAmount;
      const openSum = open.reduce((sum, l) => sum + l.purchase.lineTotalAmount, 0);
      if (facts.refundAmount !== orderTotal && facts.refundAmount !== openSum) {
        const line = open.find((l) => l.purchase.lineTotalAmount === facts.refundAmount);
        if (!line) {
          const amounts = open.map((l) => `${l.purchase.lineId}: ${l.purchase.lineTotalAmount}`).join(", ");
          return error(
            event,
            "REFUND_UNMATCHED",
            `Refund of ${facts.refundAmount} cents matches neither order ${facts.orderId}'s total (${orderTotal}), its open lines together (${openSum}) nor one open line (${amounts}); check the refund in PayNow's dashboard`,
          );
        }
        targets = [line];
      }
    }
    return write(
      event,
      processed,
      targets.map((l) => follow(event, "reversal", l.purchase, reason)),
    );
  };

  const close = (
    event: StoredEvent,
    processed: boolean,
    facts: Extract<MoneyFacts, { type: "ON_CHARGEBACK_CLOSED" }>,
  ): MoneyOutcome => {
    if (facts.outcome === "lost") return skip(event, processed, "CHARGEBACK_LOST", marksSkips);
    const lines = linesOf(facts.orderId);
    if (lines.length === 0) return noPurchase(event, facts.orderId);
    const own = ownOf(facts.orderId, event.id, "reinstatement");
    if (own.length > 0) return already(event, processed, own, "ALREADY_REINSTATED", marksSkips);
    const charged = lines.filter((l) => l.reversal?.reason === "chargeback");
    if (charged.length === 0) {
      return error(
        event,
        "CHARGEBACK_NOT_REVERSED",
        `No line of order ${facts.orderId} was reversed by a chargeback, so a won chargeback has nothing to reinstate: replay its ON_CHARGEBACK first`,
      );
    }
    const todo = charged.filter((l) => l.reinstatement === null);
    if (todo.length === 0) return skip(event, processed, "ALREADY_REINSTATED", marksSkips);
    return write(
      event,
      processed,
      todo.map((l) => follow(event, "reinstatement", l.purchase, "chargeback")),
    );
  };

  const decide = (event: StoredEvent): MoneyOutcome => {
    const check = moneyFacts(event.data, ctx.walletField);
    if (!check.ok) return error(event, "INVALID_EVENT", `Invalid event: ${check.message}`);
    const data = event.data as { processed?: unknown; processedBy?: unknown };
    const processed = data.processed === true;
    // A replay (or live processing) acts only on events nobody has processed; a reversal backfill looks at
    // processed refunds, chargebacks and closings too, because that is where missing entries hide.
    const processedElsewhere =
      ctx.mode !== "reversal_backfill" && processed && (ctx.runId === null || data.processedBy !== ctx.runId);
    if (processedElsewhere) return { eventId: event.id, result: "skipped", reason: "ALREADY_PROCESSED" };
    const facts = check.facts;
    if (facts.type === "ON_ORDER_COMPLETED") return purchase(event, processed, facts);
    if (facts.type === "ON_CHARGEBACK_CLOSED") return close(event, processed, facts);
    return reverse(event, processed, facts);
  };
  const outcomes = events.map((event): MoneyOutcome => {
    const marked = intents.length;
    const outcome = decide(event);
    // The page counting the event marks it: wherever the decision writes the event anyway (a replay's
    // marks), wherever it counts entries (written now, or by this run on another page), and wherever an
    // earlier page of this run marked it. A page decided again (a retried delivery) finds its own mark and
    // writes nothing.
    const { page, runId } = ctx;
    if (page === undefined || runId === null || outcome.result === "error") return outcome;
    const before = countedIn(event.data, runId);
    if (before === page) return outcome;
    const writesEvent = intents
      .slice(marked)
      .some((i) => (i.kind === "markProcessed" || i.kind === "markDryRun") && i.eventId === event.id);
    if (writesEvent || outcome.result === "processed" || before !== undefined)
      intents.push({ kind: "markCounted", eventId: event.id, page });
    return outcome;
  });

  for (const [userId, points] of credits) intents.push({ kind: "creditWallet", userId, points });
  return { outcomes, intents };
}
