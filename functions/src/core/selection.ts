// Which events a run examines in each phase. Only money events of the phase's types: a replay takes those
// nobody has processed, a reversal backfill every refund, chargeback and closing, processed or not. A
// canary takes only events whose every wallet is among its `userIds`.
import { moneyFacts, type WalletField } from "./paynow";
import { PHASE_EVENT_TYPES, type Phase, type RunType } from "./types";

/** What selection needs of a run. */
export interface SelectingRun {
  runId: string;
  type: RunType;
  dryRun: boolean;
  userIds?: readonly string[] | null;
  walletField: WalletField;
}

/**
 * The wallets an event would move, as far as its own payload says: a purchase's line recipients. For a
 * refund, chargeback or closing the wallets are those of its order's purchase entries, which the caller
 * looks up (`orderWallets`); undefined when the order has none, or the event is not a usable money event.
 */
export function walletsOf(
  data: unknown,
  walletField: WalletField,
  orderWallets?: (orderId: string) => readonly string[] | undefined,
): readonly string[] | undefined {
  const check = moneyFacts(data, walletField);
  if (!check.ok) return undefined;
  const facts = check.facts;
  if (facts.type === "ON_ORDER_COMPLETED") return facts.lines.map((l) => l.wallet);
  const wallets = orderWallets?.(facts.orderId);
  return wallets && wallets.length > 0 ? wallets : undefined;
}

/**
 * Whether a run examines an event in a phase. A replay takes events nobody has processed, plus those this
 * same run processed in an earlier delivery (so a retried page counts them again instead of losing them).
 * A canary takes, by the same rules, only events whose wallets are all its own: `orderWallets` gives the
 * wallets of an order's purchase entries (a refund, chargeback or closing moves those).
 */
export function isSelected(
  event: { event_type?: unknown; processed?: unknown; processedBy?: unknown },
  run: SelectingRun,
  phase: Phase,
  orderWallets?: (orderId: string) => readonly string[] | undefined,
): boolean {
  if (!(PHASE_EVENT_TYPES[phase] as readonly unknown[]).includes(event.event_type)) return false;
  const open =
    run.type === "reversal_backfill" || event.processed !== true || (!run.dryRun && event.processedBy === run.runId);
  if (!open) return false;
  const canary = run.userIds;
  if (!canary) return true;
  const wallets = walletsOf(event, run.walletField, orderWallets);
  return wallets !== undefined && wallets.every((w) => canary.includes(w));
}
