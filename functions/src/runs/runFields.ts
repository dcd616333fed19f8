import type { RunFields } from "../log";
import type { RunDoc } from "../platform/collections";

export const runFields = (id: string, run: Pick<RunDoc, "type" | "startDate" | "endDate" | "dryRun">): RunFields => ({
  id,
  type: run.type,
  startDate: run.startDate,
  endDate: run.endDate,
  dryRun: run.dryRun,
});
