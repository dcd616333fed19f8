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
import type { DocumentSnapshot, Firestore } from "firebase-admin/firestore";
import { decideMoney } from "../core/money";
import { type MoneyContext, type MoneyOutcome } from "../core/outcomes";
import { type MoneyEntry } from "../core/ledger";
import { orderIdOf } from "../core/paynow";
import type { FaultInjector } from "../deps";
import { refs } from "../platform/collections";
import { mapWithConcurrency, plainData } from "../platform/firestore";
import { COMMIT_WRITES, groupByOrder } from "./groups";
import { entryIdsOf, followedOrders, linesOfOrders, productIdsOf, ProductCatalog } from "./reads";
import { writeIntents } from "./writes";

const TRANSACTION_ATTEMPTS = 10;

/** What applying some events did: one outcome per event, in order, and how many documents it read and wrote. */
export interface GroupResult {
  outcomes: MoneyOutcome[];
  writes: number;
  /** The wallets its commit wrote, one id per write. */
  walletWrites: string[];
  /** Documents read, in the last attempt of its transaction and outside it. */
  reads: number;
}

/** A group's decisions would write more than one commit takes; nothing was written. */
class GroupTooLarge extends Error {
  override name = "GroupTooLarge";
  constructor(readonly writes: number) {
    super(`a group would write ${writes} documents, more than the ${COMMIT_WRITES} one commit takes`);
  }
}

/**
 * Applies `eventIds` for `ctx` in one transaction. One order's events must come in `(createdAt, event_id)`
 * order; they are decided in the order given.
 */
export async function applyGroup(
  db: Firestore,
  ctx: MoneyContext,
  eventIds: readonly string[],
  catalog: ProductCatalog,
  faults?: FaultInjector,
  splittable = false,
): Promise<GroupResult> {
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
      const ids = entryIdsOf(
        events,
        [...orders].flatMap(([orderId, lines]) => lines.map((l) => ({ orderId, lineId: l.lineId }))),
      );
      const read = async (collection: FirebaseFirestore.CollectionReference) => {
        const entries = new Map<string, MoneyEntry>();
        if (ids.length === 0) return entries;
        reads.n += ids.length;
        for (const snap of await tx.getAll(...ids.map((id) => collection.doc(id))))
          if (snap.exists) entries.set(snap.id, snap.data() as MoneyEntry);
        return entries;
      };
      const [ledger, shadow] = await Promise.all([
        read(r.ledger),
        dryRunId ? read(r.shadow(dryRunId)) : Promise.resolve(new Map<string, MoneyEntry>()),
      ]);
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
      const foundWritten = outcomes.some(
        (o) =>
          o.result === "processed" &&
          !intents.some((i) => i.kind === "createEntry" && i.entry.sourceEventId === o.eventId),
      );
      const walletWrites = intents.flatMap((i) => (i.kind === "creditWallet" ? [i.userId] : []));
      return { outcomes, writes, walletWrites, reads: reads.n, foundWritten };
    },
    { maxAttempts: TRANSACTION_ATTEMPTS },
  );
  await faults?.at("group-committed", { runId: ctx.runId ?? undefined, writes: result.writes });
  if (result.foundWritten) await faults?.at("group-found-written", { runId: ctx.runId ?? undefined });
  return { outcomes: result.outcomes, writes: result.writes, walletWrites: result.walletWrites, reads: result.reads };
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
export async function applyPage(
  db: Firestore,
  ctx: MoneyContext,
  docs: readonly DocumentSnapshot[],
  catalog: ProductCatalog,
  options: PageOptions,
  faults?: FaultInjector,
): Promise<GroupResult> {
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
async function applySplitting(
  db: Firestore,
  ctx: MoneyContext,
  group: readonly DocumentSnapshot[],
  catalog: ProductCatalog,
  faults?: FaultInjector,
): Promise<GroupResult> {
  const orders = [...new Set(group.map((d) => orderIdOf(d.data()) ?? `\u0000${d.id}`))];
  try {
    return await applyGroup(
      db,
      ctx,
      group.map((d) => d.id),
      catalog,
      faults,
      orders.length > 1,
    );
  } catch (error) {
    if (!(error instanceof GroupTooLarge)) throw error;
    const first = new Set(orders.slice(0, Math.ceil(orders.length / 2)));
    const inFirst = (d: DocumentSnapshot) => first.has(orderIdOf(d.data()) ?? `\u0000${d.id}`);
    const a = await applySplitting(db, ctx, group.filter(inFirst), catalog, faults);
    const b = await applySplitting(
      db,
      ctx,
      group.filter((d) => !inFirst(d)),
      catalog,
      faults,
    );
    const byId = new Map([...a.outcomes, ...b.outcomes].map((o) => [o.eventId, o]));
    return {
      outcomes: group.map((d) => byId.get(d.id) as MoneyOutcome),
      writes: a.writes + b.writes,
      walletWrites: [...a.walletWrites, ...b.walletWrites],
      reads: a.reads + b.reads,
    };
  }
}

/** Applies one stored webhook event the way live processing does: no run, marked processed when it succeeds. */
export async function applyEvent(
  db: Firestore,
  eventId: string,
  ctx: Pick<MoneyContext, "walletField">,
  catalog = new ProductCatalog(db),
  faults?: FaultInjector,
): Promise<MoneyOutcome> {
  const live: MoneyContext = { runId: null, mode: "live", dryRun: false, walletField: ctx.walletField };
  const { outcomes } = await applyGroup(db, live, [eventId], catalog, faults);
  return outcomes[0] as MoneyOutcome;
}
