// The operator's console: a static page (hosting/admin/index.html) that drives the API with the caller's
// bearer token through the same typed client the CLI uses (functions/src/http/client.ts). Every run
// starts as a dry run; a completed dry run's page offers to execute its plan; a real run that executed a
// plan shows how it compared. Bundled into hosting/admin/admin.js by scripts/build-console.ts.
import { ApiError } from "../functions/src/http/client";
import { byId, say, show } from "./dom";
import { refreshKillSwitch, toggleKillSwitch } from "./killSwitch";
import { showList } from "./list";
import { cancelRefresh, setRouter, takeKeepBanner, type Page } from "./navigation";
import { showNew } from "./newRun";
import { showRun } from "./run";
import { setToken, takeTokenFromFragment, token } from "./session";

/** Draws `page`, or the page the URL names; a refused token asks for another. */
async function route(page?: Page): Promise<void> {
  try {
    if (page) await page();
    else {
      const match = /^#\/runs\/([A-Za-z0-9_-]+)/.exec(location.hash);
      cancelRefresh();
      await (match ? showRun(match[1] as string) : location.hash.startsWith("#/new") ? showNew() : showList());
    }
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
      say(`${error.message} (${error.code}). Set a token with the button above.`, "error");
      show();
    } else {
      say(`Could not load: ${(error as Error).message}`, "error");
    }
  }
}

function setupTokenDialog(): void {
  const dialog = byId<HTMLDialogElement>("token-dialog");
  const input = byId<HTMLTextAreaElement>("token-input");
  byId("token-button").addEventListener("click", () => {
    input.value = token() ?? "";
    dialog.showModal();
  });
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "save" && input.value.trim()) {
      setToken(input.value.trim());
      say("");
      void refreshKillSwitch();
      void route();
    }
  });
}

setRouter(route);
takeTokenFromFragment();
setupTokenDialog();
byId("kill-switch-button").addEventListener("click", () => void toggleKillSwitch());
window.addEventListener("hashchange", () => {
  if (!takeKeepBanner()) say("");
  void route();
});
void refreshKillSwitch();
setInterval(() => void refreshKillSwitch(), 10000);
void route();
