// One commit takes at most 500 writes (Firestore's limit, which the emulator does not enforce). A page is cut
// into groups, each one transaction (ledger/apply.ts groupByOrder); this checks what each group's decisions
// really write, not the estimate the grouping made: random pages of PayNow orders of 1–25 lines, gifts to
// other customers, refunds and chargebacks after their orders, cut with random group sizes, each group
// decided (core/money.ts) and its intents turned into writes (writeIntents) on a writer that counts them.
// Issue 18 item 6: with groups of several customers bounded by their number of events alone, a group of 50
// many-line orders wrote over a thousand documents.
import fc from "fast-check";
import { initializeApp } from "firebase-admin/app";
import { getFirestore, type DocumentSnapshot } from "firebase-admin/firestore";
import { describe, expect, it } from "vitest";
import { decideMoney } from "../../../functions/src/core/money";
import { type MoneyEntry } from "../../../functions/src/core/ledger";
import { writeIntents } from "../../../functions/src/ledger/writes";
import { COMMIT_WRITES, groupByOrder } from "../../../functions/src/ledger/groups";
import {
  chargeback,
  FlakeIds,
  minecraftCustomer,
  orderCompleted,
  orderOf,
  refund,
  type CatalogProduct,
} from "../../../scripts/paynow-payloads";

const seed = Number(process.env.COMMIT_SEED ?? 20261204);
// References only: nothing here talks to Firestore.
const db = getFirestore(initializeApp({ projectId: "commits-unit" }, "commits-unit"));

const PRODUCT: CatalogProduct = {
  id: "460093881390764032",
  versionId: "460093881390764033",
  slug: "gems",
  name: "1,000 Gems",
  price: 499,
};
const products = new Map([[PRODUCT.id, { name: PRODUCT.name, points: 1000 }]]);

const orderArb = fc.record({
  buyer: fc.nat(40),
  lines: fc.integer({ min: 1, max: 25 }),
  gifts: fc.nat(25),
  follow: fc.constantFrom("none", "none", "refund", "chargeback"),
});

describe(`a group's commit (fast-check seed ${seed}, COMMIT_SEED)`, () => {
  it("writes at most what one commit takes, whenever the group holds more than one order", () => {
    fc.assert(
      fc.property(
        fc.array(orderArb, { minLength: 1, maxLength: 120, size: "max" }),
        fc.integer({ min: 1, max: 150 }),
        fc.integer({ min: 1, max: 150 }),
        (orders, size, walletSize) => {
          const ids = new FlakeIds();
          const customers = Array.from({ length: 41 }, (_, i) =>
            minecraftCustomer(ids.next(Date.UTC(2026, 0, 1) + i), `player${i}`),
          );
          const docs: DocumentSnapshot[] = [];
          const push = (data: Record<string, unknown>) =>
            docs.push({ id: data.event_id as string, data: () => data } as unknown as DocumentSnapshot);
          let at = Date.UTC(2026, 5, 1);
          for (const o of orders) {
            const buyer = customers[o.buyer] as (typeof customers)[number];
            const lines = Array.from({ length: o.lines }, (_, k) => ({
              product: PRODUCT,
              quantity: 1 + (k % 3),
              ...(k < o.gifts ? { giftTo: customers[(o.buyer + k + 1) % 41] } : {}),
            }));
            const order = orderCompleted(ids, { atMs: (at += 1000), customer: buyer, lines });
            push({ ...order, processed: false });
            const { orderId, total } = orderOf(order);
            if (o.follow === "refund")
              push({
                ...refund(ids, {
                  atMs: (at += 1000),
                  orderId,
                  customer: buyer,
                  paymentAmount: total,
                  refundAmount: total,
                }),
                processed: false,
              });
            if (o.follow === "chargeback")
              push({
                ...chargeback(ids, { atMs: (at += 1000), orderId, customer: buyer, amount: total }),
                processed: false,
              });
          }
          const ledger = new Map<string, MoneyEntry>();
          for (const group of groupByOrder(docs, size, "id", walletSize)) {
            const ctx = {
              runId: "run-1",
              mode: "webhook_replay" as const,
              dryRun: false,
              walletField: "id" as const,
              page: "2026-06-01-1",
            };
            const { intents } = decideMoney(
              ctx,
              group.map((d) => ({ id: d.id, data: d.data() })),
              { ledger, shadow: new Map(), products },
            );
            let writes = 0;
            const count = () => void writes++;
            writeIntents({ create: count, set: count, update: count }, db, ctx, intents);
            for (const i of intents) if (i.kind === "createEntry") ledger.set(i.id, i.entry);
            const orderCount = new Set(
              group.map(
                (d) =>
                  (d.data() as { body: { id?: string; order_id?: string } }).body.order_id ??
                  (d.data() as { body: { id: string } }).body.id,
              ),
            ).size;
            if (orderCount > 1)
              expect(writes, `a group of ${orderCount} orders, ${group.length} events`).toBeLessThanOrEqual(
                COMMIT_WRITES,
              );
          }
        },
      ),
      { seed, numRuns: 200 },
    );
  });
});
