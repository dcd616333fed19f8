// What a run does to wallets, from the ledger entries it wrote (a dry run: the entries it would write):
// points credited, reversed and reinstated, the wallets touched, and the largest changes by wallet. This
// is what an operator signs off on before executing a dry run's plan. Pure.

/** The part of a ledger entry that moves money. */
export interface EntryMovement {
  kind: string;
  userId: string;
  points: number;
}

/** A run's effect on wallets. Points are totals; `reversed` is how many were taken back (positive). */
export interface MoneyMoved {
  entries: number;
  credited: number;
  reversed: number;
  reinstated: number;
  /** credited − reversed + reinstated. */
  net: number;
  wallets: number;
  /** The largest changes by wallet (by size, then wallet id), at most `top`. */
  largest: Array<{ userId: string; points: number }>;
}

export const LARGEST_WALLET_CHANGES = 10;

export function moneyMoved(entries: Iterable<EntryMovement>, top = LARGEST_WALLET_CHANGES): MoneyMoved {
  const byWallet = new Map<string, number>();
  const sums = { entries: 0, credited: 0, reversed: 0, reinstated: 0 };
  for (const e of entries) {
    sums.entries++;
    if (e.kind === "reversal") sums.reversed += -e.points;
    else if (e.kind === "reinstatement") sums.reinstated += e.points;
    else sums.credited += e.points;
    byWallet.set(e.userId, (byWallet.get(e.userId) ?? 0) + e.points);
  }
  const largest = [...byWallet]
    .filter(([, points]) => points !== 0)
    .sort(([a, x], [b, y]) => Math.abs(y) - Math.abs(x) || (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, top)
    .map(([userId, points]) => ({ userId, points }));
  return { ...sums, net: sums.credited - sums.reversed + sums.reinstated, wallets: byWallet.size, largest };
}

const signed = (n: number) => `${n < 0 ? "−" : n > 0 ? "+" : ""}${Math.abs(n).toLocaleString("en-US")}`;

/** One line for people: "+1,250 credited, −300 reversed, +0 reinstated (net +950) across 4 wallets". */
export function describeMoney(m: MoneyMoved): string {
  return `${signed(m.credited)} credited, ${signed(-m.reversed)} reversed, ${signed(m.reinstated)} reinstated (net ${signed(m.net)}) across ${m.wallets} wallet${m.wallets === 1 ? "" : "s"}`;
}

/** The largest changes, for people: "user_006 +1,200, user_010 −250". */
export function describeLargest(m: MoneyMoved, count = 5): string {
  return m.largest
    .slice(0, count)
    .map((w) => `${w.userId} ${signed(w.points)}`)
    .join(", ");
}
