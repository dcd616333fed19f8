// More of the money rules (core/ledger.ts, core/events.ts, core/types.ts): what a decision may assume about
// entries nobody read, whose entry counts as the run's own, what a reversal backfill marks, and the exact
// messages an operator reads.
import { describe, expect, it } from "vitest";
import { checkEvent, checkProduct } from "../../functions/src/core/events";
import { decideGroup, entryIdsFor, productIdFor, type ApplyContext, type GroupState, type LedgerEntry } from "../../functions/src/core/ledger";
import { countOutcomes, phasesFor } from "../../functions/src/core/types";

const at = new Date("2025-01-05T10:00:00Z");
const ev = (orderId: string, type = "order.completed", extra: Record<string, unknown> = {}) => ({
  provider: "paynow",
  type,
  orderId,
  userId: "u1",
  productId: "gems",
  createdAt: at,
  processed: false,
  ...extra,
});
const entry = (orderId: string, extra: Partial<LedgerEntry> = {}): LedgerEntry => ({
  userId: "u1",
  kind: "purchase",
  points: 100,
  orderId,
  productId: "gems",
  sourceEventId: `live_${orderId}`,
  reason: null,
  migrationId: null,
  ...extra,
});
const replay: ApplyContext = { runId: "run_1", mode: "webhook_replay", dryRun: false };
const backfill: ApplyContext = { runId: "run_2", mode: "reversal_backfill", dryRun: false };

/** Ledger entries the caller read: a value is an entry, undefined is "read, and absent". Ids not listed were not read. */
function state(events: Record<string, unknown>, ledger: Record<string, LedgerEntry | undefined>, products: Record<string, number | null> = { gems: 100 }): GroupState {
  return {
    events: new Map(Object.entries(events)),
    ledger: new Map(Object.entries(ledger)),
    shadow: new Map(),
    products: new Map(Object.entries(products).map(([id, points]) => [id, points === null ? null : { name: id, points }])),
  };
}

describe("what a decision may assume about entries nobody read", () => {
  it("a purchase created without reading its entry is verified by the write itself (create fails if it exists)", () => {
    expect(decideGroup(replay, ["e"], state({ e: ev("o1") }, {})).unverified).toEqual([]);
  });

  it("an error resting on an entry nobody read is unverified, and decided again once it is read", () => {
    const gone = state({ e: ev("o1", "order.completed", { productId: "gone" }) }, {}, {});
    const first = decideGroup(replay, ["e"], gone);
    expect(first.outcomes[0]).toMatchObject({ result: "error", code: "PRODUCT_NOT_FOUND" });
    expect(first.unverified).toEqual(["purchase_o1"]);
    // Read: the order is credited already, so the event is skipped (and marked), exactly as a dry run decides.
    const read = state({ e: ev("o1", "order.completed", { productId: "gone" }) }, { purchase_o1: entry("o1") }, {});
    const again = decideGroup(replay, ["e"], read);
    expect(again.outcomes[0]).toMatchObject({ result: "skipped", reason: "PURCHASE_EXISTS" });
    expect(again.unverified).toEqual([]);
    expect(again.intents).toEqual([{ kind: "markProcessed", eventId: "e" }]);
    // Read, and truly absent: the error stands, and is now verified.
    expect(decideGroup(replay, ["e"], state({ e: ev("o1", "order.completed", { productId: "gone" }) }, { purchase_o1: undefined }, {})).unverified).toEqual([]);
  });

  it("a reversal's error is unverified while its own reversal entry was not read", () => {
    const r = decideGroup(replay, ["r"], state({ r: ev("o1", "order.refunded") }, { purchase_o1: undefined }));
    expect(r.outcomes[0]).toMatchObject({ result: "error", code: "ORIGINAL_PURCHASE_NOT_FOUND" });
    expect(r.unverified).toEqual(["reversal_o1"]);
    // Reversing an order whose purchase was read checks its own absence by creating it.
    expect(decideGroup(replay, ["r"], state({ r: ev("o1", "order.refunded") }, { purchase_o1: entry("o1") })).unverified).toEqual([]);
  });

  it("an entry the same group creates is known, not assumed", () => {
    const r = decideGroup(replay, ["p", "r"], state({ p: ev("o1"), r: ev("o1", "order.refunded") }, { reversal_o1: undefined }));
    expect(r.outcomes.map((o) => o.result)).toEqual(["processed", "processed"]);
    expect(r.unverified).toEqual([]);
  });
});

describe("whose entry counts as the run's own", () => {
  it("only an entry this run wrote for this very event", () => {
    const mine = entry("o1", { migrationId: "run_1", sourceEventId: "e" });
    const processedByMe = ev("o1", "order.completed", { processed: true, processedBy: "run_1" });
    expect(decideGroup(replay, ["e"], state({ e: processedByMe }, { purchase_o1: mine })).outcomes[0]).toMatchObject({ result: "processed" });
    // Same run, another event of the order: that event is a duplicate.
    expect(decideGroup(replay, ["e2"], state({ e2: ev("o1") }, { purchase_o1: mine })).outcomes[0]).toMatchObject({ result: "skipped", reason: "PURCHASE_EXISTS" });
    // Same event id, another run's entry.
    expect(decideGroup(replay, ["e"], state({ e: ev("o1") }, { purchase_o1: { ...mine, migrationId: "run_9" } })).outcomes[0]).toMatchObject({ result: "skipped" });
    // Live processing never owns an entry.
    expect(decideGroup({ runId: null, mode: "live", dryRun: false }, ["e"], state({ e: ev("o1") }, { purchase_o1: { ...mine, migrationId: null } })).outcomes[0]).toMatchObject({ result: "skipped" });
  });
});

describe("what a replay and a reversal backfill mark", () => {
  it("a replay marks a refund of an order already reversed; a reversal backfill leaves live processing's marks as they are", () => {
    const reversed = { purchase_o1: entry("o1"), reversal_o1: entry("o1", { kind: "reversal", points: -100, reason: "refund" }) };
    const replayed = decideGroup(replay, ["r"], state({ r: ev("o1", "order.refunded") }, reversed));
    expect(replayed.outcomes[0]).toMatchObject({ result: "skipped", reason: "ALREADY_REVERSED" });
    expect(replayed.intents).toEqual([{ kind: "markProcessed", eventId: "r" }]);
    const backfilled = decideGroup(backfill, ["r"], state({ r: ev("o1", "order.refunded") }, reversed));
    expect(backfilled.outcomes[0]).toMatchObject({ result: "skipped", reason: "ALREADY_REVERSED" });
    expect(backfilled.intents).toEqual([]);
  });

  it("a reversal backfill examines refunds live processing marked; a replay skips them as processed", () => {
    const marked = ev("o1", "order.refunded", { processed: true });
    const ledger = { purchase_o1: entry("o1"), reversal_o1: undefined };
    expect(decideGroup(backfill, ["r"], state({ r: marked }, ledger)).outcomes[0]).toMatchObject({ result: "processed", entryId: "reversal_o1", points: -100 });
    expect(decideGroup(replay, ["r"], state({ r: marked }, ledger)).outcomes[0]).toEqual({ eventId: "r", result: "skipped", reason: "ALREADY_PROCESSED" });
    // An event another run processed is that run's; one this run processed is examined again.
    expect(decideGroup(replay, ["r"], state({ r: { ...marked, processedBy: "run_7" } }, ledger)).outcomes[0]).toMatchObject({ reason: "ALREADY_PROCESSED" });
    expect(decideGroup(replay, ["r"], state({ r: { ...marked, processedBy: "run_1" } }, ledger)).outcomes[0]).toMatchObject({ result: "processed" });
  });

  it("refuses a purchase whose points overflow, with the message an operator reads", () => {
    const r = decideGroup(replay, ["e"], state({ e: ev("o1", "order.completed", { quantity: 2 ** 40 }) }, {}, { gems: 2 ** 20 }));
    expect(r.outcomes[0]).toEqual({ eventId: "e", result: "error", code: "INVALID_EVENT", message: "Invalid event: quantity × points is too large" });
    expect(r.intents).toEqual([]);
    const invalid = decideGroup(replay, ["e"], state({ e: ev("o1", "order.completed", { productId: "bad" }) }, {}, { bad: null }));
    expect(invalid.outcomes[0]).toEqual({ eventId: "e", result: "error", code: "PRODUCT_INVALID", message: "Product bad has no valid points value" });
  });
});

describe("the ids a decision needs", () => {
  it.each([
    [ev("o1"), ["purchase_o1"]],
    [ev("o1", "order.refunded"), ["purchase_o1", "reversal_o1"]],
    [ev("o1", "order.chargeback"), ["purchase_o1", "reversal_o1"]],
    [{ orderId: "" }, []],
    [{ orderId: "a/b" }, []],
    [{ orderId: 5 }, []],
    [null, []],
    [undefined, []],
  ])("entries of %j: %j", (raw, ids) => {
    expect(entryIdsFor(raw)).toEqual(ids);
  });

  it.each([
    [{ productId: "gems" }, "gems"],
    [{ productId: "" }, null],
    [{ productId: "a/b" }, null],
    [{ productId: 3 }, null],
    [null, null],
  ])("product of %j: %j", (raw, id) => {
    expect(productIdFor(raw)).toBe(id);
  });
});

describe("event checks name every field that is wrong", () => {
  const ok = ev("o1");
  it.each([
    [{ ...ok, orderId: "" }, "orderId must be a non-empty string"],
    [{ ...ok, orderId: "x".repeat(701) }, "orderId is longer than 700 characters"],
    [{ ...ok, orderId: "x".repeat(700) }, null],
    [{ ...ok, orderId: "a/b" }, 'orderId must not contain "/"'],
    [{ ...ok, orderId: "." }, "orderId is not a usable id"],
    [{ ...ok, orderId: ".." }, "orderId is not a usable id"],
    [{ ...ok, orderId: "__x__" }, "orderId is not a usable id"],
    [{ ...ok, orderId: "___" }, null],
    [{ ...ok, orderId: "__x" }, null],
    [{ ...ok, orderId: "x__" }, null],
    [{ ...ok, orderId: "a.b" }, null],
    [{ ...ok, userId: 7 }, "userId must be a non-empty string"],
    [{ ...ok, productId: "" }, "productId must be a non-empty string"],
    [{ ...ok, type: "order.weird" }, "type must be one of order.completed, order.refunded, order.chargeback"],
    [{ ...ok, provider: "other" }, 'provider must be "paynow"'],
    [{ ...ok, quantity: 0 }, "quantity must be an integer of at least 1"],
    [{ ...ok, quantity: 1.5 }, "quantity must be an integer of at least 1"],
    [{ ...ok, quantity: "2" }, "quantity must be an integer of at least 1"],
    [{ ...ok, quantity: null }, null],
    [{ ...ok, createdAt: "2025-01-01" }, "createdAt must be a Firestore Timestamp"],
    [{ ...ok, processed: "yes" }, "processed must be a boolean"],
    [{ ...ok, processed: null }, null],
  ])("%j → %s", (data, message) => {
    const check = checkEvent("e", data);
    if (message === null) expect(check.ok).toBe(true);
    else expect(check).toEqual({ ok: false, message });
  });

  it("lists several problems at once, each once, and defaults what may be missing", () => {
    expect(checkEvent("e", { ...ok, orderId: "", userId: "" })).toEqual({ ok: false, message: "orderId must be a non-empty string; userId must be a non-empty string" });
    expect(checkEvent("e", null)).toEqual({ ok: false, message: "event document is missing" });
    expect(checkEvent("e", undefined)).toEqual({ ok: false, message: "event document is missing" });
    const defaults = checkEvent("e", { ...ok, processed: undefined, quantity: undefined });
    expect(defaults).toMatchObject({ ok: true, event: { processed: false, quantity: 1, processedBy: null } });
  });

  it("a product needs integer points above zero, at most the largest safe integer", () => {
    expect(checkProduct({ name: "Gems", points: 5 })).toEqual({ name: "Gems", points: 5 });
    expect(checkProduct({ points: 5 })).toEqual({ name: "", points: 5 });
    for (const points of [0, -1, 1.5, "5", Number.MAX_SAFE_INTEGER + 2]) expect(checkProduct({ name: "x", points })).toBeNull();
    expect(checkProduct({ name: "x", points: Number.MAX_SAFE_INTEGER })).toEqual({ name: "x", points: Number.MAX_SAFE_INTEGER });
    expect(checkProduct(undefined)).toBeNull();
  });
});

describe("small helpers", () => {
  it("counts outcomes by result", () => {
    expect(
      countOutcomes([
        { eventId: "a", result: "processed", entryId: "x", userId: "u", points: 1 },
        { eventId: "b", result: "skipped", reason: "PURCHASE_EXISTS" },
        { eventId: "c", result: "error", code: "INVALID_EVENT", message: "m" },
        { eventId: "d", result: "processed", entryId: "y", userId: "u", points: 1 },
      ]),
    ).toEqual({ total: 4, processed: 2, skipped: 1, errors: 1 });
    expect(countOutcomes([])).toEqual({ total: 0, processed: 0, skipped: 0, errors: 0 });
  });

  it("a replay has two phases, a reversal backfill one", () => {
    expect(phasesFor("webhook_replay")).toEqual(["purchases", "reversals"]);
    expect(phasesFor("reversal_backfill")).toEqual(["reversals"]);
  });
});
