// What a money decision (core/money.ts) is asked with and what it answers: who applies events, the events
// and documents it sees, each event's outcome and the writes it intends; and what a page's outcomes say
// about the wallets it moved.
import type { EntryMove, MoneyEntry, Product } from "./ledger";
import type { WalletField } from "./paynow";
import type { RunType } from "./types";

/** Who is applying events: a run (replay or reversal backfill, dry or real) or live webhook processing. */
export interface MoneyContext {
  runId: string | null;
  mode: RunType | "live";
  dryRun: boolean;
  walletField: WalletField;
  /**
   * A canary's wallets (null: every wallet). The run selects only events whose wallets are all among them;
   * should an event here move another wallet all the same (its order's entries changed since it was
   * selected), it is skipped `OUTSIDE_CANARY` and writes nothing.
   */
  userIds?: readonly string[] | null;
  /**
   * The page record (`{chunkId}-{n}`) whose commit counts these decisions; absent for live processing. An
   * event a run counts is marked `countedIn.{runId}` with it, so that the scan, meeting the event again
   * after its `createdAt` moved past the chunk's position, knows it was counted (issue 18 item 2).
   */
  page?: string;
}

/** Where a run counted an event: the page record named in its `countedIn` mark (undefined: not counted by the run). */
export function countedIn(data: unknown, runId: string): string | undefined {
  const marks = (data as { countedIn?: unknown } | undefined)?.countedIn;
  const page = marks !== null && typeof marks === "object" ? (marks as Record<string, unknown>)[runId] : undefined;
  return typeof page === "string" ? page : undefined;
}

/** One stored event as the decisions see it. */
export interface StoredEvent {
  id: string;
  /** The raw document (PayNow's envelope plus the product's fields). */
  data: unknown;
}

/** The documents the decisions depend on, as read inside the transaction. */
export interface MoneyState {
  /** Every real ledger entry of the orders the events are about, by id. */
  ledger: ReadonlyMap<string, MoneyEntry>;
  /** A dry run's own would-be entries of those orders, from its shadow ledger. Empty for real runs. */
  shadow: ReadonlyMap<string, MoneyEntry>;
  /** Products by id (null: present but unusable; absent: missing). */
  products: ReadonlyMap<string, Product | null>;
}

export const MONEY_ERROR_CODES = [
  "INVALID_EVENT",
  "PRODUCT_NOT_FOUND",
  "PRODUCT_INVALID",
  "ORIGINAL_PURCHASE_NOT_FOUND",
  "REFUND_UNMATCHED",
  "CHARGEBACK_NOT_REVERSED",
] as const;
export type MoneyErrorCode = (typeof MONEY_ERROR_CODES)[number];

export type MoneySkipReason =
  | "ALREADY_PROCESSED"
  | "PURCHASE_EXISTS"
  | "ALREADY_REVERSED"
  | "ALREADY_REINSTATED"
  | "CHARGEBACK_LOST"
  | "OUTSIDE_CANARY";

export type MoneyOutcome =
  | { eventId: string; result: "processed"; entries: EntryMove[] }
  | { eventId: string; result: "skipped"; reason: MoneySkipReason }
  | { eventId: string; result: "error"; code: MoneyErrorCode; message: string };

export type MoneyIntent =
  | { kind: "createEntry"; target: "ledger" | "shadow"; id: string; entry: MoneyEntry }
  | { kind: "creditWallet"; userId: string; points: number }
  | { kind: "markProcessed"; eventId: string }
  | { kind: "markDryRun"; eventId: string }
  /** `countedIn.{runId}`: the page whose commit counts the event (MoneyContext.page). */
  | { kind: "markCounted"; eventId: string; page: string };

/** The wallet a page's processed events moved most often, and how many times its commits wrote it. */
export interface BusiestWallet {
  userId: string;
  events: number;
  writes: number;
}

export function busiestWallet(
  outcomes: readonly MoneyOutcome[],
  walletWrites: readonly string[],
): BusiestWallet | null {
  const events = new Map<string, number>();
  for (const o of outcomes)
    if (o.result === "processed")
      for (const userId of new Set(o.entries.map((e) => e.userId))) events.set(userId, (events.get(userId) ?? 0) + 1);
  let best: [string, number] | null = null;
  for (const [userId, n] of events) if (!best || n > best[1] || (n === best[1] && userId < best[0])) best = [userId, n];
  if (!best) return null;
  const [userId, n] = best;
  return { userId, events: n, writes: walletWrites.filter((w) => w === userId).length };
}
