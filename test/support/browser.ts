// Headless Chromium for the console suites: Debian's /usr/bin/chromium driven by playwright-core.
import { mkdirSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";
import { requireStack, token } from "./emulator";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
/** Screenshots the suites leave behind (docs/images holds the ones the README shows). */
export const ARTIFACTS = "test-results";

export async function launch(): Promise<Browser> {
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // As root in a sandbox, and with no network beyond loopback: no sandbox, no background traffic.
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** Opens the console the way `npm start` links to it: the token rides in the URL fragment. */
export async function openConsole(browser: Browser, route = "/", bearer?: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(`${requireStack().api}/admin#${route}&token=${bearer ?? (await token())}`);
  return page;
}
