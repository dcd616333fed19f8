// Builds a small store inside one test's own year, and reads back its ledger and wallets.
import { Timestamp } from "firebase-admin/firestore";
import { expect } from "vitest";
import type { LedgerEntry } from "../../functions/src/core/ledger";
import { applyEvent, ProductCatalog } from "../../functions/src/ledger/apply";
import { db, uniqueYear } from "./emulator";

type EventType = "order.completed" | "order.refunded" | "order.chargeback";

export interface EventSpec {
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

export class Store {
  readonly products = new Map<string, number>();
  readonly events: Array<{ id: string; data: Record<string, unknown>; live: boolean; markedOnly: boolean }> = [];
  readonly users = new Set<string>();
  private orders = 0;

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

  user(name: string): string {
    const id = `${this.scope}_${name}`;
    this.users.add(id);
    return id;
  }

  product(name: string, points: number): string {
    const id = `${this.scope}_${name}`;
    this.products.set(id, points);
    return id;
  }

  raw(data: Record<string, unknown>, options: { live?: boolean; markedOnly?: boolean; id?: string } = {}): string {
    const id = options.id ?? `${this.scope}_e${this.events.length + 1}`;
    this.events.push({ id, data, live: options.live ?? false, markedOnly: options.markedOnly ?? false });
    return id;
  }

  private eventData(type: EventType, orderId: string, spec: EventSpec): Record<string, unknown> {
    const userId = this.user(spec.user ?? "u1");
    return {
      provider: "paynow",
      type,
      orderId,
      userId,
      productId: spec.product ?? [...this.products.keys()][0],
      quantity: spec.quantity ?? 1,
      createdAt: this.at(spec.day, spec.minute ?? this.events.length),
      processed: false,
    };
  }

  /** A purchase; returns its order id and event id. */
  purchase(spec: EventSpec): { orderId: string; eventId: string } {
    const orderId = `${this.scope}_o${++this.orders}`;
    const eventId = this.raw(this.eventData("order.completed", orderId, spec), spec);
    return { orderId, eventId };
  }

  /** Another completed event for an existing order (a webhook the provider sent twice). */
  duplicatePurchase(orderId: string, spec: EventSpec): string {
    return this.raw(this.eventData("order.completed", orderId, spec), spec);
  }

  reversal(orderId: string, spec: EventSpec & { type?: "order.refunded" | "order.chargeback" }): string {
    return this.raw(this.eventData(spec.type ?? "order.refunded", orderId, spec), spec);
  }

  /** Writes products and events, then lets live processing handle the `live` events, purchases first. */
  async write(): Promise<void> {
    const firestore = db();
    const batch = firestore.batch();
    for (const [id, points] of this.products) batch.set(firestore.collection("products").doc(id), { name: id, points });
    for (const e of this.events) batch.set(firestore.collection("webhookEvents").doc(e.id), e.data);
    await batch.commit();
    const catalog = new ProductCatalog(firestore);
    const live = this.events.filter((e) => e.live);
    for (const e of [...live.filter((x) => x.data.type === "order.completed"), ...live.filter((x) => x.data.type !== "order.completed")]) {
      await applyEvent(firestore, e.id, catalog);
    }
    for (const e of this.events.filter((x) => x.markedOnly)) {
      await firestore.collection("webhookEvents").doc(e.id).update({ processed: true, processedBy: null });
    }
  }

  /** Every ledger entry of this store's users, by id. */
  async ledger(): Promise<Map<string, LedgerEntry>> {
    const entries = new Map<string, LedgerEntry>();
    const users = [...this.users];
    for (let i = 0; i < users.length; i += 30) {
      const snap = await db().collection("ledgerEntries").where("userId", "in", users.slice(i, i + 30)).get();
      for (const doc of snap.docs) entries.set(doc.id, doc.data() as LedgerEntry);
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
    return ((await db().collection("webhookEvents").doc(id).get()).data() ?? {});
  }

  async processedIds(): Promise<string[]> {
    const snaps = await db().getAll(...this.events.map((e) => db().collection("webhookEvents").doc(e.id)));
    return snaps.filter((s) => s.get("processed") === true).map((s) => s.id).sort();
  }

  id(local: string): string {
    return `${this.scope}_${local}`;
  }
}
