// The header's kill switch: its state (both halves) and, for an operator, the button that flips the
// runtime flag (the deploy setting is not the console's to change).
import type { KillSwitchView } from "../functions/src/http/client";
import { byId, confirmAction, describeError, say } from "./dom";
import { client, READ_ONLY, whoAmI } from "./session";

const HALVES: Record<string, string> = {
  BACKFILL_ENABLED: "by the deploy setting BACKFILL_ENABLED (only a redeploy with it true turns backfill back on)",
  "featureFlags/backfill": "by the runtime flag featureFlags/backfill",
};

let killState: KillSwitchView | null = null;

export async function refreshKillSwitch(): Promise<void> {
  const node = byId("kill-switch");
  const button = byId<HTMLButtonElement>("kill-switch-button");
  try {
    const state = await client.killSwitch();
    killState = state;
    node.className = `badge ${state.enabled ? "enabled" : "disabled"}`;
    node.textContent = state.enabled
      ? "backfill enabled"
      : `backfill DISABLED ${state.disabledBy ? (HALVES[state.disabledBy] ?? "") : ""}`;
    node.dataset.enabled = String(state.enabled);
    node.dataset.disabledBy = state.disabledBy ?? "";
    const operator = (await whoAmI()).permissions.includes("control");
    const flagOn = state.flag?.enabled !== false;
    button.hidden = false;
    button.textContent = flagOn ? "Turn backfill off" : "Turn backfill on";
    button.disabled = !operator || (!flagOn && !state.param);
    button.title = !operator
      ? READ_ONLY
      : !flagOn && !state.param
        ? "The deploy setting BACKFILL_ENABLED is false: turning the runtime flag on would not enable backfill; redeploy with BACKFILL_ENABLED=true."
        : "";
  } catch {
    node.className = "badge";
    node.textContent = "kill switch: unknown";
    button.hidden = true;
  }
}

export async function toggleKillSwitch(): Promise<void> {
  const turnOff = killState?.flag?.enabled !== false;
  const ok = await confirmAction(
    turnOff ? "Turn backfill off?" : "Turn backfill on?",
    turnOff
      ? "Sets the runtime flag featureFlags/backfill to false: new jobs are refused (503 backfill_disabled), and running chunks stop at their next page and are parked as paused. Nothing already written is undone."
      : `Sets the runtime flag featureFlags/backfill to true: new jobs are accepted again${killState?.param ? "" : " (but the deploy setting BACKFILL_ENABLED is still false)"}. Paused runs stay paused until someone resumes them.`,
    turnOff ? "Turn off" : "Turn on",
  );
  if (!ok) return;
  try {
    await client.setKillSwitch(!turnOff);
    say(turnOff ? "Backfill turned off (runtime flag)." : "Runtime flag turned on.");
  } catch (error) {
    say(`Kill switch refused: ${describeError(error)}`, "error");
  }
  await refreshKillSwitch();
}
