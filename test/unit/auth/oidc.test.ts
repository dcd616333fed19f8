// The token checks production runs, exercised with a test key standing in for Google's: the verifier takes
// its key set as an argument, and everything after that is google-auth-library's verifySignedJwtWithCertsAsync.
import { generateKeyPairSync } from "node:crypto";
import { SignJWT, importPKCS8, type JWTPayload } from "jose";
import { describe, expect, it } from "vitest";
import { createTokenVerifier, GOOGLE_ISSUERS, requirePermission } from "../../../functions/src/auth/oidc";
import { AppError } from "../../../functions/src/errors";

const AUDIENCE = "https://store.example.web.app";
const { privateKey, publicKey } = generateKeyPairSync("rsa", {
  modulusLength: 2048,
  publicKeyEncoding: { type: "spki", format: "pem" },
  privateKeyEncoding: { type: "pkcs8", format: "pem" },
});
const other = generateKeyPairSync("rsa", {
  modulusLength: 2048,
  privateKeyEncoding: { type: "pkcs8", format: "pem" },
  publicKeyEncoding: { type: "spki", format: "pem" },
});
const KID = "test-google-key";

const verifier = createTokenVerifier({
  audiences: [AUDIENCE],
  google: { issuers: GOOGLE_ISSUERS, certs: () => Promise.resolve({ [KID]: publicKey }) },
});

const now = () => Math.floor(Date.now() / 1000);
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

async function sign(
  claims: JWTPayload & Record<string, unknown> = {},
  options: { key?: string; kid?: string | null; alg?: string } = {},
) {
  const alg = options.alg ?? "RS256";
  const key = await importPKCS8(options.key ?? privateKey, alg);
  const header: { alg: string; typ: string; kid?: string } = { alg, typ: "JWT" };
  if (options.kid !== null) header.kid = options.kid ?? KID;
  return new SignJWT({
    email: "oncall@example.com",
    email_verified: true,
    iat: now(),
    exp: now() + 3600,
    iss: "https://accounts.google.com",
    aud: AUDIENCE,
    ...claims,
  })
    .setProtectedHeader(header)
    .sign(key);
}

async function reject(authorization: string | undefined): Promise<AppError> {
  const error = await verifier.verify(authorization).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AppError);
  return error as AppError;
}

describe("OIDC token verification", () => {
  it("accepts a valid Google-style ID token and returns the caller's email and subject", async () => {
    await expect(verifier.verify(`Bearer ${await sign()}`)).resolves.toEqual({ email: "oncall@example.com", sub: "" });
    await expect(
      verifier.verify(`Bearer ${await sign({ sub: "1234567890", email: "OnCall@Example.com" })}`),
    ).resolves.toEqual({ email: "oncall@example.com", sub: "1234567890" });
  });

  const cases: Array<[string, () => Promise<string | undefined>, number, RegExp]> = [
    ["no header", () => Promise.resolve(undefined), 401, /Missing credentials/],
    ["a non-Bearer scheme", async () => `Basic ${await sign()}`, 401, /must be 'Bearer/],
    ["a malformed token", () => Promise.resolve("Bearer not-a-jwt"), 401, /not a JWT/],
    ["garbage segments", () => Promise.resolve("Bearer a.b.c"), 401, /not valid JSON/],
    ["a wrong audience", async () => `Bearer ${await sign({ aud: "https://elsewhere.example" })}`, 401, /audience/],
    ["a wrong issuer", async () => `Bearer ${await sign({ iss: "https://evil.example" })}`, 401, /untrusted issuer/],
    ["an expired token", async () => `Bearer ${await sign({ iat: now() - 7200, exp: now() - 3600 })}`, 401, /expired/],
    [
      "a token not valid yet (iat)",
      async () => `Bearer ${await sign({ iat: now() + 3600, exp: now() + 7200 })}`,
      401,
      /not valid yet/,
    ],
    ["a token not valid yet (nbf)", async () => `Bearer ${await sign({ nbf: now() + 3600 })}`, 401, /not valid yet/],
    ["a token without exp", async () => `Bearer ${await sign({ exp: undefined })}`, 401, /exp claim/],
    [
      "a token signed by another key",
      async () => `Bearer ${await sign({}, { key: other.privateKey })}`,
      401,
      /signature does not verify/,
    ],
    ["an unknown key id", async () => `Bearer ${await sign({}, { kid: "nope" })}`, 401, /not signed by a trusted key/],
    [
      "alg: none",
      () =>
        Promise.resolve(
          `Bearer ${b64({ alg: "none", kid: KID })}.${b64({ email: "oncall@example.com", email_verified: true, iat: now(), exp: now() + 60, iss: "accounts.google.com", aud: AUDIENCE })}.`,
        ),
      401,
      /only RS256/,
    ],
    [
      "HS256 signed with the public key",
      async () => {
        const token = await new SignJWT({
          email: "oncall@example.com",
          email_verified: true,
          iss: "accounts.google.com",
          aud: AUDIENCE,
        })
          .setProtectedHeader({ alg: "HS256", kid: KID })
          .setIssuedAt()
          .setExpirationTime("1h")
          .sign(new TextEncoder().encode(publicKey));
        return `Bearer ${token}`;
      },
      401,
      /only RS256/,
    ],
    ["RS384, another RSA algorithm", async () => `Bearer ${await sign({}, { alg: "RS384" })}`, 401, /only RS256/],
    [
      "no kid in the header",
      async () => `Bearer ${await sign({}, { kid: null })}`,
      401,
      /does not name its signing key/,
    ],
    ["an empty kid", async () => `Bearer ${await sign({}, { kid: "" })}`, 401, /does not name its signing key/],
    [
      "a string exp",
      async () => `Bearer ${await sign({ exp: String(now() + 600) as unknown as number })}`,
      401,
      /exp claim must be a number|exp claim/,
    ],
    [
      "a string nbf",
      async () => `Bearer ${await sign({ nbf: String(now() - 60) as unknown as number })}`,
      401,
      /nbf claim must be a number/,
    ],
    ["a number as email", async () => `Bearer ${await sign({ email: 12345 })}`, 401, /email claim must be a string/],
    [
      "an object as email",
      async () => `Bearer ${await sign({ email: { evil: true } })}`,
      401,
      /email claim must be a string/,
    ],
    [
      "a number as sub",
      async () => `Bearer ${await sign({ sub: 7 as unknown as string })}`,
      401,
      /sub claim must be a string/,
    ],
    [
      "a tampered payload",
      async () => {
        const [h, , s] = (await sign()).split(".");
        return `Bearer ${h}.${b64({ email: "admin@example.com", email_verified: true, iat: now(), exp: now() + 600, iss: "accounts.google.com", aud: AUDIENCE })}.${s}`;
      },
      401,
      /signature does not verify/,
    ],
    ["an unverified email", async () => `Bearer ${await sign({ email_verified: false })}`, 403, /not verified/],
    ["no email claim", async () => `Bearer ${await sign({ email: undefined })}`, 403, /no email claim/],
  ];

  it.each(cases)("rejects %s", async (_name, header, status, message) => {
    const error = await reject(await header());
    expect(error.status).toBe(status);
    expect(error.message).toMatch(message);
  });

  it("never echoes the token in its error", async () => {
    const token = await sign({ aud: "https://elsewhere.example" });
    const error = await reject(`Bearer ${token}`);
    expect(JSON.stringify(error.toJSON())).not.toContain(token.split(".")[1]);
  });

  it("refuses callers missing from the allowlist, naming the setting to change", () => {
    const roles = { viewers: ["v@example.com"], operators: ["oncall@example.com"], schedulers: ["s@example.com"] };
    expect(() => requirePermission({ email: "intern@example.com", sub: "1" }, "start", roles)).toThrow(
      /intern@example.com is not allowed to start runs; add it to OPERATOR_EMAILS/,
    );
    expect(() => requirePermission({ email: "v@example.com", sub: "1" }, "control", roles)).toThrow(
      /v@example.com is not allowed to change runs or the kill switch; add it to OPERATOR_EMAILS/,
    );
    expect(() => requirePermission({ email: "s@example.com", sub: "1" }, "read", roles)).toThrow(
      /add it to VIEWER_EMAILS/,
    );
    expect(() => requirePermission({ email: "oncall@example.com", sub: "1" }, "control", roles)).not.toThrow();
  });
});
