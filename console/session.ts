// Who is using the console: their bearer token (from the URL fragment, never sent to the server, or the
// "Set token" dialog; kept in sessionStorage for this tab only), the API client that sends it, and what
// the API says they may do.
import { BackfillClient, type Me } from "../functions/src/http/client";

const TOKEN_KEY = "backfill.token";

export const READ_ONLY = "Read only: your token may view runs but not change them. An operator (OPERATOR_EMAILS) can.";

export const token = () => sessionStorage.getItem(TOKEN_KEY);

export function setToken(value: string): void {
  sessionStorage.setItem(TOKEN_KEY, value);
  me = null;
}

/** Links may carry a token in the fragment: #token=... or #/runs/<id>&token=... */
export function takeTokenFromFragment(): void {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (match) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1] as string));
    const route = location.hash.replace(match[0], "").replace(/^#?&?/, "");
    history.replaceState(null, "", `${location.pathname}#${route.startsWith("/") ? route : "/"}`);
  }
}

const bearer = () => {
  const t = token();
  return t ? `Bearer ${t}` : null;
};

export const client = new BackfillClient({ baseUrl: "", authorization: bearer });

/** What the caller may do (GET /api/admin/me), asked once per token. */
let me: Me | null = null;
export async function whoAmI(): Promise<Me> {
  me ??= await client.me();
  return me;
}
