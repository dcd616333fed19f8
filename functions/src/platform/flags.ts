import type { DocumentSnapshot } from "firebase-admin/firestore";
import type { Config } from "../config";

export type KillSwitchState = { enabled: true } | { enabled: false; source: "param" | "flag" };

/**
 * The kill switch has two halves: the BACKFILL_ENABLED param (redeploy to change) and
 * `featureFlags/backfill.enabled` (flip at run time). A missing document means enabled; a document whose
 * `enabled` is anything but a boolean counts as off, because a typo must not let a run continue.
 */
export function killSwitch(config: Config, flag: DocumentSnapshot | undefined): KillSwitchState {
  if (!config.backfillEnabled) return { enabled: false, source: "param" };
  if (!flag?.exists) return { enabled: true };
  const value: unknown = flag.get("enabled");
  if (value === true || value === undefined) return { enabled: true };
  return { enabled: false, source: "flag" };
}

export function killSwitchMessage(state: KillSwitchState): string {
  if (state.enabled) return "";
  return state.source === "param"
    ? "Backfills are disabled by the BACKFILL_ENABLED parameter; redeploy with BACKFILL_ENABLED=true to allow them."
    : "Backfills are disabled by featureFlags/backfill.enabled; set it to true to allow them.";
}
