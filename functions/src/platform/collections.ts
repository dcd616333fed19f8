// Collection names and document shapes: the Firestore contract other tools and tests rely on.
import type { Firestore, Timestamp } from "firebase-admin/firestore";
import type { Step } from "../core/chunk";
import type { Counters, Phase } from "../core/types";

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

/** `dataMigrations/{id}/errors/{eventId}`: an event that failed; `resolved` once a retry got past it. */
export interface EventErrorDoc {
  eventId: string;
  code: string;
  message: string;
  chunkId: string;
  phase: Phase;
  status: "open" | "resolved";
  /** How a retry settled it. */
  resolvedAs: "processed" | "skipped" | null;
  attempts: number;
  at: Timestamp;
}

/** One examined event in a page record: id, result (p/s/e) and the entry id, skip reason or error code. */
export interface PageOutcome {
  e: string;
  r: "p" | "s" | "e";
  x: string;
}

/**
 * Page outcomes travel as one string, a line per event ("eventId<TAB>p|s|e<TAB>detail"): one field is far
 * cheaper to store and index than an array of maps. A value holding a tab, newline or backslash is written
 * as a JSON string.
 */
export function encodeOutcomes(outcomes: readonly PageOutcome[]): string {
  return outcomes.map((o) => [o.e, o.r, o.x].map((v) => (/[\t\n\\]|^"/.test(v) ? JSON.stringify(v) : v)).join("\t")).join("\n");
}

export function decodeOutcomes(text: string): PageOutcome[] {
  if (!text) return [];
  return text.split("\n").map((line) => {
    const [e, r, x] = line.split("\t").map((v) => (v.startsWith('"') ? (JSON.parse(v) as string) : v));
    return { e: e as string, r: r as PageOutcome["r"], x: x as string };
  });
}

/** `dataMigrations/{id}/pages/{chunkId}-{n}`: the events one committed page examined. */
export interface PageDoc extends Counters {
  chunkId: string;
  phase: Phase;
  step: Step["step"];
  at: Timestamp;
  /** One letter per examined event, in page order: p(rocessed), s(kipped), e(rror). */
  bits: string;
  /** Documents the page wrote (ledger, wallets, event marks, error records, bookkeeping). */
  writes: number;
  /** Documents the page read (its scan or errors read, its groups' transactions, its boundary and commit reads). */
  reads?: number;
  /** Every examined event's outcome, encoded by `encodeOutcomes`. */
  outcomes: string;
  /** The wallet the page's processed events moved most often, and how many times its commits wrote it (a hot wallet shows here). */
  busiestWallet?: { userId: string; events: number; writes: number } | null;
}

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
  // Runs and their chunks are written only through runs/store.ts and chunks/store.ts.
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
