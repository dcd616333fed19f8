/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// The operator's whole procedure in a real headless Chromium, on the full local stack (Hosting → API →
// Cloud Tasks → chunk functions → Firestore): a dry run from the New run form, its plan executed from its
// page, the real run's comparison with it; the same as a canary over two users; a viewer who can open
// everything and change nothing; the kill switch from the header. Expectations are the README's rules,
// checked on Firestore itself (wallets, processed marks), not on what the page says alone.
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, db, requireStack, setKillSwitch, postRun, token, waitForRun } from "../../support/emulator";
import { ARTIFACTS, launch, openConsole } from "../../support/browser";
import { Store } from "../../support/scenario";

let browser: Browser;

beforeAll(async () => {
  browser = await launch();
});

afterAll(async () => {
  await browser?.close();
  await setKillSwitch(null);
});

/** Three customers: u1 bought and was refunded, u2 bought three, u3 bought twice and was refunded once. */
async function store(name: string) {
  const s = await Store.create(name);
  const gems = s.product("gems", 100);
  const a = s.purchase({ user: "u1", product: gems, day: 1 });
  s.purchase({ user: "u2", product: gems, day: 2, quantity: 3 });
  const c = s.purchase({ user: "u3", product: gems, day: 1, minute: 10 });
  s.purchase({ user: "u3", product: gems, day: 3 });
  s.reversal(a.orderId, { user: "u1", product: gems, day: 3, minute: 5 });
  s.reversal(c.orderId, { user: "u3", product: gems, day: 3, minute: 6 });
  await s.write();
  return s;
}

const runIdOf = (page: Page) => /#\/runs\/([A-Za-z0-9_-]+)/.exec(page.url())?.[1] ?? null;

async function fillForm(page: Page, values: { from: string; to: string; maxEvents?: string; users?: string }) {
  await page.selectOption("#f-type", "webhook_replay");
  await page.fill("#f-startDate", values.from);
  await page.fill("#f-endDate", values.to);
  if (values.maxEvents !== undefined) await page.fill("#f-maxEvents", values.maxEvents);
  await page.fill("#f-userIds", values.users ?? "");
}

/** New run form → dry run completes → Execute this plan → confirm → real run completes. Returns both ids. */
async function walkProcedure(
  page: Page,
  s: Store,
  users?: string,
  shots?: string,
): Promise<{ dryId: string; realId: string }> {
  await page.click("[data-testid=nav-new]");
  await page.waitForSelector("[data-testid=new-run]");
  // A mistake first: the API's own message appears beside the field it names, and nothing starts.
  await fillForm(page, { from: s.day(3), to: s.day(1), users });
  await page.click("[data-testid=start-dry-run]");
  await expect
    .poll(() => page.locator("[data-testid=error-endDate]").textContent())
    .toBe("endDate must not be before startDate");
  await expect.poll(() => page.locator("#banner").textContent()).toMatch(/Not started: .*\(invalid_request\)/);
  if (shots) await page.screenshot({ path: `${ARTIFACTS}/${shots}-form.png`, fullPage: true });
  expect(runIdOf(page)).toBeNull();

  await fillForm(page, { from: s.day(1), to: s.day(3), maxEvents: "1000", users });
  await page.click("[data-testid=start-dry-run]");
  await expect.poll(() => runIdOf(page)).not.toBeNull();
  const dryId = runIdOf(page) as string;
  await expect
    .poll(() => page.locator("[data-testid=run-status]").textContent(), { timeout: 60_000 })
    .toBe("completed");
  expect(await page.locator("[data-testid=eta]").textContent()).toMatch(/^took \d+ s \(estimated \d+ s\)$/);

  // Execute this plan: a confirmation that says what will be written, then the real run's page.
  await expect.poll(() => page.locator("[data-testid=btn-execute]").isEnabled()).toBe(true);
  // What the dry run would do to wallets is on its page, and in the confirmation.
  expect(await page.locator("[data-testid=money]").textContent()).toMatch(/points credited\+[\d,]+/);
  await page.click("[data-testid=btn-execute]");
  await expect
    .poll(() => page.locator("#confirm-text").textContent())
    .toMatch(/writes ledger entries and wallet balances/);
  expect(await page.locator("#confirm-text").textContent()).toMatch(
    /it would credit \+[\d,]+, reverse −[\d,]+ and reinstate 0 points across \d+ wallets/,
  );
  await page.click("[data-testid=confirm-ok]");
  await expect.poll(() => runIdOf(page)).not.toBe(dryId);
  const realId = runIdOf(page) as string;
  expect(await page.locator("[data-testid=plan-of]").textContent()).toContain(dryId);
  await expect
    .poll(() => page.locator("[data-testid=run-status]").textContent(), { timeout: 60_000 })
    .toBe("completed");
  await expect
    .poll(() => page.locator("[data-testid=comparison-verdict]").textContent())
    .toBe(`Matches its dry run ${dryId}.`);
  expect(await page.locator("[data-testid=throughput] rect").count()).toBeGreaterThan(0);
  expect(await page.locator("[data-testid=chunk-cell]").first().getAttribute("title")).toMatch(
    /examined \d+ · planned/,
  );
  if (shots) await page.screenshot({ path: `${ARTIFACTS}/${shots}-comparison.png`, fullPage: true });
  return { dryId, realId };
}

describe("the operator's console in Chromium", () => {
  it("walks the whole procedure: form → dry run → Execute this plan → real run that matches its dry run", async () => {
    const s = await store("console");
    const page = await openConsole(browser);
    const { dryId, realId } = await walkProcedure(page, s, undefined, "console");
    const real = await waitForRun(realId);
    expect(real).toMatchObject({ dryRun: false, planOf: dryId, total: 6, processed: 6, errors: 0 });
    // Every customer's wallet is what the rules say: purchases credited, refunds taken back.
    expect(await s.balances()).toEqual({ [s.user("u1")]: 0, [s.user("u2")]: 300, [s.user("u3")]: 100 });
    await s.expectWalletsMatchLedger();
    await page.goto(`${page.url().split("#")[0]}#/runs/${dryId}`);
    await expect.poll(() => page.locator("[data-testid=run-status]").textContent()).toBe("completed");
    await page.screenshot({ path: `${ARTIFACTS}/console-dry-run.png`, fullPage: true });
    await page.close();
  });

  it("a double click on Start dry run starts one run (one Idempotency-Key per form and body)", async () => {
    const s = await store("doubleclick");
    const page = await openConsole(browser);
    await page.click("[data-testid=nav-new]");
    await page.waitForSelector("[data-testid=new-run]");
    await fillForm(page, { from: s.day(1), to: s.day(3), maxEvents: "1000" });
    // Two submissions before the first answer arrives, as an impatient click (or a retry after a 504) makes.
    await page.evaluate(() => {
      const form = document.querySelector<HTMLFormElement>("[data-testid=new-run]");
      form?.requestSubmit();
      form?.requestSubmit();
    });
    await expect.poll(() => runIdOf(page)).not.toBeNull();
    await waitForRun(runIdOf(page) as string);
    const runs = await db()
      .collection("dataMigrations")
      .where("startDate", "==", s.day(1))
      .where("endDate", "==", s.day(3))
      .get();
    expect(runs.size).toBe(1);
    await page.close();
  });

  it("a canary of two users processes only their events, and matches its dry run", async () => {
    const s = await store("canaryui");
    const page = await openConsole(browser);
    const { realId } = await walkProcedure(page, s, `${s.user("u1")},\n${s.user("u2")}`);
    expect(await page.locator("[data-testid=canary]").textContent()).toContain(s.user("u2"));
    expect(await waitForRun(realId)).toMatchObject({ total: 3, processed: 3, userIds: [s.user("u1"), s.user("u2")] });
    expect(await s.balances()).toEqual({ [s.user("u1")]: 0, [s.user("u2")]: 300 });
    const untouched = await db().collection("webhookEvents").where("body.customer.id", "==", s.user("u3")).get();
    expect(untouched.docs.map((d) => d.get("processed"))).toEqual([false, false, false]);
    await page.close();
  });

  it("a viewer can open the form, a dry run and the header, but no button works, and each says why", async () => {
    const s = await store("viewerui");
    const dryId = await postRun({ type: "webhook_replay", ...s.range(1, 3), dryRun: true });
    await waitForRun(dryId);
    const viewer = await token({ email: "viewer@backfill.local" });
    const page = await openConsole(browser, `/runs/${dryId}`, viewer);
    await expect.poll(() => page.locator("[data-testid=run-status]").textContent()).toBe("completed");
    const buttons = page.locator("main button, header button[data-testid=kill-switch-toggle]");
    await expect.poll(() => page.locator("[data-testid=kill-switch-toggle]").isVisible()).toBe(true);
    const count = await buttons.count();
    expect(count).toBe(6);
    for (let i = 0; i < count; i++) {
      expect(await buttons.nth(i).isDisabled(), (await buttons.nth(i).textContent()) ?? "").toBe(true);
      expect(await buttons.nth(i).getAttribute("title")).toMatch(/Read only/);
    }
    await page.click("[data-testid=nav-new]");
    await page.waitForSelector("[data-testid=new-run]");
    expect(await page.locator("[data-testid=start-dry-run]").isDisabled()).toBe(true);
    expect(await page.locator("#f-startDate").isDisabled()).toBe(true);
    expect(await page.locator("[data-testid=read-only]").textContent()).toMatch(/Read only/);
    // Forcing the execute button open changes nothing: the API refuses the viewer.
    await page.goBack();
    await expect.poll(() => page.locator("[data-testid=btn-execute]").count()).toBe(1);
    await page.evaluate(() => document.querySelector("[data-testid=btn-execute]")?.removeAttribute("disabled"));
    await page.click("[data-testid=btn-execute]");
    await page.click("[data-testid=confirm-ok]");
    await expect
      .poll(() => page.locator("#banner").textContent())
      .toMatch(/Execute refused: viewer@backfill.local .*\(forbidden\)/);
    const mine = await db().collection("dataMigrations").where("planOf", "==", dryId).count().get();
    expect(mine.data().count).toBe(0);
    await page.close();
  });

  it("a late answer for the page the operator left does not replace the page they moved to", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    // The list's answer arrives 1.5 s late, after the operator has opened the New run form.
    let delayed = 0;
    await page.route("**/api/admin/dataMigrations?limit=50", async (route) => {
      delayed++;
      await new Promise((r) => setTimeout(r, 1500));
      await route.continue();
    });
    await page.goto(`${requireStack().api}/admin#/&token=${await token()}`);
    await page.click("[data-testid=nav-new]");
    await page.waitForSelector("[data-testid=new-run]");
    await page.waitForTimeout(2500);
    expect(delayed).toBeGreaterThan(0);
    expect(await page.locator("[data-testid=new-run]").count()).toBe(1);
    expect(await page.locator("[data-testid=runs]").count()).toBe(0);
    await page.close();
  });

  it("the kill switch is flipped from the header after a confirmation naming its effect, and says which half is off", async () => {
    const page = await openConsole(browser);
    await expect.poll(() => page.locator("[data-testid=kill-switch]").textContent()).toBe("backfill enabled");
    await expect.poll(() => page.locator("[data-testid=kill-switch-toggle]").isEnabled()).toBe(true);
    // Cancel leaves everything as it was.
    await page.click("[data-testid=kill-switch-toggle]");
    await expect
      .poll(() => page.locator("#confirm-text").textContent())
      .toMatch(/new jobs are refused \(503 backfill_disabled\).*running chunks stop at their next page/);
    await page.click("[data-testid=confirm-cancel]");
    expect((await api("GET", "/api/admin/killSwitch")).body.enabled).toBe(true);

    await page.click("[data-testid=kill-switch-toggle]");
    await page.click("[data-testid=confirm-ok]");
    await expect
      .poll(() => page.locator("[data-testid=kill-switch]").textContent())
      .toBe("backfill DISABLED by the runtime flag featureFlags/backfill");
    expect((await api("GET", "/api/admin/killSwitch")).body).toMatchObject({
      enabled: false,
      disabledBy: "featureFlags/backfill",
    });
    const refused = await api("POST", "/api/jobs/backfill", {
      body: { type: "webhook_replay", startDate: "2031-01-01", endDate: "2031-01-01" },
    });
    expect(refused.status).toBe(503);
    await page.screenshot({ path: `${ARTIFACTS}/console-kill-switch.png` });

    expect(await page.locator("[data-testid=kill-switch-toggle]").textContent()).toBe("Turn backfill on");
    await page.click("[data-testid=kill-switch-toggle]");
    await page.click("[data-testid=confirm-ok]");
    await expect.poll(() => page.locator("[data-testid=kill-switch]").textContent()).toBe("backfill enabled");
    await page.close();
  });
});
