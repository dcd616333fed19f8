// How a page's events are cut into groups, each one transaction: whole orders, in page order, bounded by
// events, by estimated writes within one commit, and by wallets (a hot wallet's events share a group).
import type { DocumentSnapshot } from "firebase-admin/firestore";
import { buyerWallet, DEFAULT_WALLET_FIELD, orderIdOf, type WalletField } from "../core/paynow";
import { walletsOf } from "../core/selection";
import { linesOf } from "./reads";

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
function orderCost(
  key: string,
  order: readonly DocumentSnapshot[],
  walletField: WalletField,
): { writes: number; wallets: readonly string[] } {
  // A refund, chargeback or closing writes at most an entry per line of its order, when the order is here.
  const lines = Math.max(0, ...order.map((e) => linesOf(e.data()).length));
  let writes = 0;
  for (const e of order) writes += linesOf(e.data()).length > 0 || lines === 0 ? writesOf(e) : lines + 1;
  const recipients = order.flatMap((e) => walletsOf(e.data(), walletField) ?? []);
  const named =
    recipients.length > 0
      ? recipients
      : order
          .map((e) => buyerWallet(e.data(), walletField))
          .filter((w): w is string => w !== undefined)
          .slice(0, 1);
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
export function groupByOrder(
  events: readonly DocumentSnapshot[],
  size: number,
  walletField: WalletField = DEFAULT_WALLET_FIELD,
  walletSize = 150,
): DocumentSnapshot[][] {
  const byOrder = ordersOf(events);
  // Each order's cost once: a group's estimate is its orders' writes plus the wallets they name, each once.
  const costs = new Map<readonly DocumentSnapshot[], { writes: number; wallets: readonly string[] }>();
  for (const [key, order] of byOrder) costs.set(order, orderCost(key, order, walletField));
  const costOf = (order: readonly DocumentSnapshot[]) =>
    costs.get(order) as { writes: number; wallets: readonly string[] };
  const estimate = (
    orders: ReadonlyArray<readonly DocumentSnapshot[]>,
    wallets: ReadonlySet<string> = new Set(),
    writes = 0,
  ) => {
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
    order.map((e) => walletsOf(e.data(), walletField)?.[0]).find((w) => w !== undefined) ??
    order.map((e) => buyerWallet(e.data(), walletField)).find((w) => w !== undefined) ??
    "";
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
    if (
      current.length > 0 &&
      (current.length + events > limit || estimate(more, currentWallets, currentWrites) > WALLET_GROUP_WRITES)
    )
      close();
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
