// Applies events to the ledger. Two ways, one set of decisions (core/ledger.ts):
//
// - applyPage, the fast path: read a page's ledger entries once, decide, and commit each group's writes as
//   one atomic batch whose preconditions stand in for a transaction's locks — every entry is `create`d
//   (fails if it exists), every event mark is an update conditional on the event's version as read. If
//   any precondition fails, or the outcome of the commit is unknown, the group goes through the slow path.
// - applyGroup, the slow path (and live processing's): one Firestore transaction that re-reads the events
//   and entries, decides, and writes; Firestore retries it on contention.
//
// Either way an entry, its wallet increment and its event's mark are written together or not at all, and
// an existing entry is never written again. Ledger entries are immutable, so an entry seen to exist is
// still there, unchanged, when the batch commits.
import {
  FieldValue,
  type DocumentData,
  type DocumentReference,
  type DocumentSnapshot,
  type Firestore,
  type Precondition,
  type SetOptions,
  type Timestamp,
  type UpdateData,
} from "firebase-admin/firestore";
import { checkProduct, type Product } from "../core/events";
import { decideGroup, entryIdsFor, productIdFor, type ApplyContext, type Intent, type LedgerEntry } from "../core/ledger";
import type { MoneyIntent } from "../core/money";
import type { EventOutcome } from "../core/types";
import type { FaultInjector } from "../deps";
import { refs } from "../platform/collections";
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

/** What applying a group did: one outcome per event, in order, and how many documents it wrote. */
export interface GroupResult {
  outcomes: EventOutcome[];
  writes: number;
}

/** Applies `eventIds` for `ctx`. */
export async function applyGroup(
  db: Firestore,
  ctx: ApplyContext,
  eventIds: readonly string[],
  catalog: ProductCatalog,
  faults?: FaultInjector,
): Promise<GroupResult> {
  const r = refs(db);
  const result = await db.runTransaction(
    async (tx) => {
      const eventSnaps = await tx.getAll(...eventIds.map((id) => r.events.doc(id)));
      const events = new Map<string, unknown>(eventSnaps.map((s) => [s.id, s.exists ? plainData(s.data()) : undefined]));
      const entryIds = [...new Set([...events.values()].flatMap(entryIdsFor))];
      const shadowIds = ctx.dryRun && ctx.runId ? entryIds : [];
      const entrySnaps =
        entryIds.length + shadowIds.length > 0
          ? await tx.getAll(
              ...entryIds.map((id) => r.ledger.doc(id)),
              ...shadowIds.map((id) => r.shadow(ctx.runId as string).doc(id)),
            )
          : [];
      const ledger = new Map<string, LedgerEntry | undefined>();
      const shadow = new Map<string, LedgerEntry | undefined>();
      entrySnaps.forEach((snap, i) => {
        const target = i < entryIds.length ? ledger : shadow;
        target.set(snap.id, snap.exists ? (snap.data() as LedgerEntry) : undefined);
      });
      const productIds = [...events.values()].map(productIdFor).filter((id): id is string => id !== null);
      const products = await catalog.load(productIds);

      const { outcomes, intents } = decideGroup(ctx, eventIds, { events, ledger, shadow, products });
      await faults?.at("group-transaction", { runId: ctx.runId ?? undefined });
      writeIntents(tx, db, ctx, intents);
      return { outcomes, writes: intents.length };
    },
    { maxAttempts: TRANSACTION_ATTEMPTS },
  );
  await faults?.at("group-committed", { runId: ctx.runId ?? undefined });
  return result;
}

/**
 * Turns intents into writes on a transaction or a batch. With `versions`, event marks are conditional on
 * the event's update time as read (the batch path's stand-in for a transaction's read lock).
 */
/** What a transaction and a batch have in common, for the writes below. */
export interface Writer {
  create(ref: DocumentReference, data: DocumentData): unknown;
  set(ref: DocumentReference, data: DocumentData, options: SetOptions): unknown;
  update(ref: DocumentReference, data: UpdateData<DocumentData>, precondition?: Precondition): unknown;
}

export function writeIntents(
  writer: Writer,
  db: Firestore,
  ctx: { runId: string | null },
  intents: readonly (Intent | MoneyIntent)[],
  versions?: ReadonlyMap<string, Timestamp>,
): void {
  const r = refs(db);
  const now = FieldValue.serverTimestamp();
  const markEvent = (eventId: string, data: Record<string, unknown>) => {
    const version = versions?.get(eventId);
    if (version) writer.update(r.events.doc(eventId), data, { lastUpdateTime: version });
    else writer.update(r.events.doc(eventId), data);
  };
  for (const intent of intents) {
    switch (intent.kind) {
      case "createEntry": {
        const ref: DocumentReference =
          intent.target === "ledger" ? r.ledger.doc(intent.id) : r.shadow(ctx.runId as string).doc(intent.id);
        writer.create(ref, { ...intent.entry, createdAt: now });
        break;
      }
      case "creditWallet":
        writer.set(r.wallets.doc(intent.userId), { balance: FieldValue.increment(intent.points), updatedAt: now }, { merge: true });
        break;
      case "markProcessed":
        markEvent(intent.eventId, { processed: true, processedAt: now, processedBy: ctx.runId });
        break;
      case "markDryRun":
        markEvent(intent.eventId, { dryRunProcessed: true, dryRunMigrationId: ctx.runId, dryRunAt: now });
        break;
    }
  }
}

const READ_BATCH = 500;

async function readEntries(db: Firestore, ids: readonly string[], collection: FirebaseFirestore.CollectionReference) {
  const found = new Map<string, LedgerEntry | undefined>();
  for (let i = 0; i < ids.length; i += READ_BATCH) {
    const snaps = await db.getAll(...ids.slice(i, i + READ_BATCH).map((id) => collection.doc(id)));
    for (const snap of snaps) found.set(snap.id, snap.exists ? (snap.data() as LedgerEntry) : undefined);
  }
  return found;
}

/** The purchase entry a refund or chargeback would reverse. */
function purchaseIdsReversed(raw: unknown): string[] {
  return entryIdsFor(raw).length > 1 ? entryIdsFor(raw).slice(0, 1) : [];
}

/** Groups of whole orders, so that every event of one order is decided by the same group. */
function groupByOrder(events: readonly DocumentSnapshot[], size: number): DocumentSnapshot[][] {
  const byOrder = new Map<string, DocumentSnapshot[]>();
  for (const e of events) {
    const orderId = e.get("orderId") as unknown;
    const key = typeof orderId === "string" ? orderId : `\u0000${e.id}`;
    byOrder.set(key, [...(byOrder.get(key) ?? []), e]);
  }
  const groups: DocumentSnapshot[][] = [];
  let current: DocumentSnapshot[] = [];
  for (const order of byOrder.values()) {
    if (current.length > 0 && current.length + order.length > size) {
      groups.push(current);
      current = [];
    }
    current.push(...order);
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

/** Errors after which a batch's effect is known not to have happened, or unknown: decide again, carefully. */
const RETRY_IN_TRANSACTION = new Set([2, 4, 6, 9, 10, 13, 14]); // UNKNOWN, DEADLINE_EXCEEDED, ALREADY_EXISTS, FAILED_PRECONDITION, ABORTED, INTERNAL, UNAVAILABLE

export interface PageOptions {
  groupSize: number;
  parallelGroups: number;
  /** Called before each group's batch commits; tests inject faults here. */
  beforeCommit?: (groupIndex: number) => void | Promise<void>;
}

/**
 * Applies a page of events (documents as read, with their versions) for `ctx`, in order-preserving groups
 * committed as conditional batches, falling back to a transaction per group when a condition fails.
 * Returns one outcome per event, in the order given.
 */
export async function applyPage(
  db: Firestore,
  ctx: ApplyContext,
  docs: readonly DocumentSnapshot[],
  catalog: ProductCatalog,
  options: PageOptions,
  faults?: FaultInjector,
): Promise<GroupResult> {
  if (docs.length === 0) return { outcomes: [], writes: 0 };
  const r = refs(db);
  const events = new Map<string, unknown>(docs.map((d) => [d.id, d.exists ? plainData(d.data()) : undefined]));
  const entryIds = [...new Set([...events.values()].flatMap(entryIdsFor))];
  // A real run need not look an entry up before creating it: `create` fails if it exists, and the group
  // is then decided again in a transaction that does look. It only reads what a decision takes from an
  // existing entry: the purchase a reversal undoes. A dry run writes no real entries, so it reads them all.
  const toRead = ctx.dryRun ? entryIds : [...new Set([...events.values()].flatMap(purchaseIdsReversed))];
  const [ledger, shadow, products] = await Promise.all([
    readEntries(db, toRead, r.ledger),
    ctx.dryRun && ctx.runId ? readEntries(db, entryIds, r.shadow(ctx.runId)) : Promise.resolve(new Map<string, LedgerEntry | undefined>()),
    catalog.load([...events.values()].map(productIdFor).filter((id): id is string => id !== null)),
  ]);

  const groups = groupByOrder(docs, options.groupSize);
  const results = await mapWithConcurrency(groups, options.parallelGroups, async (group, index): Promise<GroupResult> => {
    const ids = group.map((d) => d.id);
    let decided = decideGroup(ctx, ids, { events, ledger, shadow, products });
    // A decision that rests on an entry nobody read, and that no write will check (an error, say, for a
    // purchase whose product is gone), is made again once that entry is read: the fast path and the
    // transaction path must always decide alike.
    if (decided.unverified.length > 0) {
      for (const [id, entry] of await readEntries(db, decided.unverified, r.ledger)) ledger.set(id, entry);
      decided = decideGroup(ctx, ids, { events, ledger, shadow, products });
    }
    const { outcomes, intents } = decided;
    if (intents.length === 0) return { outcomes, writes: 0 };
    const versions = new Map(group.filter((d) => d.updateTime).map((d) => [d.id, d.updateTime as Timestamp]));
    const batch = db.batch();
    writeIntents(batch, db, ctx, intents, versions);
    try {
      await options.beforeCommit?.(index);
      await faults?.at("group-transaction", { runId: ctx.runId ?? undefined });
      await batch.commit();
      await faults?.at("group-committed", { runId: ctx.runId ?? undefined });
      return { outcomes, writes: intents.length };
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (typeof code !== "number" || !RETRY_IN_TRANSACTION.has(code)) throw error;
      // Someone got there first, or the commit's fate is unknown: decide again on fresh data.
      await faults?.at("group-retried", { runId: ctx.runId ?? undefined });
      return applyGroup(db, ctx, ids, catalog, faults);
    }
  });
  const byId = new Map(results.flatMap((g) => g.outcomes).map((o) => [o.eventId, o]));
  return { outcomes: docs.map((d) => byId.get(d.id) as EventOutcome), writes: results.reduce((n, g) => n + g.writes, 0) };
}

/**
 * Applies one webhook event the way live processing does (no run, marks it processed). Live webhook
 * handling and every replay share this decision code.
 */
export async function applyEvent(db: Firestore, eventId: string, catalog = new ProductCatalog(db)): Promise<EventOutcome> {
  const { outcomes } = await applyGroup(db, { runId: null, mode: "live", dryRun: false }, [eventId], catalog);
  return outcomes[0] as EventOutcome;
}
