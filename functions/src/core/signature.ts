// PayNow's webhook signature (docs.paynow.gg, "Verifying the HMAC signature"): `PayNow-Signature` is the
// base64 HMAC-SHA256, keyed with the subscription's secret as UTF-8, of `<PayNow-Timestamp> + "." + <raw
// body>`, where the timestamp is Unix milliseconds. PayNow gives every webhook subscription its own
// secret, so a receiver checks against each configured one. Node's crypto only; no Firebase import.
import { createHmac, timingSafeEqual } from "node:crypto";

/** How far a webhook's timestamp may be from now, either way: PayNow recommends ignoring older than 5 minutes. */
export const SIGNATURE_TOLERANCE_MS = 5 * 60 * 1000;

export type SignatureCheck =
  | { ok: true; secretIndex: number }
  | {
      ok: false;
      status: 400 | 401;
      code: "signature_missing" | "timestamp_invalid" | "timestamp_out_of_range" | "signature_invalid";
      message: string;
    };

/** The base64 signature PayNow sends for this timestamp and body. */
export function signPayload(secret: string, timestamp: string, rawBody: Buffer | string): string {
  return createHmac("sha256", secret).update(`${timestamp}.`).update(rawBody).digest("base64");
}

const BASE64 = /^[A-Za-z0-9+/]{43}=$/;

/**
 * Checks a request's signature headers against its raw body and every secret. A missing header is 400; a
 * timestamp more than SIGNATURE_TOLERANCE_MS old or ahead, or a signature no secret produces, is 401. The
 * comparison is constant-time for every secret tried.
 */
export function verifySignature(
  headers: { signature: string | undefined; timestamp: string | undefined },
  rawBody: Buffer,
  secrets: readonly string[],
  nowMs: number,
): SignatureCheck {
  const { signature, timestamp } = headers;
  if (!signature || !timestamp) {
    return {
      ok: false,
      status: 400,
      code: "signature_missing",
      message: "PayNow-Signature and PayNow-Timestamp headers are required",
    };
  }
  if (!/^\d{1,16}$/.test(timestamp)) {
    return {
      ok: false,
      status: 400,
      code: "timestamp_invalid",
      message: "PayNow-Timestamp must be Unix time in milliseconds",
    };
  }
  const skew = nowMs - Number(timestamp);
  if (Math.abs(skew) > SIGNATURE_TOLERANCE_MS) {
    return {
      ok: false,
      status: 401,
      code: "timestamp_out_of_range",
      message: `PayNow-Timestamp is ${Math.round(Math.abs(skew) / 1000)} s ${skew > 0 ? "old" : "ahead"}; at most ${SIGNATURE_TOLERANCE_MS / 1000} s either way is accepted`,
    };
  }
  // Only PayNow's form (44 characters of standard base64) is compared; anything else cannot match.
  const provided = BASE64.test(signature) ? Buffer.from(signature, "base64") : null;
  let match = -1;
  for (const [i, secret] of secrets.entries()) {
    const expected = Buffer.from(signPayload(secret, timestamp, rawBody), "base64");
    if (provided && provided.length === expected.length && timingSafeEqual(provided, expected) && match < 0) match = i;
  }
  if (match < 0)
    return {
      ok: false,
      status: 401,
      code: "signature_invalid",
      message: "PayNow-Signature does not match the body under any configured webhook secret",
    };
  return { ok: true, secretIndex: match };
}
