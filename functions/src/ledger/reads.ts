// What a money decision reads besides its events: the product catalog, the ids of every ledger entry its
// orders can have, and, for a refund, chargeback or closing, the lines of its order (`ledgerOrders`, or a
// query for an order credited before that record existed).
import type { DocumentReference, DocumentSnapshot, Firestore, Query } from "firebase-admin/firestore";
import { checkProduct, moneyEntryId, type MoneyEntry, type Product } from "../core/ledger";
import { orderIdOf, usableId } from "../core/paynow";
import { refs, type OrderDoc } from "../platform/collections";

/** Reads products once per delivery; the catalog is small and does not change during a run. */
export class ProductCatalog {
  private readonly cache = new Map<string, Promise<Product | null | undefined>>();
  constructor(private readonly db: Firestore) {}

  async load(ids: Iterable<string>): Promise<Map<string, Product | null>> {
    const wanted = [...new Set(ids)];
    const missing = wanted.filter((id) => !this.cache.has(id));
    if (missing.length > 0) {
      const fetched = this.db.getAll(...missing.map((id) => refs(this.db).products.doc(id)));
      // A failed read is not cached: the next group asks again.
      void fetched.catch(() => missing.forEach((id) => this.cache.delete(id)));
      missing.forEach((id, i) =>
        this.cache.set(
          id,
          fetched.then((snaps) => (snaps[i]?.exists ? checkProduct(snaps[i]?.data()) : undefined)),
        ),
      );
    }
    const result = new Map<string, Product | null>();
    for (const id of wanted) {
      const product = await this.cache.get(id);
      if (product !== undefined) result.set(id, product);
    }
    return result;
  }
}

/** Values one `in` filter may hold. */
const IN_LIMIT = 30;

/** The lines of an order event (none for other events). */
export function linesOf(data: unknown): Array<{ id?: unknown; product_id?: unknown }> {
  const d = data as { event_type?: unknown; body?: { lines?: unknown } } | undefined;
  if (d?.event_type !== "ON_ORDER_COMPLETED" || !Array.isArray(d.body?.lines)) return [];
  return (d.body.lines as unknown[]).filter(
    (l): l is { id?: unknown; product_id?: unknown } => typeof l === "object" && l !== null,
  );
}

export const productIdsOf = (data: unknown): string[] =>
  linesOf(data)
    .map((l) => l.product_id)
    .filter(usableId);

/**
 * The entry ids the decisions need: for an order event its own lines' purchase entries (PayNow's line
 * ids are the order's, and a redelivery carries the same ones); for a refund, chargeback or closing
 * every entry its order's lines (found in `known`) can have.
 */
export function entryIdsOf(
  events: ReadonlyArray<{ data: unknown }>,
  known: Iterable<{ orderId: string; lineId: string }>,
): string[] {
  const ids = new Set<string>();
  const followed = new Set<string>();
  for (const e of events) {
    const orderId = orderIdOf(e.data);
    if (orderId === null) continue;
    const lines = linesOf(e.data);
    if ((e.data as { event_type?: unknown }).event_type === "ON_ORDER_COMPLETED") {
      for (const l of lines) if (usableId(l.id)) ids.add(moneyEntryId("purchase", orderId, l.id));
    } else followed.add(orderId);
  }
  for (const e of known) {
    if (!followed.has(e.orderId)) continue;
    for (const kind of ["purchase", "reversal", "reinstatement"] as const)
      ids.add(moneyEntryId(kind, e.orderId, e.lineId));
  }
  return [...ids];
}

/** The orders of refunds, chargebacks and closings, whose lines only a query can find. */
export function followedOrders(events: ReadonlyArray<{ data: unknown }>): string[] {
  const ids = events
    .filter((e) => (e.data as { event_type?: unknown } | undefined)?.event_type !== "ON_ORDER_COMPLETED")
    .map((e) => orderIdOf(e.data));
  return [...new Set(ids.filter((id): id is string => id !== null))];
}

/** Every entry of these orders in `collection`, by id, read with `get` (a transaction's, or a plain one). */
export async function entriesOfOrders(
  get: (q: Query) => Promise<FirebaseFirestore.QuerySnapshot>,
  collection: Query,
  orderIds: readonly string[],
): Promise<Map<string, MoneyEntry>> {
  const found = new Map<string, MoneyEntry>();
  const groups: string[][] = [];
  for (let i = 0; i < orderIds.length; i += IN_LIMIT) groups.push(orderIds.slice(i, i + IN_LIMIT));
  const answers = await Promise.all(groups.map((g) => get(collection.where("orderId", "in", g))));
  for (const answer of answers) for (const doc of answer.docs) found.set(doc.id, doc.data() as MoneyEntry);
  return found;
}

type GetAll = (...refs: DocumentReference[]) => Promise<DocumentSnapshot[]>;

/**
 * The lines with purchase entries of each order, and their wallets: from `ledgerOrders` (and a dry run's
 * `shadowOrders`), read with `getAll` (a transaction's, or a plain one); for an order with neither, from a
 * query of its purchase entries outside any transaction. Orders with no purchase entry are absent.
 */
export async function linesOfOrders(
  db: Firestore,
  getAll: GetAll,
  dryRunId: string | null,
  orderIds: readonly string[],
  reads: { n: number } = { n: 0 },
): Promise<Map<string, OrderDoc["lines"]>> {
  const lines = new Map<string, OrderDoc["lines"]>();
  if (orderIds.length === 0) return lines;
  const r = refs(db);
  const refsOf = orderIds.map((id) => r.orders.doc(id));
  const shadowRefs = dryRunId ? orderIds.map((id) => r.shadowOrders(dryRunId).doc(id)) : [];
  const snaps = await getAll(...refsOf, ...shadowRefs);
  reads.n += snaps.length;
  for (const snap of snaps) {
    if (!snap.exists) continue;
    const doc = snap.data() as OrderDoc;
    const known = lines.get(doc.orderId) ?? [];
    for (const line of doc.lines) if (!known.some((l) => l.lineId === line.lineId)) known.push(line);
    lines.set(doc.orderId, known);
  }
  const unrecorded = orderIds.filter((id) => !lines.has(id));
  if (unrecorded.length === 0) return lines;
  const plain = (q: Query) => q.get();
  const [found, foundShadow] = await Promise.all([
    entriesOfOrders(plain, r.ledger.where("kind", "==", "purchase"), unrecorded),
    dryRunId
      ? entriesOfOrders(plain, r.shadow(dryRunId).where("kind", "==", "purchase"), unrecorded)
      : Promise.resolve(new Map<string, MoneyEntry>()),
  ]);
  reads.n += found.size + foundShadow.size + 1;
  for (const e of [...found.values(), ...foundShadow.values()]) {
    const known = lines.get(e.orderId) ?? [];
    if (!known.some((l) => l.lineId === e.lineId)) known.push({ lineId: e.lineId, userId: e.userId });
    lines.set(e.orderId, known);
  }
  return lines;
}
