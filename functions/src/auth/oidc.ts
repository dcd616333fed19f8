// Caller authentication. Every token is verified by google-auth-library's verifySignedJwtWithCertsAsync
// (signature, expiry, issuer, audience) — the same call `verifyIdToken` makes — against Google's signing
// certificates in production. In the emulator only, tokens signed by the local key (`npm run token`) are
// checked by that same call against the local public key and issuer.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { OAuth2Client, type TokenPayload } from "google-auth-library";
import { refusal, type Permission, type Roles } from "../core/access";
import { AppError } from "../errors";

/** The clock skew google-auth-library allows on iat and exp. */
const CLOCK_SKEW_SECONDS = 300;

export const GOOGLE_ISSUERS = ["accounts.google.com", "https://accounts.google.com"];

/** Who is calling, once their token checked out: the verified email, and the token's subject. */
export interface Caller {
  email: string;
  sub: string;
}

/** A set of signing keys and the issuers whose tokens they sign. */
export interface KeySet {
  issuers: string[];
  certs: () => Promise<Record<string, string>>;
}

export interface TokenVerifier {
  verify(authorization: string | undefined): Promise<Caller>;
}

const unauthenticated = (message: string) =>
  new AppError(401, "unauthenticated", message, undefined, { "WWW-Authenticate": "Bearer" });

/** Library messages embed the token and its claims; callers and logs get only the reason. */
function reasonFor(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const reasons: Array<[RegExp, string]> = [
    [/^Wrong number of segments/, "the token is not a JWT (expected three dot-separated parts)"],
    [/^Can't parse token/, "the token's header or payload is not valid JSON"],
    [/^No pem found/, "the token was not signed by a trusted key"],
    [/^Invalid token signature/, "the token's signature does not verify"],
    [/^No issue time|^iat field/, "the token has no valid iat claim"],
    [/^No expiration time|^exp field/, "the token has no valid exp claim"],
    [/^Expiration time too far/, "the token's lifetime is longer than allowed"],
    [/^Token used too early/, "the token is not valid yet"],
    [/^Token used too late/, "the token has expired; fetch a fresh one"],
    [/^Invalid issuer/, "the token was issued by an untrusted issuer"],
    [/^Wrong recipient/, "the token's audience is not this service; request a token for the configured audience"],
  ];
  return reasons.find(([pattern]) => pattern.test(message))?.[1] ?? "the token could not be verified";
}

/**
 * Verifies `Authorization: Bearer <ID token>` headers. `google` is the production key set; `local`, given
 * only in the emulator, replaces it there.
 */
export function createTokenVerifier(opts: {
  audiences: string[];
  google: KeySet;
  local?: KeySet & { kid: string };
  client?: OAuth2Client;
  now?: () => number;
}): TokenVerifier {
  const client = opts.client ?? new OAuth2Client();
  const now = opts.now ?? (() => Date.now());
  return {
    async verify(authorization) {
      if (!authorization) {
        throw unauthenticated("Missing credentials: send an Authorization: Bearer <OIDC ID token> header.");
      }
      const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
      if (!match?.[1]) {
        throw unauthenticated("The Authorization header must be 'Bearer <OIDC ID token>'.");
      }
      const token = match[1];
      // RFC 8725: accept exactly the algorithm Google signs ID tokens with, and a token that names its key.
      checkHeader(token);
      // In the emulator only local tokens can be checked (there is no network to fetch Google's keys).
      const keys = opts.local ?? opts.google;
      let payload: TokenPayload | undefined;
      try {
        const certs = await keys.certs();
        const ticket = await client.verifySignedJwtWithCertsAsync(token, certs, opts.audiences, keys.issuers);
        payload = ticket.getPayload();
      } catch (error) {
        throw unauthenticated(`Invalid token: ${reasonFor(error)}.`);
      }
      if (!payload) throw unauthenticated("Invalid token: it carries no claims.");
      // Claims of the wrong type are a bad token, never a server error.
      const claims = payload as unknown as Record<string, unknown>;
      for (const [claim, type] of [
        ["exp", "number"],
        ["iat", "number"],
        ["nbf", "number"],
        ["email", "string"],
        ["sub", "string"],
      ] as const) {
        if (claims[claim] !== undefined && typeof claims[claim] !== type)
          throw unauthenticated(`Invalid token: its ${claim} claim must be a ${type}.`);
      }
      // The library checks iat and exp; nbf, when present, must have passed too (same clock skew allowance).
      const nbf = claims.nbf as number | undefined;
      if (nbf !== undefined && nbf - CLOCK_SKEW_SECONDS > now() / 1000) {
        throw unauthenticated("Invalid token: the token is not valid yet.");
      }
      const email = claims.email as string | undefined;
      if (!email) {
        throw new AppError(
          403,
          "forbidden",
          "The token has no email claim; call with a user or service-account ID token that includes the email.",
        );
      }
      if (payload.email_verified !== true) {
        throw new AppError(403, "email_not_verified", `The token's email ${email} is not verified.`);
      }
      return { email: email.toLowerCase(), sub: (claims.sub as string | undefined) ?? "" };
    },
  };
}

/** Google's public signing certificates, fetched and cached by google-auth-library. */
export function googleKeySet(client: OAuth2Client): KeySet {
  return {
    issuers: GOOGLE_ISSUERS,
    certs: async () => (await client.getFederatedSignonCertsAsync()).certs as Record<string, string>,
  };
}

/** Key id of a local public key: the first 16 hex digits of its SHA-256. */
export function localKeyId(publicKeyPem: string): string {
  return createHash("sha256").update(publicKeyPem).digest("hex").slice(0, 16);
}

/** The local key set of the emulator stack: the public key that `npm run token` signs against. */
export function localKeySet(publicKeyFile: string, issuer: string): KeySet & { kid: string } {
  const pem = readFileSync(publicKeyFile, "utf8");
  const kid = localKeyId(pem);
  return { kid, issuers: [issuer], certs: () => Promise.resolve({ [kid]: pem }) };
}

/** Checks the caller's rights for a route (core/access.ts); the message says which setting to change. */
export function requirePermission(caller: Caller, needed: Permission, roles: Roles): void {
  const refused = refusal(caller.email, needed, roles);
  if (refused) throw new AppError(403, "forbidden", refused);
}

/**
 * The token's header must say RS256 (the algorithm of Google's ID tokens) and name its key (`kid`). The
 * library's own checks would refuse other tokens too, but later and less plainly.
 */
function checkHeader(token: string): void {
  if (token.split(".").length !== 3)
    throw unauthenticated("Invalid token: the token is not a JWT (expected three dot-separated parts).");
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(token.split(".")[0] ?? "", "base64url").toString("utf8"));
  } catch {
    throw unauthenticated("Invalid token: the token's header or payload is not valid JSON.");
  }
  const h = (header ?? {}) as { alg?: unknown; kid?: unknown };
  if (h.alg !== "RS256") throw unauthenticated("Invalid token: only RS256-signed ID tokens are accepted.");
  if (typeof h.kid !== "string" || h.kid.length === 0)
    throw unauthenticated("Invalid token: the token does not name its signing key (kid).");
}
