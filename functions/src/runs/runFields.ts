import type { Run } from "../core/run";
import type { RunFields } from "../log";

export const runFields = (id: string, run: Pick<Run, "type" | "startDate" | "endDate" | "dryRun">): RunFields => ({
  id,
  type: run.type,
  startDate: run.startDate,
  endDate: run.endDate,
  dryRun: run.dryRun,
});
