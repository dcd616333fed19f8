// How long a run should take, by the capacity model of docs/capacity.md: a fixed start-up cost, a fixed
// cost per chunk for each wave of chunks the queue runs side by side, and the planned events shared out
// among the deliveries working at once, at the pace one delivery keeps (measured by this deployment on
// its own recent runs; a default from the local benchmark before it has any). Pure: the caller reads the
// runs.

/**
 * Events per second one chunk delivery works through when the deployment has measured none: the 2-core
 * benchmark on PayNow-sized events (2026-12-01: 17,600 purchases in 43 s, three deliveries at once).
 */
export const DEFAULT_DELIVERY_EVENTS_PER_SECOND = 140;
/** Seconds every run spends before and after its events: planning, fan-out, phase moves, closing. */
export const FIXED_SECONDS = 2;
/** Seconds a chunk costs before its first event (dispatch, lease, run and flag reads, first query, roll-up). */
export const CHUNK_SECONDS = 0.15;
/**
 * Seconds each turn of a sequential phase costs beyond its events: refunds, chargebacks and closings run
 * one chunk at a time, and each turn claims, reads, commits and wakes the next (2-core benchmark: 30 days
 * of about 80 refunds and chargebacks each took 41 s, 1.37 s a day).
 */
export const SEQUENTIAL_TURN_SECONDS = 0.8;
/** Runs smaller than this say more about fixed costs (and cold starts) than throughput and are not measured. */
export const MIN_SAMPLE_EVENTS = 2000;

/** The queue's limits the model needs (TASK_MAX_CONCURRENT, TASK_MAX_PER_SECOND). */
export interface QueueCapacity {
  concurrency: number;
  dispatchesPerSecond: number;
}

/** What a finished run tells about throughput. Times are epoch milliseconds. */
export interface RunSample {
  status: string;
  dryRun: boolean;
  total: number;
  /** Chunks of the run (0 or absent: unknown, taken as enough to keep every delivery busy). */
  chunks?: number;
  startedAt: number | null;
  finishedAt: number | null;
  /** The run kept below a pace of its own (maxEventsPerSecond): it says nothing of the deployment's speed. */
  paced?: boolean;
}

/** Deliveries working side by side on `chunks` chunks, and how many waves of them the chunks take. */
function shape(chunks: number, queue: QueueCapacity): { parallel: number; waves: number } {
  const parallel = Math.max(1, Math.min(queue.concurrency, chunks > 0 ? chunks : queue.concurrency));
  return { parallel, waves: Math.ceil(Math.max(chunks, 0) / parallel) };
}

/**
 * Events per second one delivery kept in recent completed runs of the same mode (a dry run writes less than
 * a real one): each run's examined events over its running time less the fixed costs, shared among the
 * deliveries that worked side by side; the median of those; runs of the other mode when there are none;
 * null when no run qualifies.
 */
export function measuredDeliveryRate(
  recent: readonly RunSample[],
  dryRun: boolean,
  queue: QueueCapacity,
): number | null {
  const usable = recent.filter(
    (r) =>
      r.status === "completed" &&
      r.paced !== true &&
      r.total >= MIN_SAMPLE_EVENTS &&
      r.startedAt !== null &&
      r.finishedAt !== null &&
      r.finishedAt > r.startedAt,
  );
  const same = usable.filter((r) => r.dryRun === dryRun);
  const chosen = (same.length > 0 ? same : usable)
    .map((r) => {
      const { parallel, waves } = shape(r.chunks ?? 0, queue);
      const working =
        ((r.finishedAt as number) - (r.startedAt as number)) / 1000 - FIXED_SECONDS - waves * CHUNK_SECONDS;
      return r.total / Math.max(1, working) / parallel;
    })
    .sort((a, b) => a - b);
  if (chosen.length === 0) return null;
  const mid = Math.floor(chosen.length / 2);
  return chosen.length % 2 === 1
    ? (chosen[mid] as number)
    : ((chosen[mid - 1] as number) + (chosen[mid] as number)) / 2;
}

/** What of a plan runs in sequential phases: its events, and its turns (a chunk with budget in such a phase). */
export interface SequentialWork {
  events: number;
  turns: number;
}

/**
 * Whole seconds a run of `plannedEvents` over `chunks` chunks that have work should take: the fixed cost,
 * then either the waves of chunks with their events shared among the deliveries working at once, or, if
 * slower, dispatching that many tasks at the queue's rate. The events of sequential phases (`sequential`)
 * are worked by one delivery at a time, each turn costing SEQUENTIAL_TURN_SECONDS more.
 */
export function estimateSeconds(
  plannedEvents: number,
  chunks: number,
  queue: QueueCapacity,
  deliveryEventsPerSecond: number,
  maxEventsPerSecond: number | null = null,
  sequential: SequentialWork = { events: 0, turns: 0 },
): number {
  if (plannedEvents <= 0 || chunks <= 0) return FIXED_SECONDS;
  const { parallel, waves } = shape(chunks, queue);
  const rate = Math.max(deliveryEventsPerSecond, 1);
  const side = Math.min(Math.max(sequential.events, 0), plannedEvents);
  const work =
    waves * CHUNK_SECONDS +
    (plannedEvents - side) / (rate * parallel) +
    side / rate +
    Math.max(sequential.turns, 0) * SEQUENTIAL_TURN_SECONDS;
  const dispatch = chunks / Math.max(queue.dispatchesPerSecond, 1);
  // A paced run goes no faster than its pace (and, with fewer chunks than the queue runs at once, slower).
  const paced = maxEventsPerSecond === null ? 0 : plannedEvents / ((maxEventsPerSecond * parallel) / paceShares(queue));
  return Math.ceil(FIXED_SECONDS + Math.max(work, dispatch, paced));
}

/** Among how many deliveries at once a paced run shares its pace (each keeps below its share). */
export function paceShares(queue: QueueCapacity): number {
  return Math.max(1, queue.concurrency);
}

/**
 * How long a delivery of a paced run rests after a page of `examined` events, so that the run's deliveries
 * together keep below `maxEventsPerSecond`: each may examine its share of the pace, and `workedMs` is how
 * long the page itself took.
 */
export function paceRestMs(
  examined: number,
  workedMs: number,
  maxEventsPerSecond: number | null,
  queue: QueueCapacity,
): number {
  if (maxEventsPerSecond === null || examined <= 0) return 0;
  const share = maxEventsPerSecond / paceShares(queue);
  return Math.max(0, Math.ceil((examined / share) * 1000 - workedMs));
}

/** A paced delivery's page is at most this many seconds of its share of the pace, so its rests stay short. */
export const PACE_PAGE_SECONDS = 5;

/** The page size of a paced run: the usual one, or fewer events when its share of the pace is small. */
export function pacedPageSize(pageSize: number, maxEventsPerSecond: number, queue: QueueCapacity): number {
  return Math.max(1, Math.min(pageSize, Math.floor((maxEventsPerSecond / paceShares(queue)) * PACE_PAGE_SECONDS)));
}

/** How far back the ETA looks for the run's current pace. */
export const RECENT_PACE_SECONDS = 30;

/**
 * Seconds left of a run, from its recent pace: the events its pages examined in the last
 * RECENT_PACE_SECONDS (so a slow start, workers warming up, does not weigh on it for the whole run), or
 * its average pace when nothing landed that recently; before it has examined anything, what is left of its
 * estimate. Null once it has ended or while it is paused (a paused run is not moving).
 */
export function etaSeconds(
  run: { status: string; total: number; plannedEvents: number; startedAt: number | null; estimatedSeconds: number },
  now: number,
  pages: ReadonlyArray<{ at: number; total: number }> = [],
): number | null {
  if (run.status !== "pending" && run.status !== "running") return null;
  const elapsed = run.startedAt === null ? 0 : Math.max(0, (now - run.startedAt) / 1000);
  const left = Math.max(0, run.plannedEvents - run.total);
  if (run.total === 0 || elapsed === 0) return Math.max(0, Math.ceil(run.estimatedSeconds - elapsed));
  const window = Math.min(RECENT_PACE_SECONDS, elapsed);
  const recent = pages.filter((p) => p.at > now - window * 1000).reduce((n, p) => n + p.total, 0);
  const pace = recent > 0 ? recent / window : run.total / elapsed;
  return Math.ceil(left / pace);
}

/**
 * What one chunk has examined over time, kept in its own document (written with each page it commits, so
 * it costs no write of its own): events per interval of `seconds`, from `since` (epoch ms, a multiple of
 * the interval). A run's page sums its chunks' buckets for its chart and ETA instead of reading every page
 * record. At most THROUGHPUT_BUCKETS intervals: when a chunk works longer, its intervals widen (each width
 * divides the next, so merging is exact).
 */
export interface ThroughputBuckets {
  seconds: number;
  since: number;
  events: number[];
}

export const THROUGHPUT_BUCKETS = 120;
const BUCKET_WIDTHS = [1, 10, 60, 600, 3600] as const;

/** `buckets` with `events` examined at `at` added (pure). */
export function addThroughput(buckets: ThroughputBuckets | null, at: number, events: number): ThroughputBuckets {
  let b: ThroughputBuckets = buckets ?? { seconds: 1, since: Math.floor(at / 1000) * 1000, events: [] };
  const when = Math.max(at, b.since);
  for (;;) {
    const size = b.seconds * 1000;
    const i = Math.floor((when - b.since) / size);
    const wider = BUCKET_WIDTHS.find((w) => w > b.seconds);
    if (i < THROUGHPUT_BUCKETS || wider === undefined) {
      const slot = Math.min(i, THROUGHPUT_BUCKETS - 1);
      const counts = b.events.slice();
      while (counts.length <= slot) counts.push(0);
      counts[slot] = (counts[slot] ?? 0) + events;
      return { ...b, events: counts };
    }
    b = widen(b, wider);
  }
}

function widen(b: ThroughputBuckets, seconds: number): ThroughputBuckets {
  const size = seconds * 1000;
  const since = Math.floor(b.since / size) * size;
  const counts: number[] = [];
  b.events.forEach((n, i) => {
    const j = Math.floor((b.since + i * b.seconds * 1000 - since) / size);
    while (counts.length <= j) counts.push(0);
    counts[j] = (counts[j] ?? 0) + n;
  });
  return { seconds, since, events: counts };
}

/** Chunks' buckets as the points the chart and the ETA take: each non-empty interval at its start. */
export function throughputPoints(
  chunks: ReadonlyArray<{ throughput: ThroughputBuckets | null }>,
): Array<{ at: number; total: number }> {
  return chunks.flatMap((c) =>
    c.throughput
      ? c.throughput.events.flatMap((n, i) =>
          n > 0
            ? [
                {
                  at:
                    (c.throughput as ThroughputBuckets).since + i * (c.throughput as ThroughputBuckets).seconds * 1000,
                  total: n,
                },
              ]
            : [],
        )
      : [],
  );
}

/** One bar of a run's throughput chart. */
export interface ThroughputPoint {
  /** Start of the interval, ISO 8601. */
  at: string;
  /** Events examined in pages committed during the interval. */
  events: number;
  /** Those events per second of the interval. */
  perSecond: number;
}

/**
 * A run's throughput over time from its page records (commit time, events examined): events per second in
 * intervals of a minute, or of 10 seconds (1 second) for runs shorter than 10 minutes (1 minute), so that
 * even a short run draws more than one bar. Intervals without pages are zeros.
 */
export function throughputSeries(
  pages: ReadonlyArray<{ at: number; total: number }>,
  startedAt: number | null,
  until: number,
): { bucketSeconds: number; points: ThroughputPoint[] } {
  if (pages.length === 0) return { bucketSeconds: 60, points: [] };
  const first = Math.min(startedAt ?? Infinity, ...pages.map((p) => p.at));
  const last = Math.max(until, ...pages.map((p) => p.at));
  const span = (last - first) / 1000;
  const bucketSeconds = span > 600 ? 60 : span > 60 ? 10 : 1;
  const size = bucketSeconds * 1000;
  const count = Math.min(Math.floor((last - first) / size) + 1, 1440);
  const events = new Array<number>(count).fill(0);
  for (const p of pages) {
    const i = Math.min(count - 1, Math.floor((p.at - first) / size));
    events[i] = (events[i] ?? 0) + p.total;
  }
  return {
    bucketSeconds,
    points: events.map((n, i) => ({
      at: new Date(first + i * size).toISOString(),
      events: n,
      perSecond: Math.round((n / bucketSeconds) * 10) / 10,
    })),
  };
}
