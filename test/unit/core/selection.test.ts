// Which events a run examines, checked against the README's rules written out here: only money events of
// the phase's types (orders; refunds and chargebacks; closings); a replay only what nobody processed (or
// this same run did), a reversal backfill every one; a canary only events whose every wallet is its own
// (an order's line recipients; for the rest, the wallets of the order's purchase entries).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isSelected, type SelectingRun } from "../../../functions/src/core/selection";

const seed = Number(process.env.SELECTION_SEED ?? 20_261_201);
const TYPES = [
  "ON_ORDER_COMPLETED",
  "ON_REFUND",
  "ON_CHARGEBACK",
  "ON_CHARGEBACK_CLOSED",
  "ON_DELIVERY_ITEM_ADDED",
  "ON_SUBSCRIPTION_ACTIVATED",
] as const;
const PHASE_OF: Record<string, string | undefined> = {
  ON_ORDER_COMPLETED: "purchases",
  ON_REFUND: "reversals",
  ON_CHARGEBACK: "reversals",
  ON_CHARGEBACK_CLOSED: "closings",
};
const WALLETS = ["603120447719821312", "601958830127697920", "599002311476523008"];

const customer = (id: string) => ({
  id,
  name: "P",
  steam: null,
  minecraft: { id: `mc-${id}`, name: "P" },
  profile: { id: `mc-${id}` },
});

const event = fc.record({
  type: fc.constantFrom(...TYPES),
  processed: fc.constantFrom(undefined, false, true),
  processedBy: fc.constantFrom(null, "run_a", "run_b"),
  buyer: fc.constantFrom(...WALLETS),
  gifts: fc.array(fc.option(fc.constantFrom(...WALLETS), { nil: null }), { minLength: 1, maxLength: 3 }),
  /** The wallets of the order's purchase entries, as the ledger holds them (empty: no purchase). */
  purchased: fc.uniqueArray(fc.constantFrom(...WALLETS), { maxLength: 2 }),
});
type Spec = typeof event extends fc.Arbitrary<infer T> ? T : never;

function stored(e: Spec) {
  const orderId = "612502796311908352";
  const body =
    e.type === "ON_ORDER_COMPLETED"
      ? {
          id: orderId,
          customer: customer(e.buyer),
          total_amount: 100 * e.gifts.length,
          lines: e.gifts.map((g, k) => ({
            id: `61250279632029696${k}`,
            product_id: "598214100215279616",
            quantity: 1,
            total_amount: 100,
            gift_to_customer: g ? customer(g) : null,
          })),
        }
      : { order_id: orderId, store_refund_amount: 100, chargeback_status: "won", customer: customer(e.buyer) };
  return {
    event_type: e.type,
    event_id: "613044961375547392",
    body,
    processed: e.processed,
    processedBy: e.processedBy,
  };
}

/** The README's rules, written out again. */
function expected(e: Spec, run: SelectingRun, phase: string): boolean {
  if (PHASE_OF[e.type] !== phase) return false;
  if (run.type === "webhook_replay" && e.processed === true && !(e.processedBy === run.runId && !run.dryRun))
    return false;
  if (!run.userIds) return true;
  const wallets = e.type === "ON_ORDER_COMPLETED" ? e.gifts.map((g) => g ?? e.buyer) : e.purchased;
  return wallets.length > 0 && wallets.every((w) => run.userIds?.includes(w));
}

describe("event selection", () => {
  it(`examines what the rules say, for every type, mark, phase and canary (fast-check seed ${seed})`, () => {
    fc.assert(
      fc.property(
        event,
        fc.constantFrom("webhook_replay" as const, "reversal_backfill" as const),
        fc.boolean(),
        fc.option(fc.uniqueArray(fc.constantFrom(...WALLETS), { minLength: 1 }), { nil: null }),
        fc.constantFrom("purchases" as const, "reversals" as const, "closings" as const),
        (e, type, dryRun, userIds, phase) => {
          const run: SelectingRun = { runId: "run_a", type, dryRun, userIds, walletField: "id" };
          const wallets = (orderId: string) =>
            orderId === "612502796311908352" && e.purchased.length > 0 ? e.purchased : undefined;
          expect(isSelected(stored(e), run, phase, wallets)).toBe(expected(e, run, phase));
        },
      ),
      { seed, numRuns: 2000 },
    );
  });

  it("a canary never examines an event it cannot name the wallets of", () => {
    const run: SelectingRun = {
      runId: "r",
      type: "webhook_replay",
      dryRun: false,
      userIds: [WALLETS[0] as string],
      walletField: "id",
    };
    const order = stored({
      type: "ON_ORDER_COMPLETED",
      processed: false,
      processedBy: null,
      buyer: WALLETS[0] as string,
      gifts: [null],
      purchased: [],
    });
    expect(isSelected(order, run, "purchases")).toBe(true);
    const without: Record<string, unknown> = { ...order, body: { ...order.body, customer: undefined } };
    const unusable: Record<string, unknown> = {
      ...order,
      body: { ...order.body, customer: { ...customer(WALLETS[0] as string), id: 7 } },
    };
    expect(isSelected(without, run, "purchases")).toBe(false);
    expect(isSelected(unusable, run, "purchases")).toBe(false);
    // By another wallet field: the Minecraft player id.
    expect(isSelected(order, { ...run, userIds: [`mc-${WALLETS[0]}`], walletField: "minecraft.id" }, "purchases")).toBe(
      true,
    );
    // A refund whose order has no purchase entry moves no wallet the canary owns.
    const refund = stored({
      type: "ON_REFUND",
      processed: false,
      processedBy: null,
      buyer: WALLETS[0] as string,
      gifts: [null],
      purchased: [],
    });
    expect(isSelected(refund, run, "reversals", () => undefined)).toBe(false);
    expect(isSelected(refund, run, "reversals", () => [WALLETS[0] as string])).toBe(true);
  });
});
