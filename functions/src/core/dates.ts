// Calendar arithmetic on UTC days. A UTC day is exactly 86 400 000 ms in JavaScript time (no DST, no leap
// seconds), so plain epoch arithmetic is exact here; input validation (real calendar dates) is zod's.

export const DAY_MS = 86_400_000;

/** Epoch milliseconds of 00:00 UTC on a `YYYY-MM-DD` day. The day must already be validated. */
export function dayStartMs(day: string): number {
  const ms = Date.parse(`${day}T00:00:00.000Z`);
  if (Number.isNaN(ms)) throw new RangeError(`not a calendar day: ${day}`);
  return ms;
}

export function formatDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Every day from `start` to `end`, both included. */
export function daysInRange(start: string, end: string): string[] {
  const days: string[] = [];
  for (let ms = dayStartMs(start), last = dayStartMs(end); ms <= last; ms += DAY_MS) days.push(formatDay(ms));
  return days;
}

export function dayCount(start: string, end: string): number {
  return Math.round((dayStartMs(end) - dayStartMs(start)) / DAY_MS) + 1;
}

/** The trailing window of `days` whole UTC days that ends with the day of `now`. */
export function trailingWindow(now: Date, days: number): { startDate: string; endDate: string } {
  const today = dayStartMs(formatDay(now.getTime()));
  return { startDate: formatDay(today - (days - 1) * DAY_MS), endDate: formatDay(today) };
}
