// The documents the money rules read and write, as they are stored: products and ledger entries, with an
// entry's deterministic id, and what one entry does to a wallet (core/money.ts decides which to write).
import { z } from "zod";

/** A product as stored in `products/{id}`. */
export interface Product {
  name: string;
  points: number;
}

export function checkProduct(data: unknown): Product | null {
  const result = z
    .object({ name: z.string().default(""), points: z.number().int().positive().max(Number.MAX_SAFE_INTEGER) })
    .safeParse(data);
  return result.success ? result.data : null;
}

export type EntryKind = "purchase" | "reversal" | "reinstatement";

/** A ledger entry as stored in `ledgerEntries/{kind}_{orderId}_{lineId}` (without its server-set `createdAt`). */
export interface MoneyEntry {
  kind: EntryKind;
  orderId: string;
  lineId: string;
  /** The line's position in its order (0-based): refunds match lines in this order. */
  lineIndex: number;
  /** The wallet id the entry moves. */
  userId: string;
  productId: string;
  /** Signed: a purchase and a reinstatement credit, a reversal takes back. */
  points: number;
  /** The line's `total_amount` and the order's `total_amount`, in cents, as the purchase event gave them. */
  lineTotalAmount: number;
  orderTotalAmount: number;
  sourceEventId: string;
  reason: "refund" | "chargeback" | null;
  /** The run that wrote it; null when live processing did. */
  migrationId: string | null;
}

export const moneyEntryId = (kind: EntryKind, orderId: string, lineId: string) => `${kind}_${orderId}_${lineId}`;

/** What one entry an event wrote (or would write) does to a wallet. */
export interface EntryMove {
  id: string;
  kind: EntryKind;
  userId: string;
  points: number;
}
