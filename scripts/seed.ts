// Sample data for the local stack: a small PayNow store with three weeks of orders in January 2025, where
// live processing worked for most events but not all — the situations this product exists to repair.
import { getApps, initializeApp } from "firebase-admin/app";
import { getFirestore, Timestamp, type Firestore } from "firebase-admin/firestore";
import { applyEvent } from "../functions/src/ledger/apply";
import { ProductCatalog } from "../functions/src/ledger/reads";
import { DEFAULT_WALLET_FIELD } from "../functions/src/core/paynow";
import {
  chargeback,
  chargebackClosed,
  deliveryItemAdded,
  EXAMPLE_POINTS,
  FlakeIds,
  minecraftCustomer,
  orderCompleted,
  orderOf,
  refund,
  type CatalogProduct,
  type Customer,
  type Envelope,
  type LineSpec,
} from "./paynow-payloads";
import { PROJECT_ID } from "./setup";

export const SAMPLE_RANGE = { startDate: "2025-01-01", endDate: "2025-01-21" };

/** The sample store's catalog: PayNow products, and the points each credits (`products/{product_id}`). */
const CATALOG: Array<CatalogProduct & { points: number }> = [
  {
    id: "598214512046850048",
    versionId: "598214512055238656",
    slug: "starter-pack",
    name: "Starter pack",
    price: 299,
    points: 100,
  },
  {
    id: "598214598340460544",
    versionId: "598214598348849152",
    slug: "gem-bundle-small",
    name: "Gem bundle (small)",
    price: 499,
    points: 250,
  },
  {
    id: "598214677453422592",
    versionId: "598214677461811200",
    slug: "gem-bundle-large",
    name: "Gem bundle (large)",
    price: 1999,
    points: 1200,
  },
  {
    id: "598214751894487040",
    versionId: "598214751902875648",
    slug: "season-pass",
    name: "Season pass",
    price: 1499,
    points: 800,
  },
  {
    id: "598214826368548864",
    versionId: "598214826376937472",
    slug: "dragon-skin",
    name: "Dragon skin",
    price: 899,
    points: 450,
  },
  {
    id: "598214899802423296",
    versionId: "598214899810811904",
    slug: "xp-booster",
    name: "XP booster",
    price: 199,
    points: 60,
  },
];

/** A product PayNow still sells but the catalog lost: its orders fail PRODUCT_NOT_FOUND. */
const LEGACY_PRODUCT: CatalogProduct = {
  id: "512990431172108288",
  versionId: "512990431180496896",
  slug: "legacy-bundle-2019",
  name: "Legacy bundle (2019)",
  price: 2499,
};

/** A small deterministic PRNG (mulberry32), so every `npm start` (and every benchmark) seeds the same store. */
export function random(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface SeedEvent {
  id: string;
  data: Record<string, unknown>;
  /**
   * What live processing did with it: applied it, missed it, or marked a refund or chargeback processed
   * without writing its reversal (the bug a reversal backfill repairs). `other` is a type that moves no money.
   */
  fate: "live" | "missed" | "processed_without_reversal" | "other";
}

/** Unprocessed orders on 22–28 January 2025, after the incident's three weeks. */
export const BUSY_WEEK_EVENTS = 15_000;
export const BUSY_WEEK = { startDate: "2025-01-22", endDate: "2025-01-28" } as const;

const stored = (e: Envelope, atMs: number): Record<string, unknown> => ({
  ...e,
  createdAt: Timestamp.fromMillis(atMs),
  processed: false,
});

/** The sample store's players: PayNow customers of a Minecraft store. */
export function sampleCustomers(): Customer[] {
  const ids = new FlakeIds();
  const names = [
    "Gravel_Queen",
    "PixelFern",
    "RedstoneRex",
    "MossyMiner",
    "NetherNova",
    "CreeperKid",
    "BlazeRunner",
    "OakenShield",
    "LapisLynx",
    "EnderEcho",
    "CopperCat",
    "FrostByte",
  ];
  return Array.from({ length: 24 }, (_, i) =>
    minecraftCustomer(
      ids.next(Date.UTC(2024, 0, 1 + i * 9)),
      `${names[i % names.length]}${i >= names.length ? "_2" : ""}`,
    ),
  );
}

export function sampleEvents(): SeedEvent[] {
  const rand = random(20250101);
  const ids = new FlakeIds();
  const pick = <T>(items: readonly T[]) => items[Math.floor(rand() * items.length)] as T;
  const customers = sampleCustomers();
  const events: SeedEvent[] = [];
  const at = (day: number, minute: number) => Date.UTC(2025, 0, day, 0, minute) + Math.floor(rand() * 60_000);
  const outage = (day: number) => day >= 8 && day <= 12;
  const add = (e: Envelope, atMs: number, fate: SeedEvent["fate"]) => {
    events.push({ id: e.event_id, data: stored(e, atMs), fate });
    return e;
  };

  for (let day = 1; day <= 21; day++) {
    // 8 to 16 orders a day; on 8–12 January the webhook consumer was down and nothing got processed.
    const orders = 8 + Math.floor(rand() * 9);
    for (let n = 0; n < orders; n++) {
      const customer = pick(customers);
      const atMs = at(day, Math.floor(rand() * 1430));
      const size = rand() < 0.7 ? 1 : rand() < 0.66 ? 2 : 3;
      const lines: LineSpec[] = Array.from({ length: size }, () => ({
        product: pick(CATALOG),
        quantity: rand() < 0.8 ? 1 : 2 + Math.floor(rand() * 2),
        ...(rand() < 0.08 ? { giftTo: pick(customers.filter((c) => c !== customer)) } : {}),
      }));
      const missed = outage(day) || rand() < 0.05;
      const order = add(orderCompleted(ids, { atMs, customer, lines }), atMs, missed ? "missed" : "live");
      const { orderId, total, lineTotals } = orderOf(order);
      if (rand() < 0.3)
        add(
          deliveryItemAdded(ids, { atMs: atMs + 2_000, customer, product: (lines[0] as LineSpec).product, orderId }),
          atMs + 2_000,
          "other",
        );

      const roll = rand();
      if (roll >= 0.12) continue;
      // Refunded (the whole order, or one line of it) or charged back a day or two later.
      const laterDay = Math.min(21, day + 1 + Math.floor(rand() * 2));
      const laterMs = at(laterDay, Math.floor(rand() * 1430));
      const fate = missed || outage(laterDay) ? "missed" : rand() < 0.5 ? "processed_without_reversal" : "live";
      if (roll < 0.08) {
        const refundAmount = size > 1 && rand() < 0.5 ? (lineTotals[Math.floor(rand() * size)] as number) : total;
        add(refund(ids, { atMs: laterMs, orderId, customer, paymentAmount: total, refundAmount }), laterMs, fate);
      } else {
        add(chargeback(ids, { atMs: laterMs, orderId, customer, amount: total }), laterMs, fate);
        // The dispute closes a few days later, when it closes within the three weeks.
        const closedDay = laterDay + 2 + Math.floor(rand() * 4);
        if (closedDay <= 21) {
          const closedMs = at(closedDay, Math.floor(rand() * 1430));
          const closingFate = fate === "missed" || outage(closedDay) ? "missed" : "live";
          add(
            chargebackClosed(ids, {
              atMs: closedMs,
              orderId,
              customer,
              amount: total,
              outcome: rand() < 0.5 ? "won" : "lost",
              openedMs: laterMs,
            }),
            closedMs,
            closingFate,
          );
        }
      }
    }
  }
  // The cases every store meets, once each: a chargeback won and one lost, both missed by live processing.
  for (const [day, outcome] of [
    [4, "won"],
    [6, "lost"],
  ] as const) {
    const customer = pick(customers);
    const atMs = at(day, 300);
    const order = add(
      orderCompleted(ids, {
        atMs,
        customer,
        lines: [
          { product: pick(CATALOG), quantity: 1 },
          { product: pick(CATALOG), quantity: 2 },
        ],
      }),
      atMs,
      "live",
    );
    const { orderId, total } = orderOf(order);
    add(chargeback(ids, { atMs: at(day + 1, 600), orderId, customer, amount: total }), at(day + 1, 600), "missed");
    add(
      chargebackClosed(ids, {
        atMs: at(day + 5, 900),
        orderId,
        customer,
        amount: total,
        outcome,
        openedMs: at(day + 1, 600),
      }),
      at(day + 5, 900),
      "missed",
    );
  }
  // PayNow sent one order twice under two event ids (a resend): the second is skipped, never credited twice.
  const resent = events.find((e) => e.data.event_type === "ON_ORDER_COMPLETED" && e.fate === "live") as SeedEvent;
  const again = structuredClone({
    event_type: resent.data.event_type,
    event_id: ids.next(Date.UTC(2025, 0, 15, 9)),
    body: resent.data.body,
  }) as Envelope;
  add(again, Date.UTC(2025, 0, 15, 9), "missed");

  // A busy week after the incident (22–28 January) whose orders were never processed either: large enough
  // that a run over it is still going a minute later (the runbook pauses, resumes and cancels one).
  for (let i = 0; i < BUSY_WEEK_EVENTS; i++) {
    const atMs = at(22 + (i % 7), Math.floor(rand() * 1430));
    add(
      orderCompleted(ids, { atMs, customer: pick(customers), lines: [{ product: pick(CATALOG), quantity: 1 }] }),
      atMs,
      "missed",
    );
  }
  // Broken data a replay must report, not hide.
  const who = customers[3] as Customer;
  for (const day of [3, 14])
    add(
      orderCompleted(ids, { atMs: at(day, 600), customer: who, lines: [{ product: LEGACY_PRODUCT, quantity: 1 }] }),
      at(day, 600),
      "missed",
    );
  // A refund of an order this store never saw completed (ORIGINAL_PURCHASE_NOT_FOUND).
  add(
    refund(ids, {
      atMs: at(16, 90),
      orderId: "597911040316411904",
      customer: who,
      paymentAmount: 971,
      refundAmount: 971,
    }),
    at(16, 90),
    "missed",
  );
  // A refund of an amount that is neither the order's total nor one of its lines (REFUND_UNMATCHED).
  const partial = add(
    orderCompleted(ids, {
      atMs: at(13, 200),
      customer: who,
      lines: [
        { product: CATALOG[0] as CatalogProduct, quantity: 1 },
        { product: CATALOG[3] as CatalogProduct, quantity: 1 },
      ],
    }),
    at(13, 200),
    "missed",
  );
  add(
    refund(ids, {
      atMs: at(17, 400),
      orderId: orderOf(partial).orderId,
      customer: who,
      paymentAmount: orderOf(partial).total,
      refundAmount: 500,
    }),
    at(17, 400),
    "missed",
  );
  // An order whose customer is missing (INVALID_EVENT).
  const malformed = orderCompleted(ids, {
    atMs: at(18, 30),
    customer: who,
    lines: [{ product: CATALOG[1] as CatalogProduct, quantity: 1 }],
  });
  delete malformed.body.customer;
  add(malformed, at(18, 30), "missed");
  return events;
}

export interface SeedSummary {
  products: number;
  users: number;
  events: number;
  /** Never processed, in the incident's three weeks. */
  unprocessed: number;
  /** Never processed, in the busy week after them. */
  busyWeek: number;
  missingReversals: number;
  /** Stored events of types that move no money. */
  otherTypes: number;
  broken: number;
}

export function emulatorDb(): Firestore {
  if (!process.env.FIRESTORE_EMULATOR_HOST)
    throw new Error("FIRESTORE_EMULATOR_HOST is not set; run this against the local stack.");
  if (getApps().length === 0) initializeApp({ projectId: PROJECT_ID });
  return getFirestore();
}

/** Writes the sample store; safe to run again (same ids, live processing skips what it already did). */
export async function seedSampleData(db: Firestore = emulatorDb()): Promise<SeedSummary> {
  const events = sampleEvents();
  const writer = db.bulkWriter();
  const writes = [
    // The catalog, with the products of `npm run paynow -- example` under PayNow's product ids.
    ...[
      ...CATALOG.map((p) => [p.id, { name: p.name, points: p.points }] as const),
      ...Object.entries(EXAMPLE_POINTS),
    ].map(([id, product]) => writer.set(db.collection("products").doc(id), product)),
    // create, not set: seeding again must not undo what a run already repaired.
    ...events.map((e) =>
      writer.create(db.collection("webhookEvents").doc(e.id), e.data).catch((error: { code?: number }) => {
        if (error.code !== 6 /* ALREADY_EXISTS */) throw error;
      }),
    ),
  ];
  await writer.close();
  await Promise.all(writes);

  // Live processing, through the same applyEvent code a replay uses: orders first, then refunds and
  // chargebacks, then closings, each in time order (as they arrived).
  const catalog = new ProductCatalog(db);
  const ms = (e: SeedEvent) => (e.data.createdAt as Timestamp).toMillis();
  const live = events.filter((e) => e.fate === "live").sort((a, b) => ms(a) - ms(b));
  const wallet = { walletField: DEFAULT_WALLET_FIELD };
  for (const types of [["ON_ORDER_COMPLETED"], ["ON_REFUND", "ON_CHARGEBACK"], ["ON_CHARGEBACK_CLOSED"]]) {
    for (const e of live.filter((x) => types.includes(x.data.event_type as string)))
      await applyEvent(db, e.id, wallet, catalog);
  }
  // The bug this product repairs: refunds and chargebacks marked processed whose reversal was never written.
  for (const e of events.filter((x) => x.fate === "processed_without_reversal")) {
    await db
      .collection("webhookEvents")
      .doc(e.id)
      .update({ processed: true, processedAt: Timestamp.now(), processedBy: null });
  }
  return {
    products: CATALOG.length + Object.keys(EXAMPLE_POINTS).length,
    users: sampleCustomers().length,
    events: events.length,
    unprocessed: events.filter((e) => e.fate === "missed").length - BUSY_WEEK_EVENTS,
    busyWeek: BUSY_WEEK_EVENTS,
    missingReversals: events.filter((e) => e.fate === "processed_without_reversal").length,
    otherTypes: events.filter((e) => e.fate === "other").length,
    broken: 5,
  };
}

if (process.argv[1]?.endsWith("seed.ts")) {
  const summary = await seedSampleData();
  console.log(JSON.stringify(summary));
}
