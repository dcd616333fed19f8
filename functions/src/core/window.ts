// The auto-pause window: the error rate over a run's most recent examined events.

/** How many of the most recent examined events the auto-pause rate is taken over. */
export const AUTO_PAUSE_WINDOW = 200;

/**
 * Error rate over the last `window` events, given each page's outcome letters (p/s/e, in page order),
 * newest page first. Null until the run has examined a full window.
 */
export function errorRateOverWindow(pagesNewestFirst: readonly string[], window = AUTO_PAUSE_WINDOW): number | null {
  let seen = 0;
  let errors = 0;
  for (const bits of pagesNewestFirst) {
    for (let i = bits.length - 1; i >= 0 && seen < window; i--, seen++) {
      if (bits[i] === "e") errors++;
    }
    if (seen >= window) break;
  }
  return seen < window ? null : errors / window;
}
