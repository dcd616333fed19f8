// What a dry run writes, exactly (issue 18 item 16): every document of the store is read before and after a
// dry run and compared. The README, the CLI and the console say the same: no ledger entry, no wallet, no
// processed mark; its own run records (with its shadow ledger) and, on each event it examined, the three
// dryRun marks, which a trigger or export on webhookEvents would see.
import { describe, expect, it } from "vitest";
import { db, postRun, waitForRun } from "../support/emulator";
import { Store } from "../support/scenario";

async function snapshot(collection: string, ids: string[]): Promise<Map<string, Record<string, unknown> | null>> {
  const snaps = ids.length > 0 ? await db().getAll(...ids.map((id) => db().collection(collection).doc(id))) : [];
  return new Map(snaps.map((s) => [s.id, s.exists ? (s.data() as Record<string, unknown>) : null]));
}

describe("a dry run", () => {
  it("writes its own records and three marks on each event it examined, and nothing else", async () => {
    const s = await Store.create("drywrites");
    const gems = s.product("gems", 100);
    const a = s.purchase({ user: "u1", product: gems, day: 1 });
    const live = s.purchase({ user: "u2", product: gems, day: 1, live: true });
    const refunded = s.reversal(a.orderId, { user: "u1", product: gems, day: 2 });
    await s.write();
    const eventIds = [a.eventId, live.eventId, refunded];
    const users = [s.user("u1"), s.user("u2")];
    const before = {
      events: await snapshot("webhookEvents", eventIds),
      wallets: await snapshot("wallets", users),
      ledger: await s.ledgerPoints(),
    };
    const id = await postRun({ type: "webhook_replay", ...s.range(1, 2), dryRun: true });
    expect(await waitForRun(id)).toMatchObject({ status: "completed", total: 2, processed: 2 });

    expect(await s.ledgerPoints()).toEqual(before.ledger);
    expect(await snapshot("wallets", users)).toEqual(before.wallets);
    const after = await snapshot("webhookEvents", eventIds);
    for (const eventId of eventIds) {
      const was = before.events.get(eventId) ?? {};
      const now = after.get(eventId) ?? {};
      const changed = Object.keys({ ...was, ...now })
        .filter((k) => JSON.stringify(was[k]) !== JSON.stringify(now[k]))
        .sort();
      // The live-processed purchase is not examined; the other two get exactly the marks.
      expect(changed, eventId).toEqual(
        eventId === live.eventId ? [] : ["countedIn", "dryRunAt", "dryRunMigrationId", "dryRunProcessed"],
      );
      if (eventId !== live.eventId)
        expect(now).toMatchObject({
          dryRunProcessed: true,
          dryRunMigrationId: id,
          processed: false,
          countedIn: { [id]: expect.stringMatching(/-\d+$/) },
        });
    }
    // Its would-be entries live under the run itself.
    expect((await db().collection("dataMigrations").doc(id).collection("shadowLedger").get()).size).toBe(2);
  });
});
