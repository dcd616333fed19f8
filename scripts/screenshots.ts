// `npm run screenshots`: regenerates the console screenshots in docs/images from the sample store, through
// the local stack and Debian's Chromium: the New run form (with a field the API refused), a running dry run
// of the busy week (progress, ETA, throughput, day grid), and the real run compared with its dry run.
import { mkdirSync } from "node:fs";
import { chromium, type Page } from "playwright-core";
import { mintLocalToken } from "./localToken";
import { BUSY_WEEK, emulatorDb, seedSampleData } from "./seed";

const API = process.env.BACKFILL_API_URL ?? "http://127.0.0.1:5000";
const OUT = "docs/images";
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

async function until(page: Page, selector: string, text: RegExp, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (
    !text.test(
      (await page
        .locator(selector)
        .first()
        .textContent()
        .catch(() => "")) ?? "",
    )
  ) {
    if (Date.now() > deadline) throw new Error(`${selector} never matched ${text}`);
    await page.waitForTimeout(200);
  }
}

mkdirSync(OUT, { recursive: true });
await seedSampleData(emulatorDb());
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
await page.goto(`${API}/admin#/new&token=${await mintLocalToken()}`);
await page.waitForSelector("[data-testid=new-run]");
await page.fill("#f-startDate", BUSY_WEEK.endDate);
await page.fill("#f-endDate", BUSY_WEEK.startDate);
await page.fill("#f-maxEvents", "20000");
await page.click("[data-testid=start-dry-run]");
await until(page, "[data-testid=error-endDate]", /endDate/);
await page.screenshot({ path: `${OUT}/console-form.png`, fullPage: true });

await page.fill("#f-startDate", BUSY_WEEK.startDate);
await page.fill("#f-endDate", BUSY_WEEK.endDate);
await page.click("[data-testid=start-dry-run]");
await until(page, "[data-testid=eta]", /^ETA [1-9]/);
await until(page, "[data-testid=count-examined] b", /^[1-9]\d{3,}\//);
await page.screenshot({ path: `${OUT}/console-dry-run.png`, fullPage: true });
await until(page, "[data-testid=run-status]", /^completed$/);
await page.click("[data-testid=btn-execute]");
await page.click("[data-testid=confirm-ok]");
await until(page, "[data-testid=plan-of]", /Executes the plan/);
await until(page, "[data-testid=comparison-verdict]", /Matches its dry run|Differs/, 180_000);
await page.screenshot({ path: `${OUT}/console-comparison.png`, fullPage: true });
await browser.close();
console.log(`Wrote ${OUT}/console-form.png, console-dry-run.png and console-comparison.png`);
process.exit(0);
