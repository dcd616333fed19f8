// Which wallets a run's verification checks when it touched too many to check them all. Pure.
import { createHash } from "node:crypto";

/** Wallets a verification checks at most: past that, a seeded random sample of the wallets the run touched. */
export const WALLET_SAMPLE = 200;

/**
 * The wallets a verification checks: all of them up to `size`, else the `size` whose
 * sha256(`${seed}/${userId}`) is smallest (anyone can recompute the sample from the seed).
 */
export function walletSample(userIds: readonly string[], seed: string, size = WALLET_SAMPLE): string[] {
  if (userIds.length <= size) return [...userIds].sort();
  const key = (u: string) => createHash("sha256").update(`${seed}/${u}`).digest("hex");
  return userIds
    .map((u) => ({ u, k: key(u) }))
    .sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0))
    .slice(0, size)
    .map((x) => x.u)
    .sort();
}
