// Applies a group of events in one Firestore transaction: re-read the events and the ledger entries they
// touch, decide with the pure core, then write entries, wallet increments and event marks together. If
// anything conflicts, Firestore retries the whole function, and the decision is made again on fresh data.
import { FieldValue, type DocumentReference, type Firestore, type Transaction } from "firebase-admin/firestore";
import { checkProduct, type Product } from "../core/events";
import { decideGroup, entryIdsFor, productIdFor, type ApplyContext, type Intent, type LedgerEntry } from "../core/ledger";
import type { EventOutcome } from "../core/types";
import type { FaultInjector } from "../deps";
import { refs } from "../platform/collections";
import { plainData } from "../platform/firestore";

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

/** Applies `eventIds` for `ctx` and returns one outcome per event, in order. */
export async function applyGroup(
  db: Firestore,
  ctx: ApplyContext,
  eventIds: readonly string[],
  catalog: ProductCatalog,
  faults?: FaultInjector,
): Promise<EventOutcome[]> {
  const r = refs(db);
  return db.runTransaction(
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
      await faults?.at("group-transaction", { migrationId: ctx.runId ?? undefined });
      writeIntents(tx, db, ctx, intents);
      return outcomes;
    },
    { maxAttempts: TRANSACTION_ATTEMPTS },
  );
}

function writeIntents(tx: Transaction, db: Firestore, ctx: ApplyContext, intents: readonly Intent[]): void {
  const r = refs(db);
  const now = FieldValue.serverTimestamp();
  for (const intent of intents) {
    switch (intent.kind) {
      case "createEntry": {
        const ref: DocumentReference =
          intent.target === "ledger" ? r.ledger.doc(intent.id) : r.shadow(ctx.runId as string).doc(intent.id);
        tx.create(ref, { ...intent.entry, createdAt: now });
        break;
      }
      case "creditWallet":
        tx.set(r.wallets.doc(intent.userId), { balance: FieldValue.increment(intent.points), updatedAt: now }, { merge: true });
        break;
      case "markProcessed":
        tx.update(r.events.doc(intent.eventId), { processed: true, processedAt: now, processedBy: ctx.runId });
        break;
      case "markDryRun":
        tx.update(r.events.doc(intent.eventId), { dryRunProcessed: true, dryRunMigrationId: ctx.runId, dryRunAt: now });
        break;
    }
  }
}

/**
 * Applies one webhook event the way live processing does (no run, marks it processed). Live webhook
 * handling and every replay share this decision code.
 */
export async function applyEvent(db: Firestore, eventId: string, catalog = new ProductCatalog(db)): Promise<EventOutcome> {
  const [outcome] = await applyGroup(db, { runId: null, mode: "live", dryRun: false }, [eventId], catalog);
  return outcome as EventOutcome;
}
