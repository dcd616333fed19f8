// `npm run bench [-- --events N]` (or `npm run bench:memory`, which measures what handlers hold): throughput of a real webhook_replay through the whole local stack
// (API → Cloud Tasks emulator → chunk functions → Firestore emulator), measured side by side, on the same
// emulator, with two references: the raw write ceiling (BulkWriter creates, throttling off, as many
// documents as the pipeline wrote) and the naive script a user would write instead (one transaction per
// event, one event after another). Prints a table, then one JSON line.
import { readdirSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { getApps, initializeApp } from "firebase-admin/app";
import { AggregateField, FieldValue, getFirestore, Timestamp, type Firestore } from "firebase-admin/firestore";
import { BackfillClient } from "../functions/src/http/client";
import { checkAnswer } from "../functions/src/http/validate";
import { mintLocalToken } from "./localToken";
import {
  chargeback,
  FlakeIds,
  minecraftCustomer,
  orderCompleted,
  orderOf,
  refund,
  type CatalogProduct,
  type Customer,
} from "./paynow-payloads";
import { random } from "./seed";
import { PROJECT_ID } from "./setup";

const { values } = parseArgs({
  options: {
    events: { type: "string", default: "20000" },
    users: { type: "string", default: "2000" },
    days: { type: "string", default: "30" },
    naive: { type: "string", default: "1000" },
    // The sparse case: `--open N --history M` puts N open purchases among M processed events.
    open: { type: "string" },
    history: { type: "string", default: "100000" },
    // The heavy-user case: `--heavy N` gives one wallet N of the --events events.
    heavy: { type: "string" },
    // Set by `npm run bench:memory`: every handler process collects garbage before it reports its heap.
    memory: { type: "boolean", default: false },
  },
});
const N = Number(values.events);
const USERS = Number(values.users);
const DAYS = Number(values.days);
const NAIVE = Number(values.naive);
const OPEN = values.open === undefined ? null : Number(values.open);
const HISTORY = Number(values.history);
const HEAVY = values.heavy === undefined ? null : Number(values.heavy);
if (
  ![N, USERS, DAYS, NAIVE, OPEN ?? 1, HISTORY, HEAVY ?? 1].every((n) => Number.isInteger(n) && n > 0) ||
  N > 100_000 ||
  DAYS > 366 ||
  (OPEN ?? 0) > 100_000 ||
  HISTORY > 200_000 ||
  (HEAVY ?? 0) > N
) {
  console.error(
    "usage: npm run bench[:memory] [-- --events N (≤100000)] [--users N] [--days N (≤366)] [--naive N] | [-- --open N --history M (≤200000) --days N] | [-- --heavy N --events M]",
  );
  process.exit(2);
}

const API = process.env.BACKFILL_API_URL;
const LOG = process.env.BACKFILL_EMULATOR_LOG;
if (!process.env.FIRESTORE_EMULATOR_HOST || !API || !LOG) {
  console.error("Run the benchmark through the stack: npm run bench");
  process.exit(2);
}
if (getApps().length === 0) initializeApp({ projectId: PROJECT_ID });
const db = getFirestore();

const YEAR = 2400;
const NAIVE_YEAR = 2401;
const WARMUP_YEAR = 2399;
/** A year with no events at all, for the empty 366-day run. */
const EMPTY_YEAR = 2402;
const PRODUCTS: Array<CatalogProduct & { points: number }> = Array.from({ length: 8 }, (_, i) => ({
  id: `59821510000000${String(i).padStart(4, "0")}`,
  versionId: `59821520000000${String(i).padStart(4, "0")}`,
  slug: `bench-${i}`,
  name: `Bench product ${i}`,
  price: 199 + 100 * i,
  points: 50 * (i + 1),
}));

interface SeedEvent {
  id: string;
  data: Record<string, unknown>;
}

/**
 * N PayNow webhooks (every field PayNow's schema requires, ~5 KB each) over DAYS days and USERS customers:
 * orders of one line (a fifth of them two), ~8% refunded and ~4% charged back later.
 */
function generate(
  count: number,
  year: number,
  days: number,
  prefix: string,
  withReversals: boolean,
  ids = new FlakeIds(),
  heavyShare = 0,
): SeedEvent[] {
  const rand = random(count * 7919 + year);
  const customers = new Map<number, Customer>();
  const customer = (n: number): Customer => {
    const known = customers.get(n);
    if (known) return known;
    const made = minecraftCustomer(ids.next(Date.UTC(2024, 0, 1) + n * 1000), `${prefix}player${n}`);
    customers.set(n, made);
    return made;
  };
  const product = () => PRODUCTS[Math.floor(rand() * PRODUCTS.length)] as (typeof PRODUCTS)[number];
  const events: SeedEvent[] = [];
  const stored = (e: { event_id: string }, at: number) =>
    events.push({ id: e.event_id, data: { ...e, createdAt: Timestamp.fromMillis(at), processed: false } });
  while (events.length < count) {
    const day = Math.floor(rand() * days);
    const at = Date.UTC(year, 0, 1) + day * 86_400_000 + Math.floor(rand() * 86_000_000);
    // With a heavy share, customer 0 places that share of the orders.
    const buyer =
      heavyShare > 0 && rand() < heavyShare
        ? customer(0)
        : customer(heavyShare > 0 ? 1 + Math.floor(rand() * (USERS - 1)) : Math.floor(rand() * USERS));
    const lines = Array.from({ length: rand() < 0.2 ? 2 : 1 }, () => ({ product: product(), quantity: 1 }));
    const order = orderCompleted(ids, { atMs: at, customer: buyer, lines });
    stored(order, at);
    const roll = rand();
    if (withReversals && roll < 0.12 && events.length < count) {
      const { orderId, total } = orderOf(order);
      // Up to three days later, within the range (clamping to its last millisecond put thousands of events
      // on one millisecond on a one-day range, more than a millisecond's ids).
      const later = at + Math.floor(rand() * Math.min(3 * 86_400_000, Date.UTC(year, 0, 1) + days * 86_400_000 - at));
      stored(
        roll < 0.08
          ? refund(ids, { atMs: later, orderId, customer: buyer, paymentAmount: total, refundAmount: total })
          : chargeback(ids, { atMs: later, orderId, customer: buyer, amount: total }),
        later,
      );
    }
  }
  return events;
}

async function bulkWrite(
  firestore: Firestore,
  docs: Array<{ path: string; data: Record<string, unknown> }>,
): Promise<void> {
  const writer = firestore.bulkWriter({ throttling: false });
  const writes = docs.map((d) => writer.create(firestore.doc(d.path), d.data));
  await writer.close();
  await Promise.all(writes);
}

const seconds = (ms: number) => ms / 1000;

/** The processes of the local stack, by what they do, for CPU accounting. */
type ProcessGroup = "firestore" | "functions" | "firebase-tools";
const CLOCK_TICKS = 100;

/** CPU seconds each stack process has used so far (from /proc; empty where there is none). */
function cpuByProcess(): Map<number, { group: ProcessGroup; seconds: number }> {
  const out = new Map<number, { group: ProcessGroup; seconds: number }>();
  let pids: string[] = [];
  try {
    pids = readdirSync("/proc").filter((p) => /^\d+$/.test(p));
  } catch {
    return out;
  }
  for (const pid of pids) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
      const group: ProcessGroup | null =
        cmd.includes("firestore-launcher") || cmd.includes("cloud-firestore-emulator")
          ? "firestore"
          : cmd.includes("functionsEmulatorRuntime")
            ? "functions"
            : cmd.includes("firebase") && cmd.includes("emulators:exec")
              ? "firebase-tools"
              : null;
      if (!group) continue;
      // Fields after the command name: utime and stime are the 12th and 13th (in clock ticks).
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(Number(pid), { group, seconds: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS });
    } catch {
      // the process ended meanwhile
    }
  }
  return out;
}

/** CPU seconds per group used between two samples (processes started in between count from zero). */
function cpuBetween(
  before: ReturnType<typeof cpuByProcess>,
  after: ReturnType<typeof cpuByProcess>,
): Record<ProcessGroup, number> {
  const used: Record<ProcessGroup, number> = { firestore: 0, functions: 0, "firebase-tools": 0 };
  for (const [pid, now] of after) used[now.group] += now.seconds - (before.get(pid)?.seconds ?? 0);
  return used;
}
const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function runPipeline(
  year: number,
  days: number,
  maxEvents: number,
): Promise<{
  events: number;
  seconds: number;
  writes: number;
  reads: number;
  planSeconds: number;
  peakRssMb: number;
  peakHeapMb: number;
  peakHeapAfterGcMb: number | null;
  id: string;
  chunks: number;
  shards: number;
  peakChunksWorking: number;
  estimatedSeconds: number;
  cpu: Record<ProcessGroup, number>;
}> {
  const token = await mintLocalToken();
  const client = new BackfillClient({
    baseUrl: API as string,
    authorization: () => `Bearer ${token}`,
    validate: checkAnswer,
  });
  const cpuBefore = cpuByProcess();
  const started = Date.now();
  const { migrationId, chunks, estimatedSeconds } = await client.start({
    type: "webhook_replay",
    startDate: `${year}-01-01`,
    endDate: new Date(Date.UTC(year, 0, days)).toISOString().slice(0, 10),
    dryRun: false,
    maxEvents,
    maxErrorRate: 1,
  });
  // A listener, not a polling loop: the benchmark should not compete with the pipeline for the CPU.
  await new Promise<void>((resolve, reject) => {
    let last = "";
    const stop = db
      .collection("dataMigrations")
      .doc(migrationId)
      .onSnapshot((snap) => {
        const run = snap.data() as { status: string; chunksDone: number } | undefined;
        if (!run) return;
        const line = `  ${run.status} ${run.chunksDone}/${chunks} chunks`;
        if (line !== last) process.stderr.write(`${line}\n`);
        last = line;
        if (run.status === "completed") {
          stop();
          resolve();
        } else if (run.status === "failed" || run.status === "cancelled") {
          stop();
          reject(new Error(`the benchmark run ended ${run.status}`));
        }
      }, reject);
  });
  const elapsed = Date.now() - started;
  const cpu = cpuBetween(cpuBefore, cpuByProcess());
  const run = (await db.collection("dataMigrations").doc(migrationId).get()).data() as { total: number };
  const sums = await db
    .collection("dataMigrations")
    .doc(migrationId)
    .collection("pages")
    .aggregate({ writes: AggregateField.sum("writes"), reads: AggregateField.sum("reads") })
    .get();
  // The run's id carries the moment the API created it, after planning.
  const planSeconds = Math.max(0, (Number(migrationId.split("_").pop()) - started) / 1000);
  let peakRssMb = 0;
  let peakHeapMb = 0;
  let peakLiveHeapMb = 0;
  for (const line of readFileSync(LOG as string, "utf8").split("\n")) {
    if (!line.includes(migrationId) || !line.includes('"rss_mb"')) continue;
    const rss = /"rss_mb":(\d+)/.exec(line)?.[1];
    const heap = /"heap_mb":(\d+)/.exec(line)?.[1];
    const live = /"live_heap_mb":(\d+)/.exec(line)?.[1];
    if (live) peakLiveHeapMb = Math.max(peakLiveHeapMb, Number(live));
    if (rss) peakRssMb = Math.max(peakRssMb, Number(rss));
    if (heap) peakHeapMb = Math.max(peakHeapMb, Number(heap));
  }
  const { shards, peakChunksWorking } = await chunkConcurrency(migrationId);
  return {
    events: run.total,
    seconds: seconds(elapsed),
    writes: sums.data().writes,
    reads: sums.data().reads,
    planSeconds,
    peakRssMb,
    peakHeapMb,
    peakHeapAfterGcMb: peakLiveHeapMb > 0 ? peakLiveHeapMb : null,
    id: migrationId,
    chunks,
    shards,
    peakChunksWorking,
    estimatedSeconds,
    cpu,
  };
}

/**
 * How many chunks worked at the same time, from their records: a chunk works in its purchases phase from
 * its first claim to its last purchases page. Shards of one hot day should work side by side, as many as
 * the queue runs at once (TASK_MAX_CONCURRENT).
 */
async function chunkConcurrency(migrationId: string): Promise<{ shards: number; peakChunksWorking: number }> {
  const run = db.collection("dataMigrations").doc(migrationId);
  const [chunks, pages] = await Promise.all([
    run.collection("chunks").select("startedAt").get(),
    run.collection("pages").where("phase", "==", "purchases").select("chunkId", "at").get(),
  ]);
  const lastPage = new Map<string, number>();
  for (const p of pages.docs) {
    const at = (p.get("at") as Timestamp).toMillis();
    const id = p.get("chunkId") as string;
    lastPage.set(id, Math.max(lastPage.get(id) ?? 0, at));
  }
  const edges: Array<[number, number]> = [];
  for (const c of chunks.docs) {
    const start = (c.get("startedAt") as Timestamp | null)?.toMillis();
    const end = lastPage.get(c.id);
    if (start !== undefined && end !== undefined && end > start) edges.push([start, 1], [end, -1]);
  }
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let working = 0;
  let peak = 0;
  for (const [, delta] of edges) peak = Math.max(peak, (working += delta));
  return { shards: chunks.docs.filter((c) => c.id.includes("~")).length, peakChunksWorking: peak };
}

async function rawCeiling(count: number): Promise<number> {
  const docs = Array.from({ length: count }, (_, i) => ({
    path: `benchRaw/d${i}`,
    data: {
      userId: `u${i % USERS}`,
      kind: "purchase",
      points: 100,
      orderId: `o${i}`,
      productId: "p",
      sourceEventId: `e${i}`,
      reason: null,
      migrationId: "bench",
      createdAt: FieldValue.serverTimestamp(),
    },
  }));
  const started = Date.now();
  await bulkWrite(db, docs);
  return count / seconds(Date.now() - started);
}

/** What a user would write: for each order, one transaction that reads and writes it, one after another. */
async function naiveScript(events: SeedEvent[]): Promise<number> {
  const points = new Map(PRODUCTS.map((p) => [p.id, p.points]));
  const started = Date.now();
  for (const e of events) {
    await db.runTransaction(async (tx) => {
      const eventRef = db.collection("webhookEvents").doc(e.id);
      const event = await tx.get(eventRef);
      const body = event.get("body") as {
        id: string;
        customer: { id: string };
        lines: Array<{ id: string; product_id: string; quantity: number }>;
      };
      const entryRefs = body.lines.map((l) => db.collection("ledgerEntries").doc(`purchase_${body.id}_${l.id}`));
      const read = await tx.getAll(...entryRefs, ...body.lines.map((l) => db.collection("products").doc(l.product_id)));
      if (event.get("processed") === true || read.slice(0, entryRefs.length).some((s) => s.exists)) return;
      let credit = 0;
      body.lines.forEach((l, k) => {
        const amount =
          ((read[entryRefs.length + k]?.get("points") as number | undefined) ?? points.get(l.product_id) ?? 0) *
          l.quantity;
        credit += amount;
        tx.create(entryRefs[k] as FirebaseFirestore.DocumentReference, {
          userId: body.customer.id,
          kind: "purchase",
          points: amount,
          orderId: body.id,
          lineId: l.id,
          productId: l.product_id,
          sourceEventId: e.id,
          reason: null,
          migrationId: "naive",
          createdAt: FieldValue.serverTimestamp(),
        });
      });
      tx.set(
        db.collection("wallets").doc(body.customer.id),
        { balance: FieldValue.increment(credit), updatedAt: FieldValue.serverTimestamp() },
        { merge: true },
      );
      tx.update(eventRef, { processed: true, processedAt: FieldValue.serverTimestamp(), processedBy: "naive" });
    });
  }
  return events.length / seconds(Date.now() - started);
}

/** Years of the sparse case: open purchases among processed history, and the same open ones alone. */
const SPARSE_YEAR = 2403;
const LONE_YEAR = 2404;

/**
 * The sparse case: OPEN open purchases among HISTORY processed events over DAYS days, replayed, and the
 * same number of open purchases in a range of their own, replayed: what the handlers read should follow
 * the repair (target: the sparse run reads at most 2× the lone one's documents).
 */
async function sparseMain(open: number): Promise<void> {
  process.stderr
    .write(`Seeding ${fmt(HISTORY)} processed events and ${fmt(open)} open purchases over ${DAYS} days, and ${fmt(open)} open alone...
`);
  // One id source for the year's history and its open purchases, so their ids never meet.
  const ids = new FlakeIds();
  const history = generate(HISTORY, SPARSE_YEAR, DAYS, "h", true, ids).map((e) => ({
    ...e,
    data: { ...e.data, processed: true, processedBy: null },
  }));
  const mixed = generate(open, SPARSE_YEAR, DAYS, "s", false, ids);
  const alone = generate(open, LONE_YEAR, DAYS, "l", false);
  const warmup = generate(3000, WARMUP_YEAR, 6, "w", true);
  await bulkWrite(db, [
    ...PRODUCTS.map((p) => ({ path: `products/${p.id}`, data: { name: p.id, points: p.points } })),
    ...[...history, ...mixed, ...alone, ...warmup].map((e) => ({ path: `webhookEvents/${e.id}`, data: e.data })),
  ]);
  process.stderr.write("Warm-up: a 3,000-event replay over 6 days...\n");
  await runPipeline(WARMUP_YEAR, 6, 1000);
  process.stderr.write(
    `Sparse: a replay of ${DAYS} days holding ${fmt(HISTORY + open)} events, ${fmt(open)} of them open...\n`,
  );
  const sparse = await runPipeline(SPARSE_YEAR, DAYS, 100_000);
  process.stderr.write(`Lone: a replay of ${DAYS} days holding only ${fmt(open)} open purchases...\n`);
  const lone = await runPipeline(LONE_YEAR, DAYS, 100_000);
  const row = (r: Awaited<ReturnType<typeof runPipeline>>) => ({
    events: r.events,
    seconds: Number(r.seconds.toFixed(1)),
    planSeconds: Number(r.planSeconds.toFixed(1)),
    chunks: r.chunks,
    docsRead: r.reads,
    docsWritten: r.writes,
    readsPerSelectedEvent: Number((r.reads / Math.max(1, r.events)).toFixed(2)),
    // What a run reads beyond 3 documents per event, shared over its chunks.
    fixedReadsPerChunk: Number(((r.reads - 3 * r.events) / Math.max(1, r.chunks)).toFixed(1)),
  });
  const result = {
    case: "sparse",
    open,
    history: HISTORY,
    days: DAYS,
    sparse: row(sparse),
    lone: row(lone),
    readRatio: Number((sparse.reads / Math.max(1, lone.reads)).toFixed(2)),
  };
  console.log("");
  console.log(
    `sparse replay   ${fmt(sparse.events)} events examined of ${fmt(HISTORY + open)} in range: ${fmt(sparse.reads)} documents read, ${fmt(sparse.writes)} written, ${fmt(sparse.seconds, 1)} s`,
  );
  console.log(
    `lone replay     ${fmt(lone.events)} events examined of ${fmt(open)} in range: ${fmt(lone.reads)} documents read, ${fmt(lone.writes)} written, ${fmt(lone.seconds, 1)} s`,
  );
  console.log(
    `read ratio      ${fmt(result.readRatio, 2)} (target ≤ 2); ${fmt(result.sparse.readsPerSelectedEvent, 2)} reads per examined event (target ≤ 3 plus a fixed amount per chunk: ${fmt(result.sparse.fixedReadsPerChunk, 1)})`,
  );
  console.log(JSON.stringify(result));
}

/** The year of the heavy-user case. */
const HEAVY_YEAR = 2405;

/**
 * The heavy-user case: one wallet with HEAVY of N events over DAYS days, replayed. Its wallet writes per
 * event come from the page records (`busiestWallet`: the wallet a page's events moved most often, and how
 * many times its commits wrote it); target ≤ 0.05, a write per twenty events at most.
 */
async function heavyMain(heavy: number): Promise<void> {
  process.stderr.write(`Seeding ${fmt(N)} events over ${DAYS} days, ${fmt(heavy)} of them one customer's...\n`);
  const events = generate(N, HEAVY_YEAR, DAYS, "hv", true, new FlakeIds(), heavy / N);
  const warmup = generate(3000, WARMUP_YEAR, 6, "w", true);
  await bulkWrite(db, [
    ...PRODUCTS.map((p) => ({ path: `products/${p.id}`, data: { name: p.id, points: p.points } })),
    ...[...events, ...warmup].map((e) => ({ path: `webhookEvents/${e.id}`, data: e.data })),
  ]);
  // The heavy customer's events: its orders, and the refunds and chargebacks of its orders.
  const heavyId = (() => {
    const counts = new Map<string, number>();
    for (const e of events) {
      const id = (e.data.body as { customer?: { id?: string } }).customer?.id;
      if (id) counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    return [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] as string;
  })();
  const heavyEvents = events.filter(
    (e) => (e.data.body as { customer?: { id?: string } }).customer?.id === heavyId,
  ).length;
  process.stderr.write("Warm-up: a 3,000-event replay over 6 days...\n");
  await runPipeline(WARMUP_YEAR, 6, 1000);
  process.stderr.write(
    `Heavy user: a replay of ${fmt(N)} events, ${fmt(heavyEvents)} of them customer ${heavyId}'s...\n`,
  );
  const run = await runPipeline(HEAVY_YEAR, DAYS, 100_000);
  const pages = await db.collection("dataMigrations").doc(run.id).collection("pages").select("busiestWallet").get();
  let writes = 0;
  let seen = 0;
  let pagesWithIt = 0;
  for (const p of pages.docs) {
    const b = p.get("busiestWallet") as { userId: string; events: number; writes: number } | null | undefined;
    if (b?.userId !== heavyId) continue;
    writes += b.writes;
    seen += b.events;
    pagesWithIt++;
  }
  const result = {
    case: "heavy",
    events: run.events,
    heavyEvents,
    pagesWithIt,
    eventsCounted: seen,
    walletWrites: writes,
    seconds: Number(run.seconds.toFixed(1)),
    pipelineEventsPerSec: Math.round(run.events / run.seconds),
    walletWritesPerEvent: Number((writes / Math.max(1, seen)).toFixed(3)),
  };
  console.log("");
  console.log(
    `heavy user      ${fmt(heavyEvents)} of ${fmt(run.events)} events; its wallet written ${fmt(writes)} times for the ${fmt(seen)} events of its ${pagesWithIt} pages where it was the busiest wallet`,
  );
  console.log(
    `wallet writes   ${fmt(result.walletWritesPerEvent, 3)} per event of that wallet (target ≤ 0.05); ${fmt(run.seconds, 1)} s, ${fmt(result.pipelineEventsPerSec)} events/s`,
  );
  console.log(JSON.stringify(result));
}

async function main(): Promise<void> {
  if (OPEN !== null) return sparseMain(OPEN);
  if (HEAVY !== null) return heavyMain(HEAVY);
  process.stderr.write(
    `Seeding ${fmt(N)} events over ${DAYS} days for ${fmt(USERS)} users, and ${fmt(NAIVE)} for the naive script...\n`,
  );
  const events = generate(N, YEAR, DAYS, "b", true);
  const naiveEvents = generate(NAIVE, NAIVE_YEAR, 1, "n", false);
  const warmup = generate(3000, WARMUP_YEAR, 6, "w", true);
  await bulkWrite(db, [
    ...PRODUCTS.map((p) => ({ path: `products/${p.id}`, data: { name: p.id, points: p.points } })),
    ...events.map((e) => ({ path: `webhookEvents/${e.id}`, data: e.data })),
    ...naiveEvents.map((e) => ({ path: `webhookEvents/${e.id}`, data: e.data })),
    ...warmup.map((e) => ({ path: `webhookEvents/${e.id}`, data: e.data })),
  ]);

  // The references are measured while nothing else runs: the naive script first, the raw ceiling after the
  // pipeline has settled.
  process.stderr.write(`Naive script: ${fmt(NAIVE)} events, one transaction each, in sequence...\n`);
  const naiveEventsPerSec = await naiveScript(naiveEvents);

  // Functions and Firestore stay warm in production; a smaller run first starts the emulator's worker
  // processes and warms both JITs, so the measurement is of the pipeline, not of start-ups.
  process.stderr.write("Warm-up: a 3,000-event replay over 6 days...\n");
  const warm = await runPipeline(WARMUP_YEAR, 6, 1000);
  process.stderr.write(`  warm-up took ${fmt(warm.seconds, 1)} s\n`);

  process.stderr.write(
    "Pipeline: POST /api/jobs/backfill through Hosting, then Cloud Tasks, chunk functions, Firestore...\n",
  );
  const pipeline = await runPipeline(YEAR, DAYS, Math.min(N, 100_000));
  const pipelineEventsPerSec = pipeline.events / pipeline.seconds;
  const writesPerEvent = pipeline.writes / pipeline.events;

  await new Promise((r) => setTimeout(r, 3000));
  process.stderr.write(`Raw ceiling: BulkWriter creates of ${fmt(pipeline.writes)} documents, throttling off...\n`);
  const rawDocsPerSec = await rawCeiling(pipeline.writes);

  // A whole year and a day with nothing to do: planning and closing 366 empty chunks should take seconds.
  process.stderr.write("Empty range: a 366-day replay over a year with no events...\n");
  const empty = await runPipeline(EMPTY_YEAR, 366, 1000);

  const ceilingRatio = (pipelineEventsPerSec * writesPerEvent) / rawDocsPerSec;
  const speedupVsNaive = pipelineEventsPerSec / naiveEventsPerSec;
  const rows: Array<[string, string]> = [
    [
      "events replayed",
      `${fmt(pipeline.events)} in ${fmt(pipeline.seconds, 1)} s (${pipeline.chunks} chunks, ${pipeline.shards} of them shards of busy days)`,
    ],
    [
      "chunks at once",
      `${pipeline.peakChunksWorking} at most working side by side (the queue runs TASK_MAX_CONCURRENT deliveries)`,
    ],
    ["pipeline", `${fmt(pipelineEventsPerSec)} events/s`],
    ["writes per event", `${fmt(writesPerEvent, 2)} (ledger entry, event mark, wallet, amortised page bookkeeping)`],
    [
      "reads per event",
      `${fmt(pipeline.reads / Math.max(1, pipeline.events), 2)} (${fmt(pipeline.reads)} documents read by the handlers' pages)`,
    ],
    [
      "planning",
      `${fmt(pipeline.planSeconds, 1)} s of the ${fmt(pipeline.seconds, 1)} s (counts and reads of the events' times)`,
    ],
    ["raw write ceiling", `${fmt(rawDocsPerSec)} docs/s (BulkWriter create, throttling off)`],
    ["ceiling ratio", `${fmt(ceilingRatio, 2)} (target ≥ 0.5)`],
    ["naive script", `${fmt(naiveEventsPerSec, 1)} events/s (one transaction per event, sequential)`],
    ["speedup vs naive", `${fmt(speedupVsNaive, 1)}× (target ≥ 10)`],
    [
      "handler memory",
      `JavaScript heap in use at most ${fmt(pipeline.peakHeapMb)} MB (garbage not yet collected included) · ${pipeline.peakHeapAfterGcMb === null ? "no full collection during the run" : `${fmt(pipeline.peakHeapAfterGcMb)} MB right after a full collection`} · RSS ${fmt(pipeline.peakRssMb)} MB`,
    ],
    [
      "estimate",
      `${fmt(pipeline.estimatedSeconds)} s planned, ${fmt(pipeline.seconds, 1)} s measured (measured/estimated ${fmt(pipeline.seconds / pipeline.estimatedSeconds, 2)}; within 2× when 0.5–2)`,
    ],
    [
      "CPU per event",
      `${Object.entries(pipeline.cpu)
        .map(([g, sec]) => `${g} ${fmt((sec * 1000) / Math.max(1, pipeline.events), 2)} ms`)
        .join(
          " · ",
        )} (2 cores: ${fmt(2000 / Math.max(1, pipelineEventsPerSec), 2)} ms of CPU available per event at this pace)`,
    ],
    ["empty 366-day run", `${fmt(empty.seconds, 1)} s (${empty.chunks} chunks, ${fmt(empty.events)} events)`],
  ];
  if (values.memory) {
    rows.unshift([
      "memory mode",
      "every handler collects garbage before it reports its heap: the heap is what it holds; the speed figures are not comparable",
    ]);
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log("");
  for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
  console.log(
    JSON.stringify({
      ...(values.memory ? { memoryMode: true } : {}),
      events: pipeline.events,
      pipelineEventsPerSec: Math.round(pipelineEventsPerSec),
      rawDocsPerSec: Math.round(rawDocsPerSec),
      writesPerEvent: Number(writesPerEvent.toFixed(3)),
      docsRead: pipeline.reads,
      docsWritten: pipeline.writes,
      readsPerSelectedEvent: Number((pipeline.reads / Math.max(1, pipeline.events)).toFixed(3)),
      planSeconds: Number(pipeline.planSeconds.toFixed(1)),
      ceilingRatio: Number(ceilingRatio.toFixed(3)),
      naiveEventsPerSec: Number(naiveEventsPerSec.toFixed(1)),
      speedupVsNaive: Number(speedupVsNaive.toFixed(1)),
      peakRssMb: pipeline.peakRssMb,
      peakHeapMb: pipeline.peakHeapMb,
      peakHeapAfterGcMb: pipeline.peakHeapAfterGcMb,
      chunks: pipeline.chunks,
      shards: pipeline.shards,
      peakChunksWorking: pipeline.peakChunksWorking,
      cpuMsPerEvent: Object.fromEntries(
        Object.entries(pipeline.cpu).map(([g, sec]) => [
          g,
          Number(((sec * 1000) / Math.max(1, pipeline.events)).toFixed(3)),
        ]),
      ),
      estimatedSeconds: pipeline.estimatedSeconds,
      measuredSeconds: Number(pipeline.seconds.toFixed(1)),
      estimateRatio: Number((pipeline.seconds / pipeline.estimatedSeconds).toFixed(2)),
    }),
  );
}

await main();
process.exit(0);
