/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// The console's runs list and run page in a real headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core),
// served by the Hosting emulator at /admin. Leaves screenshots in test-results/.
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, requireStack, postRun, testDeps, token, type RecordingQueue } from "../../support/emulator";
import { ARTIFACTS, launch, openConsole as open } from "../../support/browser";
import { deliverAll, startInProcess } from "../../support/deliver";
import { Store } from "../../support/scenario";

let browser: Browser;

beforeAll(async () => {
  browser = await launch();
});

afterAll(async () => {
  await browser?.close();
});

const openConsole = (route?: string, bearer?: string): Promise<Page> => open(browser, route, bearer);

describe("the console's runs list and run page", () => {
  it("lists runs, shows a run's day chunks, counters and errors, and follows it to completed", async () => {
    const s = await Store.create("dash");
    const gems = s.product("gems", 25);
    for (let day = 1; day <= 5; day++)
      for (let i = 0; i < 6; i++) s.purchase({ user: `u${i}`, product: gems, day, minute: i });
    s.purchase({ user: "u1", product: s.id("retired"), day: 3 });
    await s.write();
    const id = await postRun({ type: "webhook_replay", ...s.range(1, 5), dryRun: false });

    const page = await openConsole();
    await expect.poll(() => page.locator(`[data-testid=run-row][data-id="${id}"]`).count()).toBe(1);
    await expect.poll(() => page.locator("[data-testid=kill-switch]").textContent()).toBe("backfill enabled");
    await page.click(`a[href="#/runs/${id}"]`);

    // The page refreshes itself until the run ends.
    await expect
      .poll(() => page.locator("[data-testid=run-status]").textContent(), { timeout: 60_000 })
      .toBe("completed");
    await expect.poll(() => page.locator("[data-testid=chunk-cell]").count()).toBe(5);
    expect(await page.locator('[data-testid=chunk-cell][data-status="done"]').count()).toBe(5);
    expect(await page.locator("[data-testid=count-processed] b").textContent()).toBe("30");
    expect(await page.locator("[data-testid=count-errors] b").textContent()).toBe("1");
    expect(await page.locator("[data-testid=errors]").textContent()).toContain("PRODUCT_NOT_FOUND");
    expect(await page.locator("[data-testid=btn-pause]").isDisabled()).toBe(true);
    expect(await page.locator("[data-testid=btn-retry]").isEnabled()).toBe(true);
    await page.screenshot({ path: `${ARTIFACTS}/console-run-completed.png`, fullPage: true });
    await page.close();
  });

  it("pauses and resumes a run with its buttons", async () => {
    const s = await Store.create("dash2");
    const gems = s.product("gems", 3);
    for (let day = 1; day <= 3; day++)
      for (let i = 0; i < 4; i++) s.purchase({ user: "u1", product: gems, day, minute: i });
    await s.write();
    // Queued in-process, so the run waits, pending, until this test delivers its tasks.
    const { deps, queue } = testDeps();
    const id = await startInProcess(deps, { type: "webhook_replay", ...s.range(1, 3), dryRun: false });

    const page = await openConsole(`/runs/${id}`);
    await expect.poll(() => page.locator("[data-testid=run-status]").textContent()).toBe("pending");
    await page.click("[data-testid=btn-pause]");
    await expect.poll(() => page.locator("[data-testid=run-status]").textContent()).toBe("paused");
    // The queued tasks arrive, see the pause, and park their chunks.
    await deliverAll(deps, queue as RecordingQueue, id);
    await expect.poll(() => page.locator('[data-testid=chunk-cell][data-status="paused"]').count()).toBe(3);
    await page.screenshot({ path: `${ARTIFACTS}/console-run-paused.png`, fullPage: true });

    // Resume goes through the deployed code path: the API queues the chunks on the Cloud Tasks emulator.
    await page.click("[data-testid=btn-resume]");
    await expect
      .poll(() => page.locator("[data-testid=run-status]").textContent(), { timeout: 60_000 })
      .toBe("completed");
    expect(await page.locator("[data-testid=count-processed] b").textContent()).toBe("12");

    // A refused action shows the API's explanation.
    await page.evaluate(() => {
      for (const b of document.querySelectorAll("button")) b.removeAttribute("disabled");
    });
    await page.click("[data-testid=btn-resume]");
    await expect
      .poll(() => page.locator("#banner").textContent())
      .toMatch(/resume refused: Run .* is completed; there is nothing to resume.*\(invalid_transition\)/);
    await page.screenshot({ path: `${ARTIFACTS}/console-runs.png`, fullPage: true });
    await page.close();
    expect((await api("GET", `/api/admin/dataMigrations/${id}`)).body.migration.status).toBe("completed");
  });

  it("a viewer sees every run but no working button, and is told why", async () => {
    const s = await Store.create("dashview");
    s.purchase({ user: "u1", product: s.product("gems", 3), day: 1 });
    await s.write();
    const { deps } = testDeps();
    const id = await startInProcess(deps, { type: "webhook_replay", ...s.range(1, 1), dryRun: false });
    const viewer = await token({ email: "viewer@backfill.local" });
    const page = await openConsole(`/runs/${id}`, viewer);
    await expect.poll(() => page.locator("[data-testid=run-status]").textContent()).toBe("pending");
    for (const action of ["pause", "resume", "cancel", "retry"]) {
      const button = page.locator(`[data-testid=btn-${action}]`);
      expect(await button.isDisabled(), action).toBe(true);
      expect(await button.getAttribute("title")).toMatch(/Read only.*OPERATOR_EMAILS/);
    }
    expect(await page.locator("[data-testid=read-only]").textContent()).toMatch(
      /Read only: your token may view runs but not change them/,
    );
    // Forcing a button open changes nothing: the API refuses the viewer.
    await page.evaluate(() => {
      for (const b of document.querySelectorAll("button")) b.removeAttribute("disabled");
    });
    await page.click("[data-testid=btn-pause]");
    await expect
      .poll(() => page.locator("#banner").textContent())
      .toMatch(/pause refused: viewer@backfill.local is not allowed to change runs.*\(forbidden\)/);
    expect((await api("GET", `/api/admin/dataMigrations/${id}`)).body.migration.status).toBe("pending");
    await page.screenshot({ path: `${ARTIFACTS}/console-viewer.png`, fullPage: true });
    await page.close();
  });

  it("is served with a strict Content-Security-Policy, nosniff and no referrer, and an injected inline script does not run", async () => {
    const page = await browser.newPage();
    const blocked: string[] = [];
    page.on("console", (m) => {
      if (/Content Security Policy/.test(m.text())) blocked.push(m.text());
    });
    for (const path of ["/admin", "/admin/", "/admin/index.html", "/admin/admin.js", "/admin/admin.css"]) {
      const res = await page.goto(`${requireStack().api}${path}`);
      const headers = res?.headers() ?? {};
      expect(headers["content-security-policy"], path).toBe(
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
      );
      expect(headers["x-content-type-options"], path).toBe("nosniff");
      expect(headers["referrer-policy"], path).toBe("no-referrer");
    }
    await page.goto(`${requireStack().api}/admin#/&token=${await token()}`);
    await expect.poll(() => page.locator("[data-testid=runs]").count()).toBe(1);
    // What an attacker's markup would try: an inline script and an inline event handler.
    const ran = await page.evaluate(async () => {
      const w = window as unknown as { pwned?: string };
      const script = document.createElement("script");
      script.textContent = "window.pwned = 'script';";
      document.body.append(script);
      const img = document.createElement("img");
      img.setAttribute("onerror", "window.pwned = 'handler'");
      img.src = "data:,nope";
      document.body.append(img);
      await new Promise((resolve) => setTimeout(resolve, 300));
      return w.pwned ?? null;
    });
    expect(ran).toBeNull();
    expect(blocked.length).toBeGreaterThan(0);
    // The console's own progress bars still draw (their widths are set through the CSS object model).
    expect(
      await page
        .locator(".progress > span")
        .first()
        .evaluate((e) => (e as HTMLElement).style.width),
    ).toMatch(/%$/);
    await page.close();
  });

  it("asks for a token when it has none", async () => {
    const page = await browser.newPage();
    await page.goto(`${requireStack().api}/admin`);
    await expect.poll(() => page.locator("#banner").textContent()).toMatch(/Missing credentials.*Set a token/);
    await page.close();
  });
});
