// The live receiver, `POST /webhooks/paynow` through Hosting, as PayNow calls it: signed PayNow payloads
// credit each line's recipient once; every refused request (the attack table) stores nothing; a
// redelivery, even five at once, stores and applies the event once; a failure is stored for the replay.
import { beforeAll, describe, expect, it } from "vitest";
import { signPayload } from "../../../functions/src/core/signature";
import {
  chargeback,
  chargebackClosed,
  deliveryItemAdded,
  EXAMPLE_POINTS,
  EXAMPLE_PRODUCTS,
  FlakeIds,
  minecraftCustomer,
  orderCompleted,
  orderOf,
  refund,
  type Envelope,
} from "../../../scripts/paynow-payloads";
import { ensureLocalWebhookSecrets } from "../../../scripts/setup";
import { Timestamp } from "firebase-admin/firestore";
import { db, requireStack, postRun, uniqueYear, waitForRun } from "../../support/emulator";

const ids = new FlakeIds();
let clock = Date.now();
const nextAt = () => (clock += 1000);
const [SECRET, SECOND_SECRET] = ensureLocalWebhookSecrets();
const url = () => `${requireStack().api}/webhooks/paynow`;

interface Sent {
  status: number;
  body: any;
}

async function post(raw: string, headers: Record<string, string>): Promise<Sent> {
  const res = await fetch(url(), {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: raw,
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // left as text
  }
  return { status: res.status, body };
}

const signed = (raw: string, options: { secret?: string; timestamp?: number } = {}) => {
  const ts = String(options.timestamp ?? Date.now());
  return { "PayNow-Signature": signPayload(options.secret ?? SECRET, ts, raw), "PayNow-Timestamp": ts };
};
const send = (env: Envelope) => {
  const raw = JSON.stringify(env, null, 2);
  return post(raw, signed(raw));
};

async function wallet(id: string): Promise<number> {
  return ((await db().collection("wallets").doc(id).get()).get("balance") as number | undefined) ?? 0;
}
async function entriesOf(orderId: string): Promise<Array<Record<string, unknown>>> {
  const found = await db().collection("ledgerEntries").where("orderId", "==", orderId).get();
  return found.docs.map((d) => ({ ...d.data(), id: d.id }));
}
const stored = async (eventId: string) => (await db().collection("webhookEvents").doc(eventId).get()).exists;

let n = 0;
/** A customer of its own per test, so wallets start at zero. */
const someone = () => minecraftCustomer(ids.next(nextAt()), `Player_${++n}_${Date.now() % 100_000}`);

beforeAll(async () => {
  for (const [id, product] of Object.entries(EXAMPLE_POINTS)) await db().collection("products").doc(id).set(product);
});

describe("the PayNow receiver", () => {
  it("credits each line's recipient once: the buyer's line to the buyer, a gift to its recipient", async () => {
    const [buyer, friend] = [someone(), someone()];
    const order = orderCompleted(ids, {
      atMs: nextAt(),
      customer: buyer,
      lines: [
        { product: EXAMPLE_PRODUCTS.vip, quantity: 1 },
        { product: EXAMPLE_PRODUCTS.gems, quantity: 3, giftTo: friend },
      ],
    });
    expect(JSON.stringify(order).length).toBeGreaterThan(4000);
    const answer = await send(order);
    expect(answer).toMatchObject({
      status: 200,
      body: { received: true, eventId: order.event_id, stored: "created", outcome: { result: "processed" } },
    });
    expect(await wallet(buyer.id)).toBe(1000);
    expect(await wallet(friend.id)).toBe(3000);
    const { orderId } = orderOf(order);
    const entries = await entriesOf(orderId);
    expect(entries.map((e) => [e.kind, e.userId, e.points, e.migrationId]).sort()).toEqual(
      [
        ["purchase", buyer.id, 1000, null],
        ["purchase", friend.id, 3000, null],
      ].sort(),
    );
    const event = (await db().collection("webhookEvents").doc(order.event_id).get()).data() ?? {};
    // PayNow's body verbatim, plus the receipt time and the mark.
    expect(event).toMatchObject({
      event_type: "ON_ORDER_COMPLETED",
      event_id: order.event_id,
      body: order.body,
      processed: true,
      processedBy: null,
    });
    expect(event.createdAt).toBeDefined();
  });

  it("takes a line back on its refund, the rest on a chargeback, and gives them back once when the chargeback is won", async () => {
    const buyer = someone();
    const order = orderCompleted(ids, {
      atMs: nextAt(),
      customer: buyer,
      lines: [
        { product: EXAMPLE_PRODUCTS.vip, quantity: 1 },
        { product: EXAMPLE_PRODUCTS.gems, quantity: 2 },
      ],
    });
    const { orderId, total, lineTotals } = orderOf(order);
    await send(order);
    expect(await wallet(buyer.id)).toBe(3000);
    expect(
      (
        await send(
          refund(ids, { atMs: nextAt(), orderId, customer: buyer, paymentAmount: total, refundAmount: lineTotals[1]! }),
        )
      ).body.outcome,
    ).toMatchObject({ result: "processed" });
    expect(await wallet(buyer.id)).toBe(1000);
    await send(chargeback(ids, { atMs: nextAt(), orderId, customer: buyer, amount: total }));
    expect(await wallet(buyer.id)).toBe(0);
    const won = chargebackClosed(ids, { atMs: nextAt(), orderId, customer: buyer, amount: total, outcome: "won" });
    expect((await send(won)).body.outcome).toMatchObject({
      result: "processed",
      entries: [{ kind: "reinstatement", points: 1000 }],
    });
    expect((await send({ ...won, event_id: ids.next(nextAt()) })).body.outcome).toMatchObject({
      result: "skipped",
      reason: "ALREADY_REINSTATED",
    });
    expect(await wallet(buyer.id)).toBe(1000);
    expect((await entriesOf(orderId)).map((e) => e.kind).sort()).toEqual([
      "purchase",
      "purchase",
      "reinstatement",
      "reversal",
      "reversal",
    ]);
  });

  it("stores and applies a redelivery once, even five at once", async () => {
    const buyer = someone();
    const order = orderCompleted(ids, {
      atMs: nextAt(),
      customer: buyer,
      lines: [{ product: EXAMPLE_PRODUCTS.vip, quantity: 2 }],
    });
    const raw = JSON.stringify(order);
    const answers = await Promise.all(Array.from({ length: 5 }, () => post(raw, signed(raw))));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    expect(answers.filter((a) => a.body.stored === "created")).toHaveLength(1);
    expect(answers.filter((a) => a.body.stored === "duplicate" && a.body.outcome === null)).toHaveLength(4);
    const later = await post(raw, signed(raw));
    expect(later.body).toMatchObject({ stored: "duplicate", outcome: null });
    expect(await wallet(buyer.id)).toBe(2000);
    expect(await entriesOf(orderOf(order).orderId)).toHaveLength(1);
  });

  it("answers 2xx for an event it cannot apply, and leaves it unprocessed with its code for the replay", async () => {
    const buyer = someone();
    const unknown = { ...EXAMPLE_PRODUCTS.vip, id: ids.next(nextAt()), slug: "retired-bundle" };
    const order = orderCompleted(ids, {
      atMs: nextAt(),
      customer: buyer,
      lines: [
        { product: EXAMPLE_PRODUCTS.vip, quantity: 1 },
        { product: unknown, quantity: 1 },
      ],
    });
    const answer = await send(order);
    expect(answer).toMatchObject({
      status: 200,
      body: { stored: "created", outcome: { result: "error", code: "PRODUCT_NOT_FOUND" } },
    });
    const event = (await db().collection("webhookEvents").doc(order.event_id).get()).data() ?? {};
    expect(event.processed).toBe(false);
    expect(event.lastError).toMatchObject({ code: "PRODUCT_NOT_FOUND", message: expect.stringContaining(unknown.id) });
    // All of an order's lines or none.
    expect(await wallet(buyer.id)).toBe(0);
  });

  it("stores other event types and moves no money for them", async () => {
    const buyer = someone();
    const item = deliveryItemAdded(ids, {
      atMs: nextAt(),
      customer: buyer,
      product: EXAMPLE_PRODUCTS.vip,
      orderId: ids.next(nextAt()),
    });
    expect(await send(item)).toMatchObject({ status: 200, body: { stored: "created", outcome: null } });
    expect(await stored(item.event_id)).toBe(true);
    expect(await wallet(buyer.id)).toBe(0);
  });
});

/**
 * One store's worth of PayNow webhooks, in the order PayNow sends them: a two-line order with a gift, its
 * second line refunded, the rest charged back, the chargeback won; an order refunded whole; an order
 * charged back and lost; an order for a product missing from the catalog, and its refund.
 */
function history(at: () => number) {
  const [buyer, friend, other, third] = [someone(), someone(), someone(), someone()];
  const unknown = { ...EXAMPLE_PRODUCTS.vip, id: ids.next(at()), slug: "retired-bundle" };
  const a = orderCompleted(ids, {
    atMs: at(),
    customer: buyer,
    lines: [
      { product: EXAMPLE_PRODUCTS.vip, quantity: 1 },
      { product: EXAMPLE_PRODUCTS.gems, quantity: 2, giftTo: friend },
    ],
  });
  const b = orderCompleted(ids, {
    atMs: at(),
    customer: other,
    lines: [{ product: EXAMPLE_PRODUCTS.gems, quantity: 3 }],
  });
  const c = orderCompleted(ids, {
    atMs: at(),
    customer: third,
    lines: [{ product: EXAMPLE_PRODUCTS.vip, quantity: 2 }],
  });
  const d = orderCompleted(ids, { atMs: at(), customer: third, lines: [{ product: unknown, quantity: 1 }] });
  const [oa, ob, oc, od] = [orderOf(a), orderOf(b), orderOf(c), orderOf(d)];
  const events = [
    a,
    b,
    c,
    d,
    refund(ids, {
      atMs: at(),
      orderId: oa.orderId,
      customer: buyer,
      paymentAmount: oa.total,
      refundAmount: oa.lineTotals[1] as number,
    }),
    refund(ids, { atMs: at(), orderId: ob.orderId, customer: other, paymentAmount: ob.total, refundAmount: ob.total }),
    chargeback(ids, { atMs: at(), orderId: oa.orderId, customer: buyer, amount: oa.total }),
    chargeback(ids, { atMs: at(), orderId: oc.orderId, customer: third, amount: oc.total }),
    refund(ids, { atMs: at(), orderId: od.orderId, customer: third, paymentAmount: od.total, refundAmount: od.total }),
    chargebackClosed(ids, { atMs: at(), orderId: oa.orderId, customer: buyer, amount: oa.total, outcome: "won" }),
    chargebackClosed(ids, { atMs: at(), orderId: oc.orderId, customer: third, amount: oc.total, outcome: "lost" }),
  ];
  return {
    events,
    wallets: [buyer.id, friend.id, other.id, third.id],
    orders: [oa.orderId, ob.orderId, oc.orderId, od.orderId],
  };
}

/** Every entry of these orders, as kind, the order's place, the line's place, the wallet's place and points: comparable across stores. */
async function shapeOf(orders: string[], wallets: string[]) {
  const out: string[] = [];
  for (const [k, orderId] of orders.entries()) {
    for (const e of await entriesOf(orderId))
      out.push(
        `${String(e.kind)} order${k} line${String(e.lineIndex)} wallet${wallets.indexOf(e.userId as string)} ${String(e.points)} ${String(e.reason)}`,
      );
  }
  return out.sort();
}

describe("live processing and a replay decide alike", () => {
  it("webhooks stored unprocessed are repaired by a replay exactly as live processing applied them", async () => {
    const live = history(nextAt);
    for (const e of live.events) expect((await send(e)).status).toBe(200);

    // The same history again, stored the way the receiver stores it but never applied (an outage), in a year of its own.
    const year = await uniqueYear();
    let t = Date.UTC(year, 0, 2, 10);
    const missed = history(() => (t += 60_000));
    let at = Date.UTC(year, 0, 2, 12);
    const batch = db().batch();
    for (const e of missed.events)
      batch.set(db().collection("webhookEvents").doc(e.event_id), {
        ...e,
        createdAt: Timestamp.fromMillis((at += 60_000)),
        processed: false,
      });
    await batch.commit();
    const day = `${year}-01-02`;
    const run = await waitForRun(
      await postRun({ type: "webhook_replay", startDate: day, endDate: day, dryRun: false }),
    );
    expect(run).toMatchObject({ status: "completed", total: 11, errors: 2 });

    expect(await shapeOf(missed.orders, missed.wallets)).toEqual(await shapeOf(live.orders, live.wallets));
    for (const [k, w] of missed.wallets.entries())
      expect(await wallet(w), `wallet ${k}`).toBe(await wallet(live.wallets[k] as string));
    // What failed live failed in the replay too, with the same code, and stays for a later run.
    const codes = async (events: Envelope[]) => {
      const snaps = await db().getAll(...events.map((e) => db().collection("webhookEvents").doc(e.event_id)));
      return snaps.map((s) => (s.get("processed") === true ? "processed" : "open"));
    };
    expect(await codes(missed.events)).toEqual(await codes(live.events));
  });

  it("a replay racing the receiver over the same orders credits each line once: every wallet equals its ledger", async () => {
    const year = await uniqueYear();
    const day = `${year}-01-03`;
    let at = Date.UTC(year, 0, 3, 1);
    const buyers = Array.from({ length: 6 }, () => someone());
    const orders = Array.from({ length: 24 }, (_, i) =>
      orderCompleted(ids, {
        atMs: (at += 60_000),
        customer: buyers[i % 6] as (typeof buyers)[number],
        lines: [
          { product: EXAMPLE_PRODUCTS.vip, quantity: 1 },
          { product: EXAMPLE_PRODUCTS.gems, quantity: 1 + (i % 3) },
        ],
      }),
    );
    const batch = db().batch();
    for (const o of orders)
      batch.set(db().collection("webhookEvents").doc(o.event_id), {
        ...o,
        createdAt: Timestamp.fromMillis(at),
        processed: false,
      });
    await batch.commit();

    // At once: the replay of the stored orders, and PayNow resending every order (another event id, the
    // same body) then refunding or charging back some of them, through the receiver.
    const runId = await postRun({ type: "webhook_replay", startDate: day, endDate: day, dryRun: false });
    const answers = await Promise.all(
      orders.map(async (o, i) => {
        const resent = await send({ ...o, event_id: ids.next(nextAt()) });
        const { orderId, total, lineTotals } = orderOf(o);
        const customer = buyers[i % 6] as (typeof buyers)[number];
        if (i % 3 === 0)
          return [
            resent,
            await send(
              refund(ids, {
                atMs: nextAt(),
                orderId,
                customer,
                paymentAmount: total,
                refundAmount: lineTotals[0] as number,
              }),
            ),
          ];
        if (i % 3 === 1)
          return [resent, await send(chargeback(ids, { atMs: nextAt(), orderId, customer, amount: total }))];
        return [resent];
      }),
    );
    expect(answers.flat().every((a) => a.status === 200)).toBe(true);
    expect(await waitForRun(runId)).toMatchObject({ status: "completed", total: 24, errors: 0 });

    // Each order credited once, by whichever got there first; at most one reversal per line.
    const sums = new Map<string, number>();
    for (const o of orders) {
      const entries = await entriesOf(orderOf(o).orderId);
      expect(
        entries.filter((e) => e.kind === "purchase"),
        "one purchase entry per line",
      ).toHaveLength(2);
      for (const line of [0, 1])
        expect(entries.filter((e) => e.kind === "reversal" && e.lineIndex === line).length).toBeLessThanOrEqual(1);
      for (const e of entries) sums.set(e.userId as string, (sums.get(e.userId as string) ?? 0) + (e.points as number));
    }
    for (const b of buyers) expect(await wallet(b.id), `wallet of ${b.id}`).toBe(sums.get(b.id) ?? 0);
    const real = await db().collection("ledgerEntries").where("migrationId", "==", runId).count().get();
    const byReceiver = answers
      .flat()
      .filter(
        (a) =>
          a.body.outcome?.result === "processed" &&
          a.body.outcome.entries.some((e: { kind: string }) => e.kind === "purchase"),
      ).length;
    // Together they credited every order exactly once; which of them credited which is the timing's.
    expect(real.data().count / 2 + byReceiver).toBe(24);
  });
});

describe("the receiver's attack table: each refused request stores nothing", () => {
  const order = () =>
    orderCompleted(ids, {
      atMs: nextAt(),
      customer: someone(),
      lines: [{ product: EXAMPLE_PRODUCTS.vip, quantity: 1 }],
    });
  const hex = (raw: string, ts: string) => Buffer.from(signPayload(SECRET, ts, raw), "base64").toString("hex");
  const cases: Array<[string, (env: Envelope) => { raw: string; headers: Record<string, string> }, number, string]> = [
    [
      "a tampered body",
      (env) => {
        const raw = JSON.stringify(env);
        return { raw: raw.replace('"quantity":1', '"quantity":9'), headers: signed(raw) };
      },
      401,
      "signature_invalid",
    ],
    [
      "a wrong secret",
      (env) => ({ raw: JSON.stringify(env), headers: signed(JSON.stringify(env), { secret: "pnwh_not_ours" }) }),
      401,
      "signature_invalid",
    ],
    [
      "hex instead of base64",
      (env) => {
        const raw = JSON.stringify(env);
        const ts = String(Date.now());
        return { raw, headers: { "PayNow-Signature": hex(raw, ts), "PayNow-Timestamp": ts } };
      },
      401,
      "signature_invalid",
    ],
    [
      "a stale timestamp (6 minutes)",
      (env) => ({
        raw: JSON.stringify(env),
        headers: signed(JSON.stringify(env), { timestamp: Date.now() - 6 * 60_000 }),
      }),
      401,
      "timestamp_out_of_range",
    ],
    [
      "a future timestamp (6 minutes)",
      (env) => ({
        raw: JSON.stringify(env),
        headers: signed(JSON.stringify(env), { timestamp: Date.now() + 6 * 60_000 }),
      }),
      401,
      "timestamp_out_of_range",
    ],
    [
      "no signature header",
      (env) => ({ raw: JSON.stringify(env), headers: { "PayNow-Timestamp": String(Date.now()) } }),
      400,
      "signature_missing",
    ],
    [
      "no timestamp header",
      (env) => ({
        raw: JSON.stringify(env),
        headers: { "PayNow-Signature": signed(JSON.stringify(env))["PayNow-Signature"] },
      }),
      400,
      "signature_missing",
    ],
    [
      "a signed body that is not JSON",
      (env) => {
        const raw = `${JSON.stringify(env)}}`;
        return { raw, headers: signed(raw) };
      },
      400,
      "invalid_json",
    ],
    [
      "a signed body that is not a PayNow envelope",
      (env) => {
        const raw = JSON.stringify({ type: "order.completed", id: env.event_id, data: env.body });
        return { raw, headers: signed(raw) };
      },
      400,
      "invalid_envelope",
    ],
    [
      "a signed body over 1 MiB",
      (env) => {
        const raw = JSON.stringify({ ...env, body: { ...env.body, padding: "x".repeat(1024 * 1024) } });
        return { raw, headers: signed(raw) };
      },
      413,
      "payload_too_large",
    ],
  ];

  it.each(cases)("refuses %s", async (_name, make, status, code) => {
    const env = order();
    const before = await wallet((env.body as { customer: { id: string } }).customer.id);
    const { raw, headers } = make(env);
    const answer = await post(raw, headers);
    expect(answer.status).toBe(status);
    // The runtime may answer a body it cannot parse before our code runs; ours always say which check failed.
    if (typeof answer.body === "object") expect(answer.body.error.code).toBe(code);
    expect(await stored(env.event_id)).toBe(false);
    expect(await entriesOf(orderOf(env).orderId)).toEqual([]);
    expect(await wallet((env.body as { customer: { id: string } }).customer.id)).toBe(before);
  });

  it("accepts the second subscription's secret", async () => {
    const env = order();
    const raw = JSON.stringify(env);
    expect(await post(raw, signed(raw, { secret: SECOND_SECRET }))).toMatchObject({
      status: 200,
      body: { stored: "created" },
    });
  });

  it("refuses anything but POST", async () => {
    const res = await fetch(url(), { method: "GET" });
    expect(res.status).toBe(405);
  });
});
