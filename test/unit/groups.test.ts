// How a page's events are cut into transactions (ledger/apply.ts groupByOrder): whole orders, one order's
// events in their page order, and a customer's orders together so their wallet is written once per group.
import fc from "fast-check";
import type { DocumentSnapshot } from "firebase-admin/firestore";
import { describe, expect, it } from "vitest";
import { groupByOrder } from "../../functions/src/ledger/apply";

const seed = Number(process.env.GROUP_SEED ?? 20261202);

/** A stand-in for a read event: what groupByOrder looks at is its id and its data. */
function event(id: string, type: string, orderId: string, wallet: string): DocumentSnapshot {
  const body =
    type === "ON_ORDER_COMPLETED"
      ? { id: orderId, customer: { id: wallet }, total_amount: 100, lines: [{ id: `${orderId}l`, product_id: "p1", quantity: 1, total_amount: 100 }] }
      : { order_id: orderId, store_refund_amount: 100 };
  const data = { event_type: type, event_id: id, body };
  return { id, data: () => data } as unknown as DocumentSnapshot;
}

describe(`cutting a page into groups (fast-check seed ${seed}, GROUP_SEED)`, () => {
  it("keeps orders whole and in page order, never exceeds the size but for one big order, and writes a heavy wallet once per group", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ order: fc.nat(40), wallet: fc.constantFrom("heavy", "heavy", "heavy", "a", "b", "c", "d", "e", "f", "g"), refund: fc.boolean() }), { minLength: 100, maxLength: 300 }),
        fc.integer({ min: 5, max: 30 }),
        (specs, size) => {
          // An order belongs to one wallet: its first spec's.
          const owner = new Map<number, string>();
          const docs = specs.map((x, i) => {
            if (!owner.has(x.order)) owner.set(x.order, x.wallet);
            return event(`e${i}`, x.refund ? "ON_REFUND" : "ON_ORDER_COMPLETED", `o${x.order}`, owner.get(x.order) as string);
          });
          const groups = groupByOrder(docs, size);
          // Every event once, each order in one group, in page order within it.
          expect(groups.flat().map((d) => d.id).sort()).toEqual(docs.map((d) => d.id).sort());
          const orderOf = (d: DocumentSnapshot) => ((d.data() as { body: { id?: string; order_id?: string } }).body.id ?? (d.data() as { body: { order_id: string } }).body.order_id);
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
            const orders = new Set(g.map(orderOf));
            if (orders.size > 1) expect(g.length).toBeLessThanOrEqual(size);
          });
          // A wallet's purchase orders fill as few groups as whole orders allow: at most one more than
          // its purchase events need (the groups before and after it may share its first and last).
          const heavyOrders = new Set([...owner].filter(([o, w]) => w === "heavy" && docs.some((d) => orderOf(d) === `o${o}` && (d.data() as { event_type: string }).event_type === "ON_ORDER_COMPLETED")).map(([o]) => `o${o}`));
          const heavy = docs.filter((d) => heavyOrders.has(orderOf(d)));
          const heavyGroups = new Set(heavy.map((d) => groupOf.get(orderOf(d))));
          const biggest = Math.max(1, ...[...heavyOrders].map((o) => docs.filter((d) => orderOf(d) === o).length));
          expect(heavyGroups.size, `${heavy.length} events of the heavy wallet's orders`).toBeLessThanOrEqual(Math.ceil(heavy.length / Math.max(1, size - biggest + 1)) + 2);
        },
      ),
      { seed, numRuns: 300 },
    );
  });
});
