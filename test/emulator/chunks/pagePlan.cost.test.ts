// What a replay reads follows what it repairs, not the history of its range (issue 17): with every event
// carrying `processed`, its scans read by index only the events it may select. Counted from the page
// records' `reads` (every document a page read) and checked against the README's rule, not against code.
import { FieldValue } from "firebase-admin/firestore";
import { describe, expect, it } from "vitest";
import { deliverAll, startInProcess } from "../../support/deliver";
import { db, RecordingQueue, testDeps } from "../../support/emulator";
import { Store } from "../../support/scenario";

const HISTORY = 240;
const OPEN = 6;

/** A store with HISTORY processed orders and OPEN unprocessed ones over 3 days, a refund among each. */
async function store(name: string): Promise<Store> {
  const s = await Store.create(name);
  const gems = s.product("gems", 5);
  for (let k = 0; k < HISTORY; k++) {
    const { orderId } = s.purchase({
      user: `h${k % 20}`,
      product: gems,
      day: 1 + (k % 3),
      minute: k,
      markedOnly: true,
    });
    if (k % 40 === 0) s.reversal(orderId, { day: 3, minute: 1000 + k, markedOnly: true });
  }
  for (let k = 0; k < OPEN; k++) s.purchase({ user: `o${k}`, product: gems, day: 1 + (k % 3), minute: 500 + k });
  await s.write();
  return s;
}

async function replayReads(s: Store): Promise<{ reads: number; pages: number; total: number; unmarked: unknown }> {
  const queue = new RecordingQueue();
  const { deps } = testDeps({ queue });
  const id = await startInProcess(deps, { type: "webhook_replay", ...s.range(1, 3), dryRun: false });
  const run = await deliverAll(deps, queue, id);
  expect(run.status).toBe("completed");
  const pages = await db().collection("dataMigrations").doc(id).collection("pages").get();
  const reads = pages.docs.reduce((n, p) => n + (p.get("reads") as number), 0);
  return { reads, pages: pages.size, total: run.total, unmarked: run.unmarkedEvents };
}

describe("what a replay reads", () => {
  it(`reads about 3 documents per open event, not the ${HISTORY} processed ones around them`, async () => {
    const s = await store("costsparse");
    const { reads, pages, total, unmarked } = await replayReads(s);
    expect(unmarked).toBe(0);
    expect(total).toBe(OPEN);
    // Per open purchase: its scan read, its transaction's re-read and its line's entry; per page, the
    // run, chunk and kill switch before it and the chunk its commit re-reads, and a query's minimum of one.
    expect(reads, `${reads} reads over ${pages} pages`).toBeLessThanOrEqual(3 * OPEN + 5 * pages);
    await s.expectWalletsMatchLedger();
  });

  it("reads every money event of the range when some have no `processed` field, and says so", async () => {
    const s = await store("costunmarked");
    // Absent means false: one open event stored without the field.
    const open = s.events.find((e) => !e.markedOnly && e.data.event_type === "ON_ORDER_COMPLETED");
    await db()
      .collection("webhookEvents")
      .doc(open?.id as string)
      .update({ processed: FieldValue.delete() });
    const { reads, total, unmarked } = await replayReads(s);
    expect(unmarked).toBe(1);
    expect(total).toBe(OPEN);
    expect(reads).toBeGreaterThanOrEqual(HISTORY + OPEN);
    await s.expectWalletsMatchLedger();
  });
});
