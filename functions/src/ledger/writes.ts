// The one writer of money documents: ledger entries (a dry run: its shadow entries), wallet balances and
// `ledgerOrders`, from the decisions' intents, in the caller's transaction or batch, together with the
// marks on the events (written through store/events.ts).
import { FieldValue, type DocumentReference, type Firestore } from "firebase-admin/firestore";
import type { MoneyIntent } from "../core/outcomes";
import { refs, type OrderDoc } from "../platform/collections";
import type { Writer } from "../platform/firestore";
import { eventStore } from "../store/events";

/**
 * Turns the decisions' intents into writes, and records the lines of every order given purchase entries in
 * its `ledgerOrders` (or `shadowOrders`) document. Returns the number of documents written.
 */
export function writeIntents(
  writer: Writer,
  db: Firestore,
  ctx: { runId: string | null },
  intents: readonly MoneyIntent[],
): number {
  const r = refs(db);
  const now = FieldValue.serverTimestamp();
  const orders = new Map<string, { ref: DocumentReference; orderId: string; lines: OrderDoc["lines"] }>();
  // An event's marks are one write: a commit updates a document once.
  const marks = new Map<string, Record<string, unknown>>();
  const mark = (eventId: string, fields: Record<string, unknown>) =>
    marks.set(eventId, { ...marks.get(eventId), ...fields });
  let written = 0;
  for (const intent of intents) {
    switch (intent.kind) {
      case "createEntry": {
        const shadow = intent.target === "shadow";
        const ref: DocumentReference = shadow ? r.shadow(ctx.runId as string).doc(intent.id) : r.ledger.doc(intent.id);
        writer.create(ref, { ...intent.entry, createdAt: now });
        written++;
        const { kind, orderId, lineId, userId } = intent.entry;
        if (kind === "purchase") {
          const orderRef = shadow ? r.shadowOrders(ctx.runId as string).doc(orderId) : r.orders.doc(orderId);
          const order = orders.get(orderRef.path) ?? { ref: orderRef, orderId, lines: [] };
          order.lines.push({ lineId, userId });
          orders.set(orderRef.path, order);
        }
        break;
      }
      case "creditWallet":
        writer.set(
          r.wallets.doc(intent.userId),
          { balance: FieldValue.increment(intent.points), updatedAt: now },
          { merge: true },
        );
        written++;
        break;
      case "markProcessed":
        mark(intent.eventId, { processed: true, processedAt: now, processedBy: ctx.runId });
        break;
      case "markDryRun":
        mark(intent.eventId, { dryRunProcessed: true, dryRunMigrationId: ctx.runId, dryRunAt: now });
        break;
      case "markCounted":
        // A field path: run ids are letters, digits, `_` and `-`.
        mark(intent.eventId, { [`countedIn.${ctx.runId as string}`]: intent.page });
        break;
    }
  }
  const events = eventStore(db);
  for (const [eventId, fields] of marks) events.mark(writer, eventId, fields);
  // Merged, not created: an order resent with other line ids adds its lines to the record.
  for (const { ref, orderId, lines } of orders.values())
    writer.set(ref, { orderId, lines: FieldValue.arrayUnion(...lines) }, { merge: true });
  return written + marks.size + orders.size;
}
