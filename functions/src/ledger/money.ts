// Applies PayNow money events to the ledger (core/money.ts decides). One Firestore transaction reads the
// events, every ledger entry of the orders they are about (a dry run: its shadow entries too) and their
// products, decides, and writes the entries, the wallet increments and the event marks together. Every
// entry is `create`d, so a decision that raced another one fails and is decided again on fresh data;
// Firestore retries the transaction on contention. Live webhook processing and every run share this path.
import type { Firestore, Query } from "firebase-admin/firestore";
import { decideMoney, type MoneyContext, type MoneyEntry, type MoneyOutcome } from "../core/money";
import { orderIdOf } from "../core/paynow";
import type { FaultInjector } from "../deps";
import { refs } from "../platform/collections";
import { plainData } from "../platform/firestore";
import { ProductCatalog, writeIntents } from "./apply";

const TRANSACTION_ATTEMPTS = 10;

/** What applying some events did: one outcome per event, in order, and how many documents it wrote. */
export interface MoneyGroupResult {
  outcomes: MoneyOutcome[];
  writes: number;
}

/** The product ids an order event's lines name (none for other events). */
function productIdsOf(data: unknown): string[] {
  const body = (data as { event_type?: unknown; body?: { lines?: unknown } } | undefined)?.body;
  if ((data as { event_type?: unknown } | undefined)?.event_type !== "ON_ORDER_COMPLETED" || !Array.isArray(body?.lines)) return [];
  return (body.lines as Array<{ product_id?: unknown }>)
    .map((l) => l?.product_id)
    .filter((id): id is string => typeof id === "string" && id.length > 0 && !id.includes("/"));
}

/**
 * Applies `eventIds` (one order's events in `(createdAt, event_id)` order, or events of several orders)
 * for `ctx`, in one transaction.
 */
export async function applyMoneyGroup(db: Firestore, ctx: MoneyContext, eventIds: readonly string[], catalog: ProductCatalog, faults?: FaultInjector): Promise<MoneyGroupResult> {
  const r = refs(db);
  const result = await db.runTransaction(
    async (tx) => {
      const snaps = await tx.getAll(...eventIds.map((id) => r.events.doc(id)));
      const events = snaps.map((s) => ({ id: s.id, data: s.exists ? plainData(s.data()) : undefined }));
      const orderIds = [...new Set(events.map((e) => orderIdOf(e.data)).filter((id): id is string => id !== null))];
      const readOrders = async (collection: Query) => {
        const found = new Map<string, MoneyEntry>();
        const answers = await Promise.all(orderIds.map((orderId) => tx.get(collection.where("orderId", "==", orderId))));
        for (const answer of answers) for (const doc of answer.docs) found.set(doc.id, doc.data() as MoneyEntry);
        return found;
      };
      const [ledger, shadow, products] = await Promise.all([
        readOrders(r.ledger),
        ctx.dryRun && ctx.runId ? readOrders(r.shadow(ctx.runId)) : Promise.resolve(new Map<string, MoneyEntry>()),
        catalog.load(events.flatMap((e) => productIdsOf(e.data))),
      ]);
      const { outcomes, intents } = decideMoney(ctx, events, { ledger, shadow, products });
      await faults?.at("group-transaction", { runId: ctx.runId ?? undefined });
      writeIntents(tx, db, ctx, intents);
      return { outcomes, writes: intents.length };
    },
    { maxAttempts: TRANSACTION_ATTEMPTS },
  );
  await faults?.at("group-committed", { runId: ctx.runId ?? undefined });
  return result;
}
