// The money rules, as a pure function: given the events of a group and the ledger documents they touch,
// decide each event's outcome and the writes that apply it. The Firestore edge reads the documents and
// commits the writes in one transaction, so a decision is never applied twice.
import { checkEvent, type Product, type WebhookEvent } from "./events";
import { isReversalType, type EventOutcome, type ReversalReason, type RunType, type SkipReason } from "./types";

/** A ledger entry as stored in `ledgerEntries/{id}` (without its server-set `createdAt`). */
export interface LedgerEntry {
  userId: string;
  kind: "purchase" | "reversal";
  points: number;
  orderId: string;
  productId: string;
  sourceEventId: string;
  reason: ReversalReason | null;
  migrationId: string | null;
}

/** Who is applying events: a run (replay or reversal backfill, dry or real) or live webhook processing. */
export interface ApplyContext {
  /** The run's id, or null for live processing. */
  runId: string | null;
  mode: RunType | "live";
  dryRun: boolean;
}

/** The documents a group's decisions depend on, as read inside the transaction. */
export interface GroupState {
  /** Raw event documents by id (undefined: the document is gone). */
  events: ReadonlyMap<string, unknown>;
  /** Ledger entries by id (undefined: read, and absent; no key: not read). */
  ledger: ReadonlyMap<string, LedgerEntry | undefined>;
  /** A dry run's own would-be entries, read from its shadow ledger. Empty for real runs. */
  shadow: ReadonlyMap<string, LedgerEntry | undefined>;
  /** Products by id (null: missing or unusable). */
  products: ReadonlyMap<string, Product | null>;
}

export type Intent =
  | { kind: "createEntry"; target: "ledger" | "shadow"; id: string; entry: LedgerEntry }
  | { kind: "creditWallet"; userId: string; points: number }
  | { kind: "markProcessed"; eventId: string }
  | { kind: "markDryRun"; eventId: string };

export const purchaseEntryId = (orderId: string) => `purchase_${orderId}`;
export const reversalEntryId = (orderId: string) => `reversal_${orderId}`;

/** The ledger ids a raw event's decision needs to see. */
export function entryIdsFor(raw: unknown): string[] {
  const data = (raw ?? {}) as { orderId?: unknown; type?: unknown };
  if (typeof data.orderId !== "string" || data.orderId.length === 0 || data.orderId.includes("/")) return [];
  const ids = [purchaseEntryId(data.orderId)];
  if (isReversalType(data.type)) ids.push(reversalEntryId(data.orderId));
  return ids;
}

/** Product ids a raw event may need. */
export function productIdFor(raw: unknown): string | null {
  const data = (raw ?? {}) as { productId?: unknown };
  return typeof data.productId === "string" && data.productId.length > 0 && !data.productId.includes("/")
    ? data.productId
    : null;
}

/**
 * Decides every event of a group, in order. Later events see the entries earlier ones create, so two
 * refunds of one order in one group still produce a single reversal.
 */
export function decideGroup(
  ctx: ApplyContext,
  eventIds: readonly string[],
  state: GroupState,
): { outcomes: EventOutcome[]; intents: Intent[]; unverified: string[] } {
  const created = new Map<string, LedgerEntry>();
  const intents: Intent[] = [];
  const credits = new Map<string, number>();
  // Entries the state does not say anything about are taken as absent. That is safe only where the write
  // that follows checks it (an entry is created only if absent); every other decision resting on such an
  // assumption is reported as unverified, and the caller reads those entries and decides again.
  const assumedAbsent = new Set<string>();

  const lookup = (id: string): LedgerEntry | undefined => {
    const found = created.get(id) ?? state.ledger.get(id) ?? (ctx.dryRun ? state.shadow.get(id) : undefined);
    if (found === undefined && !created.has(id) && !state.ledger.has(id)) assumedAbsent.add(id);
    return found;
  };
  const isMine = (entry: LedgerEntry, eventId: string) =>
    ctx.runId !== null && entry.migrationId === ctx.runId && entry.sourceEventId === eventId;

  /** Marks a real run's event processed, unless it already is (a reversal backfill leaves live marks alone). */
  const markDone = (event: WebhookEvent) => {
    if (!ctx.dryRun && !event.processed) intents.push({ kind: "markProcessed", eventId: event.id });
  };

  const create = (event: WebhookEvent, id: string, entry: LedgerEntry): EventOutcome => {
    created.set(id, entry);
    intents.push({ kind: "createEntry", target: ctx.dryRun ? "shadow" : "ledger", id, entry });
    if (ctx.dryRun) {
      intents.push({ kind: "markDryRun", eventId: event.id });
    } else {
      credits.set(entry.userId, (credits.get(entry.userId) ?? 0) + entry.points);
      markDone(event);
    }
    return { eventId: event.id, result: "processed", entryId: id, userId: entry.userId, points: entry.points };
  };

  /** An entry already exists: ours from an earlier delivery (count it again), or someone else's (skip). */
  const existingOutcome = (event: WebhookEvent, id: string, entry: LedgerEntry, reason: SkipReason): EventOutcome =>
    isMine(entry, event.id)
      ? { eventId: event.id, result: "processed", entryId: id, userId: entry.userId, points: entry.points }
      : { eventId: event.id, result: "skipped", reason, entryId: id };

  const decidePurchase = (event: WebhookEvent): EventOutcome => {
    const id = purchaseEntryId(event.orderId);
    const existing = lookup(id);
    if (existing) {
      markDone(event);
      return existingOutcome(event, id, existing, "PURCHASE_EXISTS");
    }
    const product = state.products.get(event.productId);
    if (product === undefined) {
      return { eventId: event.id, result: "error", code: "PRODUCT_NOT_FOUND", message: `Product not found: ${event.productId}` };
    }
    if (product === null) {
      return {
        eventId: event.id,
        result: "error",
        code: "PRODUCT_INVALID",
        message: `Product ${event.productId} has no valid points value`,
      };
    }
    const points = product.points * event.quantity;
    if (!Number.isSafeInteger(points)) {
      return { eventId: event.id, result: "error", code: "INVALID_EVENT", message: "Invalid event: quantity × points is too large" };
    }
    return create(event, id, {
      userId: event.userId,
      kind: "purchase",
      points,
      orderId: event.orderId,
      productId: event.productId,
      sourceEventId: event.id,
      reason: null,
      migrationId: ctx.runId,
    });
  };

  const decideReversal = (event: WebhookEvent): EventOutcome => {
    const id = reversalEntryId(event.orderId);
    const existing = lookup(id);
    if (existing) {
      if (ctx.mode !== "reversal_backfill") markDone(event);
      return existingOutcome(event, id, existing, "ALREADY_REVERSED");
    }
    const purchase = lookup(purchaseEntryId(event.orderId));
    if (!purchase) {
      return {
        eventId: event.id,
        result: "error",
        code: "ORIGINAL_PURCHASE_NOT_FOUND",
        message: `Original purchase entry not found for order ${event.orderId}`,
      };
    }
    return create(event, id, {
      userId: purchase.userId,
      kind: "reversal",
      points: -purchase.points,
      orderId: event.orderId,
      productId: purchase.productId,
      sourceEventId: event.id,
      reason: event.type === "order.chargeback" ? "chargeback" : "refund",
      migrationId: ctx.runId,
    });
  };

  const outcomes = eventIds.map((eventId): EventOutcome => {
    const check = checkEvent(eventId, state.events.get(eventId));
    if (!check.ok) {
      return { eventId, result: "error", code: "INVALID_EVENT", message: `Invalid event: ${check.message}` };
    }
    const event = check.event;
    // A replay (or live processing) acts only on events nobody has processed; a reversal backfill looks at
    // processed refunds too, because that is where the missing reversals hide.
    const processedElsewhere =
      ctx.mode !== "reversal_backfill" && event.processed && (ctx.runId === null || event.processedBy !== ctx.runId);
    if (processedElsewhere) return { eventId, result: "skipped", reason: "ALREADY_PROCESSED" };
    return isReversalType(event.type) ? decideReversal(event) : decidePurchase(event);
  });

  for (const [userId, points] of credits) intents.push({ kind: "creditWallet", userId, points });
  return { outcomes, intents, unverified: [...assumedAbsent].filter((id) => !created.has(id)) };
}
