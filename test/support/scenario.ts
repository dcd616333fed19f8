// Builds a small PayNow store inside one test's own year, and reads back its ledger and wallets. Every
// event is a PayNow webhook as `scripts/paynow-payloads.ts` builds it (the fields PayNow's schema
// requires, a few kilobytes each); ids are flake ids of the store's year, so stores never share one.
import { Timestamp } from "firebase-admin/firestore";
import { expect } from "vitest";
import type { EntryKind, MoneyEntry } from "../../functions/src/core/ledger";
import { applyEvent } from "../../functions/src/ledger/apply";
import { ProductCatalog } from "../../functions/src/ledger/reads";
import {
  chargeback,
  chargebackClosed,
  deliveryItemAdded,
  FlakeIds,
  minecraftCustomer,
  orderCompleted,
  refund,
  type CatalogProduct,
  type Customer,
  type Envelope,
} from "../../scripts/paynow-payloads";
import { db, uniqueYear } from "./emulator";

export interface EventSpec {
  /** The customer (the wallet, by PayNow's customer id). */
  user?: string;
  product?: string;
  day: number;
  minute?: number;
  quantity?: number;
  /** Already handled by live processing before the test's run (through applyEvent). */
  live?: boolean;
  /** Marked processed without any ledger effect: the bug a reversal backfill repairs. */
  markedOnly?: boolean;
}

export interface LineOf {
  product?: string;
  quantity?: number;
  /** The recipient of a gift line. */
  giftTo?: string;
}

interface Order {
  orderId: string;
  customer: Customer;
  total: number;
  lineIds: string[];
  lineTotals: number[];
}

export class Store {
  readonly products = new Map<string, number>();
  readonly events: Array<{ id: string; data: Record<string, unknown>; live: boolean; markedOnly: boolean }> = [];
  readonly users = new Set<string>();
  readonly orders = new Map<string, Order>();
  private readonly names = new Map<string, string>();
  private readonly customers = new Map<string, Customer>();
  private readonly flakes = new FlakeIds();
  private orderCount = 0;

  private constructor(
    readonly year: number,
    readonly scope: string,
  ) {}

  static async create(name: string): Promise<Store> {
    const year = await uniqueYear();
    return new Store(year, `${name}${year}`);
  }

  /** `YYYY-01-DD` of this store's year (days beyond 31 roll into February and on). */
  day(n: number): string {
    return new Date(Date.UTC(this.year, 0, n)).toISOString().slice(0, 10);
  }

  at(day: number, minute = 0): Timestamp {
    return Timestamp.fromMillis(Date.UTC(this.year, 0, day, 0, minute));
  }

  range(from: number, to: number): { startDate: string; endDate: string } {
    return { startDate: this.day(from), endDate: this.day(to) };
  }

  /** This store's flake id for a name (a customer, a product, an order): the same name, the same id. */
  id(name: string): string {
    let id = this.names.get(name);
    if (!id) {
      id = this.flakes.next(Date.UTC(this.year, 0, 1) - 86_400_000 + this.names.size * 1000);
      this.names.set(name, id);
    }
    return id;
  }

  /** A customer's PayNow id, which is their wallet id. */
  user(name: string): string {
    const id = this.id(name);
    this.users.add(id);
    return id;
  }

  private customer(name: string): Customer {
    const id = this.user(name);
    const known = this.customers.get(id);
    if (known) return known;
    const made = minecraftCustomer(id, `${name}_${this.year}`);
    this.customers.set(id, made);
    return made;
  }

  product(name: string, points: number): string {
    const id = this.id(name);
    this.products.set(id, points);
    return id;
  }

  private catalogProduct(id: string): CatalogProduct {
    const points = this.products.get(id) ?? 1;
    return {
      id,
      versionId: id,
      slug: `p-${id.slice(-6)}`,
      name: `Product ${id.slice(-6)}`,
      price: 100 + (points % 50) * 10,
    };
  }

  raw(data: Record<string, unknown>, options: { live?: boolean; markedOnly?: boolean; id?: string } = {}): string {
    const id = options.id ?? (typeof data.event_id === "string" ? data.event_id : this.id(`raw${this.events.length}`));
    this.events.push({ id, data, live: options.live ?? false, markedOnly: options.markedOnly ?? false });
    return id;
  }

  private add(envelope: Envelope, spec: EventSpec): string {
    return this.raw(
      { ...envelope, createdAt: this.at(spec.day, spec.minute ?? this.events.length), processed: false },
      spec,
    );
  }

  private ms(spec: EventSpec): number {
    return this.at(spec.day, spec.minute ?? this.events.length).toMillis();
  }

  /**
   * An order (ON_ORDER_COMPLETED): one line of `spec.product` × `spec.quantity` for `spec.user`, or the
   * `lines` given. Returns its order id, event id and line ids.
   */
  purchase(spec: EventSpec & { lines?: LineOf[] }): { orderId: string; eventId: string; lineIds: string[] } {
    const orderId = this.id(`o${++this.orderCount}`);
    const customer = this.customer(spec.user ?? "u1");
    const lines = (spec.lines ?? [{ product: spec.product, quantity: spec.quantity }]).map((l, k) => ({
      product: this.catalogProduct(l.product ?? spec.product ?? ([...this.products.keys()][0] as string)),
      quantity: l.quantity ?? 1,
      id: this.id(`o${this.orderCount}_l${k}`),
      ...(l.giftTo ? { giftTo: this.customer(l.giftTo) } : {}),
    }));
    const envelope = orderCompleted(this.flakes, { atMs: this.ms(spec), customer, orderId, lines });
    const body = envelope.body as { total_amount: number; lines: Array<{ id: string; total_amount: number }> };
    this.orders.set(orderId, {
      orderId,
      customer,
      total: body.total_amount,
      lineIds: body.lines.map((l) => l.id),
      lineTotals: body.lines.map((l) => l.total_amount),
    });
    const eventId = this.add(envelope, spec);
    return { orderId, eventId, lineIds: body.lines.map((l) => l.id) };
  }

  /** Another ON_ORDER_COMPLETED of an existing order under a new event id (PayNow resent it). */
  duplicatePurchase(orderId: string, spec: EventSpec): string {
    const first = this.events.find(
      (e) => e.data.event_type === "ON_ORDER_COMPLETED" && (e.data.body as { id?: unknown }).id === orderId,
    );
    if (!first) throw new Error(`no order ${orderId} in this store`);
    const envelope = {
      event_type: "ON_ORDER_COMPLETED",
      event_id: this.flakes.next(this.ms(spec)),
      body: structuredClone(first.data.body),
    } as Envelope;
    return this.add(envelope, spec);
  }

  /**
   * A refund (ON_REFUND, of the whole order unless `amount` says otherwise) or a chargeback (ON_CHARGEBACK)
   * of an order. An order this store never made is refunded as if it cost 999 cents.
   */
  reversal(orderId: string, spec: EventSpec & { type?: "refund" | "chargeback"; amount?: number }): string {
    const order = this.orders.get(orderId);
    const customer = order?.customer ?? this.customer(spec.user ?? "u1");
    const total = order?.total ?? 999;
    const atMs = this.ms(spec);
    const envelope =
      spec.type === "chargeback"
        ? chargeback(this.flakes, { atMs, orderId, customer, amount: total })
        : refund(this.flakes, { atMs, orderId, customer, paymentAmount: total, refundAmount: spec.amount ?? total });
    return this.add(envelope, spec);
  }

  /** A chargeback's closing (ON_CHARGEBACK_CLOSED), `won` or `lost`. */
  closing(orderId: string, spec: EventSpec & { outcome: "won" | "lost" }): string {
    const order = this.orders.get(orderId);
    const customer = order?.customer ?? this.customer(spec.user ?? "u1");
    return this.add(
      chargebackClosed(this.flakes, {
        atMs: this.ms(spec),
        orderId,
        customer,
        amount: order?.total ?? 999,
        outcome: spec.outcome,
      }),
      spec,
    );
  }

  /** An event of a type that moves no money (ON_DELIVERY_ITEM_ADDED). */
  other(orderId: string, spec: EventSpec): string {
    const order = this.orders.get(orderId);
    const customer = order?.customer ?? this.customer(spec.user ?? "u1");
    const product = this.catalogProduct(spec.product ?? ([...this.products.keys()][0] as string));
    return this.add(deliveryItemAdded(this.flakes, { atMs: this.ms(spec), customer, product, orderId }), spec);
  }

  /** An ON_ORDER_COMPLETED without its customer: every run reports it INVALID_EVENT. */
  malformed(spec: EventSpec): string {
    const envelope = orderCompleted(this.flakes, {
      atMs: this.ms(spec),
      customer: this.customer(spec.user ?? "u1"),
      orderId: this.id(`bad${this.events.length}`),
      lines: [{ product: this.catalogProduct(spec.product ?? ([...this.products.keys()][0] as string)), quantity: 1 }],
    });
    delete envelope.body.customer;
    return this.add(envelope, spec);
  }

  /** The id of an order line's entry of `kind` (the first line unless told). */
  entryId(kind: EntryKind, orderId: string, line = 0): string {
    const lineId = this.orders.get(orderId)?.lineIds[line] ?? this.id(`${orderId}_l${line}`);
    return `${kind}_${orderId}_${lineId}`;
  }

  /** Writes products and events, then lets live processing handle the `live` events: orders, then refunds and chargebacks, then closings. */
  async write(): Promise<void> {
    const firestore = db();
    const batch = firestore.batch();
    for (const [id, points] of this.products) batch.set(firestore.collection("products").doc(id), { name: id, points });
    for (const e of this.events) batch.set(firestore.collection("webhookEvents").doc(e.id), e.data);
    await batch.commit();
    const catalog = new ProductCatalog(firestore);
    const live = this.events
      .filter((e) => e.live)
      .sort((a, b) => (a.data.createdAt as Timestamp).toMillis() - (b.data.createdAt as Timestamp).toMillis());
    for (const types of [["ON_ORDER_COMPLETED"], ["ON_REFUND", "ON_CHARGEBACK"], ["ON_CHARGEBACK_CLOSED"]]) {
      for (const e of live.filter((x) => types.includes(x.data.event_type as string)))
        await applyEvent(firestore, e.id, { walletField: "id" }, catalog);
    }
    for (const e of this.events.filter((x) => x.markedOnly)) {
      await firestore.collection("webhookEvents").doc(e.id).update({ processed: true, processedBy: null });
    }
  }

  /** Stores the events made since the last write, as a receiver would: each created once, unprocessed. */
  async writeArrivals(from: number): Promise<void> {
    const batch = db().batch();
    for (const e of this.events.slice(from)) batch.create(db().collection("webhookEvents").doc(e.id), e.data);
    await batch.commit();
  }

  /** Every ledger entry of this store's users, by id. */
  async ledger(): Promise<Map<string, MoneyEntry>> {
    const entries = new Map<string, MoneyEntry>();
    const users = [...this.users];
    for (let i = 0; i < users.length; i += 30) {
      const snap = await db()
        .collection("ledgerEntries")
        .where("userId", "in", users.slice(i, i + 30))
        .get();
      for (const doc of snap.docs) entries.set(doc.id, doc.data() as MoneyEntry);
    }
    return entries;
  }

  /** Wallet balances of this store's users (absent wallets omitted). */
  async balances(): Promise<Record<string, number>> {
    const snaps = await db().getAll(...[...this.users].map((u) => db().collection("wallets").doc(u)));
    const out: Record<string, number> = {};
    for (const s of snaps) if (s.exists) out[s.id] = s.get("balance") as number;
    return out;
  }

  /** Points per entry id, the compact form tests compare against. */
  async ledgerPoints(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const [id, e] of await this.ledger()) out[id] = e.points;
    return out;
  }

  /** The money invariant: every wallet equals the sum of its user's ledger entries. */
  async expectWalletsMatchLedger(): Promise<void> {
    const sums: Record<string, number> = {};
    for (const e of (await this.ledger()).values()) sums[e.userId] = (sums[e.userId] ?? 0) + e.points;
    const balances = await this.balances();
    for (const user of this.users) expect(balances[user] ?? 0, `wallet of ${user}`).toBe(sums[user] ?? 0);
  }

  async event(id: string): Promise<Record<string, unknown>> {
    return (await db().collection("webhookEvents").doc(id).get()).data() ?? {};
  }

  async processedIds(): Promise<string[]> {
    const snaps = await db().getAll(...this.events.map((e) => db().collection("webhookEvents").doc(e.id)));
    return snaps
      .filter((s) => s.get("processed") === true)
      .map((s) => s.id)
      .sort();
  }
}
