// Collection names and document shapes: the Firestore contract other tools and tests rely on.
import type { Firestore } from "firebase-admin/firestore";

export const COLLECTIONS = {
  products: "products",
  events: "webhookEvents",
  ledger: "ledgerEntries",
  /** `ledgerOrders/{orderId}`: the lines an order's purchase entries were written for, read by id. */
  orders: "ledgerOrders",
  wallets: "wallets",
  runs: "dataMigrations",
  flags: "featureFlags",
  idempotency: "idempotencyKeys",
  /** `backfillAdmission/active`: the runs that may still be active, read by every start (admission control). */
  admission: "backfillAdmission",
} as const;

/** Subcollections of `dataMigrations/{id}`. */
export const RUN_SUBCOLLECTIONS = {
  chunks: "chunks",
  errors: "errors",
  /** A dry run's would-be ledger entries, so later events of the same dry run see them. */
  shadow: "shadowLedger",
  /** A dry run's would-be `ledgerOrders`. */
  shadowOrders: "shadowOrders",
  /** One record per committed page: what happened to each examined event (reports, auto-pause). */
  pages: "pages",
  /** One record per control call: who did what, and what came of it. */
  actions: "actions",
  /** What a finished run's report computed once (its verification). */
  report: "report",
} as const;

export const KILL_SWITCH_DOC = "backfill";

/**
 * `ledgerOrders/{orderId}` (a dry run: `dataMigrations/{id}/shadowOrders/{orderId}`): the lines of an
 * order that have purchase entries, and whose wallets they credited. Written with the purchase entries, in
 * the same commit; a refund, chargeback or closing reads it by id to know which entries its order has.
 */
export interface OrderDoc {
  orderId: string;
  lines: Array<{ lineId: string; userId: string }>;
}

export function refs(db: Firestore) {
  const runs = db.collection(COLLECTIONS.runs);
  // Each collection is written by one module: store/ (runs, chunks, pages, errors, report, admission,
  // idempotency keys, the kill switch) or ledger/writes.ts (entries, wallets, orders, event marks).
  return {
    errors: (runId: string) => runs.doc(runId).collection(RUN_SUBCOLLECTIONS.errors),
    shadow: (runId: string) => runs.doc(runId).collection(RUN_SUBCOLLECTIONS.shadow),
    shadowOrders: (runId: string) => runs.doc(runId).collection(RUN_SUBCOLLECTIONS.shadowOrders),
    pages: (runId: string) => runs.doc(runId).collection(RUN_SUBCOLLECTIONS.pages),
    report: (runId: string) => runs.doc(runId).collection(RUN_SUBCOLLECTIONS.report),
    events: db.collection(COLLECTIONS.events),
    ledger: db.collection(COLLECTIONS.ledger),
    orders: db.collection(COLLECTIONS.orders),
    wallets: db.collection(COLLECTIONS.wallets),
    products: db.collection(COLLECTIONS.products),
    killSwitch: db.collection(COLLECTIONS.flags).doc(KILL_SWITCH_DOC),
  };
}

export type Refs = ReturnType<typeof refs>;
