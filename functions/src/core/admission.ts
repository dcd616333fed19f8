// Admission control: whether a new run may start while others are active. A real run may not overlap an
// active real run of the same type (two operators would race the same repair); dry runs may overlap
// anything. And at most `maxActive` runs are active (pending, running or paused) at once.

export interface ActiveRun {
  id: string;
  type: string;
  startDate: string;
  endDate: string;
  dryRun: boolean;
}

export type Admission =
  | { ok: true }
  | { ok: false; status: 409; code: "run_overlaps"; activeRunId: string; message: string }
  | { ok: false; status: 429; code: "too_many_runs"; message: string };

/** Whether two UTC day ranges (`YYYY-MM-DD`, both ends included) share a day. */
export function overlaps(
  a: Pick<ActiveRun, "startDate" | "endDate">,
  b: Pick<ActiveRun, "startDate" | "endDate">,
): boolean {
  return a.startDate <= b.endDate && b.startDate <= a.endDate;
}

export function admit(candidate: Omit<ActiveRun, "id">, active: readonly ActiveRun[], maxActive: number): Admission {
  if (!candidate.dryRun) {
    const clash = active.find((r) => !r.dryRun && r.type === candidate.type && overlaps(r, candidate));
    if (clash) {
      return {
        ok: false,
        status: 409,
        code: "run_overlaps",
        activeRunId: clash.id,
        message: `Run ${clash.id} (${clash.type}, ${clash.startDate} to ${clash.endDate}) is still active over these days. Wait for it to end, or cancel it, then start again; a dry run may overlap it.`,
      };
    }
  }
  if (active.length >= maxActive) {
    return {
      ok: false,
      status: 429,
      code: "too_many_runs",
      message: `${active.length} runs are active and at most ${maxActive} may be (MAX_ACTIVE_RUNS); try again when one has ended, or cancel one.`,
    };
  }
  return { ok: true };
}
