// PayNow's webhook format, as the money rules read it. A stored event is PayNow's request body verbatim
// (`event_type`, `event_id`, `body`) plus the product's own fields (`createdAt`, `processed`, …). Only
// four event types move money; every other type is stored and never examined. This module checks a
// money event's body in the order the README's rules give and turns it into the few facts the decisions
// need. Pure: no Firebase import.

/** The event types that move money, in the order a replay's phases take them. */
export const MONEY_EVENT_TYPES = ["ON_ORDER_COMPLETED", "ON_REFUND", "ON_CHARGEBACK", "ON_CHARGEBACK_CLOSED"] as const;
export type MoneyEventType = (typeof MONEY_EVENT_TYPES)[number];

export function isMoneyEventType(value: unknown): value is MoneyEventType {
  return typeof value === "string" && (MONEY_EVENT_TYPES as readonly string[]).includes(value);
}

/** Which field of a PayNow customer names the store's wallet (the `WALLET_FIELD` setting). */
export const WALLET_FIELDS = ["id", "steam.id", "minecraft.id", "profile.id"] as const;
export type WalletField = (typeof WALLET_FIELDS)[number];
export const DEFAULT_WALLET_FIELD: WalletField = "id";

/** One line of a completed order, with the wallet it credits. */
export interface OrderLine {
  lineId: string;
  productId: string;
  quantity: number;
  /** The line's `total_amount`, in cents. */
  amount: number;
  /** The recipient's wallet id: `gift_to_customer` when the line is a gift, else the order's `customer`. */
  wallet: string;
}

/** What the money rules read from each money event. */
export type MoneyFacts =
  | { type: "ON_ORDER_COMPLETED"; orderId: string; amount: number; lines: OrderLine[] }
  | { type: "ON_REFUND"; orderId: string; refundAmount: number }
  | { type: "ON_CHARGEBACK"; orderId: string }
  | { type: "ON_CHARGEBACK_CLOSED"; orderId: string; outcome: "won" | "lost" };

export type FactsCheck = { ok: true; facts: MoneyFacts } | { ok: false; message: string };

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * A value that becomes part of a Firestore document id (`purchase_{order}_{line}`, `wallets/{wallet}`).
 * PayNow's ids are flake ids (digits), Minecraft ids UUIDs or names, Steam ids SteamID64s: all usable.
 */
export function usableId(v: unknown): v is string {
  return (
    typeof v === "string" &&
    v.length > 0 &&
    v.length <= 200 &&
    !v.includes("/") &&
    v !== "." &&
    v !== ".." &&
    !/^__.*__$/.test(v)
  );
}

const isAmount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/** The wallet id a customer object names under `field`, or why it cannot. */
function walletOf(
  customer: unknown,
  field: WalletField,
  where: string,
): { ok: true; wallet: string } | { ok: false; message: string } {
  if (!isObject(customer)) return { ok: false, message: `${where} must be a customer object` };
  const path = field.split(".");
  let value: unknown = customer;
  for (const key of path) value = isObject(value) ? value[key] : undefined;
  if (!usableId(value)) {
    return {
      ok: false,
      message: `${where}.${field} (the wallet id, WALLET_FIELD=${field}) is missing or not a usable id`,
    };
  }
  return { ok: true, wallet: value };
}

/**
 * The wallet of an event's `body.customer` (the buyer), when it names one: for a refund or chargeback, whose
 * money moves the wallets of its order's purchase entries, only a hint of where it lands (a gift's
 * recipient differs). Grouping uses it; no decision does.
 */
export function buyerWallet(data: unknown, field: WalletField): string | undefined {
  const body = isObject(data) ? data.body : undefined;
  const found = isObject(body) ? walletOf(body.customer, field, "body.customer") : null;
  return found?.ok ? found.wallet : undefined;
}

function orderFacts(body: Json, walletField: WalletField): FactsCheck {
  if (!usableId(body.id)) return { ok: false, message: "body.id (the order id) is missing or not a usable id" };
  if (!isObject(body.customer)) return { ok: false, message: "body.customer is missing" };
  if (!isAmount(body.total_amount))
    return { ok: false, message: "body.total_amount must be an integer of at least 0 (cents)" };
  if (!Array.isArray(body.lines) || body.lines.length === 0)
    return { ok: false, message: "body.lines must be a non-empty list of order lines" };
  const lines: OrderLine[] = [];
  const seen = new Set<string>();
  for (const [i, raw] of (body.lines as unknown[]).entries()) {
    const where = `body.lines[${i}]`;
    if (!isObject(raw)) return { ok: false, message: `${where} must be an order line object` };
    if (!usableId(raw.id)) return { ok: false, message: `${where}.id (the line id) is missing or not a usable id` };
    if (seen.has(raw.id)) return { ok: false, message: `${where}.id ${raw.id} appears twice in the order` };
    seen.add(raw.id);
    if (!usableId(raw.product_id)) return { ok: false, message: `${where}.product_id is missing or not a usable id` };
    if (typeof raw.quantity !== "number" || !Number.isSafeInteger(raw.quantity) || raw.quantity < 1) {
      return { ok: false, message: `${where}.quantity must be an integer of at least 1` };
    }
    if (!isAmount(raw.total_amount))
      return { ok: false, message: `${where}.total_amount must be an integer of at least 0 (cents)` };
    const gift = raw.gift_to_customer;
    const recipient =
      gift === null || gift === undefined
        ? walletOf(body.customer, walletField, "body.customer")
        : walletOf(gift, walletField, `${where}.gift_to_customer`);
    if (!recipient.ok) return recipient;
    lines.push({
      lineId: raw.id,
      productId: raw.product_id,
      quantity: raw.quantity,
      amount: raw.total_amount,
      wallet: recipient.wallet,
    });
  }
  return { ok: true, facts: { type: "ON_ORDER_COMPLETED", orderId: body.id, amount: body.total_amount, lines } };
}

/**
 * Reads a stored money event: the envelope, then its body by the README's rules. The message names the
 * first field that is wrong, so an operator can find it in the document.
 */
export function moneyFacts(data: unknown, walletField: WalletField = DEFAULT_WALLET_FIELD): FactsCheck {
  if (!isObject(data)) return { ok: false, message: "event document is missing" };
  const type = data.event_type;
  if (!isMoneyEventType(type))
    return { ok: false, message: `event_type must be one of ${MONEY_EVENT_TYPES.join(", ")}` };
  const body = data.body;
  if (!isObject(body)) return { ok: false, message: "body must be an object (PayNow's event body)" };
  if (type === "ON_ORDER_COMPLETED") return orderFacts(body, walletField);
  if (!usableId(body.order_id)) return { ok: false, message: "body.order_id is missing or not a usable id" };
  const orderId = body.order_id;
  if (type === "ON_REFUND") {
    if (!isAmount(body.store_refund_amount))
      return { ok: false, message: "body.store_refund_amount must be an integer of at least 0 (cents)" };
    return { ok: true, facts: { type, orderId, refundAmount: body.store_refund_amount } };
  }
  if (type === "ON_CHARGEBACK") return { ok: true, facts: { type, orderId } };
  const status = body.chargeback_status;
  if (status !== "won" && status !== "lost") {
    return {
      ok: false,
      message: `body.chargeback_status must be "won" or "lost" (got ${JSON.stringify(status ?? null)})`,
    };
  }
  return { ok: true, facts: { type, orderId, outcome: status } };
}

/** The order a stored money event is about (its own id for an order, `body.order_id` otherwise), if readable. */
export function orderIdOf(data: unknown): string | null {
  if (!isObject(data) || !isObject(data.body)) return null;
  const id = data.event_type === "ON_ORDER_COMPLETED" ? data.body.id : data.body.order_id;
  return usableId(id) ? id : null;
}

/** What makes a request body a PayNow envelope the receiver can store. */
export type EnvelopeCheck =
  { ok: true; eventType: string; eventId: string; body: Json } | { ok: false; message: string };

/** Checks the three fields every PayNow webhook has (`event_type`, `event_id`, `body`). */
export function checkEnvelope(data: unknown): EnvelopeCheck {
  if (!isObject(data))
    return { ok: false, message: "the body must be a JSON object with event_type, event_id and body" };
  const problems: string[] = [];
  if (typeof data.event_type !== "string" || !/^[A-Z][A-Z0-9_]{0,99}$/.test(data.event_type))
    problems.push("event_type must be a PayNow event type such as ON_ORDER_COMPLETED");
  if (!usableId(data.event_id) || !/^[0-9A-Za-z_-]+$/.test(data.event_id))
    problems.push("event_id must be PayNow's event id (a flake id of digits)");
  if (!isObject(data.body)) problems.push("body must be an object");
  if (problems.length > 0) return { ok: false, message: problems.join("; ") };
  return { ok: true, eventType: data.event_type as string, eventId: data.event_id as string, body: data.body as Json };
}
