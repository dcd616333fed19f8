// Mints tokens for the local stack, signed by the local key and checked by the functions exactly like
// Google ID tokens (google-auth-library), but trusted only inside the emulator.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { importPKCS8, SignJWT, type JWTPayload } from "jose";
import { LOCAL_ISSUER, LOCAL_OPERATOR_EMAIL } from "../functions/src/config";
import { ensureLocalOidcKeys, ROOT } from "./setup";

/** The audience the local stack expects: the first OIDC_AUDIENCES entry of functions/.env.local. */
export function localAudience(): string {
  const env = readFileSync(join(ROOT, "functions", ".env.local"), "utf8");
  const line = /^OIDC_AUDIENCES=(.*)$/m.exec(env)?.[1]?.trim() ?? "";
  const first = line.startsWith("[") ? (JSON.parse(line) as string[])[0] : line.split(",")[0];
  if (!first) throw new Error("functions/.env.local has no OIDC_AUDIENCES");
  return first.trim();
}

export interface LocalTokenOptions {
  email?: string;
  /** Extra or overriding claims. */
  claims?: JWTPayload & Record<string, unknown>;
  /** Seconds the token stays valid. */
  lifetime?: number;
}

export async function mintLocalToken(options: LocalTokenOptions = {}): Promise<string> {
  const { privatePath, kid } = ensureLocalOidcKeys();
  const key = await importPKCS8(readFileSync(privatePath, "utf8"), "RS256");
  const email = options.email ?? LOCAL_OPERATOR_EMAIL;
  const now = Math.floor(Date.now() / 1000);
  // Claims given by the caller win over the defaults, so tests can mint expired or foreign tokens.
  const payload: JWTPayload & Record<string, unknown> = {
    iss: LOCAL_ISSUER,
    aud: localAudience(),
    sub: email,
    email,
    email_verified: true,
    iat: now,
    exp: now + (options.lifetime ?? 3600),
    ...options.claims,
  };
  return new SignJWT(payload).setProtectedHeader({ alg: "RS256", kid, typ: "JWT" }).sign(key);
}
