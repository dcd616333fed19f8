// Applies PayNow money events to the ledger; core/money.ts decides. One Firestore transaction reads the
// events, every ledger entry of the orders they are about (a dry run: its shadow entries too) and their
// products, decides, and writes the entries, the wallet increments and the event marks together. Every
// entry has a deterministic id and is `create`d, so a decision that raced another one fails to commit and
// is decided again on fresh data (Firestore retries the transaction). Live webhook processing and every
// run share this path: a replay of a live-failed event decides what live processing would have.
//
// The transaction reads by id only (a query inside one locks far more than the documents it returns: the
// emulator times such transactions out under contention). An order event names its lines, so it reads
// their `purchase_` entries (a redelivery carries the same line ids, PayNow's). A refund, chargeback or
// closing reads its order's `ledgerOrders/{orderId}`, written in the same commit as the order's purchase
// entries, for the lines it has, then every entry those lines can have (`purchase_`, `reversal_`,
// `reinstatement_`). An order credited before `ledgerOrders` existed has no such record: its lines are
// found by a query outside the transaction, and purchase entries never change, so all that query can miss
// is an order credited in between: its refund then fails ORIGINAL_PURCHASE_NOT_FOUND, writing nothing,
// and a later run applies it.
import {
  FieldValue,
  type DocumentData,
  type DocumentReference,
  type DocumentSnapshot,
  type Firestore,
  type Precondition,
  type Query,
  type SetOptions,
  type UpdateData,
} from "firebase-admin/firestore";
import { checkProduct, decideMoney, moneyEntryId, type MoneyContext, type MoneyEntry, type MoneyIntent, type MoneyOutcome, type Product } from "../core/money";
import { buyerWallet, DEFAULT_WALLET_FIELD, orderIdOf, usableId, type WalletField } from "../core/paynow";
import { walletsOf } from "../core/selection";
import type { FaultInjector } from "../deps";
import { refs, type OrderDoc } from "../platform/collections";
import { mapWithConcurrency, plainData } from "../platform/firestore";

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

const TRANSACTION_ATTEMPTS = 10;
/** Values one `in` filter may hold. */
const IN_LIMIT = 30;

/** What applying some events did: one outcome per event, in order, and how many documents it read and wrote. */
export interface GroupResult {
  outcomes: MoneyOutcome[];
  writes: number;
  /** The wallets its commit wrote, one id per write. */
  walletWrites: string[];
  /** Documents read, in the last attempt of its transaction and outside it. */
  reads: number;
}

/** The lines of an order event (none for other events). */
function linesOf(data: unknown): Array<{ id?: unknown; product_id?: unknown }> {
  const d = data as { event_type?: unknown; body?: { lines?: unknown } } | undefined;
  if (d?.event_type !== "ON_ORDER_COMPLETED" || !Array.isArray(d.body?.lines)) return [];
  return (d.body.lines as unknown[]).filter((l): l is { id?: unknown; product_id?: unknown } => typeof l === "object" && l !== null);
}

const productIdsOf = (data: unknown): string[] => linesOf(data).map((l) => l.product_id).filter(usableId);

/**
 * The entry ids the decisions need: for an order event its own lines' purchase entries (PayNow's line
 * ids are the order's, and a redelivery carries the same ones); for a refund, chargeback or closing
 * every entry its order's lines (found in `known`) can have.
 */
function entryIdsOf(events: ReadonlyArray<{ data: unknown }>, known: Iterable<{ orderId: string; lineId: string }>): string[] {
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
    for (const kind of ["purchase", "reversal", "reinstatement"] as const) ids.add(moneyEntryId(kind, e.orderId, e.lineId));
  }
  return [...ids];
}

/** The orders of refunds, chargebacks and closings, whose lines only a query can find. */
function followedOrders(events: ReadonlyArray<{ data: unknown }>): string[] {
  const ids = events.filter((e) => (e.data as { event_type?: unknown } | undefined)?.event_type !== "ON_ORDER_COMPLETED").map((e) => orderIdOf(e.data));
  return [...new Set(ids.filter((id): id is string => id !== null))];
}

/** Every entry of these orders in `collection`, by id, read with `get` (a transaction's, or a plain one). */
export async function entriesOfOrders(get: (q: Query) => Promise<FirebaseFirestore.QuerySnapshot>, collection: Query, orderIds: readonly string[]): Promise<Map<string, MoneyEntry>> {
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
    dryRunId ? entriesOfOrders(plain, r.shadow(dryRunId).where("kind", "==", "purchase"), unrecorded) : Promise.resolve(new Map<string, MoneyEntry>()),
  ]);
  reads.n += found.size + foundShadow.size + 1;
  for (const e of [...found.values(), ...foundShadow.values()]) {
    const known = lines.get(e.orderId) ?? [];
    if (!known.some((l) => l.lineId === e.lineId)) known.push({ lineId: e.lineId, userId: e.userId });
    lines.set(e.orderId, known);
  }
  return lines;
}

/**
 * Applies `eventIds` for `ctx` in one transaction. One order's events must come in `(createdAt, event_id)`
 * order; they are decided in the order given.
 */
/** A group's decisions would write more than one commit takes; nothing was written. */
class GroupTooLarge extends Error {
  override name = "GroupTooLarge";
  constructor(readonly writes: number) {
    super(`a group would write ${writes} documents, more than the ${COMMIT_WRITES} one commit takes`);
  }
}

export async function applyGroup(db: Firestore, ctx: MoneyContext, eventIds: readonly string[], catalog: ProductCatalog, faults?: FaultInjector, splittable = false): Promise<GroupResult> {
  const r = refs(db);
  const result = await db.runTransaction(
    async (tx) => {
      const reads = { n: eventIds.length };
      const snaps = await tx.getAll(...eventIds.map((id) => r.events.doc(id)));
      const events = snaps.map((s) => ({ id: s.id, data: s.exists ? plainData(s.data()) : undefined }));
      const orderIds = followedOrders(events);
      const dryRunId = ctx.dryRun ? ctx.runId : null;
      const [orders, products] = await Promise.all([
        linesOfOrders(db, (...docs) => tx.getAll(...docs), dryRunId, orderIds, reads),
        catalog.load(events.flatMap((e) => productIdsOf(e.data))),
      ]);
      const ids = entryIdsOf(events, [...orders].flatMap(([orderId, lines]) => lines.map((l) => ({ orderId, lineId: l.lineId }))));
      const read = async (collection: FirebaseFirestore.CollectionReference) => {
        const entries = new Map<string, MoneyEntry>();
        if (ids.length === 0) return entries;
        reads.n += ids.length;
        for (const snap of await tx.getAll(...ids.map((id) => collection.doc(id)))) if (snap.exists) entries.set(snap.id, snap.data() as MoneyEntry);
        return entries;
      };
      const [ledger, shadow] = await Promise.all([read(r.ledger), dryRunId ? read(r.shadow(dryRunId)) : Promise.resolve(new Map<string, MoneyEntry>())]);
      const { outcomes, intents } = decideMoney(ctx, events, { ledger, shadow, products });
      await faults?.at("group-transaction", { runId: ctx.runId ?? undefined });
      if (splittable) {
        // Counted on a writer that writes nothing: a group past one commit's writes is split (applyPage).
        let planned = 0;
        const count = () => void planned++;
        writeIntents({ create: count, set: count, update: count }, db, ctx, intents);
        if (planned > COMMIT_WRITES) throw new GroupTooLarge(planned);
      }
      const writes = writeIntents(tx, db, ctx, intents);
      // Processed without writing: the entries were this run's already, from another delivery.
      const foundWritten = outcomes.some((o) => o.result === "processed" && !intents.some((i) => i.kind === "createEntry" && i.entry.sourceEventId === o.eventId));
      const walletWrites = intents.flatMap((i) => (i.kind === "creditWallet" ? [i.userId] : []));
      return { outcomes, writes, walletWrites, reads: reads.n, foundWritten };
    },
    { maxAttempts: TRANSACTION_ATTEMPTS },
  );
  await faults?.at("group-committed", { runId: ctx.runId ?? undefined, writes: result.writes });
  if (result.foundWritten) await faults?.at("group-found-written", { runId: ctx.runId ?? undefined });
  return { outcomes: result.outcomes, writes: result.writes, walletWrites: result.walletWrites, reads: result.reads };
}

/** The most writes Firestore takes in one commit ([quotas](https://firebase.google.com/docs/firestore/quotas#writes_and_transactions)). */
export const COMMIT_WRITES = 500;

/**
 * What one group is cut to, by estimate: at most this many writes (an order event writes an entry per
 * line, its mark and its order record; a refund or chargeback an entry per line of its order, guessed at
 * two, and its mark; each wallet the group credits, once), within COMMIT_WRITES. A group whose decisions
 * write more all the same (a refund of an order of many lines) is split before it commits (applyPage).
 */
export const WALLET_GROUP_WRITES = 460;

/** An event's writes, wallets apart: entries, its mark, its order record. */
const writesOf = (e: DocumentSnapshot) => {
  const lines = linesOf(e.data()).length;
  return lines > 0 ? lines + 2 : 3;
};

/** A page's events by order (events of no order each on their own), in first-seen order. */
function ordersOf(events: readonly DocumentSnapshot[]): Map<string, DocumentSnapshot[]> {
  const byOrder = new Map<string, DocumentSnapshot[]>();
  for (const e of events) {
    const orderId = orderIdOf(e.data());
    const key = orderId ?? `\u0000${e.id}`;
    byOrder.set(key, [...(byOrder.get(key) ?? []), e]);
  }
  return byOrder;
}

/**
 * One order's part of a group's estimated writes: its events' (writesOf; a refund, chargeback or closing of an order whose
 * purchase is among them, an entry per line of it and its mark), and each wallet its orders credit or take from,
 * once: an order's lines' recipients when its purchase is among the events, else the buyer its refunds or
 * chargebacks name, else one wallet.
 */
function orderCost(key: string, order: readonly DocumentSnapshot[], walletField: WalletField): { writes: number; wallets: readonly string[] } {
  // A refund, chargeback or closing writes at most an entry per line of its order, when the order is here.
  const lines = Math.max(0, ...order.map((e) => linesOf(e.data()).length));
  let writes = 0;
  for (const e of order) writes += linesOf(e.data()).length > 0 || lines === 0 ? writesOf(e) : lines + 1;
  const recipients = order.flatMap((e) => walletsOf(e.data(), walletField) ?? []);
  const named = recipients.length > 0 ? recipients : order.map((e) => buyerWallet(e.data(), walletField)).filter((w): w is string => w !== undefined).slice(0, 1);
  return { writes, wallets: named.length > 0 ? named : [`\u0000${key}`] };
}

/**
 * Groups of whole orders: one order's events are decided together. Orders of the same wallet (the wallet
 * an order's events credit first) go together, in one group when one commit takes them
 * (`walletSize`, WALLET_GROUP_WRITES), so a customer with many orders in a page has their wallet
 * written once rather than once per order (a wallet document sustains about one write a second). An order
 * with no purchase in the page is placed by the buyer its refund or chargeback names. A group of several
 * wallets' orders holds at most `size` events and WALLET_GROUP_WRITES estimated writes; orders of no known
 * wallet are grouped the same way. Orders are independent of each other, so their grouping changes no decision.
 */
export function groupByOrder(events: readonly DocumentSnapshot[], size: number, walletField: WalletField = DEFAULT_WALLET_FIELD, walletSize = 150): DocumentSnapshot[][] {
  const byOrder = ordersOf(events);
  // Each order's cost once: a group's estimate is its orders' writes plus the wallets they name, each once.
  const costs = new Map<readonly DocumentSnapshot[], { writes: number; wallets: readonly string[] }>();
  for (const [key, order] of byOrder) costs.set(order, orderCost(key, order, walletField));
  const costOf = (order: readonly DocumentSnapshot[]) => costs.get(order) as { writes: number; wallets: readonly string[] };
  const estimate = (orders: ReadonlyArray<readonly DocumentSnapshot[]>, wallets: ReadonlySet<string> = new Set(), writes = 0) => {
    const named = new Set(wallets);
    let n = writes;
    for (const order of orders) {
      n += costOf(order).writes;
      for (const w of costOf(order).wallets) named.add(w);
    }
    return n + named.size;
  };
  // The wallet an order's purchase credits first, else the buyer its refunds or chargebacks name.
  const walletOf = (order: DocumentSnapshot[]) =>
    order.map((e) => walletsOf(e.data(), walletField)?.[0]).find((w) => w !== undefined) ?? order.map((e) => buyerWallet(e.data(), walletField)).find((w) => w !== undefined) ?? "";
  // Each wallet's orders in page order (a Map keeps first-seen order); wallets in id order.
  const byWallet = new Map<string, DocumentSnapshot[][]>();
  for (const order of byOrder.values()) {
    const wallet = walletOf(order);
    byWallet.set(wallet, [...(byWallet.get(wallet) ?? []), order]);
  }
  const groups: DocumentSnapshot[][] = [];
  let current: DocumentSnapshot[] = [];
  let currentWrites = 0;
  let currentWallets = new Set<string>();
  const close = () => {
    if (current.length > 0) groups.push(current);
    current = [];
    currentWrites = 0;
    currentWallets = new Set();
  };
  const add = (order: readonly DocumentSnapshot[]) => {
    current.push(...order);
    currentWrites += costOf(order).writes;
    for (const w of costOf(order).wallets) currentWallets.add(w);
  };
  /** Starts a new group unless the current one takes these orders within `limit` events and the writes bound. */
  const makeRoom = (more: ReadonlyArray<readonly DocumentSnapshot[]>, limit: number) => {
    const events = more.reduce((n, o) => n + o.length, 0);
    if (current.length > 0 && (current.length + events > limit || estimate(more, currentWallets, currentWrites) > WALLET_GROUP_WRITES)) close();
  };
  for (const wallet of [...byWallet.keys()].sort()) {
    const orders = byWallet.get(wallet) as DocumentSnapshot[][];
    const events = orders.reduce((n, o) => n + o.length, 0);
    if (wallet === "") {
      // No known wallet: by size and writes.
      for (const order of orders) {
        makeRoom([order], size);
        add(order);
      }
    } else if (events > walletSize || estimate(orders) > WALLET_GROUP_WRITES) {
      // More than one commit takes: groups of its own, each as full as one commit takes.
      close();
      for (const order of orders) {
        makeRoom([order], walletSize);
        add(order);
      }
      close();
    } else if (events > size) {
      close();
      for (const order of orders) add(order);
      close();
    } else {
      makeRoom(orders, size);
      for (const order of orders) add(order);
    }
  }
  close();
  return groups;
}

export interface PageOptions {
  groupSize: number;
  walletGroupSize: number;
  parallelGroups: number;
  /** Called before each group's transaction; tests inject faults here. */
  beforeGroup?: (groupIndex: number, groups: number) => void | Promise<void>;
}

/**
 * Applies a page of events (in `(createdAt, event_id)` order) for `ctx`: groups of whole orders, each in
 * its own transaction, several at once. Returns one outcome per event, in the order given.
 */
export async function applyPage(db: Firestore, ctx: MoneyContext, docs: readonly DocumentSnapshot[], catalog: ProductCatalog, options: PageOptions, faults?: FaultInjector): Promise<GroupResult> {
  if (docs.length === 0) return { outcomes: [], writes: 0, walletWrites: [], reads: 0 };
  const groups = groupByOrder(docs, options.groupSize, ctx.walletField, options.walletGroupSize);
  const results = await mapWithConcurrency(groups, options.parallelGroups, async (group, index) => {
    await options.beforeGroup?.(index, groups.length);
    return applySplitting(db, ctx, group, catalog, faults);
  });
  const byId = new Map(results.flatMap((g) => g.outcomes).map((o) => [o.eventId, o]));
  return {
    outcomes: docs.map((d) => byId.get(d.id) as MoneyOutcome),
    writes: results.reduce((n, g) => n + g.writes, 0),
    walletWrites: results.flatMap((g) => g.walletWrites),
    reads: results.reduce((n, g) => n + g.reads, 0),
  };
}

/**
 * Applies a group in one commit, or, when its decisions would write more than one commit takes (the
 * estimate guessed a refunded order's lines too few), in two halves of whole orders, each decided again on
 * what it reads. One order is never split: an order whose events alone write more fails at its commit.
 */
async function applySplitting(db: Firestore, ctx: MoneyContext, group: readonly DocumentSnapshot[], catalog: ProductCatalog, faults?: FaultInjector): Promise<GroupResult> {
  const orders = [...new Set(group.map((d) => orderIdOf(d.data()) ?? `\u0000${d.id}`))];
  try {
    return await applyGroup(db, ctx, group.map((d) => d.id), catalog, faults, orders.length > 1);
  } catch (error) {
    if (!(error instanceof GroupTooLarge)) throw error;
    const first = new Set(orders.slice(0, Math.ceil(orders.length / 2)));
    const inFirst = (d: DocumentSnapshot) => first.has(orderIdOf(d.data()) ?? `\u0000${d.id}`);
    const a = await applySplitting(db, ctx, group.filter(inFirst), catalog, faults);
    const b = await applySplitting(db, ctx, group.filter((d) => !inFirst(d)), catalog, faults);
    const byId = new Map([...a.outcomes, ...b.outcomes].map((o) => [o.eventId, o]));
    return {
      outcomes: group.map((d) => byId.get(d.id) as MoneyOutcome),
      writes: a.writes + b.writes,
      walletWrites: [...a.walletWrites, ...b.walletWrites],
      reads: a.reads + b.reads,
    };
  }
}

/** What a transaction and a batch have in common, for the writes below. */
export interface Writer {
  create(ref: DocumentReference, data: DocumentData): unknown;
  set(ref: DocumentReference, data: DocumentData, options: SetOptions): unknown;
  update(ref: DocumentReference, data: UpdateData<DocumentData>, precondition?: Precondition): unknown;
}

/**
 * Turns the decisions' intents into writes, and records the lines of every order given purchase entries in
 * its `ledgerOrders` (or `shadowOrders`) document. Returns the number of documents written.
 */
export function writeIntents(writer: Writer, db: Firestore, ctx: { runId: string | null }, intents: readonly MoneyIntent[]): number {
  const r = refs(db);
  const now = FieldValue.serverTimestamp();
  const orders = new Map<string, { ref: DocumentReference; orderId: string; lines: OrderDoc["lines"] }>();
  // An event's marks are one write: a commit updates a document once.
  const marks = new Map<string, Record<string, unknown>>();
  const mark = (eventId: string, fields: Record<string, unknown>) => marks.set(eventId, { ...marks.get(eventId), ...fields });
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
        writer.set(r.wallets.doc(intent.userId), { balance: FieldValue.increment(intent.points), updatedAt: now }, { merge: true });
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
  for (const [eventId, fields] of marks) writer.update(r.events.doc(eventId), fields);
  // Merged, not created: an order resent with other line ids adds its lines to the record.
  for (const { ref, orderId, lines } of orders.values()) writer.set(ref, { orderId, lines: FieldValue.arrayUnion(...lines) }, { merge: true });
  return written + marks.size + orders.size;
}

/** Applies one stored webhook event the way live processing does: no run, marked processed when it succeeds. */
export async function applyEvent(db: Firestore, eventId: string, ctx: Pick<MoneyContext, "walletField">, catalog = new ProductCatalog(db), faults?: FaultInjector): Promise<MoneyOutcome> {
  const live: MoneyContext = { runId: null, mode: "live", dryRun: false, walletField: ctx.walletField };
  const { outcomes } = await applyGroup(db, live, [eventId], catalog, faults);
  return outcomes[0] as MoneyOutcome;
}
