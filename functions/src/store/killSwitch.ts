// The kill switch, and the one module that writes its runtime half (`featureFlags/backfill`): the API's
// POST /api/admin/killSwitch and the break-glass script both write through writeKillSwitch.
import { FieldValue, type DocumentSnapshot, type Firestore } from "firebase-admin/firestore";
import type { Config } from "../config";
import type { Deps } from "../deps";
import { AppError } from "../errors";
import { refs } from "../platform/collections";

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

/** Refuses (503 backfill_disabled) anything that would start work while the kill switch is off. */
export async function assertRunsEnabled(deps: Deps): Promise<void> {
  const state = killSwitch(deps.config, await refs(deps.db).killSwitch.get());
  if (!state.enabled) throw new AppError(503, "backfill_disabled", killSwitchMessage(state));
}

/** Who flipped the switch, recorded on the flag: an operator through the API, or someone breaking glass. */
export interface KillSwitchSetter {
  email: string;
  sub: string | null;
  via: "api" | "break-glass";
}

/** Sets `featureFlags/backfill.enabled`, recording who did and how. */
export async function writeKillSwitch(db: Firestore, enabled: boolean, by: KillSwitchSetter): Promise<void> {
  await refs(db).killSwitch.set({
    enabled,
    updatedBy: by.email,
    updatedBySub: by.sub,
    updatedVia: by.via,
    updatedAt: FieldValue.serverTimestamp(),
  });
}
