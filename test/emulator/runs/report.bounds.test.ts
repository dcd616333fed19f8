// A 100,000-event run's page and report (issue 17): a poll of the run page reads a constant number of
// documents plus its chunks, whatever the run's history of pages; the report is served through Hosting
// within its 60 s, verifies wallets by aggregation on a seeded sample past 200 wallets, and hands its
// per-event list out in slices the CLI streams into a file.
//
// The run's records are written here as the chunk worker writes them (the run, its chunks with their
// counters and throughput buckets, a page record per 250 events, error records, the entries and wallets
// of its processed events) instead of being produced by running it: running 100,000 events on the
// emulator takes about ten minutes (npm run bench), writing their records a few seconds. What is checked
// is what reading them costs, and what the report says of them; the money paths are checked elsewhere.
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Timestamp } from "firebase-admin/firestore";
import { beforeAll, describe, expect, it } from "vitest";
import { newChunk } from "../../../functions/src/core/chunk";
import { addThroughput, type ThroughputBuckets } from "../../../functions/src/core/estimate";
import type { Run } from "../../../functions/src/core/run";
import { chunkStore } from "../../../functions/src/store/chunks";
import { encodeOutcomes, type PageOutcome } from "../../../functions/src/store/pages";
import { runStore } from "../../../functions/src/store/runs";
import { cli } from "../../support/cli";
import { FlakeIds } from "../../../scripts/paynow-payloads";
import { api, db, uniqueYear } from "../../support/emulator";
import { run as runFixture } from "../../support/fixtures";

const EVENTS = 100_000;
const DAYS = 20;
const SHARDS = 2;
const PAGE = 250;
const CHUNKS = DAYS * SHARDS;
const PER_CHUNK = EVENTS / CHUNKS;
const PAGES = EVENTS / PAGE;
/** Every 100th event needed its reversal; every 1,000th + 7 failed; the rest were already reversed. */
const isProcessed = (k: number) => k % 100 === 0;
const isError = (k: number) => k % 1000 === 7;
const USERS = 300;
const POINTS = 40;

interface Written {
  id: string;
  chunkIds: string[];
  eventIds: string[];
  entries: Map<string, { userId: string; eventId: string }>;
  balances: Map<string, number>;
}

/** Writes the records of a 100,000-event reversal backfill that is still running (its last chunk is). */
async function writeRun(): Promise<Written> {
  const firestore = db();
  const year = await uniqueYear();
  const id = `reversal_backfill_${Date.now()}`;
  const flakes = new FlakeIds();
  const now = Date.now();
  const startedAt = now - 20 * 60_000;
  const runs = runStore(firestore);
  const chunks = chunkStore(firestore);
  const run: Run = runFixture({
    id,
    type: "reversal_backfill",
    startDate: `${year}-01-01`,
    endDate: `${year}-01-${String(DAYS).padStart(2, "0")}`,
    maxEvents: EVENTS,
    phase: "reversals",
    phases: ["reversals"],
    chunksTotal: CHUNKS,
    plannedEvents: EVENTS,
    selectedEvents: EVENTS,
    unmarkedEvents: null,
    maxErrorRate: 1,
    estimatedSeconds: 1200,
    requestedBy: "operator@backfill.local",
    requestedBySub: "operator",
    createdAt: startedAt,
    startedAt,
  });
  const written: Written = { id, chunkIds: [], eventIds: [], entries: new Map(), balances: new Map() };
  const writer = firestore.bulkWriter();
  const pending: Array<Promise<unknown>> = [];
  let k = 0;
  for (let day = 1; day <= DAYS; day++) {
    const dayId = `${year}-01-${String(day).padStart(2, "0")}`;
    const dayStart = Date.UTC(year, 0, day);
    for (let shard = 0; shard < SHARDS; shard++) {
      const chunkId = `${dayId}~${String(shard).padStart(4, "0")}`;
      const bounds = {
        id: chunkId,
        startMs: dayStart + shard * 43_200_000,
        endMs: dayStart + (shard + 1) * 43_200_000,
      };
      const last = day === DAYS && shard === SHARDS - 1;
      const chunk = {
        ...newChunk(bounds, { reversals: PER_CHUNK }, run, now),
        status: last ? ("running" as const) : ("done" as const),
        pages: PAGES / CHUNKS,
        startedAt,
      };
      let throughput: ThroughputBuckets | null = null;
      const counters = { total: 0, processed: 0, skipped: 0, errors: 0 };
      for (let p = 0; p < PAGES / CHUNKS; p++) {
        const outcomes: PageOutcome[] = [];
        const at = startedAt + Math.floor((k / EVENTS) * 19 * 60_000);
        for (let i = 0; i < PAGE; i++, k++) {
          const eventId = flakes.next(bounds.startMs + k);
          written.eventIds.push(eventId);
          if (isProcessed(k)) {
            const orderId = flakes.next(bounds.startMs + k - 3_600_000);
            const entryId = `reversal_${orderId}_${flakes.next(bounds.startMs + k - 3_600_000)}`;
            const userId = `7${String((k / 100) % USERS).padStart(17, "0")}`;
            written.entries.set(entryId, { userId, eventId });
            written.balances.set(userId, (written.balances.get(userId) ?? 0) - POINTS);
            outcomes.push({ e: eventId, r: "p", x: entryId });
            pending.push(
              writer.create(firestore.collection("ledgerEntries").doc(entryId), {
                kind: "reversal",
                orderId,
                lineId: entryId.split("_")[2],
                lineIndex: 0,
                userId,
                productId: "gems",
                points: -POINTS,
                lineTotalAmount: 499,
                orderTotalAmount: 499,
                sourceEventId: eventId,
                reason: "refund",
                migrationId: id,
                createdAt: Timestamp.fromMillis(at),
              }),
            );
            counters.processed++;
          } else if (isError(k)) {
            outcomes.push({ e: eventId, r: "e", x: "PURCHASE_NOT_FOUND" });
            pending.push(
              writer.create(firestore.collection("dataMigrations").doc(id).collection("errors").doc(eventId), {
                eventId,
                code: "PURCHASE_NOT_FOUND",
                message: `No purchase entries for order ${eventId}: replay its ON_ORDER_COMPLETED first`,
                chunkId,
                phase: "reversals",
                status: "open",
                resolvedAs: null,
                attempts: 1,
                at: Timestamp.fromMillis(at),
              }),
            );
            counters.errors++;
          } else {
            outcomes.push({ e: eventId, r: "s", x: "ALREADY_REVERSED" });
            counters.skipped++;
          }
          counters.total++;
        }
        throughput = addThroughput(throughput, at, PAGE);
        pending.push(
          writer.create(
            firestore
              .collection("dataMigrations")
              .doc(id)
              .collection("pages")
              .doc(`${chunkId}-${p + 1}`),
            {
              chunkId,
              phase: "reversals",
              step: "scan",
              at: Timestamp.fromMillis(at),
              total: PAGE,
              processed: outcomes.filter((o) => o.r === "p").length,
              skipped: outcomes.filter((o) => o.r === "s").length,
              errors: outcomes.filter((o) => o.r === "e").length,
              writes: 0,
              reads: 0,
              bits: outcomes.map((o) => o.r).join(""),
              outcomes: encodeOutcomes(outcomes),
            },
          ),
        );
      }
      written.chunkIds.push(chunkId);
      const batch = firestore.batch();
      chunks.create(batch, id, { ...chunk, ...counters, throughput, finishedAt: last ? null : now });
      await batch.commit();
    }
  }
  for (const [userId, balance] of written.balances)
    pending.push(writer.set(firestore.collection("wallets").doc(userId), { balance }));
  const batch = firestore.batch();
  runs.create(batch, run);
  await batch.commit();
  await writer.close();
  await Promise.all(pending);
  return written;
}

/** The wallets the report says it checks: the 200 whose sha256(runId/userId) is smallest. */
function statedSample(runId: string, users: Iterable<string>): string[] {
  const key = (u: string) => createHash("sha256").update(`${runId}/${u}`).digest("hex");
  return [...users].sort((a, b) => (key(a) < key(b) ? -1 : 1)).slice(0, 200);
}

describe("a 100,000-event run's page and report", () => {
  let w: Written;
  beforeAll(async () => {
    w = await writeRun();
  }, 240_000);

  it("a poll of the run page reads the run, its chunks and a constant number of other documents, not its 400 pages", async () => {
    const page = await api("GET", `/api/admin/dataMigrations/${w.id}`);
    expect(page.status, page.text).toBe(200);
    const detail = page.body;
    // Live totals from the chunks.
    expect(detail.migration).toMatchObject({
      status: "running",
      total: EVENTS,
      processed: EVENTS / 100,
      errors: EVENTS / 1000,
      chunksDone: CHUNKS - 1,
    });
    expect(detail.chunks).toHaveLength(CHUNKS);
    expect(detail.errorCount).toBe(EVENTS / 1000);
    expect(detail.errorSample).toHaveLength(50);
    // The chart draws every examined event, from the chunks' buckets.
    expect(detail.throughput.points.reduce((n: number, p: { events: number }) => n + p.events, 0)).toBe(EVENTS);
    expect(detail.throughput.bucketSeconds).toBe(60);
    // The run, each chunk, the error sample, the open-error count, and nothing else.
    expect(detail.docsRead).toBe(1 + CHUNKS + 50 + 1);
  });

  it("once the run has ended, the first poll computes what it moved once, and every later one reads the same few documents", async () => {
    const chunks = chunkStore(db());
    const last = (await chunks.get(w.id, w.chunkIds[CHUNKS - 1] as string))!;
    expect(await chunks.write(w.id, last.data.id, last.version, { status: "done", finishedAt: Date.now() })).toBe(true);
    const run = (await runStore(db()).get(w.id))!;
    const ended = {
      status: "completed" as const,
      finishedAt: Date.now(),
      total: EVENTS,
      processed: EVENTS / 100,
      skipped: EVENTS - EVENTS / 100 - EVENTS / 1000,
      errors: EVENTS / 1000,
      chunksDone: CHUNKS,
    };
    expect(await runStore(db()).write(w.id, run.version, ended)).toBe(true);
    const first = await api("GET", `/api/admin/dataMigrations/${w.id}`);
    expect(first.status, first.text.slice(0, 300)).toBe(200);
    expect(first.body.money).toMatchObject({
      entries: EVENTS / 100,
      reversed: (EVENTS / 100) * POINTS,
      wallets: USERS,
    });
    // The kept money document, then the entries the run wrote, once.
    expect(first.body.docsRead).toBe(1 + CHUNKS + 50 + 1 + 1 + EVENTS / 100);
    for (let poll = 0; poll < 3; poll++) {
      const again = await api("GET", `/api/admin/dataMigrations/${w.id}`);
      expect(again.body.money).toEqual(first.body.money);
      expect(again.body.docsRead).toBe(1 + CHUNKS + 50 + 1 + 1);
    }
  });

  it("serves the report through Hosting with totals, a sampled verification and the first slice of events", async () => {
    // Three faults the verification is there to find: a wallet in its sample and one outside it disagree
    // with their ledgers, and an entry carrying the run's id is claimed by no event.
    const users = [...w.balances.keys()];
    const sample = statedSample(w.id, users);
    const inSample = sample[17] as string;
    const outside = users.find((u) => !sample.includes(u)) as string;
    await db()
      .collection("wallets")
      .doc(inSample)
      .update({ balance: (w.balances.get(inSample) as number) + 5 });
    await db()
      .collection("wallets")
      .doc(outside)
      .update({ balance: (w.balances.get(outside) as number) + 5 });
    const stray = `reversal_${new FlakeIds().next(Date.now())}_1`;
    await db().collection("ledgerEntries").doc(stray).set({
      kind: "reversal",
      userId: inSample,
      points: 0,
      sourceEventId: "none",
      migrationId: w.id,
      orderId: "x",
      lineId: "1",
    });

    const report = await api("GET", `/api/admin/dataMigrations/${w.id}/report`);
    expect(report.status, report.text.slice(0, 500)).toBe(200);
    const body = report.body;
    expect(body.totals).toEqual({
      total: EVENTS,
      processed: EVENTS / 100,
      skipped: EVENTS - EVENTS / 100 - EVENTS / 1000,
      errors: EVENTS / 1000,
    });
    expect(body.reconciled).toBe(true);
    const v = body.verification;
    expect(v).toMatchObject({
      ok: false,
      processedEvents: EVENTS / 100,
      entriesClaimed: EVENTS / 100,
      entriesWritten: EVENTS / 100 + 1,
      entriesFound: EVENTS / 100,
    });
    expect(v.walletsTouched).toBe(USERS);
    expect(v.walletsChecked).toBe(200);
    expect(v.walletSample).toMatchObject({ size: 200, seed: w.id });
    expect(v.wallets).toMatch(/seeded random sample of 200 of the 300 wallets/);
    // The sampled wallet is caught; the one outside the sample is not (the report says it sampled).
    expect(v.walletMismatches).toEqual([
      { userId: inSample, balance: (w.balances.get(inSample) as number) + 5, ledgerSum: w.balances.get(inSample) },
    ]);
    expect(v.entryProblems).toEqual([
      {
        eventId: "none",
        entryId: stray,
        problem: "entry carries the run's id but no event the run examined claims it",
      },
    ]);

    // The first 1,000 events, in chunk order then event id, and where the list goes on.
    expect(body.events).toHaveLength(1000);
    expect(body.events[0].chunkId).toBe(w.chunkIds[0]);
    expect(body.nextPageToken).toEqual(expect.any(String));
    // Its pages, its chunks, the run, the entries the run wrote, two reads per sampled wallet and the
    // messages of the errors it lists: bounded by the run's work, not by the store's history.
    expect(body.docsRead).toBeLessThanOrEqual(1 + PAGES + CHUNKS + (EVENTS / 100 + 1) + 2 * 200 + 10);
  });

  it("hands out the per-event list in slices that read only the chunks they list, and refuses a forged token", async () => {
    const first = await api("GET", `/api/admin/dataMigrations/${w.id}/report?limit=5000`);
    expect(first.status).toBe(200);
    const seen: string[] = first.body.events.map((e: { eventId: string }) => e.eventId);
    let token: string | null = first.body.nextPageToken;
    let slices = 0;
    while (token !== null) {
      const slice = await api(
        "GET",
        `/api/admin/dataMigrations/${w.id}/report/events?limit=5000&pageToken=${encodeURIComponent(token)}`,
      );
      expect(slice.status, slice.text.slice(0, 300)).toBe(200);
      // The run, its chunks, and the pages of the (at most three) chunks 5,000 events bounds, plus error messages.
      expect(slice.body.docsRead).toBeLessThanOrEqual(1 + CHUNKS + 3 * (PAGES / CHUNKS) + 10);
      seen.push(...slice.body.events.map((e: { eventId: string }) => e.eventId));
      token = slice.body.nextPageToken;
      slices++;
    }
    expect(slices).toBe(EVENTS / 5000 - 1);
    expect(seen).toHaveLength(EVENTS);
    expect(new Set(seen).size).toBe(EVENTS);
    expect(new Set(seen)).toEqual(new Set(w.eventIds));

    const forged = await api("GET", `/api/admin/dataMigrations/${w.id}/report/events?pageToken=not-a-token`);
    expect(forged.status).toBe(400);
    expect(forged.body.error).toMatchObject({ code: "invalid_page_token" });
    const noToken = await api("GET", `/api/admin/dataMigrations/${w.id}/report/events`);
    expect(noToken.status).toBe(400);
    expect(noToken.text).toMatch(/pageToken is required/);
    const tooMany = await api("GET", `/api/admin/dataMigrations/${w.id}/report?limit=10001`);
    expect(tooMany.status).toBe(400);
    expect(tooMany.text).toMatch(/limit must be an integer from 1 to 10000/);
  });

  it("backfill report --out streams every event into one JSON file (and exits 3: the faults above are still there)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bounds-"));
    const file = join(dir, "report.json");
    const res = await cli("report", w.id, "--out", file);
    expect(res.err).toEqual([]);
    expect(res.out[0]).toMatch(
      new RegExp(
        `^Wrote ${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: total 100000 = processed 1000 \\+ skipped 98900 \\+ errors 100; reconciled with the run: yes; verification: PROBLEMS FOUND`,
      ),
    );
    expect(res.code).toBe(3);
    const json = JSON.parse(readFileSync(file, "utf8")) as {
      events: Array<{ eventId: string; outcome: string; message?: string }>;
      totals: { total: number };
      nextPageToken?: unknown;
    };
    expect(json.totals.total).toBe(EVENTS);
    expect(json.nextPageToken).toBeUndefined();
    expect(json.events).toHaveLength(EVENTS);
    expect(new Set(json.events.map((e) => e.eventId))).toEqual(new Set(w.eventIds));
    expect(
      json.events
        .filter((e) => e.outcome === "error")
        .every((e) => /replay its ON_ORDER_COMPLETED first/.test(e.message ?? "")),
    ).toBe(true);
  });
});
