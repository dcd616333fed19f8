import { describe, expect, it } from "vitest";
import { decideGroup, type ApplyContext, type GroupState, type LedgerEntry } from "../../functions/src/core/ledger";
import type { Product } from "../../functions/src/core/events";

const at = new Date("2025-01-05T10:00:00Z");
const event = (orderId: string, type = "order.completed", extra: Record<string, unknown> = {}) => ({
  provider: "paynow",
  type,
  orderId,
  userId: "u1",
  productId: "gems",
  createdAt: at,
  processed: false,
  ...extra,
});
const purchaseEntry = (orderId: string, extra: Partial<LedgerEntry> = {}): LedgerEntry => ({
  userId: "u1",
  kind: "purchase",
  points: 250,
  orderId,
  productId: "gems",
  sourceEventId: `e_${orderId}`,
  reason: null,
  migrationId: null,
  ...extra,
});

function state(events: Record<string, unknown>, ledger: Record<string, LedgerEntry> = {}, shadow: Record<string, LedgerEntry> = {}): GroupState {
  return {
    events: new Map(Object.entries(events)),
    ledger: new Map(Object.entries(ledger)),
    shadow: new Map(Object.entries(shadow)),
    products: new Map<string, Product | null>([["gems", { name: "Gems", points: 250 }], ["broken", null]]),
  };
}

const replay: ApplyContext = { runId: "webhook_replay_1", mode: "webhook_replay", dryRun: false };
const dry: ApplyContext = { ...replay, dryRun: true };

describe("purchases", () => {
  it("credits product points × quantity, writes the entry and marks the event, together", () => {
    const { outcomes, intents } = decideGroup(replay, ["e1"], state({ e1: event("o1", "order.completed", { quantity: 3 }) }));
    expect(outcomes).toEqual([{ eventId: "e1", result: "processed", entryId: "purchase_o1", userId: "u1", points: 750 }]);
    expect(intents).toEqual([
      { kind: "createEntry", target: "ledger", id: "purchase_o1", entry: expect.objectContaining({ points: 750, kind: "purchase", migrationId: "webhook_replay_1", sourceEventId: "e1", reason: null }) },
      { kind: "markProcessed", eventId: "e1" },
      { kind: "creditWallet", userId: "u1", points: 750 },
    ]);
  });

  it("skips an order whose purchase entry exists, and marks the duplicate event processed", () => {
    const { outcomes, intents } = decideGroup(replay, ["e2"], state({ e2: event("o1") }, { purchase_o1: purchaseEntry("o1") }));
    expect(outcomes[0]).toMatchObject({ result: "skipped", reason: "PURCHASE_EXISTS" });
    expect(intents).toEqual([{ kind: "markProcessed", eventId: "e2" }]);
  });

  it("credits an order once when two events for it arrive in one group", () => {
    const { outcomes, intents } = decideGroup(replay, ["a", "b"], state({ a: event("o1"), b: event("o1") }));
    expect(outcomes.map((o) => o.result)).toEqual(["processed", "skipped"]);
    expect(intents.filter((i) => i.kind === "creditWallet")).toEqual([{ kind: "creditWallet", userId: "u1", points: 250 }]);
  });

  it("counts again, without writing, an entry this run already wrote for this event", () => {
    const mine = purchaseEntry("o1", { sourceEventId: "e1", migrationId: "webhook_replay_1" });
    const processed = event("o1", "order.completed", { processed: true, processedBy: "webhook_replay_1" });
    const { outcomes, intents } = decideGroup(replay, ["e1"], state({ e1: processed }, { purchase_o1: mine }));
    expect(outcomes[0]).toMatchObject({ result: "processed", entryId: "purchase_o1" });
    expect(intents).toEqual([]);
  });

  it("leaves events processed by someone else alone", () => {
    const { outcomes, intents } = decideGroup(replay, ["e1"], state({ e1: event("o1", "order.completed", { processed: true }) }));
    expect(outcomes[0]).toMatchObject({ result: "skipped", reason: "ALREADY_PROCESSED" });
    expect(intents).toEqual([]);
  });

  it("reports an unknown or unusable product without writing", () => {
    const unknown = decideGroup(replay, ["e1"], state({ e1: event("o1", "order.completed", { productId: "nope" }) }));
    expect(unknown.outcomes[0]).toMatchObject({ result: "error", code: "PRODUCT_NOT_FOUND", message: "Product not found: nope" });
    const invalid = decideGroup(replay, ["e1"], state({ e1: event("o1", "order.completed", { productId: "broken" }) }));
    expect(invalid.outcomes[0]).toMatchObject({ result: "error", code: "PRODUCT_INVALID" });
    expect([...unknown.intents, ...invalid.intents]).toEqual([]);
  });

  it.each([
    ["a missing userId", { userId: undefined }, /userId/],
    ["a zero quantity", { quantity: 0 }, /quantity/],
    ["an order id with a slash", { orderId: "a/b" }, /orderId must not contain/],
    ["another provider", { provider: "stripe" }, /provider/],
    ["an unknown type", { type: "order.pending" }, /type must be one of/],
    ["a string timestamp", { createdAt: "2025-01-05" }, /createdAt/],
  ])("reports %s as INVALID_EVENT naming the field", (_name, change, message) => {
    const { outcomes, intents } = decideGroup(replay, ["e1"], state({ e1: { ...event("o1"), ...change } }));
    expect(outcomes[0]).toMatchObject({ result: "error", code: "INVALID_EVENT" });
    expect((outcomes[0] as { message: string }).message).toMatch(message);
    expect(intents).toEqual([]);
  });

  it("reports a deleted event document", () => {
    const { outcomes } = decideGroup(replay, ["gone"], state({}));
    expect(outcomes[0]).toMatchObject({ result: "error", code: "INVALID_EVENT", message: "Invalid event: event document is missing" });
  });
});

describe("reversals", () => {
  it("takes back exactly the purchase's points from the purchase's user", () => {
    const refund = event("o1", "order.refunded", { userId: "someone-else" });
    const { outcomes, intents } = decideGroup(replay, ["r1"], state({ r1: refund }, { purchase_o1: purchaseEntry("o1", { points: 500 }) }));
    expect(outcomes[0]).toEqual({ eventId: "r1", result: "processed", entryId: "reversal_o1", userId: "u1", points: -500 });
    expect(intents).toContainEqual({ kind: "creditWallet", userId: "u1", points: -500 });
    expect(intents).toContainEqual(expect.objectContaining({ kind: "createEntry", id: "reversal_o1", entry: expect.objectContaining({ reason: "refund", kind: "reversal" }) }));
  });

  it("records a chargeback's reason", () => {
    const { intents } = decideGroup(replay, ["c1"], state({ c1: event("o1", "order.chargeback") }, { purchase_o1: purchaseEntry("o1") }));
    expect(intents).toContainEqual(expect.objectContaining({ entry: expect.objectContaining({ reason: "chargeback", points: -250 }) }));
  });

  it("reverses an order at most once, even for a refund and a chargeback in one group", () => {
    const s = state({ r1: event("o1", "order.refunded"), c1: event("o1", "order.chargeback") }, { purchase_o1: purchaseEntry("o1") });
    const { outcomes, intents } = decideGroup(replay, ["r1", "c1"], s);
    expect(outcomes.map((o) => o.result)).toEqual(["processed", "skipped"]);
    expect(intents.filter((i) => i.kind === "createEntry")).toHaveLength(1);
  });

  it("reports a reversal whose purchase entry does not exist", () => {
    const { outcomes, intents } = decideGroup(replay, ["r1"], state({ r1: event("o9", "order.refunded") }));
    expect(outcomes[0]).toMatchObject({ result: "error", code: "ORIGINAL_PURCHASE_NOT_FOUND" });
    expect((outcomes[0] as { message: string }).message).toMatch(/^Original purchase entry not found/);
    expect(intents).toEqual([]);
  });

  it("in a reversal backfill, reverses processed refunds but keeps live processing's mark", () => {
    const backfill: ApplyContext = { runId: "reversal_backfill_1", mode: "reversal_backfill", dryRun: false };
    const processedRefund = event("o1", "order.refunded", { processed: true });
    const { outcomes, intents } = decideGroup(backfill, ["r1"], state({ r1: processedRefund }, { purchase_o1: purchaseEntry("o1") }));
    expect(outcomes[0]).toMatchObject({ result: "processed" });
    expect(intents.some((i) => i.kind === "markProcessed")).toBe(false);
    const again = decideGroup(backfill, ["r1"], state({ r1: processedRefund }, { purchase_o1: purchaseEntry("o1"), reversal_o1: { ...purchaseEntry("o1"), kind: "reversal", points: -250, sourceEventId: "r0", migrationId: null } }));
    expect(again.outcomes[0]).toMatchObject({ result: "skipped", reason: "ALREADY_REVERSED" });
  });
});

describe("dry runs", () => {
  it("writes only to the shadow ledger and marks dryRunProcessed; no wallet", () => {
    const { outcomes, intents } = decideGroup(dry, ["e1"], state({ e1: event("o1") }));
    expect(outcomes[0]).toMatchObject({ result: "processed", points: 250 });
    expect(intents).toEqual([
      { kind: "createEntry", target: "shadow", id: "purchase_o1", entry: expect.objectContaining({ migrationId: "webhook_replay_1" }) },
      { kind: "markDryRun", eventId: "e1" },
    ]);
  });

  it("sees its own would-be purchase when deciding the reversal, as the real run would", () => {
    const shadowPurchase = purchaseEntry("o1", { sourceEventId: "e1", migrationId: "webhook_replay_1" });
    const { outcomes } = decideGroup(dry, ["r1"], state({ r1: event("o1", "order.refunded") }, {}, { purchase_o1: shadowPurchase }));
    expect(outcomes[0]).toMatchObject({ result: "processed", points: -250 });
  });

  it("makes the same decisions as the real run on the same data", () => {
    const events = { a: event("o1"), b: event("o1"), c: event("o2", "order.completed", { productId: "nope" }), d: event("o3", "order.refunded") };
    const ids = Object.keys(events);
    const real = decideGroup(replay, ids, state(events, { purchase_o3: purchaseEntry("o3") }));
    const simulated = decideGroup(dry, ids, state(events, { purchase_o3: purchaseEntry("o3") }));
    expect(simulated.outcomes).toEqual(real.outcomes);
  });
});

describe("live processing", () => {
  it("has no run id and never treats an existing entry as its own", () => {
    const live: ApplyContext = { runId: null, mode: "live", dryRun: false };
    const entry = purchaseEntry("o1", { sourceEventId: "e1", migrationId: null });
    const { outcomes } = decideGroup(live, ["e1"], state({ e1: event("o1") }, { purchase_o1: entry }));
    expect(outcomes[0]).toMatchObject({ result: "skipped", reason: "PURCHASE_EXISTS" });
  });
});
