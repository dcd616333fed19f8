// The money rules over PayNow events (functions/src/core/money.ts), checked against an oracle written
// from the README's rules alone: random stores of multi-line orders, gifts, refunds of a line or the
// whole order, chargebacks, closings won and lost, redeliveries and broken events, in random order.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decideMoney } from "../../../functions/src/core/money";
import { type MoneyContext, type MoneyOutcome, type StoredEvent } from "../../../functions/src/core/outcomes";
import { moneyEntryId, type MoneyEntry } from "../../../functions/src/core/ledger";
import type { Product } from "../../../functions/src/core/ledger";
import {
  chargeback,
  chargebackClosed,
  FlakeIds,
  minecraftCustomer,
  orderCompleted,
  orderOf,
  refund,
  type CatalogProduct,
  type Customer,
  type Envelope,
} from "../../../scripts/paynow-payloads";

const seed = Number(process.env.MONEY_SEED ?? 20_261_201);
const T0 = Date.UTC(2025, 0, 10, 12);

const CATALOG: CatalogProduct[] = [
  { id: "598214100215279616", versionId: "604417733190688768", slug: "vip-rank", name: "VIP Rank", price: 999 },
  { id: "598214367081775104", versionId: "598214367090163712", slug: "1000-gems", name: "1000 Gems", price: 499 },
  { id: "598214500000000000", versionId: "598214500000000001", slug: "coins", name: "Coins", price: 499 },
  { id: "598214600000000000", versionId: "598214600000000001", slug: "legacy", name: "Legacy bundle", price: 1500 },
];
const POINTS = new Map<string, Product | null>([
  [CATALOG[0]!.id, { name: "VIP", points: 1000 }],
  [CATALOG[1]!.id, { name: "Gems", points: 50 }],
  [CATALOG[2]!.id, null], // present, but without a usable points value
  // CATALOG[3] is missing from the catalog
]);
const CUSTOMERS: Customer[] = ["601955712043163648", "601958830127697920", "603120447719821312"].map((id, i) =>
  minecraftCustomer(id, ["BlockSmith42", "PixelFern", "Gravel_Queen"][i]!),
);

// ---------------------------------------------------------------------------------------------------
// The oracle: the README's rules, on a plain model of orders and lines.
type Expect = { result: "processed" | "skipped" | "error"; code?: string };
interface OLine {
  id: string;
  amount: number;
  points: number;
  wallet: string;
  reversed: null | "refund" | "chargeback";
  reinstated: boolean;
}
class Oracle {
  orders = new Map<string, { total: number; lines: OLine[] }>();
  wallets = new Map<string, number>();
  constructor(private readonly walletOf: (c: Customer) => string) {}
  private move(wallet: string, points: number) {
    this.wallets.set(wallet, (this.wallets.get(wallet) ?? 0) + points);
  }
  apply(e: Envelope, broken: boolean): Expect {
    if (broken) return { result: "error", code: "INVALID_EVENT" };
    const b = e.body as Record<string, any>;
    if (e.event_type === "ON_ORDER_COMPLETED") {
      // A redelivery names the same lines (PayNow's line ids are the order's).
      if (this.orders.get(b.id)?.lines.some((l) => (b.lines as Array<{ id: string }>).some((x) => x.id === l.id)))
        return { result: "skipped" };
      const lines: OLine[] = [];
      for (const l of b.lines) {
        const product = POINTS.get(l.product_id);
        if (product === undefined) return { result: "error", code: "PRODUCT_NOT_FOUND" };
        if (product === null) return { result: "error", code: "PRODUCT_INVALID" };
        lines.push({
          id: l.id,
          amount: l.total_amount,
          points: product.points * l.quantity,
          wallet: this.walletOf(l.gift_to_customer ?? b.customer),
          reversed: null,
          reinstated: false,
        });
      }
      this.orders.set(b.id, { total: b.total_amount, lines });
      for (const l of lines) this.move(l.wallet, l.points);
      return { result: "processed" };
    }
    if (e.event_type === "ON_CHARGEBACK_CLOSED" && b.chargeback_status === "lost") return { result: "skipped" };
    const order = this.orders.get(b.order_id);
    if (!order) return { result: "error", code: "ORIGINAL_PURCHASE_NOT_FOUND" };
    const open = order.lines.filter((l) => l.reversed === null);
    if (e.event_type === "ON_CHARGEBACK_CLOSED") {
      const charged = order.lines.filter((l) => l.reversed === "chargeback");
      if (charged.length === 0) return { result: "error", code: "CHARGEBACK_NOT_REVERSED" };
      const todo = charged.filter((l) => !l.reinstated);
      if (todo.length === 0) return { result: "skipped" };
      for (const l of todo) {
        l.reinstated = true;
        this.move(l.wallet, l.points);
      }
      return { result: "processed" };
    }
    if (open.length === 0) return { result: "skipped" };
    let targets = open;
    if (e.event_type === "ON_REFUND") {
      const amount = b.store_refund_amount as number;
      const sum = open.reduce((s, l) => s + l.amount, 0);
      if (amount !== order.total && amount !== sum) {
        const one = open.find((l) => l.amount === amount);
        if (!one) return { result: "error", code: "REFUND_UNMATCHED" };
        targets = [one];
      }
    }
    for (const l of targets) {
      l.reversed = e.event_type === "ON_REFUND" ? "refund" : "chargeback";
      this.move(l.wallet, -l.points);
    }
    return { result: "processed" };
  }
}

// ---------------------------------------------------------------------------------------------------
// Random stores: each order's events, interleaved across orders.
interface Spec {
  orders: Array<{
    customer: number;
    lines: Array<{ product: number; quantity: number; gift: number | null; amount: number | null }>;
    follow: Array<{ kind: "refund" | "chargeback" | "won" | "lost" | "redeliver" | "orphan"; pick: number }>;
    broken: boolean;
  }>;
  shuffle: number[];
}
const specArb: fc.Arbitrary<Spec> = fc.record({
  orders: fc.array(
    fc.record({
      customer: fc.nat(CUSTOMERS.length - 1),
      lines: fc.array(
        fc.record({
          product: fc.oneof(
            { weight: 6, arbitrary: fc.nat(1) },
            { weight: 1, arbitrary: fc.integer({ min: 2, max: 3 }) },
          ),
          quantity: fc.integer({ min: 1, max: 3 }),
          gift: fc.option(fc.nat(CUSTOMERS.length - 1), { freq: 4 }),
          // Equal line totals make "the first open line" matter.
          amount: fc.option(fc.constantFrom(500, 1000, 1500), { freq: 2 }),
        }),
        { minLength: 1, maxLength: 3 },
      ),
      follow: fc.array(
        fc.record({
          kind: fc.constantFrom("refund", "refund", "chargeback", "won", "lost", "redeliver", "orphan"),
          pick: fc.nat(99),
        }),
        { maxLength: 4 },
      ),
      broken: fc.constantFrom(false, false, false, true),
    }),
    { minLength: 1, maxLength: 5 },
  ),
  shuffle: fc.array(fc.nat(1000), { minLength: 40, maxLength: 40 }),
});

function build(spec: Spec): Array<{ env: Envelope; broken: boolean; at: number }> {
  const ids = new FlakeIds();
  const out: Array<{ env: Envelope; broken: boolean; at: number }> = [];
  let clock = T0;
  for (const o of spec.orders) {
    const customer = CUSTOMERS[o.customer]!;
    const order = orderCompleted(ids, {
      atMs: (clock += 60_000),
      customer,
      lines: o.lines.map((l) => ({
        product: CATALOG[l.product]!,
        quantity: l.quantity,
        giftTo: l.gift === null ? undefined : CUSTOMERS[l.gift],
        totalAmount: l.amount ?? undefined,
      })),
    });
    const first = o.broken ? { ...order, body: { ...order.body, customer: undefined } } : order;
    out.push({ env: first, broken: o.broken, at: clock });
    const { orderId, total, lineTotals } = orderOf(order);
    for (const f of o.follow) {
      const at = (clock += 60_000);
      if (f.kind === "refund") {
        const sum = (from: number) => lineTotals.slice(from).reduce((s, a) => s + a, 0);
        const choices = [total, ...lineTotals, sum(1), sum(1), sum(2), 1 + (f.pick % 7)];
        out.push({
          env: refund(ids, {
            atMs: at,
            orderId,
            customer,
            paymentAmount: total,
            refundAmount: choices[f.pick % choices.length]!,
          }),
          broken: false,
          at,
        });
      } else if (f.kind === "chargeback")
        out.push({ env: chargeback(ids, { atMs: at, orderId, customer, amount: total }), broken: false, at });
      else if (f.kind === "won" || f.kind === "lost")
        out.push({
          env: chargebackClosed(ids, { atMs: at, orderId, customer, amount: total, outcome: f.kind }),
          broken: false,
          at,
        });
      else if (f.kind === "redeliver") out.push({ env: { ...first, event_id: ids.next(at) }, broken: o.broken, at });
      else
        out.push({
          env: refund(ids, { atMs: at, orderId: ids.next(at), customer, paymentAmount: 100, refundAmount: 100 }),
          broken: false,
          at,
        });
    }
  }
  return out;
}

/** A ledger and wallets kept from the intents, as the Firestore edge would commit them. */
class Books {
  ledger = new Map<string, MoneyEntry>();
  shadow = new Map<string, MoneyEntry>();
  wallets = new Map<string, number>();
  processed = new Set<string>();
  decide(ctx: MoneyContext, events: StoredEvent[]): MoneyOutcome[] {
    const { outcomes, intents } = decideMoney(ctx, events, {
      ledger: this.ledger,
      shadow: this.shadow,
      products: POINTS,
    });
    for (const i of intents) {
      if (i.kind === "createEntry") {
        const target = i.target === "ledger" ? this.ledger : this.shadow;
        expect(target.has(i.id), `entry ${i.id} created twice`).toBe(false);
        target.set(i.id, i.entry);
      } else if (i.kind === "creditWallet") this.wallets.set(i.userId, (this.wallets.get(i.userId) ?? 0) + i.points);
      else if (i.kind === "markProcessed") this.processed.add(i.eventId);
    }
    return outcomes;
  }
}

const walletFields = [
  ["id", (c: Customer) => c.id],
  ["minecraft.id", (c: Customer) => c.minecraft!.id],
  ["profile.id", (c: Customer) => c.profile.id],
] as const;

describe("the money rules over PayNow events", () => {
  it(`decide what the README's rules decide, event by event, for random stores (fast-check seed ${seed})`, () => {
    fc.assert(
      fc.property(specArb, fc.nat(walletFields.length - 1), fc.boolean(), (spec, wf, grouped) => {
        const [walletField, walletOf] = walletFields[wf]!;
        // Orders' events keep their own order; orders interleave at random.
        const events = build(spec);
        const perOrder = new Map<string, typeof events>();
        for (const e of events) {
          const key = String(
            (e.env.body as { id?: string; order_id?: string }).order_id ?? (e.env.body as { id: string }).id,
          );
          perOrder.set(key, [...(perOrder.get(key) ?? []), e]);
        }
        const queues = [...perOrder.values()];
        const sequence: typeof events = [];
        for (let k = 0; queues.some((q) => q.length > 0); k++) {
          const live = queues.filter((q) => q.length > 0);
          sequence.push(live[(spec.shuffle[k % spec.shuffle.length] ?? 0) % live.length]!.shift()!);
        }

        const oracle = new Oracle(walletOf);
        const real = new Books();
        const dry = new Books();
        const ctx = { runId: "webhook_replay_1", mode: "webhook_replay", dryRun: false, walletField } as const;
        const dryCtx = { ...ctx, runId: "webhook_replay_0", dryRun: true } as const;
        const stored = sequence.map((e) => ({
          id: e.env.event_id,
          data: { ...e.env, createdAt: new Date(e.at), processed: false },
        }));
        const expected = sequence.map((e) => oracle.apply(e.env, e.broken));
        // Decided one at a time, or two at a time as one transaction would.
        const size = grouped ? 2 : 1;
        const outcomes: MoneyOutcome[] = [];
        const dryOutcomes: MoneyOutcome[] = [];
        for (let i = 0; i < stored.length; i += size) {
          outcomes.push(...real.decide(ctx, stored.slice(i, i + size)));
          dryOutcomes.push(...dry.decide(dryCtx, stored.slice(i, i + size)));
        }
        outcomes.forEach((o, i) => {
          const want = expected[i]!;
          expect(
            { result: o.result, ...(o.result === "error" ? { code: o.code } : {}) },
            `event ${i} (${sequence[i]!.env.event_type})`,
          ).toEqual(want);
        });
        const nonZero = (m: Map<string, number>) => new Map([...m].filter(([, v]) => v !== 0));
        expect(nonZero(real.wallets)).toEqual(nonZero(oracle.wallets));
        // Every wallet equals the sum of its entries, and a line has at most one of each kind of entry.
        const sums = new Map<string, number>();
        for (const e of real.ledger.values()) sums.set(e.userId, (sums.get(e.userId) ?? 0) + e.points);
        expect(nonZero(sums)).toEqual(nonZero(real.wallets));
        // A dry run decides the same against its shadow ledger, and moves no wallet.
        expect(dryOutcomes.map((o) => [o.result, o.result === "error" ? o.code : null])).toEqual(
          outcomes.map((o) => [o.result, o.result === "error" ? o.code : null]),
        );
        expect(dry.wallets.size).toBe(0);
        expect(dry.ledger.size).toBe(0);
        expect([...dry.shadow.keys()].sort()).toEqual([...real.ledger.keys()].sort());

        // Delivered again (a retried page: the marks not yet committed), the run counts the same and writes nothing.
        const before = new Map(real.ledger);
        const done = stored.filter((_, i) => outcomes[i]!.result === "processed");
        const again = done.map((s) => real.decide(ctx, [s])[0]!);
        expect(again).toEqual(outcomes.filter((o) => o.result === "processed"));
        expect(real.ledger).toEqual(before);
        // Another run meeting them unmarked finds nothing left to do for them.
        const other = done.map((s) => real.decide({ ...ctx, runId: "webhook_replay_2" }, [s])[0]!);
        expect(real.ledger).toEqual(before);
        expect(other.filter((o) => o.result === "processed")).toEqual([]);
      }),
      { seed, numRuns: 400 },
    );
  });
});

// ---------------------------------------------------------------------------------------------------
// The rules one by one, on the shapes the README describes.
describe("one rule at a time", () => {
  const ids = new FlakeIds();
  const [buyer, friend] = CUSTOMERS as [Customer, Customer];
  const vip = CATALOG[0]!;
  const gems = CATALOG[1]!;
  const ctx: MoneyContext = { runId: null, mode: "live", dryRun: false, walletField: "id" };
  const ev = (env: Envelope, extra: Record<string, unknown> = {}): StoredEvent => ({
    id: env.event_id,
    data: { ...env, createdAt: new Date(T0), ...extra },
  });
  const twoLines = orderCompleted(ids, {
    atMs: T0,
    customer: buyer,
    lines: [
      { product: vip, quantity: 1 },
      { product: gems, quantity: 3, giftTo: friend },
    ],
  });
  const { orderId, total, lineTotals } = orderOf(twoLines);
  const lineIds = (twoLines.body as { lines: Array<{ id: string }> }).lines.map((l) => l.id);

  it("credit each line's recipient the product's points × quantity, in entries named by order and line", () => {
    const books = new Books();
    const [o] = books.decide(ctx, [ev(twoLines)]);
    expect(o).toEqual({
      eventId: twoLines.event_id,
      result: "processed",
      entries: [
        { id: moneyEntryId("purchase", orderId, lineIds[0]!), kind: "purchase", userId: buyer.id, points: 1000 },
        { id: moneyEntryId("purchase", orderId, lineIds[1]!), kind: "purchase", userId: friend.id, points: 150 },
      ],
    });
    expect(books.ledger.get(moneyEntryId("purchase", orderId, lineIds[1]!))).toMatchObject({
      orderId,
      lineId: lineIds[1],
      userId: friend.id,
      productId: gems.id,
      points: 150,
      sourceEventId: twoLines.event_id,
      lineTotalAmount: lineTotals[1],
      orderTotalAmount: total,
      migrationId: null,
    });
    expect(books.processed).toEqual(new Set([twoLines.event_id]));
  });

  it("refuse a whole order when one line's product is missing, and name the product and the line", () => {
    const order = orderCompleted(ids, {
      atMs: T0,
      customer: buyer,
      lines: [
        { product: vip, quantity: 1 },
        { product: CATALOG[3]!, quantity: 1 },
      ],
    });
    const books = new Books();
    const [o] = books.decide(ctx, [ev(order)]);
    expect(o).toMatchObject({
      result: "error",
      code: "PRODUCT_NOT_FOUND",
      message: expect.stringContaining(CATALOG[3]!.id),
    });
    expect(books.ledger.size).toBe(0);
    expect(books.wallets.size).toBe(0);
  });

  it("skip an order that has its entries, whatever its products (a redelivery under a new event id)", () => {
    const books = new Books();
    books.decide(ctx, [ev(twoLines)]);
    const broken = {
      ...twoLines,
      event_id: ids.next(T0 + 1),
      body: { ...twoLines.body, lines: [{ ...(twoLines.body.lines as object[])[0], product_id: CATALOG[3]!.id }] },
    };
    expect(books.decide(ctx, [ev(broken)])[0]).toMatchObject({ result: "skipped", reason: "PURCHASE_EXISTS" });
  });

  it.each([
    ["no order id", (b: Record<string, unknown>) => ({ ...b, id: undefined }), "body.id"],
    ["no customer", (b: Record<string, unknown>) => ({ ...b, customer: null }), "body.customer"],
    ["a fractional total", (b: Record<string, unknown>) => ({ ...b, total_amount: 10.5 }), "body.total_amount"],
    ["no lines", (b: Record<string, unknown>) => ({ ...b, lines: [] }), "body.lines"],
    [
      "a line without a product",
      (b: Record<string, any>) => ({ ...b, lines: [{ ...b.lines[0], product_id: undefined }] }),
      "body.lines[0].product_id",
    ],
    [
      "a zero quantity",
      (b: Record<string, any>) => ({ ...b, lines: [{ ...b.lines[0], quantity: 0 }] }),
      "body.lines[0].quantity",
    ],
    [
      "a negative line total",
      (b: Record<string, any>) => ({ ...b, lines: [{ ...b.lines[0], total_amount: -1 }] }),
      "body.lines[0].total_amount",
    ],
    [
      "a gift recipient without an id",
      (b: Record<string, any>) => ({ ...b, lines: [b.lines[0], { ...b.lines[1], gift_to_customer: { name: "x" } }] }),
      "body.lines[1].gift_to_customer.id",
    ],
  ])("call an order with %s INVALID_EVENT, naming the field", (_name, change, field) => {
    const books = new Books();
    const [o] = books.decide(ctx, [ev({ ...twoLines, body: change(twoLines.body) })]);
    expect(o).toMatchObject({ result: "error", code: "INVALID_EVENT", message: expect.stringContaining(field) });
  });

  it("name the wallet field when the setting's field is missing", () => {
    const steamless = new Books();
    const [o] = steamless.decide({ ...ctx, walletField: "steam.id" }, [ev(twoLines)]);
    expect(o).toMatchObject({
      result: "error",
      code: "INVALID_EVENT",
      message: expect.stringContaining("body.customer.steam.id"),
    });
    const mc = new Books();
    mc.decide({ ...ctx, walletField: "minecraft.id" }, [ev(twoLines)]);
    expect([...mc.wallets.keys()].sort()).toEqual([buyer.minecraft!.id, friend.minecraft!.id].sort());
  });

  it("refund one whole line by its amount, the first open one of equal lines, then the rest by their sum", () => {
    const books = new Books();
    books.decide(ctx, [ev(twoLines)]);
    const r1 = refund(ids, {
      atMs: T0 + 1,
      orderId,
      customer: buyer,
      paymentAmount: total,
      refundAmount: lineTotals[1]!,
    });
    expect(books.decide(ctx, [ev(r1)])[0]).toMatchObject({
      result: "processed",
      entries: [{ kind: "reversal", userId: friend.id, points: -150 }],
    });
    expect(books.ledger.get(moneyEntryId("reversal", orderId, lineIds[1]!))).toMatchObject({
      reason: "refund",
      points: -150,
      sourceEventId: r1.event_id,
    });
    const r2 = refund(ids, {
      atMs: T0 + 2,
      orderId,
      customer: buyer,
      paymentAmount: total,
      refundAmount: lineTotals[0]!,
    });
    expect(books.decide(ctx, [ev(r2)])[0]).toMatchObject({
      result: "processed",
      entries: [{ kind: "reversal", userId: buyer.id, points: -1000 }],
    });
    const r3 = refund(ids, { atMs: T0 + 3, orderId, customer: buyer, paymentAmount: total, refundAmount: total });
    expect(books.decide(ctx, [ev(r3)])[0]).toMatchObject({ result: "skipped", reason: "ALREADY_REVERSED" });
    expect(books.wallets.get(buyer.id)).toBe(0);
    expect(books.wallets.get(friend.id)).toBe(0);
  });

  it("refund the open lines together when the amount is their sum", () => {
    const three = orderCompleted(ids, {
      atMs: T0,
      customer: buyer,
      lines: [
        { product: vip, quantity: 1 },
        { product: gems, quantity: 1 },
        { product: gems, quantity: 2 },
      ],
    });
    const o = orderOf(three);
    const books = new Books();
    books.decide(ctx, [ev(three)]);
    books.decide(ctx, [
      ev(
        refund(ids, {
          atMs: T0 + 1,
          orderId: o.orderId,
          customer: buyer,
          paymentAmount: o.total,
          refundAmount: o.lineTotals[0]!,
        }),
      ),
    ]);
    const rest = refund(ids, {
      atMs: T0 + 2,
      orderId: o.orderId,
      customer: buyer,
      paymentAmount: o.total,
      refundAmount: o.lineTotals[1]! + o.lineTotals[2]!,
    });
    expect(books.decide(ctx, [ev(rest)])[0]).toMatchObject({
      result: "processed",
      entries: [{ points: -50 }, { points: -100 }],
    });
    expect(books.wallets.get(buyer.id)).toBe(0);
  });

  it("say which amounts a refund could have matched when it matches none", () => {
    const books = new Books();
    books.decide(ctx, [ev(twoLines)]);
    const odd = refund(ids, { atMs: T0 + 1, orderId, customer: buyer, paymentAmount: total, refundAmount: 7 });
    const [o] = books.decide(ctx, [ev(odd)]);
    expect(o).toMatchObject({ result: "error", code: "REFUND_UNMATCHED" });
    const message = (o as { message: string }).message;
    for (const part of ["7", String(total), String(lineTotals[0]), String(lineTotals[1]), "PayNow's dashboard"])
      expect(message).toContain(part);
  });

  it("reverse every open line on a chargeback, reinstate them once when it is won, and leave a lost one reversed", () => {
    const books = new Books();
    books.decide(ctx, [ev(twoLines)]);
    books.decide(ctx, [
      ev(refund(ids, { atMs: T0 + 1, orderId, customer: buyer, paymentAmount: total, refundAmount: lineTotals[0]! })),
    ]);
    const cb = chargeback(ids, { atMs: T0 + 2, orderId, customer: buyer, amount: total });
    expect(books.decide(ctx, [ev(cb)])[0]).toMatchObject({
      result: "processed",
      entries: [{ kind: "reversal", userId: friend.id, points: -150 }],
    });
    const lost = chargebackClosed(ids, { atMs: T0 + 3, orderId, customer: buyer, amount: total, outcome: "lost" });
    expect(books.decide(ctx, [ev(lost)])[0]).toMatchObject({ result: "skipped", reason: "CHARGEBACK_LOST" });
    const won = chargebackClosed(ids, { atMs: T0 + 4, orderId, customer: buyer, amount: total, outcome: "won" });
    // Only the line the chargeback reversed comes back; the refunded one stays refunded.
    expect(books.decide(ctx, [ev(won)])[0]).toMatchObject({
      result: "processed",
      entries: [{ kind: "reinstatement", userId: friend.id, points: 150 }],
    });
    const wonAgain = chargebackClosed(ids, { atMs: T0 + 5, orderId, customer: buyer, amount: total, outcome: "won" });
    expect(books.decide(ctx, [ev(wonAgain)])[0]).toMatchObject({ result: "skipped", reason: "ALREADY_REINSTATED" });
    expect(books.wallets.get(friend.id)).toBe(150);
    expect(books.wallets.get(buyer.id)).toBe(0);
  });

  it("fail a won closing with no chargeback reversal, and every reversal of an order never credited", () => {
    const books = new Books();
    books.decide(ctx, [ev(twoLines)]);
    const won = chargebackClosed(ids, { atMs: T0 + 1, orderId, customer: buyer, amount: total, outcome: "won" });
    expect(books.decide(ctx, [ev(won)])[0]).toMatchObject({ result: "error", code: "CHARGEBACK_NOT_REVERSED" });
    const unknown = ids.next(T0);
    for (const env of [
      refund(ids, { atMs: T0, orderId: unknown, customer: buyer, paymentAmount: 1, refundAmount: 1 }),
      chargeback(ids, { atMs: T0, orderId: unknown, customer: buyer, amount: 1 }),
      chargebackClosed(ids, { atMs: T0, orderId: unknown, customer: buyer, amount: 1, outcome: "won" }),
    ]) {
      expect(books.decide(ctx, [ev(env)])[0]).toMatchObject({
        result: "error",
        code: "ORIGINAL_PURCHASE_NOT_FOUND",
        message: expect.stringContaining(unknown),
      });
    }
    const lostUnknown = chargebackClosed(ids, {
      atMs: T0,
      orderId: unknown,
      customer: buyer,
      amount: 1,
      outcome: "lost",
    });
    expect(books.decide(ctx, [ev(lostUnknown)])[0]).toMatchObject({ result: "skipped", reason: "CHARGEBACK_LOST" });
  });

  it.each([
    [
      "a refund without an order id",
      () => ({
        ...refund(ids, { atMs: T0, orderId, customer: buyer, paymentAmount: 1, refundAmount: 1 }),
        body: { store_refund_amount: 1 },
      }),
      "body.order_id",
    ],
    [
      "a refund without an amount",
      () => refund(ids, { atMs: T0, orderId, customer: buyer, paymentAmount: 1, refundAmount: -5 }),
      "body.store_refund_amount",
    ],
    [
      "a closing still pending",
      () => ({
        ...chargebackClosed(ids, { atMs: T0, orderId, customer: buyer, amount: 1, outcome: "won" }),
        body: { order_id: orderId, chargeback_status: "pending" },
      }),
      "chargeback_status",
    ],
  ])("call %s INVALID_EVENT", (_name, make, field) => {
    const books = new Books();
    books.decide(ctx, [ev(twoLines)]);
    expect(books.decide(ctx, [ev(make())])[0]).toMatchObject({
      result: "error",
      code: "INVALID_EVENT",
      message: expect.stringContaining(field),
    });
  });

  it("leave an event processed by someone else to them in a replay, and look at it in a reversal backfill", () => {
    const books = new Books();
    books.decide(ctx, [ev(twoLines)]);
    // Live processing marked the refund processed but its reversal was never written.
    const r = refund(ids, { atMs: T0 + 1, orderId, customer: buyer, paymentAmount: total, refundAmount: total });
    const marked = ev(r, { processed: true, processedBy: null });
    expect(
      books.decide({ runId: "webhook_replay_9", mode: "webhook_replay", dryRun: false, walletField: "id" }, [
        marked,
      ])[0],
    ).toMatchObject({ result: "skipped", reason: "ALREADY_PROCESSED" });
    const backfill = {
      runId: "reversal_backfill_9",
      mode: "reversal_backfill",
      dryRun: false,
      walletField: "id",
    } as const;
    expect(books.decide(backfill, [marked])[0]).toMatchObject({
      result: "processed",
      entries: [{ kind: "reversal" }, { kind: "reversal" }],
    });
    // Its own reversals exist now: another backfill finds nothing to do.
    expect(books.decide({ ...backfill, runId: "reversal_backfill_10" }, [marked])[0]).toMatchObject({
      result: "skipped",
      reason: "ALREADY_REVERSED",
    });
  });
});
