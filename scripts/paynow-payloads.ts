// PayNow webhook payloads, built the way PayNow builds them: the envelope `{event_type, event_id, body}`
// with every field PayNow's published webhook schema requires (paynow-gg/openapi, webhook-definitions),
// 18-digit time-ordered flake ids, amounts in cents, Minecraft customers (`steam: null`). One generator
// for the sample store, the tests, the benchmark and `npm run paynow -- example`.

/** Ids shaped like PayNow's flake ids: milliseconds since an epoch, shifted, plus a sequence. Time-ordered. */
export class FlakeIds {
  private seq = 0;
  /** The default epoch makes ids of 18 digits for recent times, like PayNow's (which point to about 2021-09-27). */
  constructor(private readonly epochMs = Date.UTC(2021, 8, 27)) {}
  /** A new id for something that happened at `atMs`. */
  next(atMs: number): string {
    this.seq = (this.seq + 1) % 4096;
    return ((BigInt(Math.max(0, atMs - this.epochMs)) << 22n) | (7n << 12n) | BigInt(this.seq)).toString();
  }
}

export const STORE_ID = "598213764012453888";

export interface Customer {
  id: string;
  name: string;
  steam: { id: string; name: string; avatar_url: string } | null;
  minecraft: { id: string; name: string; avatar_url: string } | null;
  profile: { id: string; platform: string; name: string; avatar_url: string };
}

/** A deterministic UUID-shaped string for a name (Minecraft player ids are UUIDs). */
function uuidFor(name: string): string {
  let h = 2166136261;
  const hex: string[] = [];
  for (let round = 0; hex.join("").length < 32; round++) {
    for (const ch of `${name}#${round}`) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
    hex.push(h.toString(16).padStart(8, "0"));
  }
  const s = hex.join("").slice(0, 32);
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-4${s.slice(13, 16)}-a${s.slice(17, 20)}-${s.slice(20, 32)}`;
}

/** A Minecraft store's customer: PayNow customer `id`, the player in `minecraft` and `profile`. */
export function minecraftCustomer(id: string, name: string): Customer {
  const uuid = uuidFor(name);
  const avatar = `https://mc-heads.net/avatar/${uuid}`;
  return {
    id,
    name,
    steam: null,
    minecraft: { id: uuid, name, avatar_url: avatar },
    profile: { id: uuid, platform: "minecraft", name, avatar_url: avatar },
  };
}

/** A store product as PayNow describes it inside an order line. */
export interface CatalogProduct {
  id: string;
  versionId: string;
  slug: string;
  name: string;
  /** Unit price in cents. */
  price: number;
}

function productDto(p: CatalogProduct) {
  return {
    id: p.id,
    store_id: STORE_ID,
    version_id: p.versionId,
    image_url: `https://cdn.example-store.gg/products/${p.slug}.png`,
    slug: p.slug,
    name: p.name,
    description: `${p.name} for the in-game shop. Delivered to your account as soon as the payment completes.`,
    enabled: true,
    label: null,
    sort_order: 1,
    price: p.price,
    single_game_server_only: false,
    allow_one_time_purchase: true,
    allow_subscription: false,
    subscription_interval_value: null,
    subscription_interval_scale: null,
    remove_after_enabled: false,
    remove_after_time_value: null,
    remove_after_time_scale: null,
    tags: [{ id: "598214011593785344", slug: "currency", name: "Currency" }],
    tag_names: "Currency",
    gameservers: [{ id: "598213905377230848", name: "Survival", enabled: true }],
    gameserver_names: "Survival",
    commands: [
      { stage: "on_purchase", content: `give {customer.minecraft.name} ${p.slug} 1`, online_only: true },
      { stage: "on_refund", content: `take {customer.minecraft.name} ${p.slug} 1`, online_only: false },
      { stage: "on_chargeback", content: "ban {customer.minecraft.name} Chargeback", online_only: false },
    ],
    created_at: "2024-11-02T11:09:40Z",
    updated_at: "2024-12-20T16:47:55Z",
    metadata: {},
  };
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
const TAX_RATE = 0.08;
/** Gateway 2.9% + 30¢, platform 5%: invented, as PayNow's real rates vary by gateway. */
const fees = (amount: number, tax: number) => {
  const gateway = Math.round(amount * 0.029) + 30;
  const platform = Math.round(amount * 0.05);
  return {
    gateway_fee_amount: gateway,
    tax_amount: tax,
    platform_fee_amount: platform,
    store_net_amount: amount - gateway - tax - platform,
  };
};

export interface LineSpec {
  product: CatalogProduct;
  quantity: number;
  /** The recipient when the line is a gift. */
  giftTo?: Customer;
  /** The line's id (default: a fresh flake id). */
  id?: string;
  /** The line's `total_amount` in cents (default: price × quantity plus 8% tax). */
  totalAmount?: number;
}

export interface Envelope<B = Record<string, unknown>> {
  event_type: string;
  event_id: string;
  body: B;
}

/** `ON_ORDER_COMPLETED`: the whole order, its lines, customer and checkout. */
export function orderCompleted(
  ids: FlakeIds,
  o: { atMs: number; customer: Customer; lines: LineSpec[]; orderId?: string; eventId?: string },
): Envelope {
  const orderId = o.orderId ?? ids.next(o.atMs - 60_000);
  const checkoutId = ids.next(o.atMs - 120_000);
  const lines = o.lines.map((l) => {
    const subtotal = l.product.price * l.quantity;
    const tax = Math.round(subtotal * TAX_RATE);
    return {
      id: l.id ?? ids.next(o.atMs - 60_000),
      checkout_line_id: ids.next(o.atMs - 120_000),
      product_id: l.product.id,
      product_version_id: l.product.versionId,
      product: productDto(l.product),
      product_name: l.product.name,
      product_image_url: `https://cdn.example-store.gg/products/${l.product.slug}.png`,
      subscription_id: null,
      subscription_line_id: null,
      subscription_interval_value: null,
      subscription_interval_scale: null,
      trial_id: null,
      gift_to_customer: l.giftTo ?? null,
      price: l.product.price,
      quantity: l.quantity,
      discount_amount: 0,
      subtotal_amount: subtotal,
      tax_amount: l.totalAmount === undefined ? tax : l.totalAmount - subtotal,
      total_amount: l.totalAmount ?? subtotal + tax,
      selected_gameserver_id: null,
    };
  });
  const subtotal = lines.reduce((s, l) => s + l.subtotal_amount, 0);
  const total = lines.reduce((s, l) => s + l.total_amount, 0);
  return {
    event_type: "ON_ORDER_COMPLETED",
    event_id: o.eventId ?? ids.next(o.atMs),
    body: {
      id: orderId,
      store_id: STORE_ID,
      customer: o.customer,
      checkout_id: checkoutId,
      checkout: {
        id: checkoutId,
        metadata: { site_user_id: `u_${o.customer.id.slice(-5)}` },
        lines: lines.map((l) => ({
          id: l.checkout_line_id,
          product_id: l.product_id,
          product_version_id: l.product_version_id,
          metadata: {},
        })),
      },
      subscription_id: null,
      applied_coupons: [],
      applied_giftcards: [],
      coupon_id: null,
      type: "one_time",
      currency: "USD",
      tax_inclusive: false,
      tax_amount: total - subtotal,
      discount_amount: 0,
      subtotal_amount: subtotal,
      total_amount: total,
      created_at: iso(o.atMs - 90_000),
      completed_at: iso(o.atMs),
      billing_name: o.customer.name,
      billing_email: `${o.customer.name.toLowerCase()}@example.net`,
      billing_address_country: "US",
      customer_ip: "198.51.100.23",
      giftcard_usage_amount: 0,
      lines,
      product_names: lines.map((l) => l.product_name).join(", "),
      product_tags: "Currency",
      product_gameservers: "Survival",
      status: "completed",
    },
  };
}

/** The order id and total of an `orderCompleted` payload, for the refunds and chargebacks that follow it. */
export function orderOf(order: Envelope): { orderId: string; total: number; customer: Customer; lineTotals: number[] } {
  const b = order.body as {
    id: string;
    total_amount: number;
    customer: Customer;
    lines: Array<{ total_amount: number }>;
  };
  return { orderId: b.id, total: b.total_amount, customer: b.customer, lineTotals: b.lines.map((l) => l.total_amount) };
}

/** `ON_REFUND` of `refundAmount` cents (`store_refund_amount`) of an order paid `paymentAmount`. */
export function refund(
  ids: FlakeIds,
  r: {
    atMs: number;
    orderId: string;
    customer: Customer;
    paymentAmount: number;
    refundAmount: number;
    eventId?: string;
  },
): Envelope {
  const tax = Math.round(r.paymentAmount * (TAX_RATE / (1 + TAX_RATE)));
  return {
    event_type: "ON_REFUND",
    event_id: r.eventId ?? ids.next(r.atMs),
    body: {
      id: ids.next(r.atMs - 150_000),
      store_id: STORE_ID,
      order_id: r.orderId,
      customer: r.customer,
      payment_id: ids.next(r.atMs - 200_000),
      gateway: "stripe",
      currency: "USD",
      tax_inclusive: false,
      amount: r.paymentAmount,
      ...fees(r.paymentAmount, tax),
      store_refund_amount: r.refundAmount,
      created_at: iso(r.atMs - 150_000),
      approved_at: iso(r.atMs - 150_000),
      pending_at: iso(r.atMs - 149_000),
      completed_at: iso(r.atMs),
      billing_email: `${r.customer.name.toLowerCase()}@example.net`,
      status: "completed",
    },
  };
}

function payment(
  ids: FlakeIds,
  p: { atMs: number; orderId: string; customer: Customer; amount: number; paymentId?: string },
  status: string,
  chargebackStatus: string,
  openedMs: number,
) {
  const tax = Math.round(p.amount * (TAX_RATE / (1 + TAX_RATE)));
  return {
    id: p.paymentId ?? ids.next(p.atMs - 86_400_000),
    store_id: STORE_ID,
    order_id: p.orderId,
    customer: p.customer,
    gateway: "stripe",
    currency: "USD",
    tax_inclusive: false,
    amount: p.amount,
    ...fees(p.amount, tax),
    status,
    chargeback_status: chargebackStatus,
    chargeback_at: iso(openedMs),
  };
}

/** `ON_CHARGEBACK`: the order's payment, with `chargeback_status: "pending"`. */
export function chargeback(
  ids: FlakeIds,
  c: { atMs: number; orderId: string; customer: Customer; amount: number; paymentId?: string; eventId?: string },
): Envelope {
  return {
    event_type: "ON_CHARGEBACK",
    event_id: c.eventId ?? ids.next(c.atMs),
    body: payment(ids, c, "chargeback", "pending", c.atMs),
  };
}

/** `ON_CHARGEBACK_CLOSED`: the same payment, `chargeback_status` `won` or `lost`. */
export function chargebackClosed(
  ids: FlakeIds,
  c: {
    atMs: number;
    orderId: string;
    customer: Customer;
    amount: number;
    outcome: "won" | "lost";
    openedMs?: number;
    paymentId?: string;
    eventId?: string;
  },
): Envelope {
  const opened = c.openedMs ?? c.atMs - 7 * 86_400_000;
  return {
    event_type: "ON_CHARGEBACK_CLOSED",
    event_id: c.eventId ?? ids.next(c.atMs),
    body: payment(ids, c, c.outcome === "won" ? "completed" : "chargeback", c.outcome, opened),
  };
}

/** `ON_DELIVERY_ITEM_ADDED`: an event type that moves no money (stored, never examined). */
export function deliveryItemAdded(
  ids: FlakeIds,
  d: { atMs: number; customer: Customer; product: CatalogProduct; orderId: string; eventId?: string },
): Envelope {
  return {
    event_type: "ON_DELIVERY_ITEM_ADDED",
    event_id: d.eventId ?? ids.next(d.atMs),
    body: {
      id: ids.next(d.atMs),
      store_id: STORE_ID,
      customer: d.customer,
      order_customer_id: d.customer.id,
      product_id: d.product.id,
      product_version_id: d.product.versionId,
      product: productDto(d.product),
      checkout_id: null,
      order_id: d.orderId,
      order_line_id: null,
      subscription_id: null,
      execute_on_gameserver_id: null,
      execute_on_gameserver: null,
      state: "usable",
      added_at: iso(d.atMs),
      active_at: null,
      expires_at: null,
      removed_at: null,
      revoked_at: null,
      revoke_reason: null,
    },
  };
}

/** The store behind `npm run paynow -- example`: its products are in the sample store's catalog. */
export const EXAMPLE_PRODUCTS = {
  vip: {
    id: "598214100215279616",
    versionId: "604417733190688768",
    slug: "vip-rank-30-days",
    name: "VIP Rank (30 days)",
    price: 999,
  },
  gems: { id: "598214367081775104", versionId: "598214367090163712", slug: "1000-gems", name: "1000 Gems", price: 499 },
} as const satisfies Record<string, CatalogProduct>;

/** Points the sample store's catalog gives the example products (`products/{id}.points`). */
export const EXAMPLE_POINTS: Record<string, { name: string; points: number }> = {
  [EXAMPLE_PRODUCTS.vip.id]: { name: EXAMPLE_PRODUCTS.vip.name, points: 1000 },
  [EXAMPLE_PRODUCTS.gems.id]: { name: EXAMPLE_PRODUCTS.gems.name, points: 1000 },
};

export const EXAMPLE_KINDS = ["order", "gift", "refund", "chargeback", "closing"] as const;
export type ExampleKind = (typeof EXAMPLE_KINDS)[number];

/**
 * One example of each kind, all about the same order so they can be sent in sequence: an order of VIP ×1
 * and 1000 Gems ×3, a gift of VIP, a refund of the Gems line, a chargeback of the rest, its closing won.
 * Event ids are fresh each time (PayNow's are unique per event); order and line ids are fixed.
 */
export function example(kind: ExampleKind, nowMs = Date.now()): Envelope {
  const ids = new FlakeIds();
  const buyer = minecraftCustomer("603120447719821312", "Gravel_Queen");
  const friend = minecraftCustomer("601958830127697920", "PixelFern");
  const orderId = "612502796311908352";
  const lines: LineSpec[] = [
    { product: EXAMPLE_PRODUCTS.vip, quantity: 1, id: "612502796320296960" },
    { product: EXAMPLE_PRODUCTS.gems, quantity: 3, id: "612502796320296961" },
  ];
  if (kind === "gift") {
    return orderCompleted(ids, {
      atMs: nowMs,
      customer: buyer,
      orderId: "612538410958471168",
      lines: [{ product: EXAMPLE_PRODUCTS.vip, quantity: 1, giftTo: friend, id: "612538410966859776" }],
    });
  }
  const order = orderCompleted(ids, { atMs: nowMs, customer: buyer, orderId, lines });
  if (kind === "order") return order;
  const { total, lineTotals } = orderOf(order);
  if (kind === "refund")
    return refund(ids, {
      atMs: nowMs,
      orderId,
      customer: buyer,
      paymentAmount: total,
      refundAmount: lineTotals[1] as number,
    });
  if (kind === "chargeback")
    return chargeback(ids, { atMs: nowMs, orderId, customer: buyer, amount: total, paymentId: "612502796404183040" });
  return chargebackClosed(ids, {
    atMs: nowMs,
    orderId,
    customer: buyer,
    amount: total,
    outcome: "won",
    paymentId: "612502796404183040",
  });
}
