// How a run's range is cut into chunks. A day is the unit an operator thinks in, so a day whose events fit
// in one shard stays one chunk (`2025-01-22`); a day with more is cut into time slices of about
// `shardEvents` events each (`2025-01-22~0000`, `2025-01-22~0001`, …), each its own chunk and task, so an
// outage concentrated in one day fans out like one spread over many. Chunk ids sort in time order.
//
// Sizes come from counts of every event in a time range (whatever a run selects, a scan reads them all). The
// search halves ranges of days, then a hot day's time, and counts only the first half of each split (the
// second is the parent's count minus it), so its cost grows with the number of chunks, not with the range.
import { DAY_MS, dayStartMs, formatDay } from "./dates";

/** A chunk's id and the event time it covers: [startMs, endMs). */
export interface ChunkBounds {
  id: string;
  startMs: number;
  endMs: number;
}

/** A shard is never cut below this width: events in the same millisecond cannot be told apart by time. */
const MIN_SHARD_MS = 2;

const SHARD_MARK = "~";

export const shardId = (day: string, index: number) => `${day}${SHARD_MARK}${String(index).padStart(4, "0")}`;

/** The UTC day a chunk id belongs to. */
export const dayOfChunk = (chunkId: string) => chunkId.slice(0, 10);

/** A chunk id: a day, or a day's shard. */
export const CHUNK_ID_PATTERN = /^\d{4}-\d{2}-\d{2}(~\d{4})?$/;

/** The bounds of a whole-day chunk id (a shard's are stored with it). */
export function wholeDayChunk(day: string): ChunkBounds {
  const startMs = dayStartMs(day);
  return { id: day, startMs, endMs: startMs + DAY_MS };
}

/** Counts every event in [startMs, endMs). */
export type SpanCounter = (startMs: number, endMs: number) => Promise<number>;

interface Node {
  startMs: number;
  endMs: number;
  count: number;
  /** The split of this node, when it was split. */
  halves?: [Node, Node];
}

/**
 * Cuts the days [startMs, endMs) into chunks: whole days where a day holds at most `shardEvents` events,
 * else shards of at most about that many. If that would make more than `maxChunks` chunks (a run's chunks
 * are created in one batch), shards grow until it fits. `total` is the count of the whole range if the
 * caller has it.
 */
export async function cutRange(
  days: readonly string[],
  shardEvents: number,
  maxChunks: number,
  count: SpanCounter,
  total?: number,
): Promise<{ chunks: ChunkBounds[]; queries: number }> {
  if (maxChunks > 9999 || days.length > maxChunks)
    throw new RangeError(`${days.length} days do not fit in ${maxChunks} chunks`);
  let queries = 0;
  const counted = async (startMs: number, endMs: number) => {
    queries++;
    return count(startMs, endMs);
  };
  const first = dayStartMs(days[0] as string);
  const last = dayStartMs(days[days.length - 1] as string) + DAY_MS;
  const root: Node = { startMs: first, endMs: last, count: total ?? (await counted(first, last)) };

  // Splits a node in two: by whole days while it covers several, then by time.
  const split = async (node: Node): Promise<[Node, Node] | null> => {
    if (node.halves) return node.halves;
    const spanDays = Math.round((node.endMs - node.startMs) / DAY_MS);
    const wholeDays = node.startMs % DAY_MS === 0 && node.endMs % DAY_MS === 0 && spanDays >= 1;
    let mid: number;
    if (wholeDays && spanDays > 1) mid = node.startMs + Math.floor(spanDays / 2) * DAY_MS;
    else if (node.endMs - node.startMs >= MIN_SHARD_MS)
      mid = node.startMs + Math.floor((node.endMs - node.startMs) / 2);
    else return null;
    const left = await counted(node.startMs, mid);
    node.halves = [
      { startMs: node.startMs, endMs: mid, count: left },
      { startMs: mid, endMs: node.endMs, count: node.count - left },
    ];
    return node.halves;
  };
  // Leaves of the tree for a shard size: ranges of small days stay whole, hot days split by time.
  const leaves = async (node: Node, size: number, out: Node[]): Promise<void> => {
    const halves = node.count > size ? await split(node) : null;
    if (!halves) {
      out.push(node);
      return;
    }
    await leaves(halves[0], size, out);
    await leaves(halves[1], size, out);
  };

  for (let size = Math.max(1, shardEvents); ; size *= 2) {
    const out: Node[] = [];
    await leaves(root, size, out);
    const chunks = toChunks(mergeSlivers(out, size));
    if (chunks.length <= maxChunks) return { chunks, queries };
  }
}

/**
 * Joins neighbouring time slices of the same day while together they stay within `size`: halving a day
 * whose events bunch up leaves slices with few or none, and each chunk has a fixed cost.
 */
function mergeSlivers(leaves: readonly Node[], size: number): Node[] {
  const out: Node[] = [];
  for (const leaf of leaves) {
    const prev = out[out.length - 1];
    const subDay = (n: Node) => n.endMs - n.startMs < DAY_MS;
    if (
      prev &&
      subDay(prev) &&
      subDay(leaf) &&
      prev.endMs === leaf.startMs &&
      formatDay(prev.startMs) === formatDay(leaf.startMs) &&
      prev.count + leaf.count <= size
    ) {
      out[out.length - 1] = { startMs: prev.startMs, endMs: leaf.endMs, count: prev.count + leaf.count };
    } else out.push(leaf);
  }
  return out;
}

/** Every whole day of a node of one day or more. */
function dayChunksOf(node: Node): ChunkBounds[] {
  const chunks: ChunkBounds[] = [];
  for (let ms = node.startMs; ms < node.endMs; ms += DAY_MS) chunks.push(wholeDayChunk(formatDay(ms)));
  return chunks;
}

/** Chunks from leaves in time order: whole days keep the day's id; a day's time slices are its shards. */
function toChunks(leaves: readonly Node[]): ChunkBounds[] {
  const chunks: ChunkBounds[] = [];
  const shardsOfDay = new Map<string, number>();
  for (const leaf of leaves) {
    if (leaf.endMs - leaf.startMs >= DAY_MS) {
      chunks.push(...dayChunksOf(leaf));
      continue;
    }
    const day = formatDay(leaf.startMs);
    const index = shardsOfDay.get(day) ?? 0;
    shardsOfDay.set(day, index + 1);
    chunks.push({ id: shardId(day, index), startMs: leaf.startMs, endMs: leaf.endMs });
  }
  return chunks;
}
