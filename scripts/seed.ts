// Sample data for the local stack: a small PayNow store with three weeks of orders in January 2025, where
// live processing worked for most events but not all — the situations this product exists to repair.
import { getApps, initializeApp } from "firebase-admin/app";
import { getFirestore, Timestamp, type Firestore } from "firebase-admin/firestore";
import { applyEvent, ProductCatalog } from "../functions/src/ledger/apply";
import { EXAMPLE_POINTS } from "./paynow-payloads";
import { PROJECT_ID } from "./setup";

export const SAMPLE_RANGE = { startDate: "2025-01-01", endDate: "2025-01-21" };

const PRODUCTS: Record<string, { name: string; points: number }> = {
  starter_pack: { name: "Starter pack", points: 100 },
  gem_bundle_small: { name: "Gem bundle (small)", points: 250 },
  gem_bundle_large: { name: "Gem bundle (large)", points: 1200 },
  season_pass: { name: "Season pass", points: 800 },
  skin_dragon: { name: "Dragon skin", points: 450 },
  booster_xp: { name: "XP booster", points: 60 },
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
  /** What live processing did with it. */
  fate: "live" | "missed" | "processed_without_reversal";
}

/** Unprocessed purchases on 22–28 January 2025, after the incident's three weeks. */
export const BUSY_WEEK_EVENTS = 15_000;
export const BUSY_WEEK = { startDate: "2025-01-22", endDate: "2025-01-28" } as const;

export function sampleEvents(): SeedEvent[] {
  const rand = random(20250101);
  const pick = <T>(items: readonly T[]) => items[Math.floor(rand() * items.length)] as T;
  const productIds = Object.keys(PRODUCTS);
  const users = Array.from({ length: 24 }, (_, i) => `user_${String(i + 1).padStart(3, "0")}`);
  const events: SeedEvent[] = [];
  const at = (day: number, minute: number) => Timestamp.fromMillis(Date.UTC(2025, 0, day, 0, minute));
  const base = (type: string, orderId: string, userId: string, productId: string, day: number, minute: number) => ({
    provider: "paynow",
    type,
    orderId,
    userId,
    productId,
    quantity: 1,
    createdAt: at(day, minute),
    processed: false,
  });

  let order = 0;
  for (let day = 1; day <= 21; day++) {
    // 8 to 16 orders a day; on 8–12 January the webhook consumer was down and nothing got processed.
    const orders = 8 + Math.floor(rand() * 9);
    const outage = day >= 8 && day <= 12;
    for (let n = 0; n < orders; n++) {
      order++;
      const orderId = `po_${String(order).padStart(5, "0")}`;
      const userId = pick(users);
      const productId = pick(productIds);
      const minute = Math.floor(rand() * 1440);
      const purchase = base("order.completed", orderId, userId, productId, day, minute);
      if (rand() < 0.15) purchase.quantity = 2;
      const missed = outage || rand() < 0.05;
      events.push({ id: `evt_${orderId}_completed`, data: purchase, fate: missed ? "missed" : "live" });

      const roll = rand();
      if (roll < 0.12) {
        // Refunded or charged back a day or two later.
        const type = roll < 0.08 ? "order.refunded" : "order.chargeback";
        const laterDay = Math.min(21, day + 1 + Math.floor(rand() * 2));
        const reversal = base(type, orderId, userId, productId, laterDay, Math.floor(rand() * 1440));
        const fate = missed || (laterDay >= 8 && laterDay <= 12) ? "missed" : rand() < 0.5 ? "processed_without_reversal" : "live";
        events.push({ id: `evt_${orderId}_${type === "order.refunded" ? "refunded" : "chargeback"}`, data: reversal, fate });
      }
    }
  }
  // A busy week after the incident (22–28 January) whose purchases were never processed either: large
  // enough that a run over it is still going seconds later (the runbook pauses, resumes and cancels one).
  for (let i = 0; i < BUSY_WEEK_EVENTS; i++) {
    const day = 22 + (i % 7);
    const orderId = `pb_${String(i + 1).padStart(5, "0")}`;
    events.push({ id: `evt_${orderId}_completed`, data: base("order.completed", orderId, pick(users), pick(productIds), day, Math.floor(rand() * 1440)), fate: "missed" });
  }
  // Broken data a replay must report, not hide.
  events.push(
    { id: "evt_po_legacy_1_completed", data: base("order.completed", "po_legacy_1", "user_004", "legacy_bundle_2019", 3, 600), fate: "missed" },
    { id: "evt_po_legacy_2_completed", data: base("order.completed", "po_legacy_2", "user_011", "legacy_bundle_2019", 14, 720), fate: "missed" },
    { id: "evt_po_orphan_refunded", data: base("order.refunded", "po_orphan", "user_007", "skin_dragon", 16, 90), fate: "missed" },
    {
      id: "evt_malformed_1",
      data: { provider: "paynow", type: "order.completed", orderId: "po_malformed_1", productId: "starter_pack", createdAt: at(18, 30), processed: false },
      fate: "missed",
    },
  );
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
  broken: number;
}

export function emulatorDb(): Firestore {
  if (!process.env.FIRESTORE_EMULATOR_HOST) throw new Error("FIRESTORE_EMULATOR_HOST is not set; run this against the local stack.");
  if (getApps().length === 0) initializeApp({ projectId: PROJECT_ID });
  return getFirestore();
}

/** Writes the sample store; safe to run again (same ids, live processing skips what it already did). */
export async function seedSampleData(db: Firestore = emulatorDb()): Promise<SeedSummary> {
  const events = sampleEvents();
  const writer = db.bulkWriter();
  const writes = [
    // The catalog, with the products of `npm run paynow -- example` under PayNow's product ids.
    ...Object.entries({ ...PRODUCTS, ...EXAMPLE_POINTS }).map(([id, product]) => writer.set(db.collection("products").doc(id), product)),
    // create, not set: seeding again must not undo what a run already repaired.
    ...events.map((e) =>
      writer.create(db.collection("webhookEvents").doc(e.id), e.data).catch((error: { code?: number }) => {
        if (error.code !== 6 /* ALREADY_EXISTS */) throw error;
      }),
    ),
  ];
  await writer.close();
  await Promise.all(writes);

  // Live processing, through the same applyEvent code a replay uses; purchases first, then reversals.
  const catalog = new ProductCatalog(db);
  const live = events.filter((e) => e.fate === "live");
  for (const type of ["order.completed", "order.refunded", "order.chargeback"]) {
    for (const e of live.filter((x) => x.data.type === type)) await applyEvent(db, e.id, catalog);
  }
  // The bug this product repairs: refunds marked processed whose reversal was never written.
  for (const e of events.filter((x) => x.fate === "processed_without_reversal")) {
    await db.collection("webhookEvents").doc(e.id).update({ processed: true, processedAt: Timestamp.now(), processedBy: null });
  }
  return {
    products: Object.keys(PRODUCTS).length + Object.keys(EXAMPLE_POINTS).length,
    users: new Set(events.map((e) => e.data.userId).filter(Boolean)).size,
    events: events.length,
    unprocessed: events.filter((e) => e.fate === "missed").length - BUSY_WEEK_EVENTS,
    busyWeek: BUSY_WEEK_EVENTS,
    missingReversals: events.filter((e) => e.fate === "processed_without_reversal").length,
    broken: 4,
  };
}

if (process.argv[1]?.endsWith("seed.ts")) {
  const summary = await seedSampleData();
  console.log(JSON.stringify(summary));
}
