// How a page's events are cut into transactions (ledger/apply.ts groupByOrder): whole orders, one order's
// events in their page order, and a customer's orders together so their wallet is written once per group.
import fc from "fast-check";
import type { DocumentSnapshot } from "firebase-admin/firestore";
import { describe, expect, it } from "vitest";
import { busiestWallet, type MoneyOutcome } from "../../../functions/src/core/outcomes";
import { groupByOrder } from "../../../functions/src/ledger/groups";

const seed = Number(process.env.GROUP_SEED ?? 20261202);

/** A stand-in for a read event: what groupByOrder looks at is its id and its data. */
function event(id: string, type: string, orderId: string, wallet: string, buyerNamed = false): DocumentSnapshot {
  const body =
    type === "ON_ORDER_COMPLETED"
      ? {
          id: orderId,
          customer: { id: wallet },
          total_amount: 100,
          lines: [{ id: `${orderId}l`, product_id: "p1", quantity: 1, total_amount: 100 }],
        }
      : { order_id: orderId, store_refund_amount: 100, ...(buyerNamed ? { customer: { id: wallet } } : {}) };
  const data = { event_type: type, event_id: id, body };
  return { id, data: () => data } as unknown as DocumentSnapshot;
}

/** What one commit takes of one wallet's orders (docs/capacity.md: 150 events, about 450 writes, of Firestore's 500). */
const WALLET_GROUP = 150;

describe(`cutting a page into groups (fast-check seed ${seed}, GROUP_SEED)`, () => {
  it("keeps orders whole and in page order, a wallet's orders in one group up to what a commit takes, and mixed groups within the size", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            order: fc.nat(60),
            wallet: fc.constantFrom("heavy", "heavy", "heavy", "a", "b", "c", "d", "e", "f", "g"),
            refund: fc.boolean(),
            buyerNamed: fc.boolean(),
          }),
          { minLength: 100, maxLength: 600, size: "max" },
        ),
        fc.integer({ min: 5, max: 30 }),
        (specs, size) => {
          // An order belongs to one wallet: its first spec's.
          const owner = new Map<number, string>();
          const docs = specs.map((x, i) => {
            if (!owner.has(x.order)) owner.set(x.order, x.wallet);
            return event(
              `e${i}`,
              x.refund ? "ON_REFUND" : "ON_ORDER_COMPLETED",
              `o${x.order}`,
              owner.get(x.order) as string,
              x.buyerNamed,
            );
          });
          const groups = groupByOrder(docs, size);
          // Every event once, each order in one group, in page order within it.
          expect(
            groups
              .flat()
              .map((d) => d.id)
              .sort(),
          ).toEqual(docs.map((d) => d.id).sort());
          const orderOf = (d: DocumentSnapshot) =>
            (d.data() as { body: { id?: string; order_id?: string } }).body.id ??
            (d.data() as { body: { order_id: string } }).body.order_id;
          // An order's wallet is known from its purchase event in the page, or from the buyer a refund of it
          // names; a refund that names no buyer, alone, gives none.
          const known = new Set(
            docs
              .filter(
                (d) =>
                  (d.data() as { event_type: string; body: { customer?: unknown } }).event_type ===
                    "ON_ORDER_COMPLETED" || (d.data() as { body: { customer?: unknown } }).body.customer !== undefined,
              )
              .map(orderOf),
          );
          const walletOf = (o: string) => (known.has(o) ? (owner.get(Number(o.slice(1))) as string) : "");
          const size_ = (o: string) => docs.filter((d) => orderOf(d) === o).length;
          const groupOf = new Map<string, number>();
          groups.forEach((g, gi) => {
            for (const d of g) {
              const o = orderOf(d);
              expect(groupOf.get(o) ?? gi, `order ${o} split`).toBe(gi);
              groupOf.set(o, gi);
            }
            const ids = g.map((d) => Number(d.id.slice(1)));
            for (const o of new Set(g.map(orderOf))) {
              const mine = ids.filter((_, k) => orderOf(g[k] as DocumentSnapshot) === o);
              expect(mine, `order ${o} in page order`).toEqual([...mine].sort((x, y) => x - y));
            }
            const orders = [...new Set(g.map(orderOf))];
            const wallets = new Set(orders.map(walletOf));
            const biggest = Math.max(...orders.map(size_));
            if (wallets.size > 1 || wallets.has(""))
              expect(g.length, `a group of wallets ${[...wallets].join(",")}`).toBeLessThanOrEqual(
                Math.max(size, orders.length === 1 ? biggest : 0),
              );
            else {
              expect(g.length).toBeLessThanOrEqual(Math.max(WALLET_GROUP, biggest));
              // Within one commit: each of these one-line events writes about three documents, 450 at most.
              if (orders.length > 1) expect(3 * g.length).toBeLessThanOrEqual(450);
            }
          });
          // A known wallet's orders: one group (one wallet write) when they hold at most a commit's worth,
          // else as few as whole orders of at most a commit's worth allow.
          for (const wallet of new Set([...known].map(walletOf))) {
            const mine = [...known].filter((o) => walletOf(o) === wallet);
            const events = mine.reduce((n, o) => n + size_(o), 0);
            const inGroups = new Set(mine.map((o) => groupOf.get(o)));
            const biggest = Math.max(...mine.map(size_));
            if (events <= WALLET_GROUP) expect(inGroups.size, `${wallet}: ${events} events`).toBe(1);
            else
              expect(inGroups.size, `${wallet}: ${events} events`).toBeLessThanOrEqual(
                Math.ceil(events / (WALLET_GROUP - biggest + 1)),
              );
          }
        },
      ),
      { seed, numRuns: 300 },
    );
  });
});

describe("the busiest wallet of a page (its record's `busiestWallet`)", () => {
  const processed = (eventId: string, ...users: string[]): MoneyOutcome => ({
    eventId,
    result: "processed",
    entries: users.map((u, i) => ({ id: `${eventId}-${i}`, kind: "purchase", userId: u, points: 5 })),
  });
  it("names the wallet the most processed events moved (an event once, whatever its lines), with the writes its commits made", () => {
    const outcomes: MoneyOutcome[] = [
      processed("e1", "w2", "w2"),
      processed("e2", "w2"),
      processed("e3", "w1", "w2"),
      processed("e4", "w1"),
      { eventId: "e5", result: "skipped", reason: "ALREADY_PROCESSED" },
      { eventId: "e6", result: "error", code: "INVALID_EVENT", message: "x" },
    ];
    expect(busiestWallet(outcomes, ["w1", "w2", "w2", "w3"])).toEqual({ userId: "w2", events: 3, writes: 2 });
  });
  it("breaks a tie by wallet id, and is null when nothing was processed", () => {
    expect(busiestWallet([processed("e1", "b"), processed("e2", "a")], ["a", "b"])).toEqual({
      userId: "a",
      events: 1,
      writes: 1,
    });
    expect(busiestWallet([{ eventId: "e1", result: "skipped", reason: "ALREADY_PROCESSED" }], [])).toBeNull();
  });
});
