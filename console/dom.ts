// The console's DOM helpers: building elements, the banner, the confirm dialog, the page's one view.

type Attr = string | number | boolean | null | undefined | DOMStringMap | EventListener | Record<string, string>;
type Child = Node | string | number | null | undefined | Child[];

/** The element of index.html with this id (the page is static: a missing one is a bug in the page). */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`index.html has no #${id}`);
  return node as T;
}

/** An element with attributes (`on…` adds a listener, `dataset` sets data-*) and children; null, undefined and false attributes are left out. */
export function el(tag: string, attrs: Record<string, Attr> = {}, ...children: Child[]): HTMLElement {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value as EventListener);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (value === true) node.setAttribute(key, "");
    else if (typeof value === "string" || typeof value === "number") node.setAttribute(key, String(value));
  }
  for (const child of (children as unknown[]).flat(Infinity) as Array<Node | string | number | null | undefined>) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** A table: its test id, a heading row, and its body rows. */
export function table(testid: string, headings: readonly string[], rows: Child[]): HTMLElement {
  return el(
    "table",
    { "data-testid": testid },
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        headings.map((h) => el("th", {}, h)),
      ),
    ),
    el("tbody", {}, rows),
  );
}

/** A table row of plain cells. */
export const row = (...cells: Child[]) =>
  el(
    "tr",
    {},
    cells.map((c) => el("td", {}, c)),
  );

export const badge = (status: string, testid?: string) =>
  el("span", { class: `badge ${status}`, "data-testid": testid }, status);

export function progress(done: number, planned: number): HTMLElement {
  const pct = planned > 0 ? Math.min(100, Math.round((done / planned) * 100)) : 100;
  const bar = el("span");
  // Through the CSS object model: the page's Content-Security-Policy allows no inline style attribute.
  bar.style.width = `${pct}%`;
  return el("div", { class: "progress", title: `${done}/${planned} examined` }, bar);
}

/** Shows a message in the banner (an empty one hides it). */
export function say(message: string, kind: "info" | "error" = "info"): void {
  const banner = byId("banner");
  if (!message) {
    banner.hidden = true;
    return;
  }
  banner.hidden = false;
  banner.className = kind;
  banner.textContent = message;
}

/** Replaces the page's content; a null stands for "nothing here". */
export function show(...nodes: Array<Node | null | undefined>): void {
  byId("view").replaceChildren(...nodes.filter((n): n is Node => n !== null && n !== undefined));
}

/** Asks before an action that changes money or stops work; resolves true on Confirm. */
export function confirmAction(title: string, text: string, okLabel: string): Promise<boolean> {
  const dialog = byId<HTMLDialogElement>("confirm-dialog");
  byId("confirm-title").textContent = title;
  byId("confirm-text").textContent = text;
  byId("confirm-ok").textContent = okLabel;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) =>
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true }),
  );
}

/** An error's message and code as the banner shows them. */
export function describeError(error: unknown): string {
  const e = error as { message?: unknown; code?: unknown };
  return `${String(e.message)} (${String(e.code)})`;
}
