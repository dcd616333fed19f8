// Moving between the console's pages: the refresh timer a page sets for itself, the router that draws a
// page (main.ts registers it), and a message that should survive the navigation that follows it.

/** Draws a page; it may schedule its own refresh. */
export type Page = () => Promise<void>;

let timer: ReturnType<typeof setTimeout> | undefined;
let router: (page?: Page) => Promise<void> = () => Promise.resolve();
let keepBanner = false;

export function setRouter(route: (page?: Page) => Promise<void>): void {
  router = route;
}

/** Draws `page` again in `ms` (a later schedule replaces an earlier one). */
export function schedule(page: Page, ms: number): void {
  clearTimeout(timer);
  timer = setTimeout(() => void router(page), ms);
}

export function cancelRefresh(): void {
  clearTimeout(timer);
}

/** Goes to `hash`, keeping the banner's current message on the page that opens. */
export function goKeepingBanner(hash: string): void {
  keepBanner = true;
  location.hash = hash;
}

/** True once after goKeepingBanner: the navigation it caused keeps the banner. */
export function takeKeepBanner(): boolean {
  const keep = keepBanner;
  keepBanner = false;
  return keep;
}
