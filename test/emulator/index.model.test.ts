// The model-based test: random stores, random sequences of what operators do, and after every step a
// comparison with an oracle (test/support/oracle.ts) that knows only the README's rules.
//
// A store (fast-check, from a seed) is made of PayNow webhooks (scripts/paynow-payloads.ts): orders of one
// to three lines, quantities, gifts, wallets by customer id or Minecraft id, orders processed live or not
// and sent twice under two event ids, products removed from the catalog after live processing, missing or
// unusable; refunds of a whole order, of one line or of an amount matching nothing, and chargebacks, before
// or after their order, processed live, marked processed without their reversal, or open; chargebacks'
// closings won or lost; orphan refunds, invalid events, events of other types, events just outside the
// ranges. A sequence runs dry and real replays and reversal backfills over random ranges, capped or not,
// canaries or not, with pauses, resumes, cancels and kill switch flips at random page boundaries of random
// deliveries (delivered in random order, some twice at once), retries, catalog fixes, and new runs over the
// ranges of cancelled ones. Half the sequences cut busy days into shards of a few events. After each step:
// the run ended (after one watchdog pass at most); its counters equal the oracle's (a dry run's equal the
// real run's that follows it); they equal a recount of its page records and of the events its entries
// name; the ledger, every wallet and every event's processed mark equal the oracle's.
//
//   MODEL_SEQUENCES=200 npm run emulators:exec -- "vitest run test/emulator/index.model.test.ts"
//   MODEL_SEED=<seed> MODEL_SEQUENCES=1 npm run emulators:exec -- "vitest run test/emulator/index.model.test.ts"
import fc from "fast-check";
import { Timestamp } from "firebase-admin/firestore";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Config } from "../../functions/src/config";
import { controlRun } from "../../functions/src/runs/control";
import { repairRun } from "../../functions/src/runs/watchdog";
import { applyEvent } from "../../functions/src/ledger/apply";
import { ProductCatalog } from "../../functions/src/ledger/reads";
import {
  chargeback,
  chargebackClosed,
  deliveryItemAdded,
  FlakeIds,
  minecraftCustomer,
  orderCompleted,
  orderOf,
  refund,
  type CatalogProduct,
  type Customer,
  type Envelope,
} from "../../scripts/paynow-payloads";
import { seededStream } from "../support/bank";
import { currentDelivery, deliverWithRetries, startInProcess } from "../support/deliver";
import { db, RecordingQueue, setKillSwitch, testDeps, uniqueYear } from "../support/emulator";
import { Oracle, type OracleEvent, type Result, type RunSpec } from "../support/oracle";
import { expectRecount, runDoc } from "../support/runs";

const SEQUENCES = Number(process.env.MODEL_SEQUENCES ?? 30);
const FIRST_SEED = Number(process.env.MODEL_SEED ?? 11_000_001);
const BY = { email: "model@backfill.local", sub: "model" };
const DAY_MS = 86_400_000;

const tally = {
  sequences: 0,
  operations: 0,
  runs: 0,
  pairs: 0,
  cancels: 0,
  pauses: 0,
  killSwitchFlips: 0,
  retries: 0,
  catalogFixes: 0,
  canaryRuns: 0,
  planExecutions: 0,
  shardedRuns: 0,
  shards: 0,
  reinstatements: 0,
  refundsUnmatched: 0,
  gifts: 0,
  minecraftWallets: 0,
  duplicateDeliveries: 0,
  watchdogRepairs: 0,
  mismatches: 0,
};

afterEach(async () => {
  await setKillSwitch(null);
});
afterAll(() => {
  console.log(`model suite totals: ${JSON.stringify(tally)}`);
});

// ───────────────────────────── the generated store ─────────────────────────────

type ProductKind = "gems" | "coins" | "promo" | "ghost" | "broken";
/** What each product is: promo exists when live processing ran and is gone since; ghost never was; broken has no usable points. */
const POINTS: Record<ProductKind, number | null> = { gems: 10, coins: 25, promo: 40, ghost: null, broken: null };

interface LineSpec {
  product: ProductKind;
  quantity: number;
  /** A gift to this user (an index), or null. */
  gift: number | null;
}

/** What follows an order: a refund of the whole order, of one line, of an amount matching nothing, or a chargeback. */
interface FollowSpec {
  kind: "refund_order" | "refund_line" | "refund_odd" | "chargeback";
  /** The line a line refund is for (modulo the order's lines). */
  line: number;
  /** Days after the order it arrives (may be before it). */
  offset: number;
  state: "open" | "live" | "markedOnly";
}

interface OrderSpec {
  user: number;
  /** 0 and days+1 are just outside the store's days. */
  day: number;
  lines: LineSpec[];
  live: boolean;
  /** PayNow sent the order again under another event id, the same day or the next. */
  resent: "none" | "same" | "next";
  follows: FollowSpec[];
  /** A chargeback's closing, days after the last follow-up. */
  closing: { outcome: "won" | "lost"; offset: number; state: "open" | "live" } | null;
}

type Invalid = "no_customer" | "zero_quantity" | "no_lines" | "refund_no_order" | "bad_status" | "other_type";

interface StoreSpec {
  days: number;
  users: number;
  walletField: "id" | "minecraft.id";
  orders: OrderSpec[];
  orphans: number;
  invalid: Invalid[];
}

const storeArbitrary: fc.Arbitrary<StoreSpec> = fc
  .record({ days: fc.integer({ min: 1, max: 4 }), users: fc.integer({ min: 1, max: 4 }) })
  .chain(({ days, users }) =>
    fc.record({
      days: fc.constant(days),
      users: fc.constant(users),
      walletField: fc.constantFrom("id" as const, "minecraft.id" as const),
      orders: fc.array(
        fc.record({
          user: fc.integer({ min: 0, max: users - 1 }),
          day: fc.oneof(
            { weight: 8, arbitrary: fc.integer({ min: 1, max: days }) },
            { weight: 1, arbitrary: fc.constantFrom(0, days + 1) },
          ),
          lines: fc.array(
            fc.record({
              product: fc.oneof(
                { weight: 8, arbitrary: fc.constantFrom<ProductKind>("gems", "coins") },
                { weight: 1, arbitrary: fc.constantFrom<ProductKind>("promo", "ghost", "broken") },
              ),
              quantity: fc.integer({ min: 1, max: 3 }),
              gift: fc.oneof(
                { weight: 5, arbitrary: fc.constant(null) },
                { weight: 1, arbitrary: fc.integer({ min: 0, max: users - 1 }) },
              ),
            }),
            { minLength: 1, maxLength: 3 },
          ),
          live: fc.boolean(),
          resent: fc.oneof(
            { weight: 8, arbitrary: fc.constant("none" as const) },
            { weight: 1, arbitrary: fc.constantFrom("same" as const, "next" as const) },
          ),
          follows: fc.oneof(
            { weight: 3, arbitrary: fc.constant<FollowSpec[]>([]) },
            {
              weight: 3,
              arbitrary: fc.array(
                fc.record({
                  kind: fc.oneof(
                    {
                      weight: 4,
                      arbitrary: fc.constantFrom(
                        "refund_order" as const,
                        "refund_line" as const,
                        "chargeback" as const,
                        "chargeback" as const,
                      ),
                    },
                    { weight: 1, arbitrary: fc.constant("refund_odd" as const) },
                  ),
                  line: fc.integer({ min: 0, max: 2 }),
                  offset: fc.integer({ min: -1, max: 2 }),
                  state: fc.oneof(
                    { weight: 3, arbitrary: fc.constant("open" as const) },
                    { weight: 1, arbitrary: fc.constantFrom("live" as const, "markedOnly" as const) },
                  ),
                }),
                { minLength: 1, maxLength: 3 },
              ),
            },
          ),
          closing: fc.oneof(
            { weight: 3, arbitrary: fc.constant(null) },
            {
              weight: 2,
              arbitrary: fc.record({
                outcome: fc.constantFrom("won" as const, "won" as const, "lost" as const),
                offset: fc.integer({ min: 0, max: 2 }),
                state: fc.constantFrom("open" as const, "open" as const, "live" as const),
              }),
            },
          ),
        }),
        { minLength: 3, maxLength: 14 },
      ),
      orphans: fc.integer({ min: 0, max: 2 }),
      invalid: fc.array(
        fc.constantFrom<Invalid>(
          "no_customer",
          "zero_quantity",
          "no_lines",
          "refund_no_order",
          "bad_status",
          "other_type",
        ),
        { maxLength: 2 },
      ),
    }),
  );

// ───────────────────────────── the generated operations ─────────────────────────────

interface Interrupt {
  action: "pause" | "kill" | "cancel";
  /** Fires at the nth page boundary any delivery of the run reaches. */
  at: number;
}
interface RunOp {
  type: "webhook_replay" | "reversal_backfill";
  from: number;
  to: number;
  cap: number | null;
  /** A canary: the indexes of the users it covers (some may have no events), or null for everyone. */
  canary: number[] | null;
  interrupts: Interrupt[];
}
type Op =
  ({ kind: "pair" } & RunOp) | ({ kind: "run"; dry: boolean } & RunOp) | { kind: "retry" } | { kind: "fixCatalog" };

function opsArbitrary(days: number): fc.Arbitrary<Op[]> {
  const range = fc
    .tuple(fc.integer({ min: 0, max: days + 1 }), fc.integer({ min: 0, max: days + 1 }))
    .map(([a, b]) => (a <= b ? { from: a, to: b } : { from: b, to: a }));
  const interrupt = (actions: Array<Interrupt["action"]>) =>
    fc.record({ action: fc.constantFrom(...actions), at: fc.integer({ min: 1, max: 8 }) });
  const runOp = (actions: Array<Interrupt["action"]>) =>
    fc.record({
      type: fc.oneof(
        { weight: 3, arbitrary: fc.constant("webhook_replay" as const) },
        { weight: 1, arbitrary: fc.constant("reversal_backfill" as const) },
      ),
      range,
      cap: fc.oneof(
        { weight: 3, arbitrary: fc.constant(null) },
        { weight: 1, arbitrary: fc.integer({ min: 1, max: 12 }) },
      ),
      canary: fc.oneof(
        { weight: 3, arbitrary: fc.constant(null) },
        { weight: 1, arbitrary: fc.uniqueArray(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 2 }) },
      ),
      interrupts: fc.array(interrupt(actions), { maxLength: 2 }),
    });
  const op: fc.Arbitrary<Op> = fc.oneof(
    {
      weight: 3,
      arbitrary: runOp(["pause", "kill"]).map(({ range: r, ...o }) => ({ kind: "pair" as const, ...o, ...r })),
    },
    {
      weight: 3,
      arbitrary: fc
        .tuple(runOp(["pause", "kill", "cancel"]), fc.boolean())
        .map(([{ range: r, ...o }, dry]) => ({ kind: "run" as const, dry, ...o, ...r })),
    },
    { weight: 1, arbitrary: fc.constant({ kind: "retry" as const }) },
    { weight: 1, arbitrary: fc.constant({ kind: "fixCatalog" as const }) },
  );
  return fc.array(op, { minLength: 3, maxLength: 6 });
}

// ───────────────────────────── writing the store, and the oracle's copy ─────────────────────────────

interface World {
  year: number;
  oracle: Oracle;
  /** Every customer's wallet id (by WALLET_FIELD). */
  users: string[];
  walletField: StoreSpec["walletField"];
  day: (n: number) => string;
  productId: (kind: ProductKind) => string;
}

async function writeStore(spec: StoreSpec): Promise<World> {
  const year = await uniqueYear();
  const oracle = new Oracle(spec.walletField);
  const ids = new FlakeIds();
  const dayStart = (n: number) => Date.UTC(year, 0, 1) + (n - 1) * DAY_MS;
  const day = (n: number) => new Date(dayStart(n)).toISOString().slice(0, 10);
  const before = Date.UTC(year, 0, 1) - 2 * DAY_MS;
  const kinds: ProductKind[] = ["gems", "coins", "promo", "ghost", "broken"];
  const productIds = new Map(kinds.map((k, i) => [k, ids.next(before + i * 1000)]));
  const productId = (kind: ProductKind) => productIds.get(kind) as string;
  const catalog = (kind: ProductKind): CatalogProduct => ({
    id: productId(kind),
    versionId: productId(kind),
    slug: kind,
    name: kind,
    price: 100 * (1 + kinds.indexOf(kind)),
  });
  const customers = Array.from({ length: spec.users }, (_, i) =>
    minecraftCustomer(ids.next(before + 10_000 + i * 1000), `m${year}_${i}`),
  );
  const walletOf = (c: Customer) => (spec.walletField === "id" ? c.id : (c.minecraft?.id as string));
  let minute = 0;
  const at = (d: number) => dayStart(d) + (minute++ % 1400) * 60_000 + 1;
  const events: OracleEvent[] = [];
  const add = (createdAtMs: number, envelope: Envelope | Record<string, unknown>) => {
    const e: OracleEvent = { id: envelope.event_id as string, createdAtMs, data: { ...envelope, processed: false } };
    events.push(e);
    return e;
  };
  const live: string[] = [];
  const markedOnly: string[] = [];

  spec.orders.forEach((o) => {
    const customer = customers[o.user] as Customer;
    const atMs = at(o.day);
    const order = orderCompleted(ids, {
      atMs,
      customer,
      lines: o.lines.map((l) => ({
        product: catalog(l.product),
        quantity: l.quantity,
        ...(l.gift !== null ? { giftTo: customers[l.gift] } : {}),
      })),
    });
    const purchase = add(atMs, order);
    // Live processing could credit it only where every product was usable then.
    if (o.live) live.push(purchase.id);
    if (o.resent !== "none") {
      const d = o.resent === "same" ? o.day : o.day + 1;
      add(at(d), { ...structuredClone(order), event_id: ids.next(dayStart(d)) });
    }
    const { orderId, total, lineTotals } = orderOf(order);
    let lastDay = o.day;
    for (const f of o.follows) {
      const d = Math.max(0, o.day + f.offset);
      lastDay = Math.max(lastDay, d);
      const ms = at(d);
      const refundAmount =
        f.kind === "refund_order"
          ? total
          : f.kind === "refund_line"
            ? (lineTotals[f.line % lineTotals.length] as number)
            : total + 7;
      const e = add(
        ms,
        f.kind === "chargeback"
          ? chargeback(ids, { atMs: ms, orderId, customer, amount: total })
          : refund(ids, { atMs: ms, orderId, customer, paymentAmount: total, refundAmount }),
      );
      if (f.state === "live") live.push(e.id);
      else if (f.state === "markedOnly") markedOnly.push(e.id);
    }
    if (o.closing) {
      const ms = at(lastDay + o.closing.offset);
      const e = add(
        ms,
        chargebackClosed(ids, { atMs: ms, orderId, customer, amount: total, outcome: o.closing.outcome }),
      );
      if (o.closing.state === "live") live.push(e.id);
    }
  });
  const first = customers[0] as Customer;
  for (let k = 0; k < spec.orphans; k++) {
    const ms = at(1 + (k % spec.days));
    add(
      ms,
      refund(ids, { atMs: ms, orderId: ids.next(before), customer: first, paymentAmount: 500, refundAmount: 500 }),
    );
  }
  spec.invalid.forEach((kind) => {
    const ms = at(1);
    const order = orderCompleted(ids, {
      atMs: ms,
      customer: first,
      lines: [{ product: catalog("gems"), quantity: 1 }],
    });
    const body = order.body as Record<string, unknown> & { lines: Array<Record<string, unknown>> };
    if (kind === "no_customer") delete body.customer;
    else if (kind === "zero_quantity") (body.lines[0] as Record<string, unknown>).quantity = 0;
    else if (kind === "no_lines") body.lines = [];
    if (kind === "refund_no_order") {
      const r = refund(ids, {
        atMs: ms,
        orderId: orderOf(order).orderId,
        customer: first,
        paymentAmount: 100,
        refundAmount: 100,
      });
      delete r.body.order_id;
      add(ms, r);
    } else if (kind === "bad_status") {
      const c = chargebackClosed(ids, {
        atMs: ms,
        orderId: orderOf(order).orderId,
        customer: first,
        amount: 100,
        outcome: "won",
      });
      c.body.chargeback_status = "pending";
      add(ms, c);
    } else if (kind === "other_type")
      add(
        ms,
        deliveryItemAdded(ids, {
          atMs: ms,
          customer: first,
          product: catalog("gems"),
          orderId: orderOf(order).orderId,
        }),
      );
    else add(ms, order);
  });

  const firestore = db();
  const batch = firestore.batch();
  for (const e of events) {
    batch.set(firestore.collection("webhookEvents").doc(e.id), {
      ...e.data,
      createdAt: Timestamp.fromMillis(e.createdAtMs),
    });
    oracle.events.set(e.id, { ...e, data: structuredClone(e.data) });
  }
  // The catalog while live processing ran: promo too. Then promo is removed; ghost never existed; broken has no points.
  for (const kind of ["gems", "coins", "promo"] as const) {
    const doc = { name: kind, points: POINTS[kind] };
    batch.set(firestore.collection("products").doc(productId(kind)), doc);
    oracle.products.set(productId(kind), doc);
  }
  batch.set(firestore.collection("products").doc(productId("broken")), { name: "broken", points: 0 });
  oracle.products.set(productId("broken"), { name: "broken", points: 0 });
  await batch.commit();

  // Live processing, in the order the events arrived (a refund before its order fails), through the receiver's code;
  // the oracle decides the same events by its own rules.
  const arrived = live
    .map((id) => events.find((e) => e.id === id) as OracleEvent)
    .sort((a, b) => a.createdAtMs - b.createdAtMs || (a.id < b.id ? -1 : 1));
  const productCatalog = new ProductCatalog(firestore);
  for (const e of arrived) await applyEvent(firestore, e.id, { walletField: spec.walletField }, productCatalog);
  oracle.live(arrived.map((e) => e.id));
  // The bug a reversal backfill repairs: marked processed, never reversed.
  for (const id of markedOnly) {
    await firestore.collection("webhookEvents").doc(id).update({ processed: true, processedBy: null });
    Object.assign((oracle.events.get(id) as OracleEvent).data, { processed: true, processedBy: null });
  }
  await firestore.collection("products").doc(productId("promo")).delete();
  oracle.products.delete(productId("promo"));
  return { year, oracle, users: customers.map(walletOf), walletField: spec.walletField, day, productId };
}

// ───────────────────────────── driving a run ─────────────────────────────

interface Driver {
  seed: number;
  next: () => number;
  config: Partial<Config>;
  log: string[];
}

/** Delivers every queued task in a random order, some twice (at once or later), retrying throws, until the queue is empty. */
async function drain(d: Driver, deps: ReturnType<typeof testDeps>["deps"], queue: RecordingQueue): Promise<void> {
  for (let round = 0; round < 200; round++) {
    const tasks = queue.drain();
    if (tasks.length === 0) return;
    const order = tasks
      .map((t) => ({ t, k: d.next() }))
      .sort((a, b) => a.k - b.k)
      .map((x) => x.t);
    for (let i = 0; i < order.length; i += 2) {
      const pair = order.slice(i, i + 2);
      await Promise.all(
        pair.flatMap((task) => {
          const copies = d.next() < 0.2 ? 2 : 1;
          if (copies > 1) tally.duplicateDeliveries++;
          return Array.from({ length: copies }, () => deliverWithRetries(deps, task.payload, task.taskId));
        }),
      );
    }
  }
  throw new Error("the queue kept filling for 200 rounds");
}

/**
 * Starts a run and drives it to its end: deliveries in random order, the operator's interrupts at random
 * page boundaries, a resume after each pause (switching the kill switch back on first), and, if the queue
 * empties with the run still going, one watchdog pass. Returns the run's id and whether it was cancelled.
 */
async function drive(
  d: Driver,
  body: Record<string, unknown>,
  interrupts: Interrupt[],
): Promise<{ id: string; cancelled: boolean }> {
  let id = "";
  let hits = 0;
  const pending = [...interrupts];
  const plain = testDeps({ config: d.config });
  const queue = plain.queue as RecordingQueue;
  const { deps } = testDeps({
    config: d.config,
    queue,
    faults: {
      async at(point) {
        if (!currentDelivery() || (point !== "page-read" && point !== "before-page-commit" && point !== "after-claim"))
          return;
        hits++;
        for (const x of pending.filter((p) => p.at === hits)) {
          pending.splice(pending.indexOf(x), 1);
          d.log.push(`  ${x.action} at page boundary ${hits}`);
          if (x.action === "pause") {
            tally.pauses++;
            await controlRun(plain.deps, id, "pause", BY).catch(() => undefined);
          } else if (x.action === "kill") {
            tally.killSwitchFlips++;
            await setKillSwitch(false);
          } else {
            tally.cancels++;
            await controlRun(plain.deps, id, "cancel", BY).catch(() => undefined);
          }
        }
      },
    },
  });
  id = await startInProcess(deps, body);
  let watchdogPasses = 0;
  for (let step = 0; step < 20; step++) {
    await drain(d, deps, queue);
    const run = await runDoc(id);
    if (run.status === "completed" || run.status === "failed" || run.status === "cancelled") {
      // A switch flipped off during the last page finds nothing left to stop: the run ended regardless.
      await setKillSwitch(null);
      return { id, cancelled: run.status === "cancelled" };
    }
    if (run.status === "paused") {
      await setKillSwitch(null);
      d.log.push(`  resume (${run.pausedReason ?? ""})`);
      await controlRun(plain.deps, id, "resume", BY);
      continue;
    }
    // The queue is empty and the run still going: it could make no progress. One watchdog pass must end it.
    expect(watchdogPasses, `run ${id} is still ${run.status} after a watchdog pass`).toBe(0);
    watchdogPasses++;
    tally.watchdogRepairs += (await repairRun(plain.deps, id)).length;
  }
  throw new Error(`run ${id} did not end`);
}

// ───────────────────────────── the checks ─────────────────────────────

async function storeLedger(
  w: World,
): Promise<Map<string, { userId: string; points: number; migrationId: string | null }>> {
  const snap = await db().collection("ledgerEntries").where("userId", "in", w.users.slice(0, 30)).get();
  return new Map(
    snap.docs.map((d) => [d.id, d.data() as { userId: string; points: number; migrationId: string | null }]),
  );
}

async function expectStoreEqualsOracle(w: World, note: string): Promise<void> {
  const ledger = await storeLedger(w);
  expect(Object.fromEntries([...ledger].map(([id, e]) => [id, e.points])), `${note}: ledger`).toEqual(
    Object.fromEntries([...w.oracle.ledger].map(([id, e]) => [id, e.points])),
  );
  for (const [id, e] of ledger) expect(e.userId, `${note}: owner of ${id}`).toBe(w.oracle.ledger.get(id)?.userId);
  const wallets = await db().getAll(...w.users.map((u) => db().collection("wallets").doc(u)));
  const want = w.oracle.wallets();
  for (const snap of wallets)
    expect((snap.get("balance") as number | undefined) ?? 0, `${note}: wallet of ${snap.id}`).toBe(
      want.get(snap.id) ?? 0,
    );
  const events = await db().getAll(
    ...[...w.oracle.events.keys()].map((id) => db().collection("webhookEvents").doc(id)),
  );
  for (const snap of events)
    expect(snap.get("processed") === true, `${note}: processed mark of ${snap.id}`).toBe(
      w.oracle.events.get(snap.id)?.data.processed === true,
    );
}

/** What the run's shape exercised: shards. */
async function tallyShape(id: string): Promise<void> {
  const chunks = await db().collection("dataMigrations").doc(id).collection("chunks").get();
  const shards = chunks.docs.filter((c) => c.id.includes("~")).length;
  tally.shards += shards;
  if (shards > 0) tally.shardedRuns++;
}

async function openErrors(id: string): Promise<string[]> {
  const snap = await db().collection("dataMigrations").doc(id).collection("errors").where("status", "==", "open").get();
  return snap.docs.map((d) => d.id).sort();
}

// ───────────────────────────── a sequence ─────────────────────────────

async function sequence(seed: number): Promise<void> {
  const spec = fc.sample(fc.noBias(storeArbitrary), { seed, numRuns: 1 })[0] as StoreSpec;
  const ops = fc.sample(fc.noBias(opsArbitrary(spec.days)), { seed: seed + 1, numRuns: 1 })[0] as Op[];
  const next = seededStream(seed * 7 + 3);
  const pageSize = 2 + Math.floor(next() * 5);
  const groupSize = 1 + Math.floor(next() * 3);
  // A customer's orders share one transaction (the default), or are cut like everyone's.
  const walletGroupSize = next() < 0.5 ? groupSize : 150;
  const config = {
    pageSize,
    readSize: pageSize * 2,
    groupSize,
    walletGroupSize,
    parallelGroups: 1 + Math.floor(next() * 2),
  };
  // Half the sequences cut any day with more than a few events into shards.
  const shardEvents = next() < 0.5 ? 1000 : 2 + Math.floor(next() * 6);
  const d: Driver = { seed, next, config: { ...config, shardEvents, walletField: spec.walletField }, log: [] };
  const w = await writeStore(spec);
  if (spec.walletField !== "id") tally.minecraftWallets++;
  if (spec.orders.some((o) => o.lines.some((l) => l.gift !== null))) tally.gifts++;
  const finished: Array<{ spec: RunSpec; errors: number }> = [];
  const note = (i: number) => `seed ${seed}, op ${i + 1} of ${ops.length}`;
  d.log.push(`store ${JSON.stringify(spec)}`, `config ${JSON.stringify(d.config)}`);
  try {
    await expectStoreEqualsOracle(w, `seed ${seed}, as written`);
    for (const [i, op] of ops.entries()) {
      tally.operations++;
      d.log.push(`op ${i + 1}: ${JSON.stringify(op)}`);
      if (op.kind === "fixCatalog") {
        tally.catalogFixes++;
        for (const [kind, doc] of [
          ["ghost", { name: "ghost", points: 7 }],
          ["broken", { name: "broken", points: 15 }],
        ] as const) {
          await db().collection("products").doc(w.productId(kind)).set(doc);
          w.oracle.products.set(w.productId(kind), doc);
        }
        continue;
      }
      if (op.kind === "retry") {
        const last = finished.filter((f) => f.errors > 0).at(-1);
        if (!last) continue;
        tally.retries++;
        const plain = testDeps({ config: d.config });
        await controlRun(plain.deps, last.spec.id, "retry", BY);
        await drain(d, plain.deps, plain.queue as RecordingQueue);
        const want = w.oracle.retry(last.spec);
        const { run } = await expectRecount(last.spec.id, `${note(i)}: retry`);
        expect(run.status, `${note(i)}: the retried run ended`).toBe("completed");
        expect(
          { total: run.total, processed: run.processed, skipped: run.skipped, errors: run.errors },
          `${note(i)}: retry counters`,
        ).toEqual(want.counters);
        expect(await openErrors(last.spec.id), `${note(i)}: errors left after the retry`).toEqual(want.errorIds);
        last.errors = want.counters.errors;
        await expectStoreEqualsOracle(w, `${note(i)}: after the retry`);
        continue;
      }
      const userIds = op.canary ? op.canary.map((u) => w.users[u] ?? `m${w.year}_nobody${u}`) : null;
      const body = (dryRun: boolean) => ({
        type: op.type,
        startDate: w.day(op.from),
        endDate: w.day(op.to),
        dryRun,
        maxEvents: op.cap ?? 1000,
        maxErrorRate: 1,
        ...(userIds ? { userIds } : {}),
      });
      const runs = op.kind === "pair" ? [true, false] : [op.dry];
      const counters: Array<Record<string, number>> = [];
      let dryId: string | null = null;
      for (const dryRun of runs) {
        tally.runs++;
        // A pair's real run executes its dry run's plan, as an operator does from the console.
        const { id, cancelled } = await drive(
          d,
          !dryRun && op.kind === "pair" && dryId ? { planOf: dryId } : body(dryRun),
          op.interrupts,
        );
        if (dryRun) dryId = cancelled ? null : id;
        else if (op.kind === "pair" && dryId) tally.planExecutions++;
        if (userIds) tally.canaryRuns++;
        const spec: RunSpec = {
          id,
          type: op.type,
          startDate: w.day(op.from),
          endDate: w.day(op.to),
          dryRun,
          maxEvents: op.cap ?? 1000,
          userIds,
        };
        const { run, report } = await expectRecount(id, `${note(i)}: ${dryRun ? "dry" : "real"} run ${id}`);
        await tallyShape(id);
        if (cancelled) {
          // A cancelled run did part of the work: what it says it did must be what the rules do.
          const claims = new Map<string, Result>(report.events.map((e) => [e.eventId, e.outcome]));
          const disagreements = w.oracle.absorb(spec, claims);
          tally.mismatches += disagreements.length;
          expect(disagreements, `${note(i)}: the cancelled run's outcomes`).toEqual([]);
        } else {
          const want = w.oracle.run(spec);
          expect(run.status, `${note(i)}: run ${id} ended`).toBe("completed");
          const got = { total: run.total, processed: run.processed, skipped: run.skipped, errors: run.errors };
          if (JSON.stringify(got) !== JSON.stringify(want.counters)) tally.mismatches++;
          expect(got, `${note(i)}: ${dryRun ? "dry" : "real"} run counters against the oracle`).toEqual(want.counters);
          expect(await openErrors(id), `${note(i)}: the run's errors`).toEqual(want.errorIds);
          tally.refundsUnmatched += [...want.outcomes.values()].filter((o) => o.detail === "REFUND_UNMATCHED").length;
          counters.push(got);
          finished.push({ spec, errors: want.counters.errors });
        }
        await expectStoreEqualsOracle(w, `${note(i)}: after ${dryRun ? "dry" : "real"} run ${id}`);
      }
      if (op.kind === "pair") {
        tally.pairs++;
        expect(counters[0], `${note(i)}: the dry run's counters equal the real run's`).toEqual(counters[1]);
      }
    }
    tally.reinstatements += [...w.oracle.ledger.values()].filter((e) => e.kind === "reinstatement").length;
    tally.sequences++;
  } catch (error) {
    console.log(`model sequence ${seed} failed; what it did:\n${d.log.join("\n")}`);
    throw error;
  } finally {
    await setKillSwitch(null);
  }
}

describe("model-based: random operator sequences against the README's rules", () => {
  it(
    `${SEQUENCES} sequences from seed ${FIRST_SEED}: every run ends, counts what the oracle counts, and leaves the oracle's ledger`,
    async () => {
      const failures: string[] = [];
      for (let k = 0; k < SEQUENCES; k++) {
        const seed = FIRST_SEED + k;
        try {
          await sequence(seed);
        } catch (error) {
          failures.push(
            `seed ${seed}: ${(error as Error).message.split("\n")[0]}\n  replay it: MODEL_SEED=${seed} MODEL_SEQUENCES=1 npm run emulators:exec -- "vitest run test/emulator/index.model.test.ts"`,
          );
        }
      }
      expect(failures, "sequences that failed").toEqual([]);
      expect(tally.mismatches).toBe(0);
      // The sequences must have done what they claim to exercise.
      if (SEQUENCES >= 30) {
        for (const k of [
          "pairs",
          "cancels",
          "pauses",
          "killSwitchFlips",
          "retries",
          "catalogFixes",
          "duplicateDeliveries",
          "shardedRuns",
          "reinstatements",
          "refundsUnmatched",
          "gifts",
          "minecraftWallets",
          "canaryRuns",
        ] as const) {
          expect(tally[k], k).toBeGreaterThan(0);
        }
      }
    },
    Math.max(1_200_000, SEQUENCES * 20_000),
  );
});
